// Gateway API HTTPRoute in the shape of Flagger's GatewayAPIRouter (with its sticky rules for
// session affinity).
#include <algorithm>
#include <cctype>

#include "checks.h"
#include "json_util.h"
#include "match.h"
#include "sluice/router/router.h"

namespace sluice::router {

using detail::field;
using detail::text;
using nlohmann::json;

namespace {

json backendRef(const std::string& service, int port, int weight) {
    return {
        {"group", ""}, {"kind", "Service"}, {"name", service}, {"port", port}, {"weight", weight}};
}

// Flagger's HeaderOperations {add, set: {name: value}, remove: [name]} as a header filter.
json headerModifier(const json& operations) {
    json modifier = json::object();
    for (const char* key : {"add", "set"}) {
        json headers = json::array();
        const json& values = field(operations, key);
        if (values.is_object()) {
            for (auto it = values.begin(); it != values.end(); ++it) {
                if (it->is_string()) headers.push_back({{"name", it.key()}, {"value", *it}});
            }
        }
        if (!headers.empty()) modifier[key] = std::move(headers);
    }
    if (const json& remove = field(operations, "remove"); remove.is_array() && !remove.empty()) {
        modifier["remove"] = remove;
    }
    return modifier;
}

// service.headers and service.rewrite as HTTPRoute filters (Flagger's makeFilters).
json routeFilters(const RouteContext& ctx) {
    json filters = json::array();
    const json& headers = ctx.spec.service.headers;
    if (json request = headerModifier(field(headers, "request")); !request.empty()) {
        filters.push_back({{"type", "RequestHeaderModifier"}, {"requestHeaderModifier", request}});
    }
    if (json response = headerModifier(field(headers, "response")); !response.empty()) {
        filters.push_back(
            {{"type", "ResponseHeaderModifier"}, {"responseHeaderModifier", response}});
    }
    const canaryengine::Rewrite& rewrite = ctx.spec.service.rewrite;
    const std::string& authority = rewrite.authority;
    const std::string& uri = rewrite.uri;
    if (!authority.empty() || !uri.empty()) {
        json urlRewrite = json::object();
        if (!authority.empty()) urlRewrite["hostname"] = authority;
        if (!uri.empty()) {
            if (rewrite.type == "ReplaceFullPath") {
                urlRewrite["path"] = {{"type", "ReplaceFullPath"}, {"replaceFullPath", uri}};
            } else {
                urlRewrite["path"] = {{"type", "ReplacePrefixMatch"}, {"replacePrefixMatch", uri}};
            }
        }
        filters.push_back({{"type", "URLRewrite"}, {"urlRewrite", std::move(urlRewrite)}});
    }
    return filters;
}

// The CRD's CEL rule (which Flagger does not guard): a URLRewrite with replacePrefixMatch needs
// exactly one match, a PathPrefix one.
void checkPrefixRewrite(const json& matches, const json& filters) {
    for (const json& filter : filters) {
        if (text(field(field(filter, "urlRewrite"), "path"), "type") != "ReplacePrefixMatch") {
            continue;
        }
        if (matches.size() != 1 || text(field(matches[0], "path"), "type") != "PathPrefix") {
            throw RouterError(
                "service.rewrite.uri (ReplacePrefixMatch) needs exactly one PathPrefix match in "
                "the HTTPRoute rule, which has " +
                matches.dump());
        }
    }
}

// One rule: matches, filters, backendRefs and the request timeout (service.timeout).
json makeRule(const RouteContext& ctx, json matches, json filters, json backendRefs) {
    checkPrefixRewrite(matches, filters);
    json rule = {{"matches", std::move(matches)}};
    if (!filters.empty()) rule["filters"] = std::move(filters);
    rule["backendRefs"] = std::move(backendRefs);
    if (const std::string& timeout = ctx.spec.service.timeout; !timeout.empty()) {
        rule["timeouts"] = {{"request", timeout}};
    }
    return rule;
}

// A filter adding Set-Cookie to responses.
json setCookieFilter(const std::string& value) {
    return {{"type", "ResponseHeaderModifier"},
            {"responseHeaderModifier", {{"add", {{{"name", "Set-Cookie"}, {"value", value}}}}}}};
}

// `filters` with Set-Cookie added to responses: into their ResponseHeaderModifier when they
// have one (the CRD allows one per rule), else as one more filter.
json withSetCookie(json filters, const std::string& value) {
    for (json& filter : filters) {
        if (text(filter, "type") != "ResponseHeaderModifier") continue;
        json& modifier = filter["responseHeaderModifier"];
        json& add = modifier["add"];
        if (!add.is_array()) add = json::array();
        json kept = json::array();
        for (const json& header : add) {
            std::string headerName = text(header, "name");
            std::transform(headerName.begin(), headerName.end(), headerName.begin(),
                           [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
            if (headerName != "set-cookie") kept.push_back(header);
        }
        kept.push_back({{"name", "Set-Cookie"}, {"value", value}});
        add = std::move(kept);
        return filters;
    }
    filters.push_back(setCookieFilter(value));
    return filters;
}

// The Cookie header carrying `cookie`, within each of `matches`.
json cookieMatches(const json& matches, const std::string& cookie) {
    json match = {{"headers",
                   {{{"type", "RegularExpression"},
                     {"name", "Cookie"},
                     {"value", detail::cookieRegex(cookie)}}}}};
    return detail::mergeGatewayMatches(json::array({std::move(match)}), matches);
}

// A rule this router writes for session affinity: every match carries a Cookie regex.
bool isStickyRule(const json& rule) {
    const json& matches = field(rule, "matches");
    if (!matches.is_array() || matches.empty()) return false;
    for (const json& match : matches) {
        const json& headers = field(match, "headers");
        bool cookie = false;
        for (const json& header : headers.is_array() ? headers : json::array()) {
            cookie =
                cookie || (text(header, "type") == "RegularExpression" &&
                           (text(header, "name") == "Cookie" || text(header, "name") == "cookie"));
        }
        if (!cookie) return false;
    }
    return true;
}

json parentRefs(const RouteContext& ctx) {
    json refs = json::array();
    for (const canaryengine::GatewayRef& gateway : ctx.spec.service.gatewayRefs) {
        json ref = {{"name", gateway.name}};
        if (gateway.group) ref["group"] = *gateway.group;
        if (gateway.kind) ref["kind"] = *gateway.kind;
        if (!gateway.namespaceName.empty()) ref["namespace"] = gateway.namespaceName;
        if (!gateway.sectionName.empty()) ref["sectionName"] = gateway.sectionName;
        if (gateway.port) ref["port"] = *gateway.port;
        refs.push_back(std::move(ref));
    }
    return refs;
}

}  // namespace

GatewayApiRouter::GatewayApiRouter(std::string apiVersion) : apiVersion_(std::move(apiVersion)) {}

std::string GatewayApiRouter::provider() const {
    return apiVersion_ == "gateway.networking.k8s.io/v1beta1" ? "gatewayapi:v1beta1"
                                                              : "gatewayapi:v1";
}

void GatewayApiRouter::checkSpec(const RouteContext& ctx) const {
    if (ctx.spec.service.gatewayRefs.empty()) {
        throw RouterError("service.gatewayRefs must be set when using Gateway API");
    }
    if (ctx.spec.service.port <= 0) throw RouterError("service.port is required");
    // Translating the matches is where unsupported selectors show up.
    detail::toGatewayMatches(ctx.spec.service.match);
    detail::toGatewayMatches(ctx.analysisMatch());
    checkSessionAffinity(ctx);
}

std::vector<kube::Object> GatewayApiRouter::build(const RouteContext& ctx, const Weights& weights,
                                                  const std::vector<kube::Object>&) const {
    checkSpec(ctx);
    checkWeights(ctx, weights);
    const int port = ctx.spec.service.port;
    json matches = detail::toGatewayMatches(ctx.spec.service.match);
    if (matches.empty()) matches.push_back({{"path", {{"type", "PathPrefix"}, {"value", "/"}}}});
    json filters = routeFilters(ctx);

    json weightedMatches = matches;
    if (ctx.abTesting()) {
        weightedMatches =
            detail::mergeGatewayMatches(detail::toGatewayMatches(ctx.analysisMatch()), matches);
    }
    json weightedFilters = filters;
    if (weights.mirror) {
        json mirror = {{"backendRef",
                        {{"group", ""},
                         {"kind", "Service"},
                         {"name", ctx.canaryServiceName()},
                         {"port", port}}}};
        // Without a percentage every request is mirrored.
        if (const std::optional<int>& percent = ctx.spec.analysis.mirrorWeight;
            percent && *percent > 0) {
            mirror["percent"] = *percent;
        }
        weightedFilters.push_back(
            {{"type", "RequestMirror"}, {"requestMirror", std::move(mirror)}});
    }
    json rules = json::array();
    json weightedRefs = {backendRef(ctx.primaryServiceName(), port, weights.primary),
                         backendRef(ctx.canaryServiceName(), port, weights.canary)};
    if (const canaryengine::SessionAffinitySpec* affinity = detail::sessionAffinity(ctx)) {
        // Flagger's sticky rules: while the canary gets traffic its responses set the canary
        // cookie (the primary's the primary cookie), and a rule before the weighted one sends
        // requests carrying it there; back at 0 that rule expires the previous cookie.
        const canaryengine::SessionAffinityCookies& cookies = affinity->cookies;
        if (weights.canary > 0 && !cookies.canary.empty()) {
            weightedRefs[1]["filters"] =
                json::array({setCookieFilter(detail::setCookie(cookies.canary, affinity->maxAge))});
            rules.push_back(makeRule(ctx, cookieMatches(matches, cookies.canary), filters,
                                     {backendRef(ctx.primaryServiceName(), port, 0),
                                      backendRef(ctx.canaryServiceName(), port, 100)}));
            if (!cookies.primary.empty()) {
                weightedRefs[0]["filters"] = json::array({setCookieFilter(
                    detail::setCookie(cookies.primary, detail::primaryCookieMaxAge(ctx)))});
                rules.push_back(makeRule(ctx, cookieMatches(matches, cookies.primary), filters,
                                         {backendRef(ctx.primaryServiceName(), port, 100),
                                          backendRef(ctx.canaryServiceName(), port, 0)}));
            }
        } else if (weights.canary == 0 && !cookies.previous.empty()) {
            rules.push_back(
                makeRule(ctx, cookieMatches(matches, cookies.previous),
                         withSetCookie(filters, detail::setCookie(cookies.previous, -1)),
                         {backendRef(ctx.primaryServiceName(), port, weights.primary),
                          backendRef(ctx.canaryServiceName(), port, 0)}));
        }
    }
    rules.push_back(makeRule(ctx, std::move(weightedMatches), std::move(weightedFilters),
                             std::move(weightedRefs)));
    if (ctx.abTesting()) {
        // Requests that do not match the A/B selectors stay on the primary.
        rules.push_back(makeRule(ctx, matches, filters,
                                 json::array({backendRef(ctx.primaryServiceName(), port, 100)})));
    }

    json spec = {{"parentRefs", parentRefs(ctx)}};
    if (!ctx.spec.service.hosts.empty()) spec["hostnames"] = ctx.spec.service.hosts;
    spec["rules"] = std::move(rules);
    return {{{"apiVersion", apiVersion_},
             {"kind", "HTTPRoute"},
             {"metadata", detail::objectMetadata(ctx.apexServiceName(), ctx.namespaceName,
                                                 ctx.spec.service.apex)},
             {"spec", std::move(spec)}}};
}

ObjectRef GatewayApiRouter::weightsObject(const RouteContext& ctx) const {
    return {apiVersion_, "HTTPRoute", ctx.namespaceName, ctx.apexServiceName()};
}

Weights GatewayApiRouter::readWeights(const RouteContext& ctx, const kube::Object& live) const {
    const std::string primary = ctx.primaryServiceName();
    const std::string canary = ctx.canaryServiceName();
    const json& rules = field(field(live, "spec"), "rules");
    std::optional<Weights> found;
    bool mirror = false;
    if (rules.is_array()) {
        for (const json& rule : rules) {
            // The sticky rules send everyone with a cookie to one side: not the split.
            if (ctx.spec.analysis.sessionAffinity && isStickyRule(rule)) continue;
            std::optional<int> primaryWeight;
            std::optional<int> canaryWeight;
            const json& refs = field(rule, "backendRefs");
            for (const json& ref : refs.is_array() ? refs : json::array()) {
                // The CRD defaults a missing weight to 1.
                const json& weight = field(ref, "weight");
                int value = weight.is_number_integer() ? weight.get<int>() : 1;
                if (text(ref, "name") == primary) primaryWeight = value;
                if (text(ref, "name") == canary) canaryWeight = value;
            }
            // The A/B primary-only rule does not carry the split.
            if (primaryWeight && canaryWeight && !found) {
                found = Weights{*primaryWeight, *canaryWeight, false};
            }
            const json& filters = field(rule, "filters");
            for (const json& filter : filters.is_array() ? filters : json::array()) {
                if (text(filter, "type") == "RequestMirror" &&
                    text(field(field(filter, "requestMirror"), "backendRef"), "name") == canary) {
                    mirror = true;
                }
            }
        }
    }
    if (!found) {
        throw RouterError("HTTPRoute " + ctx.namespaceName + "/" + ctx.apexServiceName() +
                          " has no rule with backendRefs to both " + primary + " and " + canary);
    }
    found->mirror = mirror;
    return *found;
}

}  // namespace sluice::router
