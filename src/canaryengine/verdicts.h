#pragma once
// The engine's pure judgements of check results and manual requests (engine.cpp), apart for
// unit tests.
#include <map>
#include <string>
#include <vector>

#include "sluice/canaryengine/engine.h"

namespace sluice::canaryengine::detail {

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

// What a manual request is judged against.
struct RequestContext {
    const CanaryStatus& status;  // before this round
    bool revisionChanged;        // the target's template differs from status.lastAppliedSpec
    std::string target;          // names for the messages
    std::string primary;
};

// What the manual requests on a Canary come to this round. Each is honoured once: one no
// later (to the second) than the last phase transition, or for promote than the promotion
// already requested, is stale and only removed. Of the others the first by precedence (abort,
// promote, retry) that applies in the phase is chosen; the rest are refused.
struct RequestTriage {
    const ManualRequest* chosen = nullptr;  // to carry out now (an element of the requests)
    std::vector<ManualAction> removed;      // to take off the Canary: stale, refused, chosen
    std::vector<std::string> refusals;      // Warning events: "<annotation>=<value> refused: why"
};
RequestTriage triageRequests(const std::vector<ManualRequest>& requests,
                             const RequestContext& context);

// "sluice.io/promote=<value as written>".
std::string requestText(const ManualRequest& request);

}  // namespace sluice::canaryengine::detail
