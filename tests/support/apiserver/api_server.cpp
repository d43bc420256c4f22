#include "apiserver/api_server.h"

#include <fstream>
#include <thread>

#include "apiserver/continue_token.h"
#include "apiserver/router.h"
#include "apiserver/status_errors.h"
#include "apiserver/store.h"
#include "http/certs.h"
#include "http/http_server.h"
#include "sluice/util/yaml_json.h"
#include "testutil/testutil.h"

namespace sluice::testing {

// ---- FaultInjector ---------------------------------------------------------------------

void FaultInjector::add(Rule r) {
    std::lock_guard<std::mutex> lk(mu_);
    rules_.push_back(std::move(r));
}

void FaultInjector::failNext(int count, int httpCode, std::string method, std::string path) {
    Rule r;
    r.action = Action::Fail;
    r.remaining = count;
    r.httpCode = httpCode;
    r.method = std::move(method);
    r.pathContains = std::move(path);
    add(std::move(r));
}

void FaultInjector::throttleNext(int count, int retryAfterSeconds, std::string method,
                                 std::string path) {
    Rule r;
    r.action = Action::Throttle;
    r.remaining = count;
    r.retryAfterSeconds = retryAfterSeconds;
    r.method = std::move(method);
    r.pathContains = std::move(path);
    add(std::move(r));
}

void FaultInjector::delayNext(int count, std::chrono::milliseconds delay, std::string method,
                              std::string path) {
    Rule r;
    r.action = Action::Delay;
    r.remaining = count;
    r.delay = delay;
    r.method = std::move(method);
    r.pathContains = std::move(path);
    add(std::move(r));
}

void FaultInjector::disconnectNext(int count, std::string method, std::string path) {
    Rule r;
    r.action = Action::Disconnect;
    r.remaining = count;
    r.method = std::move(method);
    r.pathContains = std::move(path);
    add(std::move(r));
}

void FaultInjector::clear() {
    std::lock_guard<std::mutex> lk(mu_);
    rules_.clear();
}

std::optional<FaultInjector::Rule> FaultInjector::take(const std::string& method,
                                                       const std::string& target) {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto it = rules_.begin(); it != rules_.end(); ++it) {
        if (!it->method.empty() && it->method != method) continue;
        // Matched against the raw target, so "watch=" selects watch requests.
        if (!it->pathContains.empty() && target.find(it->pathContains) == std::string::npos)
            continue;
        Rule r = *it;
        if (--it->remaining <= 0) rules_.erase(it);
        return r;
    }
    return std::nullopt;
}

// ---- ApiServer -------------------------------------------------------------------------

struct ApiServer::Impl {
    explicit Impl(ApiServerOptions o)
        : opts(std::move(o)), store(opts), counters(opts.auditLogCapacity) {}

    ApiServerOptions opts;
    Store store;
    FaultInjector faults;
    RequestCounters counters;
    RevokedTokens revoked;
    std::unique_ptr<HttpServer> http;
    std::unique_ptr<Router> router;
    std::string caPem;
    // Kept across restart(): a restarted API server has the same address and certificate.
    std::string certPem, keyPem;
    int boundPort = 0;
    bool started = false;
};

ApiServer::ApiServer(ApiServerOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}

ApiServer::~ApiServer() {
    stop();
}

void ApiServer::start() {
    if (impl_->started) return;
    HttpServerOptions ho;
    ho.host = impl_->opts.host;
    ho.port = impl_->boundPort ? impl_->boundPort : impl_->opts.port;
    ho.tls = impl_->opts.tls;
    if (ho.tls) {
        if (impl_->certPem.empty()) {
            KeyPair ca = generateCa("sluice-test-apiserver-ca");
            KeyPair cert = issueCertificate(ca, "kube-apiserver",
                                            {"127.0.0.1", "localhost", impl_->opts.host}, false);
            impl_->certPem = cert.certPem;
            impl_->keyPem = cert.keyPem;
            impl_->caPem = ca.certPem;
        }
        ho.certPem = impl_->certPem;
        ho.keyPem = impl_->keyPem;
        ho.clientCaPem = impl_->opts.clientCaPem;
    }
    impl_->http = std::make_unique<HttpServer>(ho);
    HttpServer* http = impl_->http.get();
    impl_->router = std::make_unique<Router>(
        impl_->store, impl_->faults, impl_->counters, impl_->opts,
        [http, this] { return impl_->opts.host + ":" + std::to_string(http->port()); },
        impl_->revoked);
    Router* router = impl_->router.get();
    impl_->store.startControllers();
    http->start([router](const HttpRequest& req, ResponseWriter& w) { router->handle(req, w); });
    impl_->boundPort = http->port();
    impl_->started = true;
}

void ApiServer::restart(std::chrono::milliseconds down) {
    stop();
    // etcd keeps the objects but not the history a watch could resume from.
    impl_->store.compact();
    std::this_thread::sleep_for(down);
    start();
}

void ApiServer::stop() {
    if (!impl_->started) return;
    impl_->started = false;
    impl_->router->stopWatches();
    impl_->store.closeAllWatchers();
    impl_->http->stop();
    impl_->store.stopControllers();
}

std::string ApiServer::url() const {
    return impl_->http ? impl_->http->url() : "";
}
int ApiServer::port() const {
    return impl_->http ? impl_->http->port() : 0;
}
std::string ApiServer::caPem() const {
    return impl_->caPem;
}

const std::string& ApiServer::token() const {
    static const std::string empty;
    return impl_->opts.tokens.empty() ? empty : impl_->opts.tokens.front();
}

std::string ApiServer::writeKubeconfig(const std::string& path,
                                       const std::string& contextName) const {
    std::string cluster = "    server: " + url() + "\n";
    if (!impl_->caPem.empty())
        cluster += "    certificate-authority-data: " + base64Encode(impl_->caPem) + "\n";
    std::string user = token().empty() ? "  user: {}\n" : "  user:\n    token: " + token() + "\n";
    std::ofstream f(path);
    f << "apiVersion: v1\nkind: Config\nclusters:\n- name: " << contextName << "\n  cluster:\n"
      << cluster << "users:\n- name: " << contextName << "\n"
      << user << "contexts:\n- name: " << contextName
      << "\n  context:\n    cluster: " << contextName << "\n    user: " << contextName
      << "\n    namespace: default\ncurrent-context: " << contextName << "\n";
    if (!f) throw std::runtime_error("cannot write kubeconfig " + path);
    return path;
}

FaultInjector& ApiServer::faults() {
    return impl_->faults;
}

void ApiServer::revokeToken(const std::string& token) {
    impl_->revoked.add(token);
}

void ApiServer::dropWatches() {
    // Cut the connections first: a watch handler woken by its closed queue would otherwise
    // end its response cleanly (final chunk) before the cut.
    if (impl_->http) impl_->http->closeStreams();
    impl_->store.closeAllWatchers();
}

void ApiServer::compact() {
    impl_->store.compact();
}

nlohmann::json ApiServer::create(const nlohmann::json& obj) {
    auto res = impl_->store.resolveKind(obj.value("apiVersion", ""), obj.value("kind", ""));
    if (!res)
        throw ApiError(errors::status(404, "NotFound",
                                      "no matches for kind \"" + obj.value("kind", "") +
                                          "\" in version \"" + obj.value("apiVersion", "") + "\""));
    WriteOptions wo;
    wo.manager = "test";
    std::string ns = res->namespaced ? obj["metadata"].value("namespace", "default") : "";
    return impl_->store.create(*res, ns, obj, wo).body;
}

void ApiServer::createFromFile(const std::string& path) {
    for (const auto& doc : yamlDocumentsToJson(readFile(path))) create(doc);
}

std::optional<nlohmann::json> ApiServer::get(const std::string& apiVersion, const std::string& kind,
                                             const std::string& ns, const std::string& name) {
    auto res = impl_->store.resolveKind(apiVersion, kind);
    if (!res) return std::nullopt;
    try {
        json o = impl_->store.get(*res, ns, name);
        if (res->isCustom) o["apiVersion"] = apiVersion;
        return o;
    } catch (const ApiError&) {
        return std::nullopt;
    }
}

std::vector<nlohmann::json> ApiServer::list(const std::string& apiVersion, const std::string& kind,
                                            const std::string& ns) {
    auto res = impl_->store.resolveKind(apiVersion, kind);
    if (!res) return {};
    auto items = impl_->store.list(*res, ns, ListOptions{}).items;
    if (res->isCustom)
        for (auto& o : items) o["apiVersion"] = apiVersion;
    return items;
}

std::map<std::string, uint64_t> ApiServer::requestCounts() const {
    return impl_->counters.snapshot();
}
void ApiServer::resetRequestCounts() {
    impl_->counters.reset();
}
std::vector<AuditEvent> ApiServer::auditLog() const {
    return impl_->counters.audit();
}
std::string ApiServer::currentResourceVersion() const {
    return impl_->store.currentResourceVersion();
}

}  // namespace sluice::testing
