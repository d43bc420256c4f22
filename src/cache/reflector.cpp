#include "sluice/cache/reflector.h"

#include <random>

#include <spdlog/spdlog.h>

#include <charconv>
#include <unordered_set>

#include "sluice/kube/types.h"

namespace sluice::cache {

namespace {

std::string rvOf(const nlohmann::json& obj) {
    return kube::resourceVersionOf(obj);
}

bool parseU64(const std::string& s, uint64_t& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

// A watch that stayed open this long did its job even if the server then closed it quietly.
constexpr auto kHealthyWatch = std::chrono::seconds(1);

}  // namespace

bool resourceVersionNewer(const std::string& a, const std::string& b) {
    uint64_t x = 0, y = 0;
    if (parseU64(a, x) && parseU64(b, y)) return x > y;
    return a != b;
}

void dropManagedFields(nlohmann::json& obj) {
    auto m = obj.find("metadata");
    if (m != obj.end() && m->is_object()) m->erase("managedFields");
}

void packManagedFields(nlohmann::json& obj) {
    auto m = obj.find("metadata");
    if (m == obj.end() || !m->is_object()) return;
    auto mf = m->find("managedFields");
    if (mf == m->end() || !mf->is_array()) return;
    std::string text = mf->dump();
    text.shrink_to_fit();  // dump() grows by doubling: half the buffer could be slack
    *mf = std::move(text);
}

Reflector::Reflector(kube::KubeClient& client, kube::GroupVersionKind gvk, Store& store,
                     ReflectorOptions opts, ReflectorHandlers handlers)
    : client_(client),
      gvk_(std::move(gvk)),
      store_(store),
      opts_(std::move(opts)),
      handlers_(std::move(handlers)) {}

std::string Reflector::lastResourceVersion() const {
    std::lock_guard lock(rvMu_);
    return rv_;
}

std::optional<ReflectorError> Reflector::lastError() const {
    std::lock_guard lock(rvMu_);
    return error_;
}

void Reflector::setError(std::optional<ReflectorError> error) {
    std::lock_guard lock(rvMu_);
    error_ = std::move(error);
}

void Reflector::setResourceVersion(const std::string& rv) {
    if (rv.empty()) return;
    std::lock_guard lock(rvMu_);
    // Never move backwards: resuming from an older version would replay (harmless) events,
    // but a newer one is always where the stream really is.
    if (rv_.empty() || resourceVersionNewer(rv, rv_)) rv_ = rv;
}

int randomWatchTimeoutSeconds() {
    static thread_local std::mt19937 rng{std::random_device{}()};
    return std::uniform_int_distribution<int>(300, 600)(rng);
}

void Reflector::run(const StopToken& stop) {
    uint32_t attempt = 0;  // consecutive failures without progress
    bool needList = true;
    while (!stop.stopRequested()) {
        bool failed = false;
        bool listed = false;     // this round listed (a Gone right after it must back off)
        bool relistNow = false;  // a Gone after an earlier list: relist without waiting
        watchProgress_ = false;
        try {
            if (needList) {
                listed = true;
                listAndReconcile();
                // attempt is not reset here: list, then a watch failing at once (e.g.
                // always Gone) must still back off.
                needList = false;
                if (stop.stopRequested()) break;
            }
            // A normal return is the server (or stop) closing the stream: resume from rv_.
            if (watchOnce(stop)) {
                attempt = 0;
                continue;
            }
            failed = true;
        } catch (const kube::ApiError& e) {
            failed = true;
            if (e.isGone()) {
                // Our resourceVersion was compacted away: only a fresh list can catch up.
                spdlog::info("reflector {}: {} ({}), relisting", gvk_.str(), e.what(), e.code());
                needList = true;
                // Normal after an API server restart or compaction: relist at once, however
                // long the outage before it backed off. Backoff is for lists that fail.
                relistNow = !listed;
            } else {
                setError(ReflectorError{e.code(), e.reason(), e.what()});
                spdlog::warn("reflector {}: API error {} {}: {}", gvk_.str(), e.code(), e.reason(),
                             e.what());
            }
        } catch (const kube::TransportError& e) {
            failed = true;
            setError(ReflectorError{0, "TransportError", e.what()});
            spdlog::warn("reflector {}: watch/list connection failed: {}", gvk_.str(), e.what());
        } catch (const std::exception& e) {
            failed = true;
            spdlog::error("reflector {}: unexpected error: {}", gvk_.str(), e.what());
            // Our view may be inconsistent (e.g. a handler threw mid-list): resync from a list.
            needList = true;
        }
        if (!failed || stop.stopRequested()) continue;
        if (relistNow) {
            attempt = 0;
            continue;
        }
        if (watchProgress_) attempt = 0;
        // The first retry after progress is immediate (a dropped stream should resume at
        // once); repeated failures back off so a broken server is not hammered.
        if (attempt > 0) {
            auto delay = opts_.backoff.delay(attempt - 1);
            spdlog::debug("reflector {}: retrying in {} ms", gvk_.str(), delay.count());
            if (!stop.sleepFor(delay)) break;
        }
        if (attempt < UINT32_MAX) ++attempt;
    }
}

void Reflector::listAndReconcile() {
    kube::ListOptions lo;
    lo.labelSelector = opts_.labelSelector;
    lo.fieldSelector = opts_.fieldSelector;
    lo.limit = opts_.pageSize;
    kube::ListResult res = client_.listAll(gvk_, opts_.ns, lo);
    ++lists_;
    setError(std::nullopt);

    // Transform and wrap outside the delivery lock: it is the expensive part.
    std::vector<ObjectPtr> fresh;
    fresh.reserve(res.items.size());
    for (auto& item : res.items) {
        if (opts_.transform) opts_.transform(item);
        fresh.push_back(std::make_shared<const nlohmann::json>(std::move(item)));
    }
    res.items.clear();

    std::lock_guard lock(deliveryMu_);
    std::unordered_set<std::string> listed;
    listed.reserve(fresh.size());
    for (const auto& obj : fresh) listed.insert(storeKeyOf(*obj));
    // Objects we hold that the list no longer has were deleted while we were not watching;
    // the last state we saw is the best we can report.
    for (const auto& old : store_.list()) {
        if (listed.count(storeKeyOf(*old))) continue;
        store_.erase(kube::namespaceOf(*old), kube::nameOf(*old));
        if (handlers_.onDelete) handlers_.onDelete(old);
    }
    for (auto& obj : fresh) {
        ObjectPtr old = store_.get(kube::namespaceOf(*obj), kube::nameOf(*obj));
        // Same resourceVersion = same object state: nothing was missed.
        if (old && rvOf(*old) == rvOf(*obj)) continue;
        store_.upsert(obj);
        if (old) {
            if (handlers_.onUpdate) handlers_.onUpdate(old, obj);
        } else if (handlers_.onAdd) {
            handlers_.onAdd(obj);
        }
    }
    {
        // After a relist the list's version replaces whatever the broken watch had reached.
        std::lock_guard rvLock(rvMu_);
        rv_ = res.resourceVersion;
    }
    if (!synced_.exchange(true) && handlers_.onSynced) handlers_.onSynced();
}

bool Reflector::watchOnce(const StopToken& stop) {
    kube::WatchOptions wo;
    wo.resourceVersion = lastResourceVersion();
    wo.allowBookmarks = true;
    wo.labelSelector = opts_.labelSelector;
    wo.fieldSelector = opts_.fieldSelector;
    wo.rawMembers = opts_.rawMembers;
    // As client-go: the server ends each watch after 5-10 minutes (spread so that many
    // watches do not reconnect at once), and we resume from where it was, without a relist.
    wo.timeoutSeconds =
        opts_.watchTimeoutSeconds > 0 ? opts_.watchTimeoutSeconds : randomWatchTimeoutSeconds();
    auto started = std::chrono::steady_clock::now();
    client_.watch(
        gvk_, opts_.ns, wo,
        [&](kube::WatchEvent& ev) {
            if (!watchProgress_) setError(std::nullopt);
            watchProgress_ = true;
            applyEvent(ev);
            return !stop.stopRequested();
        },
        stop);
    return watchProgress_ || std::chrono::steady_clock::now() - started >= kHealthyWatch;
}

void Reflector::applyEvent(kube::WatchEvent& ev) {
    using Type = kube::WatchEvent::Type;
    if (ev.type == Type::Error) throw kube::ApiError::fromStatus(ev.object);
    if (ev.type == Type::Bookmark) {
        setResourceVersion(rvOf(ev.object));
        return;
    }
    const std::string evRv = rvOf(ev.object);
    {
        // A watch delivers versions in increasing order after the one it started from, so
        // anything not past our position is a replay (even of an object since deleted).
        std::lock_guard lock(rvMu_);
        if (!rv_.empty() && !evRv.empty() && !resourceVersionNewer(evRv, rv_)) return;
    }
    // Moved, not copied: a copy doubled the allocations of every cached object, and the parsed
    // event freed behind it left holes the allocator could not give back.
    nlohmann::json object = std::move(ev.object);
    if (opts_.transform) opts_.transform(object);
    auto obj = std::make_shared<const nlohmann::json>(std::move(object));
    const std::string rv = rvOf(*obj);
    const std::string ns = kube::namespaceOf(*obj);
    const std::string name = kube::nameOf(*obj);
    {
        std::lock_guard lock(deliveryMu_);
        ObjectPtr old = store_.get(ns, name);
        if (ev.type == Type::Deleted) {
            // Unknown object, or the stored one is a later incarnation: a replayed delete.
            if (old && !resourceVersionNewer(rvOf(*old), rv)) {
                store_.erase(ns, name);
                if (handlers_.onDelete) handlers_.onDelete(obj);
            }
        } else if (!old || resourceVersionNewer(rv, rvOf(*old))) {
            store_.upsert(obj);
            if (old) {
                if (handlers_.onUpdate) handlers_.onUpdate(old, obj);
            } else if (handlers_.onAdd) {
                handlers_.onAdd(obj);
            }
        }
    }
    // Advance only after the event is applied: a failure above makes us resume before it.
    setResourceVersion(rv);
}

}  // namespace sluice::cache
