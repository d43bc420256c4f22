// A DaemonSet target (spec.targetRef.kind DaemonSet): analysed blue-green or A/B testing only, as
// Flagger; the engine drives it as it does a Deployment, its "replicas" being the nodes its pods
// are scheduled onto (the controller scales it to zero with a node selector no node has).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/canaryengine/engine.h"
#include "sluice/canaryengine/spec.h"

namespace sluice::canaryengine {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

json daemonSetSpec(const json& analysis) {
    json spec = {
        {"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "DaemonSet"}, {"name", "agent"}}},
        {"service", {{"port", 80}}},
        {"analysis", {{"interval", "1m"}, {"threshold", 2}}}};
    spec["analysis"].update(analysis);
    return spec;
}

std::string allErrors(const std::vector<std::string>& errors) {
    std::string out;
    for (const auto& e : errors) out += e + "\n";
    return out;
}

std::vector<std::string> described(const std::vector<Action>& actions) {
    std::vector<std::string> out;
    for (const Action& a : actions) out.push_back(describe(a));
    return out;
}

TEST(DaemonSetTarget, BlueGreenAndABTestingAreAccepted) {
    auto blueGreen = parseCanarySpec(daemonSetSpec({{"iterations", 3}}));
    EXPECT_THAT(blueGreen.errors, IsEmpty()) << allErrors(blueGreen.errors);
    EXPECT_EQ(blueGreen.spec.targetRef.kind, "DaemonSet");
    EXPECT_EQ(blueGreen.spec.strategy(), Strategy::BlueGreen);
    EXPECT_EQ(blueGreen.spec.primaryName(), "agent-primary");
    auto ab = parseCanarySpec(daemonSetSpec(
        {{"iterations", 3}, {"match", {{{"headers", {{"x-canary", {{"exact", "insider"}}}}}}}}}));
    EXPECT_THAT(ab.errors, IsEmpty()) << allErrors(ab.errors);
    json skipped = daemonSetSpec(json::object());
    skipped["skipAnalysis"] = true;
    EXPECT_THAT(parseCanarySpec(skipped).errors, IsEmpty());
}

TEST(DaemonSetTarget, CanaryWeightsAreRefused) {
    auto stepped = parseCanarySpec(daemonSetSpec({{"stepWeight", 10}, {"maxWeight", 50}}));
    ASSERT_EQ(stepped.errors.size(), 1u) << allErrors(stepped.errors);
    EXPECT_THAT(stepped.errors[0], HasSubstr("spec.analysis.stepWeight"));
    EXPECT_THAT(stepped.errors[0], HasSubstr("canary weights need a Deployment target"));
    auto steps = parseCanarySpec(daemonSetSpec({{"stepWeights", {10, 50}}}));
    ASSERT_EQ(steps.errors.size(), 1u) << allErrors(steps.errors);
    EXPECT_THAT(steps.errors[0], HasSubstr("spec.analysis.stepWeights"));
    // Flagger's older key for the analysis is checked the same way.
    json old = daemonSetSpec(json::object());
    old["canaryAnalysis"] = old["analysis"];
    old.erase("analysis");
    old["canaryAnalysis"]["stepWeight"] = 5;
    auto legacy = parseCanarySpec(old);
    ASSERT_EQ(legacy.errors.size(), 1u) << allErrors(legacy.errors);
    EXPECT_THAT(legacy.errors[0], HasSubstr("spec.canaryAnalysis.stepWeight"));
}

TEST(DaemonSetTarget, AutoscalerRefIsRefused) {
    json spec = daemonSetSpec({{"iterations", 3}});
    spec["autoscalerRef"] = {
        {"apiVersion", "autoscaling/v2"}, {"kind", "HorizontalPodAutoscaler"}, {"name", "agent"}};
    auto parsed = parseCanarySpec(spec);
    ASSERT_EQ(parsed.errors.size(), 1u) << allErrors(parsed.errors);
    EXPECT_THAT(parsed.errors[0], HasSubstr("spec.autoscalerRef"));
}

TEST(DaemonSetTarget, DeploymentsKeepTheirWeights) {
    json spec = daemonSetSpec({{"stepWeight", 10}});
    spec["targetRef"]["kind"] = "Deployment";
    EXPECT_THAT(parseCanarySpec(spec).errors, IsEmpty());
}

// Initialisation and one blue-green analysis of a new revision, by hand: the target is scaled
// to zero once its primary copy is ready, up again (to any count: its nodes) for a new revision,
// and back to zero after the promotion.
TEST(DaemonSetTarget, BlueGreenScalesTheTargetToZeroAndBack) {
    auto parsed = parseCanarySpec(daemonSetSpec({{"iterations", 1}}));
    ASSERT_TRUE(parsed.ok()) << allErrors(parsed.errors);
    const CanarySpec& spec = parsed.spec;
    Time now = parseTimestamp("2026-01-01T00:00:00Z").value();

    Observation obs;
    obs.targetTemplateHash = "rev1";
    obs.target = {true, true, 3, 3};  // scheduled onto 3 nodes
    Decision d = step(spec, CanaryStatus{}, obs, now);
    EXPECT_THAT(described(d.actions), Contains(HasSubstr("InitializePrimary")));

    obs.primary = {true, true, 3, 3};
    for (int round = 0; round < 5 && d.status.phase != Phase::Initialized; ++round) {
        now += std::chrono::seconds(60);
        d = step(spec, d.status, obs, now);
        if (d.status.phase == Phase::Initialized) {
            EXPECT_THAT(described(d.actions), Contains("ScaleTarget(0)"));
        }
    }
    ASSERT_EQ(d.status.phase, Phase::Initialized);
    obs.target = {true, true, 0, 0};  // at rest: scheduled nowhere

    obs.targetTemplateHash = "rev2";
    bool scaledUp = false;
    for (int round = 0; round < 10 && d.status.phase != Phase::Succeeded; ++round) {
        now += std::chrono::seconds(60);
        d = step(spec, d.status, obs, now);
        for (const Action& a : d.actions) {
            if (const auto* s = std::get_if<action::ScaleTarget>(&a); s && s->replicas > 0) {
                scaledUp = true;
                obs.target = {true, true, 3, 3};
            }
            if (const auto* s = std::get_if<action::ScaleTarget>(&a); s && s->replicas == 0)
                obs.target = {true, true, 0, 0};
        }
    }
    EXPECT_TRUE(scaledUp);
    EXPECT_EQ(d.status.phase, Phase::Succeeded);
    EXPECT_EQ(obs.target.replicas, 0);  // scaled to zero again after the promotion
}

}  // namespace
}  // namespace sluice::canaryengine
