#pragma once
// The Applications as the controller reads and writes them: loaded from the watch cache with
// our own writes the cache has not shown yet, status and metadata writes, and Events.
//
// It owns what keeps those consistent across reconciles: the overlay of unseen writes (so a
// reconcile right after a write does not act on older fields) and the last message of each
// deduplicated Event reason (so a condition that persists is reported once, not per reconcile).
// Both are per Application and forgotten with it (forget()).
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "sluice/kube/client.h"
#include "sluice/kube/events.h"
#include "sluice/runtime/runtime.h"
#include "sluice/util/clock.h"
#include "types.h"

namespace sluice::appcontroller {

class ApplicationStore {
  public:
    // events: where Events go; nullptr = through the client, as component "sluice-controller"
    // (in controlNamespace when the involved object has none).
    ApplicationStore(kube::KubeClient& client, const Clock& clock, kube::EventRecorder* events,
                     const std::string& controlNamespace, const BaseInformers& base);

    // Reads the Application from the cache, with our writes the cache has not shown yet. False:
    // it is not in the cache (deleted).
    bool load(AppRef& ref);
    // operationState.phase as the cache (plus our writes) has it now; "" when deleted.
    std::string operationPhase(const AppRef& ref);
    // Writes the status fields in `updates` (null = remove) that differ from ref.status, and
    // reconciledAt with them; nothing when none differs. Tests the operation phase we last
    // wrote so a user's "Terminating" is never overwritten: returns false when that test
    // failed (ref is then re-read from the API).
    bool writeStatus(AppRef& ref, const json& updates);
    void removeOperation(AppRef& ref);
    // Requests an operation, as a user's `argocd app sync` or rollback does. The next reconcile
    // runs it (the Application's watch event brings it).
    void setOperation(AppRef& ref, const json& operation);
    // Adds a finalizer unless the Application (read afresh) has it already.
    void addFinalizer(AppRef& ref, const std::string& finalizer);
    void removeAnnotations(AppRef& ref, const std::vector<std::string>& keys);

    void event(const AppRef& ref, kube::EventType type, const std::string& reason,
               const std::string& message);
    // An Event unless the last one of this reason for the Application had the same message.
    void eventOnce(const AppRef& ref, kube::EventType type, const std::string& reason,
                   const std::string& message);
    // The condition behind `reason` is gone: its next Event is recorded whatever its message.
    void forgetEvent(const std::string& key, const std::string& reason);

    // The Application is gone: its unseen writes and Event history go with it.
    void forget(const std::string& key);

  private:
    // Writes of ours the Application cache may not show yet (runtime::PendingWrites keeps them
    // with the version that shows them): load() reads these instead of the cached fields.
    struct UnseenWrites {
        std::shared_ptr<const json> status;
        bool operationRemoved = false;
        std::set<std::string> annotationsRemoved;
    };

    void recordPending(const std::string& key, const json& response,
                       const std::function<void(UnseenWrites&)>& update);

    kube::KubeClient& client_;
    const Clock& clock_;
    const BaseInformers& base_;
    std::unique_ptr<kube::KubeEventRecorder> ownEvents_;
    kube::EventRecorder* events_;
    runtime::PendingWrites<UnseenWrites> pending_;
    std::mutex eventsMu_;
    // Per Application ("ns/name"), the last message of each deduplicated Event reason
    // (InvalidSpec, ComparisonError, ...).
    std::map<std::string, std::map<std::string, std::string>> lastEvents_;
};

}  // namespace sluice::appcontroller
