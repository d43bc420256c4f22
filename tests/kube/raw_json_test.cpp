#include "sluice/kube/raw_json.h"

#include <gtest/gtest.h>

namespace sluice::kube {
namespace {

using nlohmann::json;

const std::vector<MemberPath> kRaw = {
    {"object", "status", "resources"},
    {"object", "status", "operationState", "syncResult", "resources"},
    {"object", "missing"}};

TEST(ParseKeepingRaw, KeepsTheNamedMembersAsTheirTextAndParsesTheRest) {
    const std::string text =
        R"({"type":"MODIFIED","object":{"metadata":{"name":"a \"q\" }]"},)"
        R"("status":{"resources":[{"kind":"ConfigMap","name":"x]}\\"},{"n":1.50}],)"
        R"("health":{"status":"Healthy"},)"
        R"("operationState":{"syncResult":{"resources":[ ],"revision":"abc"}}}}})";
    json doc = parseKeepingRaw(text, kRaw);
    ASSERT_TRUE(doc.is_object());
    const json& status = doc["object"]["status"];
    ASSERT_TRUE(status["resources"].is_string());
    EXPECT_EQ(status["resources"], R"([{"kind":"ConfigMap","name":"x]}\\"},{"n":1.50}])")
        << "exactly as written, escapes and number form included";
    EXPECT_EQ(status["health"]["status"], "Healthy");
    EXPECT_EQ(status["operationState"]["syncResult"]["resources"], "[ ]");
    EXPECT_EQ(status["operationState"]["syncResult"]["revision"], "abc");
    EXPECT_EQ(doc["object"]["metadata"]["name"], "a \"q\" }]");
    EXPECT_FALSE(doc["object"].contains("missing"));
    // Parsing the kept text gives what a full parse gives.
    json full = json::parse(text);
    EXPECT_EQ(json::parse(status["resources"].get<std::string>()),
              full["object"]["status"]["resources"]);
}

TEST(ParseKeepingRaw, ScalarsAtARawPathAreParsedAsUsual) {
    json doc = parseKeepingRaw(R"({"object":{"status":{"resources":"already text"}}})", kRaw);
    EXPECT_EQ(doc["object"]["status"]["resources"], "already text");
    doc = parseKeepingRaw(R"({"object":{"status":{"resources":null}}})", kRaw);
    EXPECT_TRUE(doc["object"]["status"]["resources"].is_null());
}

TEST(ParseKeepingRaw, EscapedMemberNamesAndWhitespace) {
    json doc =
        parseKeepingRaw("{ \"object\" : { \"st\\u0061tus\" : { \"resources\" : [1, 2] } } }", kRaw);
    EXPECT_EQ(doc["object"]["status"]["resources"], "[1, 2]");
}

TEST(ParseKeepingRaw, MalformedTextIsDiscardedAsByTheParser) {
    EXPECT_TRUE(parseKeepingRaw(R"({"object":{"status":{"resources":[1,2}})", kRaw).is_discarded());
    EXPECT_TRUE(parseKeepingRaw("{\"object\":", kRaw).is_discarded());
    EXPECT_TRUE(parseKeepingRaw("", kRaw).is_discarded());
    EXPECT_EQ(parseKeepingRaw("[1]", kRaw), json::parse("[1]"));
    EXPECT_EQ(parseKeepingRaw(R"({"a":1})", {}), json::parse(R"({"a":1})"));
}

}  // namespace
}  // namespace sluice::kube
