#pragma once
// Where the Canary controller gets metric values from. The controller and its tests depend on
// this interface only: PrometheusClient (client.h) implements it over HTTP, and
// ScriptedMetricProvider (below) lets tests decide every value.
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sluice/canaryengine/engine.h"

namespace sluice::metricprovider {

class MetricProvider {
  public:
    virtual ~MetricProvider() = default;
    // Runs one instant query. Never throws for query problems: a value, NoData (empty result,
    // NaN, +/-Inf) or QueryError (transport, timeout, HTTP, API or parse error), each with a
    // reason. Nothing is ever reported as a value by default.
    virtual canaryengine::MetricResult query(const std::string& promql) = 0;
};

// Test double: answers each query from rules the test sets. Thread-safe.
class ScriptedMetricProvider : public MetricProvider {
  public:
    // Queries containing `needle` get `result`. Rules are tried in the order first set; setting
    // an existing needle again replaces its result in place.
    void whenQueryContains(const std::string& needle, canaryengine::MetricResult result);
    // Queries no rule matches get this; initially a QueryError naming the query, so an
    // unscripted metric can never pass.
    void setDefault(canaryengine::MetricResult result);
    void clearRules();
    // Every query received, in order.
    std::vector<std::string> queries() const;

    canaryengine::MetricResult query(const std::string& promql) override;

  private:
    struct Rule {
        std::string needle;
        canaryengine::MetricResult result;
    };
    mutable std::mutex mu_;
    std::vector<Rule> rules_;
    std::optional<canaryengine::MetricResult> default_;
    std::vector<std::string> queries_;
};

}  // namespace sluice::metricprovider
