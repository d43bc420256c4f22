#pragma once
// Resource health as Argo CD reports it, computed from an object's live state alone.
#include <nlohmann/json.hpp>

#include <string>

namespace sluice::health {

enum class Status { Healthy, Suspended, Progressing, Missing, Degraded, Unknown };

const char* toString(Status s);
Status parseStatus(const std::string& s);  // unknown text -> Unknown

// Argo CD's order of badness: Healthy < Suspended < Progressing < Missing < Degraded < Unknown.
bool isWorse(Status a, Status than);
Status worst(Status a, Status b);

struct Assessment {
    Status status = Status::Healthy;
    std::string message;
};

// Health of one live object. A null object is Missing. Kinds without built-in rules are
// Healthy once they exist. Built-in: Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod,
// Service, Ingress, PersistentVolumeClaim, Job, HorizontalPodAutoscaler, and Sluice's own
// Application and Canary.
Assessment assess(const nlohmann::json& obj);

}  // namespace sluice::health
