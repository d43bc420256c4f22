#include "sluice/util/json_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::util {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(JsonReader, PathsNameTheField) {
    std::vector<std::string> errors;
    json object = json::object();
    JsonReader nested(object, "spec.service", errors);
    EXPECT_EQ(nested.pathOf("port"), "spec.service.port");
    JsonReader root(object, "", errors);
    EXPECT_EQ(root.pathOf("spec"), "spec");
    nested.error("port", "is required");
    EXPECT_THAT(errors, ElementsAre("spec.service.port: is required"));
}

TEST(JsonReader, AbsentAndNullFieldsReadAsNothingWithoutErrors) {
    std::vector<std::string> errors;
    json object = {{"gone", nullptr}};
    JsonReader r(object, "spec", errors);
    EXPECT_EQ(r.field("gone"), nullptr);
    EXPECT_EQ(r.field("missing"), nullptr);
    EXPECT_FALSE(r.string("gone"));
    EXPECT_FALSE(r.boolean("gone"));
    EXPECT_FALSE(r.integer("gone"));
    EXPECT_FALSE(r.boundedInt("gone", 0, 1));
    EXPECT_FALSE(r.number("gone"));
    EXPECT_EQ(r.object("gone"), nullptr);
    EXPECT_EQ(r.array("gone"), nullptr);
    EXPECT_FALSE(r.child("gone"));
    EXPECT_THAT(r.objects("gone"), IsEmpty());
    EXPECT_THAT(r.strings("gone"), IsEmpty());
    EXPECT_THAT(errors, IsEmpty());
}

TEST(JsonReader, ScalarsOfTheRightType) {
    std::vector<std::string> errors;
    json object = {{"s", "text"}, {"b", true}, {"i", 7}, {"f", 3.0}, {"n", 0.25}};
    JsonReader r(object, "spec", errors);
    EXPECT_EQ(r.string("s"), "text");
    EXPECT_EQ(r.boolean("b"), true);
    EXPECT_EQ(r.integer("i"), 7);
    EXPECT_EQ(r.integer("f"), 3);  // YAML may write an integer as 3.0
    EXPECT_EQ(r.boundedInt("i", 1, 10), 7);
    EXPECT_EQ(r.number("n"), 0.25);
    EXPECT_EQ(r.number("i"), 7.0);
    EXPECT_THAT(errors, IsEmpty());
}

TEST(JsonReader, WrongTypesAreReportedOncePerField) {
    std::vector<std::string> errors;
    json object = {{"s", 1},   {"b", "yes"},      {"i", 1.5},     {"n", "1"},
                   {"o", "x"}, {"a", {{"k", 1}}}, {"big", 1e300}, {"r", 11}};
    JsonReader r(object, "spec", errors);
    EXPECT_FALSE(r.string("s"));
    EXPECT_FALSE(r.boolean("b"));
    EXPECT_FALSE(r.integer("i"));
    EXPECT_FALSE(r.integer("big"));
    EXPECT_FALSE(r.number("n"));
    EXPECT_EQ(r.object("o"), nullptr);
    EXPECT_EQ(r.array("a"), nullptr);
    EXPECT_FALSE(r.boundedInt("r", 0, 10));
    EXPECT_THAT(errors,
                ElementsAre("spec.s: must be a string", "spec.b: must be a boolean",
                            "spec.i: must be an integer", "spec.big: must be an integer",
                            "spec.n: must be a number", "spec.o: must be an object",
                            "spec.a: must be a list", "spec.r: must be between 0 and 10, got 11"));
}

TEST(JsonReader, ChildAndElementReadersCarryTheirPath) {
    std::vector<std::string> errors;
    json object = json::parse(R"({
        "service": {"port": "80"},
        "metrics": [{"name": 1}, "oops", {"name": "ok"}]
    })");
    JsonReader r(object, "spec", errors);
    std::optional<JsonReader> service = r.child("service");
    ASSERT_TRUE(service);
    EXPECT_EQ(service->path(), "spec.service");
    EXPECT_FALSE(service->integer("port"));
    std::vector<JsonReader> metrics = r.objects("metrics");
    ASSERT_EQ(metrics.size(), 2u);
    EXPECT_FALSE(metrics[0].string("name"));
    EXPECT_EQ(metrics[1].string("name"), "ok");
    EXPECT_EQ(metrics[1].path(), "spec.metrics[2]");
    EXPECT_THAT(errors, ElementsAre("spec.service.port: must be an integer",
                                    "spec.metrics[1]: must be an object",
                                    "spec.metrics[0].name: must be a string"));
}

TEST(JsonReader, ChildOfANonObjectIsAnError) {
    std::vector<std::string> errors;
    json object = {{"service", json::array()}};
    JsonReader r(object, "spec", errors);
    EXPECT_FALSE(r.child("service"));
    EXPECT_THAT(errors, ElementsAre("spec.service: must be an object"));
}

TEST(JsonReader, StringsKeepTheGoodElements) {
    std::vector<std::string> errors;
    json object = {{"hosts", {"a", 2, "b"}}, {"one", "a"}, {"other", 1}};
    JsonReader r(object, "spec", errors);
    EXPECT_THAT(r.strings("hosts"), ElementsAre("a", "b"));
    EXPECT_THAT(r.strings("one"), IsEmpty());
    EXPECT_THAT(r.strings("other", "must be a list of strings"), IsEmpty());
    EXPECT_THAT(errors, ElementsAre("spec.hosts[1]: must be a string", "spec.one: must be a list",
                                    "spec.other: must be a list of strings"));
}

TEST(JsonReader, StringMapKeepsTheStringValues) {
    std::vector<std::string> errors;
    json object = {{"labels", {{"app", "x"}, {"replicas", 2}}}, {"annotations", "a=b"}};
    JsonReader r(object, "spec.apex", errors);
    EXPECT_EQ(r.stringMap("labels"), (std::map<std::string, std::string>{{"app", "x"}}));
    EXPECT_THAT(r.stringMap("annotations"), IsEmpty());
    EXPECT_THAT(r.stringMap("absent"), IsEmpty());
    EXPECT_THAT(errors, ElementsAre("spec.apex.labels.replicas: must be a string",
                                    "spec.apex.annotations: must be an object"));
}

TEST(JsonReader, UnknownAndUnsupportedFields) {
    std::vector<std::string> errors;
    json object = {{"name", "x"}, {"nmae", "y"}, {"hydrator", json::object()}};
    JsonReader r(object, "spec", errors);
    r.rejectUnsupported("hydrator", "use spec.source");
    r.rejectUnsupported("absent", "never reported");
    r.rejectUnknown({"name", "hydrator"});
    EXPECT_THAT(errors, ElementsAre("spec.hydrator: not supported (use spec.source)",
                                    "spec.nmae: unknown field"));
}

TEST(JsonReader, ANonObjectHasNoFields) {
    std::vector<std::string> errors;
    json list = json::array({1, 2});
    JsonReader r(list, "spec", errors);
    EXPECT_FALSE(r.isObject());
    EXPECT_EQ(r.field("0"), nullptr);
    r.rejectUnknown({});
    r.rejectUnsupported("x", "y");
    EXPECT_THAT(errors, IsEmpty());
}

}  // namespace
}  // namespace sluice::util
