#include <spdlog/spdlog.h>

#include <map>
#include <shared_mutex>

#include "sluice/kube/client.h"
#include "sluice/kube/paths.h"
#include "transport.h"

namespace sluice::kube {

using detail::HttpCall;
using detail::HttpResponse;
using nlohmann::json;

const char* toString(WatchEvent::Type t) {
    switch (t) {
        case WatchEvent::Type::Added:
            return "ADDED";
        case WatchEvent::Type::Modified:
            return "MODIFIED";
        case WatchEvent::Type::Deleted:
            return "DELETED";
        case WatchEvent::Type::Bookmark:
            return "BOOKMARK";
        case WatchEvent::Type::Error:
            return "ERROR";
    }
    return "UNKNOWN";
}

namespace {

constexpr const char* kJson = "application/json";
// PartialObjectMetadata first; plain JSON from a server that cannot transform.
constexpr const char* kPartialObjectMetadata =
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";

const char* contentTypeOf(PatchType t) {
    switch (t) {
        case PatchType::Merge:
            return "application/merge-patch+json";
        case PatchType::JsonPatch:
            return "application/json-patch+json";
        case PatchType::StrategicMerge:
            return "application/strategic-merge-patch+json";
        case PatchType::Apply:
            return "application/apply-patch+yaml";
    }
    return kJson;
}

std::optional<WatchEvent::Type> eventType(const std::string& s) {
    if (s == "ADDED") return WatchEvent::Type::Added;
    if (s == "MODIFIED") return WatchEvent::Type::Modified;
    if (s == "DELETED") return WatchEvent::Type::Deleted;
    if (s == "BOOKMARK") return WatchEvent::Type::Bookmark;
    if (s == "ERROR") return WatchEvent::Type::Error;
    return std::nullopt;
}

// Resources of one group-version as discovery lists them, by kind.
using KindMap = std::map<std::string, ResourceInfo>;

}  // namespace

struct RestClient::Impl {
    ClusterConfig cfg;
    detail::Transport transport;

    // Discovery cache: groupVersion -> kinds. Lookups share the lock; fetches are serialised by
    // fetchMu so that many threads missing at once cause one request, not one each.
    std::shared_mutex cacheMu;
    std::map<std::string, KindMap> cache;
    std::mutex fetchMu;

    explicit Impl(ClusterConfig c) : cfg(std::move(c)), transport(cfg) {}

    // Sends and turns any non-2xx answer into ApiError.
    HttpResponse send(HttpCall c) {
        HttpResponse r = transport.call(c);
        if (r.code < 200 || r.code >= 300)
            throw ApiError::fromResponse(r.code, r.body, r.retryAfter);
        return r;
    }

    json sendJson(HttpCall c) {
        HttpResponse r = send(std::move(c));
        if (r.body.empty()) return json::object();
        auto parsed = json::parse(r.body, nullptr, false);
        if (parsed.is_discarded())
            throw ApiError(500, "InternalError",
                           "HTTP " + std::to_string(r.code) +
                               " response is not JSON: " + r.body.substr(0, 200));
        return parsed;
    }

    std::optional<KindMap> fetchGroupVersion(const GroupVersionKind& gvk) {
        HttpCall c{"GET", groupVersionPath(gvk.group, gvk.version), "", "", "get", true};
        HttpResponse r = transport.call(c);
        if (r.code == 404) return std::nullopt;  // the group-version itself is not served
        if (r.code < 200 || r.code >= 300)
            throw ApiError::fromResponse(r.code, r.body, r.retryAfter);
        auto list = json::parse(r.body, nullptr, false);
        if (!list.is_object() || !list.contains("resources") || !list["resources"].is_array())
            throw ApiError(500, "InternalError",
                           "discovery " + c.target + ": not an APIResourceList");
        KindMap kinds;
        std::map<std::string, bool> hasStatus;
        for (const auto& res : list["resources"]) {
            std::string name = res.value("name", "");
            auto slash = name.find('/');
            if (slash != std::string::npos) {
                // Subresources ("deployments/status") share their parent's kind; only note them.
                if (name.substr(slash + 1) == "status") hasStatus[name.substr(0, slash)] = true;
                continue;
            }
            ResourceInfo ri;
            ri.gvk = GroupVersionKind{gvk.group, gvk.version, res.value("kind", "")};
            ri.resource = name;
            ri.namespaced = res.value("namespaced", false);
            if (res.contains("verbs") && res["verbs"].is_array())
                for (const auto& v : res["verbs"])
                    if (v.is_string()) ri.verbs.push_back(v);
            if (res.contains("shortNames") && res["shortNames"].is_array())
                for (const auto& v : res["shortNames"])
                    if (v.is_string()) ri.shortNames.push_back(v);
            if (!ri.gvk.kind.empty() && !kinds.count(ri.gvk.kind)) kinds.emplace(ri.gvk.kind, ri);
        }
        for (auto& [kind, ri] : kinds) ri.hasStatus = hasStatus.count(ri.resource) > 0;
        return kinds;
    }

    std::optional<ResourceInfo> lookup(const GroupVersionKind& gvk, bool* gvCached) {
        std::shared_lock lock(cacheMu);
        auto gv = cache.find(gvk.apiVersion());
        *gvCached = gv != cache.end();
        if (!*gvCached) return std::nullopt;
        auto it = gv->second.find(gvk.kind);
        if (it == gv->second.end()) return std::nullopt;
        return it->second;
    }

    ResourceInfo resourceFor(const GroupVersionKind& gvk) {
        if (gvk.version.empty() || gvk.kind.empty())
            throw ApiError(400, "BadRequest",
                           "object has no apiVersion or kind (\"" + gvk.str() + "\")");
        bool cached = false;
        if (auto ri = lookup(gvk, &cached)) return *ri;
        std::lock_guard fetchLock(fetchMu);
        // Another thread may have refreshed while this one waited.
        bool cachedNow = false;
        if (auto ri = lookup(gvk, &cachedNow)) return *ri;
        // A miss refreshes once, so CRDs installed after the cache was filled are found.
        auto kinds = fetchGroupVersion(gvk);
        {
            std::unique_lock lock(cacheMu);
            cache[gvk.apiVersion()] = kinds ? *kinds : KindMap{};
        }
        if (kinds) {
            auto it = kinds->find(gvk.kind);
            if (it != kinds->end()) return it->second;
        }
        throw ApiError(404, "NotFound",
                       "no resource for kind " + gvk.kind + " in " + gvk.apiVersion() +
                           (kinds ? "" : " (group-version not served)"));
    }

    // Namespace for a single object of a namespaced kind.
    std::string objectNamespace(const ResourceInfo& ri, const std::string& ns) const {
        if (!ri.namespaced) return "";
        return ns.empty() ? cfg.defaultNamespace : ns;
    }

    static void requireName(const std::string& name, const char* verb) {
        if (name.empty())
            throw ApiError(400, "BadRequest", std::string(verb) + ": object has no name");
    }

    // Items in a list omit apiVersion/kind; fill them so each object stands on its own.
    static void fillTypeMeta(json& item, const GroupVersionKind& gvk) {
        if (!item.is_object()) return;
        if (!item.contains("apiVersion")) item["apiVersion"] = gvk.apiVersion();
        if (!item.contains("kind")) item["kind"] = gvk.kind;
    }

    Object writeObject(const char* method, const char* verb, const Object& obj,
                       const WriteOptions& opts, const std::string& subresource, bool needName) {
        auto gvk = GroupVersionKind::of(obj);
        auto ri = resourceFor(gvk);
        std::string name = nameOf(obj);
        if (needName) requireName(name, verb);
        std::string path = resourcePath(ri, objectNamespace(ri, namespaceOf(obj)),
                                        needName ? name : "", subresource);
        QueryString q;
        q.add("fieldManager", opts.fieldManager);
        if (opts.dryRun) q.add("dryRun", "All");
        // POST is not idempotent: a retry after a lost answer could create twice.
        bool idempotent = std::string(method) != "POST";
        return sendJson({method, path + q.str(), obj.dump(), kJson, verb, idempotent});
    }
};

RestClient::RestClient(ClusterConfig cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}
RestClient::~RestClient() = default;

ResourceInfo RestClient::resourceFor(const GroupVersionKind& gvk) {
    return impl_->resourceFor(gvk);
}

ServerInfo RestClient::serverInfo() {
    ServerInfo info;
    json version = impl_->sendJson(HttpCall{"GET", "/version", "", "", "get", true});
    info.version = version.value("gitVersion", "");
    json core = impl_->sendJson(HttpCall{"GET", "/api", "", "", "get", true});
    for (const auto& v : core.value("versions", json::array()))
        if (v.is_string()) info.groupVersions.push_back(v.get<std::string>());
    json groups = impl_->sendJson(HttpCall{"GET", "/apis", "", "", "get", true});
    for (const auto& g : groups.value("groups", json::array()))
        for (const auto& v : g.value("versions", json::array()))
            if (v.is_object() && v.contains("groupVersion"))
                info.groupVersions.push_back(v["groupVersion"].get<std::string>());
    return info;
}

Object RestClient::get(const GroupVersionKind& gvk, const std::string& ns,
                       const std::string& name) {
    auto ri = impl_->resourceFor(gvk);
    Impl::requireName(name, "get");
    auto obj = impl_->sendJson(
        {"GET", resourcePath(ri, impl_->objectNamespace(ri, ns), name), "", "", "get", true});
    Impl::fillTypeMeta(obj, gvk);
    return obj;
}

ListResult RestClient::list(const GroupVersionKind& gvk, const std::string& ns,
                            const ListOptions& opts) {
    auto ri = impl_->resourceFor(gvk);
    QueryString q;
    q.add("labelSelector", opts.labelSelector);
    q.add("fieldSelector", opts.fieldSelector);
    if (opts.limit > 0) q.add("limit", std::to_string(opts.limit));
    q.add("continue", opts.continueToken);
    q.add("resourceVersion", opts.resourceVersion);
    q.add("resourceVersionMatch", opts.resourceVersionMatch);
    auto body = impl_->sendJson({"GET", resourcePath(ri, ns) + q.str(), "", "", "list", true});
    ListResult out;
    if (body.contains("items") && body["items"].is_array()) {
        out.items.reserve(body["items"].size());
        for (auto& item : body["items"]) {
            Impl::fillTypeMeta(item, gvk);
            out.items.push_back(std::move(item));
        }
    }
    if (body.contains("metadata") && body["metadata"].is_object()) {
        const auto& md = body["metadata"];
        out.resourceVersion = md.value("resourceVersion", "");
        out.continueToken = md.value("continue", "");
    }
    return out;
}

ListResult RestClient::listAll(const GroupVersionKind& gvk, const std::string& ns,
                               const ListOptions& opts) {
    ListResult all;
    ListOptions page = opts;
    for (;;) {
        ListResult r = list(gvk, ns, page);
        all.items.insert(all.items.end(), std::make_move_iterator(r.items.begin()),
                         std::make_move_iterator(r.items.end()));
        all.resourceVersion = r.resourceVersion;
        if (r.continueToken.empty()) break;
        // Later pages come from the first page's snapshot; the server rejects resourceVersion
        // together with continue.
        page.continueToken = r.continueToken;
        page.resourceVersion.clear();
        page.resourceVersionMatch.clear();
    }
    return all;
}

void RestClient::watch(const GroupVersionKind& gvk, const std::string& ns, const WatchOptions& opts,
                       const std::function<bool(WatchEvent&)>& onEvent, const StopToken& stop) {
    auto ri = impl_->resourceFor(gvk);
    QueryString q;
    q.add("watch", "1");
    if (opts.allowBookmarks) q.add("allowWatchBookmarks", "true");
    q.add("resourceVersion", opts.resourceVersion);
    q.add("labelSelector", opts.labelSelector);
    q.add("fieldSelector", opts.fieldSelector);
    if (opts.timeoutSeconds > 0) q.add("timeoutSeconds", std::to_string(opts.timeoutSeconds));
    HttpCall call{"GET", resourcePath(ri, ns) + q.str(), "", "", "watch", true};

    // A quiet but healthy watch may send nothing (a real API server sends no bookmark either)
    // until the server ends it at timeoutSeconds: the read timeout must outlast that.
    auto idle = impl_->cfg.watchIdleTimeout;
    if (opts.timeoutSeconds > 0)
        idle = std::max(idle, std::chrono::milliseconds(opts.timeoutSeconds * 1000LL + 30000));

    std::vector<MemberPath> raw;
    for (const auto& path : opts.rawMembers) {
        raw.push_back({"object"});
        raw.back().insert(raw.back().end(), path.begin(), path.end());
    }
    auto handleLine = [&](std::string& line) -> bool {
        auto ev = raw.empty() ? json::parse(line, nullptr, false) : parseKeepingRaw(line, raw);
        if (!ev.is_object() || !ev.contains("type") || !ev["type"].is_string())
            throw TransportError("watch " + impl_->transport.url(call.target) +
                                 ": malformed event: " + line.substr(0, 200));
        auto type = eventType(ev["type"]);
        if (!type) {
            spdlog::warn("kube: ignoring watch event of unknown type {}", ev["type"].dump());
            return true;
        }
        WatchEvent event{*type, ev.contains("object") ? std::move(ev["object"]) : json::object()};
        // An ERROR carrying a Status (e.g. 410 Expired) ends the watch as an ApiError; the
        // consumer does not also see it as an event. Anything else is passed on as is.
        if (*type == WatchEvent::Type::Error && event.object.is_object() &&
            (event.object.value("kind", "") == "Status" || event.object.contains("code")))
            throw ApiError::fromStatus(event.object);
        if (*type != WatchEvent::Type::Bookmark) Impl::fillTypeMeta(event.object, gvk);
        return onEvent(event);
    };
    auto failed = impl_->transport.stream(call, idle, handleLine, stop);
    if (failed) throw ApiError::fromResponse(failed->code, failed->body, failed->retryAfter);
}

Object RestClient::create(const Object& obj, const WriteOptions& opts) {
    return impl_->writeObject("POST", "create", obj, opts, "", false);
}

Object RestClient::update(const Object& obj, const WriteOptions& opts) {
    return impl_->writeObject("PUT", "update", obj, opts, "", true);
}

Object RestClient::updateStatus(const Object& obj, const WriteOptions& opts) {
    return impl_->writeObject("PUT", "update", obj, opts, "status", true);
}

Object RestClient::apply(const Object& obj, const ApplyOptions& opts) {
    auto gvk = GroupVersionKind::of(obj);
    auto ri = impl_->resourceFor(gvk);
    std::string name = nameOf(obj);
    Impl::requireName(name, "apply");
    QueryString q;
    // Server-side apply requires a field manager.
    q.add("fieldManager", opts.fieldManager.empty() ? std::string("sluice") : opts.fieldManager);
    if (opts.force) q.add("force", "true");
    if (opts.dryRun) q.add("dryRun", "All");
    std::string path =
        resourcePath(ri, impl_->objectNamespace(ri, namespaceOf(obj)), name, opts.subresource);
    // JSON is valid YAML, so the object goes as is under the apply-patch+yaml content type.
    return impl_->sendJson({"PATCH", path + q.str(), obj.dump(), contentTypeOf(PatchType::Apply),
                            opts.dryRun ? "apply-dry-run" : "apply", true});
}

Object RestClient::patch(const GroupVersionKind& gvk, const std::string& ns,
                         const std::string& name, PatchType type, const std::string& body,
                         const PatchOptions& opts) {
    auto ri = impl_->resourceFor(gvk);
    Impl::requireName(name, "patch");
    QueryString q;
    std::string manager = opts.fieldManager;
    if (type == PatchType::Apply && manager.empty()) manager = "sluice";
    q.add("fieldManager", manager);
    if (type == PatchType::Apply && opts.force) q.add("force", "true");
    if (opts.dryRun) q.add("dryRun", "All");
    std::string path =
        resourcePath(ri, impl_->objectNamespace(ri, ns), name, opts.subresource) + q.str();
    // A JSON patch may append to lists, so replaying it is not harmless.
    bool idempotent = type != PatchType::JsonPatch;
    HttpCall call{
        "PATCH",   path, body, contentTypeOf(type), type == PatchType::Apply ? "apply" : "patch",
        idempotent};
    if (opts.metadataOnly) call.accept = kPartialObjectMetadata;
    return impl_->sendJson(std::move(call));
}

Object RestClient::remove(const GroupVersionKind& gvk, const std::string& ns,
                          const std::string& name, const DeleteOptions& opts) {
    auto ri = impl_->resourceFor(gvk);
    Impl::requireName(name, "delete");
    json body = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
    if (!opts.propagationPolicy.empty()) body["propagationPolicy"] = opts.propagationPolicy;
    if (opts.gracePeriodSeconds) body["gracePeriodSeconds"] = *opts.gracePeriodSeconds;
    if (!opts.preconditionUid.empty()) body["preconditions"]["uid"] = opts.preconditionUid;
    if (!opts.preconditionResourceVersion.empty())
        body["preconditions"]["resourceVersion"] = opts.preconditionResourceVersion;
    QueryString q;
    if (opts.dryRun) {
        body["dryRun"] = json::array({"All"});
        q.add("dryRun", "All");
    }
    std::string path = resourcePath(ri, impl_->objectNamespace(ri, ns), name) + q.str();
    return impl_->sendJson({"DELETE", path, body.dump(), kJson, "delete", true});
}

json RestClient::getPath(const std::string& path) {
    return impl_->sendJson({"GET", path, "", "", "get", true});
}

void RestClient::invalidateDiscovery() {
    std::unique_lock lock(impl_->cacheMu);
    impl_->cache.clear();
}

RequestStats RestClient::stats() const {
    return impl_->transport.stats();
}

void RestClient::setRequestObserver(RequestObserver observer) {
    impl_->transport.setObserver(std::move(observer));
}

const ClusterConfig& RestClient::config() const {
    return impl_->cfg;
}

}  // namespace sluice::kube
