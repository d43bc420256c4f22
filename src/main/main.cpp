// sluice-controller: wires configuration, the Kubernetes client, the shared watch caches and
// the controllers.
#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <thread>
#include <utility>  // before pplx/threadpool.h: boost asio needs std::exchange

#include <pplx/threadpool.h>

#include "endpoints.h"
#include "memory.h"
#include "observability.h"
#include "options.h"
#include "sluice/appcontroller/controller.h"
#include "sluice/appcontroller/notifications.h"
#include "sluice/appengine/spec.h"
#include "sluice/cache/informer.h"
#include "sluice/canarycontroller/controller.h"
#include "sluice/git/git.h"
#include "sluice/kube/client.h"
#include "sluice/kube/tls.h"
#include "sluice/leader/leader.h"
#include "sluice/leader/sharding.h"
#include "sluice/notify/notifier.h"
#include "sluice/server/http_server.h"
#include "sluice/util/logging.h"
#include "sluice/util/strings.h"

namespace {

using namespace sluice;

// GitHub caps webhook payloads at 25 MB; anything larger is not a push event.
constexpr std::size_t kWebhookMaxBody = 25u << 20;

const kube::GroupVersionKind kApplicationGvk{appengine::kGroup, appengine::kVersion,
                                             appengine::kKind};
const kube::GroupVersionKind kCanaryGvk{"sluice.io", "v1alpha1", "Canary"};

kube::GroupVersionKind parseWatchEntry(const std::string& entry) {
    auto slash = entry.rfind('/');
    return kube::GroupVersionKind::fromApiVersion(entry.substr(0, slash), entry.substr(slash + 1));
}

std::string describe(const nlohmann::json& obj) {
    return obj.value("kind", "?") + " " + kube::keyOf(obj).str() + " (resourceVersion " +
           kube::resourceVersionOf(obj) + ")";
}

// Waits for SIGTERM/SIGINT, or until `until` holds (checked every 200 ms). Returns the signal,
// or 0 when `until` ended the wait.
int waitForSignal(const sigset_t& signals, const std::function<bool()>& until) {
    timespec tick{0, 200 * 1000 * 1000};
    while (true) {
        int sig = sigtimedwait(&signals, nullptr, &tick);
        if (sig > 0) return sig;
        if (until && until()) return 0;
    }
}

kube::ClusterConfig clusterConfig(const ControllerOptions& opts) {
    kube::ClusterConfig cfg = kube::loadDefaultConfig(opts.kubeconfig, opts.context);
    cfg.qps = opts.qps.value_or(50);
    cfg.burst = opts.burst;
    cfg.qpsOnlyWithoutApf = !opts.qps;
    return cfg;
}

// Nothing in this process reads managedFields from a cache except the Application
// controller's drift attribution, which reads the packed form too.
cache::InformerOptions informerDefaults() {
    cache::InformerOptions defaults;
    defaults.transform = cache::packManagedFields;
    // Watch events bring them as text already: their tree is never built (only a list's is).
    defaults.rawMembers = {{"metadata", "managedFields"}};
    return defaults;
}

appcontroller::Options applicationOptions(const ControllerOptions& opts) {
    appcontroller::Options o;
    o.watchNamespace = opts.ns;
    o.controlNamespace = opts.controlNamespace;
    o.concurrency = opts.concurrency;
    o.pollInterval = opts.reconcileInterval;
    o.syncTimeout = opts.syncTimeout;
    o.sources.helmPath = opts.helmPath;
    o.sources.kustomizePath = opts.kustomizePath;
    o.sources.kubectlPath = opts.kubectlPath;
    o.sources.kustomizeBuildOptions = opts.kustomizeBuildOptions;
    o.sources.allowRemoteBases = opts.allowRemoteKustomizeBases;
    o.sources.allowRemoteValueFiles = opts.allowRemoteValueFiles;
    o.sources.timeout = opts.renderTimeout;
    o.sources.workDir = opts.renderDir;
    o.renderConcurrency = opts.renderConcurrency;
    o.pluginConfigMap = opts.pluginConfigMap;
    o.managedScope.namespaces = opts.managedNamespaces;
    o.managedScope.clusterResources =
        opts.clusterResources.value_or(opts.managedNamespaces.empty());
    o.shard = runtime::Shard{opts.shardIndex, opts.shards};
    return o;
}

canarycontroller::Options canaryOptions(const ControllerOptions& opts) {
    canarycontroller::Options o;
    o.watchNamespace = opts.ns;
    o.concurrency = opts.concurrency;
    o.metricsServer = opts.metricsServer;
    o.defaultProvider = opts.meshProvider;
    o.selectorLabels = opts.selectorLabels;
    o.defaultAlerts.slackUrl = opts.slackUrl;
    o.defaultAlerts.slackChannel = opts.slackChannel;
    o.defaultAlerts.slackUser = opts.slackUser;
    o.defaultAlerts.msteamsUrl = opts.msteamsUrl;
    o.shard = runtime::Shard{opts.shardIndex, opts.shards};
    return o;
}

// One run of the controller process, phase by phase: connect and check the CRDs, serve the
// endpoints, fill the watch caches, win the Lease (with --leader-elect), start the controllers,
// then wait for a signal (or the loss of the Lease) and shut down. Members are declared in the
// order the phases build them, so every return path tears them down in reverse: the controllers
// before the caches they read and the Lease they need, the HTTP servers before the state their
// handlers read.
class ControllerProcess {
  public:
    ControllerProcess(const ControllerOptions& opts, const sigset_t& signals)
        : opts_(opts),
          signals_(signals),
          cfg_(clusterConfig(opts)),
          metrics_(SLUICE_VERSION),
          client_(cfg_),
          webhooks_(client_, opts.controlNamespace, opts.webhookSecret, opts.ns, metrics_),
          factory_(client_, informerDefaults()) {
        client_.setRequestObserver(metrics_.kubeRequestObserver());
    }

    // The process's exit code.
    int run() {
        if (!connect()) return 1;
        // Probes and metrics answer from the start, so a standby replica is visible too.
        state_.leaderElection = opts_.leaderElect;
        serve(opts_.healthAddr, probeRoutes(state_), "/healthz and /readyz");
        serve(opts_.metricsAddr, metricsRoutes(metrics_), "/metrics");
        metrics_.setLeader(!opts_.leaderElect);
        watchLoggedKinds();
        // Webhooks are received by every replica: a standby passes them on to the leader.
        serve(opts_.webhookAddr, webhooks_.routes(), "git webhooks at /api/webhook",
              kWebhookMaxBody);
        if (opts_.leaderElect && !campaign()) return 0;
        joinShards();
        if (!syncCaches() || !startApplications() || !startCanaries()) return 1;
        announceStarted();
        return waitAndShutDown();
    }

  private:
    // Reads the server's version; false when the Application CRD is not installed (said
    // plainly rather than retrying a 404 list).
    bool connect() {
        auto version = client_.getPath("/version");
        spdlog::info("connected to {} (Kubernetes {}), config from {}", cfg_.server,
                     version.value("gitVersion", "unknown"), cfg_.source);
        try {
            client_.resourceFor(kApplicationGvk);
        } catch (const kube::ApiError& e) {
            if (e.code() != 404) throw;
            spdlog::error(
                "the Application CRD (applications.sluice.io) is not installed: apply "
                "crds/ first (kubectl apply -f crds/)");
            return false;
        }
        return true;
    }

    void serve(const std::string& address, std::vector<server::Route> routes, const char* what,
               std::size_t maxBody = 1 << 20) {
        if (address.empty()) return;
        servers_.push_back(
            std::make_unique<server::HttpServer>(address, std::move(routes), maxBody));
        servers_.back()->start();
        spdlog::info("serving {} on {}", what, servers_.back()->address());
    }

    // --watch: the kinds whose changes are logged. Objects listed at start-up are logged at
    // debug level; changes after that at info.
    void watchLoggedKinds() {
        for (const auto& entry : opts_.watch) {
            auto gvk = parseWatchEntry(entry);
            client_.resourceFor(gvk);  // fails early, with the API's message, for unknown kinds
            auto& informer = factory_.informerFor(gvk, opts_.ns);
            informer.addEventHandler(cache::EventHandler{
                [synced = synced_](const cache::ObjectPtr& o) {
                    spdlog::log(*synced ? spdlog::level::info : spdlog::level::debug, "added {}",
                                describe(*o));
                },
                [](const cache::ObjectPtr&, const cache::ObjectPtr& o) {
                    spdlog::info("updated {}", describe(*o));
                },
                [](const cache::ObjectPtr& o) { spdlog::info("deleted {}", describe(*o)); }});
        }
    }

    // The client of the Leases (leader election, sharding): a renew must fail fast enough to be
    // retried within the deadline, and must not queue behind the controllers' requests in the
    // rate limiter.
    kube::RestClient& leaseClient() {
        if (!electionClient_) {
            kube::ClusterConfig electionCfg = cfg_;
            electionCfg.maxRetries = 1;
            electionCfg.requestTimeout = std::chrono::seconds(4);
            electionCfg.qps = 0;
            electionClient_ = std::make_unique<kube::RestClient>(electionCfg);
        }
        return *electionClient_;
    }

    // --sharding leases: joins the group before the controllers start, so that they claim their
    // keys from the first reconcile.
    void joinShards() {
        if (opts_.sharding != "leases") return;
        leader::ShardingConfig sc;
        sc.leaseNamespace = opts_.controlNamespace;
        sc.group = opts_.leaderElectionId;
        sc.slots = opts_.shardSlots;
        sc.leaseDuration = opts_.leaseDuration;
        sc.renewDeadline = opts_.renewDeadline;
        sc.retryPeriod = opts_.retryPeriod;
        shards_ = std::make_shared<leader::ShardCoordinator>(leaseClient(), sc);
        {
            std::lock_guard lock(state_.mu);
            state_.ownIdentity = shards_->identity();
        }
        shards_->start();
        metrics_.collectSharding([shards = shards_] { return shards->state(); });
    }

    // --leader-elect: waits (on standby) until this replica holds the Lease. False when a
    // signal came first.
    bool campaign() {
        leader::Config lc;
        lc.leaseDuration = opts_.leaseDuration;
        lc.renewDeadline = opts_.renewDeadline;
        lc.retryPeriod = opts_.retryPeriod;
        lc.leaseNamespace = opts_.controlNamespace;
        // Each shard has its leader: replicas of one shard stand by for each other.
        lc.leaseName = opts_.shards > 1
                           ? opts_.leaderElectionId + "-shard-" + std::to_string(opts_.shardIndex)
                           : opts_.leaderElectionId;
        lc.identity = leader::defaultIdentity();
        state_.ownIdentity = lc.identity;
        elector_ = std::make_unique<leader::LeaderElector>(leaseClient(), lc, electionCallbacks());
        spdlog::info("leader election: campaigning for Lease {}/{} as {}", lc.leaseNamespace,
                     lc.leaseName, lc.identity);
        elector_->start();
        int sig = waitForSignal(signals_, [&] { return state_.leading.load(); });
        if (sig) {
            spdlog::info("received {} while on standby, shutting down", strsignal(sig));
            elector_->stop();
            return false;
        }
        return true;
    }

    leader::LeaderElector::Callbacks electionCallbacks() {
        leader::LeaderElector::Callbacks callbacks;
        callbacks.onStartedLeading = [this] {
            state_.leading = true;
            metrics_.setLeader(true);
        };
        callbacks.onStoppedLeading = [this] {
            // As client-go controllers do: stop at once; the Deployment restarts the process,
            // which then campaigns as a standby. Never reconcile without the Lease.
            state_.leading = false;
            metrics_.setLeader(false);
            lostLeadership_ = true;
        };
        callbacks.onNewLeader = [this](const std::string& holder) {
            std::lock_guard lock(state_.mu);
            state_.leaderIdentity = holder;
            if (!holder.empty() && holder != state_.ownIdentity)
                spdlog::info("leader election: {} leads; this replica ({}) is on standby", holder,
                             state_.ownIdentity);
        };
        return callbacks;
    }

    bool syncCaches() {
        factory_.startAll();
        if (!factory_.waitForCacheSync(std::chrono::seconds(60))) {
            spdlog::error("caches did not sync within 60s; is the API server reachable?");
            factory_.stopAll();
            return false;
        }
        synced_->store(true);
        if (!opts_.watch.empty()) {
            size_t objects = 0;
            for (const auto& entry : opts_.watch)
                objects += factory_.informerFor(parseWatchEntry(entry), opts_.ns).store().size();
            spdlog::info("caches synced: {} objects of {} kinds{}", objects, opts_.watch.size(),
                         opts_.ns.empty() ? " in all namespaces" : " in namespace " + opts_.ns);
        }
        return true;
    }

    bool startApplications() {
        std::filesystem::create_directories(opts_.repoCacheDir);
        libgit2_ = std::make_unique<git::LibGit2Source>(opts_.repoCacheDir);
        gitSource_ = std::make_unique<MeteredGitSource>(*libgit2_, metrics_);
        appcontroller::Options appOptions = applicationOptions(opts_);
        if (shards_) shareByLeases(appOptions);
        // A project's destinationServiceAccounts: sync writes impersonate the service account
        // with the controller's own credentials.
        appOptions.impersonatingClient = [cfg = cfg_](const std::string& user,
                                                      const std::vector<std::string>& groups) {
            kube::ClusterConfig c = cfg;
            c.impersonateUser = user;
            c.impersonateGroups = groups;
            return std::unique_ptr<kube::KubeClient>(std::make_unique<kube::RestClient>(c));
        };
        if (!opts_.managedNamespaces.empty())
            spdlog::info(
                "namespaced mode: managing namespaces {}{}",
                sluice::join(opts_.managedNamespaces, ","),
                appOptions.managedScope.clusterResources ? " and cluster-scoped kinds" : "");
        applications_ = std::make_unique<appcontroller::ApplicationController>(
            client_, factory_, *gitSource_, appOptions);
        applications_->setObserver([this](const appcontroller::ReconcileRecord& r) {
            metrics_.observeApplicationReconcile(r);
        });
        applications_->start();
        if (!applications_->waitForSync(std::chrono::seconds(60))) {
            spdlog::error("the Application cache did not sync within 60s");
            applications_->stop();
            factory_.stopAll();
            return false;
        }
        startNotifications();
        return true;
    }

    // The Applications this replica reconciles are those of the slots it holds; its clusters'
    // states go in a ConfigMap of its own, owned by its membership Lease.
    void shareByLeases(appcontroller::Options& o) {
        o.ownership = shards_;
        o.publishSuffix = "member-" + leader::leaseNameSuffix(shards_->identity());
        o.publishOwner = [shards = shards_]() -> nlohmann::json {
            const std::string uid = shards->memberLeaseUid();
            if (uid.empty()) return nullptr;
            return {{"apiVersion", "coordination.k8s.io/v1"},
                    {"kind", "Lease"},
                    {"name", shards->memberLeaseName()},
                    {"uid", uid}};
        };
    }

    // Argo CD's notifications of Applications: a watcher apart from reconcile, sharing the
    // Application cache and the process's notifier.
    void startNotifications() {
        appcontroller::NotificationOptions o;
        o.watchNamespace = opts_.ns;
        o.controlNamespace = opts_.controlNamespace;
        o.configMap = opts_.notificationsConfigMap;
        o.ownership = shards_;
        notifications_ = std::make_unique<appcontroller::NotificationController>(client_, factory_,
                                                                                 notifier_, o);
        notifications_->start();
    }

    // The Canary controller runs when its CRD is installed (an Argo CD-style install may ship
    // only Applications). False when its caches did not sync.
    bool startCanaries() {
        try {
            client_.resourceFor(kCanaryGvk);
        } catch (const kube::ApiError& e) {
            if (e.code() != 404) throw;
            spdlog::warn(
                "the Canary CRD (canaries.sluice.io) is not installed: the Canary controller is "
                "off");
            return true;
        }
        canarycontroller::Options canaryOpts = canaryOptions(opts_);
        canaryOpts.notifier = &notifier_;
        canaryOpts.ownership = shards_;
        canaries_ = std::make_unique<canarycontroller::CanaryController>(client_, factory_,
                                                                         std::move(canaryOpts));
        canaries_->setObserver([this](const canarycontroller::ReconcileRecord& r) {
            metrics_.observeCanaryReconcile(r);
        });
        canaries_->start();
        if (!canaries_->waitForSync(std::chrono::seconds(60))) {
            spdlog::error("the Canary and Deployment caches did not sync within 60s");
            canaries_->stop();
            applications_->stop();
            factory_.stopAll();
            return false;
        }
        metrics_.collectCanaries(factory_.informerFor(kCanaryGvk, opts_.ns));
        metrics_.collectQueueDepth("canary", [this] { return canaries_->stats().queueDepth; });
        spdlog::info("canary controller started: metrics server {}, default provider {}",
                     opts_.metricsServer, opts_.meshProvider);
        return true;
    }

    // The controllers run: metrics, webhooks and readiness follow them.
    void announceStarted() {
        metrics_.collectApplications(factory_.informerFor(kApplicationGvk, opts_.ns));
        metrics_.collectQueueDepth("application",
                                   [this] { return applications_->stats().queueDepth; });
        metrics_.collectClusters([this] { return applications_->clusters(); });
        // Sharded, this replica owns only some of the pushed repository's Applications: it
        // refreshes them all through the refresh annotation, which their owners act on.
        webhooks_.setController(shards_ ? nullptr : applications_.get());
        state_.cachesSynced = true;
        spdlog::info(
            "application controller started: {} workers, repositories cached in {}, "
            "control namespace {}, shard {} of {}",
            opts_.concurrency, opts_.repoCacheDir, opts_.controlNamespace, opts_.shardIndex,
            opts_.shards);
    }

    int waitAndShutDown() {
        controller::MemoryTrimmer trimmer(std::chrono::seconds(10));
        int sig = waitForSignal(signals_, [this, &trimmer] {
            trimmer.tick();
            return lostLeadership_.load();
        });
        webhooks_.setController(nullptr);
        if (sig)
            spdlog::info("received {}, shutting down (a running sync finishes its current wave)",
                         strsignal(sig));
        else
            spdlog::error("leader election: lost the Lease; stopping the controllers and exiting");
        if (canaries_) canaries_->stop();
        if (notifications_) notifications_->stop();
        applications_->stop();
        // Released only after the controllers stopped, so two leaders never act at once.
        if (elector_) elector_->stop();
        if (shards_) shards_->stop();
        factory_.stopAll();
        for (auto& s : servers_) s->stop();
        return sig ? 0 : 1;
    }

    const ControllerOptions& opts_;
    const sigset_t& signals_;
    const kube::ClusterConfig cfg_;
    ControllerMetrics metrics_;
    kube::RestClient client_;
    ProcessState state_;
    WebhookReceiver webhooks_;
    // After everything their handlers use, so they stop first on every return path.
    std::vector<std::unique_ptr<server::HttpServer>> servers_;
    cache::SharedInformerFactory factory_;
    std::shared_ptr<std::atomic<bool>> synced_ = std::make_shared<std::atomic<bool>>(false);
    std::unique_ptr<kube::RestClient> electionClient_;
    std::unique_ptr<leader::LeaderElector> elector_;
    std::shared_ptr<leader::ShardCoordinator> shards_;
    std::atomic<bool> lostLeadership_{false};
    // One for the whole process: the controllers' alerts and notifications share its queue,
    // its delivery thread and its /metrics counters. Declared before the controllers, so it
    // outlives them.
    notify::Notifier notifier_{notify::NotifierOptions{}, notify::makeHttpTransport(),
                               &metrics_.registry()};
    std::unique_ptr<git::LibGit2Source> libgit2_;
    std::unique_ptr<MeteredGitSource> gitSource_;
    std::unique_ptr<appcontroller::ApplicationController> applications_;
    std::unique_ptr<appcontroller::NotificationController> notifications_;
    std::unique_ptr<canarycontroller::CanaryController> canaries_;
};

}  // namespace

int main(int argc, char** argv) {
    // Before any thread: every new API connection would otherwise parse the whole CA bundle.
    const bool hashedCas = kube::preferHashedCaDirectory();
    controller::limitMallocArenas(2);
    // cpprest's I/O threads (40 by default): every request's continuations hop between them,
    // and with dozens of threads on a small node the hops cost more CPU than the requests (the
    // 400-Application bench: 14 s of controller CPU with 40, 8.5 s with 2 to 4). Nothing blocks
    // on these threads: the HTTP server runs its handlers on threads of its own.
    crossplat::threadpool::initialize_with_threads(
        std::max<std::size_t>(4, std::thread::hardware_concurrency()));
    // Handle SIGTERM/SIGINT synchronously in main; every thread started later inherits the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    ControllerOptions opts;
    try {
        opts = parseOptions(argc, argv);
    } catch (const std::invalid_argument& e) {
        std::cerr << "sluice-controller: " << e.what()
                  << "\nRun 'sluice-controller --help' for usage.\n";
        return 2;
    }
    if (opts.showHelp) {
        std::cout << usage();
        return 0;
    }
    if (opts.showVersion) {
        std::cout << "sluice-controller " << SLUICE_VERSION << "\n";
        return 0;
    }
    try {
        setupLogging(opts.logFormat, opts.logLevel);
    } catch (const std::invalid_argument& e) {
        std::cerr << "sluice-controller: " << e.what() << "\n";
        return 2;
    }
    if (hashedCas)
        spdlog::debug("system CAs are read from the hashed CA directory (SSL_CERT_FILE unset)");
    try {
        ControllerProcess process(opts, signals);
        return process.run();
    } catch (const kube::ConfigError& e) {
        spdlog::error("configuration: {}", e.what());
    } catch (const kube::ApiError& e) {
        spdlog::error("API error {} {}: {}", e.code(), e.reason(), e.message());
    } catch (const kube::TransportError& e) {
        spdlog::error("cannot reach the API server: {}", e.what());
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
    }
    return 1;
}
