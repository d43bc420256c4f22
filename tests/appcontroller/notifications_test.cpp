// Notifications of Applications against the in-process API server: status changes written
// directly to the server (no ApplicationController runs) reach a fake notify::Transport once
// per trigger change; the record in the annotation survives a restart; a failing receiver
// blocks nothing.
#include "sluice/appcontroller/notifications.h"

#include <gmock/gmock.h>

#include <mutex>

#include "../notify/loopback_receiver.h"
#include "harness.h"
#include "sluice/appengine/notifications.h"

namespace sluice::apptest {
namespace {

using ::testing::HasSubstr;

const std::string kSha = "4f2c1e0d9b8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b";

// Answers every call at once: 500 for URLs holding "/broken", else 200. Records the calls.
class FakeTransport : public notify::Transport {
  public:
    struct State {
        std::mutex mu;
        std::vector<notify::HttpCall> calls;
    };
    explicit FakeTransport(std::shared_ptr<State> s) : state_(std::move(s)) {}
    notify::HttpAnswer send(const notify::HttpCall& call, const std::string&,
                            std::chrono::milliseconds) override {
        std::lock_guard lock(state_->mu);
        state_->calls.push_back(call);
        notify::HttpAnswer a;
        a.status = call.url.find("/broken") != std::string::npos ? 500 : 200;
        a.body = call.url.find("slack.com") != std::string::npos ? R"({"ok":true})" : "ok";
        return a;
    }

  private:
    std::shared_ptr<State> state_;
};

class NotificationsTest : public ControllerTest {
  protected:
    void SetUp() override {
        ControllerTest::SetUp();
        if (HasFailure()) return;
        notify::NotifierOptions no;
        no.initialBackoff = 10ms;
        no.maxBackoff = 20ms;
        no.maxAttempts = 3;
        notifier_ = std::make_unique<notify::Notifier>(no, std::make_unique<FakeTransport>(calls_));
        server_->create(
            {{"apiVersion", "v1"},
             {"kind", "Secret"},
             {"metadata", {{"name", "sluice-notifications-secret"}, {"namespace", kControlNs}}},
             {"data", {{"slack-token", "eG94Yi1zZWNyZXQ="}}}});  // xoxb-secret
        server_->create(
            {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", "sluice-notifications-cm"}, {"namespace", kControlNs}}},
             {"data",
              {{"service.webhook.hook", "url: http://receiver.test/hook\n"},
               {"service.webhook.down", "url: http://receiver.test/broken\n"},
               {"service.slack", "token: $slack-token\napiURL: http://slack.com.test/api/\n"}}}});
    }

    void TearDown() override {
        notifications_.reset();
        notifier_.reset();
        ControllerTest::TearDown();
    }

    appcontroller::NotificationController& startNotifications() {
        appcontroller::NotificationOptions o;
        o.controlNamespace = kControlNs;
        o.configRefresh = 0ms;
        notifications_ = std::make_unique<appcontroller::NotificationController>(
            *client_, *factory_, *notifier_, o);
        notifications_->start();
        EXPECT_TRUE(notifications_->waitForSync(30s));
        return *notifications_;
    }

    void createApp(const std::string& name, const json& annotations) {
        json a = application(name, "guestbook");
        a["metadata"]["annotations"] = annotations;
        server_->create(a);
    }

    void setStatus(const std::string& name, const std::string& sync, const std::string& health,
                   const std::string& phase, const std::string& finishedAt = "") {
        json op = {{"phase", phase},
                   {"startedAt", "2024-01-01T10:00:00Z"},
                   {"syncResult", {{"revision", kSha}}}};
        if (!finishedAt.empty()) op["finishedAt"] = finishedAt;
        if (phase == "Failed") {
            op["message"] = "one or more objects failed to apply";
            op["syncResult"]["resources"] =
                json::array({{{"kind", "Deployment"},
                              {"namespace", kDestNs},
                              {"name", "web"},
                              {"status", "SyncFailed"},
                              {"message", "admission webhook denied the request"}}});
        }
        json status = {{"sync", {{"status", sync}, {"revision", kSha}}},
                       {"health", {{"status", health}}},
                       {"operationState", op},
                       {"reconciledAt", "2024-01-01T10:0" + std::to_string(++tick_ % 10) + ":00Z"}};
        patchApp(name, {{"status", status}}, "status");
    }

    std::vector<notify::HttpCall> calls() {
        std::lock_guard lock(calls_->mu);
        return calls_->calls;
    }
    // Calls to URLs holding `part`.
    std::vector<notify::HttpCall> callsTo(const std::string& part) {
        std::vector<notify::HttpCall> out;
        for (auto& c : calls())
            if (c.url.find(part) != std::string::npos) out.push_back(c);
        return out;
    }
    bool drained() { return notifier_->drain(10s); }

    // Waits until the controller is idle on `name`: the record holds `records` entries.
    bool recorded(const std::string& name, std::size_t records) {
        return eventually([&] {
            json ann = app(name)["metadata"].value("annotations", json::object());
            std::string rec = ann.value(appengine::notifications::kNotifiedAnnotation, "");
            return appengine::notifications::parseNotifiedState(rec).size() == records;
        });
    }

    std::shared_ptr<FakeTransport::State> calls_ = std::make_shared<FakeTransport::State>();
    std::unique_ptr<notify::Notifier> notifier_;
    std::unique_ptr<appcontroller::NotificationController> notifications_;
    int tick_ = 0;
};

TEST_F(NotificationsTest, OneMessagePerTriggerChange) {
    createApp("guestbook", {{"notifications.argoproj.io/subscribe.on-created.hook", ""},
                            {"notifications.argoproj.io/subscribe.on-sync-running.hook", ""},
                            {"notifications.argoproj.io/subscribe.on-sync-succeeded.hook", ""},
                            {"sluice.io/subscribe.on-deployed.slack", "deploys;releases"},
                            {"sluice.io/subscribe.on-health-degraded.hook", ""}});
    // Not subscribed: sends nothing, records nothing.
    createApp("quiet", json::object());
    startNotifications();

    ASSERT_TRUE(recorded("guestbook", 1));
    ASSERT_TRUE(drained());
    ASSERT_EQ(callsTo("/hook").size(), 1u);
    EXPECT_THAT(callsTo("/hook")[0].body, HasSubstr("Application guestbook created"));

    setStatus("guestbook", "OutOfSync", "Healthy", "Running");
    ASSERT_TRUE(recorded("guestbook", 2));
    ASSERT_TRUE(drained());
    ASSERT_EQ(callsTo("/hook").size(), 2u);
    EXPECT_THAT(callsTo("/hook")[1].body, HasSubstr("is syncing"));

    setStatus("guestbook", "Synced", "Healthy", "Succeeded", "2024-01-01T10:01:00Z");
    ASSERT_TRUE(recorded("guestbook", 5));  // + succeeded, deployed to 2 channels
    ASSERT_TRUE(drained());
    EXPECT_EQ(callsTo("/hook").size(), 3u);
    auto slack = callsTo("slack.com.test");
    ASSERT_EQ(slack.size(), 2u);
    EXPECT_EQ(slack[0].url, "http://slack.com.test/api/chat.postMessage");
    EXPECT_THAT(slack[0].headers["Authorization"], HasSubstr("xoxb-secret"));
    EXPECT_THAT(slack[0].body + slack[1].body, HasSubstr("releases"));
    EXPECT_THAT(slack[0].body, HasSubstr("4f2c1e0"));

    // The same state reconciled again (only reconciledAt moves): nothing more.
    const auto before = calls().size();
    setStatus("guestbook", "Synced", "Healthy", "Succeeded", "2024-01-01T10:01:00Z");
    setStatus("guestbook", "Synced", "Healthy", "Succeeded", "2024-01-01T10:01:00Z");
    std::this_thread::sleep_for(500ms);
    ASSERT_TRUE(drained());
    EXPECT_EQ(calls().size(), before);

    // Degraded, back to healthy, degraded again: two messages (the trigger re-arms).
    setStatus("guestbook", "Synced", "Degraded", "Succeeded", "2024-01-01T10:01:00Z");
    ASSERT_TRUE(recorded("guestbook", 6));
    setStatus("guestbook", "Synced", "Healthy", "Succeeded", "2024-01-01T10:01:00Z");
    ASSERT_TRUE(recorded("guestbook", 5));
    setStatus("guestbook", "Synced", "Degraded", "Succeeded", "2024-01-01T10:01:00Z");
    ASSERT_TRUE(recorded("guestbook", 6));
    ASSERT_TRUE(drained());
    EXPECT_EQ(callsTo("/hook").size(), 5u);
    EXPECT_TRUE(callsTo("quiet").empty());
    EXPECT_FALSE(app("quiet")["metadata"]
                     .value("annotations", json::object())
                     .contains(appengine::notifications::kNotifiedAnnotation));
    EXPECT_EQ(notifications_->stats().undeliverable, 0u);
}

TEST_F(NotificationsTest, RestartDoesNotResend) {
    createApp("guestbook", {{"notifications.argoproj.io/subscribe.on-created.hook", ""},
                            {"notifications.argoproj.io/subscribe.on-sync-succeeded.hook", ""}});
    setStatus("guestbook", "Synced", "Healthy", "Succeeded", "2024-01-01T10:01:00Z");
    startNotifications();
    ASSERT_TRUE(recorded("guestbook", 2));
    ASSERT_TRUE(drained());
    ASSERT_EQ(calls().size(), 2u);

    notifications_.reset();
    factory_ = std::make_unique<cache::SharedInformerFactory>(*client_);
    startNotifications();
    std::this_thread::sleep_for(500ms);
    ASSERT_TRUE(drained());
    EXPECT_EQ(calls().size(), 2u);

    // A new operation finishes: announced once.
    setStatus("guestbook", "Synced", "Healthy", "Succeeded", "2024-01-01T11:01:00Z");
    ASSERT_TRUE(recorded("guestbook", 3));
    ASSERT_TRUE(drained());
    EXPECT_EQ(calls().size(), 3u);
}

TEST_F(NotificationsTest, FailingReceiverBlocksNothing) {
    createApp("guestbook", {{"notifications.argoproj.io/subscribe.on-sync-failed.down", ""},
                            {"notifications.argoproj.io/subscribe.on-sync-failed.hook", ""},
                            {"notifications.argoproj.io/subscribe.on-sync-running.down", ""},
                            {"notifications.argoproj.io/subscribe.on-deployed.nowhere", ""}});
    startNotifications();
    setStatus("guestbook", "OutOfSync", "Healthy", "Running");
    ASSERT_TRUE(recorded("guestbook", 1));
    setStatus("guestbook", "OutOfSync", "Healthy", "Failed", "2024-01-01T10:01:00Z");
    ASSERT_TRUE(recorded("guestbook", 3));
    ASSERT_TRUE(drained());
    // The broken receiver was tried (and retried); the healthy one got its message.
    EXPECT_GE(callsTo("/broken").size(), 2u);
    auto hook = callsTo("/hook");
    ASSERT_EQ(hook.size(), 1u);
    EXPECT_THAT(hook[0].body, HasSubstr("Deployment demo/web: admission webhook denied"));
    EXPECT_GE(notifier_->stats().failed, 1u);

    // An unconfigured service is reported, not recorded: once configured, a later change
    // delivers.
    setStatus("guestbook", "Synced", "Healthy", "Succeeded", "2024-01-01T10:05:00Z");
    ASSERT_TRUE(eventually([&] { return notifications_->stats().undeliverable >= 1; }));
    json patch = {{"data", {{"service.webhook.nowhere", "url: http://receiver.test/nowhere\n"}}}};
    client_->patch(kConfigMapGvk, kControlNs, "sluice-notifications-cm", kube::PatchType::Merge,
                   patch.dump());
    setStatus("guestbook", "Synced", "Healthy", "Succeeded", "2024-01-01T10:05:00Z");
    ASSERT_TRUE(eventually([&] { return callsTo("/nowhere").size() == 1; }));
}

// Through the real cpprestsdk transport of src/notify to a loopback webhook receiver: the
// body it gets names the Application, the revision and the result.
TEST_F(NotificationsTest, ThroughTheHttpTransportToALoopbackReceiver) {
    notifytest::Receiver receiver(notifytest::answer(200, "ok"));
    notify::NotifierOptions no;
    no.initialBackoff = 10ms;
    no.maxBackoff = 20ms;
    no.maxAttempts = 3;
    no.timeout = 10s;
    notifier_ = std::make_unique<notify::Notifier>(no, notify::makeHttpTransport());
    json patch = {
        {"data",
         {{"service.webhook.loopback",
           "url: " + receiver.url() + "/argo\nheaders:\n- name: X-Team\n  value: web\n"}}}};
    client_->patch(kConfigMapGvk, kControlNs, "sluice-notifications-cm", kube::PatchType::Merge,
                   patch.dump());
    createApp("guestbook", {{"notifications.argoproj.io/subscribe.on-sync-succeeded.loopback", ""},
                            {"notifications.argoproj.io/subscribe.on-sync-failed.loopback", ""}});
    startNotifications();

    setStatus("guestbook", "OutOfSync", "Healthy", "Failed", "2024-01-01T10:01:00Z");
    ASSERT_TRUE(eventually([&] { return receiver.requests().size() == 1u; }))
        << notifications_->stats().undeliverable;
    setStatus("guestbook", "Synced", "Healthy", "Succeeded", "2024-01-01T10:05:00Z");
    ASSERT_TRUE(eventually([&] { return receiver.requests().size() == 2u; }));
    ASSERT_TRUE(drained());
    EXPECT_EQ(notifier_->stats().delivered, 2u);

    const auto reqs = receiver.requests();
    for (const auto& r : reqs) {
        EXPECT_EQ(r.method, "POST");
        EXPECT_EQ(r.path, "/argo");
        EXPECT_EQ(r.header("x-team"), "web");
        EXPECT_EQ(r.header("content-type").rfind("application/json", 0), 0u);
    }
    const json failed = json::parse(reqs[0].body, nullptr, false);
    ASSERT_TRUE(failed.is_object()) << reqs[0].body;
    EXPECT_EQ(failed.value("severity", ""), "error") << reqs[0].body;
    EXPECT_THAT(reqs[0].body, HasSubstr("guestbook"));
    EXPECT_THAT(reqs[0].body, HasSubstr("4f2c1e0"));
    EXPECT_THAT(failed.value("title", "") + failed.value("text", ""), HasSubstr("failed"))
        << reqs[0].body;
    EXPECT_THAT(reqs[0].body, HasSubstr("admission webhook denied the request"));

    const json succeeded = json::parse(reqs[1].body, nullptr, false);
    ASSERT_TRUE(succeeded.is_object()) << reqs[1].body;
    EXPECT_THAT(succeeded.value("title", ""), HasSubstr("guestbook")) << reqs[1].body;
    EXPECT_THAT(succeeded.value("title", "") + succeeded.value("text", ""), HasSubstr("succeeded"))
        << reqs[1].body;
    EXPECT_THAT(reqs[1].body, HasSubstr("4f2c1e0"));
    EXPECT_EQ(succeeded.value("severity", ""), "info") << reqs[1].body;
}

TEST_F(NotificationsTest, DeletedApplication) {
    createApp("guestbook", {{"notifications.argoproj.io/subscribe.on-deleted.hook", ""}});
    startNotifications();
    std::this_thread::sleep_for(300ms);
    client_->remove(kAppGvk, kControlNs, "guestbook");
    ASSERT_TRUE(eventually([&] { return callsTo("/hook").size() == 1; }));
    EXPECT_THAT(callsTo("/hook")[0].body, HasSubstr("Application guestbook deleted"));
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(callsTo("/hook").size(), 1u);
}

}  // namespace
}  // namespace sluice::apptest
