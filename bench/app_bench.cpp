// Application controller benchmark against the project's API test server (a separate process,
// so its memory and CPU never count as the controller's).
//
//   sluice-bench-app [--objects N] [--apps A] [--objects-per-app M] [--latency-objects L]
//                    [--skip-kubectl] [--skip-rss]
//
// Prints, in one run:
//   1. wall time to sync N fresh objects from git, against `kubectl apply --server-side -f` of
//      the same files (target: Sluice at most half of kubectl's time);
//   2. CPU time and API writes of a no-op reconcile of an Application with N in-sync objects
//      (target: under 20 ms, zero writes);
//   3. commit-to-applied latency after a refresh trigger for L objects (target: under 1 s);
//   4. resident memory of the sluice-controller process managing A Applications of M objects
//      each (target: under 150 MB).
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "sluice/appcontroller/controller.h"
#include "sluice/cache/informer.h"
#include "sluice/git/git.h"
#include "sluice/kube/client.h"
#include "sluice/kube/tls.h"
#include "tempdir/tempdir.h"

using namespace std::chrono;
using namespace sluice::bench;
using sluice::kube::Object;
using sluice::testing::ChildProcess;
using sluice::testing::eventually;
using sluice::testing::runProcess;
using sluice::testing::TempDir;

namespace {

struct Args {
    int objects = 1000;
    int apps = 1000;
    int objectsPerApp = 20;
    int latencyObjects = 100;
    bool skipKubectl = false;
    bool skipRss = false;
};

Args parseArgs(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        auto value = [&] { return std::stoi(flagValue(argc, argv, i)); };
        if (k == "--objects")
            a.objects = value();
        else if (k == "--apps")
            a.apps = value();
        else if (k == "--objects-per-app")
            a.objectsPerApp = value();
        else if (k == "--latency-objects")
            a.latencyObjects = value();
        else if (k == "--skip-kubectl")
            a.skipKubectl = true;
        else if (k == "--skip-rss")
            a.skipRss = true;
        else
            throw std::invalid_argument("unknown argument " + k);
    }
    return a;
}

// A small ConfigMap manifest (about 300 bytes of YAML).
std::string configMapYaml(const std::string& name, const std::string& value) {
    return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name +
           "\n  labels:\n    app.kubernetes.io/part-of: bench\ndata:\n  greeting: \"" + value +
           "\"\n  settings.properties: |\n    threads=8\n    timeout=30s\n    mode=" + value + "\n";
}

// 1 + 2 + 3: in-process controller.
void syncAndReconcileBench(const Args& args, ApiServerProcess& server, TempDir& work) {
    sluice::kube::RestClient client(server.config());
    std::atomic<uint64_t> writes{0};
    client.setRequestObserver([&](const std::string& verb, int, nanoseconds) {
        if (verb != "get" && verb != "list" && verb != "watch") ++writes;
    });
    ensureNamespace(client, "sluice");
    ensureNamespace(client, "bench-sluice");
    ensureNamespace(client, "bench-kubectl");
    ensureNamespace(client, "bench-latency");

    Repo repo(work.file("repo"));
    for (int i = 0; i < args.objects; ++i)
        repo.write("fresh/cm-" + std::to_string(i) + ".yaml",
                   configMapYaml("cm-" + std::to_string(i), "v1"));
    for (int i = 0; i < args.latencyObjects; ++i)
        repo.write("latency/cm-" + std::to_string(i) + ".yaml",
                   configMapYaml("lat-" + std::to_string(i), "round-0"));
    repo.commit("initial");

    sluice::cache::SharedInformerFactory informers(client);
    sluice::git::LibGit2Source git(work.file("git-cache"));
    sluice::appcontroller::Options opts;
    opts.controlNamespace = "sluice";
    opts.concurrency = 2;
    opts.pollInterval = hours(1);  // only explicit refreshes fetch
    sluice::appcontroller::ApplicationController controller(client, informers, git, opts);
    controller.start();
    if (!controller.waitForSync(seconds(60))) throw std::runtime_error("controller not ready");

    // 1. Fresh sync of N objects.
    auto t0 = steady_clock::now();
    client.create(application("fresh", repo.url(), "fresh", "bench-sluice"));
    bool ok = eventually([&] { return isSynced(client.get(kApplication, "sluice", "fresh")); },
                         minutes(10), milliseconds(10));
    double sluiceSeconds = secondsSince(t0);
    if (!ok) throw std::runtime_error("the Application did not sync");
    auto live = client.list(kConfigMap, "bench-sluice").items.size();
    std::printf("sync %d fresh objects (sluice, Validate dry run + apply)   %8.2f s  (%zu live)\n",
                args.objects, sluiceSeconds, live);

    if (!args.skipKubectl) {
        auto k0 = steady_clock::now();
        auto r = runProcess({"kubectl", "--kubeconfig", server.kubeconfig(), "apply",
                             "--server-side", "-n", "bench-kubectl", "-f", work.file("repo/fresh")},
                            {}, minutes(20));
        double kubectlSeconds = secondsSince(k0);
        if (r.exitCode != 0) throw std::runtime_error("kubectl apply failed: " + r.err);
        std::printf("sync %d fresh objects (kubectl apply --server-side -f)    %8.2f s\n",
                    args.objects, kubectlSeconds);
        std::printf("  sluice / kubectl wall time: %.2f (target <= 0.50)\n",
                    sluiceSeconds / kubectlSeconds);
    }

    // 2. No-op reconcile of the synced Application.
    controller.stop();  // keep workers out of the measurement; the informers keep running
    std::vector<double> cpu;
    uint64_t writesBefore = writes.load();
    for (int i = 0; i < 20; ++i) {
        double c0 = threadCpuSeconds();
        auto rec = controller.reconcileNow("sluice", "fresh");
        cpu.push_back((threadCpuSeconds() - c0) * 1e3);
        if (rec.syncStatus != "Synced")
            throw std::runtime_error("no-op reconcile found the app " + rec.syncStatus + ": " +
                                     rec.error);
    }
    const auto p = percentiles(cpu);
    std::printf(
        "no-op reconcile, %d in-sync objects: CPU median %.2f ms, max %.2f ms "
        "(target < 20 ms); API writes: %llu (target 0)\n",
        args.objects, p.p50, p.max, static_cast<unsigned long long>(writes.load() - writesBefore));
}

void latencyBench(const Args& args, ApiServerProcess& server, TempDir& work) {
    sluice::kube::RestClient client(server.config());
    Repo repo(work.file("latency-repo"));
    for (int i = 0; i < args.latencyObjects; ++i)
        repo.write("app/cm-" + std::to_string(i) + ".yaml",
                   configMapYaml("lat-" + std::to_string(i), "round-0"));
    repo.commit("round 0");

    sluice::cache::SharedInformerFactory informers(client);
    // The benchmark's own view of the ConfigMaps, to see when the last one changed.
    auto& watched = informers.informerFor(kConfigMap, "bench-latency");
    sluice::git::LibGit2Source git(work.file("latency-git-cache"));
    sluice::appcontroller::Options opts;
    opts.controlNamespace = "sluice";
    opts.pollInterval = hours(1);
    sluice::appcontroller::ApplicationController controller(client, informers, git, opts);
    controller.start();
    informers.startAll();
    if (!controller.waitForSync(seconds(60))) throw std::runtime_error("controller not ready");
    client.create(application("latency", repo.url(), "app", "bench-latency"));
    if (!eventually([&] { return isSynced(client.get(kApplication, "sluice", "latency")); },
                    minutes(2)))
        throw std::runtime_error("latency app did not sync");

    auto allAt = [&](const std::string& value) {
        auto items = watched.store().list();
        if (static_cast<int>(items.size()) < args.latencyObjects) return false;
        for (const auto& o : items)
            if (o->value("/data/greeting"_json_pointer, std::string()) != value) return false;
        return true;
    };
    std::vector<double> ms;
    for (int round = 1; round <= 5; ++round) {
        std::string value = "round-" + std::to_string(round);
        for (int i = 0; i < args.latencyObjects; ++i)
            repo.write("app/cm-" + std::to_string(i) + ".yaml",
                       configMapYaml("lat-" + std::to_string(i), value));
        repo.commit(value);
        auto t0 = steady_clock::now();
        controller.refresh("sluice", "latency");  // what the git webhook receiver calls
        if (!eventually([&] { return allAt(value); }, minutes(1), milliseconds(2)))
            throw std::runtime_error("round " + value + " was not applied");
        ms.push_back(secondsSince(t0) * 1000);
    }
    const auto p = percentiles(ms);
    std::printf(
        "commit-to-applied after a refresh, %d objects: median %.0f ms, max %.0f ms "
        "(target < 1000 ms)\n",
        args.latencyObjects, p.p50, p.max);
    controller.stop();
}

// 4. The controller binary managing many Applications.
void rssBench(const Args& args, ApiServerProcess& server, TempDir& work) {
    sluice::kube::RestClient client(server.config());
    Repo repo(work.file("many-repo"));
    for (int a = 0; a < args.apps; ++a)
        for (int o = 0; o < args.objectsPerApp; ++o)
            repo.write(
                "apps/app-" + std::to_string(a) + "/cm-" + std::to_string(o) + ".yaml",
                configMapYaml("app-" + std::to_string(a) + "-cm-" + std::to_string(o), "v1"));
    repo.commit("many apps");
    // The earlier phases' Applications are deleted with their finalizers by now; make sure the
    // control namespace is there whatever they took with them.
    ensureNamespace(client, "sluice");
    ensureNamespace(client, "bench-many");

    // Applications first, then the controller: it starts with all of them queued.
    std::vector<std::thread> creators;
    std::atomic<int> next{0};
    for (int t = 0; t < 8; ++t)
        creators.emplace_back([&] {
            for (int a = next++; a < args.apps; a = next++)
                client.create(application("many-" + std::to_string(a), repo.url(),
                                          "apps/app-" + std::to_string(a), "bench-many"));
        });
    for (auto& t : creators) t.join();

    auto t0 = steady_clock::now();
    ChildProcess controller({SLUICE_CONTROLLER_BIN,
                             "--kubeconfig",
                             server.kubeconfig(),
                             "--namespace",
                             "sluice",
                             "--control-namespace",
                             "sluice",
                             "--qps",
                             "0",
                             "--concurrency",
                             "8",
                             "--repo-cache-dir",
                             work.file("controller-git-cache"),
                             "--log-level",
                             "warn",
                             "--metrics-addr",
                             "0",
                             "--health-addr",
                             "0",
                             "--webhook-addr",
                             "0"});
    auto countSynced = [&] {
        int n = 0;
        for (const auto& app : client.listAll(kApplication, "sluice").items)
            if (app["metadata"]["name"].get<std::string>().rfind("many-", 0) == 0 && isSynced(app))
                ++n;
        return n;
    };
    bool ok = eventually([&] { return countSynced() == args.apps || !controller.running(); },
                         minutes(20), milliseconds(500));
    if (!ok || !controller.running())
        throw std::runtime_error("not every Application synced (" + std::to_string(countSynced()) +
                                 "/" + std::to_string(args.apps) +
                                 "): " + controller.stderrText().substr(0, 2000));
    double syncSeconds = secondsSince(t0);
    std::this_thread::sleep_for(seconds(2));  // let the last status writes settle
    long rss = statusKb(controller.pid(), "VmRSS");
    long hwm = statusKb(controller.pid(), "VmHWM");
    std::printf(
        "controller with %d Applications x %d objects: all synced in %.1f s; RSS %.1f MB, "
        "peak %.1f MB (target < 150 MB)\n",
        args.apps, args.objectsPerApp, syncSeconds, rss / 1024.0, hwm / 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
    const Args args = parseArgsOrExit(argc, argv, parseArgs,
                                      "sluice-bench-app [--objects N] [--apps A] "
                                      "[--objects-per-app M] [--latency-objects L] "
                                      "[--skip-kubectl] [--skip-rss]");
    // The in-process controller gets the TLS set-up sluice-controller's main() gives it.
    sluice::kube::preferHashedCaDirectory();
    try {
        TempDir work;
        ApiServerProcess server = applicationServer(SLUICE_APISERVER_BIN);
        syncAndReconcileBench(args, server, work);
        latencyBench(args, server, work);
        if (!args.skipRss) {
            ApiServerProcess fresh =
                applicationServer(SLUICE_APISERVER_BIN);  // the earlier objects do not count
            rssBench(args, fresh, work);
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sluice-bench-app: %s\n", e.what());
        return 1;
    }
}
