#include "sluice/router/apply.h"

#include "json_util.h"

namespace sluice::router {

using detail::field;
using detail::text;
using nlohmann::json;

json ownerReference(const RouteContext& ctx) {
    if (ctx.canaryUid.empty()) {
        throw RouterError("Canary " + ctx.namespaceName + "/" + ctx.canaryName +
                          " has no uid to own the routing objects");
    }
    return {{"apiVersion", ctx.canaryApiVersion},
            {"kind", ctx.canaryKind},
            {"name", ctx.canaryName},
            {"uid", ctx.canaryUid},
            {"controller", true},
            {"blockOwnerDeletion", true}};
}

kube::Object withOwner(kube::Object object, const RouteContext& ctx) {
    json owner = ownerReference(ctx);
    json& metadata = object["metadata"];
    metadata["namespace"] = ctx.namespaceName;
    json refs = json::array();
    const json& existing = field(metadata, "ownerReferences");
    for (const json& ref : existing.is_array() ? existing : json::array()) {
        if (text(ref, "uid") != ctx.canaryUid) refs.push_back(ref);
    }
    refs.push_back(std::move(owner));
    metadata["ownerReferences"] = std::move(refs);
    return object;
}

std::vector<kube::Object> readInputs(kube::KubeClient& client, const Router& router,
                                     const RouteContext& ctx) {
    std::vector<kube::Object> out;
    for (const ObjectRef& ref : router.inputs(ctx)) {
        try {
            out.push_back(client.get(ref.gvk(), ref.namespaceName, ref.name));
        } catch (const kube::ApiError& error) {
            if (!error.isNotFound()) throw;
            throw RouterError(ref.str() + " not found (needed by the " + router.provider() +
                              " router)");
        }
    }
    return out;
}

ReconcileResult reconcileRoutes(kube::KubeClient& client, const Router& router,
                                const RouteContext& ctx, const Weights& weights,
                                const ReconcileOptions& options) {
    std::vector<kube::Object> inputs = readInputs(client, router, ctx);
    std::vector<kube::Object> desired = desiredObjects(router, ctx, weights, inputs);
    // Owner references first, so a missing uid fails before anything is written.
    for (kube::Object& object : desired) object = withOwner(std::move(object), ctx);

    kube::ApplyOptions apply;
    apply.fieldManager = options.fieldManager;
    apply.force = true;
    apply.dryRun = options.dryRun;
    const ObjectRef weightsRef = router.weightsObject(ctx);
    ReconcileResult result;
    const kube::Object* weightsObject = nullptr;
    result.applied.reserve(desired.size());
    for (const kube::Object& object : desired) {
        result.applied.push_back(client.apply(object, apply));
        const kube::Object& applied = result.applied.back();
        if (text(applied, "kind") == weightsRef.kind &&
            text(field(applied, "metadata"), "name") == weightsRef.name) {
            weightsObject = &applied;
        }
    }
    if (weightsObject == nullptr) {
        throw RouterError("the " + router.provider() + " router built no " + weightsRef.str());
    }
    result.weights = router.readWeights(ctx, *weightsObject);
    return result;
}

std::optional<Weights> readLiveWeights(kube::KubeClient& client, const Router& router,
                                       const RouteContext& ctx) {
    const ObjectRef ref = router.weightsObject(ctx);
    kube::Object live;
    try {
        live = client.get(ref.gvk(), ref.namespaceName, ref.name);
    } catch (const kube::ApiError& error) {
        if (error.isNotFound()) return std::nullopt;
        throw;
    }
    return router.readWeights(ctx, live);
}

}  // namespace sluice::router
