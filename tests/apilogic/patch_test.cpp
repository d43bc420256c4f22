#include <gtest/gtest.h>

#include "apilogic/apilogic.h"

namespace sluice::apilogic {
namespace {

using fieldset::ListType;
using fieldset::Schema;

TEST(MergePatch, Rfc7386Examples) {
    json target = R"({"a":"b","c":{"d":"e","f":"g"}})"_json;
    json patch = R"({"a":"z","c":{"f":null}})"_json;
    EXPECT_EQ(applyMergePatch(target, patch), R"({"a":"z","c":{"d":"e"}})"_json);
    // Appendix A cases.
    EXPECT_EQ(applyMergePatch(R"({"a":["b"]})"_json, R"({"a":"c"})"_json), R"({"a":"c"})"_json);
    EXPECT_EQ(applyMergePatch(R"({"a":[{"b":"c"}]})"_json, R"({"a":[1]})"_json),
              R"({"a":[1]})"_json);
    EXPECT_EQ(applyMergePatch(R"(["a","b"])"_json, R"(["c","d"])"_json), R"(["c","d"])"_json);
    EXPECT_EQ(applyMergePatch(R"({"a":"b"})"_json, R"(["c"])"_json), R"(["c"])"_json);
    EXPECT_EQ(applyMergePatch(R"({"e":null})"_json, R"({"a":1})"_json), R"({"e":null,"a":1})"_json);
    EXPECT_EQ(applyMergePatch(R"([1,2])"_json, R"({"a":"b","c":null})"_json), R"({"a":"b"})"_json);
    EXPECT_EQ(applyMergePatch(json::object(), R"({"a":{"bb":{"ccc":null}}})"_json),
              R"({"a":{"bb":{}}})"_json);
}

TEST(JsonPatch, Operations) {
    json doc = R"({"a":{"b":[1,2,3]},"x/y":1,"m~n":2})"_json;
    json patch = R"([
      {"op":"add","path":"/a/b/1","value":9},
      {"op":"add","path":"/a/b/-","value":4},
      {"op":"remove","path":"/a/b/0"},
      {"op":"replace","path":"/x~1y","value":"slash"},
      {"op":"copy","from":"/m~0n","path":"/copied"},
      {"op":"move","from":"/copied","path":"/a/moved"},
      {"op":"test","path":"/a/moved","value":2}
    ])"_json;
    EXPECT_EQ(applyJsonPatch(doc, patch),
              R"({"a":{"b":[9,2,3,4],"moved":2},"x/y":"slash","m~n":2})"_json);
}

TEST(JsonPatch, AddReplacesWholeDocumentAndObjectMember) {
    EXPECT_EQ(applyJsonPatch(json::object(), R"([{"op":"add","path":"","value":[1]}])"_json),
              R"([1])"_json);
    EXPECT_EQ(applyJsonPatch(R"({"a":1})"_json, R"([{"op":"add","path":"/a","value":2}])"_json),
              R"({"a":2})"_json);
}

TEST(JsonPatch, FailedTestIsUnprocessable) {
    json doc = R"({"a":1})"_json;
    try {
        applyJsonPatch(doc, R"([{"op":"test","path":"/a","value":2}])"_json);
        FAIL() << "expected InvalidError";
    } catch (const InvalidError& e) {
        EXPECT_FALSE(e.badRequest);
        EXPECT_NE(std::string(e.what()).find("test failed"), std::string::npos);
    }
}

TEST(JsonPatch, MissingPathsAndBadIndexesFail) {
    json doc = R"({"a":[1]})"_json;
    EXPECT_THROW(applyJsonPatch(doc, R"([{"op":"remove","path":"/nope"}])"_json), InvalidError);
    EXPECT_THROW(applyJsonPatch(doc, R"([{"op":"replace","path":"/a/5","value":1}])"_json),
                 InvalidError);
    EXPECT_THROW(applyJsonPatch(doc, R"([{"op":"add","path":"/a/01","value":1}])"_json),
                 InvalidError);
    EXPECT_THROW(applyJsonPatch(doc, R"([{"op":"add","path":"/a/2","value":1}])"_json),
                 InvalidError);
    EXPECT_THROW(applyJsonPatch(doc, R"([{"op":"add","path":"/x/y","value":1}])"_json),
                 InvalidError);
    EXPECT_THROW(applyJsonPatch(doc, R"([{"op":"move","from":"/a","path":"/a/0"}])"_json),
                 InvalidError);
}

TEST(JsonPatch, MalformedPatchIsBadRequest) {
    for (const char* p : {R"({"op":"add"})", R"([{"op":"frobnicate","path":"/a"}])",
                          R"([{"op":"add","path":"/a"}])", R"([{"op":"add","path":"a","value":1}])",
                          R"([{"op":"remove","path":"/a~2"}])", R"([{"op":"move","path":"/a"}])"}) {
        try {
            applyJsonPatch(R"({"a":1})"_json, json::parse(p));
            ADD_FAILURE() << "accepted " << p;
        } catch (const InvalidError& e) {
            EXPECT_TRUE(e.badRequest) << p;
        }
    }
}

TEST(JsonPatch, FailureLeavesNoPartialResult) {
    json doc = R"({"a":1})"_json;
    EXPECT_THROW(
        applyJsonPatch(
            doc,
            R"([{"op":"add","path":"/b","value":2},{"op":"test","path":"/a","value":3}])"_json),
        InvalidError);
    EXPECT_EQ(doc, R"({"a":1})"_json);
}

Schema podSchema() {
    Schema s;
    s.setList("spec.containers", {ListType::Kind::Map, {"name"}, {}});
    s.setList("spec.containers[].env", {ListType::Kind::Map, {"name"}, {}});
    s.setList("spec.containers[].ports",
              {ListType::Kind::Map, {"containerPort", "protocol"}, {{"protocol", "TCP"}}});
    s.setList("metadata.finalizers", {ListType::Kind::Set, {}, {}});
    return s;
}

const json kPod = R"({
  "metadata":{"name":"p","labels":{"app":"a","tier":"web"},"finalizers":["x","y"]},
  "spec":{"containers":[
    {"name":"app","image":"app:1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],
     "ports":[{"containerPort":80}]},
    {"name":"side","image":"side:1"}],
   "tolerations":[{"key":"k1"}]}
})"_json;

TEST(StrategicMergePatch, MergesKeyedListsAndReplacesOthers) {
    json patch = R"({
      "metadata":{"labels":{"tier":null,"new":"1"}},
      "spec":{"containers":[{"name":"app","image":"app:2","env":[{"name":"C","value":"3"}]},
                            {"name":"extra","image":"e:1"}],
              "tolerations":[{"key":"k2"}]}
    })"_json;
    json out = applyStrategicMergePatch(kPod, patch, podSchema());
    EXPECT_EQ(out["metadata"]["labels"], R"({"app":"a","new":"1"})"_json);
    ASSERT_EQ(out["spec"]["containers"].size(), 3u);
    EXPECT_EQ(out["spec"]["containers"][0]["image"], "app:2");
    EXPECT_EQ(
        out["spec"]["containers"][0]["env"],
        R"([{"name":"A","value":"1"},{"name":"B","value":"2"},{"name":"C","value":"3"}])"_json);
    EXPECT_EQ(out["spec"]["containers"][1]["name"], "side");
    EXPECT_EQ(out["spec"]["containers"][2]["name"], "extra");
    EXPECT_EQ(out["spec"]["tolerations"], R"([{"key":"k2"}])"_json);  // not keyed: replaced
}

TEST(StrategicMergePatch, KeyDefaultsMatchItems) {
    json patch =
        R"({"spec":{"containers":[{"name":"app","ports":[{"containerPort":80,"protocol":"TCP","name":"http"}]}]}})"_json;
    json out = applyStrategicMergePatch(kPod, patch, podSchema());
    // Matched the existing item (protocol defaulted to TCP) instead of adding a second one.
    EXPECT_EQ(out["spec"]["containers"][0]["ports"],
              R"([{"containerPort":80,"name":"http","protocol":"TCP"}])"_json);
}

TEST(StrategicMergePatch, DeleteDirectivesInListsAndMaps) {
    json patch = R"({
      "metadata":{"labels":{"$patch":"replace","only":"me"}},
      "spec":{"containers":[{"name":"side","$patch":"delete"},
                            {"name":"app","env":[{"name":"A","$patch":"delete"}]}]}
    })"_json;
    json out = applyStrategicMergePatch(kPod, patch, podSchema());
    EXPECT_EQ(out["metadata"]["labels"], R"({"only":"me"})"_json);
    ASSERT_EQ(out["spec"]["containers"].size(), 1u);
    EXPECT_EQ(out["spec"]["containers"][0]["env"], R"([{"name":"B","value":"2"}])"_json);

    json delMap = applyStrategicMergePatch(
        kPod, R"({"metadata":{"labels":{"$patch":"delete"}}})"_json, podSchema());
    EXPECT_FALSE(delMap["metadata"].contains("labels"));
}

TEST(StrategicMergePatch, ReplaceWholeKeyedList) {
    json patch =
        R"({"spec":{"containers":[{"name":"only","image":"o:1"},{"$patch":"replace"}]}})"_json;
    json out = applyStrategicMergePatch(kPod, patch, podSchema());
    EXPECT_EQ(out["spec"]["containers"], R"([{"name":"only","image":"o:1"}])"_json);
}

TEST(StrategicMergePatch, PrimitiveSetListsMergeAndDelete) {
    json patch =
        R"({"metadata":{"finalizers":["z","x"],"$deleteFromPrimitiveList/finalizers":["y"]}})"_json;
    json out = applyStrategicMergePatch(kPod, patch, podSchema());
    EXPECT_EQ(out["metadata"]["finalizers"], R"(["x","z"])"_json);
}

TEST(StrategicMergePatch, SetElementOrder) {
    json patch = R"({"spec":{
      "$setElementOrder/containers":[{"name":"side"},{"name":"app"}],
      "containers":[{"name":"app","image":"app:3"}]}})"_json;
    json out = applyStrategicMergePatch(kPod, patch, podSchema());
    ASSERT_EQ(out["spec"]["containers"].size(), 2u);
    EXPECT_EQ(out["spec"]["containers"][0]["name"], "side");
    EXPECT_EQ(out["spec"]["containers"][1]["image"], "app:3");
    EXPECT_FALSE(out["spec"].contains("$setElementOrder/containers"));
}

TEST(StrategicMergePatch, RetainKeysClearsOtherFields) {
    json target =
        R"({"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}}}})"_json;
    json patch = R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}})"_json;
    json out = applyStrategicMergePatch(target, patch, Schema());
    EXPECT_EQ(out["spec"]["strategy"], R"({"type":"Recreate"})"_json);

    json bad =
        R"({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{"maxSurge":2}}}})"_json;
    try {
        applyStrategicMergePatch(target, bad, Schema());
        FAIL() << "expected InvalidError";
    } catch (const InvalidError& e) {
        EXPECT_FALSE(e.badRequest);
    }
}

TEST(StrategicMergePatch, ErrorsOnBadDirectivesAndShapes) {
    EXPECT_THROW(applyStrategicMergePatch(kPod, R"([1])"_json, podSchema()), InvalidError);
    EXPECT_THROW(
        applyStrategicMergePatch(kPod, R"({"spec":{"$patch":"explode"}})"_json, podSchema()),
        InvalidError);
    EXPECT_THROW(applyStrategicMergePatch(
                     kPod, R"({"spec":{"containers":[{"image":"nokey"}]}})"_json, podSchema()),
                 InvalidError);
    EXPECT_THROW(
        applyStrategicMergePatch(kPod, R"({"spec":{"containers":["str"]}})"_json, podSchema()),
        InvalidError);
    EXPECT_THROW(applyStrategicMergePatch(kPod, R"({"spec":{"$bogus":1}})"_json, podSchema()),
                 InvalidError);
}

TEST(StrategicMergePatch, MapsMergeEvenWhenApplyTreatsThemAtomic) {
    Schema s;
    s.setAtomicMap("spec.selector");
    json target = R"({"spec":{"selector":{"a":"1","b":"2"}}})"_json;
    json out =
        applyStrategicMergePatch(target, R"({"spec":{"selector":{"c":"3","a":null}}})"_json, s);
    EXPECT_EQ(out["spec"]["selector"], R"({"b":"2","c":"3"})"_json);
}

TEST(StrategicMergePatch, BuiltInDeploymentSchema) {
    json d = R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
      "spec":{"replicas":1,"template":{"spec":{"containers":[
        {"name":"app","image":"web:1","env":[{"name":"A","value":"1"}]},{"name":"side","image":"s:1"}]}}}})"_json;
    json patch = R"({"spec":{"replicas":3,"template":{"spec":{"containers":[
        {"name":"app","image":"web:2","env":[{"name":"B","value":"2"}]}]}}}})"_json;
    json out = applyStrategicMergePatch(d, patch, Schema::forKind("apps/v1", "Deployment"));
    EXPECT_EQ(out["spec"]["replicas"], 3);
    const json& cs = out["spec"]["template"]["spec"]["containers"];
    ASSERT_EQ(cs.size(), 2u);
    EXPECT_EQ(cs[0]["image"], "web:2");
    EXPECT_EQ(cs[0]["env"], R"([{"name":"A","value":"1"},{"name":"B","value":"2"}])"_json);
    EXPECT_EQ(cs[1]["name"], "side");
}

}  // namespace
}  // namespace sluice::apilogic
