#pragma once
// The thin layer between the router builders and the cluster: reads a router's inputs, applies
// the desired objects with server-side apply as the Canary's controller-owned children, and
// reads the live weights back.
#include <optional>
#include <string>
#include <vector>

#include "sluice/kube/client.h"
#include "sluice/router/router.h"

namespace sluice::router {

inline constexpr const char* kFieldManager = "sluice";

// The owner reference that makes the Canary the controller of a generated object (garbage
// collected with it; blockOwnerDeletion so foreground deletion of the Canary waits for it).
// Throws RouterError when ctx has no Canary uid.
nlohmann::json ownerReference(const RouteContext& ctx);
// The object with metadata.namespace and the Canary's owner reference set (other owner
// references are kept; an older reference to the same Canary is replaced).
kube::Object withOwner(kube::Object object, const RouteContext& ctx);

struct ReconcileOptions {
    std::string fieldManager = kFieldManager;
    bool dryRun = false;
};

struct ReconcileResult {
    std::vector<kube::Object> applied;  // as the server answered, in apply order
    Weights weights;                    // read back from the applied weights object
};

// The live objects named by router.inputs(ctx). Throws RouterError naming a missing input,
// kube::ApiError/TransportError for anything else.
std::vector<kube::Object> readInputs(kube::KubeClient& client, const Router& router,
                                     const RouteContext& ctx);

// Builds every desired object (Services and the router's objects) for these weights and
// server-side-applies each with force: Sluice owns these objects, so fields someone else
// changed (weights edited by hand, a selector switched) are taken back, which is the
// self-healing. Throws RouterError (nothing applied when building fails) or the client's
// errors (objects before the failing one stay applied; re-running converges).
ReconcileResult reconcileRoutes(kube::KubeClient& client, const Router& router,
                                const RouteContext& ctx, const Weights& weights,
                                const ReconcileOptions& options = {});

// The weights the cluster routes by now; nullopt when the weights object does not exist.
// Throws RouterError when it exists in a shape the router does not recognise.
std::optional<Weights> readLiveWeights(kube::KubeClient& client, const Router& router,
                                       const RouteContext& ctx);

}  // namespace sluice::router
