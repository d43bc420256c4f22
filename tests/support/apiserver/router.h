#pragma once
// HTTP front end: authentication, fault injection, URL -> resource routing, query options,
// content negotiation (JSON, Table, PartialObjectMetadata) and watch streaming.
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "apiserver/api_server.h"
#include "apiserver/authorizer.h"
#include "apiserver/flow_control.h"
#include "apiserver/store.h"
#include "http/http_server.h"

namespace sluice::testing {

class RequestCounters {
  public:
    explicit RequestCounters(size_t auditCapacity = 10000) : auditCapacity_(auditCapacity) {}
    void add(const std::string& verb);
    std::map<std::string, uint64_t> snapshot() const;
    void reset();
    void record(AuditEvent e);
    std::vector<AuditEvent> audit() const;

  private:
    mutable std::mutex mu_;
    std::map<std::string, uint64_t> counts_;
    std::deque<AuditEvent> audit_;
    size_t auditCapacity_;
};

// Bearer tokens that no longer authenticate (ApiServer::revokeToken).
class RevokedTokens {
  public:
    void add(const std::string& token);
    bool contains(const std::string& token) const;

  private:
    mutable std::mutex mu_;
    std::set<std::string> tokens_;
};

class Router {
  public:
    Router(Store& store, FaultInjector& faults, RequestCounters& counters,
           const ApiServerOptions& opts, std::function<std::string()> serverAddress,
           const RevokedTokens& revoked)
        : store_(store),
          faults_(faults),
          counters_(counters),
          revoked_(revoked),
          opts_(opts),
          serverAddress_(std::move(serverAddress)),
          flow_(opts.apfSeats, opts.apfQueueLength) {}

    // API Priority and Fairness first (headers, seats), then route().
    void handle(const HttpRequest& req, ResponseWriter& w);
    // Asks every running watch stream to end (used by stop()).
    void stopWatches() { stopping_ = true; }

  private:
    struct Caller {
        UserInfo user;
        bool restricted = false;     // a userTokens user: subject to RBAC when opts_.authorize
        std::string impersonatedBy;  // the authenticated user, when `user` is impersonated
    };
    void route(const HttpRequest& req, ResponseWriter& w);
    std::optional<Caller> authenticate(const HttpRequest& req) const;
    // Answers 403 and returns false when RBAC denies the request (restricted callers, when
    // opts_.authorize); records it in the audit log either way.
    bool authorized(const HttpRequest& req, ResponseWriter& w, const Caller& caller);
    Decision decide(const RequestAttributes& attrs, const UserInfo& user);
    // The Impersonate-* headers: false when answered (403, or 500 for groups without a user);
    // otherwise the caller becomes the impersonated user, if any.
    bool impersonate(const HttpRequest& req, ResponseWriter& w, Caller& caller);
    void audit(const HttpRequest& req, const Caller& caller, bool allowed);
    bool applyFault(const HttpRequest& req, ResponseWriter& w);
    void serveNonResource(const HttpRequest& req, ResponseWriter& w,
                          const std::vector<std::string>& seg);
    void serveResource(const HttpRequest& req, ResponseWriter& w, const std::string& group,
                       const std::string& version, std::vector<std::string> rest);
    void serveWatch(const HttpRequest& req, ResponseWriter& w, const ResourceInfo& res,
                    const std::string& ns, const std::string& name);

    Store& store_;
    FaultInjector& faults_;
    RequestCounters& counters_;
    const RevokedTokens& revoked_;
    ApiServerOptions opts_;
    std::function<std::string()> serverAddress_;
    std::atomic<bool> stopping_{false};
    FlowControl flow_;
};

}  // namespace sluice::testing
