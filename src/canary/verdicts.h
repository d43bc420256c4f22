#pragma once
// The engine's pure judgements of check results (engine.cpp), apart for unit tests.
#include <map>
#include <string>
#include <vector>

#include "sluice/canary/engine.h"

namespace sluice::canary::detail {

// An analysis iteration's metrics against their threshold ranges.
struct MetricVerdicts {
    // Outside the range: "name 97.5 < 99", "name 700 > 500" (integral values without a
    // fraction, others with 6 significant digits).
    std::vector<std::string> failures;
    // No value: "name: query error|no data|value is NaN (reason)"; neither passes nor fails.
    std::vector<std::string> missing;
};
// Every metric must have a result in `results` (the engine asks for them all at once).
MetricVerdicts judgeMetrics(const std::vector<MetricSpec>& metrics,
                            const std::map<std::string, MetricResult>& results);

}  // namespace sluice::canary::detail
