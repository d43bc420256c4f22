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
#include "loopback_receiver.h"
#include "sluice/notify/notifier.h"
#include "sluice/telemetry/registry.h"

namespace sluice::notify {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::HttpRequest;
using testing::ResponseWriter;

using notifytest::answer;
using notifytest::Receiver;

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

Message withFields() {
    Message m;
    m.title = "Application guestbook sync failed";
    m.text = "one or more objects failed to apply\nsecond line";
    m.severity = Severity::Error;
    m.fields = {{"Revision", "4f2c1e0"}, {"Reason", "a < b & c"}};
    return m;
}

// An Office 365 connector (Teams incoming webhook): it takes a MessageCard and answers 200
// with the text "1"; without summary or text it answers 400, as the service does.
TEST(NotifyIntegration, TeamsConnectorMessageCard) {
    Receiver teams([](const HttpRequest& req, ResponseWriter& w, int) {
        json body = json::parse(req.body, nullptr, false);
        if (!body.is_object() || body.value("@type", "") != "MessageCard" ||
            (body.value("summary", "").empty() && body.value("text", "").empty()))
            return w.respond(400, {{"Content-Type", "text/plain"}}, "Summary or Text is required.");
        w.respond(200, {{"Content-Type", "text/plain"}}, "1");
    });
    Notifier n(fast(), makeHttpTransport());
    Destination d;
    d.service = "teams";
    d.address = teams.url() + "/webhookb2/abc@def/IncomingWebhook/ghi/jkl";
    ASSERT_TRUE(n.send(d, withFields()));
    ASSERT_TRUE(n.drain(30s));
    EXPECT_EQ(n.stats().delivered, 1u);
    auto reqs = teams.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].path, "/webhookb2/abc@def/IncomingWebhook/ghi/jkl");
    EXPECT_EQ(reqs[0].header("content-type").rfind("application/json", 0), 0u);
    json body = json::parse(reqs[0].body);
    EXPECT_EQ(body["@type"], "MessageCard");
    EXPECT_EQ(body["@context"], "https://schema.org/extensions");
    EXPECT_EQ(body["themeColor"], "A30200");
    EXPECT_EQ(body["summary"], "Application guestbook sync failed");
    EXPECT_EQ(body["title"], "Application guestbook sync failed");
    EXPECT_EQ(body["text"], "one or more objects failed to apply\n\nsecond line");
    ASSERT_EQ(body["sections"][0]["facts"].size(), 2u);
    EXPECT_EQ(body["sections"][0]["facts"][0]["name"], "Revision");
    EXPECT_EQ(body["sections"][0]["facts"][0]["value"], "4f2c1e0");
    EXPECT_EQ(body["sections"][0]["facts"][1]["value"], "a &lt; b &amp; c");
}

// A Teams Workflows webhook (*.logic.azure.com) gets an Adaptive Card; the receiver is reached
// through a loopback proxy (the host decides the format) and answers 202 with no body, as
// Power Automate does.
TEST(NotifyIntegration, TeamsWorkflowAdaptiveCard) {
    Receiver flow([](const HttpRequest& req, ResponseWriter& w, int) {
        json body = json::parse(req.body, nullptr, false);
        if (!body.is_object() || body.value("type", "") != "message" ||
            !body.contains("attachments"))
            return w.respond(400, {{"Content-Type", "application/json"}},
                             R"({"error":{"code":"InvalidRequestContent"}})");
        w.respond(202, {}, "");
    });
    Notifier n(fast(), makeHttpTransport());
    Destination d;
    d.service = "msteams";
    d.address =
        "http://prod-42.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/"
        "invoke?api-version=2016-06-01&sig=S";
    d.proxy = flow.url();
    ASSERT_TRUE(n.send(d, withFields()));
    ASSERT_TRUE(n.drain(30s));
    EXPECT_EQ(n.stats().delivered, 1u);
    auto reqs = flow.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].header("host"), "prod-42.westeurope.logic.azure.com");
    json body = json::parse(reqs[0].body);
    ASSERT_EQ(body["attachments"].size(), 1u);
    const json& attachment = body["attachments"][0];
    EXPECT_EQ(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
    const json& card = attachment["content"];
    EXPECT_EQ(card["type"], "AdaptiveCard");
    EXPECT_EQ(card["version"], "1.4");
    EXPECT_EQ(card["$schema"], "http://adaptivecards.io/schemas/adaptive-card.json");
    ASSERT_EQ(card["body"].size(), 3u);
    EXPECT_EQ(card["body"][0]["type"], "TextBlock");
    EXPECT_EQ(card["body"][0]["text"], "Application guestbook sync failed");
    EXPECT_EQ(card["body"][0]["color"], "Attention");
    EXPECT_EQ(card["body"][1]["text"], "one or more objects failed to apply\nsecond line");
    EXPECT_EQ(card["body"][2]["type"], "FactSet");
    EXPECT_EQ(card["body"][2]["facts"][1]["title"], "Reason");
    EXPECT_EQ(card["body"][2]["facts"][1]["value"], "a < b & c") << "no HTML in Adaptive Cards";
}

// A Rocket.Chat incoming webhook: answers {"success":true}, or 400 {"success":false} for a
// payload without text.
TEST(NotifyIntegration, RocketChatIncomingWebhook) {
    Receiver rocket([](const HttpRequest& req, ResponseWriter& w, int) {
        json body = json::parse(req.body, nullptr, false);
        if (!body.is_object() || !body.contains("text"))
            return w.respond(400, {{"Content-Type", "application/json"}},
                             R"({"success":false,"error":"invalid-payload"})");
        w.respond(200, {{"Content-Type", "application/json"}}, R"({"success":true})");
    });
    Notifier n(fast(), makeHttpTransport());
    Destination d;
    d.service = "rocketchat";
    d.address = rocket.url() + "/hooks/6f1e/TOKEN";
    d.channel = "#deploys";
    d.username = "sluice-bot";
    ASSERT_TRUE(n.send(d, withFields()));
    ASSERT_TRUE(n.drain(30s));
    EXPECT_EQ(n.stats().delivered, 1u);
    auto reqs = rocket.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].path, "/hooks/6f1e/TOKEN");
    json body = json::parse(reqs[0].body);
    EXPECT_EQ(body["text"],
              "Application guestbook sync failed\none or more objects failed to apply\nsecond "
              "line");
    EXPECT_EQ(body["channel"], "#deploys");
    EXPECT_EQ(body["username"], "sluice-bot");
    EXPECT_EQ(body["attachments"][0]["color"], "#A30200");
    EXPECT_EQ(body["attachments"][0]["fields"][0]["title"], "Revision");
    EXPECT_EQ(body["attachments"][0]["fields"][1]["value"], "a < b & c");
    EXPECT_EQ(body["attachments"][0]["fields"][1]["short"], true);
}

// A Google Chat space webhook: key and token in the query, answers with the created Message;
// a bad payload is 400 INVALID_ARGUMENT, as the Chat API answers.
TEST(NotifyIntegration, GoogleChatSpaceWebhook) {
    Receiver chat([](const HttpRequest& req, ResponseWriter& w, int) {
        json body = json::parse(req.body, nullptr, false);
        if (req.queryParam("key") != "K" || req.queryParam("token") != "T")
            return w.respond(401, {{"Content-Type", "application/json"}},
                             R"({"error":{"code":401,"status":"UNAUTHENTICATED"}})");
        if (!body.is_object() || (!body.contains("text") && !body.contains("cardsV2")))
            return w.respond(400, {{"Content-Type", "application/json"}},
                             R"({"error":{"code":400,"status":"INVALID_ARGUMENT"}})");
        json message = {{"name", "spaces/AAA/messages/1.1"}, {"text", body.value("text", "")}};
        w.respond(200, {{"Content-Type", "application/json; charset=UTF-8"}}, message.dump());
    });
    Notifier n(fast(), makeHttpTransport());
    Destination d;
    d.service = "googlechat";
    d.address = chat.url() + "/v1/spaces/AAA/messages?key=K&token=T";
    ASSERT_TRUE(n.send(d, withFields()));
    d.address = chat.url() + "/v1/spaces/AAA/messages?key=K&token=wrong";
    ASSERT_TRUE(n.send(d, withFields()));
    ASSERT_TRUE(n.drain(30s));
    EXPECT_EQ(n.stats().delivered, 1u);
    EXPECT_EQ(n.stats().failed, 1u) << "a 401 is final";
    auto reqs = chat.requests();
    ASSERT_EQ(reqs.size(), 2u);
    const HttpRequest& r = reqs[0].queryParam("token") == "T" ? reqs[0] : reqs[1];
    EXPECT_EQ(r.path, "/v1/spaces/AAA/messages");
    EXPECT_EQ(r.header("content-type"), "application/json; charset=UTF-8");
    json body = json::parse(r.body);
    EXPECT_EQ(body["text"],
              "Application guestbook sync failed\none or more objects failed to apply\nsecond "
              "line");
    ASSERT_EQ(body["cardsV2"].size(), 1u);
    EXPECT_EQ(body["cardsV2"][0]["cardId"], "sluice");
    const json& widgets = body["cardsV2"][0]["card"]["sections"][0]["widgets"];
    ASSERT_EQ(widgets.size(), 2u);
    EXPECT_EQ(widgets[0]["decoratedText"]["topLabel"], "Revision");
    EXPECT_EQ(widgets[0]["decoratedText"]["text"], "4f2c1e0");
    EXPECT_EQ(widgets[1]["decoratedText"]["text"], "a &lt; b &amp; c");
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
