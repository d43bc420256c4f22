#include "prometheus/http_metrics.h"

#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "http/http_server.h"

namespace sluice::testing {
namespace {

// Go's strconv.FormatFloat(v, 'g', -1, 64) is what client libraries print; %.17g reads back
// exactly, which is all Prometheus needs.
std::string number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    return buf;
}

}  // namespace

std::vector<double> HttpMetrics::defaultBuckets() {
    return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

HttpMetrics::HttpMetrics(std::vector<double> bucketsSeconds)
    : bounds_(std::move(bucketsSeconds)), bucketCounts_(bounds_.size() + 1, 0) {
    for (size_t i = 1; i < bounds_.size(); ++i)
        if (!(bounds_[i - 1] < bounds_[i]))
            throw std::invalid_argument("histogram buckets must be ascending");
    // Exported from the start, so the first increments are seen by rate() like any later ones.
    byStatus_[200] = 0;
    byStatus_[500] = 0;
}

void HttpMetrics::record(int status, std::chrono::duration<double> latency, int count) {
    if (count <= 0) return;
    double seconds = latency.count();
    std::lock_guard lock(mu_);
    size_t bucket = 0;
    while (bucket < bounds_.size() && seconds > bounds_[bucket]) ++bucket;
    bucketCounts_[bucket] += static_cast<uint64_t>(count);
    byStatus_[status] += static_cast<uint64_t>(count);
    sumSeconds_ += seconds * count;
    count_ += static_cast<uint64_t>(count);
}

std::string HttpMetrics::exposition() const {
    std::lock_guard lock(mu_);
    std::ostringstream out;
    out << "# HELP http_requests_total Requests served, by HTTP status code.\n"
        << "# TYPE http_requests_total counter\n";
    for (const auto& [status, n] : byStatus_)
        out << "http_requests_total{status=\"" << status << "\"} " << n << "\n";
    out << "# HELP http_request_duration_seconds Request latency.\n"
        << "# TYPE http_request_duration_seconds histogram\n";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < bounds_.size(); ++i) {
        cumulative += bucketCounts_[i];
        out << "http_request_duration_seconds_bucket{le=\"" << number(bounds_[i]) << "\"} "
            << cumulative << "\n";
    }
    cumulative += bucketCounts_.back();
    out << "http_request_duration_seconds_bucket{le=\"+Inf\"} " << cumulative << "\n"
        << "http_request_duration_seconds_sum " << number(sumSeconds_) << "\n"
        << "http_request_duration_seconds_count " << count_ << "\n";
    return out.str();
}

bool HttpMetrics::serve(const HttpRequest& request, ResponseWriter& writer) const {
    if (request.method != "GET" || request.path != "/metrics") return false;
    writer.respond(200, {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}},
                   exposition());
    return true;
}

uint64_t HttpMetrics::requests() const {
    std::lock_guard lock(mu_);
    return count_;
}

uint64_t HttpMetrics::requests(int status) const {
    std::lock_guard lock(mu_);
    auto it = byStatus_.find(status);
    return it == byStatus_.end() ? 0 : it->second;
}

MetricsExporter::MetricsExporter() : server_(std::make_unique<HttpServer>(HttpServerOptions{})) {
    server_->start([this](const HttpRequest& req, ResponseWriter& w) {
        if (!metrics.serve(req, w)) w.respond(404, {}, "not found");
    });
}

// server_ is declared after metrics, so it stops before the metrics its handler reads go.
MetricsExporter::~MetricsExporter() = default;

std::string MetricsExporter::address() const {
    return "127.0.0.1:" + std::to_string(server_->port());
}

TrafficLoop::TrafficLoop(std::function<void()> tick, std::chrono::milliseconds period)
    : thread_([this, tick = std::move(tick), period] {
          while (!stop_) {
              tick();
              std::this_thread::sleep_for(period);
          }
      }) {}

TrafficLoop::~TrafficLoop() {
    stop_ = true;
    thread_.join();
}

}  // namespace sluice::testing
