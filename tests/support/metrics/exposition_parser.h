#pragma once
// A strict reader of the Prometheus text exposition format (0.0.4) for tests: every sample line
// must belong to a family announced by "# HELP" and "# TYPE" lines, label values must be
// properly quoted and escaped, and values must be numbers. Throws std::runtime_error naming the
// line otherwise.
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::testing {

struct MetricSample {
    std::string name;  // e.g. "sluice_reconcile_duration_seconds_bucket"
    std::map<std::string, std::string> labels;
    double value = 0;
};

struct MetricFamilyText {
    std::string name;
    std::string type;  // counter, gauge, histogram, summary, untyped
    std::string help;
};

struct ParsedExposition {
    std::map<std::string, MetricFamilyText> families;
    std::vector<MetricSample> samples;

    // The one sample with this name whose labels include `labels`; nullopt if none, throws if
    // several match.
    std::optional<double> value(const std::string& name,
                                const std::map<std::string, std::string>& labels = {}) const;
    // Every sample of this name whose labels include `labels`.
    std::vector<MetricSample> all(const std::string& name,
                                  const std::map<std::string, std::string>& labels = {}) const;
};

ParsedExposition parseExposition(const std::string& text);

}  // namespace sluice::testing
