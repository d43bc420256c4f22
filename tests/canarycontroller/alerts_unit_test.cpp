// The controller's alert helpers (src/canarycontroller/alerts.cpp): AlertProvider + Secret to a
// notify::Destination, the revision text, the controller-wide defaults.
#include <gtest/gtest.h>

#include "impl.h"

namespace sluice::canarycontroller::detail {
namespace {

using nlohmann::json;

AlertProviderSpec provider(const json& spec) {
    return parseAlertProvider({{"spec", spec}});
}

TEST(AlertDestination, SpecAddressWithFlaggersDefaults) {
    auto r = destinationFor(provider({{"type", "slack"}, {"address", "https://hooks/x"}}), nullptr);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.destination.service, "slack");
    EXPECT_EQ(r.destination.address, "https://hooks/x");
    EXPECT_EQ(r.destination.channel, "general");
    EXPECT_EQ(r.destination.username, "sluice");
}

TEST(AlertDestination, TheSecretsAddressTokenAndProxyWin) {
    const auto p = provider({{"type", "slack"},
                             {"channel", "c"},
                             {"username", "bot"},
                             {"address", "https://spec/"},
                             {"proxy", "http://spec-proxy:3128"},
                             {"secretRef", {{"name", "s"}}}});
    EXPECT_EQ(p.secretName, "s");
    std::map<std::string, std::string> secret = {
        {"address", "https://secret/"}, {"apiToken", "xoxb-1"}, {"proxy", "http://p:3128"}};
    auto r = destinationFor(p, &secret);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.destination.address, "https://secret/");
    EXPECT_EQ(r.destination.token, "xoxb-1");
    EXPECT_EQ(r.destination.proxy, "http://p:3128");
    EXPECT_EQ(r.destination.channel, "c");
    EXPECT_EQ(r.destination.username, "bot");
}

TEST(AlertDestination, ErrorsNameNoSecretValue) {
    std::map<std::string, std::string> empty = {{"other", "hunter2"}};
    auto r =
        destinationFor(provider({{"type", "msteams"}, {"secretRef", {{"name", "s"}}}}), &empty);
    EXPECT_EQ(r.error, "Secret s has neither address nor token");
    EXPECT_EQ(destinationFor(provider({{"type", "msteams"}}), nullptr).error, "has no address");
    EXPECT_EQ(destinationFor(provider({{"address", "https://x/"}}), nullptr).error,
              "has no spec.type");
}

TEST(AlertDestination, ContainerImagesAndDefaults) {
    json d = {{"spec",
               {{"template",
                 {{"spec",
                   {{"containers", json::array({{{"name", "app"}, {"image", "app:2"}},
                                                {{"name", "proxy"}, {"image", "envoy:1"}}})}}}}}}}};
    EXPECT_EQ(containerImages(d), "app=app:2, proxy=envoy:1");
    EXPECT_EQ(containerImages(json::object()), "");

    EXPECT_TRUE(defaultDestinations({}).empty());
    DefaultAlertOptions o;
    o.slackUrl = "https://hooks.slack.test/x";
    o.slackChannel = "ops";
    o.msteamsUrl = "https://teams.test/y";
    auto to = defaultDestinations(o);
    ASSERT_EQ(to.size(), 2u);
    EXPECT_EQ(to[0].service, "slack");
    EXPECT_EQ(to[0].channel, "ops");
    EXPECT_EQ(to[0].username, "sluice");
    EXPECT_EQ(to[1].service, "msteams");
    EXPECT_EQ(to[1].address, "https://teams.test/y");
}

TEST(AlertDestination, MessageCarriesSeverityAndFields) {
    canaryengine::AlertMessage a;
    a.severity = canaryengine::AlertSeverity::Error;
    a.title = "Canary app.test rolled back";
    a.text = "Rolling back app";
    a.fields = {{"Failed checks", "request-success-rate 50 < 99"}};
    notify::Message m = messageFor(a);
    EXPECT_EQ(m.severity, notify::Severity::Error);
    EXPECT_EQ(m.title, a.title);
    EXPECT_EQ(m.fields, a.fields);
    EXPECT_EQ(toNotify(canaryengine::AlertSeverity::Warn), notify::Severity::Warn);
}

}  // namespace
}  // namespace sluice::canarycontroller::detail
