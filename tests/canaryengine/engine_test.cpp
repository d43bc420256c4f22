#include "sluice/canaryengine/engine.h"

#include "sluice/canaryengine/alerts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>

#include "sluice/util/clock.h"
#include "sluice/util/yaml_json.h"

namespace sluice::canaryengine {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using namespace std::chrono_literals;

CanarySpec exampleSpec(const std::string& file) {
    std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/tests/data/examples/" + file);
    std::stringstream buffer;
    buffer << in.rdbuf();
    Canary canary = parseCanary(yamlDocumentsToJson(buffer.str()).at(0));
    EXPECT_TRUE(canary.errors.empty());
    return canary.spec;
}

// A spec for target "app": interval 1m, threshold 3, maxWeight 50, deadline 600s, plus overrides.
CanarySpec makeSpec(const json& analysis, const json& specOverrides = json::object()) {
    json spec = {
        {"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "app"}}},
        {"service", {{"port", 80}}},
        {"analysis", {{"interval", "1m"}, {"threshold", 3}, {"maxWeight", 50}}}};
    spec["analysis"].update(analysis);
    spec.update(specOverrides);
    auto parsed = parseCanarySpec(spec);
    EXPECT_TRUE(parsed.ok()) << (parsed.errors.empty() ? "" : parsed.errors[0]);
    return parsed.spec;
}

json hook(const std::string& name, const std::string& type) {
    return {{"name", name}, {"type", type}, {"url", "http://hooks/" + name}};
}

json successRate() {
    return {{"name", "request-success-rate"}, {"thresholdRange", {{"min", 99}}}};
}

std::vector<std::string> described(const std::vector<Action>& actions) {
    std::vector<std::string> out;
    for (const Action& a : actions) out.push_back(describe(a));
    return out;
}

// A scripted cluster and controller: carries out the engine's actions, answers its webhook and
// metric requests in the next round, and advances the fake clock by the requested requeue.
class Sim {
  public:
    explicit Sim(CanarySpec canarySpec) : spec(std::move(canarySpec)) {}

    CanarySpec spec;
    FakeClock clock;
    CanaryStatus status;
    bool persistThroughJson = false;  // write and re-read the status every round, as a restart

    // The cluster.
    std::string targetHash = "rev1";
    std::string primaryHash;
    bool primaryExists = false;
    bool primaryHealthy = true;
    bool targetHealthy = true;
    int primaryReplicas = 3;
    int targetReplicas = 3;
    int primaryWeight = 100;
    int canaryWeight = 0;
    std::map<std::string, WebhookOutcome> hookOutcome;   // by name; default Succeeded
    std::map<std::string, MetricResult> metricOverride;  // by name; default a passing value
    // The request annotations on the Canary; removed as the controller does when the decision
    // says so.
    std::vector<ManualRequest> requests;

    // What happened.
    Decision last;
    std::vector<std::string> log;  // every action, in order
    std::vector<Event> events;
    std::vector<AlertMessage> alerts;  // alertsFor() of every decision
    std::vector<WebhookType> hookCalls;
    std::vector<std::pair<int, int>> weightChanges;
    int metricRuns = 0;
    int rounds = 0;

    Observation observe() const {
        Observation o;
        o.targetTemplateHash = targetHash;
        bool targetReady = targetHealthy && targetReplicas > 0;
        o.target = {true, targetReady, targetReplicas, targetReady ? targetReplicas : 0};
        bool primaryReady = primaryExists && primaryHealthy;
        o.primary = {primaryExists, primaryReady, primaryReplicas,
                     primaryReady ? primaryReplicas : 0};
        o.metrics = pendingMetrics_;
        o.webhooks = pendingWebhooks_;
        o.requests = requests;
        return o;
    }

    const Decision& round() {
        Observation observation = observe();
        pendingMetrics_.clear();
        pendingWebhooks_.clear();
        last = step(spec, status, observation, clock.wallNow());
        for (AlertMessage& a : alertsFor(spec, {"test", "app", "app=app:2"}, status, last))
            alerts.push_back(std::move(a));
        ++rounds;
        status = last.status;
        if (persistThroughJson) {
            auto reparsed = parseCanaryStatus(json::parse(toJson(status).dump()));
            EXPECT_TRUE(reparsed.errors.empty());
            EXPECT_EQ(reparsed.status, status);
            status = reparsed.status;
        }
        for (const Action& action : last.actions) apply(action);
        for (ManualAction removed : last.removeRequests)
            std::erase_if(requests, [&](const ManualRequest& r) { return r.action == removed; });
        return last;
    }

    // Waits as the controller would, then runs a round.
    const Decision& next() {
        clock.advance(last.requeueAfter);
        return round();
    }

    bool runUntil(const std::function<bool()>& done, int maxRounds = 400) {
        if (rounds == 0) round();
        for (int i = 0; i < maxRounds && !done(); ++i) next();
        return done();
    }
    bool runUntilPhase(Phase phase, int maxRounds = 400) {
        return runUntil([&] { return status.phase == phase; }, maxRounds);
    }

    // Brings the canary to rest on rev1, then deploys rev2.
    void initializeThenDeploy(const std::string& revision = "rev2") {
        EXPECT_TRUE(runUntilPhase(Phase::Initialized));
        clearRecords();
        targetHash = revision;
    }

    void clearRecords() {
        log.clear();
        events.clear();
        alerts.clear();
        hookCalls.clear();
        weightChanges.clear();
        metricRuns = 0;
    }

    std::vector<std::string> eventMessages() const {
        std::vector<std::string> out;
        for (const Event& e : events) out.push_back(e.message);
        return out;
    }
    std::string conditionMessage() const {
        const Condition* c = status.condition(kPromotedCondition);
        return c ? c->message : "";
    }
    int callsOf(WebhookType type) const {
        return static_cast<int>(std::count(hookCalls.begin(), hookCalls.end(), type));
    }

  private:
    MetricResult passingValue(const MetricSpec& metric) const {
        if (metric.thresholdRange.min)
            return MetricResult::measured(*metric.thresholdRange.min + 1);
        return MetricResult::measured(*metric.thresholdRange.max / 2);
    }

    void apply(const Action& action) {
        log.push_back(describe(action));
        if (auto* init = std::get_if<action::InitializePrimary>(&action)) {
            primaryExists = true;
            primaryHash = init->templateHash;
        } else if (auto* scale = std::get_if<action::ScaleTarget>(&action)) {
            targetReplicas = scale->replicas;
        } else if (auto* weights = std::get_if<action::SetWeights>(&action)) {
            EXPECT_EQ(weights->primary + weights->canary, 100);
            primaryWeight = weights->primary;
            canaryWeight = weights->canary;
            weightChanges.emplace_back(weights->primary, weights->canary);
        } else if (auto* copy = std::get_if<action::CopyTargetToPrimary>(&action)) {
            EXPECT_EQ(copy->templateHash, targetHash) << "only the analysed revision is promoted";
            primaryHash = copy->templateHash;
        } else if (auto* call = std::get_if<action::CallWebhooks>(&action)) {
            hookCalls.push_back(call->type);
            EXPECT_EQ(call->event.has_value(), call->type == WebhookType::Event);
            for (const WebhookSpec* hook : spec.webhooksOfType(call->type)) {
                auto it = hookOutcome.find(hook->name);
                WebhookOutcome outcome =
                    it == hookOutcome.end() ? WebhookOutcome::Succeeded : it->second;
                pendingWebhooks_[hook->name] = {
                    outcome, outcome == WebhookOutcome::Failed ? "HTTP 503" : ""};
            }
        } else if (std::holds_alternative<action::RunMetricChecks>(action)) {
            ++metricRuns;
            for (const MetricSpec& metric : spec.analysis.metrics) {
                auto it = metricOverride.find(metric.name);
                pendingMetrics_[metric.name] =
                    it == metricOverride.end() ? passingValue(metric) : it->second;
            }
        } else if (auto* emit = std::get_if<action::EmitEvent>(&action)) {
            events.push_back(emit->event);
        }
    }

    std::map<std::string, MetricResult> pendingMetrics_;
    std::map<std::string, WebhookResult> pendingWebhooks_;
};

// --- initialization ------------------------------------------------------------------------

TEST(CanaryEngineInit, CreatesPrimaryWaitsForItThenRoutesAllTrafficToIt) {
    Sim sim(makeSpec({{"stepWeight", 10}}));
    sim.primaryHealthy = false;
    auto d = sim.round();
    EXPECT_THAT(described(d.actions),
                ElementsAre("InitializePrimary(rev1)",
                            "EmitEvent(Normal, Initializing, Initializing app-primary from app)"));
    EXPECT_EQ(sim.status.phase, Phase::Initializing);
    EXPECT_EQ(sim.status.lastAppliedSpec, "rev1");
    EXPECT_EQ(d.requeueAfter, 10s);

    d = sim.next();  // primary exists, not ready: hold, never scale the target down
    EXPECT_EQ(sim.status.phase, Phase::Initializing);
    EXPECT_EQ(sim.targetReplicas, 3);
    EXPECT_THAT(sim.conditionMessage(), HasSubstr("Waiting for app-primary to be ready"));

    sim.primaryHealthy = true;
    d = sim.next();
    EXPECT_THAT(described(d.actions),
                ElementsAre("SetWeights(primary=100, canary=0)", "ScaleTarget(0)",
                            "EmitEvent(Normal, Initialized, Initialization done! app)"));
    EXPECT_EQ(sim.status.phase, Phase::Initialized);
    EXPECT_EQ(sim.status.lastPromotedSpec, "rev1");
    EXPECT_EQ(sim.status.condition(kPromotedCondition)->status, "True");
    EXPECT_EQ(d.requeueAfter, 60s);

    d = sim.next();  // at rest nothing happens
    EXPECT_THAT(d.actions, IsEmpty());
    EXPECT_EQ(sim.status.phase, Phase::Initialized);
}

TEST(CanaryEngineInit, PrimaryNeverReadyFailsButKeepsTargetServing) {
    Sim sim(makeSpec({{"stepWeight", 10}}));
    sim.primaryHealthy = false;
    sim.round();
    sim.clock.advance(601s);
    sim.next();
    EXPECT_EQ(sim.status.phase, Phase::Failed);
    EXPECT_TRUE(sim.status.targetKeptServing);
    EXPECT_THAT(sim.log, Not(Contains("ScaleTarget(0)")));
    EXPECT_EQ(sim.targetReplicas, 3);
    EXPECT_THAT(sim.eventMessages(),
                Contains(HasSubstr("Initialization failed: app-primary not ready within 600s")));

    sim.primaryHealthy = true;  // late, but it gets there: finish the switch
    auto d = sim.next();
    EXPECT_THAT(described(d.actions), Contains("ScaleTarget(0)"));
    EXPECT_EQ(sim.status.phase, Phase::Initialized);
    EXPECT_FALSE(sim.status.targetKeptServing);
}

// --- revisions -----------------------------------------------------------------------------

TEST(CanaryEngineRevision, NewTemplateHashStartsAnalysis) {
    Sim sim(makeSpec({{"stepWeight", 10}}));
    sim.initializeThenDeploy();
    auto d = sim.next();
    EXPECT_THAT(described(d.actions),
                ElementsAre("EmitEvent(Normal, NewRevision, New revision detected! Scaling up app)",
                            "ScaleTarget(3)"));
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_EQ(sim.status.lastAppliedSpec, "rev2");
    EXPECT_EQ(sim.status.lastPromotedSpec, "rev1");
    EXPECT_EQ(sim.status.condition(kPromotedCondition)->status, "Unknown");
}

TEST(CanaryEngineRevision, ChangeDuringAnalysisRestartsIt) {
    Sim sim(makeSpec({{"stepWeight", 10}, {"metrics", {successRate()}}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 20; }));
    sim.metricOverride["request-success-rate"] = MetricResult::measured(50);
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.failedChecks == 1; }));
    EXPECT_GT(sim.status.iterations, 0);

    sim.targetHash = "rev3";
    auto d = sim.next();
    EXPECT_THAT(described(d.actions),
                ElementsAre("EmitEvent(Normal, NewRevision, New revision detected! Restarting "
                            "analysis for app)",
                            "SetWeights(primary=100, canary=0)"));
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_EQ(sim.status.failedChecks, 0);
    EXPECT_EQ(sim.status.iterations, 0);
    EXPECT_EQ(sim.status.canaryWeight, 0);
    EXPECT_EQ(sim.status.lastAppliedSpec, "rev3");
    EXPECT_FALSE(sim.status.lastAnalysisTime);

    sim.metricOverride.clear();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_EQ(sim.primaryHash, "rev3");
}

TEST(CanaryEngineRevision, ChangeDuringPromotionRestartsAnalysisOnThePrimary) {
    Sim sim(makeSpec({{"stepWeight", 50}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Promoting));
    sim.primaryHealthy = false;
    sim.next();
    sim.targetHash = "rev3";  // pushed while the primary is still rolling out rev2
    sim.next();
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_EQ(sim.status.lastAppliedSpec, "rev3");
    EXPECT_EQ(sim.canaryWeight, 100);  // the primary is not ready: it gets no traffic yet
    sim.primaryHealthy = true;
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_EQ(sim.primaryHash, "rev3");
    EXPECT_EQ(sim.status.lastPromotedSpec, "rev3");
}

// --- canary strategy -------------------------------------------------------------------------

std::vector<int> canaryWeightsOf(const Sim& sim) {
    std::vector<int> out;
    for (auto [primary, canary] : sim.weightChanges) out.push_back(canary);
    return out;
}

TEST(CanaryEngineCanary, StepWeightAdvancesEachIntervalToMaxWeightThenPromotes) {
    Sim sim(exampleSpec("canary.yaml"));
    sim.initializeThenDeploy();
    std::vector<Time> advanceTimes;
    ASSERT_TRUE(sim.runUntil([&] {
        if (!sim.last.actions.empty() && sim.status.phase == Phase::Progressing &&
            std::holds_alternative<action::SetWeights>(sim.last.actions.front())) {
            advanceTimes.push_back(sim.clock.wallNow());
        }
        return sim.status.phase == Phase::Succeeded;
    }));
    EXPECT_THAT(canaryWeightsOf(sim), ElementsAre(10, 20, 30, 40, 50, 100, 0));
    ASSERT_EQ(advanceTimes.size(), 5u);
    for (size_t i = 1; i < advanceTimes.size(); ++i) {
        EXPECT_GE(advanceTimes[i] - advanceTimes[i - 1], 60s);
    }
    EXPECT_THAT(sim.eventMessages(), Contains("Advance campaign-service canary weight 10"));
    EXPECT_THAT(sim.eventMessages(), Contains("Advance campaign-service canary weight 50"));
    EXPECT_THAT(sim.eventMessages(),
                Contains("Promotion completed! Scaling down campaign-service"));
    EXPECT_EQ(sim.primaryHash, "rev2");
    EXPECT_EQ(sim.targetReplicas, 0);
    EXPECT_EQ(sim.primaryWeight, 100);
    EXPECT_EQ(sim.status.lastPromotedSpec, "rev2");
    EXPECT_EQ(sim.status.canaryWeight, 0);
    EXPECT_EQ(sim.status.condition(kPromotedCondition)->status, "True");
    EXPECT_EQ(sim.status.condition(kPromotedCondition)->reason, "Succeeded");
}

TEST(CanaryEngineCanary, PromotionSequenceNeverRoutesToARollingPrimary) {
    Sim sim(makeSpec({{"stepWeight", 50}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Promoting));
    EXPECT_THAT(described(sim.last.actions),
                ElementsAre("SetWeights(primary=0, canary=100)", "CopyTargetToPrimary(rev2)",
                            HasSubstr("EmitEvent(Normal, Promoting, Canary analysis succeeded")));
    sim.primaryHealthy = false;  // the primary is rolling out the new template
    for (int i = 0; i < 5; ++i) sim.next();
    EXPECT_EQ(sim.status.phase, Phase::Promoting);
    EXPECT_EQ(sim.primaryWeight, 0);
    sim.primaryHealthy = true;
    auto d = sim.next();
    EXPECT_THAT(described(d.actions), Contains("SetWeights(primary=100, canary=0)"));
    EXPECT_EQ(sim.status.phase, Phase::Finalising);
    EXPECT_EQ(sim.targetReplicas, 3);  // scaled down only once traffic has moved
    d = sim.next();
    EXPECT_THAT(described(d.actions), Contains("ScaleTarget(0)"));
    EXPECT_EQ(sim.status.phase, Phase::Succeeded);
}

TEST(CanaryEngineCanary, MaxWeightCapsTheLastStep) {
    Sim sim(makeSpec({{"stepWeight", 20}, {"maxWeight", 50}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_THAT(canaryWeightsOf(sim), ElementsAre(20, 40, 50, 100, 0));
}

TEST(CanaryEngineCanary, StepWeightsFollowTheList) {
    Sim sim(exampleSpec("stepped-canary.yaml"));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_THAT(canaryWeightsOf(sim), ElementsAre(5, 20, 50, 100, 0));
    EXPECT_THAT(sim.eventMessages(), Contains("Advance bifrost-api canary weight 20"));
}

TEST(CanaryEngineCanary, StepWeightPromotionShiftsPrimaryGradually) {
    Sim sim(makeSpec({{"stepWeight", 50}, {"stepWeightPromotion", 40}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_THAT(canaryWeightsOf(sim), ElementsAre(50, 100, 60, 20, 0));
}

TEST(CanaryEngineCanary, FirstIterationAtWeightZeroSkipsMetrics) {
    Sim sim(makeSpec({{"stepWeight", 10}, {"metrics", {successRate()}}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    EXPECT_EQ(sim.metricRuns, 0);
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 20; }));
    EXPECT_EQ(sim.metricRuns, 1);
}

TEST(CanaryEngineCanary, IterationsArePacedByInterval) {
    Sim sim(makeSpec({{"stepWeight", 10}, {"interval", "5m"}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    ASSERT_TRUE(sim.status.lastAnalysisTime);
    EXPECT_EQ(sim.last.requeueAfter, 300s);
    // An early reconcile (e.g. a watch event) does nothing and asks to come back in time.
    sim.clock.advance(100s);
    auto d = sim.round();
    EXPECT_THAT(d.actions, IsEmpty());
    EXPECT_EQ(d.requeueAfter, 200s);
    EXPECT_EQ(sim.status.canaryWeight, 10);
    sim.clock.advance(199s);
    EXPECT_THAT(sim.round().actions, IsEmpty());
    sim.clock.advance(1s);
    EXPECT_THAT(described(sim.round().actions), Contains("CallWebhooks(rollout)").Times(0));
    EXPECT_EQ(sim.status.canaryWeight, 20);  // no checks configured: advance at once
}

TEST(CanaryEngineCanary, ChecksAreRequestedThenEvaluatedInTheNextRound) {
    Sim sim(makeSpec({{"stepWeight", 10},
                      {"metrics", {successRate()}},
                      {"webhooks", {hook("load", "rollout"), hook("abort", "rollback")}}}));
    sim.hookOutcome["abort"] = WebhookOutcome::Failed;  // failure = no abort requested
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    EXPECT_EQ(sim.last.requeueAfter, 60s);
    sim.next();
    EXPECT_THAT(described(sim.last.actions),
                ElementsAre("CallWebhooks(rollback)", "CallWebhooks(rollout)", "RunMetricChecks"));
    EXPECT_EQ(sim.last.requeueAfter, 1s);
    EXPECT_EQ(sim.status.canaryWeight, 10);
    auto d = sim.next();
    EXPECT_THAT(described(d.actions),
                ElementsAre("SetWeights(primary=80, canary=20)",
                            "EmitEvent(Normal, Advance, Advance app canary weight 20)"));
}

// --- gates -----------------------------------------------------------------------------------

TEST(CanaryEngineGates, ConfirmRolloutHoldsInWaitingBeforeScalingUp) {
    Sim sim(makeSpec({{"stepWeight", 50}, {"webhooks", {hook("approve", "confirm-rollout")}}}));
    sim.hookOutcome["approve"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    auto d = sim.next();
    EXPECT_EQ(sim.status.phase, Phase::Waiting);
    EXPECT_THAT(described(d.actions), Contains("CallWebhooks(confirm-rollout)"));
    for (int i = 0; i < 20; ++i) sim.next();
    EXPECT_EQ(sim.status.phase, Phase::Waiting);
    EXPECT_EQ(sim.targetReplicas, 0);
    EXPECT_EQ(sim.status.failedChecks, 0);
    EXPECT_THAT(sim.conditionMessage(),
                HasSubstr("Waiting for approval: confirm-rollout approve for app"));
    EXPECT_GE(sim.callsOf(WebhookType::ConfirmRollout), 10);

    sim.hookOutcome["approve"] = WebhookOutcome::Succeeded;
    ASSERT_TRUE(sim.runUntilPhase(Phase::Progressing));
    EXPECT_THAT(described(sim.last.actions), Contains("ScaleTarget(3)"));
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
}

TEST(CanaryEngineGates, ConfirmTrafficIncreaseHoldsTheWeightWithoutFailing) {
    Sim sim(
        makeSpec({{"stepWeight", 25}, {"webhooks", {hook("more", "confirm-traffic-increase")}}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 25; }));
    sim.hookOutcome["more"] = WebhookOutcome::Failed;
    sim.clock.advance(10min);
    for (int i = 0; i < 20; ++i) sim.next();
    EXPECT_EQ(sim.status.canaryWeight, 25);
    EXPECT_EQ(sim.status.failedChecks, 0);
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_THAT(sim.conditionMessage(), HasSubstr("confirm-traffic-increase more"));
    sim.hookOutcome["more"] = WebhookOutcome::Succeeded;
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 50; }));
    EXPECT_TRUE(sim.status.gateWaitingSince.empty());
}

TEST(CanaryEngineGates, ConfirmPromotionWaitsWhileMetricsKeepRunning) {
    Sim sim(makeSpec({{"stepWeight", 50},
                      {"threshold", 10},
                      {"metrics", {successRate()}},
                      {"webhooks", {hook("promote", "confirm-promotion")}}}));
    sim.hookOutcome["promote"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::WaitingPromotion));
    EXPECT_EQ(sim.status.canaryWeight, 50);
    int runsBefore = sim.metricRuns;
    for (int i = 0; i < 10; ++i) sim.next();
    EXPECT_EQ(sim.status.phase, Phase::WaitingPromotion);
    EXPECT_GE(sim.metricRuns - runsBefore, 4);

    // Metrics still count while waiting.
    sim.metricOverride["request-success-rate"] = MetricResult::measured(90);
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.failedChecks == 1; }));
    EXPECT_EQ(sim.status.phase, Phase::WaitingPromotion);
    EXPECT_THAT(sim.eventMessages(), Contains("Halt advancement: request-success-rate 90 < 99"));

    // An open gate does not promote a failing canary.
    sim.hookOutcome["promote"] = WebhookOutcome::Succeeded;
    sim.clock.advance(1min);
    for (int i = 0; i < 3; ++i) sim.next();
    EXPECT_EQ(sim.status.phase, Phase::WaitingPromotion);

    sim.metricOverride.clear();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Promoting));
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
}

TEST(CanaryEngineGates, MaxWaitExpiryRollsBack) {
    json gate = hook("promote", "confirm-promotion");
    gate["maxWait"] = "5m";
    Sim sim(makeSpec({{"stepWeight", 50}, {"webhooks", {gate}}}));
    sim.hookOutcome["promote"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::WaitingPromotion));
    Time waitStart = sim.status.gateWaitingSince.at(WebhookType::ConfirmPromotion);
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed));
    EXPECT_GT(sim.clock.wallNow() - waitStart, 5min);
    EXPECT_LE(sim.clock.wallNow() - waitStart, 7min);
    EXPECT_THAT(sim.eventMessages(),
                Contains("Rolling back app: confirm-promotion gate promote not approved within "
                         "5m0s"));
    EXPECT_THAT(described(sim.last.actions), Contains("SetWeights(primary=100, canary=0)"));
    EXPECT_THAT(described(sim.last.actions), Contains("ScaleTarget(0)"));
    EXPECT_EQ(sim.status.condition(kPromotedCondition)->status, "False");
}

TEST(CanaryEngineGates, WithoutMaxWaitAGateWaitsIndefinitely) {
    Sim sim(makeSpec({{"stepWeight", 50}, {"webhooks", {hook("promote", "confirm-promotion")}}}));
    sim.hookOutcome["promote"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::WaitingPromotion));
    sim.clock.advance(48h);
    for (int i = 0; i < 10; ++i) sim.next();
    EXPECT_EQ(sim.status.phase, Phase::WaitingPromotion);
}

TEST(CanaryEngineGates, ConfirmRolloutMaxWaitRollsBackWithoutTouchingThePrimary) {
    json gate = hook("approve", "confirm-rollout");
    gate["maxWait"] = "1h";
    Sim sim(makeSpec({{"stepWeight", 50}, {"webhooks", {gate}}}));
    sim.hookOutcome["approve"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed));
    EXPECT_EQ(sim.primaryWeight, 100);
    EXPECT_EQ(sim.targetReplicas, 0);
    EXPECT_EQ(sim.primaryHash, "rev1");
}

// --- failed checks and rollback ---------------------------------------------------------------

TEST(CanaryEngineChecks, PreRolloutFailureCountsAndIsRetried) {
    Sim sim(makeSpec({{"stepWeight", 50}, {"webhooks", {hook("smoke", "pre-rollout")}}}));
    sim.hookOutcome["smoke"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.failedChecks == 1; }));
    EXPECT_EQ(sim.status.canaryWeight, 0);
    EXPECT_FALSE(sim.status.preRolloutPassed);
    EXPECT_THAT(sim.eventMessages(),
                Contains("Halt advancement: pre-rollout webhook smoke failed: HTTP 503"));
    sim.hookOutcome["smoke"] = WebhookOutcome::Succeeded;
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 50; }));
    EXPECT_TRUE(sim.status.preRolloutPassed);
    int preRolloutCalls = sim.callsOf(WebhookType::PreRollout);
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_EQ(sim.callsOf(WebhookType::PreRollout), preRolloutCalls);
    EXPECT_EQ(sim.status.failedChecks, 1);
}

TEST(CanaryEngineChecks, RolloutWebhookFailureCountsAndHalts) {
    Sim sim(makeSpec({{"stepWeight", 20}, {"webhooks", {hook("load", "rollout")}}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 20; }));
    sim.hookOutcome["load"] = WebhookOutcome::Failed;
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.failedChecks == 2; }));
    EXPECT_EQ(sim.status.canaryWeight, 20);
    EXPECT_THAT(sim.eventMessages(),
                Contains("Halt advancement: rollout webhook load failed: HTTP 503"));
    EXPECT_THAT(sim.conditionMessage(), HasSubstr("(failed checks 2/3)"));
    sim.hookOutcome["load"] = WebhookOutcome::Succeeded;
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 40; }));
    EXPECT_EQ(sim.status.failedChecks, 2);  // cumulative per revision
}

TEST(CanaryEngineChecks, ThresholdRollbackNamesMetricValueAndThreshold) {
    Sim sim(exampleSpec("canary.yaml"));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 20; }));
    sim.metricOverride["request-success-rate"] = MetricResult::measured(87.5);
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed));
    std::vector<std::string> messages = sim.eventMessages();
    EXPECT_EQ(std::count(messages.begin(), messages.end(),
                         "Halt advancement: request-success-rate 87.5 < 99"),
              5);
    EXPECT_THAT(messages,
                Contains("Rolling back campaign-service failed checks threshold reached 5"));
    EXPECT_THAT(messages, Contains("Canary failed! Scaling down campaign-service"));
    EXPECT_EQ(sim.status.failedChecks, 5);
    EXPECT_EQ(sim.status.canaryWeight, 0);
    EXPECT_EQ(sim.primaryWeight, 100);
    EXPECT_EQ(sim.targetReplicas, 0);
    EXPECT_EQ(sim.primaryHash, "rev1");
    EXPECT_EQ(sim.conditionMessage(),
              "Rolling back campaign-service failed checks threshold reached 5");

    // Failed stays failed until a new revision arrives.
    auto d = sim.next();
    EXPECT_THAT(d.actions, IsEmpty());
    sim.metricOverride.clear();
    sim.targetHash = "rev3";
    sim.next();
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_EQ(sim.status.failedChecks, 0);
}

TEST(CanaryEngineChecks, MaxThresholdViolationIsReported) {
    Sim sim(exampleSpec("canary.yaml"));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    sim.metricOverride["request-duration"] = MetricResult::measured(612.25);
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.failedChecks == 1; }));
    EXPECT_THAT(sim.eventMessages(), Contains("Halt advancement: request-duration 612.25 > 500"));
}

TEST(CanaryEngineChecks, SuccessfulRollbackWebhookAbortsTheCanary) {
    Sim sim(makeSpec({{"stepWeight", 10}, {"webhooks", {hook("abort", "rollback")}}}));
    sim.hookOutcome["abort"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 30; }));
    sim.hookOutcome["abort"] = WebhookOutcome::Succeeded;
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed, 10));
    EXPECT_THAT(sim.eventMessages(), Contains("Rolling back app manual webhook invoked (abort)"));
    EXPECT_EQ(sim.status.failedChecks, 0);
    EXPECT_EQ(sim.primaryWeight, 100);
    EXPECT_EQ(sim.targetReplicas, 0);
}

TEST(CanaryEngineChecks, RollbackWebhookAlsoAbortsWhileWaitingForApproval) {
    Sim sim(
        makeSpec({{"stepWeight", 10},
                  {"webhooks", {hook("approve", "confirm-rollout"), hook("abort", "rollback")}}}));
    sim.hookOutcome["approve"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Waiting));
    sim.hookOutcome["abort"] = WebhookOutcome::Succeeded;
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed, 10));
    EXPECT_THAT(sim.eventMessages(), Contains("Rolling back app manual webhook invoked (abort)"));
}

TEST(CanaryEngineChecks, CanaryNotReadyWithinProgressDeadlineRollsBack) {
    Sim sim(makeSpec({{"stepWeight", 10}}, {{"progressDeadlineSeconds", 120}}));
    sim.targetHealthy = true;
    sim.initializeThenDeploy();
    sim.targetHealthy = false;  // the new pods never become ready
    sim.next();
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    ASSERT_TRUE(sim.status.targetUnreadySince);
    Time since = *sim.status.targetUnreadySince;
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed));
    EXPECT_GT(sim.clock.wallNow() - since, 120s);
    EXPECT_LE(sim.clock.wallNow() - since, 130s);
    EXPECT_THAT(sim.eventMessages(),
                Contains("Rolling back app progress deadline exceeded: app not ready within 120s "
                         "(0/3 replicas ready)"));
    EXPECT_EQ(sim.targetReplicas, 0);
    EXPECT_EQ(sim.status.canaryWeight, 0);
}

TEST(CanaryEngineChecks, CanaryReadyBeforeDeadlineProceeds) {
    Sim sim(makeSpec({{"stepWeight", 50}}, {{"progressDeadlineSeconds", 120}}));
    sim.initializeThenDeploy();
    sim.targetHealthy = false;
    sim.next();
    sim.clock.advance(100s);
    sim.next();
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    sim.targetHealthy = true;
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
}

// --- missing metric data ----------------------------------------------------------------------

TEST(CanaryEngineNoData, HoldsWithoutFailingAndShowsTheReason) {
    Sim sim(makeSpec({{"stepWeight", 50}, {"metrics", {successRate()}}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 50; }));
    sim.metricOverride["request-success-rate"] = MetricResult::noData("empty result");
    for (int i = 0; i < 12; ++i) sim.next();
    // At max weight, with everything else passing: still no promotion.
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_EQ(sim.status.failedChecks, 0);
    EXPECT_EQ(sim.status.canaryWeight, 50);
    ASSERT_TRUE(sim.status.noDataSince);
    EXPECT_EQ(sim.status.noDataReason, "request-success-rate: no data (empty result)");
    EXPECT_THAT(sim.conditionMessage(), HasSubstr("no metric data since"));
    EXPECT_THAT(sim.conditionMessage(), HasSubstr("request-success-rate: no data (empty result)"));
    EXPECT_THAT(sim.events, Contains(::testing::Field(&Event::reason, "NoData")));

    sim.metricOverride.clear();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_EQ(sim.status.failedChecks, 0);
    EXPECT_FALSE(sim.status.noDataSince);
}

TEST(CanaryEngineNoData, QueryErrorsAndNaNAreNeverAPass) {
    Sim sim(makeSpec(
        {{"stepWeight", 50},
         {"metrics", {successRate(), {{"name", "latency"}, {"thresholdRange", {{"max", 500}}}}}}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 50; }));
    sim.metricOverride["request-success-rate"] = MetricResult::measured(std::nan(""));
    sim.metricOverride["latency"] = MetricResult::queryError("connection refused");
    for (int i = 0; i < 8; ++i) sim.next();
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_EQ(sim.status.failedChecks, 0);
    EXPECT_THAT(sim.status.noDataReason, HasSubstr("latency: query error (connection refused)"));
    EXPECT_THAT(sim.status.noDataReason, HasSubstr("request-success-rate: value is NaN"));
}

TEST(CanaryEngineNoData, NoDataPastProgressDeadlineRollsBack) {
    Sim sim(makeSpec({{"stepWeight", 10}, {"metrics", {successRate()}}},
                     {{"progressDeadlineSeconds", 300}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    sim.metricOverride["request-success-rate"] = MetricResult::noData("empty result");
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.noDataSince.has_value(); }));
    Time since = *sim.status.noDataSince;
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed));
    EXPECT_GT(sim.clock.wallNow() - since, 300s);
    EXPECT_EQ(sim.status.failedChecks, 0);
    EXPECT_THAT(sim.eventMessages(),
                Contains("Rolling back app: no metric data for longer than 300s "
                         "(request-success-rate: no data (empty result))"));
    EXPECT_EQ(sim.targetReplicas, 0);
}

// --- safety beyond Flagger --------------------------------------------------------------------

TEST(CanaryEngineSafety, PrimaryNotReadyDuringPromotionKeepsTrafficOnCanaryAndFails) {
    Sim sim(makeSpec({{"stepWeight", 50}, {"webhooks", {hook("notify", "post-rollout")}}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Promoting));
    sim.primaryHealthy = false;  // the new template crashes in the primary's environment
    size_t logStart = sim.log.size();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed));
    std::vector<std::string> after(sim.log.begin() + static_cast<long>(logStart), sim.log.end());
    EXPECT_THAT(after, Not(Contains(HasSubstr("SetWeights(primary=100"))));
    EXPECT_THAT(after, Not(Contains("ScaleTarget(0)")));
    EXPECT_EQ(sim.canaryWeight, 100);
    EXPECT_EQ(sim.targetReplicas, 3);
    EXPECT_TRUE(sim.status.targetKeptServing);
    EXPECT_EQ(sim.status.lastPromotedSpec, "rev1");
    EXPECT_THAT(sim.eventMessages(),
                Contains("Promotion failed: app-primary not ready within 600s (0/3 replicas "
                         "ready); traffic stays on app"));
    EXPECT_EQ(sim.callsOf(WebhookType::PostRollout), 1);

    // Nothing moves while the primary stays broken...
    for (int i = 0; i < 5; ++i) sim.next();
    EXPECT_EQ(sim.canaryWeight, 100);
    // ...and traffic returns to it once it is ready.
    sim.primaryHealthy = true;
    auto d = sim.next();
    EXPECT_THAT(described(d.actions), Contains("SetWeights(primary=100, canary=0)"));
    EXPECT_THAT(described(d.actions), Contains("ScaleTarget(0)"));
    EXPECT_EQ(sim.status.phase, Phase::Failed);
    EXPECT_FALSE(sim.status.targetKeptServing);
}

TEST(CanaryEngineSafety, RollbackNeverScalesDownTheOnlyReadyVersion) {
    Sim sim(makeSpec({{"stepWeight", 10}, {"metrics", {successRate()}}, {"threshold", 1}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    sim.primaryHealthy = false;
    sim.metricOverride["request-success-rate"] = MetricResult::measured(10);
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed));
    ASSERT_EQ(sim.status.phase, Phase::Failed);
    EXPECT_THAT(described(sim.last.actions), Contains("SetWeights(primary=0, canary=100)"));
    EXPECT_THAT(described(sim.last.actions), Not(Contains("ScaleTarget(0)")));
    EXPECT_EQ(sim.targetReplicas, 3);
    EXPECT_TRUE(sim.status.targetKeptServing);
    EXPECT_THAT(sim.eventMessages(),
                Contains("Canary failed! app-primary is not ready, so app stays up and serving"));

    sim.primaryHealthy = true;
    sim.next();
    EXPECT_EQ(sim.primaryWeight, 100);
    EXPECT_EQ(sim.targetReplicas, 0);
}

TEST(CanaryEngineSafety, AnalysisHaltsWhileThePrimaryIsNotReady) {
    Sim sim(makeSpec({{"stepWeight", 10}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    sim.primaryHealthy = false;
    sim.clock.advance(1h);
    for (int i = 0; i < 10; ++i) sim.next();
    EXPECT_EQ(sim.status.canaryWeight, 10);
    EXPECT_THAT(sim.conditionMessage(), HasSubstr("app-primary is not ready"));
    EXPECT_EQ(std::count_if(sim.events.begin(), sim.events.end(),
                            [](const Event& e) { return e.reason == "PrimaryNotReady"; }),
              1);  // reported once, not at every poll
}

// --- blue-green, skipAnalysis -----------------------------------------------------------------

TEST(CanaryEngineBlueGreen, RunsIterationsAtWeightZeroThenSwitches) {
    Sim sim(exampleSpec("blue-green.yaml"));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Promoting));
    EXPECT_EQ(sim.status.iterations, 10);
    // No traffic moved during analysis; then all of it at once.
    EXPECT_THAT(canaryWeightsOf(sim), ElementsAre(100));
    EXPECT_EQ(sim.callsOf(WebhookType::PreRollout), 1);
    EXPECT_EQ(sim.callsOf(WebhookType::ConfirmPromotion), 1);
    EXPECT_EQ(sim.metricRuns, 10);
    EXPECT_THAT(sim.eventMessages(), Contains("Advance ml-platform canary iteration 9/10"));
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_THAT(canaryWeightsOf(sim), ElementsAre(100, 0));
    EXPECT_EQ(sim.primaryHash, "rev2");
}

TEST(CanaryEngineBlueGreen, FailedIterationsDoNotCountAndThresholdRollsBack) {
    Sim sim(exampleSpec("blue-green.yaml"));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.iterations == 3; }));
    sim.metricOverride["request-success-rate"] = MetricResult::measured(95);
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed));
    EXPECT_EQ(sim.status.iterations, 3);
    EXPECT_EQ(sim.status.failedChecks, 2);
    EXPECT_THAT(sim.eventMessages(),
                Contains("Rolling back ml-platform failed checks threshold reached 2"));
}

// --- A/B testing and mirroring ----------------------------------------------------------------

json insiderMatch() {
    return json::array({{{"headers", {{"x-canary", {{"exact", "insider"}}}}}}});
}

std::vector<std::string> weightActions(const Sim& sim) {
    std::vector<std::string> out;
    for (const std::string& line : sim.log)
        if (line.rfind("SetWeights", 0) == 0) out.push_back(line);
    return out;
}

TEST(CanaryEngineABTesting, MatchedRequestsReachTheCanaryDuringTheIterationsThenPromotion) {
    Sim sim(makeSpec({{"iterations", 3}, {"match", insiderMatch()}, {"metrics", {successRate()}}}));
    ASSERT_TRUE(sim.spec.abTesting());
    sim.initializeThenDeploy();
    // The first iteration only routes the matched requests to the canary (0/100 is the split of
    // the matched requests; the rest stays on the primary): nothing to judge yet.
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 100; }));
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_EQ(sim.metricRuns, 0);
    EXPECT_EQ(sim.callsOf(WebhookType::PreRollout), 0);  // none defined; checked, not called
    EXPECT_EQ(sim.status.iterations, 1);
    EXPECT_THAT(sim.eventMessages(),
                Contains("Advance app canary iteration 1/3: routing requests that match "
                         "analysis.match to app"));
    // Then `iterations` analysed iterations with the matched requests on the canary.
    ASSERT_TRUE(sim.runUntilPhase(Phase::Promoting));
    EXPECT_EQ(sim.metricRuns, 3);
    EXPECT_EQ(sim.status.iterations, 3);
    EXPECT_THAT(weightActions(sim), ElementsAre("SetWeights(primary=0, canary=100)",
                                                "SetWeights(primary=0, canary=100)"));
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    // After the promotion every request goes to the primary again.
    EXPECT_THAT(canaryWeightsOf(sim), ElementsAre(100, 100, 0));
    EXPECT_EQ(sim.primaryHash, "rev2");
    EXPECT_EQ(sim.targetReplicas, 0);
}

TEST(CanaryEngineABTesting, FailingMatchedTrafficRollsBackToThePrimaryOnly) {
    Sim sim(makeSpec({{"iterations", 5}, {"match", insiderMatch()}, {"metrics", {successRate()}}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.iterations == 2; }));
    EXPECT_EQ(sim.canaryWeight, 100);
    sim.metricOverride["request-success-rate"] = MetricResult::measured(90);
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed));
    EXPECT_EQ(sim.status.failedChecks, 3);
    EXPECT_EQ(sim.primaryWeight, 100);
    EXPECT_EQ(sim.canaryWeight, 0);
    EXPECT_EQ(sim.status.canaryWeight, 0);
    EXPECT_EQ(sim.primaryHash, "rev1");
}

TEST(CanaryEngineABTesting, ANewRevisionMidAnalysisTakesTheMatchedRequestsBackFirst) {
    Sim sim(makeSpec({{"iterations", 5}, {"match", insiderMatch()}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.iterations == 2; }));
    sim.clearRecords();
    sim.targetHash = "rev3";
    sim.next();
    EXPECT_THAT(weightActions(sim), ElementsAre("SetWeights(primary=100, canary=0)"));
    EXPECT_EQ(sim.status.iterations, 0);
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 100; }));
    EXPECT_EQ(sim.status.iterations, 1);
}

TEST(CanaryEngineABTesting, MirrorIsIgnoredAsFlaggerDoes) {
    Sim sim(makeSpec({{"iterations", 2}, {"match", insiderMatch()}, {"mirror", true}}));
    EXPECT_FALSE(sim.spec.mirrors());
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    for (const std::string& line : weightActions(sim)) EXPECT_THAT(line, Not(HasSubstr("mirror")));
}

TEST(CanaryEngineMirror, BlueGreenMirrorsDuringTheIterationsThenSwitches) {
    Sim sim(makeSpec(
        {{"iterations", 3}, {"mirror", true}, {"mirrorWeight", 50}, {"metrics", {successRate()}}}));
    sim.initializeThenDeploy();
    EXPECT_FALSE(mirrorsTraffic(sim.spec, sim.status));
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.iterations == 1; }));
    // The first iteration starts the mirroring without judging the (still empty) metrics.
    EXPECT_EQ(sim.metricRuns, 0);
    EXPECT_THAT(weightActions(sim), ElementsAre("SetWeights(primary=100, canary=0, mirror)"));
    EXPECT_THAT(sim.eventMessages(),
                Contains("Advance app canary iteration 1/3: mirroring 50% of the requests to "
                         "app, answered by app-primary"));
    EXPECT_TRUE(mirrorsTraffic(sim.spec, sim.status));
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.iterations == 2; }));
    EXPECT_TRUE(mirrorsTraffic(sim.spec, sim.status));
    ASSERT_TRUE(sim.runUntilPhase(Phase::Promoting));
    EXPECT_EQ(sim.metricRuns, 3);
    EXPECT_FALSE(mirrorsTraffic(sim.spec, sim.status));
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_THAT(weightActions(sim), ElementsAre("SetWeights(primary=100, canary=0, mirror)",
                                                "SetWeights(primary=0, canary=100)",
                                                "SetWeights(primary=100, canary=0)"));
    EXPECT_FALSE(mirrorsTraffic(sim.spec, sim.status));
}

TEST(CanaryEngineMirror, BlueGreenRollbackStopsTheMirroring) {
    Sim sim(makeSpec({{"iterations", 5}, {"mirror", true}, {"metrics", {successRate()}}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.iterations == 2; }));
    sim.metricOverride["request-success-rate"] = MetricResult::measured(90);
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed));
    EXPECT_EQ(weightActions(sim).back(), "SetWeights(primary=100, canary=0)");
    EXPECT_FALSE(mirrorsTraffic(sim.spec, sim.status));
}

TEST(CanaryEngineMirror, ProgressiveCanaryMirrorsOneStepBeforeTheFirstWeight) {
    Sim sim(makeSpec({{"stepWeight", 25}, {"mirror", true}, {"metrics", {successRate()}}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 25; }));
    // Weight 0 with no traffic (no metrics), weight 0 mirrored (judged), then 25.
    EXPECT_EQ(sim.metricRuns, 1);
    EXPECT_THAT(weightActions(sim), ElementsAre("SetWeights(primary=100, canary=0, mirror)",
                                                "SetWeights(primary=75, canary=25)"));
    EXPECT_FALSE(mirrorsTraffic(sim.spec, sim.status));
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_THAT(canaryWeightsOf(sim), ElementsAre(0, 25, 50, 100, 0));
}

TEST(CanaryEngineSkipAnalysis, PromotesAsSoonAsTheNewRevisionIsReady) {
    Sim sim(makeSpec(
        {{"stepWeight", 10}, {"metrics", {successRate()}}, {"webhooks", {hook("load", "rollout")}}},
        {{"skipAnalysis", true}}));
    sim.initializeThenDeploy();
    sim.targetHealthy = false;
    sim.next();
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    sim.targetHealthy = true;
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_EQ(sim.metricRuns, 0);
    EXPECT_EQ(sim.callsOf(WebhookType::Rollout), 0);
    EXPECT_THAT(canaryWeightsOf(sim), ElementsAre(100, 0));
    EXPECT_EQ(sim.primaryHash, "rev2");
    EXPECT_THAT(sim.eventMessages(), Contains(HasSubstr("Canary analysis skipped for app")));
}

// --- post-rollout and event webhooks ----------------------------------------------------------

TEST(CanaryEngineHooks, PostRolloutRunsOnceAfterSucceeded) {
    Sim sim(makeSpec({{"stepWeight", 50}, {"webhooks", {hook("notify", "post-rollout")}}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_EQ(sim.callsOf(WebhookType::PostRollout), 1);
    EXPECT_EQ(sim.hookCalls.back(), WebhookType::PostRollout);
    for (int i = 0; i < 5; ++i) sim.next();
    EXPECT_EQ(sim.callsOf(WebhookType::PostRollout), 1);
}

TEST(CanaryEngineHooks, PostRolloutRunsOnceAfterFailed) {
    Sim sim(makeSpec({{"stepWeight", 50},
                      {"threshold", 1},
                      {"webhooks", {hook("notify", "post-rollout"), hook("load", "rollout")}}}));
    sim.hookOutcome["load"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed));
    EXPECT_EQ(sim.callsOf(WebhookType::PostRollout), 1);
    for (int i = 0; i < 5; ++i) sim.next();
    EXPECT_EQ(sim.callsOf(WebhookType::PostRollout), 1);
}

TEST(CanaryEngineHooks, EventWebhooksReceiveEveryEvent) {
    Sim sim(makeSpec({{"stepWeight", 50}, {"webhooks", {hook("slack", "event")}}}));
    int emitted = 0;
    int delivered = 0;
    ASSERT_TRUE(sim.runUntil([&] {
        const auto& actions = sim.last.actions;
        for (size_t i = 0; i < actions.size(); ++i) {
            auto* emit = std::get_if<action::EmitEvent>(&actions[i]);
            if (emit == nullptr) continue;
            ++emitted;
            const action::CallWebhooks* call =
                i + 1 < actions.size() ? std::get_if<action::CallWebhooks>(&actions[i + 1])
                                       : nullptr;
            if (call != nullptr && call->type == WebhookType::Event && call->event == emit->event) {
                ++delivered;
            }
        }
        if (sim.status.phase == Phase::Initialized) sim.targetHash = "rev2";
        return sim.status.phase == Phase::Succeeded;
    }));
    EXPECT_GE(emitted, 6);
    EXPECT_EQ(delivered, emitted);
}

// --- restart survival -------------------------------------------------------------------------

// A scenario with gates, failures, missing data and a promotion, scripted by round number.
void runEventfulScenario(Sim& sim) {
    sim.hookOutcome["approve"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    for (int i = 0; i < 400 && sim.status.phase != Phase::Succeeded; ++i) {
        if (i == 5) sim.hookOutcome["approve"] = WebhookOutcome::Succeeded;
        if (i == 14) sim.metricOverride["request-success-rate"] = MetricResult::measured(80);
        if (i == 18) sim.metricOverride["request-success-rate"] = MetricResult::noData("empty");
        if (i == 24) sim.metricOverride.clear();
        if (i == 26) sim.hookOutcome["more"] = WebhookOutcome::Failed;
        if (i == 32) sim.hookOutcome["more"] = WebhookOutcome::Succeeded;
        sim.next();
    }
}

CanarySpec eventfulSpec() {
    return makeSpec({{"stepWeight", 10},
                     {"threshold", 5},
                     {"metrics", {successRate()}},
                     {"webhooks",
                      {hook("approve", "confirm-rollout"), hook("more", "confirm-traffic-increase"),
                       hook("load", "rollout"), hook("notify", "post-rollout")}}});
}

TEST(CanaryEngineRestart, StatusJsonRoundTripEveryRoundChangesNothing) {
    Sim uninterrupted(eventfulSpec());
    runEventfulScenario(uninterrupted);
    ASSERT_EQ(uninterrupted.status.phase, Phase::Succeeded);
    EXPECT_GT(uninterrupted.status.failedChecks, 0);
    EXPECT_THAT(uninterrupted.eventMessages(), Contains(HasSubstr("no metric data")));
    EXPECT_THAT(uninterrupted.eventMessages(), Contains(HasSubstr("confirm-traffic-increase")));

    Sim restarted(eventfulSpec());
    restarted.persistThroughJson = true;
    runEventfulScenario(restarted);
    EXPECT_EQ(restarted.log, uninterrupted.log);
    EXPECT_EQ(restarted.status, uninterrupted.status);
}

TEST(CanaryEngineRestart, NewControllerContinuesFromSerialisedStatus) {
    Sim first(makeSpec({{"stepWeight", 10}, {"metrics", {successRate()}}}));
    first.initializeThenDeploy();
    first.metricOverride["request-success-rate"] = MetricResult::measured(1);
    ASSERT_TRUE(first.runUntil([&] { return first.status.canaryWeight == 10; }));
    ASSERT_TRUE(first.runUntil([&] { return first.status.failedChecks == 2; }));
    std::string stored = toJson(first.status).dump();

    // A new controller process: only the status and the cluster survive. Results requested by
    // the old process are lost.
    Sim second(first.spec);
    second.status = parseCanaryStatus(json::parse(stored)).status;
    second.clock.advance(first.clock.wallNow() - second.clock.wallNow());
    second.targetHash = first.targetHash;
    second.primaryExists = true;
    second.primaryHash = first.primaryHash;
    second.targetReplicas = first.targetReplicas;
    second.metricOverride = first.metricOverride;
    second.round();
    EXPECT_EQ(second.status.failedChecks, 2);
    EXPECT_EQ(second.status.canaryWeight, 10);
    ASSERT_TRUE(second.runUntilPhase(Phase::Failed));
    EXPECT_EQ(second.status.failedChecks, 3);
    EXPECT_THAT(second.eventMessages(),
                Contains("Rolling back app failed checks threshold reached 3"));
}

TEST(CanaryEngineRestart, PacingSurvivesRestart) {
    Sim sim(makeSpec({{"stepWeight", 10}, {"interval", "10m"}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    CanaryStatus restored = parseCanaryStatus(json::parse(toJson(sim.status).dump())).status;
    sim.clock.advance(5min);
    Decision d = step(sim.spec, restored, sim.observe(), sim.clock.wallNow());
    EXPECT_THAT(d.actions, IsEmpty());
    EXPECT_EQ(d.requeueAfter, 300s);
}

// --- manual requests (kubectl sluice canary promote|abort|retry) ------------------------------

// A request made now on the Sim's clock (later than any transition so far, once a second passed).
ManualRequest requestNow(Sim& sim, ManualAction action) {
    sim.clock.advance(1s);
    Time at = sim.clock.wallNow();
    return ManualRequest{action, at, formatTimestamp(at)};
}

int countReason(const Sim& sim, const std::string& reason) {
    return static_cast<int>(std::count_if(sim.events.begin(), sim.events.end(),
                                          [&](const Event& e) { return e.reason == reason; }));
}

std::vector<std::string> logSince(const Sim& sim, size_t start) {
    return {sim.log.begin() + static_cast<long>(start), sim.log.end()};
}

TEST(CanaryEngineManual, PromoteSkipsTheRemainingStepsAndChecks) {
    Sim sim(makeSpec({{"stepWeight", 10}, {"metrics", {successRate()}}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 20; }));
    sim.requests.push_back(requestNow(sim, ManualAction::Promote));
    const std::string value = sim.requests.back().value;
    const size_t start = sim.log.size();
    const int runs = sim.metricRuns;
    auto d = sim.round();
    EXPECT_THAT(d.removeRequests, ElementsAre(ManualAction::Promote));
    EXPECT_TRUE(sim.requests.empty());
    EXPECT_EQ(sim.status.phase, Phase::Promoting);
    EXPECT_THAT(described(d.actions),
                Contains("EmitEvent(Normal, PromotionRequested, Manual promotion "
                         "(sluice.io/promote=" +
                         value +
                         "): promoting app without further analysis once it and app-primary "
                         "are ready)"));
    EXPECT_THAT(described(d.actions), Contains("CopyTargetToPrimary(rev2)"));
    EXPECT_THAT(sim.conditionMessage(), HasSubstr("Manual promotion (sluice.io/promote=" + value));
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_EQ(sim.primaryHash, "rev2");
    EXPECT_EQ(sim.status.lastPromotedSpec, "rev2");
    EXPECT_EQ(sim.metricRuns, runs);  // no further analysis
    // Straight from weight 20 to the promotion: all traffic on the ready canary while the
    // primary rolls out, then back to the primary.
    std::vector<std::string> after = logSince(sim, start);
    EXPECT_THAT(after, Not(Contains(HasSubstr("canary=30"))));
    EXPECT_EQ(sim.weightChanges.back(), std::make_pair(100, 0));
    EXPECT_FALSE(sim.status.manualPromotionRequested);
}

TEST(CanaryEngineManual, PromoteBypassesAClosedConfirmPromotionGate) {
    Sim sim(makeSpec({{"stepWeight", 50}, {"webhooks", {hook("promote", "confirm-promotion")}}}));
    sim.hookOutcome["promote"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::WaitingPromotion));
    sim.requests.push_back(requestNow(sim, ManualAction::Promote));
    sim.round();
    EXPECT_EQ(sim.status.phase, Phase::Promoting);
    EXPECT_TRUE(sim.status.gateWaitingSince.empty());
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_EQ(sim.primaryHash, "rev2");
}

TEST(CanaryEngineManual, PromoteWhileWaitingScalesUpAndPromotesOnlyOnceTheCanaryIsReady) {
    Sim sim(makeSpec({{"stepWeight", 10},
                      {"metrics", {successRate()}},
                      {"webhooks", {hook("approve", "confirm-rollout")}}}));
    sim.hookOutcome["approve"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Waiting));
    ASSERT_EQ(sim.targetReplicas, 0);
    sim.targetHealthy = false;  // its pods take a while
    sim.requests.push_back(requestNow(sim, ManualAction::Promote));
    auto d = sim.round();
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_THAT(described(d.actions), Contains("ScaleTarget(3)"));
    EXPECT_THAT(described(d.actions), Not(Contains(HasSubstr("CopyTargetToPrimary"))));
    ASSERT_TRUE(sim.status.manualPromotionRequested);
    for (int i = 0; i < 5; ++i) sim.next();
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_EQ(sim.canaryWeight, 0) << "no traffic to a canary that is not ready";
    EXPECT_THAT(sim.log, Not(Contains(HasSubstr("CopyTargetToPrimary(rev2)"))));

    sim.targetHealthy = true;
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_EQ(sim.primaryHash, "rev2");
    EXPECT_EQ(sim.metricRuns, 0);
    EXPECT_EQ(sim.callsOf(WebhookType::ConfirmRollout), 1);
}

TEST(CanaryEngineManual, PromoteNeverStartsOnAPrimaryThatIsNotReady) {
    Sim sim(makeSpec({{"stepWeight", 10}}));
    sim.persistThroughJson = true;  // the request being carried out survives a restart
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    sim.primaryHealthy = false;
    sim.requests.push_back(requestNow(sim, ManualAction::Promote));
    ManualRequest request = sim.requests.back();
    for (int i = 0; i < 10; ++i) sim.next();
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_EQ(sim.canaryWeight, 10);
    EXPECT_THAT(sim.log, Not(Contains(HasSubstr("CopyTargetToPrimary"))));
    EXPECT_THAT(sim.conditionMessage(),
                HasSubstr("Manual promotion (sluice.io/promote=" + request.value +
                          ") held: app-primary is not ready (0/3 replicas ready)"));
    EXPECT_EQ(countReason(sim, "PrimaryNotReady"), 1);

    // The same annotation seen again (a cache that lags behind its removal) is not a second
    // request.
    sim.requests.push_back(request);
    auto d = sim.next();
    EXPECT_THAT(d.removeRequests, ElementsAre(ManualAction::Promote));
    EXPECT_EQ(countReason(sim, "PromotionRequested"), 1);

    sim.primaryHealthy = true;
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_EQ(sim.primaryHash, "rev2");
}

TEST(CanaryEngineManual, StaleRequestsAreOnlyRemoved) {
    Sim sim(makeSpec({{"stepWeight", 10}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    // Made in the second of the last transition (the start of this analysis) or before it.
    const Time transition = *sim.status.lastTransitionTime;
    sim.requests.push_back(
        {ManualAction::Promote, transition + 500ms, formatTimestamp(transition)});
    sim.requests.push_back(
        {ManualAction::Abort, transition - 1h, formatTimestamp(transition - 1h)});
    sim.clearRecords();
    auto d = sim.next();
    EXPECT_THAT(d.removeRequests, ElementsAre(ManualAction::Promote, ManualAction::Abort));
    EXPECT_TRUE(sim.requests.empty());
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_FALSE(sim.status.manualPromotionRequested);
    EXPECT_EQ(countReason(sim, "PromotionRequested") + countReason(sim, "RequestRefused") +
                  countReason(sim, "RollingBack"),
              0);
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 30; }));
}

TEST(CanaryEngineManual, AbortRollsBackLikeTheRollbackWebhook) {
    Sim sim(makeSpec({{"stepWeight", 10}, {"webhooks", {hook("notify", "post-rollout")}}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 30; }));
    sim.requests.push_back(requestNow(sim, ManualAction::Abort));
    const std::string value = sim.requests.back().value;
    auto d = sim.round();
    EXPECT_THAT(d.removeRequests, ElementsAre(ManualAction::Abort));
    EXPECT_EQ(sim.status.phase, Phase::Failed);
    EXPECT_THAT(described(d.actions), Contains("SetWeights(primary=100, canary=0)"));
    EXPECT_THAT(described(d.actions), Contains("ScaleTarget(0)"));
    EXPECT_THAT(sim.eventMessages(),
                Contains("Rolling back app: manual abort (sluice.io/abort=" + value + ")"));
    EXPECT_EQ(sim.conditionMessage(),
              "Rolling back app: manual abort (sluice.io/abort=" + value + ")");
    EXPECT_EQ(sim.status.condition(kPromotedCondition)->status, "False");
    EXPECT_EQ(sim.status.failedChecks, 0);
    EXPECT_EQ(sim.callsOf(WebhookType::PostRollout), 1);
    EXPECT_EQ(sim.primaryHash, "rev1");
    // The aborted revision is not analysed again; a new one is.
    for (int i = 0; i < 5; ++i) sim.next();
    EXPECT_EQ(sim.status.phase, Phase::Failed);
    EXPECT_EQ(sim.targetReplicas, 0);
    sim.targetHash = "rev3";
    sim.next();
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
}

TEST(CanaryEngineManual, AbortWhilePromotingKeepsTheOnlyReadyVersionServing) {
    Sim sim(makeSpec({{"stepWeight", 50}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Promoting));
    sim.primaryHealthy = false;  // rolling out the new template
    sim.next();
    ASSERT_EQ(sim.status.phase, Phase::Promoting);
    sim.requests.push_back(requestNow(sim, ManualAction::Abort));
    const size_t start = sim.log.size();
    sim.round();
    EXPECT_EQ(sim.status.phase, Phase::Failed);
    EXPECT_TRUE(sim.status.targetKeptServing);
    EXPECT_THAT(logSince(sim, start), Not(Contains("ScaleTarget(0)")));
    EXPECT_THAT(logSince(sim, start), Not(Contains(HasSubstr("SetWeights(primary=100"))));
    EXPECT_EQ(sim.canaryWeight, 100);
    EXPECT_EQ(sim.targetReplicas, 3);
}

TEST(CanaryEngineManual, AbortWhileWaitingForApproval) {
    Sim sim(makeSpec({{"stepWeight", 10}, {"webhooks", {hook("approve", "confirm-rollout")}}}));
    sim.hookOutcome["approve"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Waiting));
    sim.requests.push_back(requestNow(sim, ManualAction::Abort));
    sim.round();
    EXPECT_EQ(sim.status.phase, Phase::Failed);
    EXPECT_EQ(sim.targetReplicas, 0);
    EXPECT_EQ(sim.primaryWeight, 100);
}

TEST(CanaryEngineManual, RetryAnalysesTheFailedRevisionAgain) {
    Sim sim(makeSpec({{"stepWeight", 25}, {"threshold", 2}, {"metrics", {successRate()}}}));
    sim.initializeThenDeploy();
    sim.metricOverride["request-success-rate"] = MetricResult::measured(90);
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed));
    ASSERT_EQ(sim.status.failedChecks, 2);
    for (int i = 0; i < 3; ++i) sim.next();
    ASSERT_EQ(sim.status.phase, Phase::Failed);
    ASSERT_EQ(sim.targetReplicas, 0);

    sim.metricOverride.clear();  // the dependency that failed is fixed
    sim.requests.push_back(requestNow(sim, ManualAction::Retry));
    const std::string value = sim.requests.back().value;
    auto d = sim.round();
    EXPECT_THAT(d.removeRequests, ElementsAre(ManualAction::Retry));
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_EQ(sim.status.failedChecks, 0);
    EXPECT_EQ(sim.status.iterations, 0);
    EXPECT_EQ(sim.status.lastAppliedSpec, "rev2");
    EXPECT_THAT(described(d.actions), Contains("ScaleTarget(3)"));
    EXPECT_THAT(sim.eventMessages(), Contains("Manual retry (sluice.io/retry=" + value +
                                              "): restarting the analysis of app"));
    EXPECT_EQ(sim.status.lastTransitionTime,
              std::chrono::floor<std::chrono::seconds>(sim.clock.wallNow()));
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_EQ(sim.primaryHash, "rev2");
}

TEST(CanaryEngineManual, RequestsOutsideTheirPhasesAreRefusedWithAWarning) {
    Sim sim(makeSpec({{"stepWeight", 10}}));
    ASSERT_TRUE(sim.runUntilPhase(Phase::Initialized));
    sim.requests.push_back(requestNow(sim, ManualAction::Abort));
    const std::string value = sim.requests.back().value;
    auto d = sim.round();
    EXPECT_THAT(d.removeRequests, ElementsAre(ManualAction::Abort));
    EXPECT_THAT(described(d.actions),
                Contains("EmitEvent(Warning, RequestRefused, sluice.io/abort=" + value +
                         " refused: abort applies only in phase Progressing, Waiting, "
                         "WaitingPromotion or Promoting, not in phase Initialized)"));
    EXPECT_EQ(sim.status.phase, Phase::Initialized);

    sim.targetHash = "rev2";
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    sim.requests.push_back(requestNow(sim, ManualAction::Retry));
    sim.requests.push_back({ManualAction::Promote, std::nullopt, "yesterday"});
    sim.clearRecords();
    d = sim.round();
    EXPECT_THAT(d.removeRequests,
                ::testing::UnorderedElementsAre(ManualAction::Retry, ManualAction::Promote));
    EXPECT_THAT(sim.eventMessages(),
                Contains(HasSubstr("refused: retry applies only in phase Failed, not in phase "
                                   "Progressing")));
    EXPECT_THAT(sim.eventMessages(),
                Contains("sluice.io/promote=yesterday refused: the value is not an RFC 3339 "
                         "time"));
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_EQ(sim.status.canaryWeight, 10);
    EXPECT_FALSE(sim.status.manualPromotionRequested);
}

TEST(CanaryEngineManual, AbortTakesPrecedenceOverPromote) {
    Sim sim(makeSpec({{"stepWeight", 10}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    sim.requests.push_back(requestNow(sim, ManualAction::Promote));
    sim.requests.push_back(requestNow(sim, ManualAction::Abort));
    auto d = sim.round();
    EXPECT_THAT(d.removeRequests,
                ::testing::UnorderedElementsAre(ManualAction::Promote, ManualAction::Abort));
    EXPECT_EQ(sim.status.phase, Phase::Failed);
    EXPECT_THAT(sim.eventMessages(),
                Contains(HasSubstr("refused: superseded by sluice.io/abort=")));
    EXPECT_THAT(sim.log, Not(Contains(HasSubstr("CopyTargetToPrimary(rev2)"))));
}

TEST(CanaryEngineManual, PromoteOfARevisionThatChangedIsRefused) {
    Sim sim(makeSpec({{"stepWeight", 10}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    sim.targetHash = "rev3";
    sim.requests.push_back(requestNow(sim, ManualAction::Promote));
    sim.round();
    EXPECT_THAT(sim.eventMessages(),
                Contains(HasSubstr("refused: app changed since its analysis started")));
    EXPECT_EQ(sim.status.phase, Phase::Progressing);
    EXPECT_EQ(sim.status.lastAppliedSpec, "rev3");
    EXPECT_FALSE(sim.status.manualPromotionRequested);
}

TEST(CanaryEngineManual, RequestsWaitWhileTheTargetIsMissing) {
    Sim sim(makeSpec({{"stepWeight", 10}}));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    sim.requests.push_back(requestNow(sim, ManualAction::Abort));
    Observation o = sim.observe();
    o.target = {};
    Decision d = step(sim.spec, sim.status, o, sim.clock.wallNow());
    EXPECT_THAT(d.removeRequests, IsEmpty());
    EXPECT_EQ(d.status.phase, Phase::Progressing);
}

// --- invalid spec -----------------------------------------------------------------------------

TEST(CanaryEngineInvalidSpec, ReportsErrorsWithoutMovingAnything) {
    CanaryStatus status;
    status.phase = Phase::Progressing;
    status.canaryWeight = 30;
    Time now = *parseTimestamp("2026-01-01T00:00:00Z");
    Decision d = rejectInvalidSpec(status, {"spec.analysis.maxWeight: too big"}, now);
    EXPECT_THAT(described(d.actions), ElementsAre("EmitEvent(Warning, InvalidSpec, Invalid spec: "
                                                  "spec.analysis.maxWeight: too big)"));
    EXPECT_EQ(d.status.phase, Phase::Progressing);
    EXPECT_EQ(d.status.canaryWeight, 30);
    EXPECT_EQ(d.status.condition(kPromotedCondition)->message,
              "Invalid spec: spec.analysis.maxWeight: too big");
    // Same errors again: no repeated event.
    EXPECT_THAT(rejectInvalidSpec(d.status, {"spec.analysis.maxWeight: too big"}, now).actions,
                IsEmpty());
}

TEST(CanaryEngineInvalidSpec, ANewCanaryGetsAConditionAndOneEventPerErrorText) {
    Sim sim(makeSpec({{"stepWeight", 10}}));
    CanaryStatus status;  // never initialised: no phase
    const Time now = std::chrono::floor<std::chrono::seconds>(sim.clock.wallNow());
    Decision d = rejectInvalidSpec(status, {"spec.provider: unknown provider \"x\""}, now);
    EXPECT_THAT(described(d.actions),
                ElementsAre("EmitEvent(Warning, InvalidSpec, Invalid spec: spec.provider: "
                            "unknown provider \"x\")"));
    EXPECT_EQ(d.status.phase, Phase::None);
    const Condition* c = d.status.condition(kPromotedCondition);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->status, "False");
    EXPECT_EQ(c->reason, "InvalidSpec");
    EXPECT_EQ(c->message, "Invalid spec: spec.provider: unknown provider \"x\"");
    EXPECT_EQ(c->lastTransitionTime, now);

    // Through JSON (as the controller writes and re-reads it), later reconciles with the same
    // errors: no new event, the status does not change.
    auto reread = parseCanaryStatus(json::parse(toJson(d.status).dump()));
    ASSERT_TRUE(reread.errors.empty());
    EXPECT_EQ(json::parse(toJson(d.status).dump()).value("phase", "?"), "");
    Decision again =
        rejectInvalidSpec(reread.status, {"spec.provider: unknown provider \"x\""}, now + 5min);
    EXPECT_THAT(again.actions, IsEmpty());
    EXPECT_EQ(again.status, reread.status);

    // Different errors: one new event, the condition says so.
    Decision other = rejectInvalidSpec(again.status, {"spec.service.port: required"}, now + 6min);
    EXPECT_THAT(described(other.actions),
                ElementsAre("EmitEvent(Warning, InvalidSpec, Invalid spec: spec.service.port: "
                            "required)"));
    EXPECT_EQ(other.status.condition(kPromotedCondition)->message,
              "Invalid spec: spec.service.port: required");
    EXPECT_EQ(other.status.condition(kPromotedCondition)->lastTransitionTime, now);

    // Fixed: the Canary initialises and the condition follows its phase.
    sim.status = other.status;
    sim.clock.advance(7min);
    ASSERT_TRUE(sim.runUntilPhase(Phase::Initialized));
    EXPECT_EQ(sim.status.condition(kPromotedCondition)->status, "True");
    EXPECT_EQ(sim.status.condition(kPromotedCondition)->reason, "Initialized");
    EXPECT_EQ(sim.status.conditions.size(), 1u);
}

TEST(CanaryEngineInvalidSpec, AnInitialisedCanaryKeepsItsPhaseWithReasonInvalidSpec) {
    Sim sim(makeSpec({{"stepWeight", 10}}));
    ASSERT_TRUE(sim.runUntilPhase(Phase::Initialized));
    Decision d = rejectInvalidSpec(sim.status, {"spec.analysis: bad"}, sim.clock.wallNow());
    EXPECT_EQ(d.status.phase, Phase::Initialized);
    EXPECT_EQ(d.status.condition(kPromotedCondition)->status, "True");
    EXPECT_EQ(d.status.condition(kPromotedCondition)->reason, "InvalidSpec");
}

}  // namespace
}  // namespace sluice::canaryengine

// --- alerts (alerts.h) -------------------------------------------------------------------------

namespace sluice::canaryengine {
namespace {

std::vector<std::string> alertSummaries(const std::vector<AlertMessage>& alerts) {
    std::vector<std::string> out;
    for (const AlertMessage& a : alerts)
        out.push_back(std::string(toString(a.severity)) + " " + a.title);
    return out;
}

std::string fieldOf(const AlertMessage& a, const std::string& name) {
    for (const auto& [k, v] : a.fields)
        if (k == name) return v;
    return "";
}

TEST(CanaryAlerts, ASuccessfulRunAlertsInfoForInitRevisionAndPromotionButNotForWeightSteps) {
    Sim sim(makeSpec({{"stepWeight", 10}, {"metrics", {successRate()}}}));
    ASSERT_TRUE(sim.runUntilPhase(Phase::Initialized));
    EXPECT_THAT(alertSummaries(sim.alerts), ElementsAre("info Canary app.test initialized"));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::Succeeded));
    EXPECT_THAT(alertSummaries(sim.alerts),
                ElementsAre("info Canary app.test new revision", "info Canary app.test promoted"));
    const AlertMessage& revision = sim.alerts[0];
    EXPECT_EQ(revision.text, "New revision detected! Scaling up app");
    EXPECT_EQ(fieldOf(revision, "Target"), "Deployment/app.test");
    EXPECT_EQ(fieldOf(revision, "Revision"), "app=app:2");
    EXPECT_EQ(fieldOf(revision, "Failed checks threshold"), "3");
    EXPECT_EQ(fieldOf(revision, "Traffic routing"), "weight step 10, max 50");
    EXPECT_THAT(sim.alerts[1].text, HasSubstr("Promotion completed! Scaling down app"));
    for (const AlertMessage& a : sim.alerts) EXPECT_EQ(a.text.find("http"), std::string::npos);
}

TEST(CanaryAlerts, AThresholdRollbackIsOneErrorNamingTheMetricValueAndThreshold) {
    Sim sim(exampleSpec("canary.yaml"));
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 20; }));
    sim.metricOverride["request-success-rate"] = MetricResult::measured(87.5);
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed));
    std::vector<AlertMessage> errors;
    for (const AlertMessage& a : sim.alerts)
        if (a.severity == AlertSeverity::Error) errors.push_back(a);
    ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(alertSummaries(sim.alerts));
    EXPECT_EQ(errors[0].title, "Canary app.test rolled back");
    EXPECT_THAT(errors[0].text,
                HasSubstr("Rolling back campaign-service failed checks threshold reached 5"));
    EXPECT_THAT(errors[0].text, HasSubstr("Canary failed! Scaling down campaign-service"));
    EXPECT_EQ(fieldOf(errors[0], "Failed checks"),
              "Halt advancement: request-success-rate 87.5 < 99");
    EXPECT_EQ(fieldOf(errors[0], "Failed checks threshold"), "5");
    // Halts before the last one send nothing.
    EXPECT_THAT(alertSummaries(sim.alerts), ElementsAre("info Canary app.test new revision",
                                                        "error Canary app.test rolled back"));
}

TEST(CanaryAlerts, AGateAlertsWarnOnceWhenItStartsWaiting) {
    Sim sim(makeSpec({{"stepWeight", 50}, {"webhooks", {hook("promote", "confirm-promotion")}}}));
    sim.hookOutcome["promote"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::WaitingPromotion));
    for (int i = 0; i < 5; ++i) sim.next();
    EXPECT_THAT(alertSummaries(sim.alerts),
                ElementsAre("info Canary app.test new revision",
                            "warn Canary app.test is waiting for approval"));
    EXPECT_THAT(sim.alerts[1].text, HasSubstr("confirm-promotion promote"));
}

TEST(CanaryAlerts, MuteAlertSilencesTheGate) {
    json gate = hook("promote", "confirm-promotion");
    gate["muteAlert"] = true;
    Sim sim(makeSpec({{"stepWeight", 50}, {"webhooks", {gate}}}));
    sim.hookOutcome["promote"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntilPhase(Phase::WaitingPromotion));
    for (int i = 0; i < 3; ++i) sim.next();
    EXPECT_THAT(alertSummaries(sim.alerts), ElementsAre("info Canary app.test new revision"));
}

TEST(CanaryAlerts, AManualRollbackIsAWarningAndARestartToo) {
    Sim sim(makeSpec({{"stepWeight", 10}, {"webhooks", {hook("abort", "rollback")}}}));
    sim.hookOutcome["abort"] = WebhookOutcome::Failed;
    sim.initializeThenDeploy();
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 20; }));
    sim.targetHash = "rev3";
    ASSERT_TRUE(sim.runUntil([&] { return sim.status.canaryWeight == 10; }));
    sim.hookOutcome["abort"] = WebhookOutcome::Succeeded;
    ASSERT_TRUE(sim.runUntilPhase(Phase::Failed, 10));
    EXPECT_THAT(alertSummaries(sim.alerts),
                ElementsAre("info Canary app.test new revision",
                            "warn Canary app.test restarted: new revision",
                            "warn Canary app.test rolled back"));
    EXPECT_THAT(sim.alerts[2].text, HasSubstr("manual webhook invoked (abort)"));
}

TEST(CanaryAlerts, SubscriptionsGetTheirSeverityAndAbove) {
    CanarySpec spec = makeSpec(
        {{"stepWeight", 10},
         {"alerts",
          {{{"name", "all"}, {"severity", "info"}, {"providerRef", {{"name", "a"}}}},
           {{"name", "warnings"}, {"severity", "warn"}, {"providerRef", {{"name", "b"}}}},
           {{"name", "errors"}, {"severity", "error"}, {"providerRef", {{"name", "c"}}}}}}});
    auto names = [&](AlertSeverity s) {
        std::vector<std::string> out;
        for (const AlertSpec* a : subscribersOf(spec, s)) out.push_back(a->name);
        return out;
    };
    EXPECT_THAT(names(AlertSeverity::Info), ElementsAre("all"));
    EXPECT_THAT(names(AlertSeverity::Warn), ElementsAre("all", "warnings"));
    EXPECT_THAT(names(AlertSeverity::Error), ElementsAre("all", "warnings", "errors"));
}

}  // namespace
}  // namespace sluice::canaryengine
