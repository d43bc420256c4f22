#pragma once
// The Kubernetes API as Sluice uses it. KubeClient is the seam between controllers and the
// network: RestClient implements it over HTTP(S); tests may implement it in memory.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/kube/config.h"
#include "sluice/kube/errors.h"
#include "sluice/kube/raw_json.h"
#include "sluice/kube/types.h"
#include "sluice/util/stop.h"

namespace sluice::kube {

struct ListOptions {
    std::string labelSelector;
    std::string fieldSelector;
    int64_t limit = 0;                 // page size; 0 = server default (all)
    std::string continueToken;         // from a previous page
    std::string resourceVersion;       // "" = most recent (quorum read)
    std::string resourceVersionMatch;  // "", "Exact" or "NotOlderThan"
};

struct ListResult {
    std::vector<Object> items;
    std::string resourceVersion;  // list's metadata.resourceVersion
    std::string continueToken;    // non-empty when more pages remain
};

struct WatchEvent {
    enum class Type { Added, Modified, Deleted, Bookmark, Error };
    Type type;
    Object object;  // for Error: a metav1.Status
};
const char* toString(WatchEvent::Type t);

struct WatchOptions {
    std::string resourceVersion;  // start after this version; "" = from now (synthetic ADDs)
    bool allowBookmarks = true;
    std::string labelSelector;
    std::string fieldSelector;
    int timeoutSeconds = 0;  // server-side stream lifetime; 0 = server default
    // Members of each event's object kept as their JSON text (parseKeepingRaw), for caches
    // that store them packed; paths from the object's top ({"status", "resources"}).
    std::vector<MemberPath> rawMembers;
};

struct ApplyOptions {
    std::string fieldManager = "sluice";
    bool force = false;
    bool dryRun = false;      // dryRun=All
    std::string subresource;  // "" or "status"
};

enum class PatchType { Merge, JsonPatch, StrategicMerge, Apply };

struct PatchOptions {
    std::string fieldManager;  // optional
    bool dryRun = false;
    bool force = false;       // only for PatchType::Apply
    std::string subresource;  // "" or "status"
    // Ask for the answer as PartialObjectMetadata (metadata only: resourceVersion, labels,
    // annotations), for writes whose caller needs nothing else; it saves sending and parsing
    // a large object. A server without the transformation answers with the whole object.
    bool metadataOnly = false;
};

struct WriteOptions {
    std::string fieldManager;  // optional
    bool dryRun = false;
};

struct DeleteOptions {
    std::string propagationPolicy;  // "", "Foreground", "Background", "Orphan"
    std::optional<int64_t> gracePeriodSeconds;
    std::string preconditionUid;
    std::string preconditionResourceVersion;
    bool dryRun = false;
};

// What renders need to know of a cluster (Argo CD hands it to `helm template`).
struct ServerInfo {
    std::string version;                     // /version gitVersion, e.g. "v1.32.3"
    std::vector<std::string> groupVersions;  // served group/versions: "v1", "apps/v1", ...
};

class KubeClient {
  public:
    virtual ~KubeClient() = default;

    // The server's version and group/versions (/version, /api, /apis). Clients that cannot
    // tell return an empty ServerInfo; throws ApiError / TransportError when the server fails.
    virtual ServerInfo serverInfo() { return {}; }

    // Discovery: apiVersion+kind -> resource. Cached; a miss refreshes the cache once so CRDs
    // installed later are found. Throws ApiError 404 (reason NotFound) for unknown kinds.
    virtual ResourceInfo resourceFor(const GroupVersionKind& gvk) = 0;

    // ns is ignored for cluster-scoped kinds. list/watch with ns "" span all namespaces.
    virtual Object get(const GroupVersionKind& gvk, const std::string& ns,
                       const std::string& name) = 0;
    virtual ListResult list(const GroupVersionKind& gvk, const std::string& ns,
                            const ListOptions& opts = {}) = 0;
    // Lists every page (following continue tokens) into one result.
    virtual ListResult listAll(const GroupVersionKind& gvk, const std::string& ns,
                               const ListOptions& opts = {}) = 0;

    // Streams one watch. Calls onEvent for each event (which it may move the object out of) until:
    // onEvent returns false, the stop token fires, or the server closes the stream (all return
    // normally). An HTTP error or a watch ERROR event carrying a Status throws ApiError (410 Gone:
    // isGone()); a dropped connection throws TransportError. Never retries by itself: Reflector
    // does that.
    virtual void watch(const GroupVersionKind& gvk, const std::string& ns, const WatchOptions& opts,
                       const std::function<bool(WatchEvent&)>& onEvent,
                       const StopToken& stop = {}) = 0;

    virtual Object create(const Object& obj, const WriteOptions& opts = {}) = 0;
    // PUT; obj must carry metadata.resourceVersion for optimistic concurrency.
    virtual Object update(const Object& obj, const WriteOptions& opts = {}) = 0;
    virtual Object updateStatus(const Object& obj, const WriteOptions& opts = {}) = 0;
    // Server-side apply of obj (a partial object holding only the fields this manager owns).
    virtual Object apply(const Object& obj, const ApplyOptions& opts = {}) = 0;
    virtual Object patch(const GroupVersionKind& gvk, const std::string& ns,
                         const std::string& name, PatchType type, const std::string& body,
                         const PatchOptions& opts = {}) = 0;
    // Returns the object as the server answered (it may still exist, being finalized), or a
    // Status object when the server returned one.
    virtual Object remove(const GroupVersionKind& gvk, const std::string& ns,
                          const std::string& name, const DeleteOptions& opts = {}) = 0;
};

// Counters a client keeps about its own traffic (for metrics and benchmarks).
struct RequestStats {
    uint64_t requests = 0;
    uint64_t retries = 0;
    uint64_t throttledWaits = 0;   // times the client-side rate limiter made a request wait
    uint64_t serverThrottled = 0;  // 429 answers (API Priority and Fairness, or a proxy)
    int concurrencyLimit = 0;      // requests allowed in flight now (0 = unbounded)
    bool apf = false;              // the server showed API Priority and Fairness headers
};

// Observes every finished request: verb (get, list, watch, create, update, patch, apply,
// delete), HTTP code (0 for transport errors) and latency.
using RequestObserver =
    std::function<void(const std::string& verb, int code, std::chrono::nanoseconds latency)>;

// KubeClient over HTTP(S) with cpprestsdk: TLS and mTLS, bearer/basic auth, client-side rate
// limit, timeouts, and retries (honouring Retry-After on 429, capped exponential backoff on
// 5xx and connection failures; non-idempotent requests are retried only when the server
// cannot have acted: 429, 503 with Retry-After, connection refused).
class RestClient final : public KubeClient {
  public:
    explicit RestClient(ClusterConfig cfg);
    ~RestClient() override;

    ResourceInfo resourceFor(const GroupVersionKind& gvk) override;
    ServerInfo serverInfo() override;
    Object get(const GroupVersionKind& gvk, const std::string& ns,
               const std::string& name) override;
    ListResult list(const GroupVersionKind& gvk, const std::string& ns,
                    const ListOptions& opts = {}) override;
    ListResult listAll(const GroupVersionKind& gvk, const std::string& ns,
                       const ListOptions& opts = {}) override;
    void watch(const GroupVersionKind& gvk, const std::string& ns, const WatchOptions& opts,
               const std::function<bool(WatchEvent&)>& onEvent,
               const StopToken& stop = {}) override;
    Object create(const Object& obj, const WriteOptions& opts = {}) override;
    Object update(const Object& obj, const WriteOptions& opts = {}) override;
    Object updateStatus(const Object& obj, const WriteOptions& opts = {}) override;
    Object apply(const Object& obj, const ApplyOptions& opts = {}) override;
    Object patch(const GroupVersionKind& gvk, const std::string& ns, const std::string& name,
                 PatchType type, const std::string& body, const PatchOptions& opts = {}) override;
    Object remove(const GroupVersionKind& gvk, const std::string& ns, const std::string& name,
                  const DeleteOptions& opts = {}) override;

    // Raw GET of an API path (e.g. "/version", "/apis"); throws like the verbs do.
    nlohmann::json getPath(const std::string& path);
    // Drops the discovery cache.
    void invalidateDiscovery();

    RequestStats stats() const;
    void setRequestObserver(RequestObserver observer);
    const ClusterConfig& config() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::kube
