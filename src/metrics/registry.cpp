#include "sluice/metrics/registry.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace sluice::metrics {

namespace {

bool validName(const std::string& name, bool allowColon) {
    if (name.empty()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (allowColon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

// Label values escape backslash, double quote and newline; HELP text backslash and newline.
std::string escape(const std::string& text, bool quotes) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (quotes && c == '"')
            out += "\\\"";
        else
            out += c;
    }
    return out;
}

}  // namespace

std::string formatValue(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    if (value == std::floor(value) && std::fabs(value) < 1e15) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.0f", value);
        return buf;
    }
    // The shortest text that reads back as the same double (0.1, not 0.10000000000000001),
    // as Prometheus' own client libraries write it.
    char buf[32];
    for (int precision = 1; precision <= 17; ++precision) {
        std::snprintf(buf, sizeof buf, "%.*g", precision, value);
        if (std::strtod(buf, nullptr) == value) break;
    }
    return buf;
}

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
    : name_(std::move(name)), help_(std::move(help)), labelNames_(std::move(labelNames)) {
    if (!validName(name_, true)) throw std::invalid_argument("invalid metric name: " + name_);
    for (const auto& l : labelNames_)
        if (!validName(l, false) || l.rfind("__", 0) == 0)
            throw std::invalid_argument("invalid label name '" + l + "' of " + name_);
}

void Family::checkArity(const LabelValues& values) const {
    if (values.size() != labelNames_.size())
        throw std::invalid_argument(name_ + ": " + std::to_string(labelNames_.size()) +
                                    " label values expected, got " + std::to_string(values.size()));
}

std::string Family::labelText(const LabelValues& values, const std::string& extra) const {
    if (values.empty() && extra.empty()) return "";
    std::string out = "{";
    for (size_t i = 0; i < values.size(); ++i) {
        if (i) out += ',';
        out += labelNames_[i];
        out += "=\"";
        out += escape(values[i], true);
        out += '"';
    }
    if (!extra.empty()) {
        if (!values.empty()) out += ',';
        out += extra;
    }
    out += '}';
    return out;
}

void Family::writeHeader(std::string& out, const char* type) const {
    out += "# HELP ";
    out += name_;
    out += ' ';
    out += escape(help_, false);
    out += "\n# TYPE ";
    out += name_;
    out += ' ';
    out += type;
    out += '\n';
}

void CounterFamily::inc(const LabelValues& labels, double by) {
    checkArity(labels);
    if (by < 0) throw std::invalid_argument(name_ + ": a counter cannot decrease");
    std::lock_guard lock(mu_);
    values_[labels] += by;
}

double CounterFamily::value(const LabelValues& labels) const {
    std::lock_guard lock(mu_);
    auto it = values_.find(labels);
    return it == values_.end() ? 0 : it->second;
}

void CounterFamily::write(std::string& out) const {
    writeHeader(out, "counter");
    std::lock_guard lock(mu_);
    // A family without labels shows 0 before its first increment, as client libraries do.
    if (values_.empty() && labelNames_.empty()) out += name_ + " 0\n";
    for (const auto& [labels, v] : values_)
        out += name_ + labelText(labels) + ' ' + formatValue(v) + '\n';
}

void GaugeFamily::set(const LabelValues& labels, double value) {
    checkArity(labels);
    std::lock_guard lock(mu_);
    values_[labels] = value;
}

void GaugeFamily::add(const LabelValues& labels, double by) {
    checkArity(labels);
    std::lock_guard lock(mu_);
    values_[labels] += by;
}

void GaugeFamily::remove(const LabelValues& labels) {
    std::lock_guard lock(mu_);
    values_.erase(labels);
}

void GaugeFamily::removeMatching(const LabelValues& prefix) {
    std::lock_guard lock(mu_);
    for (auto it = values_.begin(); it != values_.end();) {
        bool match = prefix.size() <= it->first.size() &&
                     std::equal(prefix.begin(), prefix.end(), it->first.begin());
        it = match ? values_.erase(it) : std::next(it);
    }
}

void GaugeFamily::clear() {
    std::lock_guard lock(mu_);
    values_.clear();
}

double GaugeFamily::value(const LabelValues& labels) const {
    std::lock_guard lock(mu_);
    auto it = values_.find(labels);
    return it == values_.end() ? 0 : it->second;
}

bool GaugeFamily::has(const LabelValues& labels) const {
    std::lock_guard lock(mu_);
    return values_.count(labels) > 0;
}

void GaugeFamily::write(std::string& out) const {
    writeHeader(out, "gauge");
    std::lock_guard lock(mu_);
    if (values_.empty() && labelNames_.empty()) out += name_ + " 0\n";
    for (const auto& [labels, v] : values_)
        out += name_ + labelText(labels) + ' ' + formatValue(v) + '\n';
}

HistogramFamily::HistogramFamily(std::string name, std::string help,
                                 std::vector<std::string> labelNames, std::vector<double> buckets)
    : Family(std::move(name), std::move(help), std::move(labelNames)), bounds_(std::move(buckets)) {
    for (const auto& l : labelNames_)
        if (l == "le") throw std::invalid_argument(name_ + ": 'le' is reserved in histograms");
    for (size_t i = 1; i < bounds_.size(); ++i)
        if (!(bounds_[i - 1] < bounds_[i]))
            throw std::invalid_argument(name_ + ": buckets must be strictly ascending");
}

void HistogramFamily::observe(const LabelValues& labels, double value) {
    checkArity(labels);
    std::lock_guard lock(mu_);
    auto& s = series_[labels];
    if (s.buckets.empty()) s.buckets.assign(bounds_.size() + 1, 0);
    size_t i = 0;
    while (i < bounds_.size() && value > bounds_[i]) ++i;
    ++s.buckets[i];
    s.sum += value;
    ++s.count;
}

uint64_t HistogramFamily::count(const LabelValues& labels) const {
    std::lock_guard lock(mu_);
    auto it = series_.find(labels);
    return it == series_.end() ? 0 : it->second.count;
}

double HistogramFamily::sum(const LabelValues& labels) const {
    std::lock_guard lock(mu_);
    auto it = series_.find(labels);
    return it == series_.end() ? 0 : it->second.sum;
}

void HistogramFamily::write(std::string& out) const {
    writeHeader(out, "histogram");
    std::lock_guard lock(mu_);
    auto writeSeries = [&](const LabelValues& labels, const Series* s) {
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= bounds_.size(); ++i) {
            if (s) cumulative += s->buckets[i];
            std::string le = i < bounds_.size() ? formatValue(bounds_[i]) : "+Inf";
            out += name_ + "_bucket" + labelText(labels, "le=\"" + le + "\"") + ' ' +
                   std::to_string(cumulative) + '\n';
        }
        out += name_ + "_sum" + labelText(labels) + ' ' + formatValue(s ? s->sum : 0) + '\n';
        out += name_ + "_count" + labelText(labels) + ' ' + std::to_string(s ? s->count : 0) + '\n';
    };
    if (series_.empty() && labelNames_.empty()) writeSeries({}, nullptr);
    for (const auto& [labels, s] : series_) writeSeries(labels, &s);
}

void Registry::checkNew(const std::string& name) const {
    for (const auto& f : families_)
        if (f->name() == name) throw std::invalid_argument("metric registered twice: " + name);
}

CounterFamily& Registry::counter(const std::string& name, const std::string& help,
                                 std::vector<std::string> labelNames) {
    std::lock_guard lock(mu_);
    checkNew(name);
    auto f = std::make_unique<CounterFamily>(name, help, std::move(labelNames));
    auto& ref = *f;
    families_.push_back(std::move(f));
    return ref;
}

GaugeFamily& Registry::gauge(const std::string& name, const std::string& help,
                             std::vector<std::string> labelNames) {
    std::lock_guard lock(mu_);
    checkNew(name);
    auto f = std::make_unique<GaugeFamily>(name, help, std::move(labelNames));
    auto& ref = *f;
    families_.push_back(std::move(f));
    return ref;
}

HistogramFamily& Registry::histogram(const std::string& name, const std::string& help,
                                     std::vector<std::string> labelNames,
                                     std::vector<double> buckets) {
    std::lock_guard lock(mu_);
    checkNew(name);
    auto f =
        std::make_unique<HistogramFamily>(name, help, std::move(labelNames), std::move(buckets));
    auto& ref = *f;
    families_.push_back(std::move(f));
    return ref;
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
    std::string out;
    std::lock_guard lock(mu_);
    for (const auto& f : families_) f->write(out);
    return out;
}

}  // namespace sluice::metrics
