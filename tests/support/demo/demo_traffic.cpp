// sluice-demo-traffic: the two "pods" and the client traffic of scripts/demo.sh's canary
// section, as in the canary end-to-end test (tests/canarycontroller/prometheus_e2e_test.cpp).
//
// - Two test HTTP backends on 127.0.0.1 stand in for the primary pod and the canary pod. Each
//   answers any GET with 200 and exports http_requests_total / http_request_duration_seconds
//   at /metrics. A backend "runs" the image of its Deployment (<target>-primary for the primary,
//   the Canary's target for the canary, read through the Kubernetes API): while that image
//   contains --bad-image (default "bad"), it answers --bad-error-rate of its requests with 500
//   after --bad-latency-ms.
// - A traffic loop sends --rps real HTTP requests per second to the two backends, split by the
//   canary weight Sluice wrote on the canary Ingress (the NGINX provider's
//   nginx.ingress.kubernetes.io/canary-weight annotation, counted only while
//   nginx.ingress.kubernetes.io/canary is "true"; 0 while the Ingress is absent). It stops by
//   itself after --duration seconds.
// - --prometheus-config writes a Prometheus config scraping both backends every second, with
//   the namespace/pod labels Kubernetes service discovery relabelling would give them.
//
// Loopback only. Prints the backends' addresses, then one traffic summary line every 5 s.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/http_server.h"
#include "prometheus/http_metrics.h"
#include "prometheus/prometheus_server.h"
#include "sluice/kube/client.h"
#include "sluice/kube/config.h"
#include "sluice/kube/errors.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace testing = sluice::testing;
namespace kube = sluice::kube;

volatile std::sig_atomic_t gStop = 0;
void onSignal(int) {
    gStop = 1;
}

struct Options {
    std::string kubeconfig;
    std::string ns = "podinfo";
    std::string target = "podinfo";
    std::string ingress = "podinfo-canary";
    std::string badImage = "bad";
    double badErrorRate = 1.0;
    int badLatencyMs = 0;
    int rps = 40;
    int durationSeconds = 600;
    int primaryPort = 0;
    int canaryPort = 0;
    std::string prometheusConfig;
};

void usage() {
    std::cerr
        << "usage: sluice-demo-traffic [--kubeconfig PATH] [--namespace NS] [--target NAME]\n"
           "       [--ingress NAME] [--bad-image TEXT] [--bad-error-rate R] [--bad-latency-ms MS]\n"
           "       [--rps N] [--duration SECONDS] [--primary-port P] [--canary-port P]\n"
           "       [--prometheus-config PATH]\n"
           "Defaults: $KUBECONFIG, podinfo, podinfo, podinfo-canary, bad, 1.0, 0, 40, 600, 0, 0.\n";
}

// One pod: a backend whose behaviour follows the image its Deployment runs.
class Backend {
  public:
    Backend(std::string deployment, std::string pod, int port, const Options& opts)
        : deployment_(std::move(deployment)), pod_(std::move(pod)), opts_(opts) {
        testing::HttpServerOptions so;
        so.port = port;
        server_ = std::make_unique<testing::HttpServer>(so);
        server_->start([this](const testing::HttpRequest& req, testing::ResponseWriter& w) {
            handle(req, w);
        });
    }
    ~Backend() { server_->stop(); }

    const std::string& deployment() const { return deployment_; }
    const std::string& pod() const { return pod_; }
    int port() const { return server_->port(); }
    std::string address() const { return "127.0.0.1:" + std::to_string(port()); }
    void setImage(const std::string& image) {
        std::lock_guard lock(mu_);
        image_ = image;
    }
    std::string image() const {
        std::lock_guard lock(mu_);
        return image_;
    }
    const testing::HttpMetrics& metrics() const { return metrics_; }

  private:
    bool failing() const {
        std::string img = image();
        return !opts_.badImage.empty() && img.find(opts_.badImage) != std::string::npos;
    }

    void handle(const testing::HttpRequest& req, testing::ResponseWriter& w) {
        if (metrics_.serve(req, w)) return;
        const auto start = Clock::now();
        int status = 200;
        if (failing()) {
            if (opts_.badLatencyMs > 0) std::this_thread::sleep_for(opts_.badLatencyMs * 1ms);
            // Deterministic share of failures: request n fails when floor(n*r) advances.
            const uint64_t n = ++served_;
            const auto before =
                static_cast<uint64_t>(static_cast<double>(n - 1) * opts_.badErrorRate);
            const auto after = static_cast<uint64_t>(static_cast<double>(n) * opts_.badErrorRate);
            if (after > before) status = 500;
        }
        w.respond(status, {{"Content-Type", "text/plain"}},
                  pod_ + " (" + image() + "): " + (status == 200 ? "ok" : "internal error") + "\n");
        metrics_.record(status, Clock::now() - start);
    }

    std::string deployment_;
    std::string pod_;
    const Options& opts_;
    mutable std::mutex mu_;
    std::string image_;
    std::atomic<uint64_t> served_{0};
    testing::HttpMetrics metrics_;
    std::unique_ptr<testing::HttpServer> server_;
};

std::string quoted(const std::string& s) {
    return "\"" + s + "\"";
}

void writePrometheusConfig(const std::string& path, const Options& opts,
                           const std::vector<const Backend*>& backends) {
    std::ofstream out(path);
    out << "# Written by sluice-demo-traffic: the demo's two backends, labelled as Kubernetes\n"
           "# service discovery relabelling would label their pods.\n"
           "global:\n"
           "  scrape_interval: 1s\n"
           "  scrape_timeout: 1s\n"
           "  evaluation_interval: 1s\n"
           "scrape_configs:\n"
           "  - job_name: "
        << quoted(opts.target)
        << "\n"
           "    metrics_path: /metrics\n"
           "    static_configs:\n";
    for (const Backend* b : backends) {
        out << "      - targets: [" << quoted(b->address()) << "]\n"
            << "        labels:\n"
            << "          namespace: " << quoted(opts.ns) << "\n"
            << "          pod: " << quoted(b->pod()) << "\n";
    }
    if (!out) throw std::runtime_error("cannot write " + path);
}

// What the cluster says right now: the canary weight and each Deployment's image.
class ClusterView {
  public:
    ClusterView(kube::RestClient& client, const Options& opts) : client_(client), opts_(opts) {}

    int canaryWeight() {
        try {
            kube::Object ing =
                client_.get({"networking.k8s.io", "v1", "Ingress"}, opts_.ns, opts_.ingress);
            const auto& ann = ing["metadata"].value("annotations", nlohmann::json::object());
            if (ann.value("nginx.ingress.kubernetes.io/canary", "") != "true") return 0;
            int w = std::stoi(ann.value("nginx.ingress.kubernetes.io/canary-weight", "0"));
            return std::clamp(w, 0, 100);
        } catch (const kube::ApiError& e) {
            if (!e.isNotFound()) std::cerr << "traffic: reading the Ingress: " << e.what() << "\n";
            return 0;
        } catch (const std::exception& e) {
            std::cerr << "traffic: reading the Ingress: " << e.what() << "\n";
            return 0;
        }
    }

    std::string image(const std::string& deployment) {
        try {
            kube::Object d = client_.get({"apps", "v1", "Deployment"}, opts_.ns, deployment);
            const auto& containers = d["spec"]["template"]["spec"]["containers"];
            if (containers.is_array() && !containers.empty())
                return containers[0].value("image", "");
        } catch (const std::exception&) {
        }
        return "";
    }

  private:
    kube::RestClient& client_;
    const Options& opts_;
};

int run(const Options& opts) {
    kube::ClusterConfig cfg = kube::loadKubeconfig(opts.kubeconfig);
    cfg.qps = 0;
    kube::RestClient client(cfg);
    ClusterView cluster(client, opts);

    // Pod names as a ReplicaSet would make them; the demo's MetricTemplate tells the canary's
    // pods (<target>-<hash>-<id>) from the primary's (<target>-primary-<hash>-<id>).
    Backend primary(opts.target + "-primary", opts.target + "-primary-6c7d8e9f0b-h4m9n",
                    opts.primaryPort, opts);
    Backend canary(opts.target, opts.target + "-5d8f7c9b6d-q7x2k", opts.canaryPort, opts);
    std::cout << "primary backend http://" << primary.address() << " (pod " << primary.pod()
              << ", image of Deployment " << primary.deployment() << ")\n"
              << "canary backend  http://" << canary.address() << " (pod " << canary.pod()
              << ", image of Deployment " << canary.deployment() << ")" << std::endl;
    if (!opts.prometheusConfig.empty()) {
        writePrometheusConfig(opts.prometheusConfig, opts, {&primary, &canary});
        std::cout << "wrote " << opts.prometheusConfig << std::endl;
    }

    // The cluster is polled on its own thread, so a slow API answer does not stall traffic.
    std::atomic<int> weight{0};
    std::atomic<bool> done{false};
    std::thread poller([&] {
        while (!done) {
            weight = cluster.canaryWeight();
            primary.setImage(cluster.image(primary.deployment()));
            canary.setImage(cluster.image(canary.deployment()));
            for (int i = 0; i < 5 && !done; ++i) std::this_thread::sleep_for(100ms);
        }
    });

    const auto end = Clock::now() + std::chrono::seconds(opts.durationSeconds);
    const auto period = std::chrono::duration_cast<Clock::duration>(1s) / std::max(opts.rps, 1);
    auto next = Clock::now();
    auto nextReport = Clock::now() + 5s;
    uint64_t sent = 0, toCanary = 0, failed = 0, lastSent = 0, lastCanary = 0, lastFailed = 0;
    while (!gStop && Clock::now() < end) {
        // Request n goes to the canary when floor(n * w / 100) advances: exactly w % of them.
        const int w = weight;
        ++sent;
        const bool canaryTurn = (sent * w) / 100 > ((sent - 1) * w) / 100;
        Backend& to = canaryTurn ? canary : primary;
        if (canaryTurn) ++toCanary;
        auto r = testing::localHttpGet(to.port(), "/", 5s);
        if (!r || r->status >= 500) ++failed;

        if (Clock::now() >= nextReport) {
            std::cout << "traffic: weight " << w << "%, last 5s: " << (sent - lastSent)
                      << " requests, " << (toCanary - lastCanary) << " to the canary ("
                      << canary.image() << "), " << (failed - lastFailed) << " failed" << std::endl;
            lastSent = sent;
            lastCanary = toCanary;
            lastFailed = failed;
            nextReport += 5s;
        }
        next += period;
        const auto now = Clock::now();
        if (next > now)
            std::this_thread::sleep_until(next);
        else if (now - next > 1s)
            next = now;  // fell behind (slow answers): carry on at the rate, no burst
    }
    done = true;
    poller.join();
    std::cout << "traffic: stopped after " << sent << " requests (" << toCanary
              << " to the canary, " << failed << " failed)" << std::endl;
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options opts;
    if (const char* kc = std::getenv("KUBECONFIG")) opts.kubeconfig = kc;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
                std::exit(2);
            }
            return argv[++i];
        };
        try {
            if (a == "--kubeconfig") {
                opts.kubeconfig = value();
            } else if (a == "--namespace") {
                opts.ns = value();
            } else if (a == "--target") {
                opts.target = value();
            } else if (a == "--ingress") {
                opts.ingress = value();
            } else if (a == "--bad-image") {
                opts.badImage = value();
            } else if (a == "--bad-error-rate") {
                opts.badErrorRate = std::clamp(std::stod(value()), 0.0, 1.0);
            } else if (a == "--bad-latency-ms") {
                opts.badLatencyMs = std::stoi(value());
            } else if (a == "--rps") {
                opts.rps = std::clamp(std::stoi(value()), 1, 200);
            } else if (a == "--duration") {
                opts.durationSeconds = std::stoi(value());
            } else if (a == "--primary-port") {
                opts.primaryPort = std::stoi(value());
            } else if (a == "--canary-port") {
                opts.canaryPort = std::stoi(value());
            } else if (a == "--prometheus-config") {
                opts.prometheusConfig = value();
            } else if (a == "-h" || a == "--help") {
                usage();
                return 0;
            } else {
                usage();
                return 2;
            }
        } catch (const std::logic_error&) {
            std::cerr << "sluice-demo-traffic: bad value for " << a << "\n";
            return 2;
        }
    }
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    try {
        return run(opts);
    } catch (const std::exception& e) {
        std::cerr << "sluice-demo-traffic: " << e.what() << "\n";
        return 1;
    }
}
