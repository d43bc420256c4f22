#include "projection.h"

#include <gtest/gtest.h>

#include "sluice/util/yaml_json.h"

namespace sluice::plugin {
namespace {

json configMap(json data) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", "settings"}, {"namespace", "demo"}}},
            {"data", std::move(data)}};
}

json withServerFields(json live) {
    live["metadata"]["uid"] = "0b7e";
    live["metadata"]["resourceVersion"] = "42";
    live["metadata"]["creationTimestamp"] = "2026-12-04T12:00:00Z";
    live["metadata"]["labels"] = {{"added-by", "someone-else"}};
    return live;
}

json deployment(json containers, int replicas = 2) {
    return {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", "web"}, {"namespace", "demo"}}},
            {"spec",
             {{"replicas", replicas},
              {"template", {{"spec", {{"containers", std::move(containers)}}}}}}}};
}

// The printed texts differ exactly when the controller's compare() sees a difference.
void expectConsistent(const json& desired, const json& live,
                      const std::vector<diff::IgnoreRule>& ignore = {},
                      const std::string& manager = "sluice") {
    ProjectedPair p = project(desired, live, ignore, manager);
    const bool textsDiffer = jsonToYaml(p.desired) != jsonToYaml(p.live);
    EXPECT_EQ(textsDiffer, diff::compare(desired, live, ignore, manager).modified)
        << "desired:\n"
        << jsonToYaml(p.desired) << "live:\n"
        << jsonToYaml(p.live);
}

TEST(PluginProjection, LiveKeepsOnlyWhatTheManifestSets) {
    json desired = configMap({{"a", "1"}});
    json live = withServerFields(configMap({{"a", "1"}, {"extra", "x"}}));
    live["status"] = {{"x", 1}};
    ProjectedPair p = project(desired, live, {}, "sluice");
    EXPECT_EQ(p.live, desired);
    EXPECT_EQ(p.desired, desired);
    expectConsistent(desired, live);
}

TEST(PluginProjection, ChangedValueShowsLiveValue) {
    json desired = configMap({{"a", "2"}});
    json live = withServerFields(configMap({{"a", "1"}}));
    ProjectedPair p = project(desired, live, {}, "sluice");
    EXPECT_EQ(p.live["data"]["a"], "1");
    EXPECT_EQ(p.desired["data"]["a"], "2");
    expectConsistent(desired, live);
}

TEST(PluginProjection, NormalisedEqualValuesAreShownAsDesiredWritesThem) {
    json c = {{{"name", "app"},
               {"image", "web:1"},
               {"resources", {{"limits", {{"cpu", "500m"}, {"memory", "1Gi"}}}}}}};
    json l = {{{"name", "app"},
               {"image", "web:1"},
               {"imagePullPolicy", "IfNotPresent"},
               {"resources", {{"limits", {{"cpu", "0.5"}, {"memory", "1024Mi"}}}}}}};
    json desired = deployment(c);
    json live = withServerFields(deployment(l));
    ProjectedPair p = project(desired, live, {}, "sluice");
    EXPECT_EQ(p.live, p.desired) << jsonToYaml(p.live);
    expectConsistent(desired, live);
}

TEST(PluginProjection, AssociativeListsMatchByKey) {
    json desired =
        deployment({{{"name", "a"}, {"image", "a:2"}}, {{"name", "b"}, {"image", "b:1"}}});
    json live = withServerFields(deployment(
        {{{"name", "b"}, {"image", "b:1"}, {"terminationMessagePath", "/dev/termination-log"}},
         {{"name", "a"}, {"image", "a:1"}}}));
    ProjectedPair p = project(desired, live, {}, "sluice");
    const json& containers = p.live["spec"]["template"]["spec"]["containers"];
    ASSERT_EQ(containers.size(), 2u) << containers.dump();
    EXPECT_EQ(containers[0], (json{{"name", "a"}, {"image", "a:1"}}));
    EXPECT_EQ(containers[1], (json{{"name", "b"}, {"image", "b:1"}}));
    expectConsistent(desired, live);
    // A container git adds that the cluster lacks is absent from the live side.
    json more = deployment({{{"name", "a"}, {"image", "a:1"}}, {{"name", "c"}, {"image", "c:1"}}});
    ProjectedPair q = project(more, live, {}, "sluice");
    EXPECT_EQ(q.live["spec"]["template"]["spec"]["containers"].size(), 1u);
    expectConsistent(more, live);
}

TEST(PluginProjection, FieldsTheControllerAppliedBeforeStayVisible) {
    json desired = configMap({{"a", "1"}});
    json live = withServerFields(configMap({{"a", "1"}, {"old", "gone-from-git"}}));
    live["metadata"]["managedFields"] = {
        {{"manager", "sluice"},
         {"operation", "Apply"},
         {"apiVersion", "v1"},
         {"fieldsType", "FieldsV1"},
         {"fieldsV1", {{"f:data", {{"f:a", json::object()}, {"f:old", json::object()}}}}}}};
    ProjectedPair p = project(desired, live, {}, "sluice");
    EXPECT_EQ(p.live["data"]["old"], "gone-from-git");
    EXPECT_FALSE(p.desired["data"].contains("old"));
    expectConsistent(desired, live);
    // Another manager's field is not ours to remove: not shown.
    live["metadata"]["managedFields"][0]["manager"] = "kubectl";
    EXPECT_FALSE(project(desired, live, {}, "sluice").live["data"].contains("old"));
    expectConsistent(desired, live);
}

TEST(PluginProjection, IgnoreDifferencesTakesFieldsOutOfBothSides) {
    json desired = deployment({{{"name", "a"}, {"image", "a:1"}}}, 2);
    json live = withServerFields(deployment({{{"name", "a"}, {"image", "a:1"}}}, 5));
    diff::IgnoreRule rule;
    rule.kind = "Deployment";
    rule.jsonPointers = {"/spec/replicas"};
    ProjectedPair p = project(desired, live, {rule}, "sluice");
    EXPECT_FALSE(p.desired["spec"].contains("replicas"));
    EXPECT_FALSE(p.live["spec"].contains("replicas"));
    EXPECT_EQ(p.live, p.desired);
    expectConsistent(desired, live, {rule});
    expectConsistent(desired, live, {});
}

TEST(PluginProjection, SecretStringDataAndMissingLive) {
    json desired = {{"apiVersion", "v1"},
                    {"kind", "Secret"},
                    {"metadata", {{"name", "s"}, {"namespace", "demo"}}},
                    {"stringData", {{"k", "v"}}}};
    ProjectedPair p = project(desired, json(), {}, "sluice");
    EXPECT_TRUE(p.live.is_null());
    EXPECT_EQ(p.desired["data"]["k"], "dg==");
    json live = desired;
    live.erase("stringData");
    live["data"] = {{"k", "dg=="}};
    expectConsistent(desired, withServerFields(live));
    live["data"]["k"] = "eA==";
    expectConsistent(desired, withServerFields(live));
}

TEST(PluginProjection, WithoutServerFields) {
    json live = withServerFields(configMap({{"a", "1"}}));
    live["metadata"]["managedFields"] = json::array();
    live["status"] = json::object();
    json l = withoutServerFields(live);
    EXPECT_FALSE(l["metadata"].contains("uid"));
    EXPECT_FALSE(l["metadata"].contains("managedFields"));
    EXPECT_FALSE(l.contains("status"));
    EXPECT_EQ(l["metadata"]["labels"]["added-by"], "someone-else");
}

}  // namespace
}  // namespace sluice::plugin
