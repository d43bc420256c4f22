// AppProject spec.orphanedResources: OrphanedResourceWarning on the Applications of a project
// with warn: true while their destination namespace holds objects no Application manages
// (among the kinds the controller watches there), the ignore list, ownerReferences, and no
// status write when nothing changed.
#include <gtest/gtest.h>

#include "harness.h"

namespace sluice::apptest {
namespace {

const char* kOrphaned = "OrphanedResourceWarning";

json allowAll() {
    return {{"sourceRepos", {"*"}},
            {"destinations", {{{"server", "*"}, {"namespace", "*"}}}},
            {"clusterResourceWhitelist", {{{"group", "*"}, {"kind", "*"}}}}};
}

json configMap(const std::string& name, const json& extraMetadata = json::object()) {
    json metadata = {{"name", name}, {"namespace", kDestNs}};
    metadata.update(extraMetadata);
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", metadata},
            {"data", {{"value", "x"}}}};
}

class OrphansTest : public ControllerTest {
  protected:
    void SetUp() override {
        ControllerTest::SetUp();
        server_->createFromFile(testing::sourcePath("crds/sluice.io_appprojects.yaml"));
        git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")},
                            {"other/config.yaml", configMapYaml("other-settings", "b")}});
    }
    json inProject(const std::string& name, const std::string& project) {
        json a = application(name, "app", automated());
        a["spec"]["project"] = project;
        return a;
    }
    std::optional<std::string> condition(const std::string& app, const std::string& type) {
        for (const json& c : status(app).value("conditions", json::array()))
            if (c.value("type", "") == type) return c.value("message", "");
        return std::nullopt;
    }
    bool synced(const std::string& app) {
        return eventually([&] {
            return statusAt(app, "/sync/status") == "Synced" &&
                   statusAt(app, "/operationState/phase") == "Succeeded";
        });
    }
    // Reconciles a few times; the condition as it is then.
    std::optional<std::string> settled(const std::string& app, const std::string& type) {
        for (int i = 0; i < 3; ++i) controller_->reconcileNow(kControlNs, app);
        return condition(app, type);
    }
};

TEST_F(OrphansTest, WarnsOfUnmanagedObjectsUntilIgnored) {
    json spec = allowAll();
    spec["orphanedResources"] = {{"warn", true}};
    createProject("team-a", spec);
    startController(defaultOptions());
    server_->create(inProject("web", "team-a"));
    ASSERT_TRUE(synced("web")) << status("web").dump(2);
    // Its own ConfigMap, and the defaults Argo CD excludes, are no orphans.
    server_->create(configMap("kube-root-ca.crt"));
    EXPECT_EQ(settled("web", kOrphaned), std::nullopt) << status("web").dump(2);
    EXPECT_TRUE(eventsFor("FieldsNotImplemented").empty()) << "orphanedResources has an effect";

    // A hand-made ConfigMap: noticed without waiting for the poll interval.
    server_->create(configMap("hand-made"));
    ASSERT_TRUE(eventually([&] {
        return condition("web", kOrphaned) == "Application has 1 orphaned resources";
    })) << status("web").dump(2);

    // An object with an ownerReference is not top level: not counted.
    server_->create(configMap("owned", {{"ownerReferences",
                                         {{{"apiVersion", "v1"},
                                           {"kind", "ConfigMap"},
                                           {"name", "hand-made"},
                                           {"uid", "0b6d0e4c-1111-2222-3333-444455556666"}}}}}));
    EXPECT_EQ(settled("web", kOrphaned), "Application has 1 orphaned resources");

    // Nothing changed: reconciles write nothing.
    const uint64_t before = writes();
    for (int i = 0; i < 3; ++i) controller_->reconcileNow(kControlNs, "web");
    EXPECT_EQ(writes(), before);

    // A second orphan is counted.
    server_->create(configMap("hand-made-2"));
    ASSERT_TRUE(eventually([&] {
        return condition("web", kOrphaned) == "Application has 2 orphaned resources";
    })) << status("web").dump(2);

    // Ignored by name glob: the condition goes.
    patchProject("team-a", {{"orphanedResources",
                             {{"ignore", {{{"kind", "ConfigMap"}, {"name", "hand-*"}}}}}}});
    ASSERT_TRUE(eventually([&] { return !condition("web", kOrphaned); })) << status("web").dump(2);
}

TEST_F(OrphansTest, MonitoringWithoutWarnOrWithoutTheFieldSetsNoCondition) {
    json spec = allowAll();
    spec["orphanedResources"] = {{"warn", true}};
    createProject("team-a", spec);
    startController(defaultOptions());
    server_->create(inProject("web", "team-a"));
    ASSERT_TRUE(synced("web")) << status("web").dump(2);
    server_->create(configMap("hand-made"));
    ASSERT_TRUE(eventually([&] { return condition("web", kOrphaned).has_value(); }))
        << status("web").dump(2);
    // warn: false (monitoring still on, as Argo CD shows orphans in its UI): no condition.
    patchProject("team-a", {{"orphanedResources", {{"warn", false}}}});
    ASSERT_TRUE(eventually([&] { return !condition("web", kOrphaned); })) << status("web").dump(2);
    // {} (warn absent): none either.
    patchProject("team-a", {{"orphanedResources", nullptr}});
    patchProject("team-a", {{"orphanedResources", json::object()}});
    EXPECT_EQ(settled("web", kOrphaned), std::nullopt);
    // No orphanedResources at all (the default project): none.
    server_->create(application("plain", "other", automated()));
    ASSERT_TRUE(synced("plain")) << status("plain").dump(2);
    EXPECT_EQ(settled("plain", kOrphaned), std::nullopt);
}

TEST_F(OrphansTest, AnotherApplicationsObjectsAreNotOrphans) {
    json spec = allowAll();
    spec["orphanedResources"] = {{"warn", true}};
    createProject("team-a", spec);
    startController(defaultOptions());
    server_->create(inProject("web", "team-a"));
    json other = application("other", "other", automated());  // default project
    server_->create(other);
    ASSERT_TRUE(synced("web")) << status("web").dump(2);
    ASSERT_TRUE(synced("other")) << status("other").dump(2);
    EXPECT_EQ(settled("web", kOrphaned), std::nullopt) << status("web").dump(2);
}

}  // namespace
}  // namespace sluice::apptest
