#include "apiserver/store.h"

#include <ctime>
#include <random>

#include "apilogic/apilogic.h"
#include "apiserver/continue_token.h"
#include "apiserver/status_errors.h"

namespace sluice::testing {

std::string nowRfc3339() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string newUid() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    const char* hex = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 32; ++i) {
        if (i == 8 || i == 12 || i == 16 || i == 20) s += '-';
        int v = static_cast<int>(rng() & 15);
        if (i == 12) v = 4;            // version 4
        if (i == 16) v = 8 | (v & 3);  // RFC 4122 variant
        s += hex[v];
    }
    return s;
}

Store::Store(const ApiServerOptions& opts) : opts_(opts) {
    // The namespaces every cluster starts with.
    auto nsRes = registry_.find("", "v1", "namespaces");
    for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
        WriteOptions wo;
        wo.manager = "kube-apiserver";
        create(*nsRes, "",
               json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}}, wo);
    }
}

Store::~Store() {
    stopControllers();
    closeAllWatchers();
}

void Store::startControllers() {
    std::lock_guard<std::mutex> lk(mu_);
    if (controller_.joinable()) return;
    stopping_ = false;
    controller_ = std::thread([this] { controllerLoop(); });
}

void Store::stopControllers() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stopping_ = true;
    }
    ctlCv_.notify_all();
    if (controller_.joinable()) controller_.join();
}

ResourcePtr Store::resolve(const std::string& group, const std::string& version,
                           const std::string& plural) const {
    std::lock_guard<std::mutex> lk(mu_);
    return registry_.find(group, version, plural);
}

ResourcePtr Store::resolveKind(const std::string& apiVersion, const std::string& kind) const {
    std::lock_guard<std::mutex> lk(mu_);
    return registry_.findKind(apiVersion, kind);
}

std::vector<ResourcePtr> Store::resources() const {
    std::lock_guard<std::mutex> lk(mu_);
    return registry_.all();
}

json* Store::findLocked(const ResourceInfo& res, const std::string& ns, const std::string& name) {
    auto s = objects_.find(res.storageKey());
    if (s == objects_.end()) return nullptr;
    auto it = s->second.find(objKey(res.namespaced ? ns : "", name));
    return it == s->second.end() ? nullptr : &it->second;
}

const json* Store::findLocked(const ResourceInfo& res, const std::string& ns,
                              const std::string& name) const {
    return const_cast<Store*>(this)->findLocked(res, ns, name);
}

json Store::get(const ResourceInfo& res, const std::string& ns, const std::string& name) const {
    std::lock_guard<std::mutex> lk(mu_);
    const json* o = findLocked(res, ns, name);
    if (!o) errors::notFound(res, name);
    return *o;
}

json Store::getScale(const ResourceInfo& res, const std::string& ns,
                     const std::string& name) const {
    std::lock_guard<std::mutex> lk(mu_);
    const json* o = findLocked(res, ns, name);
    if (!o) errors::notFound(res, name);
    return apilogic::scaleOf(*o, *res.scale);
}

ListResult Store::list(const ResourceInfo& res, const std::string& ns,
                       const ListOptions& opts) const {
    LabelSelector ls = LabelSelector::parse(opts.labelSelector);
    FieldSelector fs = FieldSelector::parse(opts.fieldSelector, res.kind);
    std::lock_guard<std::mutex> lk(mu_);
    ListResult out;
    uint64_t listRv = rv_;
    std::string start;
    if (!opts.continueToken.empty()) {
        auto tok = decodeContinueToken(opts.continueToken);
        if (!tok)
            errors::badRequest(
                "continue key is not valid: incorrect encoded start resourceVersion (version "
                "meta.k8s.io/v1)");
        if (tok->rv < compactedRv_) {
            json st = errors::status(
                410, "Expired",
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter, or use the "
                "continue token in this response to retrieve the remainder of the results. "
                "Continuing with the provided token results in an inconsistent list - objects "
                "that were created, modified, or deleted between the time the first chunk was "
                "returned and now may show up in the list.");
            st["metadata"]["continue"] = encodeContinueToken(rv_, tok->start);
            throw ApiError(st);
        }
        listRv = tok->rv;
        start = tok->start;
    } else if (!opts.resourceVersion.empty() && opts.resourceVersion != "0") {
        uint64_t want = 0;
        try {
            want = std::stoull(opts.resourceVersion);
        } catch (...) {
            errors::badRequest("invalid resource version: " + opts.resourceVersion);
        }
        if (want > rv_)
            errors::throwStatus(
                504, "Timeout",
                "Too large resource version: " + std::to_string(want) +
                    ", current: " + std::to_string(rv_),
                {{"causes", json::array({{{"reason", "ResourceVersionTooLarge"},
                                          {"message", "Too large resource version"}}})},
                 {"retryAfterSeconds", 1}});
        // Exact reads of an older revision are not kept (no MVCC): they are served from the
        // current state unless that revision has been compacted away.
        if (opts.resourceVersionMatch == "Exact" && want < compactedRv_)
            errors::expired("too old resource version: " + opts.resourceVersion + " (" +
                            std::to_string(compactedRv_ + 1) + ")");
    }
    out.resourceVersion = std::to_string(listRv);
    auto s = objects_.find(res.storageKey());
    if (s == objects_.end()) return out;
    const ObjectMap& m = s->second;
    std::string prefix = (res.namespaced && !ns.empty()) ? ns + "/" : "";
    auto it = m.lower_bound(std::max(start, prefix));
    bool filtered = !ls.empty() || !fs.empty();
    for (; it != m.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
        if (!ls.matches(it->second) || !fs.matches(it->second)) continue;
        if (opts.limit > 0 && static_cast<int64_t>(out.items.size()) >= opts.limit) {
            // More matching items exist: hand out a token that resumes after the last one.
            out.continueToken = encodeContinueToken(
                listRv, out.items.back()["metadata"].value("namespace", "") + "/" +
                            out.items.back()["metadata"].value("name", "") + std::string(1, '\0'));
            if (!filtered) {
                int64_t remaining = 0;
                for (auto r = it; r != m.end() && r->first.compare(0, prefix.size(), prefix) == 0;
                     ++r)
                    ++remaining;
                out.remainingItemCount = remaining;
            }
            break;
        }
        out.items.push_back(it->second);
    }
    return out;
}

void Store::deliverLocked(Watcher& w, const Event& ev) {
    if (ev.rv <= w.minRv || ev.storageKey != w.storageKey) return;
    bool now = ev.type != "DELETED" ? w.selects(ev.object) : false;
    if (ev.type == "ADDED") {
        if (now) w.push({"ADDED", ev.object});
    } else if (ev.type == "DELETED") {
        if (w.selects(ev.object)) w.push({"DELETED", ev.object});
    } else {
        bool before = !ev.oldObject.is_null() && w.selects(ev.oldObject);
        if (before && now)
            w.push({"MODIFIED", ev.object});
        else if (!before && now)
            w.push({"ADDED", ev.object});
        else if (before && !now)
            w.push({"DELETED", ev.object});  // left the selector
    }
}

json Store::commitLocked(const ResourceInfo& res, const std::string& type, json obj,
                         const json* oldObj, bool fromController) {
    uint64_t rv = ++rv_;
    obj["metadata"]["resourceVersion"] = std::to_string(rv);
    const std::string ns = res.namespaced ? obj["metadata"].value("namespace", "") : "";
    const std::string name = obj["metadata"].value("name", "");
    const std::string uid = obj["metadata"].value("uid", "");
    ObjectMap& m = objects_[res.storageKey()];
    if (type == "DELETED") {
        m.erase(objKey(ns, name));
        byUid_.erase(uid);
        gcDirty_ = true;
    } else {
        m[objKey(ns, name)] = obj;
        byUid_[uid] = Ref{res.storageKey(), ns, name};
        if (obj["metadata"].contains("ownerReferences") ||
            obj["metadata"].contains("deletionTimestamp"))
            gcDirty_ = true;
    }
    auto ev =
        std::make_shared<Event>(Event{rv, type, res.storageKey(), obj, oldObj ? *oldObj : json()});
    history_.push_back(ev);
    while (history_.size() > opts_.watchHistory && !history_.empty()) {
        compactedRv_ = history_.front()->rv;
        history_.pop_front();
    }
    for (auto& w : watchers_) deliverLocked(*w, *ev);

    // Post-write hooks: CRDs (un)register their resources; workloads get simulated status.
    if (res.group == "apiextensions.k8s.io" && res.kind == "CustomResourceDefinition") {
        if (type == "DELETED") {
            for (const auto& r : registry_.all())
                if (r->isCustom && r->crdName == name) {
                    objects_.erase(r->storageKey());
                    for (auto& w : watchers_)
                        if (w->storageKey == r->storageKey()) w->close();
                }
            registry_.removeCrd(name);
        } else {
            registry_.upsertCrd(obj);
        }
    }
    if (!fromController && type != "DELETED") scheduleSimulationLocked(res, obj);
    ctlCv_.notify_all();
    return obj;
}

std::shared_ptr<Watcher> Store::watch(const ResourceInfo& res, const std::string& ns,
                                      const WatchOptions& opts) {
    auto w = std::make_shared<Watcher>(res.storageKey(), res.namespaced ? ns : "",
                                       LabelSelector::parse(opts.labelSelector),
                                       FieldSelector::parse(opts.fieldSelector, res.kind));
    std::lock_guard<std::mutex> lk(mu_);
    const std::string& rvText = opts.resourceVersion;
    if (rvText.empty() || rvText == "0") {
        // Start with the current state as synthetic ADDED events.
        auto s = objects_.find(res.storageKey());
        if (s != objects_.end())
            for (const auto& [k, obj] : s->second)
                if (w->selects(obj)) w->push({"ADDED", obj});
        if (opts.sendInitialEvents)
            w->push({"BOOKMARK",
                     {{"metadata",
                       {{"resourceVersion", std::to_string(rv_)},
                        {"annotations", {{"k8s.io/initial-events-end", "true"}}}}}}});
        w->minRv = rv_;
    } else {
        uint64_t from = 0;
        try {
            from = std::stoull(rvText);
        } catch (...) {
            errors::badRequest("invalid resource version: " + rvText);
        }
        if (from < compactedRv_) {
            // As upstream: the stream opens (200) and carries a single 410 ERROR event.
            w->push({"ERROR", errors::status(410, "Expired",
                                             "too old resource version: " + rvText + " (" +
                                                 std::to_string(compactedRv_ + 1) + ")")});
            w->close();
            return w;
        }
        w->minRv = from;
        for (const auto& ev : history_)
            if (ev->rv > from) deliverLocked(*w, *ev);
        w->minRv = std::max(from, rv_);
    }
    watchers_.push_back(w);
    return w;
}

void Store::unwatch(const std::shared_ptr<Watcher>& w) {
    w->close();
    std::lock_guard<std::mutex> lk(mu_);
    std::erase(watchers_, w);
}

void Store::bookmark(Watcher& w) {
    std::lock_guard<std::mutex> lk(mu_);
    if (rv_ < w.minRv) return;  // watching from a future revision: nothing to confirm yet
    w.push({"BOOKMARK", {{"metadata", {{"resourceVersion", std::to_string(rv_)}}}}});
}

void Store::closeAllWatchers() {
    std::vector<std::shared_ptr<Watcher>> ws;
    {
        std::lock_guard<std::mutex> lk(mu_);
        ws.swap(watchers_);
    }
    for (auto& w : ws) w->close();
}

void Store::compact() {
    std::lock_guard<std::mutex> lk(mu_);
    // The compaction takes a revision of its own so that every revision handed out before it
    // (lists, watches, continue tokens) is now too old, while lists made afterwards return a
    // revision that can still be watched from.
    compactedRv_ = ++rv_;
    history_.clear();
}

std::string Store::currentResourceVersion() const {
    std::lock_guard<std::mutex> lk(mu_);
    return std::to_string(rv_);
}

}  // namespace sluice::testing
