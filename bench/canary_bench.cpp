// Canary controller benchmark against the project's API test server (a separate process, so its
// CPU never counts as the controller's), with scripted metric values
// (metricprovider::ScriptedMetricProvider) and Gateway API routing.
//
//   sluice-bench-canary [--canaries N] [--steps S] [--latency-runs R] [--apiserver PATH]
//
// Prints, in one run:
//   1. controller CPU time per analysis step: N blue-green Canaries (two metric checks, a status
//      write and an Event per step) driven through S analysis steps each by reconcileNow() on
//      a fake clock; the process CPU (getrusage: reconciles, API client, watch caches) and the
//      CPU of the reconciling thread alone, per step and per reconcile;
//   2. decision latency with a 1 s analysis interval and threshold 1, the controller running
//      on the system clock: from the moment a breach is visible in the metric provider (the
//      success rate drops below its minimum) to the rollback being written (phase Failed read
//      back through the API), over R breaches at random points of the interval (target: under
//      one interval + 1 s).
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "sluice/cache/informer.h"
#include "sluice/canarycontroller/controller.h"
#include "sluice/kube/client.h"
#include "sluice/kube/config.h"
#include "sluice/metricprovider/provider.h"
#include "sluice/util/clock.h"
#include "testutil/objects.h"

using namespace std::chrono;
using namespace sluice::bench;
using nlohmann::json;
using sluice::canaryengine::MetricResult;
using sluice::kube::GroupVersionKind;
using sluice::testing::eventually;

namespace {

const std::string kNs = "bench";

struct Args {
    int canaries = 5;
    int steps = 200;
    int latencyRuns = 10;
    std::string apiserver = SLUICE_APISERVER_BIN;
};

Args parseArgs(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        if (k == "--canaries")
            a.canaries = std::stoi(flagValue(argc, argv, i));
        else if (k == "--steps")
            a.steps = std::stoi(flagValue(argc, argv, i));
        else if (k == "--latency-runs")
            a.latencyRuns = std::stoi(flagValue(argc, argv, i));
        else if (k == "--apiserver")
            a.apiserver = flagValue(argc, argv, i);
        else
            throw std::invalid_argument("unknown argument " + k);
    }
    if (a.canaries < 1 || a.steps < 1 || a.latencyRuns < 1)
        throw std::invalid_argument("counts must be positive");
    return a;
}

json deployment(const std::string& name, const std::string& image) {
    return sluice::testing::deploymentObject(name, image, 2, kNs);
}

// Success rate >= 99 %, p99 <= 500 ms, routed by a Gateway API HTTPRoute, 1 s interval.
json canaryObject(const std::string& name, const json& analysis) {
    json a = {{"interval", "1s"},
              {"metrics",
               json::array({{{"name", "request-success-rate"}, {"thresholdRange", {{"min", 99}}}},
                            {{"name", "request-duration"}, {"thresholdRange", {{"max", 500}}}}})}};
    a.update(analysis);
    return {{"apiVersion", "sluice.io/v1alpha1"},
            {"kind", "Canary"},
            {"metadata", {{"name", name}, {"namespace", kNs}}},
            {"spec",
             {{"provider", "gatewayapi:v1"},
              {"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", name}}},
              {"progressDeadlineSeconds", 120},
              {"service",
               {{"port", 80},
                {"targetPort", 9898},
                {"gatewayRefs", json::array({{{"name", "public"}, {"namespace", kNs}}})}}},
              {"analysis", a}}}};
}

void setImage(sluice::kube::KubeClient& client, const std::string& name, const std::string& image) {
    json patch = json::array({{{"op", "replace"},
                               {"path", "/spec/template/spec/containers/0/image"},
                               {"value", image}}});
    client.patch(kDeployment, kNs, name, sluice::kube::PatchType::JsonPatch, patch.dump());
}

json statusOf(sluice::kube::KubeClient& client, const std::string& name) {
    json c = client.get(kCanary, kNs, name);
    return c.value("status", json::object());
}

sluice::canarycontroller::Options optionsWith(
    std::shared_ptr<sluice::metricprovider::ScriptedMetricProvider> metrics) {
    sluice::canarycontroller::Options o;
    o.metricsServer = "http://prometheus.bench:9090";
    o.metricProviders = [metrics](const sluice::metricprovider::ClientOptions&)
        -> std::shared_ptr<sluice::metricprovider::MetricProvider> { return metrics; };
    return o;
}

void healthy(sluice::metricprovider::ScriptedMetricProvider& metrics) {
    metrics.whenQueryContains("_bucket", MetricResult::measured(50));
    metrics.whenQueryContains("!~", MetricResult::measured(100));
}

// 1. CPU per analysis step.
void cpuPerStep(sluice::kube::KubeClient& client, const Args& args) {
    auto metrics = std::make_shared<sluice::metricprovider::ScriptedMetricProvider>();
    healthy(*metrics);
    sluice::FakeClock clock;
    sluice::cache::SharedInformerFactory informers(client);
    auto options = optionsWith(metrics);
    options.clock = &clock;
    sluice::canarycontroller::CanaryController controller(client, informers, options);

    std::vector<std::string> names;
    for (int i = 0; i < args.canaries; ++i) {
        names.push_back("cpu-" + std::to_string(i));
        client.create(deployment(names.back(), "example/app:1.0"));
        // Blue-green: every step runs the checks; more iterations than steps, so none is
        // promoted during the measurement.
        client.create(
            canaryObject(names.back(), {{"threshold", 5}, {"iterations", args.steps + 10}}));
    }
    // Initialise, deploy a new revision and bring every Canary into its analysis (simulated
    // rollouts take real time; the fake clock moves one interval per round).
    auto driveUntil = [&](const std::string& name, const std::function<bool(const json&)>& done) {
        const auto deadline = steady_clock::now() + seconds(120);
        while (!done(statusOf(client, name))) {
            if (steady_clock::now() > deadline)
                throw std::runtime_error(name + " stuck: " + statusOf(client, name).dump());
            clock.advance(seconds(1));
            controller.reconcileNow(kNs, name);
            std::this_thread::sleep_for(milliseconds(20));
        }
    };
    for (const auto& n : names)
        driveUntil(n, [](const json& st) { return st.value("phase", "") == "Initialized"; });
    for (const auto& n : names) setImage(client, n, "example/app:2.0");
    for (const auto& n : names)
        driveUntil(n, [](const json& st) {
            return st.value("phase", "") == "Progressing" && st.value("iterations", 0) >= 1;
        });

    int before = 0;
    for (const auto& n : names) before += statusOf(client, n).value("iterations", 0);
    int reconciles = 0;
    const double cpu0 = processCpuSeconds();
    const double thread0 = threadCpuSeconds();
    const auto wall0 = steady_clock::now();
    // One reconcile per canary and interval: it runs the checks and the engine judges them.
    for (int round = 0; round < args.steps; ++round) {
        clock.advance(seconds(1));
        for (const auto& n : names) {
            auto r = controller.reconcileNow(kNs, n);
            if (!r.succeeded) throw std::runtime_error(n + ": " + r.error);
            ++reconciles;
        }
    }
    const double wall = secondsSince(wall0);
    const double thread = threadCpuSeconds() - thread0;
    const double cpu = processCpuSeconds() - cpu0;
    int after = 0;
    for (const auto& n : names) {
        json st = statusOf(client, n);
        if (st.value("phase", "") != "Progressing")
            throw std::runtime_error(n + " left the analysis: " + st.dump());
        after += st.value("iterations", 0);
    }
    const int steps = after - before;
    if (steps <= 0) throw std::runtime_error("no analysis step was recorded");
    const auto stats = controller.stats();
    std::printf(
        "%d blue-green canaries x %d steps: %d analysis steps, %d reconciles, %.2f s wall\n",
        args.canaries, args.steps, steps, reconciles, wall);
    std::printf("  process CPU per analysis step   %8.3f ms   (per reconcile %.3f ms)\n",
                1e3 * cpu / steps, 1e3 * cpu / reconciles);
    std::printf("  reconcile-thread CPU per step   %8.3f ms   (per reconcile %.3f ms)\n",
                1e3 * thread / steps, 1e3 * thread / reconciles);
    std::printf("  metric queries %llu, status writes %llu (whole run)\n",
                static_cast<unsigned long long>(stats.metricQueries),
                static_cast<unsigned long long>(stats.statusWrites));
    controller.stop();
    for (const auto& n : names) {
        client.remove(kCanary, kNs, n);
        client.remove(kDeployment, kNs, n);
    }
}

// 2. Decision latency, breach visible -> rollback written.
void decisionLatency(sluice::kube::KubeClient& client, const Args& args) {
    auto metrics = std::make_shared<sluice::metricprovider::ScriptedMetricProvider>();
    healthy(*metrics);
    sluice::cache::SharedInformerFactory informers(client);
    sluice::canarycontroller::CanaryController controller(client, informers, optionsWith(metrics));
    controller.start();
    if (!controller.waitForSync(seconds(60))) throw std::runtime_error("caches did not sync");
    const std::string name = "latency";
    client.create(deployment(name, "example/app:1.0"));
    // Canary strategy: far more steps than a run lasts, a single failed check rolls back.
    client.create(canaryObject(name, {{"threshold", 1}, {"maxWeight", 50}, {"stepWeight", 1}}));
    if (!eventually([&] { return statusOf(client, name).value("phase", "") == "Initialized"; },
                    seconds(60), milliseconds(10)))
        throw std::runtime_error("not initialised: " + statusOf(client, name).dump());

    std::mt19937 rng(42);
    std::uniform_int_distribution<int> offset(0, 999);
    std::vector<double> latencies;
    for (int run = 0; run < args.latencyRuns; ++run) {
        healthy(*metrics);
        setImage(client, name, "example/app:" + std::to_string(run + 2) + ".0");
        // Metrics are checked once the canary has traffic.
        if (!eventually(
                [&] {
                    json st = statusOf(client, name);
                    return st.value("phase", "") == "Progressing" &&
                           st.value("canaryWeight", 0) >= 1;
                },
                seconds(60), milliseconds(10)))
            throw std::runtime_error("analysis did not start: " + statusOf(client, name).dump());
        std::this_thread::sleep_for(milliseconds(offset(rng)));
        metrics->whenQueryContains("!~", MetricResult::measured(80));
        const auto breach = steady_clock::now();
        if (!eventually([&] { return statusOf(client, name).value("phase", "") == "Failed"; },
                        seconds(30), milliseconds(5)))
            throw std::runtime_error("no rollback: " + statusOf(client, name).dump());
        latencies.push_back(secondsSince(breach));
    }
    controller.stop();
    client.remove(kCanary, kNs, name);
    client.remove(kDeployment, kNs, name);
    auto p = percentiles(latencies);
    std::printf(
        "decision latency, interval 1 s, threshold 1, %d breaches: p50 %.2f s  p90 %.2f s  "
        "max %.2f s   (target < 2.00 s)\n",
        args.latencyRuns, p.p50, p.p90, p.max);
}

}  // namespace

int main(int argc, char** argv) {
    const Args args = parseArgsOrExit(argc, argv, parseArgs,
                                      "sluice-bench-canary [--canaries N] [--steps S] "
                                      "[--latency-runs R] [--apiserver PATH]");
    spdlog::set_level(spdlog::level::warn);
    try {
        ApiServerProcess server(
            args.apiserver,
            {"--crds", sluice::testing::sourcePath("crds/sluice.io_canaries.yaml"),
             sluice::testing::sourcePath("crds/sluice.io_metrictemplates.yaml"),
             sluice::testing::sharedPath("thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml")});
        sluice::kube::RestClient client(server.config());
        client.create(sluice::testing::namespaceObject(kNs));
        for (const GroupVersionKind& gvk : {kCanary, kHttpRoute}) {
            bool served = eventually(
                [&] {
                    try {
                        client.resourceFor(gvk);
                        return true;
                    } catch (const std::exception&) {
                        return false;
                    }
                },
                seconds(30), milliseconds(100));
            if (!served) throw std::runtime_error(gvk.str() + " is not served");
        }
        std::printf(
            "sluice-bench-canary: API test server in a separate process, scripted "
            "metrics, Gateway API routes\n");
        cpuPerStep(client, args);
        decisionLatency(client, args);
    } catch (const std::exception& e) {
        std::cerr << "benchmark failed: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
