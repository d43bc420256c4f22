// The engine's inputs and outputs as the Canary controller reads and writes them on the
// Canary object (src/canarycontroller/engine_io.cpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "impl.h"

namespace sluice::canarycontroller::detail {
namespace {

using nlohmann::json;
using ::testing::IsEmpty;
using namespace std::chrono_literals;

TEST(ManualRequests, ReadsTheRequestAnnotations) {
    EXPECT_THAT(manualRequests(json::object()), IsEmpty());
    json canary = json::parse(R"({"metadata": {"annotations": {
        "sluice.io/abort": "2026-01-01T00:00:05Z", "sluice.io/retry": "soon",
        "sluice.io/promote": 7, "other": "x"}}})");
    std::vector<canaryengine::ManualRequest> requests = manualRequests(canary);
    ASSERT_EQ(requests.size(), 3u);
    EXPECT_EQ(requests[0].action, canaryengine::ManualAction::Promote);
    EXPECT_EQ(requests[0].value, "7");
    EXPECT_FALSE(requests[0].requestedAt) << "not a string, so no time";
    EXPECT_EQ(requests[1].action, canaryengine::ManualAction::Abort);
    EXPECT_EQ(requests[1].requestedAt, canaryengine::parseTimestamp("2026-01-01T00:00:05Z"));
    EXPECT_EQ(requests[2].action, canaryengine::ManualAction::Retry);
    EXPECT_EQ(requests[2].value, "soon");
    EXPECT_FALSE(requests[2].requestedAt);
}

TEST(UnsupportedTarget, OnlyAppsV1DeploymentsAndDaemonSets) {
    EXPECT_EQ(unsupportedTarget({"apps/v1", "Deployment", "web"}), "");
    EXPECT_EQ(unsupportedTarget({"", "Deployment", "web"}), "");
    EXPECT_EQ(unsupportedTarget({"apps/v1", "DaemonSet", "web"}), "");
    EXPECT_EQ(unsupportedTarget({"", "DaemonSet", "web"}), "");
    EXPECT_EQ(unsupportedTarget({"apps/v1", "StatefulSet", "web"}),
              "spec.targetRef: only apps/v1 Deployment and DaemonSet targets are supported, not "
              "apps/v1 StatefulSet");
    EXPECT_EQ(unsupportedTarget({"apps/v1beta1", "Deployment", "web"}),
              "spec.targetRef: only apps/v1 Deployment and DaemonSet targets are supported, not "
              "apps/v1beta1 Deployment");
}

TEST(MergeStatus, ReplacesTheEngineFieldsAndKeepsOthers) {
    json written = json::parse(R"({"phase": "Progressing", "canaryWeight": 20,
        "noDataReason": "no data", "observedBy": "someone-else"})");
    canaryengine::CanaryStatus status;
    status.phase = canaryengine::Phase::Succeeded;
    json merged = mergeStatus(written, status);
    EXPECT_EQ(merged["phase"], "Succeeded");
    EXPECT_EQ(merged["canaryWeight"], 0);
    EXPECT_FALSE(merged.contains("noDataReason")) << "cleared by the engine";
    EXPECT_EQ(merged["observedBy"], "someone-else");
    EXPECT_EQ(mergeStatus(merged, status), merged);
}

TEST(TemplateModel, NamesWhatQueriesMayUse) {
    canaryengine::CanarySpec spec;
    spec.targetRef.name = "web";
    canaryengine::MetricSpec metric;
    metric.templateVariables = {{"route", "/api"}};
    metricprovider::TemplateModel model = templateModel("shop", "web-canary", spec, metric);
    EXPECT_EQ(model.name, "web-canary");
    EXPECT_EQ(model.namespaceName, "shop");
    EXPECT_EQ(model.target, "web");
    EXPECT_EQ(model.service, "web") << "service.name defaults to the target";
    EXPECT_EQ(model.ingress, "");
    EXPECT_EQ(model.route, "");
    EXPECT_EQ(model.variables, metric.templateVariables);

    spec.service.name = "web-svc";
    spec.ingressRef.name = "web-ingress";
    spec.routeRef.name = "web-route";
    model = templateModel("shop", "web-canary", spec, metric);
    EXPECT_EQ(model.service, "web-svc");
    EXPECT_EQ(model.ingress, "web-ingress");
    EXPECT_EQ(model.route, "web-route");
}

TEST(WebhookPayload, FlaggersPayloadWithTheHookMetadata) {
    canaryengine::CanaryStatus next;
    next.phase = canaryengine::Phase::Progressing;
    next.lastAppliedSpec = "abc123";
    canaryengine::WebhookSpec hook;
    EXPECT_EQ(webhookPayload("shop", "web", next, hook, nullptr, canaryengine::Time()),
              json::parse(R"({"name": "web", "namespace": "shop", "phase": "Progressing",
                              "checksum": "abc123"})"));
    hook.metadata = {{"cmd", "hey"}};
    EXPECT_EQ(webhookPayload("shop", "web", next, hook, nullptr, canaryengine::Time())["metadata"],
              hook.metadata);
}

TEST(WebhookPayload, AnEventGoesIntoTheMetadata) {
    canaryengine::CanaryStatus next;
    canaryengine::WebhookSpec hook;
    hook.metadata = {{"channel", "#deploys"}};
    canaryengine::Event event{canaryengine::EventType::Warning, "Halt", "Halt advancement"};
    json payload = webhookPayload("shop", "web", next, hook, &event, canaryengine::Time(1500ms));
    EXPECT_EQ(payload["metadata"], json::parse(R"({"channel": "#deploys",
        "eventMessage": "Halt advancement", "eventType": "Warning", "eventReason": "Halt",
        "timestamp": "1500"})"));
}

canaryengine::Decision decided(canaryengine::Phase phase, int canaryWeight) {
    canaryengine::Decision decision;
    decision.status.phase = phase;
    decision.status.canaryWeight = canaryWeight;
    return decision;
}

canaryengine::Observation ready(bool target, bool primary) {
    canaryengine::Observation obs;
    obs.target.ready = target;
    obs.primary.ready = primary;
    return obs;
}

TEST(WeightsToKeep, TheStatusWeightsWhenBothSidesCanServe) {
    EXPECT_EQ(weightsToKeep(decided(canaryengine::Phase::Progressing, 30), ready(true, true)),
              router::Weights::forCanary(30));
    EXPECT_EQ(weightsToKeep(decided(canaryengine::Phase::Succeeded, 0), ready(false, true)),
              router::Weights::forCanary(0))
        << "all on the primary: the target need not be ready";
    EXPECT_EQ(weightsToKeep(decided(canaryengine::Phase::Promoting, 140), ready(true, false)),
              router::Weights::forCanary(100))
        << "clamped to a percentage";
}

TEST(WeightsToKeep, NothingToCheck) {
    EXPECT_FALSE(weightsToKeep(decided(canaryengine::Phase::None, 0), ready(true, true)));
    EXPECT_FALSE(weightsToKeep(decided(canaryengine::Phase::Initializing, 0), ready(true, true)));
    canaryengine::Decision kept = decided(canaryengine::Phase::Failed, 100);
    kept.status.targetKeptServing = true;
    EXPECT_FALSE(weightsToKeep(kept, ready(true, false)));
    canaryengine::Decision sets = decided(canaryengine::Phase::Progressing, 40);
    sets.actions.push_back(canaryengine::action::SetWeights{60, 40});
    EXPECT_FALSE(weightsToKeep(sets, ready(true, true)));
    canaryengine::Decision initializes = decided(canaryengine::Phase::Initialized, 0);
    initializes.actions.push_back(canaryengine::action::InitializePrimary{"abc"});
    EXPECT_FALSE(weightsToKeep(initializes, ready(true, true)));
    EXPECT_FALSE(weightsToKeep(decided(canaryengine::Phase::Progressing, 30), ready(false, true)))
        << "never route to a canary that is not ready";
    EXPECT_FALSE(weightsToKeep(decided(canaryengine::Phase::Progressing, 30), ready(true, false)))
        << "nor to a primary that is not ready";
}

}  // namespace
}  // namespace sluice::canarycontroller::detail
