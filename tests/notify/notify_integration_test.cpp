// Delivery through the real cpprestsdk transport to loopback receivers that speak each
// service's API. Network traffic goes to 127.0.0.1 only.
#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/certs.h"
#include "http/http_server.h"
#include "sluice/notify/notifier.h"
#include "sluice/telemetry/registry.h"

namespace sluice::notify {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::HttpRequest;
using testing::ResponseWriter;

// A loopback receiver that records requests and answers with `reply`.
class Receiver {
  public:
    using Reply = std::function<void(const HttpRequest&, ResponseWriter&, int n)>;
    explicit Receiver(Reply reply, testing::HttpServerOptions options = {})
        : server_(std::move(options)), reply_(std::move(reply)) {
        server_.start([this](const HttpRequest& req, ResponseWriter& w) {
            int n;
            {
                std::lock_guard lock(mu_);
                requests_.push_back(req);
                n = static_cast<int>(requests_.size());
            }
            reply_(req, w, n);
        });
    }
    std::string url() const { return server_.url(); }
    std::vector<HttpRequest> requests() {
        std::lock_guard lock(mu_);
        return requests_;
    }

  private:
    testing::HttpServer server_;
    Reply reply_;
    std::mutex mu_;
    std::vector<HttpRequest> requests_;
};

Receiver::Reply answer(int status, std::string body = "ok",
                       std::map<std::string, std::string> headers = {}) {
    return [=](const HttpRequest&, ResponseWriter& w, int) { w.respond(status, headers, body); };
}

Message sample() {
    Message m;
    m.title = "Canary podinfo.test promoted";
    m.text = "Promotion completed";
    m.severity = Severity::Info;
    m.fields = {{"Revision", "4f2c1e0"}};
    return m;
}

NotifierOptions fast() {
    NotifierOptions o;
    o.initialBackoff = 10ms;
    o.maxBackoff = 50ms;
    o.maxAttempts = 4;
    o.timeout = 5s;
    return o;
}

// A fake Slack Web API: chat.postMessage with a bearer token, ok false for unknown channels.
TEST(NotifyIntegration, SlackChatPostMessage) {
    Receiver slack([](const HttpRequest& req, ResponseWriter& w, int) {
        json body = json::parse(req.body, nullptr, false);
        if (req.path != "/api/chat.postMessage" || req.header("authorization") != "Bearer xoxb-1")
            return w.respond(200, {{"Content-Type", "application/json"}},
                             R"({"ok":false,"error":"not_authed"})");
        if (body.value("channel", "") != "#deploys")
            return w.respond(200, {{"Content-Type", "application/json"}},
                             R"({"ok":false,"error":"channel_not_found"})");
        w.respond(200, {{"Content-Type", "application/json"}}, R"({"ok":true,"ts":"1.1"})");
    });
    telemetry::Registry registry;
    Notifier n(fast(), makeHttpTransport(), &registry);
    Destination d;
    d.service = "slack";
    d.address = slack.url();
    d.token = "xoxb-1";
    d.channel = "#deploys";
    ASSERT_TRUE(n.send(d, sample()));
    d.channel = "#nowhere";
    ASSERT_TRUE(n.send(d, sample()));
    ASSERT_TRUE(n.drain(30s));
    auto s = n.stats();
    EXPECT_EQ(s.delivered, 1u);
    EXPECT_EQ(s.failed, 1u);
    EXPECT_EQ(s.attempts, 2u);  // ok false is final
    auto reqs = slack.requests();
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_EQ(reqs[0].method, "POST");
    EXPECT_EQ(reqs[0].header("content-type"), "application/json; charset=utf-8");
    json body = json::parse(reqs[0].body);
    EXPECT_EQ(body["text"], "Canary podinfo.test promoted\nPromotion completed");
    EXPECT_EQ(body["attachments"][0]["color"], "good");
}

TEST(NotifyIntegration, SlackIncomingWebhook) {
    Receiver hook(answer(200, "ok"));
    Notifier n(fast(), makeHttpTransport());
    Destination d;
    d.service = "slack";
    d.address = hook.url() + "/services/T000/B000/XXXX";
    ASSERT_TRUE(n.send(d, sample()));
    ASSERT_TRUE(n.drain(30s));
    EXPECT_EQ(n.stats().delivered, 1u);
    auto reqs = hook.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].path, "/services/T000/B000/XXXX");
    EXPECT_EQ(reqs[0].header("authorization"), "");
    EXPECT_EQ(reqs[0].header("user-agent"), "sluice");
}

TEST(NotifyIntegration, FiveHundredTwiceThenDelivered) {
    Receiver flaky([](const HttpRequest&, ResponseWriter& w, int n) {
        w.respond(n <= 2 ? 500 : 200, {}, n <= 2 ? "down" : "ok");
    });
    telemetry::Registry registry;
    Notifier n(fast(), makeHttpTransport(), &registry);
    Destination d;
    d.service = "webhook";
    d.address = flaky.url() + "/hook";
    ASSERT_TRUE(n.send(d, sample()));
    ASSERT_TRUE(n.drain(30s));
    EXPECT_EQ(n.stats().delivered, 1u);
    EXPECT_EQ(n.stats().attempts, 3u);
    EXPECT_EQ(flaky.requests().size(), 3u);
    EXPECT_NE(registry.exposition().find(
                  "sluice_notifications_total{result=\"delivered\",service=\"generic\"} 1"),
              std::string::npos);
}

// Each service's request arrives as its API expects: path and query kept, its content type,
// a JSON body of its shape.
TEST(NotifyIntegration, EveryServiceOverLoopback) {
    Receiver receiver(answer(200, ""));
    const std::map<std::string, std::string> paths = {
        {"msteams", "/webhookb2/abc/IncomingWebhook/def"},
        {"discord", "/api/webhooks/123/token"},
        {"rocket", "/hooks/abc/def"},
        {"gchat", "/v1/spaces/AAA/messages?key=K&token=T"},
        {"generic", "/notify"}};
    Notifier n(fast(), makeHttpTransport());
    for (const auto& [service, path] : paths) {
        Destination d;
        d.service = service;
        d.address = receiver.url() + path;
        d.headers = {{"X-Api-Key", "k1"}};
        ASSERT_TRUE(n.send(d, sample())) << service;
        ASSERT_TRUE(n.drain(30s));
    }
    EXPECT_EQ(n.stats().delivered, paths.size());
    auto reqs = receiver.requests();
    ASSERT_EQ(reqs.size(), paths.size());
    std::map<std::string, HttpRequest> byTarget;
    for (const auto& r : reqs) byTarget[r.target] = r;
    for (const auto& [service, path] : paths) {
        SCOPED_TRACE(service);
        ASSERT_EQ(byTarget.count(path), 1u);
        const HttpRequest& r = byTarget[path];
        EXPECT_EQ(r.method, "POST");
        EXPECT_EQ(r.header("content-type").rfind("application/json", 0), 0u);
        EXPECT_EQ(r.header("x-api-key"), service == "generic" ? "k1" : "");
        EXPECT_TRUE(json::accept(r.body));
    }
    EXPECT_EQ(json::parse(byTarget["/notify"].body)["severity"], "info");
    EXPECT_EQ(json::parse(byTarget["/api/webhooks/123/token"].body)["embeds"][0]["title"],
              "Canary podinfo.test promoted");
    EXPECT_EQ(byTarget["/v1/spaces/AAA/messages?key=K&token=T"].queryParam("token"), "T");
}

// A receiver that hangs holds up only its own messages: another receiver's message is
// delivered while the first call is still waiting for an answer.
TEST(NotifyIntegration, AHangingReceiverDoesNotHoldUpAnother) {
    std::mutex mu;
    std::condition_variable cv;
    bool released = false;
    Receiver hanging([&](const HttpRequest&, ResponseWriter& w, int) {
        std::unique_lock lock(mu);
        cv.wait_for(lock, 60s, [&] { return released; });
        w.respond(200, {}, "late");
    });
    Receiver healthy(answer(200, "ok"));
    auto release = [&] {
        {
            std::lock_guard lock(mu);
            released = true;
        }
        cv.notify_all();
    };
    auto o = fast();
    o.timeout = 60s;
    o.workers = 2;
    Notifier n(o, makeHttpTransport());
    Destination stuck;
    stuck.service = "generic";
    stuck.address = hanging.url() + "/hook";
    Destination fine = stuck;
    fine.address = healthy.url() + "/hook";
    // Two for the hanging receiver: the second waits behind the first, on no other worker.
    ASSERT_TRUE(n.send(stuck, sample()));
    ASSERT_TRUE(n.send(stuck, sample()));
    auto waitFor = [](const std::function<bool()>& cond) {
        for (int i = 0; i < 3000 && !cond(); ++i) std::this_thread::sleep_for(10ms);
        return cond();
    };
    ASSERT_TRUE(waitFor([&] { return hanging.requests().size() == 1u; }));
    ASSERT_TRUE(n.send(fine, sample()));
    const bool arrived =
        waitFor([&] { return healthy.requests().size() == 1u && n.stats().delivered == 1u; });
    const std::size_t hangingRequests = hanging.requests().size();
    const bool stillHanging = n.stats().delivered == 1u;
    release();
    EXPECT_TRUE(arrived) << "the healthy receiver's message waited for the hanging one";
    EXPECT_TRUE(stillHanging);
    EXPECT_EQ(hangingRequests, 1u) << "one call in flight per destination";
    ASSERT_TRUE(n.drain(30s));
    EXPECT_EQ(n.stats().delivered, 3u);
}

TEST(NotifyIntegration, TransportReadsRetryAfter) {
    Receiver limited(answer(429, "slow down", {{"Retry-After", "2"}}));
    auto transport = makeHttpTransport();
    HttpCall call;
    call.url = limited.url() + "/hook";
    call.body = "{}";
    call.headers = {{"Content-Type", "application/json"}};
    HttpAnswer a = transport->send(call, "", 5s);
    EXPECT_EQ(a.status, 429);
    EXPECT_EQ(a.body, "slow down");
    EXPECT_EQ(a.retryAfter, 2000ms);
}

TEST(NotifyIntegration, NotifierWaitsForRetryAfter) {
    Receiver limited([](const HttpRequest&, ResponseWriter& w, int n) {
        if (n == 1) return w.respond(429, {{"Retry-After", "1"}}, "");
        w.respond(200, {}, "ok");
    });
    auto o = fast();
    o.maxBackoff = 10s;
    Notifier n(o, makeHttpTransport());
    Destination d;
    d.service = "generic";
    d.address = limited.url() + "/hook";
    auto started = std::chrono::steady_clock::now();
    ASSERT_TRUE(n.send(d, sample()));
    ASSERT_TRUE(n.drain(30s));
    EXPECT_GE(std::chrono::steady_clock::now() - started, 1s);
    EXPECT_EQ(n.stats().delivered, 1u);
    EXPECT_EQ(limited.requests().size(), 2u);
}

TEST(NotifyIntegration, ConnectionRefusedIsATransportErrorWithoutTheUrl) {
    int port;
    {
        testing::HttpServer closed({});
        closed.start([](const HttpRequest&, ResponseWriter& w) { w.respond(200, {}, ""); });
        port = closed.port();
    }
    HttpCall call;
    call.url = "http://127.0.0.1:" + std::to_string(port) + "/services/SECRET";
    HttpAnswer a = makeHttpTransport()->send(call, "", 5s);
    EXPECT_EQ(a.status, 0);
    EXPECT_FALSE(a.error.empty());
    EXPECT_EQ(a.error.find("SECRET"), std::string::npos) << a.error;
}

TEST(NotifyIntegration, TimeoutEndsTheCall) {
    Receiver slow([](const HttpRequest&, ResponseWriter& w, int) {
        std::this_thread::sleep_for(2s);
        w.respond(200, {}, "late");
    });
    HttpCall call;
    call.url = slow.url() + "/hook";
    auto started = std::chrono::steady_clock::now();
    HttpAnswer a = makeHttpTransport()->send(call, "", 200ms);
    EXPECT_EQ(a.status, 0);
    EXPECT_NE(a.error.find("timed out"), std::string::npos) << a.error;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

TEST(NotifyIntegration, MalformedUrlIsNotQuoted) {
    HttpCall call;
    call.url = "http://[SECRET/x";
    HttpAnswer a = makeHttpTransport()->send(call, "", 1s);
    EXPECT_EQ(a.status, 0);
    EXPECT_EQ(a.error.find("SECRET"), std::string::npos) << a.error;
}

// A loopback server acting as the proxy: plain http goes to it in absolute form.
TEST(NotifyIntegration, PlainHttpThroughAProxy) {
    Receiver proxy(answer(200, "ok"));
    Notifier n(fast(), makeHttpTransport());
    Destination d;
    d.service = "slack";
    d.address = "http://hooks.example.invalid/services/T/B/X";
    d.proxy = proxy.url();
    ASSERT_TRUE(n.send(d, sample()));
    ASSERT_TRUE(n.drain(30s));
    EXPECT_EQ(n.stats().delivered, 1u);
    auto reqs = proxy.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].target, "http://hooks.example.invalid/services/T/B/X");
    EXPECT_EQ(reqs[0].header("host"), "hooks.example.invalid");
    EXPECT_EQ(json::parse(reqs[0].body)["attachments"][0]["fields"][0]["value"], "4f2c1e0");
}

TEST(NotifyIntegration, ProxyCredentialsFromTheProxyUrl) {
    Receiver proxy([](const HttpRequest& req, ResponseWriter& w, int) {
        if (req.header("proxy-authorization") != "Basic YWxpY2U6czpjcmV0")
            return w.respond(407, {{"Proxy-Authenticate", "Basic realm=\"proxy\""}}, "");
        w.respond(200, {}, "ok");
    });
    Destination d;
    d.service = "generic";
    d.address = "http://receiver.example.invalid/hook";
    d.proxy = "http://alice:s%3Acret@" + proxy.url().substr(7);  // user alice, password s:cret
    Notifier n(fast(), makeHttpTransport());
    ASSERT_TRUE(n.send(d, sample()));
    ASSERT_TRUE(n.drain(30s));
    EXPECT_EQ(n.stats().delivered, 1u);
}

// https is verified against the system's CAs: a self-signed loopback server is refused.
TEST(NotifyIntegration, HttpsVerifiesCertificates) {
    auto ca = testing::generateCa("sluice-test-ca");
    auto cert = testing::issueCertificate(ca, "127.0.0.1", {"127.0.0.1"}, false);
    testing::HttpServerOptions options;
    options.tls = true;
    options.certPem = cert.certPem + ca.certPem;
    options.keyPem = cert.keyPem;
    Receiver tls(answer(200, "ok"), options);
    ASSERT_EQ(tls.url().rfind("https://", 0), 0u);
    HttpCall call;
    call.url = tls.url() + "/hook";
    HttpAnswer a = makeHttpTransport()->send(call, "", 5s);
    EXPECT_EQ(a.status, 0);
    EXPECT_FALSE(a.error.empty());
    EXPECT_TRUE(tls.requests().empty()) << a.error;
    RecordProperty("error", a.error);
}

}  // namespace
}  // namespace sluice::notify
