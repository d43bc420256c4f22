// Flagger's SMI routers: a TrafficSplit `<apex>` (split.smi-spec.io) whose root service is the
// first of service.hosts or the apex Service, with backends `<apex>-canary` and `<apex>-primary`.
// "linkerd" is Flagger's SmiRouter (v1alpha1, target mesh linkerd); "smi:v1alpha1[:<mesh>]" the
// same router for another mesh, "smi:v1alpha2[:<mesh>]" (and "smi") its v1alpha2 router.
#include <cmath>

#include "checks.h"
#include "json_util.h"
#include "sluice/router/router.h"

namespace sluice::router {

using detail::field;
using detail::text;
using nlohmann::json;

namespace {

// A backend weight as the CRDs allow it: a number (v1alpha2) or an int-or-string quantity
// (v1alpha1, which Flagger writes as a resource.Quantity: "100", and kubectl users as "500m").
std::optional<double> weightOf(const json& weight) {
    if (weight.is_number()) return weight.get<double>();
    if (!weight.is_string()) return std::nullopt;
    std::string value = weight.get<std::string>();
    double scale = 1;
    if (!value.empty() && value.back() == 'm') {
        scale = 0.001;
        value.pop_back();
    }
    try {
        size_t used = 0;
        double number = std::stod(value, &used);
        if (used != value.size()) return std::nullopt;
        return number * scale;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

class SmiRouter final : public Router {
  public:
    SmiRouter(std::string provider, std::string apiVersion, std::string mesh)
        : provider_(std::move(provider)),
          apiVersion_(std::move(apiVersion)),
          mesh_(std::move(mesh)) {}
    std::string provider() const override { return provider_; }

    void checkSpec(const RouteContext& ctx) const override {
        refuseMirroring(ctx, provider_);
        if (ctx.abTesting()) {
            throw RouterError("the " + provider_ +
                              " provider (SMI TrafficSplit) cannot route by analysis.match");
        }
    }

    void checkWeights(const RouteContext&, const Weights& weights) const override {
        checkPercentages(weights);
        if (weights.mirror) {
            throw RouterError("the " + provider_ + " provider (SMI TrafficSplit) cannot mirror");
        }
    }

    std::vector<kube::Object> build(const RouteContext& ctx, const Weights& weights,
                                    const std::vector<kube::Object>&) const override {
        checkSpec(ctx);
        checkWeights(ctx, weights);
        const std::vector<std::string>& hosts = ctx.spec.service.hosts;
        json metadata = {{"name", ctx.apexServiceName()}, {"namespace", ctx.namespaceName}};
        // As Flagger: Istio reads the gateways of its generated VirtualService from here.
        if (mesh_ == "istio" && !ctx.spec.service.gateways.empty()) {
            metadata["annotations"] = {{"VirtualService.v1alpha3.networking.istio.io/spec.gateways",
                                        json(ctx.spec.service.gateways).dump()}};
        }
        json backends =
            json::array({{{"service", ctx.canaryServiceName()}, {"weight", weights.canary}},
                         {{"service", ctx.primaryServiceName()}, {"weight", weights.primary}}});
        return {{{"apiVersion", apiVersion_},
                 {"kind", "TrafficSplit"},
                 {"metadata", std::move(metadata)},
                 {"spec",
                  {{"service", hosts.empty() ? ctx.apexServiceName() : hosts.front()},
                   {"backends", std::move(backends)}}}}};
    }

    ObjectRef weightsObject(const RouteContext& ctx) const override {
        return {apiVersion_, "TrafficSplit", ctx.namespaceName, ctx.apexServiceName()};
    }

    Weights readWeights(const RouteContext& ctx, const kube::Object& live) const override {
        std::optional<double> primary;
        std::optional<double> canary;
        const json& backends = field(field(live, "spec"), "backends");
        for (const json& backend : backends.is_array() ? backends : json::array()) {
            std::string service = text(backend, "service");
            if (service == ctx.primaryServiceName()) primary = weightOf(field(backend, "weight"));
            if (service == ctx.canaryServiceName()) canary = weightOf(field(backend, "weight"));
        }
        if (!primary || !canary) {
            throw RouterError("TrafficSplit " + ctx.namespaceName + "/" + ctx.apexServiceName() +
                              " does not split between " + ctx.primaryServiceName() + " and " +
                              ctx.canaryServiceName());
        }
        return {static_cast<int>(std::lround(*primary)), static_cast<int>(std::lround(*canary)),
                false};
    }

  private:
    std::string provider_;
    std::string apiVersion_;
    std::string mesh_;
};

// "smi:v1alpha2:istio" -> "istio"; "" without a mesh.
std::string meshOf(std::string_view spelling, std::string_view name) {
    if (spelling.size() <= name.size() + 1 || spelling.substr(0, name.size()) != name) return "";
    return std::string(spelling.substr(name.size() + 1));
}

}  // namespace

std::unique_ptr<Router> makeLinkerdRouter(std::string_view) {
    return std::make_unique<SmiRouter>("linkerd", "split.smi-spec.io/v1alpha1", "linkerd");
}

std::unique_ptr<Router> makeSmiV1alpha1Router(std::string_view spelling) {
    return std::make_unique<SmiRouter>("smi:v1alpha1", "split.smi-spec.io/v1alpha1",
                                       meshOf(spelling, "smi:v1alpha1"));
}

std::unique_ptr<Router> makeSmiV1alpha2Router(std::string_view spelling) {
    return std::make_unique<SmiRouter>("smi:v1alpha2", "split.smi-spec.io/v1alpha2",
                                       meshOf(spelling, "smi:v1alpha2"));
}

}  // namespace sluice::router
