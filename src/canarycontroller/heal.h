#pragma once
// Healing a Canary's routing at rest, as Flagger reconciles its router objects on every loop:
// every object the router builds for the weights to keep (the generated Services and the
// router's own objects) is compared with the live one, and only the missing ones and those whose
// fields the router sets differ are re-applied (server-side apply, forced). Fields the router's
// object does not set (API server defaults, other controllers' fields) are never compared:
// desired must be a subset of live (diff::compare, the drift comparison of Applications).
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/kube/client.h"
#include "sluice/router/router.h"

namespace sluice::canarycontroller::detail {

// One routing object that was re-applied and why.
struct RestoredObject {
    std::string object;  // "VirtualNode test/podinfo-canary"
    std::string found;   // "missing", ".spec.routes differs", ...
};

struct RouteHealing {
    std::vector<RestoredObject> restored;  // in apply order; empty: nothing was written
    // "VirtualNode test/podinfo-canary missing; HTTPProxy test/podinfo with .spec... changed"
    std::string found() const;
};

// Lets the caller adjust the context the objects are built from once the live weights object
// is known (nullptr: it does not exist); session affinity keeps the live primary cookie.
using AdjustContext =
    std::function<void(router::RouteContext& ctx, const nlohmann::json* liveWeightsObject)>;

// Reads the router's inputs and each desired object (one GET each), then applies only the
// objects that are missing or differ. Throws RouterError when the objects cannot be built, the
// client's errors for anything but a missing object.
RouteHealing healRouting(kube::KubeClient& client, const router::Router& router,
                         const router::RouteContext& ctx, const router::Weights& weights,
                         const std::string& fieldManager, const AdjustContext& adjust = nullptr);

// The value of the cookie `name` that `live` sets or matches ("name=<letters>" in any of its
// strings, e.g. a Set-Cookie header or a Cookie regex), as "name=<letters>"; nullopt when none.
std::optional<std::string> cookieIn(const nlohmann::json& live, const std::string& name);

// What differs between a desired routing object and the live one ("missing", or the paths of
// the fields the desired object sets that live does not have the same); "" when nothing does.
std::string routeObjectDrift(const nlohmann::json& desired, const nlohmann::json* live);

}  // namespace sluice::canarycontroller::detail
