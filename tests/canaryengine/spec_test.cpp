#include "sluice/canaryengine/spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "sluice/util/yaml_json.h"

namespace sluice::canaryengine {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

json loadExample(const std::string& file, size_t document = 0) {
    std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/tests/data/examples/" + file);
    EXPECT_TRUE(in.good()) << file;
    std::stringstream buffer;
    buffer << in.rdbuf();
    auto docs = yamlDocumentsToJson(buffer.str());
    EXPECT_GT(docs.size(), document);
    return docs.at(document);
}

std::string allErrors(const std::vector<std::string>& errors) {
    std::string out;
    for (const auto& e : errors) out += e + "\n";
    return out;
}

// A minimal valid spec to mutate in validation tests.
json minimalSpec() {
    return json::parse(R"({
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
        "service": {"port": 80},
        "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10}
    })");
}

TEST(GoDuration, ParsesGoSyntax) {
    EXPECT_EQ(parseGoDuration("30s"), Duration(30s));
    EXPECT_EQ(parseGoDuration("1m"), Duration(60s));
    EXPECT_EQ(parseGoDuration("1m30s"), Duration(90s));
    EXPECT_EQ(parseGoDuration("1h"), Duration(3600s));
    EXPECT_EQ(parseGoDuration("1.5h"), Duration(5400s));
    EXPECT_EQ(parseGoDuration("500ms"), Duration(500ms));
    EXPECT_EQ(parseGoDuration("2h45m0.5s"), Duration(2h + 45min + 500ms));
    EXPECT_EQ(parseGoDuration("0"), Duration(0));
}

TEST(GoDuration, RejectsMalformed) {
    for (const char* bad : {"", "10", "1x", "m", "-5s", "1m30", "s30", "1..5s", "1 m"}) {
        EXPECT_FALSE(parseGoDuration(bad).has_value()) << bad;
    }
}

TEST(GoDuration, FormatsLikeGo) {
    EXPECT_EQ(formatGoDuration(90s), "1m30s");
    EXPECT_EQ(formatGoDuration(3600s), "1h0m0s");
    EXPECT_EQ(formatGoDuration(500ms), "500ms");
    EXPECT_EQ(formatGoDuration(1500ms), "1.5s");
    EXPECT_EQ(formatGoDuration(0s), "0s");
}

TEST(Timestamp, RoundTripsAndAcceptsOffsets) {
    auto t = parseTimestamp("2026-03-04T05:06:07Z");
    ASSERT_TRUE(t);
    EXPECT_EQ(formatTimestamp(*t), "2026-03-04T05:06:07Z");
    EXPECT_EQ(parseTimestamp("2026-03-04T07:06:07.123+02:00"), t);
    EXPECT_FALSE(parseTimestamp("2026-13-04T05:06:07Z"));
    EXPECT_FALSE(parseTimestamp("yesterday"));
    EXPECT_FALSE(parseTimestamp("2026-03-04T05:06:07"));
}

TEST(CanarySpecExamples, CanaryYaml) {
    Canary canary = parseCanary(loadExample("canary.yaml"));
    ASSERT_TRUE(canary.errors.empty()) << allErrors(canary.errors);
    EXPECT_EQ(canary.name, "campaign-service");
    EXPECT_EQ(canary.namespaceName, "blessed-horizon");
    const CanarySpec& spec = canary.spec;
    EXPECT_EQ(spec.targetRef.kind, "Deployment");
    EXPECT_EQ(spec.targetRef.name, "campaign-service");
    EXPECT_EQ(spec.progressDeadlineSeconds, 600);
    EXPECT_EQ(spec.service.port, 80);
    EXPECT_EQ(spec.service.targetPort, json(8080));
    EXPECT_EQ(spec.service.gateways,
              std::vector<std::string>{"public-gateway.istio-system.svc.cluster.local"});
    EXPECT_EQ(spec.service.hosts, std::vector<std::string>{"api.blessedhorizon.org"});
    EXPECT_EQ(spec.analysis.interval, Duration(60s));
    EXPECT_EQ(spec.analysis.threshold, 5);
    EXPECT_EQ(spec.maxWeight(), 50);
    EXPECT_EQ(spec.analysis.stepWeight, 10);
    EXPECT_EQ(spec.strategy(), Strategy::Canary);
    ASSERT_EQ(spec.analysis.metrics.size(), 2u);
    EXPECT_EQ(spec.analysis.metrics[0].name, "request-success-rate");
    EXPECT_EQ(spec.analysis.metrics[0].thresholdRange.min, 99.0);
    EXPECT_FALSE(spec.analysis.metrics[0].thresholdRange.max);
    EXPECT_EQ(spec.analysis.metrics[1].thresholdRange.max, 500.0);
    EXPECT_EQ(spec.analysis.metrics[1].interval, Duration(60s));
    ASSERT_EQ(spec.analysis.webhooks.size(), 1u);
    const WebhookSpec& hook = spec.analysis.webhooks[0];
    EXPECT_EQ(hook.name, "load-test");
    EXPECT_EQ(hook.type, WebhookType::Rollout);  // no type means rollout
    EXPECT_EQ(hook.url, "http://flagger-loadtester.test/");
    EXPECT_EQ(hook.timeout, Duration(5s));
    EXPECT_THAT(hook.metadata.at("cmd").get<std::string>(), HasSubstr("hey -z 1m"));
}

TEST(CanarySpecExamples, BlueGreenYaml) {
    Canary canary = parseCanary(loadExample("blue-green.yaml"));
    ASSERT_TRUE(canary.errors.empty()) << allErrors(canary.errors);
    const CanarySpec& spec = canary.spec;
    EXPECT_EQ(spec.strategy(), Strategy::BlueGreen);
    EXPECT_EQ(spec.analysis.iterations, 10);
    EXPECT_EQ(spec.analysis.threshold, 2);
    EXPECT_EQ(spec.analysis.interval, Duration(30s));
    EXPECT_EQ(spec.progressDeadlineSeconds, 600);  // default
    ASSERT_EQ(spec.analysis.webhooks.size(), 2u);
    EXPECT_EQ(spec.analysis.webhooks[0].type, WebhookType::PreRollout);
    EXPECT_EQ(spec.analysis.webhooks[0].timeout, Duration(30s));
    EXPECT_EQ(spec.analysis.webhooks[1].type, WebhookType::ConfirmPromotion);
    EXPECT_EQ(spec.analysis.webhooks[1].timeout, Duration(10s));  // default
    EXPECT_FALSE(spec.analysis.webhooks[1].maxWait);
}

TEST(CanarySpecExamples, SteppedCanaryYaml) {
    Canary canary = parseCanary(loadExample("stepped-canary.yaml"));
    ASSERT_TRUE(canary.errors.empty()) << allErrors(canary.errors);
    const CanarySpec& spec = canary.spec;
    EXPECT_EQ(spec.provider, "gatewayapi:v1");
    EXPECT_EQ(spec.analysis.stepWeights, (std::vector<int>{5, 20, 50}));
    EXPECT_EQ(spec.maxWeight(), 50);
    EXPECT_EQ(spec.nextWeight(0), 5);
    EXPECT_EQ(spec.nextWeight(5), 20);
    EXPECT_EQ(spec.nextWeight(20), 50);
    EXPECT_EQ(spec.nextWeight(50), 50);
    ASSERT_EQ(spec.service.gatewayRefs.size(), 1u);
    EXPECT_EQ(spec.service.gatewayRefs[0].name, "public");
    EXPECT_EQ(spec.service.gatewayRefs[0].namespaceName, "gateway-system");
    ASSERT_EQ(spec.analysis.metrics.size(), 1u);
    ASSERT_TRUE(spec.analysis.metrics[0].templateRef);
    EXPECT_EQ(spec.analysis.metrics[0].templateRef->name, "error-rate");
    EXPECT_EQ(spec.analysis.metrics[0].templateRef->namespaceName, "bifrost");
    EXPECT_EQ(spec.analysis.metrics[0].thresholdRange.max, 1.0);
}

TEST(CanarySpecValidation, MinimalSpecIsValidWithoutMetricsOrWebhooks) {
    auto result = parseCanarySpec(minimalSpec());
    EXPECT_TRUE(result.ok()) << allErrors(result.errors);
    EXPECT_EQ(result.spec.maxWeight(), 100);
    EXPECT_EQ(result.spec.nextWeight(95), 100);
}

TEST(CanarySpecValidation, UnknownFieldsAreTolerated) {
    json spec = minimalSpec();
    spec["futureField"] = {{"x", 1}};
    spec["analysis"]["mirror"] = true;
    spec["analysis"]["match"] = json::array({{{"headers", {{"x-canary", {{"exact", "1"}}}}}}});
    EXPECT_TRUE(parseCanarySpec(spec).ok());
}

TEST(CanarySpecValidation, StepWeightWithStepWeights) {
    json spec = minimalSpec();
    spec["analysis"]["stepWeights"] = {10, 20};
    auto result = parseCanarySpec(spec);
    EXPECT_THAT(allErrors(result.errors),
                HasSubstr("spec.analysis.stepWeights: cannot be combined with stepWeight"));
}

TEST(CanarySpecValidation, MaxWeightAbove100) {
    json spec = minimalSpec();
    spec["analysis"]["maxWeight"] = 150;
    EXPECT_THAT(allErrors(parseCanarySpec(spec).errors),
                HasSubstr("spec.analysis.maxWeight: must be between 0 and 100, got 150"));
}

TEST(CanarySpecValidation, UnknownWebhookType) {
    json spec = minimalSpec();
    spec["analysis"]["webhooks"] =
        json::array({{{"name", "x"}, {"type", "pre-flight"}, {"url", "http://x/"}}});
    EXPECT_THAT(allErrors(parseCanarySpec(spec).errors),
                HasSubstr("spec.analysis.webhooks[0].type: unknown webhook type \"pre-flight\""));
}

TEST(CanarySpecValidation, BadDurations) {
    json spec = minimalSpec();
    spec["analysis"]["interval"] = "1 minute";
    spec["analysis"]["webhooks"] = json::array({{{"name", "gate"},
                                                 {"type", "confirm-promotion"},
                                                 {"url", "http://x/"},
                                                 {"timeout", 5},
                                                 {"maxWait", "2d"}}});
    std::string errors = allErrors(parseCanarySpec(spec).errors);
    EXPECT_THAT(errors, HasSubstr("spec.analysis.interval: invalid duration \"1 minute\""));
    EXPECT_THAT(errors, HasSubstr("spec.analysis.webhooks[0].timeout: must be a string"));
    EXPECT_THAT(errors, HasSubstr("spec.analysis.webhooks[0].maxWait: invalid duration \"2d\""));
}

TEST(CanarySpecValidation, MaxWaitOnlyOnGates) {
    json spec = minimalSpec();
    spec["analysis"]["webhooks"] = json::array(
        {{{"name", "gate"}, {"type", "confirm-promotion"}, {"url", "http://x/"}, {"maxWait", "1h"}},
         {{"name", "load"}, {"type", "rollout"}, {"url", "http://x/"}, {"maxWait", "1h"}}});
    auto result = parseCanarySpec(spec);
    ASSERT_EQ(result.errors.size(), 1u) << allErrors(result.errors);
    EXPECT_THAT(result.errors[0], HasSubstr("webhooks[1].maxWait: only applies to confirm-*"));
    EXPECT_EQ(result.spec.analysis.webhooks[0].maxWait, Duration(1h));
}

TEST(CanarySpecValidation, MetricProblems) {
    json spec = minimalSpec();
    spec["analysis"]["metrics"] =
        json::array({{{"name", "a"}},
                     {{"name", "b"}, {"thresholdRange", {{"min", 10}, {"max", 1}}}},
                     {{"name", "b"}, {"thresholdRange", {{"max", "high"}}}}});
    std::string errors = allErrors(parseCanarySpec(spec).errors);
    EXPECT_THAT(errors, HasSubstr("metrics[0].thresholdRange: needs min and/or max"));
    EXPECT_THAT(errors, HasSubstr("metrics[1].thresholdRange: min is greater than max"));
    EXPECT_THAT(errors, HasSubstr("metrics[2].thresholdRange.max: must be a number"));
    EXPECT_THAT(errors, HasSubstr("metrics[2].name: duplicate metric \"b\""));
}

TEST(CanarySpecValidation, StrategyRequiredUnlessSkipped) {
    json spec = minimalSpec();
    spec["analysis"].erase("stepWeight");
    EXPECT_THAT(allErrors(parseCanarySpec(spec).errors),
                HasSubstr("one of stepWeight, stepWeights (canary) or iterations"));
    spec["skipAnalysis"] = true;
    EXPECT_TRUE(parseCanarySpec(spec).ok());
}

TEST(CanarySpecValidation, StepWeightsMustAscendWithinRange) {
    json spec = minimalSpec();
    spec["analysis"].erase("stepWeight");
    spec["analysis"]["stepWeights"] = {10, 5, 101, "x"};
    std::string errors = allErrors(parseCanarySpec(spec).errors);
    EXPECT_THAT(errors, HasSubstr("stepWeights[1]: must be greater than the previous step"));
    EXPECT_THAT(errors, HasSubstr("stepWeights[2]: must be an integer between 1 and 100"));
    EXPECT_THAT(errors, HasSubstr("stepWeights[3]: must be an integer between 1 and 100"));
}

TEST(CanarySpecValidation, GarbageNeverCrashes) {
    for (const char* text :
         {"null", "[]", "42", "\"spec\"", R"({"targetRef": 5, "service": [], "analysis": 1})",
          R"({"targetRef": {}, "service": {"port": "eighty"},
              "analysis": {"metrics": {"a": 1}, "webhooks": [1, null, {"type": 3}],
                           "threshold": -1, "stepWeights": "10"},
              "progressDeadlineSeconds": 1.5, "skipAnalysis": "yes"})"}) {
        auto result = parseCanarySpec(json::parse(text));
        EXPECT_FALSE(result.ok()) << text;
    }
    EXPECT_FALSE(
        parseCanary(json::parse(R"({"metadata": {"name": 3}, "spec": 1})")).errors.empty());
}

TEST(CanaryStatusJson, RoundTripsEveryField) {
    CanaryStatus status;
    status.phase = Phase::WaitingPromotion;
    status.failedChecks = 2;
    status.canaryWeight = 50;
    status.iterations = 7;
    status.lastAppliedSpec = "abc";
    status.lastPromotedSpec = "xyz";
    Time t = *parseTimestamp("2026-01-02T03:04:05Z");
    status.lastTransitionTime = t;
    status.conditions.push_back(
        Condition{"Promoted", "Unknown", "WaitingPromotion", "waiting", t, t + 1s});
    status.lastAnalysisTime = t + 2s;
    status.noDataSince = t + 3s;
    status.noDataReason = "request-success-rate: no data";
    status.gateWaitingSince[WebhookType::ConfirmPromotion] = t + 4s;
    status.targetUnreadySince = t + 5s;
    status.primaryUnreadySince = t + 6s;
    status.preRolloutPassed = true;
    status.targetKeptServing = true;

    json serialised = toJson(status);
    EXPECT_EQ(serialised.at("phase"), "WaitingPromotion");
    EXPECT_EQ(serialised.at("gateWaitingSince").at("confirm-promotion"), "2026-01-02T03:04:09Z");
    auto parsed = parseCanaryStatus(json::parse(serialised.dump()));
    EXPECT_TRUE(parsed.errors.empty()) << allErrors(parsed.errors);
    EXPECT_EQ(parsed.status, status);
}

TEST(CanaryStatusJson, ToleratesFlaggerStatusAndReportsBadFields) {
    auto flagger = parseCanaryStatus(json::parse(R"({
        "phase": "Succeeded", "canaryWeight": 0, "failedChecks": 0, "iterations": 0,
        "lastAppliedSpec": "5d8f", "trackedConfigs": {},
        "conditions": [{"type": "Promoted", "status": "True", "reason": "Succeeded",
                        "message": "done", "lastTransitionTime": "2026-01-01T00:00:00Z"}]})"));
    EXPECT_TRUE(flagger.errors.empty()) << allErrors(flagger.errors);
    EXPECT_EQ(flagger.status.phase, Phase::Succeeded);
    ASSERT_NE(flagger.status.condition("Promoted"), nullptr);
    EXPECT_EQ(flagger.status.condition("Promoted")->message, "done");

    auto bad = parseCanaryStatus(json::parse(
        R"({"phase": "Exploding", "canaryWeight": 150, "noDataSince": "soon",
            "gateWaitingSince": {"rollout": "2026-01-01T00:00:00Z"}})"));
    std::string errors = allErrors(bad.errors);
    EXPECT_THAT(errors, HasSubstr("status.phase: unknown phase \"Exploding\""));
    EXPECT_THAT(errors, HasSubstr("status.canaryWeight: must be between 0 and 100"));
    EXPECT_THAT(errors, HasSubstr("status.noDataSince: invalid RFC 3339 timestamp"));
    EXPECT_THAT(errors, HasSubstr("status.gateWaitingSince.rollout: not a gate"));
    EXPECT_EQ(bad.status.phase, Phase::None);
}

}  // namespace
}  // namespace sluice::canaryengine
