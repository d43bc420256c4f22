// The engine's pure judgements: metric results against their threshold ranges, and which
// manual request a round carries out.
#include "verdicts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

namespace sluice::canaryengine::detail {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

MetricSpec metric(const std::string& name, std::optional<double> min, std::optional<double> max) {
    MetricSpec m;
    m.name = name;
    m.thresholdRange.min = min;
    m.thresholdRange.max = max;
    return m;
}

TEST(JudgeMetrics, ValuesInsideTheirRangesPass) {
    MetricVerdicts verdicts =
        judgeMetrics({metric("success", 99, std::nullopt), metric("latency", std::nullopt, 500),
                      metric("band", 1, 2)},
                     {{"success", MetricResult::measured(99)},
                      {"latency", MetricResult::measured(500)},
                      {"band", MetricResult::measured(1.5)}});
    EXPECT_THAT(verdicts.failures, IsEmpty());
    EXPECT_THAT(verdicts.missing, IsEmpty());
}

TEST(JudgeMetrics, ValuesOutsideFailInMetricOrder) {
    MetricVerdicts verdicts = judgeMetrics(
        {metric("success", 99, std::nullopt), metric("latency", std::nullopt, 500)},
        {{"latency", MetricResult::measured(512.25)}, {"success", MetricResult::measured(97)}});
    EXPECT_THAT(verdicts.failures, ElementsAre("success 97 < 99", "latency 512.25 > 500"));
    EXPECT_THAT(verdicts.missing, IsEmpty());
}

TEST(JudgeMetrics, MissingValuesAreNeitherPassNorFailure) {
    MetricVerdicts verdicts =
        judgeMetrics({metric("a", 1, std::nullopt), metric("b", 1, std::nullopt),
                      metric("c", 1, std::nullopt), metric("d", 1, std::nullopt)},
                     {{"a", MetricResult::noData("empty vector")},
                      {"b", MetricResult::queryError("timeout")},
                      {"c", MetricResult::measured(std::nan(""))},
                      {"d", MetricResult::measured(0.5)}});
    EXPECT_THAT(verdicts.missing, ElementsAre("a: no data (empty vector)",
                                              "b: query error (timeout)", "c: value is NaN"));
    EXPECT_THAT(verdicts.failures, ElementsAre("d 0.5 < 1"));
}

ManualRequest request(ManualAction action, const std::string& value) {
    return ManualRequest{action, parseTimestamp(value), value};
}

CanaryStatus inPhase(Phase phase) {
    CanaryStatus status;
    status.phase = phase;
    status.lastTransitionTime = parseTimestamp("2026-01-01T00:00:00Z");
    return status;
}

TEST(TriageRequests, NoRequestsNothingToDo) {
    CanaryStatus status = inPhase(Phase::Progressing);
    RequestTriage triage = triageRequests({}, {status, false, "web", "web-primary"});
    EXPECT_EQ(triage.chosen, nullptr);
    EXPECT_THAT(triage.removed, IsEmpty());
    EXPECT_THAT(triage.refusals, IsEmpty());
}

TEST(TriageRequests, AbortGoesBeforePromoteWhichIsRefused) {
    CanaryStatus status = inPhase(Phase::Progressing);
    std::vector<ManualRequest> requests = {request(ManualAction::Promote, "2026-01-01T00:01:00Z"),
                                           request(ManualAction::Abort, "2026-01-01T00:02:00Z")};
    RequestTriage triage = triageRequests(requests, {status, false, "web", "web-primary"});
    ASSERT_EQ(triage.chosen, &requests[1]);
    EXPECT_THAT(triage.removed, ElementsAre(ManualAction::Abort, ManualAction::Promote));
    EXPECT_THAT(triage.refusals,
                ElementsAre("sluice.io/promote=2026-01-01T00:01:00Z refused: superseded by "
                            "sluice.io/abort=2026-01-01T00:02:00Z"));
}

TEST(TriageRequests, StaleRequestsAreOnlyRemoved) {
    CanaryStatus status = inPhase(Phase::Progressing);
    status.manualPromotionRequested = parseTimestamp("2026-01-01T00:05:00Z");
    std::vector<ManualRequest> requests = {
        request(ManualAction::Abort, "2026-01-01T00:00:00Z"),     // at the transition
        request(ManualAction::Promote, "2026-01-01T00:05:00Z")};  // already being carried out
    RequestTriage triage = triageRequests(requests, {status, false, "web", "web-primary"});
    EXPECT_EQ(triage.chosen, nullptr);
    EXPECT_THAT(triage.removed, ElementsAre(ManualAction::Abort, ManualAction::Promote));
    EXPECT_THAT(triage.refusals, IsEmpty());
}

TEST(TriageRequests, RefusalsSayWhy) {
    auto refusalsOf = [](const CanaryStatus& status, const ManualRequest& r, bool changed) {
        RequestTriage triage = triageRequests({r}, {status, changed, "web", "web-primary"});
        EXPECT_EQ(triage.chosen, nullptr);
        EXPECT_THAT(triage.removed, ElementsAre(r.action));
        return triage.refusals;
    };
    EXPECT_THAT(
        refusalsOf(inPhase(Phase::Progressing), request(ManualAction::Retry, "soon"), false),
        ElementsAre("sluice.io/retry=soon refused: the value is not an RFC 3339 time"));
    EXPECT_THAT(
        refusalsOf(inPhase(Phase::Succeeded),
                   request(ManualAction::Promote, "2026-01-01T00:01:00Z"), false),
        ElementsAre("sluice.io/promote=2026-01-01T00:01:00Z refused: promote applies only in "
                    "phase Progressing, Waiting or WaitingPromotion, not in phase Succeeded"));
    EXPECT_THAT(refusalsOf(inPhase(Phase::Progressing),
                           request(ManualAction::Promote, "2026-01-01T00:01:00Z"), true),
                ElementsAre("sluice.io/promote=2026-01-01T00:01:00Z refused: web changed since "
                            "its analysis started: the new revision is analysed first"));
    CanaryStatus none;
    EXPECT_THAT(refusalsOf(none, request(ManualAction::Abort, "2026-01-01T00:01:00Z"), false),
                ElementsAre("sluice.io/abort=2026-01-01T00:01:00Z refused: abort applies only in "
                            "phase Progressing, Waiting, WaitingPromotion or Promoting, not in "
                            "no phase yet"));
    CanaryStatus kept = inPhase(Phase::Failed);
    kept.targetKeptServing = true;
    EXPECT_THAT(refusalsOf(kept, request(ManualAction::Retry, "2026-01-01T00:01:00Z"), false),
                ElementsAre("sluice.io/retry=2026-01-01T00:01:00Z refused: web is serving in "
                            "place of web-primary, which is not ready"));
}

TEST(TriageRequests, RetryInFailed) {
    CanaryStatus status = inPhase(Phase::Failed);
    std::vector<ManualRequest> requests = {request(ManualAction::Retry, "2026-01-01T00:01:00Z")};
    RequestTriage triage = triageRequests(requests, {status, false, "web", "web-primary"});
    EXPECT_EQ(triage.chosen, &requests[0]);
    EXPECT_THAT(triage.removed, ElementsAre(ManualAction::Retry));
    EXPECT_EQ(requestText(requests[0]), "sluice.io/retry=2026-01-01T00:01:00Z");
}

}  // namespace
}  // namespace sluice::canaryengine::detail
