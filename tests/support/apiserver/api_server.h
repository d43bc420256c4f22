#pragma once
// An in-process Kubernetes API server for integration tests: real HTTP(S) on loopback,
// discovery, CRUD, list/watch, server-side apply, status subresources, finalizers and garbage
// collection, CRDs, kubectl tables, plus fault injection for client reliability tests.
// It follows the documented kube-apiserver conventions for everything Sluice and kubectl use.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::testing {

struct ApiServerOptions {
    std::string host = "127.0.0.1";
    int port = 0;  // 0 = pick a free port
    bool tls = true;
    // Impersonate-User / Impersonate-Group headers are honoured as kube-apiserver does: the
    // authenticated user needs verb impersonate on them (RBAC when authorize; superusers may
    // impersonate anyone), then the request runs as the impersonated user, under RBAC when
    // authorize unless that user is a superuser (group system:masters).
    // Accepted bearer tokens of the superuser "admin" (group system:masters); no tokens,
    // userTokens or clientCaPem = no authentication.
    std::vector<std::string> tokens = {"test-token"};
    // More bearer tokens, each of the named user, e.g. "system:serviceaccount:<ns>:<name>"
    // (groups system:serviceaccounts, system:serviceaccounts:<ns>); all get system:authenticated.
    std::map<std::string, std::string> userTokens;
    // RBAC-authorize every request of a userTokens user against the Roles, ClusterRoles,
    // RoleBindings and ClusterRoleBindings stored in this server. Off: any authenticated user
    // may do everything. Superuser tokens and client certificates are never restricted.
    bool authorize = false;
    std::string clientCaPem;      // if set, client certs signed by it authenticate (mTLS)
    size_t watchHistory = 10000;  // events kept; watch/continue from an older RV gets 410 Gone
    // kube-apiserver's watch cache sends a bookmark to a watch that asked for them about once a
    // minute, and none otherwise: a quiet watch hears nothing for that long. Tests that need
    // resumable positions sooner ask for less.
    std::chrono::milliseconds bookmarkInterval{60000};
    // API Priority and Fairness: requests (not watches) served at once; more wait in a queue
    // of apfQueueLength, and beyond that get 429 with Retry-After: 1. 0 = unlimited. Every
    // response carries the X-Kubernetes-PF-* headers either way.
    int apfSeats = 0;
    int apfQueueLength = 50;
    bool simulateWorkloads = true;  // write simulatedStatus() shortly after workload changes
    std::chrono::milliseconds simulateDelay{200};
    // Entries auditLog() keeps (the oldest are dropped beyond it).
    size_t auditLogCapacity = 10000;
};

// Thread-safe. A rule matches by HTTP method ("" = any), path substring ("" = any); rules are
// consumed in the order they were added, one request per count.
class FaultInjector {
  public:
    enum class Action { Fail, Throttle, Delay, Disconnect };
    struct Rule {
        Action action = Action::Fail;
        int remaining = 0;
        int httpCode = 500;
        int retryAfterSeconds = 1;
        std::chrono::milliseconds delay{0};
        std::string method;
        std::string pathContains;
    };

    // Answer with httpCode and a Status body.
    void failNext(int count, int httpCode, std::string method = "", std::string pathContains = "");
    // 429 TooManyRequests + Retry-After.
    void throttleNext(int count, int retryAfterSeconds, std::string method = "",
                      std::string pathContains = "");
    // Sleep before handling normally.
    void delayNext(int count, std::chrono::milliseconds delay, std::string method = "",
                   std::string pathContains = "");
    // Close the connection without answering.
    void disconnectNext(int count, std::string method = "", std::string pathContains = "");
    void clear();

    // Used by the server: the first matching rule (its count decremented), if any.
    std::optional<Rule> take(const std::string& method, const std::string& path);

  private:
    void add(Rule r);
    std::mutex mu_;
    std::vector<Rule> rules_;
};

// One authenticated API request as an audit log records it: who made it (the impersonated user
// when the request impersonated one, with the authenticated user in impersonatedBy), the verb
// and the object, and whether it was authorized.
struct AuditEvent {
    std::string user;
    std::string impersonatedBy;  // "" : no impersonation
    std::string verb;            // as RBAC sees it: get list watch create update patch delete ...
    std::string apiGroup, resource, ns, name;
    bool allowed = true;                       // false: answered 403
    std::chrono::steady_clock::time_point at;  // when it was authorized (before it was served)
};

class ApiServer {
  public:
    explicit ApiServer(ApiServerOptions opts = {});
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    void start();
    void stop();
    std::string url() const;  // "https://127.0.0.1:PORT"
    int port() const;
    std::string caPem() const;         // CA that signed the server cert ("" without TLS)
    const std::string& token() const;  // first token ("" when auth is off)
    // Writes a kubeconfig (token auth, embedded CA data) and returns its path.
    std::string writeKubeconfig(const std::string& path,
                                const std::string& contextName = "test") const;

    FaultInjector& faults();
    // From now on `token` (one of tokens or userTokens) authenticates no one: requests
    // carrying it get 401 Unauthorized, as kube-apiserver answers a token that expired or was
    // revoked. Kept across restart().
    void revokeToken(const std::string& token);
    void dropWatches();  // cut every open watch stream now
    void compact();      // forget history: watches/continue tokens from before now get 410
    // As a kube-apiserver restart: every connection cut, nothing served for `down`, then the
    // same address and certificate with the objects kept and the watch history compacted.
    void restart(std::chrono::milliseconds down);

    // Direct access for test set-up/inspection, bypassing HTTP (same semantics as the REST
    // path, field manager "test"). create() throws ApiError on failure.
    nlohmann::json create(const nlohmann::json& obj);
    // create() for every document of a YAML file, in order: CRDs as shipped, example manifests.
    void createFromFile(const std::string& path);
    std::optional<nlohmann::json> get(const std::string& apiVersion, const std::string& kind,
                                      const std::string& ns, const std::string& name);
    std::vector<nlohmann::json> list(const std::string& apiVersion, const std::string& kind,
                                     const std::string& ns = "");

    // Handled REST requests by verb: get list watch create update patch apply delete
    // (status subresource writes are counted as update/patch).
    std::map<std::string, uint64_t> requestCounts() const;
    void resetRequestCounts();
    // The last auditLogCapacity (default 10000) resource requests (after authentication),
    // oldest first; emptied by resetRequestCounts().
    std::vector<AuditEvent> auditLog() const;
    std::string currentResourceVersion() const;

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

// A failed API call as a metav1.Status (thrown by ApiServer::create).
class ApiError : public std::runtime_error {
  public:
    explicit ApiError(nlohmann::json status)
        : std::runtime_error(status.value("message", std::string("api error"))),
          status(std::move(status)) {}
    int code() const { return status.value("code", 0); }
    std::string reason() const { return status.value("reason", std::string()); }
    nlohmann::json status;
};

}  // namespace sluice::testing
