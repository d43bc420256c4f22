// Kubernetes client and watch-cache benchmark against the project's API test server, which runs
// as a separate process so its memory never counts as the cache's.
//
//   sluice-bench-kube [--objects N] [--threads T] [--apiserver PATH]
//
// Prints: server-side apply and get throughput with latency percentiles, watch-cache memory per
// cached object (with and without managedFields), and watch delivery latency.
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "sluice/cache/informer.h"
#include "sluice/kube/client.h"

using namespace std::chrono;
using namespace sluice::bench;
using sluice::kube::Object;

namespace {

struct Args {
    int objects = 2000;
    int threads = 16;
    std::string apiserver = SLUICE_APISERVER_BIN;
};

Args parseArgs(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        if (k == "--objects")
            a.objects = std::stoi(flagValue(argc, argv, i));
        else if (k == "--threads")
            a.threads = std::stoi(flagValue(argc, argv, i));
        else if (k == "--apiserver")
            a.apiserver = flagValue(argc, argv, i);
        else
            throw std::invalid_argument("unknown argument " + k);
    }
    return a;
}

// A ConfigMap of typical size: a few labels and ten ~40-byte entries (about 1 KiB as JSON).
Object configMap(int i) {
    Object data = Object::object();
    for (int k = 0; k < 10; ++k)
        data["key-" + std::to_string(k)] =
            "value-" + std::to_string(i) + "-" + std::string(32, 'x');
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata",
             {{"name", "cm-" + std::to_string(i)},
              {"namespace", "bench"},
              {"labels", {{"app", "bench"}, {"shard", std::to_string(i % 8)}}}}},
            {"data", data}};
}

// Runs fn(i) for i in [0, n) on `threads` threads; returns wall seconds and per-call latencies
// (ms).
template <class F>
std::pair<double, std::vector<double>> parallel(int n, int threads, F fn) {
    std::atomic<int> next{0};
    std::vector<std::vector<double>> lat(threads);
    auto start = steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            for (int i = next++; i < n; i = next++) {
                auto s = steady_clock::now();
                fn(i);
                lat[t].push_back(duration<double, std::milli>(steady_clock::now() - s).count());
            }
        });
    for (auto& th : pool) th.join();
    double wall = secondsSince(start);
    std::vector<double> all;
    for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
    return {wall, all};
}

size_t heapInUse() {
    malloc_trim(0);
    return mallinfo2().uordblks;
}

size_t rssBytes() {
    std::ifstream in("/proc/self/statm");
    size_t pages = 0, resident = 0;
    in >> pages >> resident;
    return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

void report(const char* what, int n, double wall, const std::vector<double>& lat) {
    auto p = percentiles(lat);
    std::printf("%-28s %7d ops %8.2f s %9.0f ops/s   p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms\n",
                what, n, wall, n / wall, p.p50, p.p99, p.max);
}

// Heap bytes per object held by a synced informer over the bench namespace.
double cacheBytesPerObject(sluice::kube::KubeClient& client, int n, bool dropManagedFields) {
    size_t before = heapInUse();
    size_t rssBefore = rssBytes();
    sluice::cache::InformerOptions opts;
    opts.ns = "bench";
    if (dropManagedFields) opts.transform = [](Object& o) { o["metadata"].erase("managedFields"); };
    double perObject = 0;
    {
        sluice::cache::Informer informer(client, kConfigMap, opts);
        informer.start();
        if (!informer.waitForSync(seconds(120))) throw std::runtime_error("informer did not sync");
        if (static_cast<int>(informer.store().size()) != n)
            throw std::runtime_error("cache holds " + std::to_string(informer.store().size()) +
                                     " objects, expected " + std::to_string(n));
        size_t after = heapInUse();
        size_t rssAfter = rssBytes();
        perObject = static_cast<double>(after - before) / n;
        std::printf("%-28s %7d objs  heap %8.1f B/object   RSS delta %8.1f B/object\n",
                    dropManagedFields ? "cache (managedFields dropped)" : "cache (objects intact)",
                    n, perObject, static_cast<double>(rssAfter - rssBefore) / n);
        informer.stop();
    }
    return perObject;
}

void watchLatency(sluice::kube::KubeClient& client, int updates) {
    std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, steady_clock::time_point> seen;
    sluice::cache::InformerOptions opts;
    opts.ns = "bench";
    sluice::cache::Informer informer(client, kConfigMap, opts);
    informer.addEventHandler({nullptr,
                              [&](const auto&, const auto& obj) {
                                  std::lock_guard lock(mu);
                                  seen[(*obj)["data"].value("marker", "")] = steady_clock::now();
                                  cv.notify_all();
                              },
                              nullptr});
    informer.start();
    informer.waitForSync(seconds(120));
    std::vector<double> lat;
    for (int i = 0; i < updates; ++i) {
        std::string marker = "m" + std::to_string(i);
        Object patch = {{"data", {{"marker", marker}}}};
        auto sent = steady_clock::now();
        client.patch(kConfigMap, "bench", "cm-" + std::to_string(i), sluice::kube::PatchType::Merge,
                     patch.dump());
        std::unique_lock lock(mu);
        if (!cv.wait_for(lock, seconds(10), [&] { return seen.count(marker) > 0; }))
            throw std::runtime_error("watch event for " + marker + " never arrived");
        lat.push_back(duration<double, std::milli>(seen[marker] - sent).count());
    }
    informer.stop();
    auto p = percentiles(lat);
    std::printf("%-28s %7d evts  write->handler p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms\n",
                "watch delivery", updates, p.p50, p.p99, p.max);
}

}  // namespace

int main(int argc, char** argv) {
    const Args args = parseArgsOrExit(argc, argv, parseArgs,
                                      "sluice-bench-kube [--objects N] [--threads T] "
                                      "[--apiserver PATH]");
    try {
        ApiServerProcess server(args.apiserver, {"--no-simulate"});
        sluice::kube::RestClient client(server.config());
        client.create(
            {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "bench"}}}});

        std::printf(
            "sluice-bench-kube: %d ConfigMaps (~1 KiB each), %d client threads, TLS + token\n",
            args.objects, args.threads);
        sluice::kube::ApplyOptions apply;
        apply.fieldManager = "bench";
        auto [applyWall, applyLat] =
            parallel(args.objects, args.threads, [&](int i) { client.apply(configMap(i), apply); });
        report("server-side apply (create)", args.objects, applyWall, applyLat);
        auto [reapplyWall, reapplyLat] =
            parallel(args.objects, args.threads, [&](int i) { client.apply(configMap(i), apply); });
        report("server-side apply (no-op)", args.objects, reapplyWall, reapplyLat);
        auto [getWall, getLat] = parallel(args.objects, args.threads, [&](int i) {
            client.get(kConfigMap, "bench", "cm-" + std::to_string(i));
        });
        report("get", args.objects, getWall, getLat);
        auto listStart = steady_clock::now();
        sluice::kube::ListOptions pages;
        pages.limit = 500;
        auto all = client.listAll(kConfigMap, "bench", pages);
        std::printf("%-28s %7zu objs %8.2f s (pages of 500)\n", "list", all.items.size(),
                    secondsSince(listStart));

        cacheBytesPerObject(client, args.objects, false);
        cacheBytesPerObject(client, args.objects, true);
        watchLatency(client, std::min(args.objects, 200));
    } catch (const std::exception& e) {
        std::cerr << "benchmark failed: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
