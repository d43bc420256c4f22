// A Canary's alerts through the controller: AlertProviders and their Secrets resolved in the
// cluster, messages handed to a notify::Notifier whose transport the test fakes (or, for the
// loopback case, the real HTTP transport against the local receiver).
#include <atomic>
#include <condition_variable>

#include "harness.h"
#include "sluice/notify/notifier.h"

namespace sluice::canarytest {
namespace {

using canaryengine::MetricResult;

// Records every call; answers with `status`, and while `hold` is set, waits (a receiver that
// hangs) until released.
class FakeTransport final : public notify::Transport {
  public:
    struct State {
        std::mutex mu;
        std::condition_variable cv;
        std::vector<notify::HttpCall> calls;
        int status = 200;
        bool hold = false;
        std::atomic<int> waiting{0};
    };
    explicit FakeTransport(std::shared_ptr<State> state) : state_(std::move(state)) {}
    notify::HttpAnswer send(const notify::HttpCall& call, const std::string&,
                            std::chrono::milliseconds) override {
        std::unique_lock lock(state_->mu);
        state_->calls.push_back(call);
        if (state_->hold) {
            state_->waiting++;
            state_->cv.wait(lock, [&] { return !state_->hold; });
            state_->waiting--;
        }
        notify::HttpAnswer a;
        a.status = state_->status;
        return a;
    }

  private:
    std::shared_ptr<State> state_;
};

class CanaryAlertsTest : public CanaryControllerTest {
  protected:
    void TearDown() override {
        release();
        CanaryControllerTest::TearDown();  // stops the controller before the notifier goes
    }

    notify::NotifierOptions quickRetries() {
        notify::NotifierOptions o;
        o.maxAttempts = 3;
        o.initialBackoff = 10ms;
        o.maxBackoff = 50ms;
        o.timeout = 2s;
        return o;
    }

    canarycontroller::Options withFakeNotifier() {
        notifier_ = std::make_unique<notify::Notifier>(quickRetries(),
                                                       std::make_unique<FakeTransport>(transport_));
        canarycontroller::Options o = defaultOptions();
        o.notifier = notifier_.get();
        return o;
    }

    void release() {
        {
            std::lock_guard lock(transport_->mu);
            transport_->hold = false;
        }
        transport_->cv.notify_all();
    }

    std::vector<notify::HttpCall> calls() {
        std::lock_guard lock(transport_->mu);
        return transport_->calls;
    }

    void createSecret(const std::string& name, const json& data) {
        server_->create({{"apiVersion", "v1"},
                         {"kind", "Secret"},
                         {"metadata", {{"name", name}, {"namespace", kNs}}},
                         {"stringData", data}});
    }
    void createProvider(const std::string& name, json spec) {
        server_->create({{"apiVersion", "sluice.io/v1alpha1"},
                         {"kind", "AlertProvider"},
                         {"metadata", {{"name", name}, {"namespace", kNs}}},
                         {"spec", std::move(spec)}});
    }
    static json alert(const std::string& name, const std::string& severity,
                      const std::string& provider) {
        return {{"name", name}, {"severity", severity}, {"providerRef", {{"name", provider}}}};
    }

    std::shared_ptr<FakeTransport::State> transport_ = std::make_shared<FakeTransport::State>();
    std::unique_ptr<notify::Notifier> notifier_;
};

// Every string value anywhere in a JSON document, joined: what a person reading it sees.
std::string allText(const json& doc) {
    if (doc.is_string()) return doc.get<std::string>() + "\n";
    std::string out;
    if (doc.is_structured())
        for (const json& v : doc) out += allText(v);
    return out;
}

TEST_F(CanaryAlertsTest, AFailedAnalysisSendsOneErrorAlertToTheProviderOfItsSecret) {
    healthyMetrics();
    startController(withFakeNotifier());
    createSecret("slack-hook", {{"address", "https://hooks.slack.test/services/T1/B2/C3"}});
    createProvider("on-call", {{"type", "slack"},
                               {"channel", "deploys"},
                               {"address", "https://ignored.slack.test/"},
                               {"secretRef", {{"name", "slack-hook"}}}});
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["analysis"]["alerts"] = json::array({alert("on-call", "error", "on-call")});
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));

    metrics_->whenQueryContains("!~", MetricResult::measured(50));
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Failed"; }))
        << status("podinfo").dump(2);
    ASSERT_TRUE(eventually([&] { return controller_->stats().alerts >= 1; }));
    ASSERT_TRUE(notifier_->drain(10s));

    // Initialization and the new revision are info: an error subscription hears only the
    // rollback.
    const auto sent = calls();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].url, "https://hooks.slack.test/services/T1/B2/C3");
    const json body = json::parse(sent[0].body);
    EXPECT_EQ(body.value("channel", ""), "deploys");
    const std::string text = allText(body);
    EXPECT_NE(text.find("podinfo.test rolled back"), std::string::npos) << text;
    EXPECT_NE(text.find("request-success-rate 50 &lt; 99"), std::string::npos) << text;
    EXPECT_NE(text.find("app=example/app:2.0"), std::string::npos) << text;
    EXPECT_EQ(text.find("http"), std::string::npos) << "link-free: " << text;
    EXPECT_EQ(notifier_->stats().delivered, 1u);
}

TEST_F(CanaryAlertsTest, InfoAlertsReachOnlyInfoSubscriptionsOverLoopbackHttp) {
    healthyMetrics();
    // The real HTTP transport against the local receiver: generic webhooks.
    notifier_ = std::make_unique<notify::Notifier>(quickRetries(), notify::makeHttpTransport());
    canarycontroller::Options o = defaultOptions();
    o.notifier = notifier_.get();
    startController(o);
    createProvider("everything", {{"type", "generic"}, {"address", hooks_.url("/all")}});
    createProvider("failures", {{"type", "generic"}, {"address", hooks_.url("/errors")}});
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["analysis"]["alerts"] =
        json::array({alert("team", "info", "everything"), alert("on-call", "error", "failures")});
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);
    // Alerts are handed over once the status is written, just after the phase shows.
    ASSERT_TRUE(eventually([&] { return controller_->stats().alerts >= 3; }));
    ASSERT_TRUE(notifier_->drain(10s));

    std::vector<std::string> titles;
    for (const auto& call : hooks_.calls("/all")) {
        titles.push_back(call.body.value("title", ""));
        EXPECT_EQ(call.body.value("severity", ""), "info");
    }
    EXPECT_EQ(titles, (std::vector<std::string>{"Canary podinfo.test initialized",
                                                "Canary podinfo.test new revision",
                                                "Canary podinfo.test promoted"}));
    EXPECT_TRUE(hooks_.calls("/errors").empty());
    const auto all = hooks_.calls("/all");
    ASSERT_FALSE(all.empty());
    EXPECT_EQ(all[1].body["fields"].value("Revision", ""), "app=example/app:2.0");
}

TEST_F(CanaryAlertsTest, AMissingProviderOrSecretIsAWarningEventNotAFailure) {
    healthyMetrics();
    startController(withFakeNotifier());
    createProvider("no-secret", {{"type", "msteams"}, {"secretRef", {{"name", "absent"}}}});
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["analysis"]["alerts"] =
        json::array({alert("gone", "info", "nope"), alert("teams", "", "no-secret")});
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));
    ASSERT_TRUE(eventually([&] {
        return hasEventContaining("AlertProviderFailed",
                                  "alert gone: AlertProvider test/nope not found") &&
               hasEventContaining("AlertProviderFailed",
                                  "alert teams: AlertProvider test/no-secret: Secret absent not "
                                  "found");
    }));
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);
    EXPECT_TRUE(calls().empty());
    for (const auto& r : records())
        if (!r.succeeded) ADD_FAILURE() << "reconcile failed: " << r.error;
}

TEST_F(CanaryAlertsTest, AReceiverThatHangsOrFailsDoesNotHoldUpTheAnalysis) {
    healthyMetrics();
    {
        std::lock_guard lock(transport_->mu);
        transport_->hold = true;  // the first call hangs until released
        transport_->status = 503;
    }
    startController(withFakeNotifier());
    createProvider("flaky", {{"type", "discord"}, {"address", "https://discord.test/api/x"}});
    json canary = gatewayCanary("podinfo", "podinfo");
    canary["spec"]["analysis"]["alerts"] = json::array({alert("flaky", "info", "flaky")});
    ASSERT_NO_FATAL_FAILURE(initialise(canary, "podinfo"));
    setImage("podinfo", "example/app:2.0");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Succeeded"; }))
        << status("podinfo").dump(2);
    ASSERT_TRUE(eventually([&] { return controller_->stats().alerts >= 3; }));
    EXPECT_EQ(transport_->waiting.load(), 1) << "the delivery is still hanging";
    release();
    ASSERT_TRUE(notifier_->drain(10s));
    const auto stats = notifier_->stats();
    EXPECT_EQ(stats.failed,
              3u);  // initialized, new revision, promoted: each retried, then given up
    EXPECT_EQ(stats.attempts, 9u);
}

TEST_F(CanaryAlertsTest, ControllerWideSlackUrlServesCanariesWithoutAlerts) {
    healthyMetrics();
    canarycontroller::Options o = withFakeNotifier();
    o.defaultAlerts.slackUrl = "https://hooks.slack.test/services/DEFAULT";
    o.defaultAlerts.slackChannel = "ops";
    startController(o);
    ASSERT_NO_FATAL_FAILURE(initialise(gatewayCanary("podinfo", "podinfo"), "podinfo"));
    // The alert is queued after the status write initialise waits for: waited for, then sent.
    ASSERT_TRUE(eventually([&] { return controller_->stats().alerts >= 1; }));
    ASSERT_TRUE(notifier_->drain(10s));
    const auto sent = calls();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].url, "https://hooks.slack.test/services/DEFAULT");
    EXPECT_EQ(json::parse(sent[0].body).value("channel", ""), "ops");
}

}  // namespace
}  // namespace sluice::canarytest
