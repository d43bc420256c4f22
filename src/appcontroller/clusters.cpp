#include "clusters.h"

#include <spdlog/spdlog.h>

#include <set>
#include <stdexcept>

#include "sluice/appengine/project.h"
#include "sluice/util/base64.h"

namespace sluice::appcontroller {

namespace {

const kube::GroupVersionKind kSecretGvk{"", "v1", "Secret"};

std::string stringField(const json& obj, const char* field, const std::string& where) {
    auto it = obj.find(field);
    if (it == obj.end() || it->is_null()) return "";
    if (!it->is_string()) throw std::invalid_argument(where + field + " must be a string");
    return it->get<std::string>();
}

// tlsClientConfig's *Data fields: base64 of PEM, as Argo CD writes []byte in JSON.
std::string pemField(const json& tls, const char* field) {
    const std::string text = stringField(tls, field, "config.tlsClientConfig.");
    if (text.empty()) return "";
    auto pem = base64Decode(text, Base64Whitespace::Skip);
    if (!pem)
        throw std::invalid_argument(std::string("config.tlsClientConfig.") + field +
                                    " is not valid base64");
    return *pem;
}

}  // namespace

kube::ClusterConfig clientConfigOf(const appengine::ClusterEntry& entry) {
    kube::ClusterConfig cfg;
    cfg.server = entry.server;
    cfg.source = "cluster Secret " + entry.secretName;
    const json& c = entry.config;
    for (const char* unsupported : {"awsAuthConfig", "proxyUrl"})
        if (c.contains(unsupported) && !c[unsupported].is_null())
            throw std::invalid_argument(std::string("config.") + unsupported + " is not supported");
    cfg.token = stringField(c, "bearerToken", "config.");
    cfg.username = stringField(c, "username", "config.");
    cfg.password = stringField(c, "password", "config.");
    if (auto tls = c.find("tlsClientConfig"); tls != c.end() && !tls->is_null()) {
        if (!tls->is_object())
            throw std::invalid_argument("config.tlsClientConfig must be an object");
        if (auto in = tls->find("insecure"); in != tls->end() && !in->is_null()) {
            if (!in->is_boolean())
                throw std::invalid_argument("config.tlsClientConfig.insecure must be a boolean");
            cfg.insecureSkipTlsVerify = in->get<bool>();
        }
        cfg.tlsServerName = stringField(*tls, "serverName", "config.tlsClientConfig.");
        cfg.caPem = pemField(*tls, "caData");
        cfg.clientCertPem = pemField(*tls, "certData");
        cfg.clientKeyPem = pemField(*tls, "keyData");
        if (cfg.clientCertPem.empty() != cfg.clientKeyPem.empty())
            throw std::invalid_argument(
                "config.tlsClientConfig needs both certData and keyData for a client certificate");
    }
    if (auto exec = c.find("execProviderConfig"); exec != c.end() && !exec->is_null())
        cfg.exec = kube::execConfigFromArgo(*exec);
    return cfg;
}

Cluster::Cluster(appengine::ClusterEntry entry, kube::KubeClient& client, LiveState& live,
                 const Clock& clock, appengine::ManagedScope scope)
    : entry_(std::move(entry)), clock_(clock), client_(&client), live_(&live) {
    opts_.managedScope = std::move(scope);
}

Cluster::Cluster(appengine::ClusterEntry entry, const Clock& clock, const Options& opts,
                 std::shared_ptr<workqueue::Gate> gate, const BaseInformers& base)
    : entry_(std::move(entry)), clock_(clock), opts_(opts) {
    opts_.managedScope.namespaces = entry_.namespaces;
    opts_.managedScope.clusterResources = entry_.clusterResources;
    ownedClient_ = std::make_unique<kube::RestClient>(clientConfigOf(entry_));
    ownedInformers_ = std::make_unique<cache::SharedInformerFactory>(*ownedClient_);
    ownedLive_ = std::make_unique<LiveState>(*ownedClient_, *ownedInformers_, clock_, opts_,
                                             std::move(gate), base);
    client_ = ownedClient_.get();
    live_ = ownedLive_.get();
    impersonatingFactory_ = [base = clientConfigOf(entry_)](
                                const std::string& user, const std::vector<std::string>& groups) {
        kube::ClusterConfig cfg = base;
        cfg.impersonateUser = user;
        cfg.impersonateGroups = groups;
        return std::unique_ptr<kube::KubeClient>(std::make_unique<kube::RestClient>(cfg));
    };
}

kube::KubeClient& Cluster::impersonating(const std::string& user) {
    std::lock_guard lock(impersonatedMu_);
    auto& slot = impersonated_[user];
    if (!slot) {
        if (!impersonatingFactory_)
            throw std::runtime_error("no client configuration to impersonate with");
        slot = impersonatingFactory_(user, {});
        if (!slot) throw std::runtime_error("no client to impersonate with");
    }
    return *slot;
}

Cluster::~Cluster() {
    // Handlers first, then the watches, then the client they use.
    ownedLive_.reset();
    if (ownedInformers_) ownedInformers_->stopAll();
}

kube::ServerInfo Cluster::serverInfo() {
    std::lock_guard lock(infoMu_);
    const auto now = clock_.now();
    if (infoReadAt_ && now - *infoReadAt_ < std::chrono::minutes(5)) return info_;
    try {
        info_ = client_->serverInfo();
        infoReadAt_ = now;
        lastError_.clear();
    } catch (const std::exception& e) {
        // Helm's defaults are used until the server answers; asked again at the next render.
        lastError_ = e.what();
        spdlog::warn("cluster {}: cannot read its version and API versions: {}", entry_.name,
                     e.what());
    }
    return info_;
}

std::string Cluster::lastError() {
    std::lock_guard lock(infoMu_);
    return lastError_;
}

Clusters::Clusters(kube::KubeClient& localClient, LiveState& localLive, const Clock& clock,
                   const Options& opts, std::shared_ptr<workqueue::Gate> gate,
                   const BaseInformers& base)
    : localClient_(localClient),
      localLive_(localLive),
      clock_(clock),
      opts_(opts),
      gate_(std::move(gate)),
      base_(base),
      monitor_([this] { monitor(); }) {}

Clusters::~Clusters() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    wake_.notify_all();
    monitor_.join();
}

void Clusters::monitor() {
    constexpr auto kInterval = std::chrono::seconds(2);
    constexpr int kPublishEvery = 5;  // intervals
    std::unique_lock lock(mu_);
    for (int tick = 1; !wake_.wait_for(lock, kInterval, [this] { return stopping_; }); ++tick) {
        const bool publishing = publishing_;
        lock.unlock();
        checkConnections();
        if (publishing && tick % kPublishEvery == 0) publish();
        lock.lock();
    }
}

// A remote cluster whose watches lost (or regained) their connection: its Applications are
// reconciled, so their status says so without waiting for the poll interval.
void Clusters::checkConnections() {
    std::vector<std::pair<std::shared_ptr<Cluster>, std::vector<std::string>>> clusters;
    {
        std::lock_guard lock(mu_);
        for (const auto& [server, cluster] : remote_) {
            std::vector<std::string> apps;
            for (const auto& [app, s] : users_)
                if (s == server) apps.push_back(app);
            clusters.emplace_back(cluster, std::move(apps));
        }
    }
    for (auto& [cluster, apps] : clusters) {
        const std::string error = cluster->live().connectionError();
        const bool connected = error.empty();
        if (cluster->connected_.exchange(connected) == connected) continue;
        if (connected)
            spdlog::info("cluster {}: connected again", cluster->entry().name);
        else
            spdlog::warn("cluster {}: unreachable: {}", cluster->entry().name, error);
        for (const std::string& app : apps) gate_->add(app);
    }
}

void Clusters::startPublishing() {
    std::lock_guard lock(mu_);
    publishing_ = true;
}

void Clusters::stopPublishing() {
    std::lock_guard lock(mu_);
    publishing_ = false;
}

std::string Clusters::configMapName() const {
    const std::string base = appengine::kClusterStateConfigMap;
    if (!opts_.publishSuffix.empty()) return base + "-" + opts_.publishSuffix;
    return opts_.shard.count > 1 ? base + "-" + std::to_string(opts_.shard.index) : base;
}

bool shouldPublishClusters(const PublishedClusters& last, const PublishedClusters& next) {
    if (next.data == last.data) return false;
    return next.states != last.states || next.at - last.at >= kClusterCountsEvery;
}

void Clusters::publish() {
    PublishedClusters next;
    next.data = json::object();
    next.states = json::object();
    next.at = clock_.now();
    for (const ClusterState& c : list()) {
        json v = {{"name", c.name},
                  {"server", c.server},
                  {"secret", c.secret},
                  {"project", c.project},
                  {"namespaces", c.namespaces},
                  {"connectionState", c.connectionState},
                  {"message", c.message},
                  {"serverVersion", c.serverVersion},
                  {"applications", c.applications},
                  {"cachedObjects", c.cachedObjects}};
        const std::string key =
            c.secret.empty() ? std::string(appengine::kInClusterName) : c.secret;
        next.data[key] = v.dump();
        v.erase("cachedObjects");
        next.states[key] = v.dump();
    }
    if (!shouldPublishClusters(published_, next)) return;
    json owner;
    if (opts_.publishOwner) {
        owner = opts_.publishOwner();
        if (owner.is_null()) return;  // not yet known: published at a later tick
    }
    json cm = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata",
                {{"name", configMapName()},
                 {"namespace", opts_.controlNamespace},
                 {"labels", {{"app.kubernetes.io/part-of", "sluice"}}}}},
               {"data", next.data}};
    if (!owner.is_null()) cm["metadata"]["ownerReferences"] = json::array({owner});
    try {
        kube::ApplyOptions ao;
        ao.fieldManager = opts_.fieldManager;
        ao.force = true;
        localClient_.apply(cm, ao);
        published_ = std::move(next);
    } catch (const std::exception& e) {
        spdlog::warn("cannot publish the clusters' state in ConfigMap {}/{}: {}",
                     opts_.controlNamespace, configMapName(), e.what());
    }
}

std::vector<appengine::ClusterEntry> Clusters::known(std::string& problems) {
    std::vector<appengine::ClusterEntry> entries;
    std::set<std::string> seen;  // a Secret with both labels is in both caches
    for (cache::Informer* informer : base_.secrets) {
        if (!informer) continue;
        for (const auto& secret : informer->store().list()) {
            if (!appengine::isClusterSecret(*secret)) continue;
            if (!seen.insert(kube::nameOf(*secret)).second) continue;
            try {
                entries.push_back(appengine::parseClusterSecret(*secret));
            } catch (const std::invalid_argument& e) {
                problems += (problems.empty() ? "" : "; ") + std::string(e.what());
            }
        }
    }
    return appengine::knownClusters(std::move(entries));
}

std::shared_ptr<Cluster> Clusters::use(const std::string& appKey, const std::string& server,
                                       const std::string& name, std::string& error) {
    std::string problems;
    const auto clusters = known(problems);
    std::optional<appengine::ClusterEntry> entry =
        appengine::resolveCluster(clusters, server, name, error);
    if (!entry) {
        if (!problems.empty()) error += " (malformed cluster Secrets: " + problems + ")";
        return nullptr;
    }
    std::lock_guard lock(mu_);
    if (entry->local()) {
        users_[appKey] = entry->server;
        dropUnusedLocked();
        if (!local_ || local_->entry().name != entry->name) {
            local_ = std::make_shared<Cluster>(*entry, localClient_, localLive_, clock_,
                                               opts_.managedScope);
            local_->impersonatingFactory_ = opts_.impersonatingClient;
        }
        return local_;
    }
    auto& slot = remote_[entry->server];
    // A changed Secret (rotated token, new CA, renamed) gets a new client and caches.
    if (!slot || slot->entry().resourceVersion != entry->resourceVersion) {
        try {
            slot = std::make_shared<Cluster>(*entry, clock_, opts_, gate_, base_);
            spdlog::info("cluster {} ({}): client started from Secret {}", entry->name,
                         entry->server, entry->secretName);
        } catch (const std::exception& e) {
            remote_.erase(entry->server);
            error = "cluster " + entry->name + " (" + entry->server + ", Secret " +
                    entry->secretName + "): " + e.what();
            return nullptr;
        }
    }
    users_[appKey] = entry->server;
    std::shared_ptr<Cluster> cluster = slot;
    dropUnusedLocked();
    return cluster;
}

void Clusters::release(const std::string& appKey) {
    std::lock_guard lock(mu_);
    users_.erase(appKey);
    dropUnusedLocked();
}

void Clusters::dropUnusedLocked() {
    std::set<std::string> used;
    for (const auto& [app, server] : users_) used.insert(server);
    for (auto it = remote_.begin(); it != remote_.end();) {
        if (used.count(it->first)) {
            ++it;
            continue;
        }
        spdlog::info("cluster {} ({}): no Application targets it any more; stopped",
                     it->second->entry().name, it->first);
        it = remote_.erase(it);  // a reconcile still holding it keeps it until it ends
    }
}

std::vector<ClusterState> Clusters::list() {
    std::string problems;
    const auto entries = known(problems);
    std::map<std::string, std::shared_ptr<Cluster>> running;
    std::map<std::string, std::vector<std::string>> apps;  // by server
    {
        std::lock_guard lock(mu_);
        running = remote_;
        if (local_) running[local_->entry().server] = local_;
        for (const auto& [app, server] : users_) apps[server].push_back(app);
    }
    std::vector<ClusterState> out;
    for (const appengine::ClusterEntry& e : entries) {
        ClusterState c;
        c.name = e.name;
        c.server = e.server;
        c.secret = e.secretName;
        c.project = e.project;
        c.namespaces = e.namespaces;
        c.applications = apps[e.server];
        auto it = running.find(e.server);
        if (it == running.end()) {
            c.connectionState = "Unknown";
            c.message = "no Application targets it";
        } else {
            Cluster& cluster = *it->second;
            const std::string error = cluster.live().connectionError();
            c.connectionState = error.empty() ? "Successful" : "Failed";
            c.message = error;
            c.serverVersion = cluster.serverInfo().version;
            c.cachedObjects = cluster.live().cachedObjects();
        }
        out.push_back(std::move(c));
    }
    return out;
}

}  // namespace sluice::appcontroller
