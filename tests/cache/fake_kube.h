#pragma once
// An in-memory KubeClient for cache tests: one kind, a resourceVersion counter, an event log
// that watches replay from any version, and switches to inject the faults a real server
// produces (dropped and closed streams, 410 Gone, other errors).
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "sluice/kube/client.h"

namespace sluice::cachetest {

using kube::WatchEvent;
using nlohmann::json;

inline json makeObject(const std::string& ns, const std::string& name, const json& data = {}) {
    json o = {{"apiVersion", "v1"},
              {"kind", "ConfigMap"},
              {"metadata", {{"name", name}}},
              {"data", data.is_null() ? json::object() : data}};
    if (!ns.empty()) o["metadata"]["namespace"] = ns;
    return o;
}

class FakeKube final : public kube::KubeClient {
  public:
    // ---- server-side mutations (each bumps the resourceVersion and logs an event) ----
    json put(const std::string& ns, const std::string& name, const json& data = {}) {
        std::lock_guard lock(mu_);
        json o = makeObject(ns, name, data);
        o["metadata"]["resourceVersion"] = std::to_string(++rv_);
        o["metadata"]["managedFields"] = json::array({{{"manager", "test"}}});
        auto key = ns + "/" + name;
        bool existed = objects_.count(key) > 0;
        objects_[key] = o;
        logLocked(existed ? WatchEvent::Type::Modified : WatchEvent::Type::Added, o);
        return o;
    }
    json del(const std::string& ns, const std::string& name) {
        std::lock_guard lock(mu_);
        auto key = ns + "/" + name;
        json o = objects_.at(key);
        objects_.erase(key);
        o["metadata"]["resourceVersion"] = std::to_string(++rv_);
        logLocked(WatchEvent::Type::Deleted, o);
        return o;
    }
    // Other kinds moved the version on; the watch hears about it only through a bookmark.
    std::string bookmark(uint64_t skip = 5) {
        std::lock_guard lock(mu_);
        rv_ += skip;
        json b = {{"apiVersion", "v1"},
                  {"kind", "ConfigMap"},
                  {"metadata", {{"resourceVersion", std::to_string(rv_)}}}};
        logLocked(WatchEvent::Type::Bookmark, b);
        return std::to_string(rv_);
    }
    // Watches from versions before now get 410 Gone.
    void compact() {
        std::lock_guard lock(mu_);
        compactedAt_ = rv_;
        log_.clear();
    }

    // ---- faults ----
    void dropWatches() { interruptWatches(Interrupt::Drop); }    // TransportError
    void closeWatches() { interruptWatches(Interrupt::Close); }  // clean end of stream
    void goneViaErrorEvent() { interruptWatches(Interrupt::ErrorEvent); }
    // New watch calls wait (without events) until resumeWatches(); open ones are dropped.
    void pauseWatches() {
        {
            std::lock_guard lock(mu_);
            paused_ = true;
        }
        dropWatches();
    }
    void resumeWatches() {
        std::lock_guard lock(mu_);
        paused_ = false;
        cv_.notify_all();
    }
    // The next watch calls throw these before streaming anything.
    void failNextWatches(std::exception_ptr e, int count) {
        std::lock_guard lock(mu_);
        for (int i = 0; i < count; ++i) watchFailures_.push_back(e);
    }
    void failNextLists(std::exception_ptr e, int count) {
        std::lock_guard lock(mu_);
        for (int i = 0; i < count; ++i) listFailures_.push_back(e);
    }
    // The next watch ignores the requested version and replays the whole log (a misbehaving
    // or restarted server): the reflector must not report anything twice.
    void replayAllOnNextWatch() {
        std::lock_guard lock(mu_);
        replayAll_ = true;
    }

    // ---- inspection ----
    std::vector<std::string> watchVersions() const {
        std::lock_guard lock(mu_);
        return watchVersions_;
    }
    std::vector<int> watchTimeouts() const {  // timeoutSeconds of each watch call
        std::lock_guard lock(mu_);
        return watchTimeouts_;
    }
    int listCalls() const {
        std::lock_guard lock(mu_);
        return listCalls_;
    }
    int openWatches() const { return openWatches_.load(); }
    std::string currentVersion() const {
        std::lock_guard lock(mu_);
        return std::to_string(rv_);
    }
    std::vector<json> items() const {
        std::lock_guard lock(mu_);
        std::vector<json> out;
        for (auto& [k, v] : objects_) out.push_back(v);
        return out;
    }
    kube::ListOptions lastListOptions() const {
        std::lock_guard lock(mu_);
        return lastList_;
    }

    // ---- KubeClient ----
    kube::ResourceInfo resourceFor(const kube::GroupVersionKind& gvk) override {
        return {gvk, "configmaps", true, {"list", "watch"}, {}, false};
    }
    kube::Object get(const kube::GroupVersionKind&, const std::string& ns,
                     const std::string& name) override {
        std::lock_guard lock(mu_);
        return objects_.at(ns + "/" + name);
    }
    kube::ListResult list(const kube::GroupVersionKind& gvk, const std::string& ns,
                          const kube::ListOptions& opts) override {
        return listAll(gvk, ns, opts);
    }
    kube::ListResult listAll(const kube::GroupVersionKind&, const std::string& ns,
                             const kube::ListOptions& opts) override {
        std::lock_guard lock(mu_);
        ++listCalls_;
        lastList_ = opts;
        if (!listFailures_.empty()) {
            auto e = listFailures_.front();
            listFailures_.pop_front();
            std::rethrow_exception(e);
        }
        kube::ListResult r;
        for (auto& [k, v] : objects_) {
            if (ns.empty() || v["metadata"].value("namespace", "") == ns) r.items.push_back(v);
        }
        r.resourceVersion = std::to_string(rv_);
        return r;
    }

    void watch(const kube::GroupVersionKind&, const std::string& ns, const kube::WatchOptions& opts,
               const std::function<bool(WatchEvent&)>& onEvent, const StopToken& stop) override {
        StopCallback wake(stop, [this] {
            std::lock_guard lock(mu_);
            cv_.notify_all();
        });
        std::unique_lock lock(mu_);
        watchVersions_.push_back(opts.resourceVersion);
        watchTimeouts_.push_back(opts.timeoutSeconds);
        if (!watchFailures_.empty()) {
            auto e = watchFailures_.front();
            watchFailures_.pop_front();
            std::rethrow_exception(e);
        }
        cv_.wait(lock, [&] { return !paused_ || stop.stopRequested(); });
        if (stop.stopRequested()) return;
        uint64_t from = opts.resourceVersion.empty() ? rv_ : std::stoull(opts.resourceVersion);
        if (replayAll_) {
            replayAll_ = false;
            from = 0;
        } else if (from < compactedAt_) {
            throw kube::ApiError(410, "Expired", "too old resource version");
        }
        ++openWatches_;
        struct Closing {
            std::atomic<int>& n;
            ~Closing() { --n; }
        } closing{openWatches_};
        const uint64_t gen = interruptGen_;
        std::size_t pos = 0;
        for (;;) {
            while (pos < log_.size() && log_[pos].rv <= from) ++pos;
            if (pos < log_.size()) {
                Logged ev = log_[pos++];
                from = ev.rv;
                if (!ns.empty() && ev.event.type != WatchEvent::Type::Bookmark &&
                    ev.event.object["metadata"].value("namespace", "") != ns)
                    continue;
                if (ev.event.type == WatchEvent::Type::Bookmark && !opts.allowBookmarks) continue;
                lock.unlock();
                bool more = onEvent(ev.event);
                lock.lock();
                if (!more) return;
                continue;
            }
            cv_.wait(lock, [&] {
                return stop.stopRequested() || interruptGen_ != gen ||
                       (!log_.empty() && log_.back().rv > from);
            });
            if (stop.stopRequested()) return;
            if (interruptGen_ != gen) {
                switch (interrupt_) {
                    case Interrupt::Drop:
                        throw kube::TransportError("connection reset by fake");
                    case Interrupt::Close:
                        return;
                    case Interrupt::ErrorEvent: {
                        WatchEvent err{WatchEvent::Type::Error,
                                       {{"kind", "Status"},
                                        {"apiVersion", "v1"},
                                        {"status", "Failure"},
                                        {"code", 410},
                                        {"reason", "Expired"},
                                        {"message", "too old resource version"}}};
                        lock.unlock();
                        onEvent(err);
                        return;
                    }
                }
            }
        }
    }

    kube::Object create(const kube::Object&, const kube::WriteOptions&) override {
        return unsupported();
    }
    kube::Object update(const kube::Object&, const kube::WriteOptions&) override {
        return unsupported();
    }
    kube::Object updateStatus(const kube::Object&, const kube::WriteOptions&) override {
        return unsupported();
    }
    kube::Object apply(const kube::Object&, const kube::ApplyOptions&) override {
        return unsupported();
    }
    kube::Object patch(const kube::GroupVersionKind&, const std::string&, const std::string&,
                       kube::PatchType, const std::string&, const kube::PatchOptions&) override {
        return unsupported();
    }
    kube::Object remove(const kube::GroupVersionKind&, const std::string&, const std::string&,
                        const kube::DeleteOptions&) override {
        return unsupported();
    }

  private:
    enum class Interrupt { Drop, Close, ErrorEvent };
    struct Logged {
        uint64_t rv;
        WatchEvent event;
    };
    static kube::Object unsupported() { throw std::logic_error("FakeKube: not a cache verb"); }
    void logLocked(WatchEvent::Type t, const json& o) {
        log_.push_back({rv_, WatchEvent{t, o}});
        cv_.notify_all();
    }
    void interruptWatches(Interrupt how) {
        std::lock_guard lock(mu_);
        interrupt_ = how;
        ++interruptGen_;
        cv_.notify_all();
    }

    mutable std::mutex mu_;
    std::condition_variable cv_;
    uint64_t rv_ = 100;
    uint64_t compactedAt_ = 0;
    std::map<std::string, json> objects_;
    std::vector<Logged> log_;
    std::vector<std::string> watchVersions_;
    std::vector<int> watchTimeouts_;
    std::deque<std::exception_ptr> watchFailures_;
    std::deque<std::exception_ptr> listFailures_;
    kube::ListOptions lastList_;
    int listCalls_ = 0;
    std::atomic<int> openWatches_{0};  // also changed while mu_ is released
    bool paused_ = false;
    bool replayAll_ = false;
    Interrupt interrupt_ = Interrupt::Drop;
    uint64_t interruptGen_ = 0;
};

}  // namespace sluice::cachetest
