#pragma once
// Prometheus metrics for GET /metrics: counter, gauge and histogram families with labels, kept
// by prometheus-cpp (its core library and text serializer; Sluice's own HTTP server serves the
// page). Thread-safe. Pure: no I/O.
//
// prometheus-cpp 1.0 writes labels sorted by name, histogram _count and _sum before the buckets,
// NaN as "Nan", and values with 16 significant digits: a double that needs 17 to read back
// exactly (0.1 + 0.2) reads back one ulp off. Integers (counts) are exact up to 2^53.
//
// Families are created once, at start-up, and then updated by value:
//   auto& reconciles = registry.counter("sluice_reconcile_total", "Reconciles by result.",
//                                       {"controller", "result"});
//   reconciles.inc({"application", "success"});
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
struct MetricFamily;
template <typename T>
class Family;
}  // namespace prometheus

namespace sluice::telemetry {

using LabelValues = std::vector<std::string>;

// Label values are given in the order of the family's label names. A call with the wrong
// number of values throws std::invalid_argument (a programming error, found by any test).
class Family {
  public:
    Family(std::string name, std::string help, std::vector<std::string> labelNames);
    virtual ~Family() = default;
    const std::string& name() const { return name_; }
    // The family as it shows before its first series: "# HELP" and "# TYPE", and a zero
    // sample if it has no labels (as client libraries show such a family).
    virtual ::prometheus::MetricFamily empty() const = 0;

  protected:
    void checkArity(const LabelValues& values) const;
    // prometheus-cpp's label set of `values` (label name -> value).
    std::map<std::string, std::string> labelSet(const LabelValues& values) const;

    std::string name_;
    std::string help_;
    std::vector<std::string> labelNames_;
    // Guards the series maps below, and each update, so a series is not removed while in use.
    mutable std::mutex mu_;
};

class CounterFamily final : public Family {
  public:
    CounterFamily(::prometheus::Registry& registry, std::string name, std::string help,
                  std::vector<std::string> labelNames);
    // Adds `by` (must be >= 0: counters only go up).
    void inc(const LabelValues& labels = {}, double by = 1);
    double value(const LabelValues& labels = {}) const;
    ::prometheus::MetricFamily empty() const override;

  private:
    ::prometheus::Family<::prometheus::Counter>& family_;
    std::map<LabelValues, ::prometheus::Counter*> series_;
};

class GaugeFamily final : public Family {
  public:
    GaugeFamily(::prometheus::Registry& registry, std::string name, std::string help,
                std::vector<std::string> labelNames);
    void set(const LabelValues& labels, double value);
    void set(double value) { set({}, value); }
    void add(const LabelValues& labels, double by);
    // Drops one series (an Application that was deleted must not linger in /metrics).
    void remove(const LabelValues& labels);
    // Drops every series whose first label values equal `prefix`.
    void removeMatching(const LabelValues& prefix);
    void clear();
    double value(const LabelValues& labels = {}) const;
    bool has(const LabelValues& labels) const;
    ::prometheus::MetricFamily empty() const override;

  private:
    ::prometheus::Gauge& series(const LabelValues& labels);
    ::prometheus::Family<::prometheus::Gauge>& family_;
    std::map<LabelValues, ::prometheus::Gauge*> series_;
};

class HistogramFamily final : public Family {
  public:
    // `buckets`: upper bounds, ascending; +Inf is implicit.
    HistogramFamily(::prometheus::Registry& registry, std::string name, std::string help,
                    std::vector<std::string> labelNames, std::vector<double> buckets);
    void observe(const LabelValues& labels, double value);
    void observe(double value) { observe({}, value); }
    uint64_t count(const LabelValues& labels = {}) const;
    double sum(const LabelValues& labels = {}) const;
    ::prometheus::MetricFamily empty() const override;

  private:
    std::vector<double> bounds_;
    ::prometheus::Family<::prometheus::Histogram>& family_;
    std::map<LabelValues, ::prometheus::Histogram*> series_;
};

// Prometheus client libraries' default buckets (5 ms .. 10 s), in seconds.
std::vector<double> defaultBuckets();
// `count` buckets from `start`, each `factor` times the previous.
std::vector<double> exponentialBuckets(double start, double factor, int count);

class Registry {
  public:
    Registry();
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Each name may be registered once; a second registration throws std::invalid_argument.
    // Names and label names must match Prometheus' [a-zA-Z_:][a-zA-Z0-9_:]* (label names
    // without ':', not starting with "__").
    CounterFamily& counter(const std::string& name, const std::string& help,
                           std::vector<std::string> labelNames = {});
    GaugeFamily& gauge(const std::string& name, const std::string& help,
                       std::vector<std::string> labelNames = {});
    HistogramFamily& histogram(const std::string& name, const std::string& help,
                               std::vector<std::string> labelNames = {},
                               std::vector<double> buckets = defaultBuckets());

    // Called, in order, before every exposition: gauges whose value is read from elsewhere
    // (work-queue depth, per-Application status) are refreshed here.
    void addCollector(std::function<void()> collector);

    // The whole page in the text format (version 0.0.4), families in registration order.
    std::string exposition() const;

  private:
    template <typename F, typename... Args>
    F& add(Args&&... args);
    mutable std::mutex mu_;
    std::unique_ptr<::prometheus::Registry> registry_;
    std::vector<std::unique_ptr<Family>> families_;
    std::vector<std::function<void()>> collectors_;
};

// The Content-Type of exposition().
inline constexpr const char* kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace sluice::telemetry
