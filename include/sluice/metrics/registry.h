#pragma once
// A small Prometheus metrics registry: counter, gauge and histogram families with labels, and
// the text exposition format (version 0.0.4) for GET /metrics. Thread-safe. Pure: no I/O.
//
// Families are created once, at start-up, and then updated by value:
//   auto& reconciles = registry.counter("sluice_reconcile_total", "Reconciles by result.",
//                                       {"controller", "result"});
//   reconciles.inc({"application", "success"});
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::metrics {

using LabelValues = std::vector<std::string>;

// Label values are given in the order of the family's label names. A call with the wrong
// number of values throws std::invalid_argument (a programming error, found by any test).
class Family {
  public:
    Family(std::string name, std::string help, std::vector<std::string> labelNames);
    virtual ~Family() = default;
    const std::string& name() const { return name_; }
    // Appends "# HELP", "# TYPE" and every sample line.
    virtual void write(std::string& out) const = 0;

  protected:
    void checkArity(const LabelValues& values) const;
    // `{a="x",b="y"}` (with `extra` appended, e.g. le="0.5"), or "" without labels.
    std::string labelText(const LabelValues& values, const std::string& extra = "") const;
    void writeHeader(std::string& out, const char* type) const;

    std::string name_;
    std::string help_;
    std::vector<std::string> labelNames_;
    mutable std::mutex mu_;
};

class CounterFamily final : public Family {
  public:
    using Family::Family;
    // Adds `by` (must be >= 0: counters only go up).
    void inc(const LabelValues& labels = {}, double by = 1);
    double value(const LabelValues& labels = {}) const;
    void write(std::string& out) const override;

  private:
    std::map<LabelValues, double> values_;
};

class GaugeFamily final : public Family {
  public:
    using Family::Family;
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
    void write(std::string& out) const override;

  private:
    std::map<LabelValues, double> values_;
};

class HistogramFamily final : public Family {
  public:
    // `buckets`: upper bounds, ascending; +Inf is implicit.
    HistogramFamily(std::string name, std::string help, std::vector<std::string> labelNames,
                    std::vector<double> buckets);
    void observe(const LabelValues& labels, double value);
    void observe(double value) { observe({}, value); }
    uint64_t count(const LabelValues& labels = {}) const;
    double sum(const LabelValues& labels = {}) const;
    void write(std::string& out) const override;

  private:
    struct Series {
        std::vector<uint64_t> buckets;  // per bound, not cumulative; last = +Inf
        double sum = 0;
        uint64_t count = 0;
    };
    std::vector<double> bounds_;
    std::map<LabelValues, Series> series_;
};

// Prometheus client libraries' default buckets (5 ms .. 10 s), in seconds.
std::vector<double> defaultBuckets();
// `count` buckets from `start`, each `factor` times the previous.
std::vector<double> exponentialBuckets(double start, double factor, int count);

class Registry {
  public:
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

    // The whole page, families in registration order.
    std::string exposition() const;

  private:
    void checkNew(const std::string& name) const;
    mutable std::mutex mu_;
    std::vector<std::unique_ptr<Family>> families_;
    std::vector<std::function<void()>> collectors_;
};

// The Content-Type of exposition().
inline constexpr const char* kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

// Number formatting as Prometheus reads it: integers without a fraction, "+Inf", "NaN".
std::string formatValue(double value);

}  // namespace sluice::metrics
