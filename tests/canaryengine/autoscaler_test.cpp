// spec.autoscalerRef in the engine: parsing, the primary's autoscaler created beside the primary
// (or later, once), copied again at every promotion, and initialisation held without it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/canaryengine/engine.h"

namespace sluice::canaryengine {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

json baseSpec(const json& autoscalerRef) {
    json spec = {
        {"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "app"}}},
        {"service", {{"port", 80}}},
        {"analysis",
         {{"interval", "1m"}, {"threshold", 3}, {"maxWeight", 50}, {"stepWeight", 10}}}};
    if (!autoscalerRef.is_null()) spec["autoscalerRef"] = autoscalerRef;
    return spec;
}

json hpaRef() {
    return {{"apiVersion", "autoscaling/v2"}, {"kind", "HorizontalPodAutoscaler"}, {"name", "app"}};
}

CanarySpec specWith(const json& autoscalerRef, bool skipAnalysis = false) {
    json spec = baseSpec(autoscalerRef);
    if (skipAnalysis) spec["skipAnalysis"] = true;
    auto parsed = parseCanarySpec(spec);
    EXPECT_TRUE(parsed.ok()) << (parsed.errors.empty() ? "" : parsed.errors[0]);
    return parsed.spec;
}

std::vector<std::string> described(const Decision& d) {
    std::vector<std::string> out;
    for (const Action& a : d.actions) out.push_back(describe(a));
    return out;
}

// Only the actions that change the cluster (no events).
std::vector<std::string> changes(const Decision& d) {
    std::vector<std::string> out;
    for (const Action& a : d.actions)
        if (!std::holds_alternative<action::EmitEvent>(a)) out.push_back(describe(a));
    return out;
}

Observation observed(bool primaryExists, bool scalerExists, bool primaryScalerExists) {
    Observation obs;
    obs.targetTemplateHash = "rev1";
    obs.target = {true, true, 2, 2};
    obs.primary = primaryExists ? WorkloadObservation{true, true, 3, 3} : WorkloadObservation{};
    obs.autoscaler.target = scalerExists;
    obs.autoscaler.primary = primaryScalerExists;
    return obs;
}

const Time kNow = Time(std::chrono::seconds(1'800'000'000));

TEST(CanaryAutoscalerSpec, ReadsPrimaryScalerReplicasAndQueries) {
    json ref = {
        {"apiVersion", "keda.sh/v1alpha1"},
        {"kind", "ScaledObject"},
        {"name", "app-so"},
        {"primaryScalerReplicas", {{"minReplicas", 2}, {"maxReplicas", 5}}},
        {"primaryScalerQueries", {{"prom-trigger", "sum(rate(x{app=\"app-primary\"}[1m]))"}}}};
    auto parsed = parseCanarySpec(baseSpec(ref));
    ASSERT_TRUE(parsed.ok()) << parsed.errors[0];
    ASSERT_TRUE(parsed.spec.autoscalerRef);
    const AutoscalerRef& a = *parsed.spec.autoscalerRef;
    EXPECT_TRUE(a.isScaledObject());
    EXPECT_EQ(a.primaryName(), "app-so-primary");
    EXPECT_EQ(a.primaryMinReplicas, 2);
    EXPECT_EQ(a.primaryMaxReplicas, 5);
    EXPECT_EQ(a.primaryScalerQueries.at("prom-trigger"), "sum(rate(x{app=\"app-primary\"}[1m]))");

    auto hpa = parseCanarySpec(baseSpec(hpaRef()));
    ASSERT_TRUE(hpa.ok());
    EXPECT_FALSE(hpa.spec.autoscalerRef->isScaledObject());
    EXPECT_FALSE(hpa.spec.autoscalerRef->primaryMinReplicas);
    EXPECT_TRUE(hpa.spec.autoscalerRef->primaryScalerQueries.empty());
}

TEST(CanaryAutoscalerSpec, RejectsOtherKindsAndInvertedBounds) {
    json other = hpaRef();
    other["kind"] = "HTTPScaledObject";
    auto parsed = parseCanarySpec(baseSpec(other));
    ASSERT_EQ(parsed.errors.size(), 1u);
    EXPECT_THAT(parsed.errors[0], HasSubstr("spec.autoscalerRef.kind"));

    json inverted = hpaRef();
    inverted["primaryScalerReplicas"] = {{"minReplicas", 6}, {"maxReplicas", 5}};
    parsed = parseCanarySpec(baseSpec(inverted));
    ASSERT_EQ(parsed.errors.size(), 1u);
    EXPECT_THAT(parsed.errors[0], HasSubstr("primaryScalerReplicas.minReplicas"));

    json noName = hpaRef();
    noName.erase("name");
    EXPECT_FALSE(parseCanarySpec(baseSpec(noName)).ok());
}

TEST(CanaryAutoscalerInit, CreatesThePrimaryAndThenItsAutoscaler) {
    const Decision d = step(specWith(hpaRef()), CanaryStatus{}, observed(false, true, false), kNow);
    EXPECT_EQ(d.status.phase, Phase::Initializing);
    EXPECT_THAT(changes(d), ElementsAre("InitializePrimary(rev1)", "InitializePrimaryAutoscaler"));
}

TEST(CanaryAutoscalerInit, WaitsForTheAutoscalerItCopiesBeforeCreatingThePrimary) {
    const Decision d =
        step(specWith(hpaRef()), CanaryStatus{}, observed(false, false, false), kNow);
    EXPECT_THAT(changes(d), ::testing::IsEmpty());
    const Condition* promoted = d.status.condition("Promoted");
    ASSERT_NE(promoted, nullptr);
    EXPECT_EQ(promoted->reason, "AutoscalerNotFound");
    EXPECT_THAT(promoted->message,
                HasSubstr("Waiting for HorizontalPodAutoscaler app (spec.autoscalerRef)"));
    EXPECT_THAT(described(d), Contains(HasSubstr("EmitEvent(Warning, AutoscalerNotFound")));
    EXPECT_GT(d.requeueAfter.count(), 0);

    // Said once: the same hold in the next round sends no second Event.
    const Decision again = step(specWith(hpaRef()), d.status, observed(false, false, false), kNow);
    EXPECT_THAT(described(again), Not(Contains(HasSubstr("AutoscalerNotFound"))));

    // Once it exists, initialisation goes on.
    const Decision later = step(specWith(hpaRef()), d.status, observed(false, true, false), kNow);
    EXPECT_THAT(changes(later),
                ElementsAre("InitializePrimary(rev1)", "InitializePrimaryAutoscaler"));
}

TEST(CanaryAutoscalerInit, WithoutAutoscalerRefNothingIsAutoscaled) {
    const Decision d = step(specWith(json()), CanaryStatus{}, observed(false, false, false), kNow);
    EXPECT_THAT(changes(d), ElementsAre("InitializePrimary(rev1)"));
}

TEST(CanaryAutoscalerInit, AMissingCopyIsCreatedOnceAtRestAndNeverRewritten) {
    CanaryStatus rest;
    rest.phase = Phase::Initialized;
    rest.lastAppliedSpec = rest.lastPromotedSpec = "rev1";
    // autoscalerRef added to an initialised Canary (or its copy deleted): created at rest.
    Decision d = step(specWith(hpaRef()), rest, observed(true, true, false), kNow);
    EXPECT_THAT(changes(d), ElementsAre("InitializePrimaryAutoscaler"));
    EXPECT_EQ(d.status.phase, Phase::Initialized);
    // Once it exists, a round at rest leaves it alone: its spec follows only at promotion.
    d = step(specWith(hpaRef()), rest, observed(true, true, true), kNow);
    EXPECT_THAT(changes(d), ::testing::IsEmpty());
    // The primary's own autoscaler without the target's: nothing to copy from.
    d = step(specWith(hpaRef()), rest, observed(true, false, false), kNow);
    EXPECT_THAT(changes(d), ::testing::IsEmpty());
}

CanaryStatus analysing() {
    CanaryStatus st;
    st.phase = Phase::Progressing;
    st.lastAppliedSpec = "rev2";
    st.lastPromotedSpec = "rev1";
    return st;
}

Observation analysed(bool scalerExists) {
    Observation obs = observed(true, scalerExists, true);
    obs.targetTemplateHash = "rev2";
    return obs;
}

TEST(CanaryAutoscalerPromotion, CopiesTheTargetsAutoscalerWithTheTemplate) {
    const Decision d = step(specWith(hpaRef(), true), analysing(), analysed(true), kNow);
    EXPECT_EQ(d.status.phase, Phase::Promoting);
    EXPECT_THAT(changes(d), ElementsAre("SetWeights(primary=0, canary=100)",
                                        "CopyTargetToPrimary(rev2)", "CopyAutoscalerToPrimary"));
}

TEST(CanaryAutoscalerPromotion, AMissingTargetAutoscalerLeavesThePrimarysAsItIs) {
    const Decision d = step(specWith(hpaRef(), true), analysing(), analysed(false), kNow);
    EXPECT_EQ(d.status.phase, Phase::Promoting);
    EXPECT_THAT(changes(d),
                ElementsAre("SetWeights(primary=0, canary=100)", "CopyTargetToPrimary(rev2)"));
    EXPECT_THAT(described(d),
                Contains(HasSubstr("AutoscalerNotFound, HorizontalPodAutoscaler app "
                                   "(spec.autoscalerRef) not found: app-primary is left")));
}

TEST(CanaryAutoscalerPromotion, WithoutAutoscalerRefOnlyTheTemplateIsCopied) {
    const Decision d = step(specWith(json(), true), analysing(), analysed(false), kNow);
    EXPECT_THAT(changes(d),
                ElementsAre("SetWeights(primary=0, canary=100)", "CopyTargetToPrimary(rev2)"));
}

}  // namespace
}  // namespace sluice::canaryengine
