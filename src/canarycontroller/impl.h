#pragma once
// CanaryController internals shared by its source files.
#include <optional>

#include <nlohmann/json.hpp>

#include "sluice/canary/engine.h"

namespace sluice::canarycontroller::detail {

// Existence, desired and ready replicas, and rollout completion of a Deployment (nullopt: it
// does not exist).
canary::WorkloadObservation observeDeployment(const std::optional<nlohmann::json>& deployment);
// spec.replicas (1 when unset).
int specReplicas(const nlohmann::json& deployment);

}  // namespace sluice::canarycontroller::detail
