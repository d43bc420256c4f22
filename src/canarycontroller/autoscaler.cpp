// spec.autoscalerRef: the primary's copy of the target's autoscaler (see autoscaler.h).
#include "autoscaler.h"

namespace sluice::canarycontroller::detail {

using nlohmann::json;

namespace {

// Metadata of other controllers that must not follow the autoscaler to its copy: an
// Application would see the copy as its own (and prune it), and a paused target ScaledObject
// would pause the primary's too.
const char* const kDroppedAnnotations[] = {
    "kubectl.kubernetes.io/last-applied-configuration",
    "sluice.io/tracking-id",
    "argocd.argoproj.io/tracking-id",
    "sluice.io/sync-wave",
    "argocd.argoproj.io/sync-wave",
    "sluice.io/sync-options",
    "argocd.argoproj.io/sync-options",
    kPausedReplicasAnnotation,
    "autoscaling.keda.sh/paused",
};
const char* const kDroppedLabels[] = {
    "app.kubernetes.io/instance",
};

json filtered(const json& meta, const char* key, const auto& dropped) {
    json out = meta.value(key, json::object());
    if (!out.is_object()) return json::object();
    for (const char* k : dropped) out.erase(k);
    return out;
}

void applyReplicaBounds(json& spec, const canaryengine::AutoscalerRef& ref, const char* minKey,
                        const char* maxKey) {
    if (ref.primaryMinReplicas) spec[minKey] = *ref.primaryMinReplicas;
    if (ref.primaryMaxReplicas) spec[maxKey] = *ref.primaryMaxReplicas;
}

// KEDA: the triggers' queries for the primary, and no HPA name of the target's (KEDA would
// find two ScaledObjects claiming one HPA).
void adaptScaledObjectSpec(json& spec, const canaryengine::CanarySpec& canary) {
    const canaryengine::AutoscalerRef& ref = *canary.autoscalerRef;
    applyReplicaBounds(spec, ref, "minReplicaCount", "maxReplicaCount");
    static const json::json_pointer kHpaName("/advanced/horizontalPodAutoscalerConfig/name");
    if (spec.contains(kHpaName)) spec.at(kHpaName.parent_pointer()).erase("name");
    if (!spec.contains("triggers") || !spec["triggers"].is_array()) return;
    for (json& trigger : spec["triggers"]) {
        if (!trigger.is_object() || !trigger.contains("metadata") ||
            !trigger["metadata"].is_object())
            continue;
        json& metadata = trigger["metadata"];
        if (!ref.primaryScalerQueries.empty()) {
            // Named triggers only, as Flagger: the others keep their query.
            auto it = ref.primaryScalerQueries.find(trigger.value("name", ""));
            if (it != ref.primaryScalerQueries.end()) metadata["query"] = it->second;
        } else if (metadata.contains("query") && metadata["query"].is_string()) {
            metadata["query"] = primaryQuery(metadata["query"], canary.targetRef.name);
        }
    }
}

}  // namespace

std::optional<kube::GroupVersionKind> hpaKind(
    const std::function<bool(const kube::GroupVersionKind&)>& served) {
    for (const char* version : {"v2", "v2beta2", "v2beta1"}) {
        kube::GroupVersionKind gvk{"autoscaling", version, "HorizontalPodAutoscaler"};
        if (served(gvk)) return gvk;
    }
    return std::nullopt;
}

std::string primaryQuery(const std::string& query, const std::string& targetName) {
    if (targetName.empty()) return query;
    const std::string canary = targetName + "-canary";
    const std::string primary = targetName + "-primary";
    std::string out;
    for (std::size_t i = 0; i < query.size();) {
        if (query.compare(i, primary.size(), primary) == 0) {
            out += primary;
            i += primary.size();
        } else if (query.compare(i, canary.size(), canary) == 0) {
            out += primary;
            i += canary.size();
        } else if (query.compare(i, targetName.size(), targetName) == 0) {
            out += primary;
            i += targetName.size();
        } else {
            out += query[i++];
        }
    }
    return out;
}

json primaryAutoscalerFor(const json& targetScaler, const canaryengine::CanarySpec& spec) {
    const canaryengine::AutoscalerRef& ref = *spec.autoscalerRef;
    const json& meta = targetScaler.value("metadata", json::object());
    json out = {
        {"apiVersion", targetScaler.value("apiVersion", "")},
        {"kind", targetScaler.value("kind", ref.kind)},
        {"metadata", {{"name", ref.primaryName()}, {"namespace", meta.value("namespace", "")}}}};
    if (json labels = filtered(meta, "labels", kDroppedLabels); !labels.empty())
        out["metadata"]["labels"] = std::move(labels);
    if (json annotations = filtered(meta, "annotations", kDroppedAnnotations); !annotations.empty())
        out["metadata"]["annotations"] = std::move(annotations);

    json copy = targetScaler.value("spec", json::object());
    if (!copy.is_object()) copy = json::object();
    json scaleTargetRef = copy.value("scaleTargetRef", json::object());
    if (!scaleTargetRef.is_object()) scaleTargetRef = json::object();
    scaleTargetRef["name"] = spec.primaryName();
    if (!scaleTargetRef.contains("kind")) scaleTargetRef["kind"] = "Deployment";
    if (!scaleTargetRef.contains("apiVersion")) scaleTargetRef["apiVersion"] = "apps/v1";
    copy["scaleTargetRef"] = std::move(scaleTargetRef);
    if (ref.isScaledObject()) {
        adaptScaledObjectSpec(copy, spec);
    } else {
        applyReplicaBounds(copy, ref, "minReplicas", "maxReplicas");
    }
    out["spec"] = std::move(copy);
    return out;
}

bool appliesReplicas(const json& deployment, const std::string& manager) {
    static const json::json_pointer kEntries("/metadata/managedFields");
    static const json::json_pointer kReplicas("/fieldsV1/f:spec/f:replicas");
    if (!deployment.contains(kEntries) || !deployment.at(kEntries).is_array()) return false;
    for (const json& entry : deployment.at(kEntries)) {
        if (!entry.is_object() || entry.value("manager", "") != manager ||
            entry.value("operation", "") != "Apply" || !entry.value("subresource", "").empty())
            continue;
        if (entry.contains(kReplicas)) return true;
    }
    return false;
}

std::optional<json> scaledObjectPausePatch(const json& scaledObject, bool pause) {
    static const json::json_pointer kAnnotations("/metadata/annotations");
    const json* annotations =
        scaledObject.contains(kAnnotations) ? &scaledObject.at(kAnnotations) : nullptr;
    const bool paused = annotations && annotations->is_object() &&
                        annotations->value(kPausedReplicasAnnotation, "") == "0";
    const bool present =
        annotations && annotations->is_object() && annotations->contains(kPausedReplicasAnnotation);
    if (pause ? paused : !present) return std::nullopt;
    json value = pause ? json("0") : json();
    return json{{"metadata", {{"annotations", {{kPausedReplicasAnnotation, value}}}}}};
}

}  // namespace sluice::canarycontroller::detail
