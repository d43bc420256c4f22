#include "sluice/cache/informer.h"

#include <spdlog/spdlog.h>

#include <exception>

namespace sluice::cache {

Informer::Informer(kube::KubeClient& client, kube::GroupVersionKind gvk, InformerOptions opts)
    : gvk_(gvk),
      opts_(std::move(opts)),
      reflector_(client, gvk_, store_, static_cast<const ReflectorOptions&>(opts_),
                 ReflectorHandlers{
                     [this](const ObjectPtr& o) { dispatchAdd(o); },
                     [this](const ObjectPtr& o, const ObjectPtr& n) { dispatchUpdate(o, n); },
                     [this](const ObjectPtr& o) { dispatchDelete(o); },
                     [this] {
                         {
                             std::lock_guard lock(mu_);
                             synced_ = true;
                         }
                         syncCv_.notify_all();
                     },
                 }) {}

Informer::~Informer() {
    stop();
}

template <class F>
void Informer::forEachHandler(const char* what, const ObjectPtr& obj, F&& call) {
    // Handlers registered by a handler during this event already saw its result through their
    // synthetic adds, so only the ones present now are called.
    const std::size_t n = handlers_.size();
    for (std::size_t i = 0; i < n; ++i) {
        std::shared_ptr<EventHandler> h = handlers_[i];
        try {
            call(*h);
        } catch (const std::exception& e) {
            spdlog::error("informer {}: {} handler for {} threw: {}", gvk_.str(), what,
                          storeKeyOf(*obj), e.what());
        } catch (...) {
            spdlog::error("informer {}: {} handler for {} threw a non-standard exception",
                          gvk_.str(), what, storeKeyOf(*obj));
        }
    }
}

void Informer::dispatchAdd(const ObjectPtr& obj) {
    forEachHandler("add", obj, [&](EventHandler& h) {
        if (h.onAdd) h.onAdd(obj);
    });
}

void Informer::dispatchUpdate(const ObjectPtr& oldObj, const ObjectPtr& newObj) {
    forEachHandler("update", newObj, [&](EventHandler& h) {
        if (h.onUpdate) h.onUpdate(oldObj, newObj);
    });
}

void Informer::dispatchDelete(const ObjectPtr& obj) {
    forEachHandler("delete", obj, [&](EventHandler& h) {
        if (h.onDelete) h.onDelete(obj);
    });
}

void Informer::addEventHandler(EventHandler handler) {
    auto h = std::make_shared<EventHandler>(std::move(handler));
    // Holding the delivery mutex freezes the store between the snapshot and registration.
    std::lock_guard lock(reflector_.deliveryMutex());
    if (h->onAdd) {
        for (const auto& obj : store_.list()) {
            try {
                h->onAdd(obj);
            } catch (const std::exception& e) {
                spdlog::error("informer {}: add handler for {} threw: {}", gvk_.str(),
                              storeKeyOf(*obj), e.what());
            } catch (...) {
                spdlog::error("informer {}: add handler for {} threw a non-standard exception",
                              gvk_.str(), storeKeyOf(*obj));
            }
        }
    }
    handlers_.push_back(std::move(h));
}

void Informer::start() {
    std::lock_guard lock(mu_);
    if (started_ || stopped_) return;
    started_ = true;
    StopToken token = stopSource_.token();
    thread_ = std::thread([this, token] { reflector_.run(token); });
    if (opts_.resyncPeriod > std::chrono::milliseconds::zero()) {
        resyncThread_ = std::thread([this, token] { resyncLoop(token); });
    }
}

void Informer::stop() {
    std::thread t, r;
    {
        std::lock_guard lock(mu_);
        if (stopped_) return;
        stopped_ = true;
        t = std::move(thread_);
        r = std::move(resyncThread_);
    }
    syncCv_.notify_all();
    stopSource_.requestStop();
    if (t.joinable()) t.join();
    if (r.joinable()) r.join();
}

bool Informer::hasSynced() const {
    std::lock_guard lock(mu_);
    return synced_;
}

bool Informer::waitForSync(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    syncCv_.wait_for(lock, timeout, [&] { return synced_ || stopped_; });
    return synced_;
}

void Informer::resyncLoop(const StopToken& stop) {
    while (stop.sleepFor(opts_.resyncPeriod)) {
        if (!reflector_.hasSynced()) continue;
        std::lock_guard lock(reflector_.deliveryMutex());
        for (const auto& obj : store_.list()) {
            if (stop.stopRequested()) return;
            dispatchUpdate(obj, obj);
        }
    }
}

SharedInformerFactory::SharedInformerFactory(kube::KubeClient& client, InformerOptions defaults)
    : client_(client), defaults_(std::move(defaults)) {}

SharedInformerFactory::~SharedInformerFactory() {
    stopAll();
}

Informer& SharedInformerFactory::informerFor(const kube::GroupVersionKind& gvk,
                                             const std::string& ns,
                                             const std::string& labelSelector) {
    InformerOptions opts = defaults_;
    opts.ns = ns;
    opts.labelSelector = labelSelector;
    return informerFor(gvk, opts);
}

Informer& SharedInformerFactory::informerFor(const kube::GroupVersionKind& gvk,
                                             const InformerOptions& opts) {
    Key key{gvk, opts.ns, opts.labelSelector, opts.fieldSelector};
    std::lock_guard lock(mu_);
    auto& slot = informers_[key];
    if (!slot) slot = std::make_unique<Informer>(client_, gvk, opts);
    return *slot;
}

void SharedInformerFactory::startAll() {
    std::lock_guard lock(mu_);
    for (auto& [k, inf] : informers_) inf->start();
}

bool SharedInformerFactory::waitForCacheSync(std::chrono::milliseconds timeout) {
    std::vector<Informer*> all;
    {
        std::lock_guard lock(mu_);
        for (auto& [k, inf] : informers_) all.push_back(inf.get());
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (Informer* inf : all) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (!inf->waitForSync(std::max(left, std::chrono::milliseconds::zero()))) return false;
    }
    return true;
}

void SharedInformerFactory::stopAll() {
    std::vector<Informer*> all;
    {
        std::lock_guard lock(mu_);
        for (auto& [k, inf] : informers_) all.push_back(inf.get());
    }
    for (Informer* inf : all) inf->stop();
}

}  // namespace sluice::cache
