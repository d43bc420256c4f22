#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "sluice/metricprovider/builtin.h"
#include "sluice/metricprovider/metric_template.h"
#include "sluice/util/yaml_json.h"

namespace sluice::metricprovider {
namespace {

TEST(ParseMetricTemplate, SharedSteppedCanaryExample) {
    std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/tests/data/examples/stepped-canary.yaml");
    ASSERT_TRUE(in) << "tests/data/examples/stepped-canary.yaml not found";
    std::stringstream ss;
    ss << in.rdbuf();
    const nlohmann::json* found = nullptr;
    auto docs = yamlDocumentsToJson(ss.str());
    for (const auto& d : docs)
        if (d.value("kind", "") == "MetricTemplate") found = &d;
    ASSERT_NE(found, nullptr);
    auto r = parseMetricTemplate(*found);
    ASSERT_TRUE(r.ok()) << r.errors.front();
    const MetricTemplate& t = r.metricTemplate;
    EXPECT_EQ(t.name, "error-rate");
    EXPECT_EQ(t.namespaceName, "bifrost");
    EXPECT_EQ(t.provider.type, "prometheus");
    EXPECT_EQ(t.provider.address, "http://prometheus.monitoring:9090");
    EXPECT_TRUE(t.provider.secretName.empty());

    TemplateModel m;
    m.name = m.target = m.service = "api";
    m.namespaceName = "bifrost";
    m.interval = "1m";
    RenderResult q = renderQuery(t.query, m);
    ASSERT_TRUE(q.ok()) << q.error;
    EXPECT_NE(q.query.find("pod=~\"api-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\""), std::string::npos);
    EXPECT_EQ(q.query.find("{{"), std::string::npos);
}

TEST(ParseMetricTemplate, AllProviderFields) {
    auto r = parseMetricTemplate(nlohmann::json::parse(R"j({
      "metadata": {"name": "latency", "namespace": "ops"},
      "spec": {"provider": {"type": "prometheus", "address": "https://prom.example:9090",
                            "secretRef": {"name": "prom-auth"}, "insecureSkipVerify": true},
               "query": "histogram_quantile(0.99, x)"}})j"));
    ASSERT_TRUE(r.ok()) << r.errors.front();
    EXPECT_EQ(r.metricTemplate.provider.secretName, "prom-auth");
    EXPECT_TRUE(r.metricTemplate.provider.insecureSkipVerify);
    EXPECT_EQ(r.metricTemplate.query, "histogram_quantile(0.99, x)");
}

TEST(ParseMetricTemplate, Errors) {
    auto r = parseMetricTemplate(nlohmann::json::parse(
        R"({"spec": {"provider": {"type": "datadog", "address": "prom:9090",
                                  "insecureSkipVerify": "yes"}}})"));
    ASSERT_EQ(r.errors.size(), 4u);
    EXPECT_NE(r.errors[0].find("insecureSkipVerify"), std::string::npos) << r.errors[0];
    EXPECT_NE(r.errors[1].find("\"datadog\" is not supported"), std::string::npos) << r.errors[1];
    EXPECT_NE(r.errors[2].find("not an http(s) URL"), std::string::npos) << r.errors[2];
    EXPECT_NE(r.errors[3].find("spec.query"), std::string::npos) << r.errors[3];
    EXPECT_FALSE(parseMetricTemplate(nlohmann::json::parse(R"({"kind":"MetricTemplate"})")).ok());
    EXPECT_FALSE(parseMetricTemplate(nlohmann::json::array()).ok());
    // A template without an address uses the controller's default Prometheus, as Flagger.
    EXPECT_TRUE(parseMetricTemplate(nlohmann::json::parse(R"({"spec":{"query":"up"}})")).ok());
}

TEST(DecodeSecretData, Base64DataAndStringData) {
    auto r = decodeSecretData(nlohmann::json::parse(R"({
      "data": {"username": "YWRtaW4=", "password": "cEBzczp3b3Jk", "empty": ""},
      "stringData": {"token": "plain"}})"));
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.data.at("username"), "admin");
    EXPECT_EQ(r.data.at("password"), "p@ss:word");
    EXPECT_EQ(r.data.at("empty"), "");
    EXPECT_EQ(r.data.at("token"), "plain");
    for (std::string bad : {"YWRtaW4", "YW=RtaW4=", "!!!!", "YWRtaW4==="}) {
        auto b = decodeSecretData(nlohmann::json{{"data", {{"k", bad}}}});
        EXPECT_FALSE(b.ok()) << bad;
    }
}

TEST(ClientOptionsFor, AddressDefaultAndCredentials) {
    MetricTemplateProvider p;
    auto r = clientOptionsFor(p, "http://prometheus:9090", nullptr);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.options.address, "http://prometheus:9090");
    EXPECT_FALSE(clientOptionsFor(p, "", nullptr).ok());

    p.address = "https://prom:443";
    p.insecureSkipVerify = true;
    p.secretName = "prom-auth";
    EXPECT_NE(clientOptionsFor(p, "", nullptr).error.find("prom-auth not found"),
              std::string::npos);
    std::map<std::string, std::string> data{{"token", "t0k"}};
    r = clientOptionsFor(p, "", &data);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.options.address, "https://prom:443");
    EXPECT_TRUE(r.options.insecureSkipVerify);
    EXPECT_EQ(r.options.credentials.bearerToken, "t0k");
    data = {{"username", "u"}};
    r = clientOptionsFor(p, "", &data);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error.find("secret prom-auth: "), std::string::npos) << r.error;
}

}  // namespace
}  // namespace sluice::metricprovider
