// sluice-controller: wires configuration, the Kubernetes client, the shared watch caches and
// the controllers.
#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>

#include "endpoints.h"
#include "observability.h"
#include "options.h"
#include "sluice/app/spec.h"
#include "sluice/appcontroller/controller.h"
#include "sluice/cache/informer.h"
#include "sluice/canarycontroller/controller.h"
#include "sluice/git/git.h"
#include "sluice/kube/client.h"
#include "sluice/kube/tls.h"
#include "sluice/leader/leader.h"
#include "sluice/server/http_server.h"
#include "sluice/util/logging.h"
#include "sluice/util/strings.h"

namespace {

using namespace sluice;

// GitHub caps webhook payloads at 25 MB; anything larger is not a push event.
constexpr std::size_t kWebhookMaxBody = 25u << 20;

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

int run(const ControllerOptions& opts, const sigset_t& signals) {
    kube::ClusterConfig cfg = kube::loadDefaultConfig(opts.kubeconfig, opts.context);
    cfg.qps = opts.qps.value_or(50);
    cfg.burst = opts.burst;
    cfg.qpsOnlyWithoutApf = !opts.qps;
    ControllerMetrics metrics(SLUICE_VERSION);
    kube::RestClient client(cfg);
    client.setRequestObserver(metrics.kubeRequestObserver());
    auto version = client.getPath("/version");
    spdlog::info("connected to {} (Kubernetes {}), config from {}", cfg.server,
                 version.value("gitVersion", "unknown"), cfg.source);

    // The Application CRD must be installed; say so plainly rather than retrying a 404 list.
    const auto appGvk = kube::GroupVersionKind::fromApiVersion(
        std::string(app::kGroup) + "/" + app::kVersion, app::kKind);
    try {
        client.resourceFor(appGvk);
    } catch (const kube::ApiError& e) {
        if (e.code() != 404) throw;
        spdlog::error(
            "the Application CRD (applications.sluice.io) is not installed: apply "
            "crds/ first (kubectl apply -f crds/)");
        return 1;
    }

    // Probes and metrics answer from the start, so a standby replica is visible too.
    ProcessState state;
    state.leaderElection = opts.leaderElect;
    // Webhooks are received by every replica: a standby passes them on to the leader.
    WebhookReceiver webhooks(client, opts.controlNamespace, opts.webhookSecret, opts.ns, metrics);
    // Declared after everything their handlers use, so they stop first on every return path.
    std::vector<std::unique_ptr<server::HttpServer>> servers;
    auto serve = [&](const std::string& address, std::vector<server::Route> routes,
                     const char* what, std::size_t maxBody = 1 << 20) {
        if (address.empty()) return;
        servers.push_back(
            std::make_unique<server::HttpServer>(address, std::move(routes), maxBody));
        servers.back()->start();
        spdlog::info("serving {} on {}", what, servers.back()->address());
    };
    serve(opts.healthAddr, probeRoutes(state), "/healthz and /readyz");
    serve(opts.metricsAddr, metricsRoutes(metrics), "/metrics");
    metrics.setLeader(!opts.leaderElect);

    // Nothing in this process reads managedFields from a cache except the Application
    // controller's drift attribution, which reads the packed form too.
    cache::InformerOptions informerDefaults;
    informerDefaults.transform = cache::packManagedFields;
    cache::SharedInformerFactory factory(client, informerDefaults);
    auto synced = std::make_shared<std::atomic<bool>>(false);
    for (const auto& entry : opts.watch) {
        auto gvk = parseWatchEntry(entry);
        client.resourceFor(gvk);  // fails early, with the API's message, for unknown kinds
        auto& informer = factory.informerFor(gvk, opts.ns);
        // Objects listed at start-up are logged at debug level; changes after that at info.
        informer.addEventHandler(cache::EventHandler{
            [synced](const cache::ObjectPtr& o) {
                spdlog::log(*synced ? spdlog::level::info : spdlog::level::debug, "added {}",
                            describe(*o));
            },
            [](const cache::ObjectPtr&, const cache::ObjectPtr& o) {
                spdlog::info("updated {}", describe(*o));
            },
            [](const cache::ObjectPtr& o) { spdlog::info("deleted {}", describe(*o)); }});
    }

    serve(opts.webhookAddr, webhooks.routes(), "git webhooks at /api/webhook", kWebhookMaxBody);

    // With --leader-elect, wait (on standby) until this replica holds the Lease.
    std::unique_ptr<kube::RestClient> electionClient;
    std::unique_ptr<leader::LeaderElector> elector;
    std::atomic<bool> lostLeadership{false};
    if (opts.leaderElect) {
        // Its own client: a renew must fail fast enough to be retried within the deadline,
        // and must not queue behind the controllers' requests in the rate limiter.
        kube::ClusterConfig electionCfg = cfg;
        electionCfg.maxRetries = 1;
        electionCfg.requestTimeout = std::chrono::seconds(4);
        electionCfg.qps = 0;
        electionClient = std::make_unique<kube::RestClient>(electionCfg);
        leader::Config lc;
        lc.leaseNamespace = opts.controlNamespace;
        lc.leaseName = opts.leaderElectionId;
        lc.identity = leader::defaultIdentity();
        state.ownIdentity = lc.identity;
        leader::LeaderElector::Callbacks callbacks;
        callbacks.onStartedLeading = [&] {
            state.leading = true;
            metrics.setLeader(true);
        };
        callbacks.onStoppedLeading = [&] {
            // As client-go controllers do: stop at once; the Deployment restarts the process,
            // which then campaigns as a standby. Never reconcile without the Lease.
            state.leading = false;
            metrics.setLeader(false);
            lostLeadership = true;
        };
        callbacks.onNewLeader = [&](const std::string& holder) {
            std::lock_guard lock(state.mu);
            state.leaderIdentity = holder;
            if (!holder.empty() && holder != state.ownIdentity)
                spdlog::info("leader election: {} leads; this replica ({}) is on standby", holder,
                             state.ownIdentity);
        };
        elector = std::make_unique<leader::LeaderElector>(*electionClient, lc, callbacks);
        spdlog::info("leader election: campaigning for Lease {}/{} as {}", lc.leaseNamespace,
                     lc.leaseName, lc.identity);
        elector->start();
        int sig = waitForSignal(signals, [&] { return state.leading.load(); });
        if (sig) {
            spdlog::info("received {} while on standby, shutting down", strsignal(sig));
            elector->stop();
            return 0;
        }
    }

    factory.startAll();
    if (!factory.waitForCacheSync(std::chrono::seconds(60))) {
        spdlog::error("caches did not sync within 60s; is the API server reachable?");
        factory.stopAll();
        return 1;
    }
    synced->store(true);
    if (!opts.watch.empty()) {
        size_t objects = 0;
        for (const auto& entry : opts.watch)
            objects += factory.informerFor(parseWatchEntry(entry), opts.ns).store().size();
        spdlog::info("caches synced: {} objects of {} kinds{}", objects, opts.watch.size(),
                     opts.ns.empty() ? " in all namespaces" : " in namespace " + opts.ns);
    }

    std::filesystem::create_directories(opts.repoCacheDir);
    git::LibGit2Source libgit2(opts.repoCacheDir);
    MeteredGitSource gitSource(libgit2, metrics);
    appcontroller::Options appOptions;
    appOptions.watchNamespace = opts.ns;
    appOptions.controlNamespace = opts.controlNamespace;
    appOptions.concurrency = opts.concurrency;
    appOptions.pollInterval = opts.reconcileInterval;
    appOptions.syncTimeout = opts.syncTimeout;
    appOptions.sources.helmPath = opts.helmPath;
    appOptions.sources.kustomizePath = opts.kustomizePath;
    appOptions.sources.kubectlPath = opts.kubectlPath;
    appOptions.sources.kustomizeBuildOptions = opts.kustomizeBuildOptions;
    appOptions.sources.allowRemoteBases = opts.allowRemoteKustomizeBases;
    appOptions.sources.allowRemoteValueFiles = opts.allowRemoteValueFiles;
    appOptions.sources.timeout = opts.renderTimeout;
    appOptions.sources.workDir = opts.renderDir;
    appOptions.renderConcurrency = opts.renderConcurrency;
    appOptions.pluginConfigMap = opts.pluginConfigMap;
    appOptions.managedScope.namespaces = opts.managedNamespaces;
    appOptions.managedScope.clusterResources =
        opts.clusterResources.value_or(opts.managedNamespaces.empty());
    if (!opts.managedNamespaces.empty())
        spdlog::info("namespaced mode: managing namespaces {}{}",
                     sluice::join(opts.managedNamespaces, ","),
                     appOptions.managedScope.clusterResources ? " and cluster-scoped kinds" : "");
    appcontroller::ApplicationController applications(client, factory, gitSource, appOptions);
    applications.setObserver([&metrics](const appcontroller::ReconcileRecord& r) {
        metrics.observeApplicationReconcile(r);
    });
    applications.start();
    if (!applications.waitForSync(std::chrono::seconds(60))) {
        spdlog::error("the Application cache did not sync within 60s");
        applications.stop();
        factory.stopAll();
        return 1;
    }
    // The Canary controller runs when its CRD is installed (an Argo CD-style install may ship
    // only Applications).
    const kube::GroupVersionKind canaryGvk{"sluice.io", "v1alpha1", "Canary"};
    std::unique_ptr<canarycontroller::CanaryController> canaries;
    bool canaryCrd = true;
    try {
        client.resourceFor(canaryGvk);
    } catch (const kube::ApiError& e) {
        if (e.code() != 404) throw;
        canaryCrd = false;
        spdlog::warn(
            "the Canary CRD (canaries.sluice.io) is not installed: the Canary controller is off");
    }
    if (canaryCrd) {
        canarycontroller::Options canaryOptions;
        canaryOptions.watchNamespace = opts.ns;
        canaryOptions.concurrency = opts.concurrency;
        canaryOptions.metricsServer = opts.metricsServer;
        canaryOptions.defaultProvider = opts.meshProvider;
        canaryOptions.selectorLabels = opts.selectorLabels;
        canaries =
            std::make_unique<canarycontroller::CanaryController>(client, factory, canaryOptions);
        canaries->setObserver([&metrics](const canarycontroller::ReconcileRecord& r) {
            metrics.observeCanaryReconcile(r);
        });
        canaries->start();
        if (!canaries->waitForSync(std::chrono::seconds(60))) {
            spdlog::error("the Canary and Deployment caches did not sync within 60s");
            canaries->stop();
            applications.stop();
            factory.stopAll();
            return 1;
        }
        metrics.collectCanaries(factory.informerFor(canaryGvk, opts.ns));
        metrics.collectQueueDepth("canary", [&canaries] { return canaries->stats().queueDepth; });
        spdlog::info("canary controller started: metrics server {}, default provider {}",
                     opts.metricsServer, opts.meshProvider);
    }
    metrics.collectApplications(factory.informerFor(appGvk, opts.ns));
    metrics.collectQueueDepth("application",
                              [&applications] { return applications.stats().queueDepth; });
    webhooks.setController(&applications);
    state.cachesSynced = true;
    spdlog::info(
        "application controller started: {} workers, repositories cached in {}, "
        "control namespace {}",
        opts.concurrency, opts.repoCacheDir, opts.controlNamespace);

    int sig = waitForSignal(signals, [&] { return lostLeadership.load(); });
    webhooks.setController(nullptr);
    if (sig)
        spdlog::info("received {}, shutting down (a running sync finishes its current wave)",
                     strsignal(sig));
    else
        spdlog::error("leader election: lost the Lease; stopping the controllers and exiting");
    if (canaries) canaries->stop();
    applications.stop();
    // Released only after the controllers stopped, so two leaders never act at once.
    if (elector) elector->stop();
    factory.stopAll();
    for (auto& s : servers) s->stop();
    return sig ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    // Before any thread: every new API connection would otherwise parse the whole CA bundle.
    const bool hashedCas = kube::preferHashedCaDirectory();
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
        return run(opts, signals);
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
