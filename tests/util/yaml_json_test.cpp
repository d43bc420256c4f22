#include "sluice/util/yaml_json.h"

#include <gtest/gtest.h>

#include <cmath>

using sluice::jsonToYaml;
using sluice::yamlDocumentsToJson;
using sluice::yamlToJson;

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
notNumbers: [1.2.3, 0x, 1e, "12", 12abc, -, .]
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
