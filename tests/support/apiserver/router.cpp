#include "apiserver/router.h"

#include <thread>

#include "apilogic/apilogic.h"
#include "apiserver/discovery.h"
#include "apiserver/status_errors.h"

namespace sluice::testing {

void RequestCounters::add(const std::string& verb) {
    std::lock_guard<std::mutex> lk(mu_);
    ++counts_[verb];
}
std::map<std::string, uint64_t> RequestCounters::snapshot() const {
    std::lock_guard<std::mutex> lk(mu_);
    return counts_;
}
void RequestCounters::reset() {
    std::lock_guard<std::mutex> lk(mu_);
    counts_.clear();
    audit_.clear();
}
void RequestCounters::record(AuditEvent e) {
    std::lock_guard<std::mutex> lk(mu_);
    audit_.push_back(std::move(e));
    if (audit_.size() > auditCapacity_) audit_.pop_front();
}
std::vector<AuditEvent> RequestCounters::audit() const {
    std::lock_guard<std::mutex> lk(mu_);
    return {audit_.begin(), audit_.end()};
}

namespace {

class DisconnectRequested : public std::runtime_error {
  public:
    DisconnectRequested() : std::runtime_error("fault injection: disconnect") {}
};

void sendJson(ResponseWriter& w, int code, const json& body,
              const std::vector<std::string>& warnings = {}) {
    std::map<std::string, std::string> headers = {{"Content-Type", "application/json"}};
    if (!warnings.empty()) {
        // RFC 7234 warn-values, comma separated, as kube-apiserver sends them.
        std::string v;
        for (const auto& msg : warnings) {
            if (!v.empty()) v += ", ";
            v += "299 - " + json(msg).dump();
        }
        headers["Warning"] = v;
    }
    w.respond(code, headers, body.dump() + "\n");
}

void sendStatus(ResponseWriter& w, const json& status) {
    sendJson(w, status.value("code", 500), status);
}

bool truthy(const std::string& v) {
    return v == "1" || v == "true" || v == "True";
}

std::string reasonForCode(int code) {
    switch (code) {
        case 400:
            return "BadRequest";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "NotFound";
        case 405:
            return "MethodNotAllowed";
        case 409:
            return "Conflict";
        case 410:
            return "Expired";
        case 422:
            return "Invalid";
        case 429:
            return "TooManyRequests";
        case 503:
            return "ServiceUnavailable";
        case 504:
            return "Timeout";
        default:
            return code >= 500 ? "InternalError" : "Unknown";
    }
}

// Table output for kubectl: Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...
bool wantsTable(const HttpRequest& req) {
    return req.header("accept").find("as=Table") != std::string::npos;
}
bool wantsPartialMetadata(const HttpRequest& req) {
    return req.header("accept").find("as=PartialObjectMetadata") != std::string::npos;
}

// Custom resources are stored once and shown in the version they were asked for.
json present(const ResourceInfo& res, json obj) {
    if (res.isCustom && obj.is_object()) obj["apiVersion"] = res.apiVersion();
    return obj;
}

json partialMetadata(const json& obj) {
    return {{"kind", "PartialObjectMetadata"},
            {"apiVersion", "meta.k8s.io/v1"},
            {"metadata", obj.value("metadata", json::object())}};
}

// The answer to a create, update or patch: the object, or only its metadata when the client
// asked for PartialObjectMetadata (kube-apiserver transforms write responses as it does reads).
template <class Result>
void sendWritten(ResponseWriter& w, const Result& r, const ResourceInfo& res, bool partial) {
    json body = present(res, r.body);
    sendJson(w, r.code, partial ? partialMetadata(body) : body, r.warnings);
}

// Upstream derives the default field manager from the User-Agent's program name.
std::string fieldManagerOf(const HttpRequest& req) {
    std::string fm = req.queryParam("fieldManager");
    if (!fm.empty()) return fm;
    std::string ua = req.header("user-agent");
    std::string prefix = ua.substr(0, ua.find('/'));
    return prefix.empty() ? "unknown" : prefix.substr(0, 128);
}

}  // namespace

void RevokedTokens::add(const std::string& token) {
    std::lock_guard lock(mu_);
    tokens_.insert(token);
}

bool RevokedTokens::contains(const std::string& token) const {
    std::lock_guard lock(mu_);
    return tokens_.count(token) > 0;
}

std::optional<Router::Caller> Router::authenticate(const HttpRequest& req) const {
    if (opts_.tokens.empty() && opts_.userTokens.empty() && opts_.clientCaPem.empty())
        return Caller{superUser(), false, ""};
    if (!opts_.clientCaPem.empty() && !req.clientCertCommonName.empty()) {
        // Certificate users keep their old unrestricted access; RBAC is for userTokens.
        UserInfo u{req.clientCertCommonName, {}};
        if (!req.clientCertOrganization.empty()) u.groups.push_back(req.clientCertOrganization);
        u.groups.push_back("system:authenticated");
        return Caller{u, false, ""};
    }
    std::string auth = req.header("authorization");
    const std::string bearer = "Bearer ";
    if (auth.compare(0, bearer.size(), bearer) != 0) return std::nullopt;
    std::string tok = auth.substr(bearer.size());
    if (revoked_.contains(tok)) return std::nullopt;
    for (const auto& t : opts_.tokens)
        if (t == tok) return Caller{superUser(), false, ""};
    auto it = opts_.userTokens.find(tok);
    if (it != opts_.userTokens.end()) return Caller{userFromName(it->second), true, ""};
    return std::nullopt;
}

bool Router::authorized(const HttpRequest& req, ResponseWriter& w, const Caller& caller) {
    if (!caller.restricted || !opts_.authorize) {
        audit(req, caller, true);
        return true;
    }
    // The same reading of ?watch as serveResource, so the verb checked is the one served.
    RequestAttributes attrs = requestAttributes(
        req.method, req.path, truthy(req.queryParam("watch")), req.queryParam("fieldSelector"));
    Decision d = decide(attrs, caller.user);
    // Recorded before the answer: a client that got it finds it in the log.
    audit(req, caller, d.allowed);
    if (d.allowed) return true;
    sendStatus(w, forbiddenStatus(attrs, caller.user, d.reason));
    return false;
}

bool Router::impersonate(const HttpRequest& req, ResponseWriter& w, Caller& caller) {
    const std::string userName = req.header("impersonate-user");
    const std::string group = req.header("impersonate-group");
    if (userName.empty() && group.empty()) return true;
    std::vector<std::string> groups;
    if (!group.empty()) groups.push_back(group);
    const Impersonation imp = impersonationOf(userName, groups);
    if (!imp.error.empty()) {
        sendStatus(w,
                   errors::status(500, "InternalError", "Internal error occurred: " + imp.error));
        return false;
    }
    // Only RBAC-restricted callers are checked: superusers, certificate users and everyone
    // when authorization is off may impersonate anyone.
    if (caller.restricted && opts_.authorize)
        for (const RequestAttributes& check : imp.checks) {
            Decision d = decide(check, caller.user);
            if (d.allowed) continue;
            sendStatus(w, forbiddenStatus(check, caller.user, d.reason));
            return false;
        }
    caller = Caller{imp.user, !isSuperUser(imp.user), caller.user.name};
    return true;
}

void Router::audit(const HttpRequest& req, const Caller& caller, bool allowed) {
    RequestAttributes a = requestAttributes(req.method, req.path, truthy(req.queryParam("watch")),
                                            req.queryParam("fieldSelector"));
    if (!a.resourceRequest) return;
    counters_.record(AuditEvent{caller.user.name, caller.impersonatedBy, a.verb, a.apiGroup,
                                a.resource, a.ns, a.name, allowed,
                                std::chrono::steady_clock::now()});
}

Decision Router::decide(const RequestAttributes& attrs, const UserInfo& user) {
    RbacPolicy policy;
    auto load = [&](const char* plural, const std::string& ns, std::vector<json>& out) {
        if (auto res = store_.resolve("rbac.authorization.k8s.io", "v1", plural))
            out = store_.list(*res, ns, ListOptions{}).items;
    };
    load("clusterroles", "", policy.clusterRoles);
    load("clusterrolebindings", "", policy.clusterRoleBindings);
    // Only the request's namespace's RoleBindings can grant anything.
    if (!attrs.ns.empty()) {
        load("roles", attrs.ns, policy.roles);
        load("rolebindings", attrs.ns, policy.roleBindings);
    }
    return authorize(attrs, user, policy);
}

bool Router::applyFault(const HttpRequest& req, ResponseWriter& w) {
    auto rule = faults_.take(req.method, req.target);
    if (!rule) return false;
    switch (rule->action) {
        case FaultInjector::Action::Delay:
            std::this_thread::sleep_for(rule->delay);
            return false;
        case FaultInjector::Action::Fail:
            sendStatus(w, errors::status(rule->httpCode, reasonForCode(rule->httpCode),
                                         "injected fault: " + reasonForCode(rule->httpCode)));
            return true;
        case FaultInjector::Action::Throttle: {
            json st =
                errors::status(429, "TooManyRequests", "Too many requests, please try again later.",
                               {{"retryAfterSeconds", rule->retryAfterSeconds}});
            w.respond(429,
                      {{"Content-Type", "application/json"},
                       {"Retry-After", std::to_string(rule->retryAfterSeconds)}},
                      st.dump() + "\n");
            return true;
        }
        case FaultInjector::Action::Disconnect:
            // The HTTP layer cannot drop a connection before answering, so the response head
            // goes out and the connection is cut before any body: the client sees a
            // truncated response, as when a proxy drops the connection.
            w.startStream(200, {{"Content-Type", "application/json"}});
            throw DisconnectRequested();
    }
    return false;
}

void Router::handle(const HttpRequest& req, ResponseWriter& raw) {
    ApfHeaderWriter w(raw);
    // Long-running requests (watches) hold no seat, as upstream.
    const std::string watchParam = req.queryParam("watch");
    const bool watch =
        watchParam == "true" || watchParam == "1" || req.path.find("/watch/") != std::string::npos;
    const bool exempt = req.path == "/healthz" || req.path == "/readyz" || req.path == "/livez";
    if (watch || exempt) return route(req, w);
    auto seat = flow_.admit();
    if (!seat) {
        json st =
            errors::status(429, "TooManyRequests", "Too many requests, please try again later.",
                           {{"retryAfterSeconds", 1}});
        w.respond(429, {{"Content-Type", "application/json"}, {"Retry-After", "1"}},
                  st.dump() + "\n");
        return;
    }
    route(req, w);
}

void Router::route(const HttpRequest& req, ResponseWriter& w) {
    const auto seg = splitPath(req.path);
    const bool health = !seg.empty() && (seg[0] == "healthz" || seg[0] == "readyz" ||
                                         seg[0] == "livez" || seg[0] == "version");
    if (applyFault(req, w)) return;
    std::optional<Caller> caller;
    if (!health) {
        caller = authenticate(req);
        if (!caller) {
            sendStatus(w, errors::unauthorized());
            return;
        }
    }
    try {
        // As kube-apiserver, authorization comes before routing: a denied request gets 403
        // even for a resource that does not exist.
        if (caller && (!impersonate(req, w, *caller) || !authorized(req, w, *caller))) return;
        if (seg.size() >= 2 && seg[0] == "api" && seg[1] == "v1" && seg.size() > 2) {
            serveResource(req, w, "", "v1", {seg.begin() + 2, seg.end()});
        } else if (seg.size() > 3 && seg[0] == "apis") {
            serveResource(req, w, seg[1], seg[2], {seg.begin() + 3, seg.end()});
        } else {
            serveNonResource(req, w, seg);
        }
    } catch (const ApiError& e) {
        sendStatus(w, e.status);
    } catch (const DisconnectRequested&) {
        throw;
    } catch (const std::exception& e) {
        sendStatus(w, errors::status(500, "InternalError",
                                     std::string("Internal error occurred: ") + e.what()));
    }
}

void Router::serveNonResource(const HttpRequest& req, ResponseWriter& w,
                              const std::vector<std::string>& seg) {
    if (req.method != "GET" && req.method != "HEAD") {
        sendStatus(w, errors::status(405, "MethodNotAllowed",
                                     "the server does not allow this method on the requested "
                                     "resource"));
        return;
    }
    auto notFound = [&] {
        w.respond(404, {{"Content-Type", "text/plain; charset=utf-8"}}, "404 page not found\n");
    };
    if (seg.empty()) {
        sendJson(w, 200,
                 {{"paths",
                   {"/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v2", "/openapi/v3",
                    "/readyz", "/version"}}});
        return;
    }
    if (seg[0] == "healthz" || seg[0] == "readyz" || seg[0] == "livez") {
        w.respond(200, {{"Content-Type", "text/plain; charset=utf-8"}}, "ok");
        return;
    }
    if (seg[0] == "version" && seg.size() == 1) {
        sendJson(w, 200, discovery::version());
        return;
    }
    auto resources = store_.resources();
    if (seg[0] == "api" && seg.size() == 1) {
        sendJson(w, 200, discovery::apiVersions(serverAddress_()));
        return;
    }
    if (seg[0] == "api" && seg.size() == 2) {
        auto l = discovery::apiResourceList(resources, "", seg[1]);
        if (!l) return notFound();
        sendJson(w, 200, *l);
        return;
    }
    if (seg[0] == "apis" && seg.size() == 1) {
        sendJson(w, 200, discovery::apiGroupList(resources));
        return;
    }
    if (seg[0] == "apis" && seg.size() == 2) {
        auto g = discovery::apiGroup(resources, seg[1]);
        if (!g) return notFound();
        sendJson(w, 200, *g);
        return;
    }
    if (seg[0] == "apis" && seg.size() == 3) {
        auto l = discovery::apiResourceList(resources, seg[1], seg[2]);
        if (!l) return notFound();
        sendJson(w, 200, *l);
        return;
    }
    if (seg[0] == "openapi" && seg.size() == 2 && seg[1] == "v2") {
        if (req.header("accept").find("protobuf") != std::string::npos) {
            // An empty protobuf message is a valid, empty openapi_v2.Document: kubectl then
            // skips client-side schema checks and relies on server-side field validation.
            w.respond(
                200,
                {{"Content-Type", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"}},
                "");
            return;
        }
        sendJson(w, 200, discovery::openApiV2());
        return;
    }
    if (seg[0] == "openapi" && seg.size() >= 2 && seg[1] == "v3") {
        if (seg.size() == 2) {
            sendJson(w, 200, discovery::openApiV3Root(resources));
            return;
        }
        std::string gv;
        for (size_t i = 2; i < seg.size(); ++i) gv += (i > 2 ? "/" : "") + seg[i];
        auto doc = discovery::openApiV3GroupVersion(resources, gv);
        if (!doc) return notFound();
        sendJson(w, 200, *doc);
        return;
    }
    notFound();
}

void Router::serveResource(const HttpRequest& req, ResponseWriter& w, const std::string& group,
                           const std::string& version, std::vector<std::string> rest) {
    bool legacyWatch = false;
    if (!rest.empty() && rest[0] == "watch") {
        legacyWatch = true;
        rest.erase(rest.begin());
    }
    std::string ns, plural, name, sub;
    if (rest.size() >= 3 && rest[0] == "namespaces" &&
        !(rest.size() == 3 && (rest[2] == "status" || rest[2] == "finalize"))) {
        ns = rest[1];
        rest.erase(rest.begin(), rest.begin() + 2);
    }
    if (rest.empty() || rest.size() > 3) throw ApiError(errors::resourceNotFoundGeneric());
    plural = rest[0];
    if (rest.size() >= 2) name = rest[1];
    if (rest.size() == 3) sub = rest[2];
    ResourcePtr resPtr = store_.resolve(group, version, plural);
    if (!resPtr) throw ApiError(errors::resourceNotFoundGeneric());
    const ResourceInfo& res = *resPtr;
    if (!res.namespaced && !ns.empty()) throw ApiError(errors::resourceNotFoundGeneric());
    if (!sub.empty() && !((sub == "status" && res.hasStatus) || (sub == "scale" && res.scale) ||
                          (sub == "finalize" && res.kind == "Namespace" && res.group.empty())))
        throw ApiError(errors::resourceNotFoundGeneric());
    const std::string& m = req.method;
    // Protobuf bodies (typed client-go clients, e.g. `kubectl create configmap`) are not
    // decoded here; JSON and YAML are.
    if (!req.body.empty() && req.header("content-type").find("protobuf") != std::string::npos)
        errors::throwStatus(415, "UnsupportedMediaType",
                            "the body of the request was in an unknown format - accepted media "
                            "types include: application/json, application/yaml (protobuf is "
                            "not supported by this test server)");

    WriteOptions wo;
    wo.dryRun = req.queryParam("dryRun") == "All";
    if (req.hasQueryParam("dryRun") && !wo.dryRun)
        errors::badRequest("dryRun: Unsupported value: \"" + req.queryParam("dryRun") +
                           "\": supported values: \"All\"");
    wo.fieldValidation = req.queryParam("fieldValidation");
    if (!wo.fieldValidation.empty() && wo.fieldValidation != "Strict" &&
        wo.fieldValidation != "Warn" && wo.fieldValidation != "Ignore")
        errors::badRequest("fieldValidation: Unsupported value: \"" + wo.fieldValidation +
                           "\": supported values: \"Ignore\", \"Strict\", \"Warn\"");
    wo.force = truthy(req.queryParam("force"));

    const bool watch = legacyWatch || truthy(req.queryParam("watch"));
    if (m == "GET" && (watch)) {
        counters_.add("watch");
        serveWatch(req, w, res, ns, name);
        return;
    }
    if (res.namespaced && ns.empty() && !(m == "GET" && name.empty()))
        throw ApiError(errors::resourceNotFoundGeneric());

    const bool table = wantsTable(req);
    const bool partial = !table && wantsPartialMetadata(req);
    std::string includeObject = req.queryParam("includeObject");
    if (includeObject.empty()) includeObject = "Metadata";

    if (m == "GET" && sub == "scale") {
        counters_.add("get");
        sendJson(w, 200, store_.getScale(res, ns, name));
        return;
    }
    if (m == "GET" && !name.empty()) {
        counters_.add("get");
        json obj = present(res, store_.get(res, ns, name));
        if (table)
            sendJson(w, 200,
                     apilogic::buildTable({obj}, res.printerColumns, includeObject, nowRfc3339(),
                                          "", ""));
        else
            sendJson(w, 200, partial ? partialMetadata(obj) : obj);
        return;
    }
    if (m == "GET") {
        counters_.add("list");
        ListOptions lo;
        lo.labelSelector = req.queryParam("labelSelector");
        lo.fieldSelector = req.queryParam("fieldSelector");
        lo.continueToken = req.queryParam("continue");
        lo.resourceVersion = req.queryParam("resourceVersion");
        lo.resourceVersionMatch = req.queryParam("resourceVersionMatch");
        if (req.hasQueryParam("limit")) {
            try {
                lo.limit = std::stoll(req.queryParam("limit"));
            } catch (...) {
                errors::badRequest("limit: Invalid value: \"" + req.queryParam("limit") + "\"");
            }
        }
        ListResult lr = store_.list(res, ns, lo);
        if (table) {
            std::vector<json> objs;
            for (auto& o : lr.items) objs.push_back(present(res, o));
            sendJson(w, 200,
                     apilogic::buildTable(objs, res.printerColumns, includeObject, nowRfc3339(),
                                          lr.resourceVersion, lr.continueToken));
            return;
        }
        json items = json::array();
        for (auto& o : lr.items) {
            if (partial) {
                items.push_back(partialMetadata(o));
            } else if (res.isCustom) {
                items.push_back(present(res, std::move(o)));
            } else {
                // Built-in list items carry no apiVersion/kind in kube-apiserver's JSON.
                o.erase("apiVersion");
                o.erase("kind");
                items.push_back(std::move(o));
            }
        }
        json meta = {{"resourceVersion", lr.resourceVersion}};
        if (!lr.continueToken.empty()) meta["continue"] = lr.continueToken;
        if (lr.remainingItemCount) meta["remainingItemCount"] = *lr.remainingItemCount;
        json body = {{"kind", partial ? "PartialObjectMetadataList" : res.kind + "List"},
                     {"apiVersion", partial ? "meta.k8s.io/v1" : res.apiVersion()},
                     {"metadata", meta},
                     {"items", items}};
        sendJson(w, 200, body);
        return;
    }
    if (m == "POST") {
        if (!name.empty()) errors::methodNotSupported(res, "create");
        counters_.add("create");
        wo.manager = fieldManagerOf(req);
        json body = json::parse(req.body, nullptr, false);
        if (body.is_discarded())
            errors::badRequest("the body of the request could not be decoded as JSON");
        auto r = store_.create(res, ns, std::move(body), wo);
        sendWritten(w, r, res, partial);
        return;
    }
    if (m == "PUT") {
        if (name.empty()) errors::methodNotSupported(res, "update");
        counters_.add("update");
        wo.manager = fieldManagerOf(req);
        json body = json::parse(req.body, nullptr, false);
        if (body.is_discarded())
            errors::badRequest("the body of the request could not be decoded as JSON");
        auto r = store_.update(res, ns, name, sub, std::move(body), wo);
        sendWritten(w, r, res, partial);
        return;
    }
    if (m == "PATCH") {
        if (name.empty()) errors::methodNotSupported(res, "patch");
        std::string ct = req.header("content-type");
        ct = ct.substr(0, ct.find(';'));
        PatchType pt;
        if (ct == "application/merge-patch+json") {
            pt = PatchType::Merge;
        } else if (ct == "application/json-patch+json") {
            pt = PatchType::Json;
        } else if (ct == "application/strategic-merge-patch+json" && !res.isCustom) {
            pt = PatchType::Strategic;
        } else if (ct == "application/apply-patch+yaml" || ct == "application/apply-patch+json") {
            pt = PatchType::Apply;
        } else {
            errors::throwStatus(
                415, "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml" +
                    std::string(res.isCustom ? "" : ", application/strategic-merge-patch+json"));
        }
        counters_.add(pt == PatchType::Apply ? "apply" : "patch");
        // Apply needs an explicit manager; other patches fall back to the User-Agent.
        wo.manager = pt == PatchType::Apply ? req.queryParam("fieldManager") : fieldManagerOf(req);
        auto r = store_.patch(res, ns, name, sub, pt, req.body, wo);
        sendWritten(w, r, res, partial);
        return;
    }
    if (m == "DELETE") {
        DeleteOptions d;
        json body = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
        if (body.is_discarded() || !body.is_object())
            errors::badRequest("the body of the request could not be decoded as DeleteOptions");
        d.propagationPolicy = body.value("propagationPolicy", req.queryParam("propagationPolicy"));
        if (body.contains("orphanDependents") && body["orphanDependents"].is_boolean() &&
            d.propagationPolicy.empty())
            d.propagationPolicy = body["orphanDependents"].get<bool>() ? "Orphan" : "Background";
        if (body.contains("gracePeriodSeconds") && body["gracePeriodSeconds"].is_number())
            d.gracePeriodSeconds = body["gracePeriodSeconds"].get<int64_t>();
        else if (req.hasQueryParam("gracePeriodSeconds"))
            d.gracePeriodSeconds = std::stoll(req.queryParam("gracePeriodSeconds"));
        if (body.contains("preconditions")) {
            d.preconditionUid = body["preconditions"].value("uid", "");
            d.preconditionResourceVersion = body["preconditions"].value("resourceVersion", "");
        }
        bool bodyDry = body.contains("dryRun") && body["dryRun"].is_array() &&
                       !body["dryRun"].empty() && body["dryRun"][0] == "All";
        d.dryRun = wo.dryRun || bodyDry;
        if (!name.empty()) {
            counters_.add("delete");
            auto r = store_.remove(res, ns, name, d);
            sendJson(w, r.code, present(res, r.body));
            return;
        }
        // deletecollection: every object the selectors match.
        counters_.add("deletecollection");
        ListOptions lo;
        lo.labelSelector = req.queryParam("labelSelector");
        lo.fieldSelector = req.queryParam("fieldSelector");
        ListResult lr = store_.list(res, ns, lo);
        json items = json::array();
        for (const auto& o : lr.items) {
            try {
                auto r = store_.remove(res, o["metadata"].value("namespace", ""),
                                       o["metadata"].value("name", ""), d);
                items.push_back(present(res, o));
            } catch (const ApiError&) {
                // Deleted concurrently: already gone is what was asked for.
            }
        }
        sendJson(w, 200,
                 {{"kind", res.kind + "List"},
                  {"apiVersion", res.apiVersion()},
                  {"metadata", {{"resourceVersion", store_.currentResourceVersion()}}},
                  {"items", items}});
        return;
    }
    errors::throwStatus(405, "MethodNotAllowed",
                        "the server does not allow this method on the requested resource");
}

void Router::serveWatch(const HttpRequest& req, ResponseWriter& w, const ResourceInfo& res,
                        const std::string& ns, const std::string& name) {
    WatchOptions wo;
    wo.labelSelector = req.queryParam("labelSelector");
    wo.fieldSelector = req.queryParam("fieldSelector");
    if (!name.empty())
        wo.fieldSelector =
            "metadata.name=" + name + (wo.fieldSelector.empty() ? "" : "," + wo.fieldSelector);
    wo.resourceVersion = req.queryParam("resourceVersion");
    wo.sendInitialEvents = truthy(req.queryParam("sendInitialEvents"));
    const bool bookmarks = truthy(req.queryParam("allowWatchBookmarks"));
    const bool table = wantsTable(req);
    std::string includeObject = req.queryParam("includeObject");
    if (includeObject.empty()) includeObject = "Metadata";
    using Clock = std::chrono::steady_clock;
    auto end = Clock::time_point::max();
    if (req.hasQueryParam("timeoutSeconds")) {
        int64_t secs = std::stoll(req.queryParam("timeoutSeconds"));
        if (secs > 0) end = Clock::now() + std::chrono::seconds(secs);
    }

    auto watcher = store_.watch(res, ns, wo);  // throws (400) before the stream starts
    w.startStream(200, {{"Content-Type", "application/json"}});
    auto nextBookmark = Clock::now() + opts_.bookmarkInterval;
    std::deque<WatchEvent> batch;
    bool first = true;
    while (!stopping_ && w.alive()) {
        // Without bookmarks, wake up now and then to notice a client that went away.
        auto until =
            std::min(end, bookmarks ? nextBookmark : Clock::now() + std::chrono::milliseconds(250));
        bool open = watcher->next(batch, until);
        std::string out;
        for (auto& ev : batch) {
            json obj;
            if (ev.type == "BOOKMARK") {
                if (!bookmarks && !wo.sendInitialEvents) continue;
                obj = ev.object;
                obj["kind"] = res.kind;
                obj["apiVersion"] = res.apiVersion();
            } else if (ev.type == "ERROR") {
                obj = ev.object;
            } else if (table) {
                obj = apilogic::buildTable({present(res, ev.object)}, res.printerColumns,
                                           includeObject, nowRfc3339(), "", "");
                // Column definitions travel with the first event only, as upstream does.
                if (!first) obj["columnDefinitions"] = json::array();
                first = false;
            } else {
                obj = present(res, ev.object);
            }
            out += json{{"type", ev.type}, {"object", obj}}.dump() + "\n";
        }
        batch.clear();
        if (!out.empty() && !w.writeChunk(out)) break;
        if (!open) break;
        auto now = Clock::now();
        if (now >= end) break;
        if (bookmarks && now >= nextBookmark) {
            store_.bookmark(*watcher);
            nextBookmark = now + opts_.bookmarkInterval;
        }
    }
    store_.unwatch(watcher);
}

}  // namespace sluice::testing
