// Flagger fields that change what the engine decides: suspend, the ready thresholds, the older
// metric `threshold`, `canaryAnalysis`, and what deleting a Canary with revertOnDeletion asks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/canaryengine/engine.h"

namespace sluice::canaryengine {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using namespace std::chrono_literals;

const Time kNow = *parseTimestamp("2026-03-01T12:00:00Z");

json baseSpec() {
    return json::parse(R"({
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
        "service": {"port": 80},
        "progressDeadlineSeconds": 120,
        "analysis": {"interval": "1m", "threshold": 2, "maxWeight": 50, "stepWeight": 10,
                     "metrics": [{"name": "request-success-rate",
                                  "thresholdRange": {"min": 99}}]}
    })");
}

CanarySpec parsed(const json& raw) {
    SpecParseResult result = parseCanarySpec(raw);
    EXPECT_TRUE(result.ok()) << (result.errors.empty() ? "" : result.errors.front());
    return result.spec;
}

CanarySpec suspended(bool suspend = true) {
    json raw = baseSpec();
    raw["suspend"] = suspend;
    return parsed(raw);
}

WorkloadObservation workload(bool ready, int replicas = 3) {
    return {true, ready, replicas, ready ? replicas : 0};
}

std::vector<std::string> described(const Decision& decision) {
    std::vector<std::string> out;
    for (const Action& a : decision.actions) out.push_back(describe(a));
    return out;
}

// A canary at weight 20 whose next iteration is due, with passing metrics in hand.
CanaryStatus progressingAt20() {
    CanaryStatus status;
    status.phase = Phase::Progressing;
    status.canaryWeight = 20;
    status.lastAppliedSpec = "rev2";
    status.lastPromotedSpec = "rev1";
    status.lastTransitionTime = kNow - 10min;
    status.lastAnalysisTime = kNow - 5min;
    status.preRolloutPassed = true;
    return status;
}

Observation observing(const std::string& hash) {
    Observation o;
    o.targetTemplateHash = hash;
    o.target = workload(true);
    o.primary = workload(true);
    o.metrics["request-success-rate"] = MetricResult::measured(100);
    return o;
}

// --- spec ------------------------------------------------------------------------------------

TEST(FlaggerFieldsSpec, DefaultsAreFlaggers) {
    const CanarySpec spec = parsed(baseSpec());
    EXPECT_FALSE(spec.suspend);
    EXPECT_FALSE(spec.revertOnDeletion);
    EXPECT_EQ(spec.analysis.primaryReadyThreshold, 100);
    EXPECT_EQ(spec.analysis.canaryReadyThreshold, 100);
}

TEST(FlaggerFieldsSpec, ReadsSuspendRevertAndReadyThresholds) {
    json raw = baseSpec();
    raw["suspend"] = true;
    raw["revertOnDeletion"] = true;
    raw["analysis"]["primaryReadyThreshold"] = 50;
    raw["analysis"]["canaryReadyThreshold"] = 0;
    const CanarySpec spec = parsed(raw);
    EXPECT_TRUE(spec.suspend);
    EXPECT_TRUE(spec.revertOnDeletion);
    EXPECT_EQ(spec.analysis.primaryReadyThreshold, 50);
    EXPECT_EQ(spec.analysis.canaryReadyThreshold, 0);
}

TEST(FlaggerFieldsSpec, ReadyThresholdsArePercentages) {
    json raw = baseSpec();
    raw["analysis"]["primaryReadyThreshold"] = 101;
    raw["analysis"]["canaryReadyThreshold"] = -1;
    SpecParseResult result = parseCanarySpec(raw);
    ASSERT_EQ(result.errors.size(), 2u);
    EXPECT_THAT(result.errors[0], HasSubstr("spec.analysis.primaryReadyThreshold"));
    EXPECT_THAT(result.errors[1], HasSubstr("spec.analysis.canaryReadyThreshold"));
}

TEST(FlaggerFieldsSpec, OldThresholdMeansWhatItMeantInFlagger) {
    json raw = baseSpec();
    raw["analysis"]["metrics"] = json::parse(R"json([
        {"name": "request-success-rate", "threshold": 99},
        {"name": "request-duration", "threshold": 500},
        {"name": "errors", "query": "sum(x)", "threshold": 5},
        {"name": "latency", "templateRef": {"name": "t"}, "threshold": 0.5},
        {"name": "both", "query": "sum(y)", "threshold": 1, "thresholdRange": {"min": 3}}
    ])json");
    const CanarySpec spec = parsed(raw);
    const auto& m = spec.analysis.metrics;
    ASSERT_EQ(m.size(), 5u);
    EXPECT_EQ(m[0].thresholdRange.min, 99);  // a minimum success rate
    EXPECT_FALSE(m[0].thresholdRange.max);
    EXPECT_EQ(m[1].thresholdRange.max, 500);  // a maximum duration
    EXPECT_FALSE(m[1].thresholdRange.min);
    EXPECT_EQ(m[2].thresholdRange.max, 5);  // custom queries: a maximum
    EXPECT_EQ(m[3].thresholdRange.max, 0.5);
    EXPECT_EQ(m[4].thresholdRange.min, 3);  // thresholdRange wins
    EXPECT_FALSE(m[4].thresholdRange.max);
}

TEST(FlaggerFieldsSpec, AMetricWithNeitherThresholdIsStillAnError) {
    json raw = baseSpec();
    raw["analysis"]["metrics"] = json::parse(R"([{"name": "request-duration"}])");
    SpecParseResult result = parseCanarySpec(raw);
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_THAT(result.errors[0], HasSubstr("thresholdRange"));
}

TEST(FlaggerFieldsSpec, CanaryAnalysisIsReadAsAnalysis) {
    json raw = baseSpec();
    raw["canaryAnalysis"] = raw["analysis"];
    raw["canaryAnalysis"]["canaryReadyThreshold"] = 60;
    raw["canaryAnalysis"]["metrics"][0] = {{"name", "request-success-rate"}, {"threshold", 95}};
    raw.erase("analysis");
    const CanarySpec spec = parsed(raw);
    EXPECT_EQ(spec.analysis.stepWeight, 10);
    EXPECT_EQ(spec.analysis.canaryReadyThreshold, 60);
    ASSERT_EQ(spec.analysis.metrics.size(), 1u);
    EXPECT_EQ(spec.analysis.metrics[0].thresholdRange.min, 95);
}

// --- ready thresholds ----------------------------------------------------------------------

TEST(ReadyThreshold, AtLeastThatPercentageRoundedUp) {
    EXPECT_EQ(readyReplicasRequired(4, 100), 4);
    EXPECT_EQ(readyReplicasRequired(4, 50), 2);
    EXPECT_EQ(readyReplicasRequired(3, 50), 2);  // 1 of 3 is 33 %, less than asked
    EXPECT_EQ(readyReplicasRequired(10, 99), 10);
    EXPECT_EQ(readyReplicasRequired(10, 91), 10);
    EXPECT_EQ(readyReplicasRequired(10, 90), 9);
    EXPECT_EQ(readyReplicasRequired(5, 0), 0);
    EXPECT_EQ(readyReplicasRequired(0, 100), 0);
    EXPECT_EQ(readyReplicasRequired(4, 150), 4);  // clamped
    EXPECT_EQ(readyReplicasRequired(-1, 50), 0);
}

// --- suspend ---------------------------------------------------------------------------------

TEST(Suspend, ANewRevisionIsNotPickedUp) {
    CanaryStatus status;
    status.phase = Phase::Succeeded;
    status.lastAppliedSpec = status.lastPromotedSpec = "rev1";
    Observation obs = observing("rev2");
    obs.target = workload(false, 0);
    Decision d = step(suspended(), status, obs, kNow);
    EXPECT_EQ(d.status.phase, Phase::Succeeded);
    EXPECT_EQ(d.status.lastAppliedSpec, "rev1");
    ASSERT_EQ(d.actions.size(), 1u);
    EXPECT_THAT(described(d)[0], HasSubstr("EmitEvent(Normal, Suspended"));
    EXPECT_EQ(d.requeueAfter, 60s);
    EXPECT_THAT(d.status.condition(kPromotedCondition)->message, HasSubstr("suspended"));

    // Said once: the next rounds change nothing.
    Decision again = step(suspended(), d.status, obs, kNow + 1min);
    EXPECT_THAT(again.actions, IsEmpty());
    EXPECT_EQ(again.status, d.status);

    // Resumed, the new revision starts.
    Decision resumed = step(suspended(false), again.status, obs, kNow + 2min);
    EXPECT_EQ(resumed.status.phase, Phase::Progressing);
    EXPECT_EQ(resumed.status.lastAppliedSpec, "rev2");
    EXPECT_THAT(described(resumed), Contains(HasSubstr("Resumed")));
    EXPECT_THAT(described(resumed), Contains("ScaleTarget(3)"));
}

TEST(Suspend, ARunningAnalysisHoldsAtItsWeight) {
    Decision d = step(suspended(), progressingAt20(), observing("rev2"), kNow);
    EXPECT_EQ(d.status.phase, Phase::Progressing);
    EXPECT_EQ(d.status.canaryWeight, 20);
    EXPECT_EQ(d.status.failedChecks, 0);
    EXPECT_EQ(d.status.lastAnalysisTime, kNow - 5min);
    for (const std::string& action : described(d)) {
        EXPECT_THAT(action, Not(HasSubstr("SetWeights")));
        EXPECT_THAT(action, Not(HasSubstr("RunMetricChecks")));
    }
    // The same round without suspend advances.
    Decision running = step(suspended(false), progressingAt20(), observing("rev2"), kNow);
    EXPECT_EQ(running.status.canaryWeight, 30);
}

TEST(Suspend, NothingIsInitialised) {
    Observation obs = observing("rev1");
    obs.primary = {};
    Decision d = step(suspended(), CanaryStatus{}, obs, kNow);
    EXPECT_EQ(d.status.phase, Phase::None);
    for (const std::string& action : described(d))
        EXPECT_THAT(action, Not(HasSubstr("InitializePrimary")));
    EXPECT_EQ(d.status.condition(kPromotedCondition)->reason, "Suspended");
}

TEST(Suspend, RequestsWaitForTheResume) {
    Observation obs = observing("rev2");
    obs.requests.push_back({ManualAction::Abort, kNow - 1s, "now"});
    Decision d = step(suspended(), progressingAt20(), obs, kNow);
    EXPECT_THAT(d.removeRequests, IsEmpty());
    EXPECT_EQ(d.status.phase, Phase::Progressing);
}

TEST(Suspend, TimeSpentSuspendedNeverCountsAgainstTheDeadlines) {
    CanaryStatus status = progressingAt20();
    status.targetUnreadySince = kNow - 100s;  // 20 s left of the 120 s deadline
    status.gateWaitingSince[WebhookType::ConfirmTrafficIncrease] = kNow - 100s;
    Observation obs = observing("rev2");
    obs.target = workload(false);
    Decision held = step(suspended(), status, obs, kNow);
    Decision resumed = step(suspended(false), held.status, obs, kNow + 1h);
    EXPECT_EQ(resumed.status.phase, Phase::Progressing);
    EXPECT_EQ(resumed.status.targetUnreadySince, kNow + 1h);
    EXPECT_THAT(resumed.status.gateWaitingSince, IsEmpty());
    // Without the suspension the deadline had passed.
    Decision late = step(suspended(false), status, obs, kNow + 1h);
    EXPECT_EQ(late.status.phase, Phase::Failed);
}

// --- revertOnDeletion ------------------------------------------------------------------------

CanarySpec reverting() {
    json raw = baseSpec();
    raw["revertOnDeletion"] = true;
    return parsed(raw);
}

TEST(RevertOnDeletion, ScalesTheTargetToThePrimaryFirst) {
    RevertStep s = revertStep(reverting(), workload(false, 0), workload(true, 4), kNow, kNow);
    EXPECT_EQ(s.scaleTarget, 4);
    EXPECT_FALSE(s.routeToTarget);
    EXPECT_FALSE(s.removeFinalizer);
    EXPECT_GT(s.requeueAfter, 0s);
    ASSERT_EQ(s.events.size(), 1u);
    EXPECT_EQ(s.events[0].reason, "Reverting");
}

TEST(RevertOnDeletion, WaitsForTheTargetThenRoutesToItAndLetsGo) {
    RevertStep waiting =
        revertStep(reverting(), workload(false, 4), workload(true, 4), kNow, kNow + 30s);
    EXPECT_FALSE(waiting.scaleTarget);
    EXPECT_FALSE(waiting.routeToTarget);
    EXPECT_FALSE(waiting.removeFinalizer);
    EXPECT_THAT(waiting.events, IsEmpty());

    RevertStep done =
        revertStep(reverting(), workload(true, 4), workload(true, 4), kNow, kNow + 40s);
    EXPECT_FALSE(done.scaleTarget);
    EXPECT_TRUE(done.routeToTarget);
    EXPECT_TRUE(done.removeFinalizer);
    ASSERT_EQ(done.events.size(), 1u);
    EXPECT_EQ(done.events[0].reason, "Reverted");
}

TEST(RevertOnDeletion, ATargetThatNeverGetsReadyHoldsTheDeletionWithAWarning) {
    RevertStep s =
        revertStep(reverting(), workload(false, 4), workload(true, 4), kNow, kNow + 121s);
    EXPECT_FALSE(s.removeFinalizer);
    EXPECT_FALSE(s.routeToTarget);
    ASSERT_EQ(s.events.size(), 1u);
    EXPECT_EQ(s.events[0].type, EventType::Warning);
    EXPECT_THAT(s.events[0].message, HasSubstr("app-primary keeps serving"));
    EXPECT_THAT(s.events[0].message, HasSubstr(kRevertFinalizer));
}

TEST(RevertOnDeletion, WithoutAPrimaryTheTargetKeepsItsSizeButServes) {
    RevertStep kept = revertStep(reverting(), workload(true, 2), {}, kNow, kNow);
    EXPECT_FALSE(kept.scaleTarget);
    EXPECT_TRUE(kept.removeFinalizer);
    RevertStep fromZero = revertStep(reverting(), workload(false, 0), {}, kNow, kNow);
    EXPECT_EQ(fromZero.scaleTarget, 1);
}

TEST(RevertOnDeletion, NoTargetNothingToRestore) {
    RevertStep s = revertStep(reverting(), {}, workload(true, 4), kNow, kNow);
    EXPECT_TRUE(s.removeFinalizer);
    EXPECT_FALSE(s.routeToTarget);
    EXPECT_FALSE(s.scaleTarget);
    ASSERT_EQ(s.events.size(), 1u);
    EXPECT_EQ(s.events[0].reason, "RevertSkipped");
}

}  // namespace
}  // namespace sluice::canaryengine
