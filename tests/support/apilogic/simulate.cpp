// Stand-in for kube-controller-manager and the kubelet: the status a workload ends up with once
// it is rolled out, so code under test sees objects become healthy without a real cluster.
// Zero counters are omitted, as the upstream status types serialise them (omitempty).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "apilogic/apilogic.h"

namespace sluice::apilogic {
namespace {

// k8s.io/apimachinery/pkg/util/rand.SafeEncodeString over an FNV-32a hash: the shape of
// pod-template-hash and controller revision suffixes.
std::string shortHash(const json& v) {
    std::uint32_t h = 2166136261u;
    for (unsigned char c : v.dump()) {
        h ^= c;
        h *= 16777619u;
    }
    static const char alphanums[] = "bcdfghjklmnpqrstvwxz2456789";
    std::string digits = std::to_string(h);
    std::string out;
    for (char c : digits) out += alphanums[static_cast<unsigned char>(c) % (sizeof(alphanums) - 1)];
    return out;
}

long long intAt(const json& obj, const char* section, const char* field, long long dflt) {
    auto s = obj.find(section);
    if (s == obj.end() || !s->is_object()) return dflt;
    auto f = s->find(field);
    if (f == s->end() || !f->is_number()) return dflt;
    return f->get<long long>();
}

std::string nameOf(const json& obj) {
    return obj.contains("metadata") ? obj["metadata"].value("name", "") : "";
}

long long generationOf(const json& obj) {
    return intAt(obj, "metadata", "generation", 1);
}

const json& oldStatusOf(const json& obj) {
    static const json empty = json::object();
    auto it = obj.find("status");
    return it != obj.end() && it->is_object() ? *it : empty;
}

const json* findCondition(const json& status, const std::string& type) {
    auto it = status.find("conditions");
    if (it == status.end() || !it->is_array()) return nullptr;
    for (const auto& c : *it)
        if (c.is_object() && c.value("type", "") == type) return &c;
    return nullptr;
}

// A condition whose lastTransitionTime only moves when its status changes. `updateField`
// names the per-kind "last touched" timestamp (lastUpdateTime, lastProbeTime) or is empty;
// it moves when status or reason change, or when the controller saw a new generation.
json condition(const json& oldStatus, const std::string& type, const std::string& status,
               const std::string& reason, const std::string& message, const std::string& now,
               const std::string& updateField, bool generationChanged) {
    const json* old = findCondition(oldStatus, type);
    bool sameStatus = old && old->value("status", "") == status;
    json c = {{"type", type}, {"status", status}};
    if (!updateField.empty()) {
        bool keep = sameStatus && old->value("reason", "") == reason && !generationChanged &&
                    old->contains(updateField);
        c[updateField] = keep ? (*old)[updateField] : json(now);
    }
    c["lastTransitionTime"] = sameStatus && old->contains("lastTransitionTime")
                                  ? (*old)["lastTransitionTime"]
                                  : json(now);
    c["reason"] = reason;
    c["message"] = message;
    return c;
}

void setCount(json& status, const char* field, long long v) {
    if (v != 0) status[field] = v;
}

json deploymentStatus(const json& obj, const std::string& now) {
    const json& old = oldStatusOf(obj);
    long long gen = generationOf(obj);
    long long n = intAt(obj, "spec", "replicas", 1);
    bool newGen = old.value("observedGeneration", 0LL) != gen;
    std::string rs = nameOf(obj) + "-" +
                     shortHash(obj.value("spec", json::object()).value("template", json::object()));
    json st = {{"observedGeneration", gen}};
    setCount(st, "replicas", n);
    setCount(st, "updatedReplicas", n);
    setCount(st, "readyReplicas", n);
    setCount(st, "availableReplicas", n);
    st["conditions"] = json::array(
        {condition(old, "Available", "True", "MinimumReplicasAvailable",
                   "Deployment has minimum availability.", now, "lastUpdateTime", false),
         condition(old, "Progressing", "True", "NewReplicaSetAvailable",
                   "ReplicaSet \"" + rs + "\" has successfully progressed.", now, "lastUpdateTime",
                   newGen)});
    return st;
}

json replicaSetStatus(const json& obj) {
    long long n = intAt(obj, "spec", "replicas", 1);
    json st = {{"replicas", n}};
    setCount(st, "fullyLabeledReplicas", n);
    setCount(st, "readyReplicas", n);
    setCount(st, "availableReplicas", n);
    st["observedGeneration"] = generationOf(obj);
    return st;
}

json statefulSetStatus(const json& obj) {
    long long n = intAt(obj, "spec", "replicas", 1);
    std::string rev =
        nameOf(obj) + "-" +
        shortHash(obj.value("spec", json::object()).value("template", json::object()));
    json st = {{"observedGeneration", generationOf(obj)}, {"replicas", n}};
    setCount(st, "readyReplicas", n);
    setCount(st, "currentReplicas", n);
    setCount(st, "updatedReplicas", n);
    setCount(st, "availableReplicas", n);
    st["currentRevision"] = rev;
    st["updateRevision"] = rev;
    st["collisionCount"] = 0;
    return st;
}

// The labels of the test cluster's one node.
bool nodeHasLabel(const std::string& key, const json& value) {
    static const std::map<std::string, std::string> kNodeLabels = {
        {"kubernetes.io/arch", "amd64"},
        {"kubernetes.io/hostname", "node-1"},
        {"kubernetes.io/os", "linux"},
    };
    auto it = kNodeLabels.find(key);
    return it != kNodeLabels.end() && value.is_string() && value.get<std::string>() == it->second;
}

json daemonSetStatus(const json& obj) {
    // The test cluster has one node: one pod is desired, none when the pod template's
    // nodeSelector names a label the node does not have (how a DaemonSet is "scaled to zero").
    long long n = 1;
    const json::json_pointer selector("/spec/template/spec/nodeSelector");
    if (obj.contains(selector) && obj.at(selector).is_object()) {
        for (const auto& [key, value] : obj.at(selector).items())
            if (!nodeHasLabel(key, value)) n = 0;
    }
    return {{"currentNumberScheduled", n},
            {"desiredNumberScheduled", n},
            {"numberAvailable", n},
            {"numberMisscheduled", 0},
            {"numberReady", n},
            {"observedGeneration", generationOf(obj)},
            {"updatedNumberScheduled", n}};
}

// Whether the simulated kubelet's pods of this template fail: a container whose command and
// args are `false`, or end in `exit N` with N other than 0 (`sh -c "exit 1"`). Everything else
// succeeds.
bool podTemplateFails(const json& job) {
    const json::json_pointer containers("/spec/template/spec/containers");
    if (!job.contains(containers) || !job.at(containers).is_array()) return false;
    for (const auto& c : job.at(containers)) {
        std::vector<std::string> words;
        for (const char* key : {"command", "args"})
            if (c.contains(key) && c[key].is_array())
                for (const auto& w : c[key])
                    if (w.is_string()) words.push_back(w.get<std::string>());
        if (words.size() == 1 && words[0] == "false") return true;
        if (!words.empty()) {
            const std::string& last = words.back();
            if (last.rfind("exit ", 0) == 0 && last != "exit 0") return true;
        }
    }
    return false;
}

json jobStatus(const json& obj, const std::string& now) {
    const json& old = oldStatusOf(obj);
    json st = json::object();
    st["startTime"] = old.contains("startTime") ? old["startTime"] : json(now);
    bool suspended = obj.contains("spec") && obj["spec"].value("suspend", false);
    if (suspended) {
        st["conditions"] = json::array({condition(old, "Suspended", "True", "JobSuspended",
                                                  "Job suspended", now, "lastProbeTime", false)});
        st.erase("startTime");
        return st;
    }
    if (podTemplateFails(obj)) {
        // As the Job controller reports it once backoffLimit (default 6) retries failed.
        st["failed"] = intAt(obj, "spec", "backoffLimit", 6) + 1;
        st["ready"] = 0;
        st["terminating"] = 0;
        st["uncountedTerminatedPods"] = json::object();
        st["conditions"] = json::array(
            {condition(old, "FailureTarget", "True", "BackoffLimitExceeded",
                       "Job has reached the specified backoff limit", now, "lastProbeTime", false),
             condition(old, "Failed", "True", "BackoffLimitExceeded",
                       "Job has reached the specified backoff limit", now, "lastProbeTime",
                       false)});
        return st;
    }
    long long completions = intAt(obj, "spec", "completions", 1);
    std::string done =
        old.contains("completionTime") ? old["completionTime"].get<std::string>() : now;
    st["completionTime"] = done;
    st["succeeded"] = completions;
    st["ready"] = 0;
    st["terminating"] = 0;
    st["uncountedTerminatedPods"] = json::object();
    st["conditions"] = json::array(
        {condition(old, "SuccessCriteriaMet", "True", "CompletionsReached",
                   "Reached expected number of succeeded pods", now, "lastProbeTime", false),
         condition(old, "Complete", "True", "CompletionsReached",
                   "Reached expected number of succeeded pods", now, "lastProbeTime", false)});
    return st;
}

json podStatus(const json& obj, const std::string& now) {
    const json& old = oldStatusOf(obj);
    std::string start = old.contains("startTime") ? old["startTime"].get<std::string>() : now;
    std::uint32_t h = 0;
    for (unsigned char c : nameOf(obj)) h = h * 31 + c;
    std::string ip = "10.244.0." + std::to_string(2 + h % 250);
    json containers = json::array();
    json specContainers =
        obj.contains("spec") ? obj["spec"].value("containers", json::array()) : json::array();
    for (const auto& c : specContainers) {
        std::string name = c.value("name", "");
        std::string startedAt = start;
        if (const json* olds = nullptr; old.contains("containerStatuses")) {
            for (const auto& oc : old["containerStatuses"])
                if (oc.value("name", "") == name) olds = &oc;
            if (olds && olds->contains("state") && (*olds)["state"].contains("running"))
                startedAt = (*olds)["state"]["running"].value("startedAt", start);
        }
        containers.push_back({{"name", name},
                              {"image", c.value("image", "")},
                              {"imageID", "docker.io/library/" + c.value("image", "") +
                                              "@sha256:" + std::string(64, '0')},
                              {"containerID", "containerd://" + shortHash(json{nameOf(obj), name})},
                              {"ready", true},
                              {"started", true},
                              {"restartCount", 0},
                              {"state", {{"running", {{"startedAt", startedAt}}}}}});
    }
    json conds = json::array();
    for (const char* t :
         {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"}) {
        json c = condition(old, t, "True", "", "", now, "lastProbeTime", false);
        c["lastProbeTime"] = nullptr;  // the kubelet never sets it
        c.erase("reason");
        c.erase("message");
        conds.push_back(std::move(c));
    }
    return {{"phase", "Running"},
            {"conditions", conds},
            {"hostIP", "172.18.0.2"},
            {"hostIPs", json::array({{{"ip", "172.18.0.2"}}})},
            {"podIP", ip},
            {"podIPs", json::array({{{"ip", ip}}})},
            {"startTime", start},
            {"containerStatuses", containers},
            {"qosClass", "BestEffort"}};
}

json serviceStatus(const json& obj) {
    std::string type = obj.contains("spec") ? obj["spec"].value("type", "ClusterIP") : "ClusterIP";
    if (type != "LoadBalancer") return nullptr;
    return {
        {"loadBalancer", {{"ingress", json::array({{{"ip", "127.0.0.1"}, {"ipMode", "VIP"}}})}}}};
}

json pvcStatus(const json& obj) {
    json spec = obj.value("spec", json::object());
    json st = {{"phase", "Bound"}};
    st["accessModes"] = spec.value("accessModes", json::array({"ReadWriteOnce"}));
    if (spec.contains("resources") && spec["resources"].contains("requests") &&
        spec["resources"]["requests"].contains("storage"))
        st["capacity"] = {{"storage", spec["resources"]["requests"]["storage"]}};
    return st;
}

}  // namespace

json simulatedStatus(const json& obj, const std::string& nowRfc3339) {
    if (!obj.is_object()) return nullptr;
    std::string apiVersion = obj.value("apiVersion", "");
    std::string kind = obj.value("kind", "");
    if (apiVersion == "apps/v1") {
        if (kind == "Deployment") return deploymentStatus(obj, nowRfc3339);
        if (kind == "StatefulSet") return statefulSetStatus(obj);
        if (kind == "DaemonSet") return daemonSetStatus(obj);
        if (kind == "ReplicaSet") return replicaSetStatus(obj);
    } else if (apiVersion == "batch/v1" && kind == "Job") {
        return jobStatus(obj, nowRfc3339);
    } else if (apiVersion == "v1") {
        if (kind == "Pod") return podStatus(obj, nowRfc3339);
        if (kind == "Service") return serviceStatus(obj);
        if (kind == "PersistentVolumeClaim") return pvcStatus(obj);
    }
    return nullptr;
}

}  // namespace sluice::apilogic
