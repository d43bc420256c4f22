// Everything about /api/v1/query answers that needs no network: response interpretation,
// credentials, whitespace handling.
#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

#include "sluice/metricprovider/client.h"

namespace sluice::metricprovider {
namespace {

using canaryengine::MetricResult;

std::string shorten(const std::string& text, size_t max = 300) {
    std::string t = collapseWhitespace(text);
    return t.size() <= max ? t : t.substr(0, max) + "...";
}

// Prometheus writes sample values as strings: Go's shortest decimal, "NaN", "+Inf", "-Inf".
MetricResult sampleValue(const nlohmann::json& value, const std::string& where) {
    if (!value.is_string())
        return MetricResult::queryError(where +
                                        ": sample value is not a string: " + shorten(value.dump()));
    const std::string& text = value.get_ref<const std::string&>();
    if (text == "NaN")
        return MetricResult::noData(where + " is NaN (for a ratio: no requests in the window)");
    if (text == "+Inf" || text == "-Inf" || text == "Inf")
        return MetricResult::noData(
            where + " is " + text +
            " (for histogram_quantile: beyond the highest finite bucket, or no buckets)");
    double v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v))
        return MetricResult::queryError(where + ": unreadable sample value \"" + shorten(text) +
                                        "\"");
    return MetricResult::measured(v);
}

// [<unix time>, "<value>"]
MetricResult samplePair(const nlohmann::json& pair, const std::string& where) {
    if (!pair.is_array() || pair.size() != 2)
        return MetricResult::queryError(where + ": malformed sample " + shorten(pair.dump()));
    return sampleValue(pair[1], where);
}

}  // namespace

MetricResult interpretQueryResponse(int httpStatus, const std::string& body) {
    std::string status = "HTTP " + std::to_string(httpStatus);
    nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
        if (httpStatus < 200 || httpStatus >= 300)
            return MetricResult::queryError(status + ": " +
                                            (body.empty() ? "empty body" : shorten(body)));
        return MetricResult::queryError(status +
                                        ": response is not a JSON object: " + shorten(body));
    }
    std::string apiStatus = doc.value("status", "");
    if (apiStatus == "error" || httpStatus < 200 || httpStatus >= 300) {
        std::string errorType = doc.contains("errorType") && doc["errorType"].is_string()
                                    ? doc["errorType"].get<std::string>()
                                    : "";
        std::string error = doc.contains("error") && doc["error"].is_string()
                                ? doc["error"].get<std::string>()
                                : "";
        std::string what = errorType.empty() ? error : errorType + ": " + error;
        if (what.empty()) what = shorten(body);
        return MetricResult::queryError("Prometheus error (" + status + "): " + what);
    }
    if (apiStatus != "success")
        return MetricResult::queryError(status + ": response status \"" + apiStatus +
                                        "\" is not \"success\"");
    const auto data = doc.find("data");
    if (data == doc.end() || !data->is_object())
        return MetricResult::queryError(status + ": response has no data object");
    std::string type = data->value("resultType", "");
    const auto result = data->find("result");
    if (result == data->end())
        return MetricResult::queryError(status + ": response has no data.result");
    if (type == "scalar") return samplePair(*result, "scalar result");
    if (type == "vector") {
        if (!result->is_array())
            return MetricResult::queryError(status + ": vector result is not an array");
        if (result->empty())
            return MetricResult::noData("query returned no series (no matching samples)");
        const auto& first = (*result)[0];
        if (!first.is_object() || !first.contains("value"))
            return MetricResult::queryError("vector result: series without a float value");
        return samplePair(first["value"], "query result");
    }
    if (type == "matrix")
        return MetricResult::queryError(
            "query returned a range vector (matrix); it must return an instant vector or scalar");
    return MetricResult::queryError("unsupported result type \"" + type + "\"");
}

CredentialsResult credentialsFromSecretData(const std::map<std::string, std::string>& data) {
    CredentialsResult out;
    if (auto token = data.find("token"); token != data.end()) {
        out.credentials.bearerToken = token->second;
        if (token->second.empty()) out.error = "secret key \"token\" is empty";
        return out;
    }
    auto user = data.find("username");
    auto pass = data.find("password");
    if (user == data.end() || pass == data.end()) {
        out.error = std::string("secret has no \"token\" and no \"") +
                    (user == data.end() ? "username" : "password") +
                    "\" (basic auth needs both \"username\" and \"password\")";
        return out;
    }
    out.credentials.username = user->second;
    out.credentials.password = pass->second;
    return out;
}

std::string collapseWhitespace(const std::string& promql) {
    std::string out;
    out.reserve(promql.size());
    char quote = 0;
    bool pendingSpace = false;
    for (size_t i = 0; i < promql.size(); ++i) {
        char c = promql[i];
        if (quote) {
            out.push_back(c);
            if (c == '\\' && quote != '`' && i + 1 < promql.size()) {
                out.push_back(promql[++i]);
            } else if (c == quote) {
                quote = 0;
            }
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            pendingSpace = !out.empty();
            continue;
        }
        if (pendingSpace) out.push_back(' ');
        pendingSpace = false;
        if (c == '"' || c == '\'' || c == '`') quote = c;
        out.push_back(c);
    }
    return out;
}

}  // namespace sluice::metricprovider
