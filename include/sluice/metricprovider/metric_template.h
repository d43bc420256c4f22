#pragma once
// The MetricTemplate custom resource (Flagger's flagger.app/v1beta1 MetricTemplate served as
// sluice.io/v1alpha1), as far as Sluice uses it: a Prometheus provider and a query template.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/metricprovider/client.h"

namespace sluice::metricprovider {

struct MetricTemplateProvider {
    std::string type = "prometheus";
    std::string address;     // empty: the controller's default Prometheus (as Flagger)
    std::string secretName;  // spec.provider.secretRef.name, in the template's namespace
    bool insecureSkipVerify = false;
};

struct MetricTemplate {
    std::string name;
    std::string namespaceName;
    MetricTemplateProvider provider;
    std::string query;
};

struct MetricTemplateParseResult {
    MetricTemplate metricTemplate;
    std::vector<std::string> errors;  // prefixed with the field path
    bool ok() const { return errors.empty(); }
};
// Never throws. Only the "prometheus" provider type is supported; the query is required.
MetricTemplateParseResult parseMetricTemplate(const nlohmann::json& object);

// Decodes a Secret object's base64 `data` (plus any `stringData`) into text values.
struct SecretDataResult {
    std::map<std::string, std::string> data;
    std::string error;
    bool ok() const { return error.empty(); }
};
SecretDataResult decodeSecretData(const nlohmann::json& secret);

// Client options for a template's provider: its address (or defaultAddress when empty), its
// TLS setting, and credentials from the decoded secret data when it has a secretRef.
struct ClientOptionsResult {
    ClientOptions options;
    std::string error;
    bool ok() const { return error.empty(); }
};
ClientOptionsResult clientOptionsFor(const MetricTemplateProvider& provider,
                                     const std::string& defaultAddress,
                                     const std::map<std::string, std::string>* secretData);

}  // namespace sluice::metricprovider
