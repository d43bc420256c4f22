// sluice-controller: wires configuration, the Kubernetes client and the shared watch caches.
// The Application and Canary controllers plug into this process as they land.
#include <csignal>
#include <cstring>
#include <iostream>

#include "options.h"
#include "sluice/cache/informer.h"
#include "sluice/kube/client.h"
#include "sluice/util/logging.h"

namespace {

using namespace sluice;

kube::GroupVersionKind parseWatchEntry(const std::string& entry) {
    auto slash = entry.rfind('/');
    return kube::GroupVersionKind::fromApiVersion(entry.substr(0, slash), entry.substr(slash + 1));
}

std::string describe(const nlohmann::json& obj) {
    return obj.value("kind", "?") + " " + kube::keyOf(obj).str() + " (resourceVersion " +
           kube::resourceVersionOf(obj) + ")";
}

int run(const ControllerOptions& opts, const sigset_t& signals) {
    kube::ClusterConfig cfg = kube::loadDefaultConfig(opts.kubeconfig, opts.context);
    cfg.qps = opts.qps;
    cfg.burst = opts.burst;
    kube::RestClient client(cfg);
    auto version = client.getPath("/version");
    spdlog::info("connected to {} (Kubernetes {}), config from {}", cfg.server,
                 version.value("gitVersion", "unknown"), cfg.source);

    cache::SharedInformerFactory factory(client);
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
    factory.startAll();
    if (!factory.waitForCacheSync(std::chrono::seconds(60))) {
        spdlog::error("caches did not sync within 60s; is the API server reachable?");
        factory.stopAll();
        return 1;
    }
    synced->store(true);
    size_t objects = 0;
    for (const auto& entry : opts.watch)
        objects += factory.informerFor(parseWatchEntry(entry), opts.ns).store().size();
    spdlog::info("caches synced: {} objects of {} kinds{}", objects, opts.watch.size(),
                 opts.ns.empty() ? " in all namespaces" : " in namespace " + opts.ns);

    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("received {}, shutting down", strsignal(sig));
    factory.stopAll();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
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
