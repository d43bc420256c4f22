// The delivery thread with a scripted Transport: retries, backoff, drops and metrics.
#include <gtest/gtest.h>

#include <deque>
#include <mutex>
#include <thread>

#include "sluice/notify/notifier.h"
#include "sluice/telemetry/registry.h"

namespace sluice::notify {
namespace {

using namespace std::chrono_literals;

// Answers from a script (then 200), and records every call.
class FakeTransport : public Transport {
  public:
    struct Shared {
        std::mutex mu;
        std::deque<HttpAnswer> script;
        std::vector<HttpCall> calls;
        std::vector<std::string> proxies;
        std::vector<std::chrono::steady_clock::time_point> times;
        std::chrono::milliseconds delay{0};  // per call, to hold one in flight
    };
    explicit FakeTransport(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
    HttpAnswer send(const HttpCall& call, const std::string& proxy,
                    std::chrono::milliseconds) override {
        std::chrono::milliseconds delay;
        HttpAnswer answer{200, "ok", "", {}};
        {
            std::lock_guard lock(shared_->mu);
            shared_->calls.push_back(call);
            shared_->proxies.push_back(proxy);
            shared_->times.push_back(std::chrono::steady_clock::now());
            if (!shared_->script.empty()) {
                answer = shared_->script.front();
                shared_->script.pop_front();
            }
            delay = shared_->delay;
        }
        std::this_thread::sleep_for(delay);
        return answer;
    }

  private:
    std::shared_ptr<Shared> shared_;
};

NotifierOptions fast() {
    NotifierOptions o;
    o.initialBackoff = 5ms;
    o.maxBackoff = 40ms;
    o.maxAttempts = 4;
    o.timeout = 1s;
    return o;
}

Destination slack() {
    Destination d;
    d.service = "slack";
    d.address = "https://hooks.slack.com/services/T/B/SECRET";
    return d;
}

Message hello(const std::string& title = "hello") {
    Message m;
    m.title = title;
    return m;
}

HttpAnswer status(int code, std::chrono::milliseconds retryAfter = 0ms) {
    return HttpAnswer{code, "", code == 0 ? "connection refused" : "", retryAfter};
}

class NotifierTest : public ::testing::Test {
  protected:
    std::shared_ptr<FakeTransport::Shared> shared = std::make_shared<FakeTransport::Shared>();
    telemetry::Registry registry;
    std::unique_ptr<Transport> transport() { return std::make_unique<FakeTransport>(shared); }
    void script(std::initializer_list<HttpAnswer> answers) {
        std::lock_guard lock(shared->mu);
        shared->script.insert(shared->script.end(), answers);
    }
    std::size_t calls() {
        std::lock_guard lock(shared->mu);
        return shared->calls.size();
    }
    double total(const std::string& service, const std::string& result) {
        auto page = registry.exposition();
        std::string needle =
            "sluice_notifications_total{result=\"" + result + "\",service=\"" + service + "\"} ";
        auto at = page.find(needle);
        return at == std::string::npos ? -1 : std::stod(page.substr(at + needle.size()));
    }
};

TEST_F(NotifierTest, DeliversOnce) {
    Notifier n(fast(), transport(), &registry);
    Destination d = slack();
    d.proxy = "http://proxy:3128";
    ASSERT_TRUE(n.send(d, hello()));
    ASSERT_TRUE(n.drain(10s));
    auto s = n.stats();
    EXPECT_EQ(s.delivered, 1u);
    EXPECT_EQ(s.attempts, 1u);
    EXPECT_EQ(s.failed + s.dropped + s.invalid, 0u);
    ASSERT_EQ(calls(), 1u);
    EXPECT_EQ(shared->calls[0].url, "https://hooks.slack.com/services/T/B/SECRET");
    EXPECT_EQ(shared->proxies[0], "http://proxy:3128");
    EXPECT_EQ(total("slack", "delivered"), 1);
    EXPECT_EQ(total("slack", "failed"), 0);
}

TEST_F(NotifierTest, RetriesA503ThenDelivers) {
    script({status(503), status(0), status(200)});
    Notifier n(fast(), transport(), &registry);
    ASSERT_TRUE(n.send(slack(), hello()));
    ASSERT_TRUE(n.drain(10s));
    auto s = n.stats();
    EXPECT_EQ(s.delivered, 1u);
    EXPECT_EQ(s.failed, 0u);
    EXPECT_EQ(s.attempts, 3u);
    EXPECT_EQ(calls(), 3u);
    // Backoff 5ms then 10ms: at least that much apart (no upper bound: a loaded machine).
    EXPECT_GE(shared->times[1] - shared->times[0], 5ms);
    EXPECT_GE(shared->times[2] - shared->times[1], 10ms);
    EXPECT_EQ(total("slack", "delivered"), 1);
}

TEST_F(NotifierTest, HonoursRetryAfterOn429) {
    script({status(429, 150ms)});
    auto o = fast();
    o.maxBackoff = 5s;
    Notifier n(o, transport(), &registry);
    ASSERT_TRUE(n.send(slack(), hello()));
    ASSERT_TRUE(n.drain(10s));
    EXPECT_EQ(n.stats().delivered, 1u);
    ASSERT_EQ(calls(), 2u);
    EXPECT_GE(shared->times[1] - shared->times[0], 150ms);
}

TEST_F(NotifierTest, RetryAfterIsCappedAtMaxBackoff) {
    script({status(429, 1h)});
    Notifier n(fast(), transport(), &registry);
    ASSERT_TRUE(n.send(slack(), hello()));
    ASSERT_TRUE(n.drain(10s));
    EXPECT_EQ(n.stats().delivered, 1u);
}

TEST_F(NotifierTest, A400IsFinal) {
    script({status(400)});
    Notifier n(fast(), transport(), &registry);
    ASSERT_TRUE(n.send(slack(), hello()));
    ASSERT_TRUE(n.drain(10s));
    auto s = n.stats();
    EXPECT_EQ(s.failed, 1u);
    EXPECT_EQ(s.attempts, 1u);
    EXPECT_EQ(total("slack", "failed"), 1);
}

TEST_F(NotifierTest, SlackOkFalseIsFinal) {
    script({HttpAnswer{200, R"({"ok":false,"error":"channel_not_found"})", "", {}}});
    Notifier n(fast(), transport(), &registry);
    Destination d = slack();
    d.token = "xoxb-1";
    d.channel = "#nope";
    ASSERT_TRUE(n.send(d, hello()));
    ASSERT_TRUE(n.drain(10s));
    EXPECT_EQ(n.stats().failed, 1u);
    EXPECT_EQ(calls(), 1u);
}

TEST_F(NotifierTest, GivesUpAfterMaxAttempts) {
    script({status(500), status(502), status(0), status(504), status(200)});
    Notifier n(fast(), transport(), &registry);
    ASSERT_TRUE(n.send(slack(), hello()));
    ASSERT_TRUE(n.drain(10s));
    auto s = n.stats();
    EXPECT_EQ(s.failed, 1u);
    EXPECT_EQ(s.delivered, 0u);
    EXPECT_EQ(s.attempts, 4u);
    EXPECT_EQ(total("slack", "failed"), 1);
}

TEST_F(NotifierTest, ARetryDoesNotHoldUpOthers) {
    script({status(503)});
    auto o = fast();
    o.initialBackoff = 300ms;
    o.maxBackoff = 300ms;
    Notifier n(o, transport(), &registry);
    ASSERT_TRUE(n.send(slack(), hello("first")));
    ASSERT_TRUE(n.send(slack(), hello("second")));
    ASSERT_TRUE(n.drain(10s));
    ASSERT_EQ(calls(), 3u);
    // first (503), second (delivered), first again after its backoff.
    EXPECT_NE(shared->calls[0].body.find("first"), std::string::npos);
    EXPECT_NE(shared->calls[1].body.find("second"), std::string::npos);
    EXPECT_NE(shared->calls[2].body.find("first"), std::string::npos);
    EXPECT_EQ(n.stats().delivered, 2u);
}

TEST_F(NotifierTest, InvalidMessagesAreCounted) {
    Notifier n(fast(), transport(), &registry);
    Destination unknown = slack();
    unknown.service = "pagerduty";
    EXPECT_FALSE(n.send(unknown, hello()));
    Destination noAddress = slack();
    noAddress.address = "";
    EXPECT_FALSE(n.send(noAddress, hello()));
    EXPECT_FALSE(n.send(slack(), Message{}));
    Destination badProxy = slack();
    badProxy.proxy = "proxy:3128";
    EXPECT_FALSE(n.send(badProxy, hello()));
    ASSERT_TRUE(n.drain(10s));
    EXPECT_EQ(n.stats().invalid, 4u);
    EXPECT_EQ(calls(), 0u);
    EXPECT_EQ(total("unknown", "invalid"), 1);
    EXPECT_EQ(total("slack", "invalid"), 3);
}

TEST_F(NotifierTest, AliasesCountUnderTheCanonicalName) {
    Notifier n(fast(), transport(), &registry);
    Destination d;
    d.service = "teams";
    d.address = "https://example.webhook.office.com/x";
    ASSERT_TRUE(n.send(d, hello()));
    ASSERT_TRUE(n.drain(10s));
    EXPECT_EQ(total("msteams", "delivered"), 1);
}

TEST_F(NotifierTest, AFullQueueDropsAndCounts) {
    shared->delay = 200ms;
    auto o = fast();
    o.queueCapacity = 2;
    Notifier n(o, transport(), &registry);
    // The first is taken in flight at once or stays queued; either way at most three fit
    // (two queued + one in flight) and of six at least three are dropped.
    int accepted = 0;
    for (int i = 0; i < 6; ++i) accepted += n.send(slack(), hello()) ? 1 : 0;
    EXPECT_GE(accepted, 2);
    EXPECT_LE(accepted, 3);
    ASSERT_TRUE(n.drain(10s));
    auto s = n.stats();
    EXPECT_EQ(s.delivered, static_cast<std::size_t>(accepted));
    EXPECT_EQ(s.dropped, static_cast<std::size_t>(6 - accepted));
    EXPECT_EQ(total("slack", "dropped"), 6 - accepted);
}

// A destination has a bounded share of the queue: a receiver that hangs cannot fill it.
TEST_F(NotifierTest, ADestinationHasABoundedShareOfTheQueue) {
    shared->delay = 200ms;
    auto o = fast();
    o.destinationCapacity = 2;
    Notifier n(o, transport(), &registry);
    int accepted = 0;
    for (int i = 0; i < 5; ++i) accepted += n.send(slack(), hello()) ? 1 : 0;
    EXPECT_EQ(accepted, 2);
    Destination other;
    other.service = "generic";
    other.address = "https://other.example/hook";
    EXPECT_TRUE(n.send(other, hello())) << "another destination still has room";
    ASSERT_TRUE(n.drain(10s));
    EXPECT_EQ(n.stats().delivered, 3u);
    EXPECT_EQ(total("slack", "dropped"), 3);
    // Delivered messages free their share.
    EXPECT_TRUE(n.send(slack(), hello()));
    ASSERT_TRUE(n.drain(10s));
}

// One destination never has two calls in flight, whatever the number of workers.
TEST_F(NotifierTest, OneCallInFlightPerDestination) {
    shared->delay = 20ms;
    auto o = fast();
    o.workers = 4;
    Notifier n(o, transport(), &registry);
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(n.send(slack(), hello()));
    ASSERT_TRUE(n.drain(10s));
    ASSERT_EQ(calls(), 6u);
    for (std::size_t i = 1; i < shared->times.size(); ++i)
        EXPECT_GE(shared->times[i] - shared->times[i - 1], 20ms) << i;
}

TEST_F(NotifierTest, QueueLengthGauge) {
    shared->delay = 100ms;
    Notifier n(fast(), transport(), &registry);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(n.send(slack(), hello()));
    EXPECT_NE(registry.exposition().find("sluice_notification_queue_length 3"), std::string::npos)
        << registry.exposition();
    ASSERT_TRUE(n.drain(10s));
    EXPECT_NE(registry.exposition().find("sluice_notification_queue_length 0"), std::string::npos);
}

TEST_F(NotifierTest, DrainTimesOutWhileRetrying) {
    script({status(503), status(503)});
    auto o = fast();
    o.initialBackoff = 5s;
    o.maxBackoff = 5s;
    Notifier n(o, transport(), &registry);
    ASSERT_TRUE(n.send(slack(), hello()));
    EXPECT_FALSE(n.drain(50ms));
}

TEST_F(NotifierTest, DestructorWithPendingRetriesReturnsQuickly) {
    script({status(503), status(503), status(503)});
    auto o = fast();
    o.initialBackoff = 30s;
    o.maxBackoff = 60s;
    auto started = std::chrono::steady_clock::now();
    {
        Notifier n(o, transport(), &registry);
        for (int i = 0; i < 3; ++i) ASSERT_TRUE(n.send(slack(), hello()));
        // Wait until all three have had their first attempt and wait 30s for the next.
        for (int i = 0; i < 500 && calls() < 3; ++i) std::this_thread::sleep_for(10ms);
        ASSERT_EQ(calls(), 3u);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
    EXPECT_EQ(total("slack", "dropped"), 3);
}

TEST_F(NotifierTest, WorksWithoutARegistry) {
    Notifier n(fast(), transport());
    ASSERT_TRUE(n.send(slack(), hello()));
    ASSERT_TRUE(n.drain(10s));
    EXPECT_EQ(n.stats().delivered, 1u);
}

TEST_F(NotifierTest, ThrowingTransportIsATransportError) {
    class Throwing : public Transport {
      public:
        HttpAnswer send(const HttpCall&, const std::string&, std::chrono::milliseconds) override {
            throw std::runtime_error("boom");
        }
    };
    auto o = fast();
    o.maxAttempts = 2;
    Notifier n(o, std::make_unique<Throwing>(), &registry);
    ASSERT_TRUE(n.send(slack(), hello()));
    ASSERT_TRUE(n.drain(10s));
    EXPECT_EQ(n.stats().failed, 1u);
    EXPECT_EQ(n.stats().attempts, 2u);
}

TEST_F(NotifierTest, ConcurrentSenders) {
    Notifier n(fast(), transport(), &registry);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 50; ++i) n.send(slack(), hello());
        });
    for (auto& t : threads) t.join();
    ASSERT_TRUE(n.drain(30s));
    EXPECT_EQ(n.stats().delivered, 200u);
    EXPECT_EQ(total("slack", "delivered"), 200);
}

}  // namespace
}  // namespace sluice::notify
