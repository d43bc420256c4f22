// The target and primary Deployments: template hash, the primary as a copy of the target, and
// readiness as the engine needs it.
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

}  // namespace

std::string podTemplateHash(const json& workload) {
    static const json::json_pointer kTemplate("/spec/template");
    if (!workload.is_object() || !workload.contains(kTemplate)) return "";
    // nlohmann::json keeps object keys sorted: dump() is canonical.
    const std::string text = workload.at(kTemplate).dump();
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
        {"kind", "Deployment"},
        {"metadata",
         {{"name", primaryName}, {"namespace", meta.value("namespace", "")}, {"labels", labels}}}};
    if (!annotations.empty()) out["metadata"]["annotations"] = annotations;

    json pspec = json::object();
    for (const char* field :
         {"minReadySeconds", "revisionHistoryLimit", "strategy", "progressDeadlineSeconds"}) {
        if (spec.contains(field)) pspec[field] = spec[field];
    }
    pspec["replicas"] = replicas;
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
    pspec["template"] = std::move(tmpl);
    out["spec"] = std::move(pspec);
    return out;
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

}  // namespace detail

}  // namespace sluice::canarycontroller
