#include "sluice/health/health.h"

#include <array>
#include <string>

namespace sluice::health {
namespace {

using nlohmann::json;

int64_t intAt(const json& obj, const json::json_pointer& p, int64_t fallback = 0) {
    if (!obj.contains(p)) return fallback;
    const json& v = obj.at(p);
    return v.is_number_integer() ? v.get<int64_t>() : fallback;
}

std::string strAt(const json& obj, const json::json_pointer& p) {
    if (!obj.contains(p)) return "";
    const json& v = obj.at(p);
    return v.is_string() ? v.get<std::string>() : "";
}

// The condition of the given type in status.conditions, or null.
const json* condition(const json& obj, const std::string& type) {
    if (!obj.contains("status") || !obj["status"].is_object()) return nullptr;
    const json& status = obj["status"];
    if (!status.contains("conditions") || !status["conditions"].is_array()) return nullptr;
    for (const auto& c : status["conditions"])
        if (c.is_object() && c.value("type", "") == type) return &c;
    return nullptr;
}

bool conditionIs(const json* c, const char* status) {
    return c && c->value("status", "") == status;
}

std::string fmt(const char* pattern, std::initializer_list<int64_t> args) {
    std::string out;
    auto it = args.begin();
    for (const char* p = pattern; *p; ++p) {
        if (p[0] == '%' && p[1] == 'd' && it != args.end()) {
            out += std::to_string(*it++);
            ++p;
        } else {
            out += *p;
        }
    }
    return out;
}

const json::json_pointer kGeneration("/metadata/generation");
const json::json_pointer kObservedGeneration("/status/observedGeneration");

bool generationObserved(const json& obj) {
    return intAt(obj, kGeneration) <= intAt(obj, kObservedGeneration);
}

Assessment deployment(const json& obj) {
    if (obj.contains("/spec/paused"_json_pointer) && obj["spec"]["paused"] == true)
        return {Status::Suspended, "Deployment is paused"};
    if (!generationObserved(obj))
        return {Status::Progressing,
                "Waiting for rollout to finish: observed deployment generation less than desired "
                "generation"};
    const json* progressing = condition(obj, "Progressing");
    if (progressing && progressing->value("reason", "") == "ProgressDeadlineExceeded")
        return {Status::Degraded, "Deployment \"" + strAt(obj, "/metadata/name"_json_pointer) +
                                      "\" exceeded its progress deadline"};
    int64_t desired = intAt(obj, "/spec/replicas"_json_pointer, 1);
    int64_t updated = intAt(obj, "/status/updatedReplicas"_json_pointer);
    int64_t replicas = intAt(obj, "/status/replicas"_json_pointer);
    int64_t available = intAt(obj, "/status/availableReplicas"_json_pointer);
    if (updated < desired)
        return {Status::Progressing,
                fmt("Waiting for rollout to finish: %d out of %d new replicas have been updated...",
                    {updated, desired})};
    if (replicas > updated)
        return {Status::Progressing,
                fmt("Waiting for rollout to finish: %d old replicas are pending termination...",
                    {replicas - updated})};
    if (available < updated)
        return {Status::Progressing,
                fmt("Waiting for rollout to finish: %d of %d updated replicas are available...",
                    {available, updated})};
    return {Status::Healthy, ""};
}

Assessment statefulSet(const json& obj) {
    if (intAt(obj, kObservedGeneration) == 0 || !generationObserved(obj))
        return {Status::Progressing, "Waiting for statefulset spec update to be observed..."};
    int64_t desired = intAt(obj, "/spec/replicas"_json_pointer, 1);
    int64_t ready = intAt(obj, "/status/readyReplicas"_json_pointer);
    if (ready < desired)
        return {Status::Progressing, fmt("Waiting for %d pods to be ready...", {desired - ready})};
    std::string strategy = strAt(obj, "/spec/updateStrategy/type"_json_pointer);
    if (strategy == "OnDelete")
        return {Status::Healthy, fmt("statefulset has %d ready pods", {ready})};
    auto partitionPtr = "/spec/updateStrategy/rollingUpdate/partition"_json_pointer;
    if (obj.contains(partitionPtr)) {
        int64_t partition = intAt(obj, partitionPtr);
        int64_t updated = intAt(obj, "/status/updatedReplicas"_json_pointer);
        if (updated < desired - partition)
            return {Status::Progressing,
                    fmt("Waiting for partitioned roll out to finish: %d out of %d new pods have "
                        "been updated...",
                        {updated, desired - partition})};
        return {Status::Healthy,
                fmt("partitioned roll out complete: %d new pods have been updated...", {updated})};
    }
    std::string current = strAt(obj, "/status/currentRevision"_json_pointer);
    std::string update = strAt(obj, "/status/updateRevision"_json_pointer);
    if (!update.empty() && current != update)
        return {Status::Progressing,
                "waiting for statefulset rolling update to complete: revision " + update};
    return {Status::Healthy, fmt("statefulset rolling update complete %d pods", {ready}) +
                                 " at revision " + current};
}

Assessment daemonSet(const json& obj) {
    if (!generationObserved(obj))
        return {Status::Progressing, "Waiting for daemon set spec update to be observed..."};
    if (strAt(obj, "/spec/updateStrategy/type"_json_pointer) == "OnDelete")
        return {Status::Healthy, "daemon set uses the OnDelete update strategy"};
    int64_t desired = intAt(obj, "/status/desiredNumberScheduled"_json_pointer);
    int64_t updated = intAt(obj, "/status/updatedNumberScheduled"_json_pointer);
    int64_t available = intAt(obj, "/status/numberAvailable"_json_pointer);
    if (updated < desired)
        return {Status::Progressing,
                fmt("Waiting for daemon set rollout to finish: %d out of %d new pods have been "
                    "updated...",
                    {updated, desired})};
    if (available < desired)
        return {Status::Progressing,
                fmt("Waiting for daemon set rollout to finish: %d of %d updated pods are "
                    "available...",
                    {available, desired})};
    return {Status::Healthy, ""};
}

Assessment replicaSet(const json& obj) {
    if (!generationObserved(obj))
        return {Status::Progressing,
                "Waiting for rollout to finish: observed replica set generation less than desired "
                "generation"};
    const json* failure = condition(obj, "ReplicaFailure");
    if (conditionIs(failure, "True")) return {Status::Degraded, failure->value("message", "")};
    int64_t desired = intAt(obj, "/spec/replicas"_json_pointer, 1);
    int64_t available = intAt(obj, "/status/availableReplicas"_json_pointer);
    if (available < desired)
        return {Status::Progressing,
                fmt("Waiting for rollout to finish: %d out of %d new replicas are available...",
                    {available, desired})};
    return {Status::Healthy, ""};
}

Assessment pod(const json& obj) {
    std::string phase = strAt(obj, "/status/phase"_json_pointer);
    std::string message = strAt(obj, "/status/message"_json_pointer);
    // Containers stuck in these states will not recover by waiting.
    static const std::array<const char*, 6> kBadWaiting = {
        "CrashLoopBackOff",           "ErrImagePull",     "ImagePullBackOff",
        "CreateContainerConfigError", "InvalidImageName", "CreateContainerError"};
    if (obj.contains("/status/containerStatuses"_json_pointer)) {
        for (const auto& cs : obj["status"]["containerStatuses"]) {
            std::string reason = cs.contains("/state/waiting/reason"_json_pointer)
                                     ? cs["state"]["waiting"].value("reason", "")
                                     : "";
            for (const char* bad : kBadWaiting)
                if (reason == bad) {
                    std::string m = cs.contains("/state/waiting/message"_json_pointer)
                                        ? cs["state"]["waiting"].value("message", "")
                                        : "";
                    return {Status::Degraded, reason + (m.empty() ? "" : ": " + m)};
                }
        }
    }
    if (phase == "Pending") return {Status::Progressing, message};
    if (phase == "Succeeded") return {Status::Healthy, message};
    if (phase == "Failed") return {Status::Degraded, message};
    if (phase == "Running") {
        std::string policy = strAt(obj, "/spec/restartPolicy"_json_pointer);
        if (policy == "Always" || policy.empty()) {
            if (conditionIs(condition(obj, "Ready"), "True")) return {Status::Healthy, message};
            return {Status::Progressing, message.empty() ? "Pod is not ready" : message};
        }
        return {Status::Progressing, message};  // a run-to-completion Pod still running
    }
    return {Status::Unknown, message};
}

bool hasLoadBalancerIngress(const json& obj) {
    auto p = "/status/loadBalancer/ingress"_json_pointer;
    return obj.contains(p) && obj.at(p).is_array() && !obj.at(p).empty();
}

Assessment service(const json& obj) {
    if (strAt(obj, "/spec/type"_json_pointer) == "LoadBalancer" && !hasLoadBalancerIngress(obj))
        return {Status::Progressing, "Waiting for the load balancer to be provisioned"};
    return {Status::Healthy, ""};
}

Assessment ingress(const json& obj) {
    if (!hasLoadBalancerIngress(obj))
        return {Status::Progressing, "Waiting for the ingress controller to publish an address"};
    return {Status::Healthy, ""};
}

Assessment pvc(const json& obj) {
    std::string phase = strAt(obj, "/status/phase"_json_pointer);
    if (phase == "Bound") return {Status::Healthy, ""};
    if (phase == "Pending") return {Status::Progressing, "Waiting for the claim to be bound"};
    if (phase == "Lost") return {Status::Degraded, "The claim lost its volume"};
    return {Status::Unknown, ""};
}

// An Argo Workflow (often a hook): done when it succeeded, failed when it failed or errored.
Assessment workflow(const json& obj) {
    const std::string phase = strAt(obj, "/status/phase"_json_pointer);
    const std::string message = strAt(obj, "/status/message"_json_pointer);
    if (phase == "Succeeded") return {Status::Healthy, message};
    if (phase == "Failed" || phase == "Error") return {Status::Degraded, message};
    return {Status::Progressing, message.empty() ? "Workflow is running" : message};
}

Assessment job(const json& obj) {
    const json* failed = condition(obj, "Failed");
    if (conditionIs(failed, "True")) return {Status::Degraded, failed->value("message", "")};
    const json* complete = condition(obj, "Complete");
    if (conditionIs(complete, "True")) return {Status::Healthy, complete->value("message", "")};
    if (obj.contains("/spec/suspend"_json_pointer) && obj["spec"]["suspend"] == true)
        return {Status::Suspended, "Job is suspended"};
    return {Status::Progressing, "Job is in progress"};
}

Assessment hpa(const json& obj) {
    // A False condition whose reason starts with "Failed" means the autoscaler cannot act.
    for (const char* type : {"AbleToScale", "ScalingActive"}) {
        const json* c = condition(obj, type);
        if (conditionIs(c, "False") && c->value("reason", "").rfind("Failed", 0) == 0)
            return {Status::Degraded, c->value("message", "")};
    }
    if (condition(obj, "AbleToScale") || intAt(obj, "/status/currentReplicas"_json_pointer) > 0)
        return {Status::Healthy, ""};
    return {Status::Progressing, "Waiting to autoscale"};
}

Assessment application(const json& obj) {
    std::string s = strAt(obj, "/status/health/status"_json_pointer);
    if (s.empty()) return {Status::Progressing, "Waiting for the application to report health"};
    return {parseStatus(s), strAt(obj, "/status/health/message"_json_pointer)};
}

Assessment canary(const json& obj) {
    std::string phase = strAt(obj, "/status/phase"_json_pointer);
    std::string message;
    if (const json* c = condition(obj, "Promoted")) message = c->value("message", "");
    if (phase == "Succeeded" || phase == "Initialized") return {Status::Healthy, message};
    if (phase == "Failed") return {Status::Degraded, message.empty() ? "Canary failed" : message};
    return {Status::Progressing,
            message.empty()
                ? (phase.empty() ? "Waiting for the canary to initialize" : "Canary is " + phase)
                : message};
}

std::string groupOf(const std::string& apiVersion) {
    auto slash = apiVersion.find('/');
    return slash == std::string::npos ? "" : apiVersion.substr(0, slash);
}

}  // namespace

const char* toString(Status s) {
    switch (s) {
        case Status::Healthy:
            return "Healthy";
        case Status::Suspended:
            return "Suspended";
        case Status::Progressing:
            return "Progressing";
        case Status::Missing:
            return "Missing";
        case Status::Degraded:
            return "Degraded";
        case Status::Unknown:
            return "Unknown";
    }
    return "Unknown";
}

Status parseStatus(const std::string& s) {
    for (Status st : {Status::Healthy, Status::Suspended, Status::Progressing, Status::Missing,
                      Status::Degraded})
        if (s == toString(st)) return st;
    return Status::Unknown;
}

bool isWorse(Status a, Status than) {
    return static_cast<int>(a) > static_cast<int>(than);
}

Status worst(Status a, Status b) {
    return isWorse(a, b) ? a : b;
}

Assessment assess(const json& obj) {
    if (obj.is_null() || !obj.is_object()) return {Status::Missing, "Resource does not exist"};
    if (obj.contains("/metadata/deletionTimestamp"_json_pointer))
        return {Status::Progressing, "Pending deletion"};
    const std::string kind = obj.value("kind", "");
    const std::string group = groupOf(obj.value("apiVersion", ""));
    if (group == "apps" || group == "extensions") {
        if (kind == "Deployment") return deployment(obj);
        if (kind == "StatefulSet") return statefulSet(obj);
        if (kind == "DaemonSet") return daemonSet(obj);
        if (kind == "ReplicaSet") return replicaSet(obj);
    }
    if (group.empty()) {
        if (kind == "Pod") return pod(obj);
        if (kind == "Service") return service(obj);
        if (kind == "PersistentVolumeClaim") return pvc(obj);
    }
    if (kind == "Ingress" && (group == "networking.k8s.io" || group == "extensions"))
        return ingress(obj);
    if (kind == "Job" && group == "batch") return job(obj);
    if (kind == "HorizontalPodAutoscaler" && group == "autoscaling") return hpa(obj);
    if (kind == "Application" && (group == "sluice.io" || group == "argoproj.io"))
        return application(obj);
    if (kind == "Canary" && (group == "sluice.io" || group == "flagger.app")) return canary(obj);
    if (kind == "Workflow" && group == "argoproj.io") return workflow(obj);
    return {Status::Healthy, ""};
}

}  // namespace sluice::health
