#include "sluice/appengine/notifications.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/appengine/status.h"
#include "sluice/util/base64.h"

namespace sluice::appengine::notifications {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

const std::string kSha = "4f2c1e0d9b8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b";
const std::string kSha2 = "1111111222222233333334444444555555566666";

json app(const json& status = json::object(), const json& annotations = json::object()) {
    return {{"apiVersion", "sluice.io/v1alpha1"},
            {"kind", "Application"},
            {"metadata",
             {{"name", "guestbook"},
              {"namespace", "apps"},
              {"creationTimestamp", "2024-01-01T00:00:00Z"},
              {"annotations", annotations}}},
            {"spec", {{"project", "team-a"}}},
            {"status", status}};
}

json operation(const std::string& phase, const std::string& revision = kSha,
               const std::string& startedAt = "2024-01-01T10:00:00Z",
               const std::string& finishedAt = "2024-01-01T10:01:00Z") {
    json op = {
        {"phase", phase}, {"startedAt", startedAt}, {"syncResult", {{"revision", revision}}}};
    if (phase != "Running") op["finishedAt"] = finishedAt;
    return op;
}

json status(const std::string& sync, const std::string& health, const json& op = nullptr) {
    json s = {{"sync", {{"status", sync}, {"revision", kSha}}}, {"health", {{"status", health}}}};
    if (!op.is_null()) s["operationState"] = op;
    return s;
}

std::vector<std::string> holding(const json& a) {
    std::vector<std::string> out;
    for (const auto& r : evaluateTriggers(a))
        if (r.holds) out.push_back(r.trigger);
    return out;
}

// --- Subscriptions ---------------------------------------------------------------------------

TEST(NotificationSubscriptions, BothPrefixesSeveralRecipients) {
    json ann = {{"notifications.argoproj.io/subscribe.on-sync-succeeded.slack", "ops; dev ;"},
                {"sluice.io/subscribe.on-sync-failed.teams", "alerts"},
                {"sluice.io/subscribe.on-sync-failed.slack", "ops,ops"},
                {"unrelated.example.com/subscribe.on-deployed.slack", "x"}};
    std::vector<std::string> errors;
    auto subs = parseSubscriptions(ann, &errors);
    EXPECT_THAT(errors, IsEmpty());
    ASSERT_EQ(subs.size(), 2u);
    EXPECT_THAT(subs["on-sync-succeeded"],
                ElementsAre(Destination{"slack", "dev"}, Destination{"slack", "ops"}));
    EXPECT_THAT(subs["on-sync-failed"],
                ElementsAre(Destination{"slack", "ops"}, Destination{"teams", "alerts"}));
}

TEST(NotificationSubscriptions, EmptyValueSubscribesTheServiceItself) {
    auto subs = parseSubscriptions(
        json{{"notifications.argoproj.io/subscribe.on-deployed.github-status", ""}});
    EXPECT_THAT(subs["on-deployed"], ElementsAre(Destination{"github-status", ""}));
}

TEST(NotificationSubscriptions, ServiceNameMayHoldDots) {
    auto subs = parseSubscriptions(json{{"sluice.io/subscribe.on-deployed.hook.v2", ""}});
    EXPECT_THAT(subs["on-deployed"], ElementsAre(Destination{"hook.v2", ""}));
}

TEST(NotificationSubscriptions, MalformedKeysAreReported) {
    std::vector<std::string> errors;
    auto subs = parseSubscriptions(json{{"notifications.argoproj.io/subscribe.on-deployed", "x"},
                                        {"sluice.io/subscribe..slack", "x"}},
                                   &errors);
    EXPECT_TRUE(subs.empty());
    EXPECT_EQ(errors.size(), 2u);
}

TEST(NotificationSubscriptions, YamlForm) {
    json ann = {{"notifications.argoproj.io/subscriptions",
                 "- trigger: [on-sync-failed, on-health-degraded]\n"
                 "  destinations:\n"
                 "  - service: slack\n"
                 "    recipients: [ops, dev]\n"
                 "  - service: my-hook\n"
                 "- trigger: on-deployed\n"
                 "  destinations:\n"
                 "  - service: teams\n"
                 "    recipients: [release]\n"}};
    std::vector<std::string> errors;
    auto subs = parseSubscriptions(ann, &errors);
    EXPECT_THAT(errors, IsEmpty());
    EXPECT_THAT(subs["on-sync-failed"],
                ElementsAre(Destination{"my-hook", ""}, Destination{"slack", "dev"},
                            Destination{"slack", "ops"}));
    EXPECT_EQ(subs["on-health-degraded"], subs["on-sync-failed"]);
    EXPECT_THAT(subs["on-deployed"], ElementsAre(Destination{"teams", "release"}));
}

TEST(NotificationSubscriptions, BadYamlFormIsReported) {
    std::vector<std::string> errors;
    parseSubscriptions(json{{"sluice.io/subscriptions", "{not: [a list"}}, &errors);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_THAT(errors[0], HasSubstr("sluice.io/subscriptions"));
    parseSubscriptions(json{{"sluice.io/subscriptions", "- trigger: on-deployed\n"}}, &errors);
    EXPECT_EQ(errors.size(), 1u);
}

// --- Triggers --------------------------------------------------------------------------------

TEST(NotificationTriggers, BuiltinCatalog) {
    EXPECT_EQ(builtinTriggers().size(), 8u);
    EXPECT_TRUE(std::is_sorted(builtinTriggers().begin(), builtinTriggers().end()));
    EXPECT_TRUE(isBuiltinTrigger("on-sync-status-unknown"));
    EXPECT_FALSE(isBuiltinTrigger("on-custom"));
}

TEST(NotificationTriggers, FreshApplicationIsOnlyCreated) {
    EXPECT_THAT(holding(app()), ElementsAre("on-created"));
    EXPECT_EQ(evaluateTrigger("on-created", app()).oncePer, "guestbook");
}

TEST(NotificationTriggers, Deleted) {
    json a = app();
    a["metadata"]["deletionTimestamp"] = "2024-01-02T00:00:00Z";
    auto r = evaluateTrigger("on-deleted", a);
    EXPECT_TRUE(r.holds);
    EXPECT_EQ(r.oncePer, "guestbook");
}

TEST(NotificationTriggers, SyncRunningOncePerStart) {
    auto r = evaluateTrigger("on-sync-running",
                             app(status("OutOfSync", "Healthy", operation("Running"))));
    EXPECT_TRUE(r.holds);
    EXPECT_EQ(r.oncePer, "2024-01-01T10:00:00Z");
}

TEST(NotificationTriggers, SucceededAndDeployed) {
    json a = app(status("Synced", "Healthy", operation("Succeeded")));
    EXPECT_THAT(holding(a), ElementsAre("on-created", "on-deployed", "on-sync-succeeded"));
    EXPECT_EQ(evaluateTrigger("on-deployed", a).oncePer, kSha);
    EXPECT_EQ(evaluateTrigger("on-sync-succeeded", a).oncePer, "2024-01-01T10:01:00Z");
}

TEST(NotificationTriggers, DeployedWaitsForHealth) {
    json a = app(status("Synced", "Progressing", operation("Succeeded")));
    EXPECT_FALSE(evaluateTrigger("on-deployed", a).holds);
    // Healthy, but only before the operation finished: not the new revision's health yet.
    a["status"]["health"] = {{"status", "Healthy"}, {"lastTransitionTime", "2024-01-01T09:00:00Z"}};
    EXPECT_FALSE(evaluateTrigger("on-deployed", a).holds);
    a["status"]["health"]["lastTransitionTime"] = "2024-01-01T10:02:00Z";
    EXPECT_TRUE(evaluateTrigger("on-deployed", a).holds);
}

TEST(NotificationTriggers, FailedAndErrorPhases) {
    for (const char* phase : {"Failed", "Error"}) {
        json a = app(status("OutOfSync", "Healthy", operation(phase)));
        EXPECT_THAT(holding(a), ElementsAre("on-created", "on-sync-failed")) << phase;
        EXPECT_EQ(evaluateTrigger("on-sync-failed", a).oncePer, kSha);
    }
}

TEST(NotificationTriggers, MultiSourceRevisions) {
    json op = operation("Succeeded");
    op["syncResult"] = {{"revisions", {kSha, kSha2}}};
    json a = app(status("Synced", "Healthy", op));
    EXPECT_EQ(evaluateTrigger("on-deployed", a).oncePer, kSha + "," + kSha2);
}

TEST(NotificationTriggers, DegradedAndUnknown) {
    EXPECT_THAT(holding(app(status("Synced", "Degraded"))),
                ElementsAre("on-created", "on-health-degraded"));
    EXPECT_THAT(holding(app(status("Unknown", "Healthy"))),
                ElementsAre("on-created", "on-sync-status-unknown"));
    EXPECT_EQ(evaluateTrigger("on-health-degraded", app()).oncePer, "");
}

TEST(NotificationTriggers, OddShapesDoNotThrow) {
    json a = {{"metadata", "x"}, {"status", {{"operationState", 3}, {"health", nullptr}}}};
    EXPECT_NO_THROW(evaluateTriggers(a));
    EXPECT_NO_THROW(buildMessage("on-sync-failed", a));
}

// --- State and plan --------------------------------------------------------------------------

TEST(NotifiedState, RoundTripAndGarbage) {
    NotifiedState s = {{"a:on-deployed:[0]:slack:ops", 100}, {"b", 200}};
    EXPECT_EQ(parseNotifiedState(serializeNotifiedState(s)), s);
    EXPECT_EQ(serializeNotifiedState({}), "");
    EXPECT_TRUE(parseNotifiedState("not json").empty());
    EXPECT_TRUE(parseNotifiedState("[1,2]").empty());
    EXPECT_THAT(parseNotifiedState(R"({"k": 5, "bad": "x"})"), ElementsAre(Pair("k", 5)));
}

TEST(NotifiedState, KeyLayout) {
    TriggerResult once{"on-deployed", true, kSha};
    TriggerResult flip{"on-health-degraded", true, ""};
    EXPECT_EQ(stateKey(once, {"slack", "ops"}), kSha + ":on-deployed:[0]:slack:ops");
    EXPECT_EQ(stateKey(flip, {"hook", ""}), "on-health-degraded:[0]:hook:");
}

Subscriptions subscribe(std::initializer_list<std::string> triggers) {
    Subscriptions s;
    for (const auto& t : triggers) s[t] = {{"slack", "ops"}};
    return s;
}

TEST(NotificationPlan, SendsOnceThenNothing) {
    auto subs = subscribe({"on-sync-succeeded", "on-deployed"});
    json a = app(status("Synced", "Healthy", operation("Succeeded")));
    Plan first = plan(a, subs, {}, 1000);
    ASSERT_EQ(first.send.size(), 2u);
    EXPECT_EQ(first.send[0].trigger, "on-deployed");
    EXPECT_EQ(first.send[1].trigger, "on-sync-succeeded");
    EXPECT_EQ(first.send[0].to, (Destination{"slack", "ops"}));
    EXPECT_TRUE(first.stateChanged);
    EXPECT_EQ(first.state.size(), 2u);

    Plan again = plan(a, subs, first.state, 2000);
    EXPECT_THAT(again.send, IsEmpty());
    EXPECT_FALSE(again.stateChanged);
    EXPECT_EQ(again.state, first.state);
}

TEST(NotificationPlan, OncePerRevision) {
    auto subs = subscribe({"on-deployed", "on-sync-succeeded"});
    Plan p = plan(app(status("Synced", "Healthy", operation("Succeeded"))), subs, {}, 1);
    // A new sync of the same revision finishes: sync-succeeded again, deployed not.
    json again =
        app(status("Synced", "Healthy",
                   operation("Succeeded", kSha, "2024-01-01T11:00:00Z", "2024-01-01T11:01:00Z")));
    p = plan(again, subs, p.state, 2);
    ASSERT_EQ(p.send.size(), 1u);
    EXPECT_EQ(p.send[0].trigger, "on-sync-succeeded");
    // A new revision: both.
    json next =
        app(status("Synced", "Healthy",
                   operation("Succeeded", kSha2, "2024-01-01T12:00:00Z", "2024-01-01T12:01:00Z")));
    p = plan(next, subs, p.state, 3);
    EXPECT_EQ(p.send.size(), 2u);
    EXPECT_EQ(p.state.size(), 5u);  // oncePer records stay (bounded by kNotifiedHistoryMax)
}

TEST(NotificationPlan, FlipTriggerRearms) {
    auto subs = subscribe({"on-health-degraded"});
    Plan p = plan(app(status("Synced", "Degraded")), subs, {}, 1);
    EXPECT_EQ(p.send.size(), 1u);
    p = plan(app(status("Synced", "Degraded")), subs, p.state, 2);
    EXPECT_THAT(p.send, IsEmpty());
    p = plan(app(status("Synced", "Healthy")), subs, p.state, 3);
    EXPECT_THAT(p.send, IsEmpty());
    EXPECT_TRUE(p.stateChanged);
    EXPECT_TRUE(p.state.empty());
    p = plan(app(status("Synced", "Degraded")), subs, p.state, 4);
    EXPECT_EQ(p.send.size(), 1u);
}

TEST(NotificationPlan, SyncFailedOncePerRevisionAcrossRetries) {
    auto subs = subscribe({"on-sync-failed", "on-sync-running"});
    Plan p = plan(app(status("OutOfSync", "Healthy", operation("Running"))), subs, {}, 1);
    EXPECT_EQ(p.send.size(), 1u);
    p = plan(app(status("OutOfSync", "Healthy", operation("Failed"))), subs, p.state, 2);
    ASSERT_EQ(p.send.size(), 1u);
    EXPECT_EQ(p.send[0].trigger, "on-sync-failed");
    // A retry of the same revision: it runs (announced) and fails again (not announced).
    json retry = operation("Running", kSha, "2024-01-01T10:05:00Z");
    p = plan(app(status("OutOfSync", "Healthy", retry)), subs, p.state, 3);
    EXPECT_EQ(p.send.size(), 1u);
    retry = operation("Failed", kSha, "2024-01-01T10:05:00Z", "2024-01-01T10:06:00Z");
    p = plan(app(status("OutOfSync", "Healthy", retry)), subs, p.state, 4);
    EXPECT_THAT(p.send, IsEmpty());
}

TEST(NotificationPlan, EachDestinationIsRecordedApart) {
    Subscriptions subs;
    subs["on-created"] = {{"slack", "a"}, {"slack", "b"}};
    Plan p = plan(app(), subs, {{"guestbook:on-created:[0]:slack:a", 5}}, 9);
    ASSERT_EQ(p.send.size(), 1u);
    EXPECT_EQ(p.send[0].to.recipient, "b");
}

TEST(NotificationPlan, UnknownTriggersAreListedNotEvaluated) {
    Subscriptions subs;
    subs["on-rollout-aborted"] = {{"slack", "a"}};
    Plan p = plan(app(), subs, {}, 1);
    EXPECT_THAT(p.unknownTriggers, ElementsAre("on-rollout-aborted"));
    EXPECT_THAT(p.send, IsEmpty());
    EXPECT_FALSE(p.stateChanged);
}

TEST(NotificationPlan, HistoryIsBoundedOldestFirst) {
    NotifiedState old;
    for (int i = 0; i < 120; ++i) old["old-" + std::to_string(1000 + i)] = i;
    Plan p = plan(app(), subscribe({"on-created"}), old, 500);
    EXPECT_EQ(p.send.size(), 1u);
    EXPECT_EQ(p.state.size(), kNotifiedHistoryMax);
    EXPECT_TRUE(p.state.count("guestbook:on-created:[0]:slack:ops"));
    EXPECT_FALSE(p.state.count("old-1000"));
    EXPECT_TRUE(p.state.count("old-1119"));
}

// --- Messages --------------------------------------------------------------------------------

std::string field(const notify::Message& m, const std::string& name) {
    for (const auto& [k, v] : m.fields)
        if (k == name) return v;
    return "<none>";
}

TEST(NotificationMessage, SyncFailedNamesTheFailingResources) {
    json op = operation("Failed");
    op["message"] = "one or more objects failed to apply";
    op["syncResult"]["resources"] = json::array(
        {{{"kind", "Deployment"},
          {"namespace", "prod"},
          {"name", "web"},
          {"status", "SyncFailed"},
          {"message", "admission webhook denied the request"}},
         {{"kind", "ConfigMap"}, {"namespace", "prod"}, {"name", "cfg"}, {"status", "Synced"}},
         {{"kind", "Job"},
          {"namespace", "prod"},
          {"name", "migrate"},
          {"hookPhase", "Failed"},
          {"message", "BackoffLimitExceeded"}}});
    // The watch cache keeps syncResult.resources packed as text.
    json a = app(status("OutOfSync", "Healthy", op));
    packStatus(a["status"]);
    ASSERT_TRUE(a["status"]["operationState"]["syncResult"]["resources"].is_string());

    auto m = buildMessage("on-sync-failed", a);
    EXPECT_EQ(m.title, "Application guestbook sync failed");
    EXPECT_EQ(m.severity, notify::Severity::Error);
    EXPECT_THAT(m.text, HasSubstr("Sync of revision 4f2c1e0 failed: one or more objects"));
    EXPECT_THAT(m.text, HasSubstr("- Deployment prod/web: admission webhook denied the request"));
    EXPECT_THAT(m.text, HasSubstr("- Job prod/migrate: BackoffLimitExceeded"));
    EXPECT_THAT(m.text, ::testing::Not(HasSubstr("cfg")));
    EXPECT_THAT(m.text, ::testing::Not(HasSubstr("http")));
    EXPECT_EQ(field(m, "Application"), "apps/guestbook");
    EXPECT_EQ(field(m, "Project"), "team-a");
    EXPECT_EQ(field(m, "Revision"), "4f2c1e0");
    EXPECT_EQ(field(m, "Result"), "Failed");
    EXPECT_EQ(field(m, "Failed resource"),
              "Deployment prod/web: admission webhook denied the request");
}

TEST(NotificationMessage, ManyFailuresAreCut) {
    json op = operation("Failed");
    op["syncResult"]["resources"] = json::array();
    for (int i = 0; i < 25; ++i)
        op["syncResult"]["resources"].push_back(
            {{"kind", "ConfigMap"}, {"name", "c" + std::to_string(i)}, {"status", "SyncFailed"}});
    auto m = buildMessage("on-sync-failed", app(status("OutOfSync", "Healthy", op)));
    EXPECT_THAT(m.text, HasSubstr("- ConfigMap c9\n- and 15 more"));
    EXPECT_THAT(m.text, ::testing::Not(HasSubstr("c10")));
}

TEST(NotificationMessage, DegradedNamesResourcesAndHealthMessage) {
    json s = status("Synced", "Degraded");
    s["health"]["message"] = "Deployment web exceeded its progress deadline";
    s["resources"] = json::array(
        {{{"kind", "Deployment"},
          {"namespace", "prod"},
          {"name", "web"},
          {"health", {{"status", "Degraded"}, {"message", "progress deadline exceeded"}}}},
         {{"kind", "Service"},
          {"namespace", "prod"},
          {"name", "web"},
          {"health", {{"status", "Healthy"}}}}});
    auto m = buildMessage("on-health-degraded", app(s));
    EXPECT_EQ(m.title, "Application guestbook is degraded");
    EXPECT_THAT(m.text, HasSubstr("Health is Degraded: Deployment web exceeded"));
    EXPECT_THAT(m.text, HasSubstr("- Deployment prod/web: progress deadline exceeded"));
    EXPECT_THAT(m.text, ::testing::Not(HasSubstr("Service")));
    EXPECT_EQ(field(m, "Health"), "Degraded");
}

TEST(NotificationMessage, EveryTriggerHasWords) {
    json a = app(status("Synced", "Healthy", operation("Succeeded")));
    for (const auto& t : builtinTriggers()) {
        auto m = buildMessage(t, a);
        EXPECT_THAT(m.title, HasSubstr("Application guestbook ")) << t;
        EXPECT_FALSE(m.text.empty()) << t;
    }
    EXPECT_EQ(buildMessage("on-deployed", a).text, "Revision 4f2c1e0 is synced and healthy.");
    EXPECT_EQ(buildMessage("on-sync-succeeded", a).title, "Application guestbook synced");
    json unknown = app(status("Unknown", "Healthy"));
    unknown["status"]["conditions"] =
        json::array({{{"type", "ComparisonError"}, {"message", "repository not found"}}});
    auto m = buildMessage("on-sync-status-unknown", unknown);
    EXPECT_EQ(m.severity, notify::Severity::Warn);
    EXPECT_THAT(m.text, HasSubstr("ComparisonError: repository not found"));
}

TEST(NotificationMessage, ShortRevision) {
    EXPECT_EQ(shortRevision(kSha), "4f2c1e0");
    EXPECT_EQ(shortRevision("v1.2.3"), "v1.2.3");
    EXPECT_EQ(shortRevision(""), "");
}

// --- Service configuration -------------------------------------------------------------------

json configMap(const json& data) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", "sluice-notifications-cm"}}},
            {"data", data}};
}

json secret(const std::map<std::string, std::string>& values) {
    json data = json::object();
    for (const auto& [k, v] : values) data[k] = base64Encode(v);
    return {{"apiVersion", "v1"}, {"kind", "Secret"}, {"data", data}};
}

TEST(NotificationConfig, SlackWithTokenPostsToTheChannel) {
    auto cfg =
        parseConfig(configMap({{"service.slack", "token: $slack-token\nusername: Sluice\n"}}),
                    secret({{"slack-token", "xoxb-secret"}}));
    EXPECT_THAT(cfg.errors, IsEmpty());
    std::string error;
    auto d = destinationFor(cfg, {"slack", "deploys"}, &error);
    ASSERT_TRUE(d) << error;
    EXPECT_EQ(d->service, "slack");
    EXPECT_EQ(d->token, "xoxb-secret");
    EXPECT_EQ(d->channel, "deploys");
    EXPECT_EQ(d->username, "Sluice");
    EXPECT_EQ(d->address, "");
    EXPECT_FALSE(destinationFor(cfg, {"slack", ""}, &error));
    cfg = parseConfig(
        configMap({{"service.slack", "token: t\napiURL: https://slack.example/api/\n"}}), nullptr);
    EXPECT_EQ(destinationFor(cfg, {"slack", "c"})->address, "https://slack.example");
}

TEST(NotificationConfig, SlackIncomingWebhooks) {
    auto cfg = parseConfig(
        configMap({{"service.slack", "webhooks:\n  ops: $ops-hook\n"},
                   {"service.slack.single", "url: https://hooks.slack.com/services/T/B/x\n"}}),
        secret({{"ops-hook", "https://hooks.slack.com/services/T/B/ops"}}));
    auto d = destinationFor(cfg, {"slack", "ops"});
    ASSERT_TRUE(d);
    EXPECT_EQ(d->address, "https://hooks.slack.com/services/T/B/ops");
    EXPECT_EQ(d->token, "");
    EXPECT_EQ(d->channel, "");
    std::string error;
    EXPECT_FALSE(destinationFor(cfg, {"slack", "dev"}, &error));
    EXPECT_THAT(error, HasSubstr("no webhook named dev"));
    d = destinationFor(cfg, {"single", "dev"});
    ASSERT_TRUE(d);
    EXPECT_EQ(d->service, "slack");
    EXPECT_EQ(d->channel, "dev");
}

TEST(NotificationConfig, TeamsGoogleChatDiscordRocketChat) {
    auto cfg = parseConfig(
        configMap(
            {{"service.teams", "recipientUrls:\n  channelName: $teams-url\n"},
             {"service.googlechat", "webhooks:\n  space: https://chat.googleapis.com/v1/s\n"},
             {"service.discord", "webhooks:\n  releases: https://discord.com/api/webhooks/1\n"},
             {"service.rocketchat", "url: https://rocket.example.com/hooks/x\n"}}),
        secret({{"teams-url", "https://example.webhook.office.com/x"}}));
    EXPECT_THAT(cfg.errors, IsEmpty());
    auto teams = destinationFor(cfg, {"teams", "channelName"});
    ASSERT_TRUE(teams);
    EXPECT_EQ(teams->service, "msteams");
    EXPECT_EQ(teams->address, "https://example.webhook.office.com/x");
    auto chat = destinationFor(cfg, {"googlechat", "space"});
    ASSERT_TRUE(chat);
    EXPECT_EQ(chat->service, "gchat");
    auto discord = destinationFor(cfg, {"discord", "releases"});
    ASSERT_TRUE(discord);
    EXPECT_EQ(discord->service, "discord");
    auto rocket = destinationFor(cfg, {"rocketchat", "#deploys"});
    ASSERT_TRUE(rocket);
    EXPECT_EQ(rocket->service, "rocket");
    EXPECT_EQ(rocket->channel, "#deploys");
    EXPECT_FALSE(destinationFor(cfg, {"teams", "other"}));
}

TEST(NotificationConfig, NamedWebhookWithHeadersAndBasicAuth) {
    auto cfg = parseConfig(configMap({{"service.webhook.deploy-log",
                                       "url: https://log.example.com/events\n"
                                       "headers:\n"
                                       "- name: X-Token\n"
                                       "  value: $log-token\n"
                                       "basicAuth:\n"
                                       "  username: sluice\n"
                                       "  password: $log-password\n"}}),
                           secret({{"log-token", "t0k"}, {"log-password", "pw"}}));
    EXPECT_THAT(cfg.errors, IsEmpty());
    ASSERT_TRUE(cfg.services.count("deploy-log"));
    EXPECT_EQ(cfg.services.at("deploy-log").type, "webhook");
    auto d = destinationFor(cfg, {"deploy-log", ""});
    ASSERT_TRUE(d);
    EXPECT_EQ(d->service, "generic");
    EXPECT_EQ(d->address, "https://log.example.com/events");
    EXPECT_EQ(d->headers.at("X-Token"), "t0k");
    EXPECT_EQ(d->headers.at("Authorization"), "Basic " + base64Encode("sluice:pw"));
}

TEST(NotificationConfig, StringDataAndEmbeddedReferences) {
    json s = {{"stringData", {{"host", "hooks.example.com"}}}};
    auto cfg = parseConfig(configMap({{"service.webhook.w", "url: https://$host/path\n"}}), s);
    EXPECT_THAT(cfg.errors, IsEmpty());
    EXPECT_EQ(destinationFor(cfg, {"w", ""})->address, "https://hooks.example.com/path");
}

TEST(NotificationConfig, ProblemsAreReportedWithoutSecrets) {
    auto cfg = parseConfig(configMap({{"service.email", "host: smtp.example.com\n"},
                                      {"service.slack", "token: $missing-token\n"},
                                      {"service.teams", "[not, a, map]"},
                                      {"service.webhook.bad", "url: [unclosed\n"},
                                      {"trigger.on-custom", "- when: true\n"},
                                      {"template.app-x", "message: hi\n"}}),
                           secret({{"other", "s3cr3t-value"}}));
    ASSERT_EQ(cfg.errors.size(), 4u);
    for (const auto& e : cfg.errors) EXPECT_THAT(e, ::testing::Not(HasSubstr("s3cr3t")));
    EXPECT_THAT(cfg.errors[0], HasSubstr("email is not supported"));
    EXPECT_THAT(cfg.errors[1], HasSubstr("$missing-token is not a key of the Secret"));
    EXPECT_TRUE(cfg.services.count("slack"));
    EXPECT_FALSE(cfg.services.count("teams"));
    std::string error;
    EXPECT_FALSE(destinationFor(cfg, {"email", "a@b.c"}, &error));
    EXPECT_THAT(error, HasSubstr("no service email"));
}

TEST(NotificationConfig, NothingConfigured) {
    auto cfg = parseConfig(nullptr, nullptr);
    EXPECT_TRUE(cfg.services.empty());
    EXPECT_TRUE(cfg.errors.empty());
    EXPECT_FALSE(destinationFor(cfg, {"slack", "x"}));
}

}  // namespace
}  // namespace sluice::appengine::notifications
