// The services' renderings: the exact HTTP call each chat API expects, and what is refused.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sluice/notify/notifier.h"

namespace sluice::notify {
namespace {

using nlohmann::json;

Message sample(Severity severity = Severity::Warn) {
    Message m;
    m.title = "Canary podinfo.test rolled back";
    m.text = "Halt advancement\nerror rate too high";
    m.severity = severity;
    m.fields = {{"Revision", "4f2c1e0"}, {"Metric", "request-success-rate 92.1 < 99"}};
    return m;
}

HttpCall render(const std::string& service, const Destination& to, const Message& m) {
    const Service* s = findService(service);
    if (!s) throw std::logic_error("no service " + service);
    return s->render(to, m);
}

Destination dest(const std::string& service, const std::string& address) {
    Destination d;
    d.service = service;
    d.address = address;
    return d;
}

TEST(Severity, NamesParseAndReach) {
    EXPECT_STREQ(toString(Severity::Info), "info");
    EXPECT_STREQ(toString(Severity::Warn), "warn");
    EXPECT_STREQ(toString(Severity::Error), "error");
    EXPECT_EQ(parseSeverity("info"), Severity::Info);
    EXPECT_EQ(parseSeverity("warn"), Severity::Warn);
    EXPECT_EQ(parseSeverity("error"), Severity::Error);
    EXPECT_EQ(parseSeverity("Error"), Severity::Error);
    EXPECT_EQ(parseSeverity("fatal"), std::nullopt);
    EXPECT_EQ(parseSeverity(""), std::nullopt);
    EXPECT_TRUE(reaches(Severity::Error, Severity::Warn));
    EXPECT_TRUE(reaches(Severity::Warn, Severity::Warn));
    EXPECT_FALSE(reaches(Severity::Info, Severity::Warn));
    EXPECT_TRUE(reaches(Severity::Info, Severity::Info));
    EXPECT_FALSE(reaches(Severity::Warn, Severity::Error));
}

TEST(Services, NamesAndAliases) {
    EXPECT_EQ(serviceNames(), (std::vector<std::string>{"discord", "gchat", "generic", "msteams",
                                                        "rocket", "slack"}));
    EXPECT_EQ(findService("teams"), findService("msteams"));
    EXPECT_EQ(findService("googlechat"), findService("gchat"));
    EXPECT_EQ(findService("rocketchat"), findService("rocket"));
    EXPECT_EQ(findService("webhook"), findService("generic"));
    EXPECT_NE(findService("slack"), nullptr);
    EXPECT_EQ(findService("pagerduty"), nullptr);
    EXPECT_EQ(findService(""), nullptr);
    for (const auto& name : serviceNames()) EXPECT_EQ(builtinServices().count(name), 1u);
}

TEST(Label, ServiceAndHostOnly) {
    Destination d = dest("slack", "https://hooks.slack.com/services/T000/B000/XXXXSECRET");
    EXPECT_EQ(d.label(), "slack (hooks.slack.com)");
    d = dest("gchat", "https://chat.googleapis.com/v1/spaces/AAA/messages?key=KEY&token=TOK");
    EXPECT_EQ(d.label(), "gchat (chat.googleapis.com)");
    d = dest("generic", "http://user:password@10.0.0.1:8080/hook#frag");
    EXPECT_EQ(d.label(), "generic (10.0.0.1:8080)");
    d = dest("slack", "");
    d.token = "xoxb-secret-token";
    d.channel = "#ops";
    EXPECT_EQ(d.label(), "slack (slack.com)");
    EXPECT_EQ(dest("discord", "").label(), "discord (no address)");
    EXPECT_EQ(dest("discord", "not a url").label(), "discord (no address)");
    for (const auto& l :
         {dest("slack", "https://hooks.slack.com/services/T000/B000/XXXXSECRET").label()}) {
        EXPECT_EQ(l.find("SECRET"), std::string::npos);
        EXPECT_EQ(l.find("services"), std::string::npos);
    }
}

TEST(Slack, IncomingWebhook) {
    Destination d = dest("slack", "https://hooks.slack.com/services/T/B/X");
    d.channel = "#deploys";
    d.username = "sluice";
    Message m = sample(Severity::Error);
    m.text = "a < b & c > d\n<!channel>";
    HttpCall call = render("slack", d, m);
    EXPECT_EQ(call.method, "POST");
    EXPECT_EQ(call.url, "https://hooks.slack.com/services/T/B/X");
    EXPECT_EQ(
        call.headers,
        (std::map<std::string, std::string>{{"Content-Type", "application/json; charset=utf-8"}}));
    json expected = {
        {"text", "Canary podinfo.test rolled back\na &lt; b &amp; c &gt; d\n&lt;!channel&gt;"},
        {"channel", "#deploys"},
        {"username", "sluice"},
        {"attachments",
         {{{"color", "danger"},
           {"fallback", "Canary podinfo.test rolled back"},
           {"fields",
            {{{"title", "Revision"}, {"value", "4f2c1e0"}, {"short", true}},
             {{"title", "Metric"},
              {"value", "request-success-rate 92.1 &lt; 99"},
              {"short", true}}}}}}}};
    EXPECT_EQ(json::parse(call.body), expected);
}

TEST(Slack, ColoursBySeverityAndOptionalKeys) {
    Destination d = dest("slack", "https://hooks.slack.com/services/T/B/X");
    Message m;
    m.title = "Application guestbook synced";
    for (auto [sev, colour] : {std::pair{Severity::Info, "good"},
                               {Severity::Warn, "warning"},
                               {Severity::Error, "danger"}}) {
        m.severity = sev;
        json body = json::parse(render("slack", d, m).body);
        EXPECT_EQ(body["attachments"][0]["color"], colour);
        EXPECT_FALSE(body.contains("channel"));
        EXPECT_FALSE(body.contains("username"));
        EXPECT_EQ(body["text"], "Application guestbook synced");
        EXPECT_EQ(body["attachments"][0]["fields"], json::array());
    }
}

TEST(Slack, ChatPostMessageWithToken) {
    Destination d = dest("slack", "");
    d.token = "xoxb-1234";
    d.channel = "C0123";
    HttpCall call = render("slack", d, sample());
    EXPECT_EQ(call.url, "https://slack.com/api/chat.postMessage");
    EXPECT_EQ(call.headers.at("Authorization"), "Bearer xoxb-1234");
    EXPECT_EQ(call.headers.at("Content-Type"), "application/json; charset=utf-8");
    json body = json::parse(call.body);
    EXPECT_EQ(body["channel"], "C0123");
    EXPECT_EQ(body["attachments"][0]["color"], "warning");

    d.address = "http://127.0.0.1:9999/";
    EXPECT_EQ(render("slack", d, sample()).url, "http://127.0.0.1:9999/api/chat.postMessage");

    d.channel = "";
    EXPECT_THROW(render("slack", d, sample()), std::invalid_argument);
}

TEST(Slack, FailureReadsOkFalse) {
    const Service* s = findService("slack");
    EXPECT_EQ(s->failure({200, "ok", "", {}}), std::nullopt);
    EXPECT_EQ(s->failure({200, R"({"ok":true,"ts":"1.2"})", "", {}}), std::nullopt);
    EXPECT_EQ(s->failure({200, R"({"ok":false,"error":"channel_not_found"})", "", {}}),
              "slack: channel_not_found");
    EXPECT_EQ(s->failure({404, "no_service", "", {}}), "status 404: no_service");
    EXPECT_EQ(s->failure({500, "<html>secret echo</html>", "", {}}), "status 500");
    EXPECT_EQ(s->failure({0, "", "Failed to connect", {}}), "Failed to connect");
}

TEST(Service, DefaultFailureIsAny2xx) {
    const Service* s = findService("generic");
    EXPECT_EQ(s->failure({200, "", "", {}}), std::nullopt);
    EXPECT_EQ(s->failure({204, "", "", {}}), std::nullopt);
    EXPECT_EQ(s->failure({302, "", "", {}}), "status 302");
    EXPECT_EQ(s->failure({400, "body", "", {}}), "status 400");
    EXPECT_EQ(s->failure({0, "", "", {}}), "no answer");
}

TEST(MsTeams, MessageCard) {
    Destination d =
        dest("teams", "https://example.webhook.office.com/webhookb2/abc/IncomingWebhook/x");
    Message m = sample(Severity::Info);
    HttpCall call = render("teams", d, m);
    EXPECT_EQ(call.url, d.address);
    EXPECT_EQ(call.headers,
              (std::map<std::string, std::string>{{"Content-Type", "application/json"}}));
    json expected = {
        {"@type", "MessageCard"},
        {"@context", "https://schema.org/extensions"},
        {"themeColor", "2EB886"},
        {"summary", "Canary podinfo.test rolled back"},
        {"title", "Canary podinfo.test rolled back"},
        {"text", "Halt advancement\n\nerror rate too high"},
        {"sections",
         {{{"facts",
            {{{"name", "Revision"}, {"value", "4f2c1e0"}},
             {{"name", "Metric"}, {"value", "request-success-rate 92.1 &lt; 99"}}}}}}}};
    EXPECT_EQ(json::parse(call.body), expected);

    m.fields.clear();
    m.severity = Severity::Error;
    json body = json::parse(render("msteams", d, m).body);
    EXPECT_FALSE(body.contains("sections"));
    EXPECT_EQ(body["themeColor"], "A30200");
}

TEST(MsTeams, WorkflowWebhookGetsAnAdaptiveCard) {
    Destination d = dest("msteams",
                         "https://prod-01.westeurope.logic.azure.com:443/workflows/abc/triggers/"
                         "manual/paths/invoke?api-version=2016-06-01&sig=SECRET");
    HttpCall call = render("msteams", d, sample(Severity::Error));
    EXPECT_EQ(call.url, d.address);
    json card = {{"type", "AdaptiveCard"},
                 {"version", "1.4"},
                 {"$schema", "http://adaptivecards.io/schemas/adaptive-card.json"},
                 {"body",
                  {{{"type", "TextBlock"},
                    {"text", "Canary podinfo.test rolled back"},
                    {"weight", "Bolder"},
                    {"size", "Medium"},
                    {"color", "Attention"},
                    {"wrap", true}},
                   {{"type", "TextBlock"},
                    {"text", "Halt advancement\nerror rate too high"},
                    {"wrap", true}},
                   {{"type", "FactSet"},
                    {"facts",
                     {{{"title", "Revision"}, {"value", "4f2c1e0"}},
                      {{"title", "Metric"}, {"value", "request-success-rate 92.1 < 99"}}}}}}}};
    json expected = {
        {"type", "message"},
        {"attachments",
         {{{"contentType", "application/vnd.microsoft.card.adaptive"}, {"content", card}}}}};
    EXPECT_EQ(json::parse(call.body), expected);
    EXPECT_EQ(d.label(), "msteams (prod-01.westeurope.logic.azure.com:443)");
    d.address = "https://default0.environment.api.powerplatform.com/powerautomate/x";
    EXPECT_EQ(json::parse(render("msteams", d, sample()).body)["type"], "message");
}

TEST(Discord, NativeWebhookWithEmbed) {
    Destination d = dest("discord", "https://discord.com/api/webhooks/123/tok");
    d.username = "sluice";
    d.channel = "ignored";
    Message m = sample(Severity::Warn);
    m.text = "2*3 _x_";
    HttpCall call = render("discord", d, m);
    EXPECT_EQ(call.url, "https://discord.com/api/webhooks/123/tok");
    EXPECT_EQ(call.headers.at("Content-Type"), "application/json");
    json expected = {{"username", "sluice"},
                     {"allowed_mentions", {{"parse", json::array()}}},
                     {"embeds",
                      {{{"title", "Canary podinfo.test rolled back"},
                        {"description", "2\\*3 \\_x\\_"},
                        {"color", 0xDAA038},
                        {"fields",
                         {{{"name", "Revision"}, {"value", "4f2c1e0"}, {"inline", true}},
                          {{"name", "Metric"},
                           {"value", "request-success-rate 92.1 < 99"},
                           {"inline", true}}}}}}}};
    EXPECT_EQ(json::parse(call.body), expected);
}

TEST(Discord, LimitsAreKept) {
    Destination d = dest("discord", "https://discord.com/api/webhooks/123/tok");
    Message m;
    m.title = std::string(300, 'T');
    m.text = std::string(5000, 'x');
    for (int i = 0; i < 30; ++i) m.fields.push_back({"f" + std::to_string(i), ""});
    json embed = json::parse(render("discord", d, m).body)["embeds"][0];
    EXPECT_EQ(embed["title"].get<std::string>().size(), 256u);
    EXPECT_EQ(embed["description"].get<std::string>().size(), 4096u);
    EXPECT_EQ(embed["fields"].size(), 25u);
    EXPECT_EQ(embed["fields"][0]["value"], "-");
}

TEST(Rocket, SlackCompatibleWebhook) {
    Destination d = dest("rocketchat", "https://chat.example.com/hooks/abc/def");
    d.channel = "#ops";
    d.username = "sluice";
    HttpCall call = render("rocketchat", d, sample(Severity::Error));
    EXPECT_EQ(call.url, d.address);
    json expected = {
        {"text", "Canary podinfo.test rolled back\nHalt advancement\nerror rate too high"},
        {"channel", "#ops"},
        {"username", "sluice"},
        {"attachments",
         {{{"color", "#A30200"},
           {"fields",
            {{{"title", "Revision"}, {"value", "4f2c1e0"}, {"short", true}},
             {{"title", "Metric"},
              {"value", "request-success-rate 92.1 < 99"},
              {"short", true}}}}}}}};
    EXPECT_EQ(json::parse(call.body), expected);
}

TEST(GChat, TextAndCard) {
    Destination d =
        dest("googlechat", "https://chat.googleapis.com/v1/spaces/A/messages?key=k&token=t");
    Message m = sample();
    m.text = "<users/all> look";
    HttpCall call = render("googlechat", d, m);
    EXPECT_EQ(call.url, d.address);
    EXPECT_EQ(call.headers.at("Content-Type"), "application/json; charset=UTF-8");
    json expected = {{"text", "Canary podinfo.test rolled back\n&lt;users/all&gt; look"},
                     {"cardsV2",
                      {{{"cardId", "sluice"},
                        {"card",
                         {{"sections",
                           {{{"widgets",
                              {{{"decoratedText", {{"topLabel", "Revision"}, {"text", "4f2c1e0"}}}},
                               {{"decoratedText",
                                 {{"topLabel", "Metric"},
                                  {"text", "request-success-rate 92.1 &lt; 99"}}}}}}}}}}}}}}};
    EXPECT_EQ(json::parse(call.body), expected);
    m.fields = {{"Lines", "a\nb"}};
    EXPECT_EQ(json::parse(render("gchat", d, m).body)["cardsV2"][0]["card"]["sections"][0]
                                                     ["widgets"][0]["decoratedText"]["text"],
              "a<br>b");
    m.fields.clear();
    EXPECT_EQ(json::parse(render("gchat", d, m).body),
              (json{{"text", "Canary podinfo.test rolled back\n&lt;users/all&gt; look"}}));
}

TEST(Generic, JsonBodyAndHeaders) {
    Destination d = dest("webhook", "http://receiver.example:8080/notify");
    d.headers = {{"X-Api-Key", "k"}, {"content-type", "application/vnd.sluice+json"}};
    HttpCall call = render("webhook", d, sample(Severity::Info));
    EXPECT_EQ(call.url, "http://receiver.example:8080/notify");
    EXPECT_EQ(call.headers,
              (std::map<std::string, std::string>{
                  {"X-Api-Key", "k"}, {"content-type", "application/vnd.sluice+json"}}));
    json expected = {
        {"title", "Canary podinfo.test rolled back"},
        {"text", "Halt advancement\nerror rate too high"},
        {"severity", "info"},
        {"fields", {{"Revision", "4f2c1e0"}, {"Metric", "request-success-rate 92.1 < 99"}}}};
    EXPECT_EQ(json::parse(call.body), expected);
    d.headers = {};
    EXPECT_EQ(render("generic", d, sample()).headers.at("Content-Type"), "application/json");
}

TEST(Generic, BadHeadersAreRefused) {
    Destination d = dest("generic", "http://receiver.example/notify");
    d.headers = {{"X-Evil", "a\r\nX-Injected: 1"}};
    EXPECT_THROW(render("generic", d, sample()), std::invalid_argument);
    d.headers = {{"Bad Name", "v"}};
    EXPECT_THROW(render("generic", d, sample()), std::invalid_argument);
}

TEST(Services, InvalidDestinationsAndMessages) {
    for (const auto& name : serviceNames()) {
        SCOPED_TRACE(name);
        EXPECT_THROW(render(name, dest(name, ""), sample()), std::invalid_argument);
        EXPECT_THROW(render(name, dest(name, "ftp://host/x"), sample()), std::invalid_argument);
        EXPECT_THROW(render(name, dest(name, "hooks.example.com/x"), sample()),
                     std::invalid_argument);
        EXPECT_THROW(render(name, dest(name, "https:///path"), sample()), std::invalid_argument);
        EXPECT_THROW(render(name, dest(name, "https://example.com/"), Message{}),
                     std::invalid_argument);
        EXPECT_NO_THROW(render(name, dest(name, "https://example.com/hook"), sample()));
    }
}

TEST(Services, ErrorsNeverQuoteTheAddressOrToken) {
    for (const auto& name : serviceNames()) {
        Destination d = dest(name, "ftp://host/SECRETPATH");
        d.token = "xoxb-SECRETTOKEN";
        try {
            render(name, d, sample());
        } catch (const std::invalid_argument& e) {
            EXPECT_EQ(std::string(e.what()).find("SECRET"), std::string::npos) << e.what();
        }
    }
}

TEST(Services, InvalidUtf8IsReplacedNotThrown) {
    Message m;
    m.title = "bad \xff byte";
    for (const auto& name : serviceNames())
        EXPECT_NO_THROW(render(name, dest(name, "https://example.com/hook"), m)) << name;
}

}  // namespace
}  // namespace sluice::notify
