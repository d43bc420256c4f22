#pragma once
// Request metrics of a test HTTP backend in the Prometheus text format, named as apps
// instrumented with the usual client libraries export them (Flagger's "kubernetes" provider):
//   http_requests_total{status="<code>"}          counter
//   http_request_duration_seconds_bucket{le=...}  histogram (+ _sum, _count)
// The backend records each request it serves (or the test records made-up ones) and serves
// GET /metrics through serve().
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::testing {

struct HttpRequest;
class ResponseWriter;
class HttpServer;

class HttpMetrics {
  public:
    // Upper bounds in seconds, ascending; +Inf is implicit. Defaults to the Prometheus client
    // libraries' default buckets (5 ms .. 10 s).
    explicit HttpMetrics(std::vector<double> bucketsSeconds = defaultBuckets());
    static std::vector<double> defaultBuckets();

    void record(int status, std::chrono::duration<double> latency, int count = 1);
    // Text exposition format 0.0.4; series exist from construction (zero counts) so rate()
    // sees the counters start at zero.
    std::string exposition() const;
    // Answers GET /metrics and returns true; false for any other request.
    bool serve(const HttpRequest& request, ResponseWriter& writer) const;

    uint64_t requests() const;
    uint64_t requests(int status) const;

  private:
    mutable std::mutex mu_;
    std::vector<double> bounds_;
    std::vector<uint64_t> bucketCounts_;  // per bound, not cumulative; last = +Inf
    std::map<int, uint64_t> byStatus_;
    double sumSeconds_ = 0;
    uint64_t count_ = 0;
};

// A pod's metrics endpoint for PrometheusServer to scrape: a test HTTP server on loopback that
// serves `metrics` at /metrics (404 for anything else).
class MetricsExporter {
  public:
    MetricsExporter();
    ~MetricsExporter();
    MetricsExporter(const MetricsExporter&) = delete;
    MetricsExporter& operator=(const MetricsExporter&) = delete;

    std::string address() const;  // "127.0.0.1:PORT", as a ScrapeTarget names it

    HttpMetrics metrics;

  private:
    std::unique_ptr<HttpServer> server_;
};

// Simulated traffic: calls tick() every `period` on a thread of its own until destroyed, so a
// test that leaves early on a failed assertion still stops and joins it.
class TrafficLoop {
  public:
    TrafficLoop(std::function<void()> tick, std::chrono::milliseconds period);
    ~TrafficLoop();
    TrafficLoop(const TrafficLoop&) = delete;
    TrafficLoop& operator=(const TrafficLoop&) = delete;

  private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace sluice::testing
