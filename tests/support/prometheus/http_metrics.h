#pragma once
// Request metrics of a test HTTP backend in the Prometheus text format, named as apps
// instrumented with the usual client libraries export them (Flagger's "kubernetes" provider):
//   http_requests_total{status="<code>"}          counter
//   http_request_duration_seconds_bucket{le=...}  histogram (+ _sum, _count)
// The backend records each request it serves (or the test records made-up ones) and serves
// GET /metrics through serve().
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::testing {

struct HttpRequest;
class ResponseWriter;

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

}  // namespace sluice::testing
