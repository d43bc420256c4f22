#include "sluice/telemetry/registry.h"

#include <prometheus/check_names.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <stdexcept>

namespace sluice::telemetry {

namespace {

// prometheus-cpp 1.0 writes HELP text as given; the text format escapes backslash and newline.
std::string escapeHelp(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

// The series of `labels`, added to `family` (with label set `labelSet()`) on first use. The
// caller holds the family's lock.
template <typename T, typename LabelSet, typename... Args>
T& seriesOf(std::map<LabelValues, T*>& series, ::prometheus::Family<T>& family,
            const LabelValues& labels, const LabelSet& labelSet, Args&&... args) {
    auto it = series.find(labels);
    if (it == series.end())
        it = series.emplace(labels, &family.Add(labelSet(), std::forward<Args>(args)...)).first;
    return *it->second;
}

template <typename T>
const T* find(const std::map<LabelValues, T*>& series, const LabelValues& labels) {
    auto it = series.find(labels);
    return it == series.end() ? nullptr : it->second;
}

::prometheus::MetricFamily emptyFamily(const std::string& name, const std::string& help,
                                       ::prometheus::MetricType type, bool unlabelled,
                                       const ::prometheus::ClientMetric& zero) {
    ::prometheus::MetricFamily out{name, help, type, {}};
    if (unlabelled) out.metric.push_back(zero);
    return out;
}

std::vector<double> checkedBuckets(const std::string& name,
                                   const std::vector<std::string>& labelNames,
                                   std::vector<double> buckets) {
    for (const auto& l : labelNames)
        if (l == "le") throw std::invalid_argument(name + ": 'le' is reserved in histograms");
    for (size_t i = 1; i < buckets.size(); ++i)
        if (!(buckets[i - 1] < buckets[i]))
            throw std::invalid_argument(name + ": buckets must be strictly ascending");
    return buckets;
}

}  // namespace

std::vector<double> defaultBuckets() {
    return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> exponentialBuckets(double start, double factor, int count) {
    if (start <= 0 || factor <= 1 || count < 1)
        throw std::invalid_argument("exponentialBuckets: need start > 0, factor > 1, count >= 1");
    std::vector<double> out;
    for (int i = 0; i < count; ++i, start *= factor) out.push_back(start);
    return out;
}

Family::Family(std::string name, std::string help, std::vector<std::string> labelNames)
    : name_(std::move(name)), help_(escapeHelp(help)), labelNames_(std::move(labelNames)) {
    // prometheus-cpp checks the metric name when the family registers, label names only when
    // the first series is added: check them now.
    for (const auto& l : labelNames_)
        if (!::prometheus::CheckLabelName(l))
            throw std::invalid_argument("invalid label name '" + l + "' of " + name_);
}

void Family::checkArity(const LabelValues& values) const {
    if (values.size() != labelNames_.size())
        throw std::invalid_argument(name_ + ": " + std::to_string(labelNames_.size()) +
                                    " label values expected, got " + std::to_string(values.size()));
}

std::map<std::string, std::string> Family::labelSet(const LabelValues& values) const {
    std::map<std::string, std::string> out;
    for (size_t i = 0; i < values.size(); ++i) out.emplace(labelNames_[i], values[i]);
    return out;
}

CounterFamily::CounterFamily(::prometheus::Registry& registry, std::string name, std::string help,
                             std::vector<std::string> labelNames)
    : Family(std::move(name), std::move(help), std::move(labelNames)),
      family_(::prometheus::BuildCounter().Name(name_).Help(help_).Register(registry)) {}

void CounterFamily::inc(const LabelValues& labels, double by) {
    checkArity(labels);
    if (by < 0) throw std::invalid_argument(name_ + ": a counter cannot decrease");
    std::lock_guard lock(mu_);
    seriesOf(series_, family_, labels, [&] { return labelSet(labels); }).Increment(by);
}

double CounterFamily::value(const LabelValues& labels) const {
    std::lock_guard lock(mu_);
    auto* s = find(series_, labels);
    return s ? s->Value() : 0;
}

::prometheus::MetricFamily CounterFamily::empty() const {
    return emptyFamily(name_, help_, ::prometheus::MetricType::Counter, labelNames_.empty(),
                       ::prometheus::Counter().Collect());
}

GaugeFamily::GaugeFamily(::prometheus::Registry& registry, std::string name, std::string help,
                         std::vector<std::string> labelNames)
    : Family(std::move(name), std::move(help), std::move(labelNames)),
      family_(::prometheus::BuildGauge().Name(name_).Help(help_).Register(registry)) {}

::prometheus::Gauge& GaugeFamily::series(const LabelValues& labels) {
    checkArity(labels);
    return seriesOf(series_, family_, labels, [&] { return labelSet(labels); });
}

void GaugeFamily::set(const LabelValues& labels, double value) {
    std::lock_guard lock(mu_);
    series(labels).Set(value);
}

void GaugeFamily::add(const LabelValues& labels, double by) {
    std::lock_guard lock(mu_);
    series(labels).Increment(by);
}

void GaugeFamily::remove(const LabelValues& labels) {
    std::lock_guard lock(mu_);
    auto it = series_.find(labels);
    if (it == series_.end()) return;
    family_.Remove(it->second);
    series_.erase(it);
}

void GaugeFamily::removeMatching(const LabelValues& prefix) {
    std::lock_guard lock(mu_);
    for (auto it = series_.begin(); it != series_.end();) {
        bool match = prefix.size() <= it->first.size() &&
                     std::equal(prefix.begin(), prefix.end(), it->first.begin());
        if (match) family_.Remove(it->second);
        it = match ? series_.erase(it) : std::next(it);
    }
}

void GaugeFamily::clear() {
    std::lock_guard lock(mu_);
    for (const auto& [labels, gauge] : series_) family_.Remove(gauge);
    series_.clear();
}

double GaugeFamily::value(const LabelValues& labels) const {
    std::lock_guard lock(mu_);
    auto* s = find(series_, labels);
    return s ? s->Value() : 0;
}

bool GaugeFamily::has(const LabelValues& labels) const {
    std::lock_guard lock(mu_);
    return series_.count(labels) > 0;
}

::prometheus::MetricFamily GaugeFamily::empty() const {
    return emptyFamily(name_, help_, ::prometheus::MetricType::Gauge, labelNames_.empty(),
                       ::prometheus::Gauge().Collect());
}

HistogramFamily::HistogramFamily(::prometheus::Registry& registry, std::string name,
                                 std::string help, std::vector<std::string> labelNames,
                                 std::vector<double> buckets)
    : Family(std::move(name), std::move(help), std::move(labelNames)),
      bounds_(checkedBuckets(name_, labelNames_, std::move(buckets))),
      family_(::prometheus::BuildHistogram().Name(name_).Help(help_).Register(registry)) {}

void HistogramFamily::observe(const LabelValues& labels, double value) {
    checkArity(labels);
    std::lock_guard lock(mu_);
    seriesOf(
        series_, family_, labels, [&] { return labelSet(labels); }, bounds_)
        .Observe(value);
}

uint64_t HistogramFamily::count(const LabelValues& labels) const {
    std::lock_guard lock(mu_);
    auto* s = find(series_, labels);
    return s ? s->Collect().histogram.sample_count : 0;
}

double HistogramFamily::sum(const LabelValues& labels) const {
    std::lock_guard lock(mu_);
    auto* s = find(series_, labels);
    return s ? s->Collect().histogram.sample_sum : 0;
}

::prometheus::MetricFamily HistogramFamily::empty() const {
    return emptyFamily(name_, help_, ::prometheus::MetricType::Histogram, labelNames_.empty(),
                       ::prometheus::Histogram(bounds_).Collect());
}

Registry::Registry()
    : registry_(
          std::make_unique<::prometheus::Registry>(::prometheus::Registry::InsertBehavior::Throw)) {
}

Registry::~Registry() = default;

template <typename F, typename... Args>
F& Registry::add(Args&&... args) {
    std::lock_guard lock(mu_);
    // The prometheus-cpp registry throws std::invalid_argument for a name registered twice.
    auto f = std::make_unique<F>(*registry_, std::forward<Args>(args)...);
    auto& ref = *f;
    families_.push_back(std::move(f));
    return ref;
}

CounterFamily& Registry::counter(const std::string& name, const std::string& help,
                                 std::vector<std::string> labelNames) {
    return add<CounterFamily>(name, help, std::move(labelNames));
}

GaugeFamily& Registry::gauge(const std::string& name, const std::string& help,
                             std::vector<std::string> labelNames) {
    return add<GaugeFamily>(name, help, std::move(labelNames));
}

HistogramFamily& Registry::histogram(const std::string& name, const std::string& help,
                                     std::vector<std::string> labelNames,
                                     std::vector<double> buckets) {
    return add<HistogramFamily>(name, help, std::move(labelNames), std::move(buckets));
}

void Registry::addCollector(std::function<void()> collector) {
    std::lock_guard lock(mu_);
    collectors_.push_back(std::move(collector));
}

std::string Registry::exposition() const {
    std::vector<std::function<void()>> collectors;
    {
        std::lock_guard lock(mu_);
        collectors = collectors_;
    }
    // Collectors update families, which take their own locks: run them outside ours.
    for (const auto& c : collectors) c();
    // prometheus-cpp leaves out families without series and groups the rest by type: put them
    // in registration order, with "# HELP" and "# TYPE" also for those without series.
    auto collected = registry_->Collect();
    std::vector<::prometheus::MetricFamily> page;
    std::lock_guard lock(mu_);
    page.reserve(families_.size());
    for (const auto& f : families_) {
        auto it = std::find_if(collected.begin(), collected.end(),
                               [&](const auto& c) { return c.name == f->name(); });
        page.push_back(it != collected.end() ? std::move(*it) : f->empty());
    }
    return ::prometheus::TextSerializer().Serialize(page);
}

}  // namespace sluice::telemetry
