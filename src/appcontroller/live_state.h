#pragma once
// The live state of the objects Applications deploy: one watch cache per kind (started on
// demand, in the managed namespaces only, with one handler requeueing each object's
// Application), which kinds the cluster serves and whether they are namespaced, and the
// comparison of a desired state with those caches.
//
// It owns the managed informers and the short memory of kinds discovery did not know (a kind a
// sync is about to create through its CRD is asked for again soon, not on every object).
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sluice/appcontroller/controller.h"
#include "sluice/cache/scoped_informer.h"
#include "sluice/kube/client.h"
#include "sluice/util/clock.h"
#include "sluice/workqueue/gate.h"
#include "types.h"

namespace sluice::appcontroller {

class LiveState {
  public:
    // gate: where the managed informers' handlers add Application keys.
    LiveState(kube::KubeClient& client, cache::SharedInformerFactory& informers, const Clock& clock,
              const Options& opts, std::shared_ptr<workqueue::Gate> gate,
              const BaseInformers& base);

    // Whether a kind is namespaced, as discovery says; nothing when the cluster does not serve
    // it (remembered for a few seconds).
    appengine::ScopeLookup scopeLookup();
    // CRDs were applied: kinds discovery did not know are asked for again.
    void forgetUnknownKinds();
    // The kinds of these objects and inventory entries (and Canaries, for Deployments).
    static std::set<kube::GroupVersionKind> kindsOf(
        const std::vector<json>& objects, const std::vector<appengine::InventoryEntry>& inventory);

    // Informers for these kinds exist, have their handler, and have synced (bounded wait).
    // Failed: the API server refused a list or watch (RBAC), with its message.
    cache::ScopedInformer::Sync ensureInformers(const std::set<kube::GroupVersionKind>& kinds,
                                                std::chrono::milliseconds wait);
    // The transport failure one of these kinds' watches last ended with (the cluster is
    // unreachable and the caches may be stale); empty when every watch is connected.
    std::string connectionError(const std::set<kube::GroupVersionKind>& kinds);
    std::string connectionError();  // of any kind watched
    std::size_t cachedObjects();    // in every managed cache
    // The kind's informer; null when none was started (not served, or out of scope).
    cache::ScopedInformer* informerFor(const kube::GroupVersionKind& gvk);
    std::shared_ptr<const json> liveObject(const kube::GroupVersionKind& gvk, const std::string& ns,
                                           const std::string& name);
    // The cached objects of namespace ns, of every kind watched there whose cache has synced
    // (the kinds Applications deploy to this cluster): where orphaned resources are looked for.
    std::vector<cache::ObjectPtr> namespaceObjects(const std::string& ns);
    // Waits (bounded) until the managed caches hold at least the versions a sync wrote.
    void waitForCaches(const SyncOutcome& outcome, std::chrono::milliseconds limit);

    // Compares desired (its prepared objects and inventory) with the caches into
    // desired.compared, reusing what memo (the Application's last compare) still holds.
    void compareInto(Desired& desired, const AppRef& ref, const appengine::ApplicationSpec& spec,
                     std::shared_ptr<const appengine::CompareMemo> memo);

  private:
    kube::KubeClient& client_;
    cache::SharedInformerFactory& informers_;
    const Clock& clock_;
    const Options& opts_;
    const std::shared_ptr<workqueue::Gate> gate_;
    const BaseInformers& base_;

    std::mutex mu_;  // guards the maps below
    std::map<kube::GroupVersionKind, std::unique_ptr<cache::ScopedInformer>> managed_;
    // (apiVersion, kind) discovery did not know -> when to ask again.
    std::map<std::pair<std::string, std::string>, Clock::TimePoint> unknownKinds_;
};

}  // namespace sluice::appcontroller
