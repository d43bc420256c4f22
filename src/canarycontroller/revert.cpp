// revertOnDeletion: the finalizer on such a Canary, and what deleting it does to the target
// and the routing (canaryengine::revertStep decides, this carries it out).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "impl.h"
#include "sluice/router/apply.h"
#include "sluice/router/router.h"

namespace sluice::canarycontroller::detail {

using nlohmann::json;

namespace {

const kube::GroupVersionKind kCanaryGvk{"sluice.io", "v1alpha1", "Canary"};
const kube::GroupVersionKind kServiceGvk{"", "v1", "Service"};

std::optional<json> getOptional(kube::KubeClient& client, const kube::GroupVersionKind& gvk,
                                const std::string& ns, const std::string& name) {
    try {
        return client.get(gvk, ns, name);
    } catch (const kube::ApiError& e) {
        if (e.isNotFound()) return std::nullopt;
        throw;
    }
}

json finalizersOf(const json& canary) {
    static const json::json_pointer kFinalizers("/metadata/finalizers");
    if (!canary.contains(kFinalizers) || !canary.at(kFinalizers).is_array()) return json::array();
    return canary.at(kFinalizers);
}

bool wantsRevert(const json& canary) {
    static const json::json_pointer kRevert("/spec/revertOnDeletion");
    return canary.contains(kRevert) && canary.at(kRevert) == true;
}

// A JSON patch guarded by a test, so a concurrent change of the list is never lost: a failed
// test is an error, and the reconcile retries on a fresh read.
void patchFinalizers(kube::KubeClient& client, const json& canary, const json& ops) {
    kube::PatchOptions po;
    po.metadataOnly = true;
    client.patch(kCanaryGvk, kube::namespaceOf(canary), kube::nameOf(canary),
                 kube::PatchType::JsonPatch, ops.dump(), po);
}

void addFinalizer(kube::KubeClient& client, const json& cached) {
    const json fresh = client.get(kCanaryGvk, kube::namespaceOf(cached), kube::nameOf(cached));
    const json list = finalizersOf(fresh);
    if (std::find(list.begin(), list.end(), canaryengine::kRevertFinalizer) != list.end()) return;
    json test = {{"op", "test"},
                 {"path", "/metadata/resourceVersion"},
                 {"value", kube::resourceVersionOf(fresh)}};
    json add = list.empty() ? json{{"op", "add"},
                                   {"path", "/metadata/finalizers"},
                                   {"value", {canaryengine::kRevertFinalizer}}}
                            : json{{"op", "add"},
                                   {"path", "/metadata/finalizers/-"},
                                   {"value", canaryengine::kRevertFinalizer}};
    patchFinalizers(client, fresh, json::array({test, add}));
    spdlog::info("canary {}/{}: added finalizer {}", kube::namespaceOf(fresh), kube::nameOf(fresh),
                 canaryengine::kRevertFinalizer);
}

void removeFinalizer(kube::KubeClient& client, const json& cached) {
    std::optional<json> fresh =
        getOptional(client, kCanaryGvk, kube::namespaceOf(cached), kube::nameOf(cached));
    if (!fresh) return;
    const json list = finalizersOf(*fresh);
    auto it = std::find(list.begin(), list.end(), canaryengine::kRevertFinalizer);
    if (it == list.end()) return;
    const std::string path = "/metadata/finalizers/" + std::to_string(it - list.begin());
    patchFinalizers(
        client, *fresh,
        json::array({{{"op", "test"}, {"path", path}, {"value", canaryengine::kRevertFinalizer}},
                     {{"op", "remove"}, {"path", path}}}));
    spdlog::info("canary {}/{}: removed finalizer {}", kube::namespaceOf(*fresh),
                 kube::nameOf(*fresh), canaryengine::kRevertFinalizer);
}

}  // namespace

bool hasRevertFinalizer(const json& canary) {
    const json list = finalizersOf(canary);
    return std::find(list.begin(), list.end(), canaryengine::kRevertFinalizer) != list.end();
}

void syncRevertFinalizer(kube::KubeClient& client, const json& canary) {
    const bool want = wantsRevert(canary);
    if (want == hasRevertFinalizer(canary)) return;
    if (want) {
        addFinalizer(client, canary);
    } else {
        removeFinalizer(client, canary);
    }
}

struct Reverter {
    const RevertOptions& o;
    const json& canary;
    const std::string ns = kube::namespaceOf(canary);

    void event(const canaryengine::Event& e) {
        spdlog::info("canary {}/{}: {} {}: {}", ns, kube::nameOf(canary),
                     canaryengine::toString(e.type), e.reason, e.message);
        o.events.record(canary,
                        e.type == canaryengine::EventType::Warning ? kube::EventType::Warning
                                                                   : kube::EventType::Normal,
                        e.reason, e.message);
    }

    void scale(const canaryengine::ObjectRef& targetRef, const json& target, int replicas) {
        std::optional<json> patch = scalePatch(targetRef, target, replicas);
        if (!patch) return;
        kube::PatchOptions po;
        po.fieldManager = o.fieldManager;
        o.client.patch(workloadGvk(targetRef), ns, targetRef.name, kube::PatchType::Merge,
                       patch->dump(), po);
    }

    // All traffic to the target's pods while the Canary's routing objects still exist, then
    // the apex Service, freed from the Canary so that it outlives it, selects them: every
    // other object the Canary made (primary, routes, primary/canary Services) goes with it.
    // Nothing to do when the Canary never made an apex Service.
    void routeToTarget(const canaryengine::CanarySpec& spec, const json& target) {
        std::optional<json> apex = getOptional(o.client, kServiceGvk, ns, spec.apexServiceName());
        if (!apex) return;
        const auto& labels =
            o.selectorLabels.empty() ? router::defaultSelectorLabels() : o.selectorLabels;
        auto selector = router::selectorOf(target, labels);
        if (!selector) {
            // Nothing to point the apex Service at: it goes with the Canary, rather than the
            // deletion being held by a target the Canary could never have routed to.
            spdlog::warn("canary {}/{}: target has none of the selector labels: not routing to it",
                         ns, kube::nameOf(canary));
            return;
        }
        try {
            router::RouteContext ctx = router::makeRouteContext(canary, spec, *selector);
            auto r = router::makeRouter(router::providerOf(spec, o.defaultProvider));
            router::ReconcileOptions ro;
            ro.fieldManager = o.fieldManager;
            router::reconcileRoutes(o.client, *r, ctx, router::Weights{0, 100}, ro);
        } catch (const router::RouterError& e) {
            // The apex Service below still routes to the target once the routes are gone.
            spdlog::warn("canary {}/{}: routing all traffic to the target: {}", ns,
                         kube::nameOf(canary), e.what());
        }
        apex = getOptional(o.client, kServiceGvk, ns, spec.apexServiceName());
        if (!apex) return;
        json owners = json::array();
        static const json::json_pointer kOwners("/metadata/ownerReferences");
        if (apex->contains(kOwners) && apex->at(kOwners).is_array()) {
            for (const json& ref : apex->at(kOwners))
                if (ref.value("uid", "") != kube::uidOf(canary)) owners.push_back(ref);
        }
        json patch = {{"metadata", {{"ownerReferences", owners.empty() ? json() : owners}}},
                      {"spec", {{"selector", {{selector->label, selector->value}}}}}};
        kube::PatchOptions po;
        po.fieldManager = o.fieldManager;
        o.client.patch(kServiceGvk, ns, spec.apexServiceName(), kube::PatchType::Merge,
                       patch.dump(), po);
    }

    std::chrono::seconds run() {
        // The cache may still show the Canary after its finalizer came off (or after it went):
        // reverting again would re-apply the apex Service with an owner reference to a Canary
        // that is gone, and the garbage collector would delete the Service.
        const auto fresh = getOptional(o.client, kCanaryGvk, ns, kube::nameOf(canary));
        if (!fresh || kube::uidOf(*fresh) != kube::uidOf(canary)) return std::chrono::seconds(0);
        const json finalizers = finalizersOf(*fresh);
        if (std::find(finalizers.begin(), finalizers.end(), canaryengine::kRevertFinalizer) ==
            finalizers.end())
            return std::chrono::seconds(0);
        canaryengine::SpecParseResult parsed =
            canaryengine::parseCanarySpec(canary.value("spec", json::object()));
        const canaryengine::CanarySpec& spec = parsed.spec;
        if (!spec.revertOnDeletion || spec.targetRef.name.empty()) {
            removeFinalizer(o.client, canary);
            return std::chrono::seconds(0);
        }
        const kube::GroupVersionKind& gvk = workloadGvk(spec.targetRef);
        auto target = getOptional(o.client, gvk, ns, spec.targetRef.name);
        auto primary = getOptional(o.client, gvk, ns, spec.primaryName());
        static const json::json_pointer kDeleted("/metadata/deletionTimestamp");
        std::optional<canaryengine::Time> deletedAt;
        if (canary.contains(kDeleted) && canary.at(kDeleted).is_string())
            deletedAt = canaryengine::parseTimestamp(canary.at(kDeleted).get<std::string>());
        const canaryengine::RevertStep step = canaryengine::revertStep(
            spec, observeWorkload(spec.targetRef, target, spec.analysis.canaryReadyThreshold),
            observeWorkload(spec.targetRef, primary, spec.analysis.primaryReadyThreshold),
            deletedAt.value_or(o.now), o.now);
        if (step.scaleTarget) scale(spec.targetRef, *target, *step.scaleTarget);
        if (step.routeToTarget) routeToTarget(spec, *target);
        for (const canaryengine::Event& e : step.events) event(e);
        if (step.removeFinalizer) removeFinalizer(o.client, canary);
        return step.requeueAfter;
    }
};

std::chrono::seconds revertOnDeletion(const RevertOptions& options, const json& canary) {
    return Reverter{options, canary}.run();
}

}  // namespace sluice::canarycontroller::detail
