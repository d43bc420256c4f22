#pragma once
// What every traffic router builds from: the Canary (identity and parsed spec), the pod label
// its Services select on, and the traffic split to express.
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/canaryengine/spec.h"
#include "sluice/kube/types.h"

namespace sluice::router {

// A Canary whose routing cannot be expressed (missing gatewayRefs, an Ingress without the apex
// backend, a weight the provider cannot represent, a live object in an unknown shape...).
class RouterError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Flagger's (primaryWeight, canaryWeight, mirrored): percentages that add up to 100, plus
// whether the primary's traffic is also mirrored to the canary (blue-green mirroring).
struct Weights {
    int primary = 100;
    int canary = 0;
    bool mirror = false;

    static Weights forCanary(int canaryWeight, bool mirror = false) {
        return {100 - canaryWeight, canaryWeight, mirror};
    }
    bool operator==(const Weights&) const = default;
};
std::string toString(const Weights& weights);  // "primary=90 canary=10" (+ " mirror")
// Throws RouterError unless both weights lie in 0..100 and add up to 100.
void checkPercentages(const Weights& weights);

// The pod label the generated Services select on, as Flagger finds it: the first of its
// selector labels present in the target's spec.selector.matchLabels. The primary workload's
// pods carry `label: value-primary`, the target's (canary's) pods keep `label: value`.
struct PodSelector {
    std::string label;  // e.g. "app"
    std::string value;  // e.g. "podinfo"
    std::string primaryValue() const { return value + "-primary"; }
    bool operator==(const PodSelector&) const = default;
};
// Flagger's default -selector-labels, in its order of preference.
const std::vector<std::string>& defaultSelectorLabels();
// nullopt when the workload's spec.selector.matchLabels holds none of the labels.
std::optional<PodSelector> selectorOf(
    const kube::Object& workload, const std::vector<std::string>& labels = defaultSelectorLabels());

// An object by apiVersion, kind, namespace and name.
struct ObjectRef {
    std::string apiVersion;
    std::string kind;
    std::string namespaceName;
    std::string name;
    kube::GroupVersionKind gvk() const {
        return kube::GroupVersionKind::fromApiVersion(apiVersion, kind);
    }
    std::string str() const { return kind + " " + namespaceName + "/" + name; }
    bool operator==(const ObjectRef&) const = default;
};

struct RouteContext {
    // The Canary itself: owner of every generated object.
    std::string canaryApiVersion = "sluice.io/v1alpha1";
    std::string canaryKind = "Canary";
    std::string canaryName;
    std::string namespaceName;
    std::string canaryUid;  // required for owner references (apply layer)

    canaryengine::CanarySpec spec;
    PodSelector selector;

    // Flagger's GetServiceNames: service.name, else targetRef.name; then -primary, -canary.
    std::string apexServiceName() const { return spec.apexServiceName(); }
    std::string primaryServiceName() const { return apexServiceName() + "-primary"; }
    std::string canaryServiceName() const { return apexServiceName() + "-canary"; }

    // analysis.match (Istio HTTPMatchRequests for A/B testing); an empty list when absent.
    const nlohmann::json& analysisMatch() const { return spec.analysis.match; }
    bool abTesting() const { return !analysisMatch().empty(); }
};

// From a Canary object (metadata.name/namespace/uid, apiVersion, kind, spec). Throws
// RouterError when the spec does not parse (the message lists the spec errors).
RouteContext makeRouteContext(const kube::Object& canaryObject, PodSelector selector);
// The same with the spec the caller already parsed from canaryObject (never parsed twice).
RouteContext makeRouteContext(const kube::Object& canaryObject, canaryengine::CanarySpec spec,
                              PodSelector selector);

}  // namespace sluice::router
