#pragma once
// A real Prometheus server for tests: the Debian `prometheus` binary started on 127.0.0.1 with
// a temporary config and TSDB, scraping given targets every second.
//
// Timing (Prometheus 2.42): ready about 0.2 s after start, but the first scrape comes only
// after about 5-6 s (service discovery and the scrape manager apply new targets on a fixed
// 5 s tick), so every target must be known at start; adding one later costs another 5-10 s.
// rate() needs two scrapes, so counters are usable about 2 scrape intervals after that.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::testing {

class ChildProcess;
class TempDir;

struct ScrapeTarget {
    std::string job;      // job_name; targets of one job are grouped
    std::string address;  // "127.0.0.1:PORT"
    // Added to every series of the target, as Kubernetes service discovery relabelling would
    // (e.g. kubernetes_namespace, kubernetes_pod_name, or namespace/pod).
    std::map<std::string, std::string> labels;
    std::string metricsPath = "/metrics";
};

struct PrometheusOptions {
    std::vector<ScrapeTarget> targets;
    std::chrono::milliseconds scrapeInterval{1000};
    std::chrono::milliseconds readyTimeout{30000};
};

// The prometheus binary: $SLUICE_PROMETHEUS if set, else `prometheus` on PATH; "" if missing.
std::string findPrometheusBinary();
// The message a test prints when findPrometheusBinary() is empty.
std::string prometheusMissingMessage();

class PrometheusServer {
  public:
    explicit PrometheusServer(PrometheusOptions options);
    ~PrometheusServer();  // stops and removes the data
    PrometheusServer(const PrometheusServer&) = delete;
    PrometheusServer& operator=(const PrometheusServer&) = delete;

    // Starts and waits until /-/ready answers. Throws std::runtime_error with the reason (binary
    // missing, exited, not ready in time, with its log). A restart after stop() keeps the port
    // and the stored data, so clients and queries carry on.
    void start();
    // SIGTERM, then SIGKILL after 10 s.
    void stop();
    bool running();

    int port() const { return port_; }
    std::string url() const;  // "http://127.0.0.1:PORT"

    // Polls until every target has been scraped successfully (up == 1). False on timeout.
    bool waitForTargetsUp(std::chrono::milliseconds timeout);
    // Polls until the instant query returns a non-empty vector or a scalar. False on timeout.
    bool waitForSeries(const std::string& promql, std::chrono::milliseconds timeout);

    std::string log() const;  // Prometheus' stderr so far

  private:
    std::string config() const;
    PrometheusOptions options_;
    std::unique_ptr<TempDir> dir_;
    std::unique_ptr<ChildProcess> process_;
    int port_ = 0;
    std::string lastLog_;
};

// A blocking HTTP/1.0 GET to 127.0.0.1:port, for polling. nullopt when the connection fails.
struct LocalHttpResponse {
    int status = 0;
    std::string body;
};
std::optional<LocalHttpResponse> localHttpGet(
    int port, const std::string& target,
    std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Percent-encodes a query parameter value.
std::string urlEncode(const std::string& value);

}  // namespace sluice::testing
