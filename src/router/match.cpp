#include "match.h"

#include "json_util.h"
#include "sluice/router/context.h"

namespace sluice::router::detail {

namespace {

// An Istio StringMatch {exact|prefix|regex} as (Gateway API match type, value).
struct StringMatch {
    std::string type;  // "Exact", "PathPrefix"/"Prefix" or "RegularExpression"; "" if none
    std::string value;
};

StringMatch readStringMatch(const json& match) {
    if (std::string v = text(match, "exact"); !v.empty()) return {"Exact", v};
    if (std::string v = text(match, "regex"); !v.empty()) return {"RegularExpression", v};
    if (std::string v = text(match, "prefix"); !v.empty()) return {"Prefix", v};
    return {};
}

// Headers or query parameters: a map of name -> StringMatch, as a Gateway API list.
json toNamedMatches(const json& istio, const char* what) {
    json out = json::array();
    if (!istio.is_object()) return out;
    for (auto it = istio.begin(); it != istio.end(); ++it) {
        StringMatch match = readStringMatch(*it);
        if (match.type != "Exact" && match.type != "RegularExpression") {
            throw RouterError(std::string("Gateway API cannot match ") + what + " \"" + it.key() +
                              "\" by " + it->dump() + " (only exact and regex)");
        }
        out.push_back({{"name", it.key()}, {"type", match.type}, {"value", match.value}});
    }
    return out;
}

}  // namespace

json toGatewayMatches(const json& istioMatches) {
    json out = json::array();
    if (!istioMatches.is_array()) return out;
    for (const json& request : istioMatches) {
        // Selectors an HTTPRoute has no field for: dropping them would send other requests.
        for (const char* key : {"sourceLabels", "sourceNamespace", "withoutHeaders", "authority",
                                "scheme", "port", "gateways"}) {
            if (!isEmpty(field(request, key))) {
                throw RouterError(std::string("Gateway API cannot match requests by ") + key);
            }
        }
        json match = json::object();
        if (const json& uri = field(request, "uri"); !uri.is_null()) {
            StringMatch path = readStringMatch(uri);
            if (path.type.empty()) {
                throw RouterError("Gateway API cannot match the path by " + uri.dump());
            }
            if (path.type == "Prefix") path.type = "PathPrefix";
            match["path"] = {{"type", path.type}, {"value", path.value}};
        }
        if (const json& method = field(request, "method"); !method.is_null()) {
            std::string exact = text(method, "exact");
            if (exact.empty()) {
                throw RouterError("Gateway API matches methods only exactly, not by " +
                                  method.dump());
            }
            match["method"] = exact;
        }
        if (json headers = toNamedMatches(field(request, "headers"), "header"); !headers.empty()) {
            match["headers"] = std::move(headers);
        }
        if (json query = toNamedMatches(field(request, "queryParams"), "query parameter");
            !query.empty()) {
            match["queryParams"] = std::move(query);
        }
        if (!match.empty()) out.push_back(std::move(match));
    }
    return out;
}

json mergeGatewayMatches(const json& analysis, const json& service) {
    if (analysis.empty()) return service;
    if (service.empty()) return analysis;
    json merged = json::array();
    for (const json& a : analysis) {
        for (const json& s : service) {
            json match = s;
            if (!isEmpty(field(a, "headers"))) match["headers"] = a["headers"];
            if (!isEmpty(field(a, "queryParams"))) match["queryParams"] = a["queryParams"];
            merged.push_back(std::move(match));
        }
    }
    return merged;
}

json mergeIstioMatches(const json& analysis, const json& service) {
    if (!service.is_array() || service.empty()) return analysis;
    json merged = json::array();
    for (const json& a : analysis) {
        for (const json& s : service) {
            json match = s;
            if (!isEmpty(field(a, "headers"))) match["headers"] = a["headers"];
            if (!isEmpty(field(a, "sourceLabels"))) match["sourceLabels"] = a["sourceLabels"];
            merged.push_back(std::move(match));
        }
    }
    return merged;
}

}  // namespace sluice::router::detail
