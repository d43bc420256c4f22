#include "sluice/util/yaml_json.h"

#include <gtest/gtest.h>

#include <chrono>

#include "testutil/hostile.h"

#include <cmath>
#include <functional>
#include <string>

using sluice::jsonToYaml;
using sluice::yamlDocumentsToJson;
using sluice::yamlToJson;

namespace {

TEST(YamlJson, ResolvesPlainScalarsAsKubernetesDoes) {
    auto j = yamlToJson(R"(
a: 1
b: "1"
c: yes
d: 'on'
e: 1.5
f: ~
g: hello
h: 0x1F
i: -7
j: 500m
k: 1e3
l:
)");
    EXPECT_EQ(j["a"], 1);
    EXPECT_EQ(j["b"], "1");
    EXPECT_EQ(j["c"], true);
    EXPECT_EQ(j["d"], "on");
    EXPECT_DOUBLE_EQ(j["e"].get<double>(), 1.5);
    EXPECT_TRUE(j["f"].is_null());
    EXPECT_EQ(j["g"], "hello");
    EXPECT_EQ(j["h"], 31);
    EXPECT_EQ(j["i"], -7);
    EXPECT_EQ(j["j"], "500m");
    EXPECT_DOUBLE_EQ(j["k"].get<double>(), 1000.0);
    EXPECT_TRUE(j["l"].is_null());
}

TEST(YamlJson, ParsesJsonToo) {
    auto j = yamlToJson(
        R"({"kind":"Pod","spec":{"containers":[{"name":"a","ports":[{"containerPort":80}]}]}})");
    EXPECT_EQ(j["spec"]["containers"][0]["ports"][0]["containerPort"], 80);
}

TEST(YamlJson, MultiDocumentSkipsEmptyDocuments) {
    auto docs = yamlDocumentsToJson("a: 1\n---\n---\n# only a comment\n---\nb: 2\n");
    ASSERT_EQ(docs.size(), 2u);
    EXPECT_EQ(docs[1]["b"], 2);
}

TEST(YamlJson, ErrorsCarryLineNumbers) {
    try {
        yamlToJson("a: 1\nb: [1, 2\nc: 3\n");
        FAIL() << "expected YamlError";
    } catch (const sluice::YamlError& e) {
        EXPECT_GE(e.line, 2);
    }
}

TEST(YamlJson, DuplicateKeysAreRejected) {
    EXPECT_THROW(yamlToJson("a: 1\na: 2\n"), sluice::YamlError);
}

TEST(YamlJson, RoundTripKeepsTypes) {
    nlohmann::json j = {{"s", "true"},         {"n", 3},
                        {"b", false},          {"e", ""},
                        {"num", "0123"},       {"list", {1, "two", nullptr}},
                        {"m", {{"k", "v: x"}}}};
    EXPECT_EQ(yamlToJson(jsonToYaml(j)), j);
}

TEST(YamlJson, NumberFormsOfYaml11) {
    auto j = yamlToJson(R"(
dec: 1_000
oct: 0o17
legacyOct: 017
hex: -0x10
frac: .5
exp: 6.02e+23
signed: +3
notNumbers: [1.2.3, 0x, 1e, "12", 12abc, -, ., 0x_, 0o_, -0x__]
)");
    EXPECT_EQ(j["dec"], 1000);
    EXPECT_EQ(j["oct"], 15);
    EXPECT_EQ(j["legacyOct"], 15);
    EXPECT_EQ(j["hex"], -16);
    EXPECT_DOUBLE_EQ(j["frac"].get<double>(), 0.5);
    EXPECT_DOUBLE_EQ(j["exp"].get<double>(), 6.02e23);
    EXPECT_EQ(j["signed"], 3);
    for (const auto& v : j["notNumbers"]) EXPECT_TRUE(v.is_string()) << v.dump();
}

// Found by fuzzing: a key or value that is not UTF-8 made the JSON serialiser throw later,
// outside YamlError. It is refused while parsing, naming the line.
TEST(YamlJsonLimits, InvalidUtf8IsAYamlError) {
    for (const std::string bad :
         {"a: \"\xff\"\n", "? [\"\xc3\x28\"]\n: 1\n", "b: \xed\xa0\x80\n", "c: \xc0\xaf\n"}) {
        try {
            sluice::yamlToJson("x: 1\n" + bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const sluice::YamlError& e) {
            EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos) << e.what();
            EXPECT_EQ(e.line, 2);
        }
    }
    EXPECT_EQ(sluice::yamlToJson("k: \"caf\xc3\xa9 \xf0\x9f\x9a\x80\"\n")["k"],
              "caf\xc3\xa9 \xf0\x9f\x9a\x80");
}

// Found by fuzzing: on this input yaml-cpp reports empty documents without end.
TEST(YamlJsonLimits, AParserThatMakesNoProgressIsStopped) {
    try {
        sluice::yamlDocumentsToJson(",-----\nV");
        ADD_FAILURE() << "parsed";
    } catch (const sluice::YamlError& e) {
        // Stopped at once, not after the stream's budget of 512 MiB of empty documents.
        EXPECT_NE(std::string(e.what()).find("no progress"), std::string::npos) << e.what();
    }
}

std::string aliasBomb() {
    return sluice::testing::yamlAliasBomb();
}

std::string errorOf(const std::function<void()>& parse) {
    try {
        parse();
    } catch (const sluice::YamlError& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected a YamlError";
    return "";
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST(YamlJsonLimits, AliasBombIsRefusedBeforeItGrows) {
    std::string bomb = aliasBomb();
    ASSERT_LT(bomb.size(), 600u);
    sluice::YamlBudget budget;
    try {
        yamlToJson(bomb, budget);
        FAIL() << "expected a YamlError";
    } catch (const sluice::YamlError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "YAML alias expansion exceeds 10000 nodes (an alias bomb?)");
        EXPECT_EQ(e.line, 1);  // where the document starts
    }
    // It stopped at the alias allowance, not after gigabytes.
    EXPECT_LT(budget.spent.nodes, 20'000u);
    EXPECT_LT(budget.spent.bytes, 2'000'000u);
    EXPECT_TRUE(contains(errorOf([&] { yamlDocumentsToJson("x: 1\n---\n" + bomb); }),
                         "alias expansion exceeds"));
}

TEST(YamlJsonLimits, LargeScalarsRepeatedByAliasesAreRefused) {
    std::string text = "s: &s " + std::string(100'000, 'x') + "\nl: [";
    for (int i = 0; i < 1000; ++i) text += i ? ", *s" : "*s";
    text += "]\n";
    EXPECT_TRUE(contains(errorOf([&] { yamlToJson(text); }), "alias expansion exceeds"));
}

TEST(YamlJsonLimits, NodeInsideItsOwnAliasIsRefused) {
    // yaml-cpp's node graph makes this a cycle; walking it overflowed the stack.
    auto message = errorOf([] { yamlToJson("a: &a [1, *a]\n"); });
    EXPECT_EQ(message, "YAML alias *a is inside the node it refers to");
    EXPECT_TRUE(contains(errorOf([] { yamlToJson("&m {k: *m}"); }), "alias *m"));
}

TEST(YamlJsonLimits, OrdinaryAliasesConvertAsBefore) {
    auto j = yamlToJson(R"(
defaults: &defaults
  image: nginx:1.25
  env: &env [{name: MODE, value: "on"}, {name: LEVEL, value: 3}]
  enabled: yes
first:
  settings: *defaults
  env: *env
second: [*defaults, &label web, *label]
*label : key from an alias
)");
    nlohmann::json defaults = {
        {"image", "nginx:1.25"},
        {"env", {{{"name", "MODE"}, {"value", "on"}}, {{"name", "LEVEL"}, {"value", 3}}}},
        {"enabled", true}};
    nlohmann::json expected = {{"defaults", defaults},
                               {"first", {{"settings", defaults}, {"env", defaults["env"]}}},
                               {"second", {defaults, "web", "web"}},
                               {"web", "key from an alias"}};
    EXPECT_EQ(j, expected);
}

TEST(YamlJsonLimits, DeepNestingIsRefusedWithoutCrashing) {
    const std::string flow = std::string(100'000, '[') + std::string(100'000, ']');
    EXPECT_EQ(errorOf([&] { yamlToJson(flow); }), "YAML nesting deeper than 256 levels");
    std::string block;
    for (int i = 0; i < 300; ++i) block += std::string(2 * i, ' ') + "a:\n";
    EXPECT_EQ(errorOf([&] { yamlToJson(block); }), "YAML nesting deeper than 256 levels");
    EXPECT_TRUE(contains(errorOf([&] { yamlToJson(std::string(100'000, '[')); }), "nesting"));

    const std::string atLimit = std::string(256, '[') + std::string(256, ']');
    EXPECT_EQ(yamlToJson(atLimit).dump(), atLimit);
}

TEST(YamlJsonLimits, DepthCountsWhatAliasesBringIn) {
    sluice::YamlLimits limits;
    limits.maxDepth = 5;
    EXPECT_NO_THROW(yamlToJson("a: &a [[1]]\nb: [[*a]]\n", limits));  // 1 + 2 + 2 levels
    EXPECT_EQ(errorOf([&] { yamlToJson("a: &a [[1]]\nb: [[[*a]]]\n", limits); }),
              "YAML nesting deeper than 5 levels");
}

TEST(YamlJsonLimits, TighterLimits) {
    sluice::YamlLimits limits;
    limits.maxNodes = 8;  // the map, its three keys and values, and the list's item
    EXPECT_NO_THROW(yamlToJson("a: 1\nb: 2\nc: [x]\n", limits));
    EXPECT_EQ(errorOf([&] { yamlToJson("a: 1\nb: 2\nc: [x, y]\n", limits); }),
              "YAML exceeds 8 nodes");

    limits = {};
    limits.maxBytes = 1'000;
    EXPECT_TRUE(contains(errorOf([&] { yamlToJson("s: " + std::string(1'000, 'x'), limits); }),
                         "exceeds an estimated 1000 bytes"));

    // Aliases: the allowance, or the ratio times what the text holds.
    limits = {};
    limits.aliasNodes = 20;
    limits.aliasRatio = 1;
    const std::string five = "a: &a [1, 2, 3, 4]\nb: [*a, *a, *a, *a]\n";  // 9 own, 20 aliased
    EXPECT_NO_THROW(yamlToJson(five, limits));
    EXPECT_EQ(errorOf([&] { yamlToJson(five + "c: *a\n", limits); }),
              "YAML alias expansion exceeds 20 nodes (an alias bomb?)");
    limits.aliasRatio = 3;  // 11 own nodes allow 33
    EXPECT_NO_THROW(yamlToJson(five + "c: *a\n", limits));
}

TEST(YamlJsonLimits, ErrorsNameTheLineWhereTheDocumentStarts) {
    try {
        yamlDocumentsToJson("a: 1\n---\nb: 2\n---\n# bomb\n\n" + aliasBomb());
        FAIL() << "expected a YamlError";
    } catch (const sluice::YamlError& e) {
        EXPECT_EQ(e.line, 4);  // the "---" that opens it
    }
}

// Each document is within the limits; together they are not.
TEST(YamlJsonLimits, StreamLimitsSpanDocuments) {
    sluice::YamlLimits limits;
    limits.aliasNodes = 100;
    limits.aliasRatio = 1;
    // 14 nodes written out, 90 through aliases.
    const std::string doc =
        "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n";
    EXPECT_EQ(yamlDocumentsToJson(doc, limits).size(), 1u);
    try {
        yamlDocumentsToJson(doc + "---\n" + doc + "---\n" + doc, limits);
        FAIL() << "expected a YamlError";
    } catch (const sluice::YamlError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "YAML alias expansion exceeds 100 nodes over the stream's documents (an alias "
                  "bomb?)");
        EXPECT_EQ(e.line, 3);
    }

    limits = {};
    limits.maxStreamNodes = 10;
    EXPECT_EQ(yamlDocumentsToJson("a: 1\n---\nb: 2\n", limits).size(), 2u);
    EXPECT_EQ(errorOf([&] { yamlDocumentsToJson("a: 1\n---\nb: 2\n---\nc: [1, 2]\n", limits); }),
              "YAML exceeds 10 nodes over the stream's documents");
}

// How render reads a file: it splits the documents itself and shares one budget.
TEST(YamlJsonLimits, BudgetSpansCalls) {
    sluice::YamlLimits limits;
    limits.maxStreamNodes = 10;
    sluice::YamlBudget stream{limits, {}};
    EXPECT_NO_THROW(yamlToJson("a: [1, 2]\n", stream));
    EXPECT_EQ(stream.spent.nodes, 5u);
    EXPECT_NO_THROW(yamlToJson("b: [1, 2]\n", stream));
    EXPECT_THROW(yamlToJson("c: 1\n", stream), sluice::YamlError);
}

}  // namespace
