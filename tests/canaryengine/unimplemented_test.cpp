#include <gtest/gtest.h>

#include "sluice/canaryengine/spec.h"

namespace sluice::canaryengine {
namespace {

using nlohmann::json;
using Fields = std::vector<std::string>;

TEST(UnimplementedFields, NoneForAnOrdinaryCanary) {
    EXPECT_EQ(unimplementedFieldsIn(json::parse(R"({
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10,
                     "webhooks": [{"name": "load", "url": "http://x/"}]}})")),
              Fields{});
}

TEST(UnimplementedFields, OnlyValuesThatWouldMatter) {
    // false, 0, {} and [] ask for nothing.
    EXPECT_EQ(unimplementedFieldsIn(json::parse(R"({
        "autoscalerRef": {},
        "service": {"port": 80, "delegation": false},
        "analysis": {"mirror": false, "mirrorWeight": 0, "alerts": [],
                     "webhooks": [{"name": "w", "url": "http://x/", "retries": 0,
                                   "muteAlert": false}]}})")),
              Fields{});
}

TEST(UnimplementedFields, NamesEachFieldSetOnceInListOrder) {
    EXPECT_EQ(
        unimplementedFieldsIn(json::parse(R"({
        "upstreamRef": {"apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
                        "name": "podinfo"},
        "service": {"port": 80, "delegation": true},
        "analysis": {"webhooks": [{"name": "a", "url": "http://x/", "retries": 3},
                                  {"name": "b", "url": "http://y/", "retries": 2}]}})")),
        (Fields{"spec.upstreamRef", "spec.service.delegation", "spec.analysis.webhooks.retries"}));
}

TEST(UnimplementedFields, SuspendRevertAndReadyThresholdsAreImplemented) {
    EXPECT_EQ(unimplementedFieldsIn(json::parse(R"({
        "suspend": true, "revertOnDeletion": true,
        "analysis": {"primaryReadyThreshold": 50, "canaryReadyThreshold": 80}})")),
              Fields{});
}

TEST(UnimplementedFields, ReadsFlaggersOlderCanaryAnalysisName) {
    EXPECT_EQ(unimplementedFieldsIn(json::parse(R"({
        "canaryAnalysis": {"webhooks": [{"name": "a", "url": "http://x/", "retries": 3}]}})")),
              Fields{"spec.analysis.webhooks.retries"});
}

TEST(UnimplementedFields, SessionAffinityIsImplemented) {
    EXPECT_EQ(unimplementedFieldsIn(json::parse(R"({
        "analysis": {"sessionAffinity": {"cookieName": "flagger-cookie"}}})")),
              Fields{});
}

TEST(UnimplementedFields, MirroringIsImplemented) {
    EXPECT_EQ(unimplementedFieldsIn(json::parse(R"({
        "analysis": {"iterations": 5, "mirror": true, "mirrorWeight": 20}})")),
              Fields{});
}

TEST(UnimplementedFields, AlertsAndMuteAlertAreImplemented) {
    EXPECT_EQ(unimplementedFieldsIn(json::parse(R"({
        "analysis": {"alerts": [{"name": "on-call", "severity": "error",
                                 "providerRef": {"name": "slack"}}],
                     "webhooks": [{"name": "gate", "type": "confirm-promotion",
                                   "url": "http://x/", "muteAlert": true}]}})")),
              Fields{});
}

TEST(UnimplementedFields, EveryFieldIsASpecPath) {
    for (const std::string& f : fieldsWithoutEffect()) EXPECT_EQ(f.rfind("spec.", 0), 0u) << f;
}

}  // namespace
}  // namespace sluice::canaryengine
