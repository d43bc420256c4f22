#include "sluice/metricprovider/metric_template.h"

#include "sluice/util/base64.h"

namespace sluice::metricprovider {

MetricTemplateParseResult parseMetricTemplate(const nlohmann::json& object) {
    MetricTemplateParseResult out;
    MetricTemplate& t = out.metricTemplate;
    auto err = [&](const std::string& e) { out.errors.push_back(e); };
    if (!object.is_object()) {
        err("MetricTemplate is not an object");
        return out;
    }
    if (auto md = object.find("metadata"); md != object.end() && md->is_object()) {
        t.name = md->value("name", "");
        t.namespaceName = md->value("namespace", "");
    }
    auto spec = object.find("spec");
    if (spec == object.end() || !spec->is_object()) {
        err("spec: required");
        return out;
    }
    auto text = [&](const nlohmann::json& parent, const char* key, const std::string& path,
                    std::string& into) {
        auto it = parent.find(key);
        if (it == parent.end() || it->is_null()) return;
        if (!it->is_string())
            err(path + ": must be a string");
        else
            into = it->get<std::string>();
    };
    if (auto p = spec->find("provider"); p != spec->end() && !p->is_null()) {
        if (!p->is_object()) {
            err("spec.provider: must be an object");
        } else {
            text(*p, "type", "spec.provider.type", t.provider.type);
            text(*p, "address", "spec.provider.address", t.provider.address);
            if (auto s = p->find("secretRef"); s != p->end() && !s->is_null()) {
                if (!s->is_object())
                    err("spec.provider.secretRef: must be an object");
                else
                    text(*s, "name", "spec.provider.secretRef.name", t.provider.secretName);
            }
            if (auto i = p->find("insecureSkipVerify"); i != p->end() && !i->is_null()) {
                if (!i->is_boolean())
                    err("spec.provider.insecureSkipVerify: must be a boolean");
                else
                    t.provider.insecureSkipVerify = i->get<bool>();
            }
        }
    }
    if (t.provider.type != "prometheus")
        err("spec.provider.type: \"" + t.provider.type +
            "\" is not supported (only \"prometheus\")");
    const std::string& a = t.provider.address;
    if (!a.empty() && a.rfind("http://", 0) != 0 && a.rfind("https://", 0) != 0)
        err("spec.provider.address: \"" + a + "\" is not an http(s) URL");
    text(*spec, "query", "spec.query", t.query);
    if (t.query.empty()) err("spec.query: required");
    return out;
}

SecretDataResult decodeSecretData(const nlohmann::json& secret) {
    SecretDataResult out;
    if (!secret.is_object()) {
        out.error = "secret is not an object";
        return out;
    }
    if (auto d = secret.find("data"); d != secret.end() && d->is_object()) {
        for (const auto& [key, value] : d->items()) {
            auto decoded = value.is_string() ? base64Decode(value.get<std::string>())
                                             : std::optional<std::string>();
            if (!decoded) {
                out.error = "secret data \"" + key + "\" is not valid base64";
                out.data.clear();
                return out;
            }
            out.data[key] = *decoded;
        }
    }
    if (auto d = secret.find("stringData"); d != secret.end() && d->is_object())
        for (const auto& [key, value] : d->items())
            if (value.is_string()) out.data[key] = value.get<std::string>();
    return out;
}

ClientOptionsResult clientOptionsFor(const MetricTemplateProvider& provider,
                                     const std::string& defaultAddress,
                                     const std::map<std::string, std::string>* secretData) {
    ClientOptionsResult out;
    out.options.address = provider.address.empty() ? defaultAddress : provider.address;
    out.options.insecureSkipVerify = provider.insecureSkipVerify;
    if (out.options.address.empty()) {
        out.error = "no Prometheus address: the template has none and no default is configured";
        return out;
    }
    if (!provider.secretName.empty()) {
        if (!secretData) {
            out.error = "secret " + provider.secretName + " not found";
            return out;
        }
        CredentialsResult creds = credentialsFromSecretData(*secretData);
        if (!creds.ok()) {
            out.error = "secret " + provider.secretName + ": " + creds.error;
            return out;
        }
        out.options.credentials = creds.credentials;
    }
    return out;
}

}  // namespace sluice::metricprovider
