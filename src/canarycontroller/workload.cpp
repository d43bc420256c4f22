// The target and primary workloads (Deployments or DaemonSets): template hash, the primary as a
// copy of the target, scaling the target, and readiness as the engine needs it.
#include <openssl/evp.h>

#include <stdexcept>

#include "impl.h"
#include "sluice/canarycontroller/controller.h"

namespace sluice::canarycontroller {

using nlohmann::json;

namespace {

// Annotations and labels of other controllers that must not follow the template to the
// primary: the Application controller would otherwise see the primary as its own object.
const char* const kDroppedAnnotations[] = {
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "sluice.io/tracking-id",
    "argocd.argoproj.io/tracking-id",
    "sluice.io/sync-wave",
    "argocd.argoproj.io/sync-wave",
    "sluice.io/sync-options",
    "argocd.argoproj.io/sync-options",
};
const char* const kDroppedLabels[] = {
    "app.kubernetes.io/instance",
};

int64_t intAt(const json& obj, const json::json_pointer& ptr, int64_t fallback) {
    if (!obj.contains(ptr)) return fallback;
    const json& v = obj.at(ptr);
    return v.is_number_integer() ? v.get<int64_t>() : fallback;
}

const json::json_pointer kNodeSelector("/spec/nodeSelector");

// Removes the scale-to-zero node selector from a pod template (and the node selector it leaves
// empty, which the API server would not have kept either).
void removeScaleToZero(json& tmpl) {
    if (!tmpl.is_object() || !tmpl.contains(kNodeSelector)) return;
    json& selector = tmpl.at(kNodeSelector);
    if (!selector.is_object() || !selector.contains(kScaleToZeroNodeSelector)) return;
    selector.erase(kScaleToZeroNodeSelector);
    if (selector.empty()) tmpl.at(kNodeSelector.parent_pointer()).erase("nodeSelector");
}

// The primary copy of a target of `kind`: its `specFields` as they are, a selector and pod
// labels saying `<label>: <value>-primary`, without other controllers' tracking metadata.
json primaryFor(const json& target, const std::string& kind, const std::string& primaryName,
                const std::string& label, const std::string& value,
                std::initializer_list<const char*> specFields) {
    const std::string primaryValue = value + "-primary";
    const json& meta = target.value("metadata", json::object());
    const json& spec = target.value("spec", json::object());

    json labels = meta.value("labels", json::object());
    for (const char* l : kDroppedLabels) labels.erase(l);
    labels[label] = primaryValue;
    json annotations = meta.value("annotations", json::object());
    for (const char* a : kDroppedAnnotations) annotations.erase(a);

    json out = {
        {"apiVersion", "apps/v1"},
        {"kind", kind},
        {"metadata",
         {{"name", primaryName}, {"namespace", meta.value("namespace", "")}, {"labels", labels}}}};
    if (!annotations.empty()) out["metadata"]["annotations"] = annotations;

    json pspec = json::object();
    for (const char* field : specFields) {
        if (spec.contains(field)) pspec[field] = spec[field];
    }
    pspec["selector"] = {{"matchLabels", {{label, primaryValue}}}};
    json tmpl = spec.value("template", json::object());
    if (!tmpl.is_object()) tmpl = json::object();
    if (!tmpl.contains("metadata") || !tmpl["metadata"].is_object())
        tmpl["metadata"] = json::object();
    json& tmeta = tmpl["metadata"];
    if (!tmeta.contains("labels") || !tmeta["labels"].is_object()) tmeta["labels"] = json::object();
    for (const char* l : kDroppedLabels) tmeta["labels"].erase(l);
    tmeta["labels"][label] = primaryValue;
    if (tmeta.contains("annotations") && tmeta["annotations"].is_object()) {
        for (const char* a : kDroppedAnnotations) tmeta["annotations"].erase(a);
    }
    // The target at rest runs nowhere; the primary must run where the target would.
    removeScaleToZero(tmpl);
    pspec["template"] = std::move(tmpl);
    out["spec"] = std::move(pspec);
    return out;
}

}  // namespace

std::string podTemplateHash(const json& workload) {
    static const json::json_pointer kTemplate("/spec/template");
    if (!workload.is_object() || !workload.contains(kTemplate)) return "";
    // A DaemonSet target scaled to zero is the same revision: its scale-to-zero node selector
    // is not part of the template the Canary analyses.
    json tmpl = workload.at(kTemplate);
    removeScaleToZero(tmpl);
    // nlohmann::json keeps object keys sorted: dump() is canonical.
    const std::string text = tmpl.dump();
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed");
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < 8 && i < len; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0xf];
    }
    return out;
}

json primaryDeploymentFor(const json& target, const std::string& primaryName,
                          const std::string& label, const std::string& value, int replicas) {
    json out = primaryFor(
        target, "Deployment", primaryName, label, value,
        {"minReadySeconds", "revisionHistoryLimit", "strategy", "progressDeadlineSeconds"});
    out["spec"]["replicas"] = replicas;
    return out;
}

json primaryDaemonSetFor(const json& target, const std::string& primaryName,
                         const std::string& label, const std::string& value) {
    return primaryFor(target, "DaemonSet", primaryName, label, value,
                      {"minReadySeconds", "revisionHistoryLimit", "updateStrategy"});
}

namespace detail {

canaryengine::WorkloadObservation observeDeployment(const std::optional<json>& deployment,
                                                    int readyThreshold) {
    canaryengine::WorkloadObservation w;
    if (!deployment) return w;
    const json& d = *deployment;
    w.exists = true;
    const int64_t desired = intAt(d, json::json_pointer("/spec/replicas"), 1);
    const int64_t generation = intAt(d, json::json_pointer("/metadata/generation"), 0);
    const int64_t observed = intAt(d, json::json_pointer("/status/observedGeneration"), -1);
    const int64_t replicas = intAt(d, json::json_pointer("/status/replicas"), 0);
    const int64_t updated = intAt(d, json::json_pointer("/status/updatedReplicas"), 0);
    const int64_t ready = intAt(d, json::json_pointer("/status/readyReplicas"), 0);
    const int64_t available = intAt(d, json::json_pointer("/status/availableReplicas"), 0);
    w.replicas = static_cast<int>(desired);
    w.readyReplicas = static_cast<int>(ready);
    // kubectl rollout status: the controller saw this generation, every desired replica runs
    // the new template, no old replica is left, and (Flagger's ready thresholds) enough of
    // them are ready and available: all by default.
    const int64_t needed =
        canaryengine::readyReplicasRequired(static_cast<int>(desired), readyThreshold);
    w.ready = observed >= generation && updated >= desired && ready >= needed &&
              available >= needed && replicas <= updated;
    return w;
}

int specReplicas(const json& deployment) {
    return static_cast<int>(intAt(deployment, json::json_pointer("/spec/replicas"), 1));
}

canaryengine::WorkloadObservation observeDaemonSet(const std::optional<json>& daemonSet,
                                                   int readyThreshold) {
    canaryengine::WorkloadObservation w;
    if (!daemonSet) return w;
    const json& d = *daemonSet;
    w.exists = true;
    // A DaemonSet's replicas are the nodes it schedules onto: none for a target scaled to zero.
    const int64_t desired = intAt(d, json::json_pointer("/status/desiredNumberScheduled"), 0);
    const int64_t generation = intAt(d, json::json_pointer("/metadata/generation"), 0);
    const int64_t observed = intAt(d, json::json_pointer("/status/observedGeneration"), -1);
    const int64_t updated = intAt(d, json::json_pointer("/status/updatedNumberScheduled"), 0);
    const int64_t ready = intAt(d, json::json_pointer("/status/numberReady"), 0);
    const int64_t available = intAt(d, json::json_pointer("/status/numberAvailable"), 0);
    w.replicas = static_cast<int>(desired);
    w.readyReplicas = static_cast<int>(ready);
    // kubectl rollout status (and Flagger): the controller saw this generation and every node
    // runs the new template; the ready thresholds apply to the ready and available pods as
    // they do to a Deployment's replicas.
    const int64_t needed =
        canaryengine::readyReplicasRequired(static_cast<int>(desired), readyThreshold);
    w.ready =
        observed >= generation && updated >= desired && ready >= needed && available >= needed;
    return w;
}

bool isDaemonSet(const canaryengine::ObjectRef& targetRef) {
    return targetRef.kind == "DaemonSet";
}

const kube::GroupVersionKind& workloadGvk(const canaryengine::ObjectRef& targetRef) {
    static const kube::GroupVersionKind kDeployment{"apps", "v1", "Deployment"};
    static const kube::GroupVersionKind kDaemonSet{"apps", "v1", "DaemonSet"};
    return isDaemonSet(targetRef) ? kDaemonSet : kDeployment;
}

canaryengine::WorkloadObservation observeWorkload(const canaryengine::ObjectRef& targetRef,
                                                  const std::optional<json>& workload,
                                                  int readyThreshold) {
    return isDaemonSet(targetRef) ? observeDaemonSet(workload, readyThreshold)
                                  : observeDeployment(workload, readyThreshold);
}

std::optional<json> scalePatch(const canaryengine::ObjectRef& targetRef, const json& target,
                               int replicas) {
    if (!isDaemonSet(targetRef)) {
        static const json::json_pointer kReplicas("/spec/replicas");
        if (target.contains(kReplicas) && target.at(kReplicas) == replicas) return std::nullopt;
        return json{{"spec", {{"replicas", replicas}}}};
    }
    // A DaemonSet has no replicas: at zero it selects a node label no node has, as Flagger's
    // scale-to-zero node selector does, and any other count removes that selector again.
    static const json::json_pointer kSelector("/spec/template/spec/nodeSelector");
    const bool atZero = target.contains(kSelector) && target.at(kSelector).is_object() &&
                        target.at(kSelector).contains(kScaleToZeroNodeSelector);
    if (atZero == (replicas == 0)) return std::nullopt;
    return json{{"spec",
                 {{"template",
                   {{"spec",
                     {{"nodeSelector",
                       {{kScaleToZeroNodeSelector, replicas == 0 ? json("true") : json()}}}}}}}}}};
}

}  // namespace detail

}  // namespace sluice::canarycontroller
