#include "sluice/metricprovider/provider.h"

namespace sluice::metricprovider {

void ScriptedMetricProvider::whenQueryContains(const std::string& needle,
                                               canaryengine::MetricResult result) {
    std::lock_guard lock(mu_);
    for (auto& rule : rules_) {
        if (rule.needle == needle) {
            rule.result = std::move(result);
            return;
        }
    }
    rules_.push_back({needle, std::move(result)});
}

void ScriptedMetricProvider::setDefault(canaryengine::MetricResult result) {
    std::lock_guard lock(mu_);
    default_ = std::move(result);
}

void ScriptedMetricProvider::clearRules() {
    std::lock_guard lock(mu_);
    rules_.clear();
}

std::vector<std::string> ScriptedMetricProvider::queries() const {
    std::lock_guard lock(mu_);
    return queries_;
}

canaryengine::MetricResult ScriptedMetricProvider::query(const std::string& promql) {
    std::lock_guard lock(mu_);
    queries_.push_back(promql);
    for (const auto& rule : rules_)
        if (promql.find(rule.needle) != std::string::npos) return rule.result;
    if (default_) return *default_;
    return canaryengine::MetricResult::queryError("no scripted result for query: " + promql);
}

}  // namespace sluice::metricprovider
