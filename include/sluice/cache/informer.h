#pragma once
// Informer = Reflector + Store + event handlers, running on its own thread.
// SharedInformerFactory hands out one informer per (kind, namespace, selectors) so that all
// controllers share a single watch and cache per kind.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "sluice/cache/reflector.h"
#include "sluice/cache/store.h"
#include "sluice/kube/client.h"
#include "sluice/util/stop.h"

namespace sluice::cache {

// Any member may be empty. Handlers of one informer are never called concurrently and are
// called in event order, normally on the informer's thread (the synthetic adds of a handler
// added late run on the caller of addEventHandler; resyncs on the resync thread). Keep them
// short: typically enqueue a key in a WorkQueue. An exception is logged and swallowed.
struct EventHandler {
    std::function<void(const ObjectPtr& obj)> onAdd;
    std::function<void(const ObjectPtr& oldObj, const ObjectPtr& newObj)> onUpdate;
    // obj is the final state from the watch, or the last known state when the deletion was
    // only noticed by a relist.
    std::function<void(const ObjectPtr& obj)> onDelete;
};

struct InformerOptions : ReflectorOptions {
    // > 0: every period, onUpdate(obj, obj) for every cached object (lets controllers
    // re-check drift that produced no event).
    std::chrono::milliseconds resyncPeriod{0};
};

class Informer {
  public:
    Informer(kube::KubeClient& client, kube::GroupVersionKind gvk, InformerOptions opts = {});
    ~Informer();  // stop()
    Informer(const Informer&) = delete;
    Informer& operator=(const Informer&) = delete;

    // Registers a handler. If objects are already cached it first receives onAdd for each,
    // atomically with respect to later events (nothing missed, nothing twice).
    void addEventHandler(EventHandler handler);

    // Starts the list/watch thread (and the resync thread). No-op if already started.
    void start();
    // Stops and joins the threads. Idempotent; the informer cannot be restarted. Not from
    // one of its own handlers (it would join the thread it runs on).
    void stop();

    bool hasSynced() const;
    // True once synced; false on timeout or if stopped first.
    bool waitForSync(std::chrono::milliseconds timeout) const;

    Store& store() { return store_; }
    const Store& store() const { return store_; }
    const kube::GroupVersionKind& gvk() const { return gvk_; }
    std::string lastResourceVersion() const { return reflector_.lastResourceVersion(); }
    // Why the last list or watch failed (e.g. 403 Forbidden); empty once one succeeded.
    std::optional<ReflectorError> lastError() const { return reflector_.lastError(); }

  private:
    void dispatchAdd(const ObjectPtr& obj);
    void dispatchUpdate(const ObjectPtr& oldObj, const ObjectPtr& newObj);
    void dispatchDelete(const ObjectPtr& obj);
    template <class F>
    void forEachHandler(const char* what, const ObjectPtr& obj, F&& call);
    void resyncLoop(const StopToken& stop);

    kube::GroupVersionKind gvk_;
    InformerOptions opts_;
    Store store_;
    Reflector reflector_;
    std::vector<std::shared_ptr<EventHandler>> handlers_;  // guarded by deliveryMutex

    mutable std::mutex mu_;
    mutable std::condition_variable syncCv_;
    bool synced_ = false;
    bool started_ = false;
    bool stopped_ = false;
    StopSource stopSource_;
    std::thread thread_;
    std::thread resyncThread_;
};

class SharedInformerFactory {
  public:
    // defaults: options (resync, transform, backoff, ...) for informers created by the
    // short informerFor overload.
    explicit SharedInformerFactory(kube::KubeClient& client, InformerOptions defaults = {});
    ~SharedInformerFactory();  // stopAll()

    // The informer for (gvk, ns, labelSelector), created on first request. Informers created
    // after startAll() start at the next startAll().
    Informer& informerFor(const kube::GroupVersionKind& gvk, const std::string& ns = "",
                          const std::string& labelSelector = "");
    // Full options; shared by (gvk, ns, labelSelector, fieldSelector). When the informer
    // already exists its original options stay in force.
    Informer& informerFor(const kube::GroupVersionKind& gvk, const InformerOptions& opts);

    void startAll();
    // True when every informer created so far has synced within timeout.
    bool waitForCacheSync(std::chrono::milliseconds timeout);
    void stopAll();

  private:
    using Key = std::tuple<kube::GroupVersionKind, std::string, std::string, std::string>;
    kube::KubeClient& client_;
    InformerOptions defaults_;
    std::mutex mu_;
    std::map<Key, std::unique_ptr<Informer>> informers_;
};

}  // namespace sluice::cache
