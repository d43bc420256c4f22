#pragma once
// Kubernetes Events (core/v1) about objects Sluice manages, as `kubectl describe` shows them.
// Repeats of the same (object, reason, message) within a short window bump `count` on the
// existing Event instead of creating a new one, as client-go's recorder does.
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "sluice/kube/client.h"
#include "sluice/util/clock.h"

namespace sluice::kube {

enum class EventType { Normal, Warning };

class EventRecorder {
  public:
    virtual ~EventRecorder() = default;
    // involved: the object the Event is about (apiVersion, kind, metadata.name/namespace/uid).
    // Never throws: a failure to record is logged, the caller carries on.
    virtual void record(const Object& involved, EventType type, const std::string& reason,
                        const std::string& message) = 0;
};

// Writes Events through the API (in the involved object's namespace, or `defaultNamespace` for
// cluster-scoped objects), source.component = component. An optional sink sees every Event
// (Canary `event` webhooks, tests).
class KubeEventRecorder final : public EventRecorder {
  public:
    KubeEventRecorder(KubeClient& client, std::string component,
                      std::string defaultNamespace = "default", const Clock* clock = nullptr);
    void record(const Object& involved, EventType type, const std::string& reason,
                const std::string& message) override;
    void setSink(std::function<void(const Object& event)> sink);

  private:
    KubeClient& client_;
    std::string component_;
    std::string defaultNamespace_;
    const Clock* clock_;
    std::mutex mu_;
    std::function<void(const Object&)> sink_;
    // (involved uid, reason, message) -> (event name, namespace, count, last seen)
    struct Seen {
        std::string name;
        std::string ns;
        int count = 0;
        std::chrono::steady_clock::time_point last;
    };
    std::map<std::string, Seen> seen_;
};

}  // namespace sluice::kube
