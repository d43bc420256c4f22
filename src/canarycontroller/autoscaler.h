#pragma once
// spec.autoscalerRef as the controller carries it out: which HorizontalPodAutoscaler version
// the cluster serves, the primary's copy of the target's autoscaler (HPA or KEDA
// ScaledObject), the primary's replicas once an autoscaler owns them, and pausing a
// ScaledObject on the target while it is scaled to zero. Pure functions, unit-tested.
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "sluice/canaryengine/spec.h"
#include "sluice/kube/types.h"

namespace sluice::canarycontroller::detail {

inline const kube::GroupVersionKind kScaledObjectGvk{"keda.sh", "v1alpha1", "ScaledObject"};
// KEDA holds a paused ScaledObject's workload at this many replicas.
inline constexpr const char* kPausedReplicasAnnotation = "autoscaling.keda.sh/paused-replicas";

// The HorizontalPodAutoscaler version to read and write: autoscaling/v2, else v2beta2, else
// v2beta1 (older clusters), the first that `served` accepts; nullopt when none is.
std::optional<kube::GroupVersionKind> hpaKind(
    const std::function<bool(const kube::GroupVersionKind&)>& served);

// A KEDA trigger's query for the primary when primaryScalerQueries names no query for it (as
// Flagger): `<target>-canary` and `<target>` become `<target>-primary`; `<target>-primary`
// stays as it is.
std::string primaryQuery(const std::string& query, const std::string& targetName);

// `<autoscalerRef.name>-primary`: the target's autoscaler (as read, any served version) scaling
// `<targetRef.name>-primary`, with primaryScalerReplicas (min/max) and, for a ScaledObject,
// primaryScalerQueries applied. Labels and annotations are copied without those of other
// controllers (an Application's tracking, KEDA's pause), so neither claims the copy.
nlohmann::json primaryAutoscalerFor(const nlohmann::json& targetScaler,
                                    const canaryengine::CanarySpec& spec);

// Whether `manager` owns a Deployment's spec.replicas through server-side apply (its
// managedFields): true until another manager (the autoscaler) has set them.
bool appliesReplicas(const nlohmann::json& deployment, const std::string& manager);

// The merge patch that pauses a ScaledObject at zero replicas (or resumes it by removing the
// pause); nullopt when it already is in that state.
std::optional<nlohmann::json> scaledObjectPausePatch(const nlohmann::json& scaledObject,
                                                     bool pause);

}  // namespace sluice::canarycontroller::detail
