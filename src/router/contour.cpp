// Flagger's Contour router: an HTTPProxy `<apex>` (projectcontour.io/v1) without a virtualhost,
// for a root HTTPProxy to include, whose weighted route goes to `<apex>-primary` and
// `<apex>-canary`. A/B testing puts one header-conditioned weighted route per analysis.match
// before a primary-only route.
#include "checks.h"
#include "json_util.h"
#include "sluice/router/router.h"

namespace sluice::router {

using detail::field;
using detail::text;
using nlohmann::json;

namespace {

// service.match[0].uri.prefix, else "/" (Flagger's makePrefix).
std::string pathPrefix(const RouteContext& ctx) {
    const json& match = ctx.spec.service.match;
    if (match.is_array() && !match.empty()) {
        std::string prefix = text(field(match[0], "uri"), "prefix");
        if (!prefix.empty()) return prefix;
    }
    return "/";
}

// One analysis.match entry -> the prefix condition plus one header condition per header.
// Contour ANDs a route's conditions and allows a single prefix among them (Flagger repeats the
// prefix in every header condition, which Contour then refuses).
json conditionsFor(const RouteContext& ctx, const json& match) {
    json conditions = json::array({{{"prefix", pathPrefix(ctx)}}});
    for (auto it = match.begin(); it != match.end(); ++it) {
        if (it.key() != "headers") {
            throw RouterError("the contour provider routes analysis.match by headers only, not " +
                              it.key());
        }
    }
    const json& headers = field(match, "headers");
    if (!headers.is_object() || headers.empty()) {
        throw RouterError("the contour provider needs headers in every analysis.match");
    }
    for (auto it = headers.begin(); it != headers.end(); ++it) {
        json header = {{"name", it.key()}};
        if (!text(*it, "exact").empty()) {
            header["exact"] = text(*it, "exact");
        } else if (!text(*it, "regex").empty()) {
            header["regex"] = text(*it, "regex");
        } else if (!text(*it, "prefix").empty()) {
            header["contains"] = text(*it, "prefix");  // as Flagger: Contour has no prefix
        } else if (!text(*it, "suffix").empty()) {
            header["contains"] = text(*it, "suffix");
        } else {
            throw RouterError("analysis.match header " + it.key() +
                              " needs exact, regex, prefix or suffix");
        }
        conditions.push_back({{"header", std::move(header)}});
    }
    return conditions;
}

}  // namespace

class ContourRouter final : public Router {
  public:
    std::string provider() const override { return "contour"; }

    void checkSpec(const RouteContext& ctx) const override {
        refuseMirroring(ctx, "contour");
        for (const json& match : ctx.analysisMatch()) conditionsFor(ctx, match);
    }

    void checkWeights(const RouteContext&, const Weights& weights) const override {
        checkPercentages(weights);
        if (weights.mirror) throw RouterError("the contour provider cannot mirror traffic");
    }

    std::vector<kube::Object> build(const RouteContext& ctx, const Weights& weights,
                                    const std::vector<kube::Object>&) const override {
        checkSpec(ctx);
        checkWeights(ctx, weights);
        json routes = json::array();
        if (ctx.abTesting()) {
            for (const json& match : ctx.analysisMatch()) {
                routes.push_back(route(ctx, conditionsFor(ctx, match), weights));
            }
            routes.push_back(route(ctx, json::array({{{"prefix", pathPrefix(ctx)}}}), Weights{}));
        } else {
            routes.push_back(route(ctx, json::array({{{"prefix", pathPrefix(ctx)}}}), weights));
        }
        return {{{"apiVersion", "projectcontour.io/v1"},
                 {"kind", "HTTPProxy"},
                 {"metadata", {{"name", ctx.apexServiceName()}, {"namespace", ctx.namespaceName}}},
                 {"spec", {{"routes", std::move(routes)}}}}};
    }

    ObjectRef weightsObject(const RouteContext& ctx) const override {
        return {"projectcontour.io/v1", "HTTPProxy", ctx.namespaceName, ctx.apexServiceName()};
    }

    // The weights of the first route (the A/B one when there is one), as Flagger reads them.
    Weights readWeights(const RouteContext& ctx, const kube::Object& live) const override {
        const json& routes = field(field(live, "spec"), "routes");
        std::optional<int> primary;
        std::optional<int> canary;
        if (routes.is_array() && !routes.empty()) {
            const json& services = field(routes[0], "services");
            for (const json& service : services.is_array() ? services : json::array()) {
                const json& weight = field(service, "weight");
                int value = weight.is_number_integer() ? weight.get<int>() : 0;
                if (text(service, "name") == ctx.primaryServiceName()) primary = value;
                if (text(service, "name") == ctx.canaryServiceName()) canary = value;
            }
        }
        if (!primary || !canary) {
            throw RouterError("HTTPProxy " + ctx.namespaceName + "/" + ctx.apexServiceName() +
                              " does not route to " + ctx.primaryServiceName() + " and " +
                              ctx.canaryServiceName() + " in its first route");
        }
        return {*primary, *canary, false};
    }

  private:
    // One route: conditions, Flagger's timeout and retry policies, and both Services, each
    // with the l5d-dst-override header Flagger sets so that Linkerd behind Contour routes to
    // that Service rather than back through the apex.
    static json route(const RouteContext& ctx, json conditions, const Weights& weights) {
        const int port = ctx.spec.service.port;
        auto service = [&](const std::string& name, int weight) {
            std::string dst =
                name + "." + ctx.namespaceName + ".svc.cluster.local:" + std::to_string(port);
            return json{{"name", name},
                        {"port", port},
                        {"weight", weight},
                        {"requestHeadersPolicy",
                         {{"set", json::array({{{"name", "l5d-dst-override"}, {"value", dst}}})}}}};
        };
        json out = {{"conditions", std::move(conditions)},
                    {"services", json::array({service(ctx.primaryServiceName(), weights.primary),
                                              service(ctx.canaryServiceName(), weights.canary)})}};
        if (!ctx.spec.service.timeout.empty()) {
            out["timeoutPolicy"] = {{"response", ctx.spec.service.timeout}, {"idle", "5m"}};
        }
        const json& retries = ctx.spec.service.retries;
        if (retries.is_object() && !retries.empty()) {
            json policy = json::object();
            if (field(retries, "attempts").is_number_integer())
                policy["count"] = retries["attempts"];
            if (!text(retries, "perTryTimeout").empty()) {
                policy["perTryTimeout"] = text(retries, "perTryTimeout");
            }
            out["retryPolicy"] = std::move(policy);
        }
        return out;
    }
};

std::unique_ptr<Router> makeContourRouter(std::string_view) {
    return std::make_unique<ContourRouter>();
}

}  // namespace sluice::router
