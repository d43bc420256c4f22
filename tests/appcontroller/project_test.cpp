// AppProjects enforced by the Application controller: each rule refused with its condition and
// nothing applied or pruned, project changes re-evaluating their Applications, and sync windows
// driven by the test clock.
#include <gtest/gtest.h>

#include "harness.h"

namespace sluice::apptest {
namespace {

json allowAll() {
    return {{"sourceRepos", {"*"}},
            {"destinations", {{{"server", "*"}, {"namespace", "*"}}}},
            {"clusterResourceWhitelist", {{{"group", "*"}, {"kind", "*"}}}}};
}

class ProjectTest : public ControllerTest {
  protected:
    void SetUp() override {
        ControllerTest::SetUp();
        server_->createFromFile(testing::sourcePath("crds/sluice.io_appprojects.yaml"));
    }
    std::string condition(const std::string& app, const std::string& type) {
        for (const json& c : status(app).value("conditions", json::array()))
            if (c.value("type", "") == type) return c.value("message", "");
        return "";
    }
    json inProject(const std::string& name, const std::string& project, json syncPolicy) {
        json a = application(name, "app", std::move(syncPolicy));
        a["spec"]["project"] = project;
        return a;
    }
    bool conditionHas(const std::string& app, const std::string& type, const std::string& text) {
        return eventually([&] { return condition(app, type).find(text) != std::string::npos; });
    }
    void commitApp() {
        git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")},
                            {"app/deploy.yaml", deploymentYaml("web", "nginx:1.25")}});
    }
    bool synced(const std::string& app) {
        return eventually([&] {
            return statusAt(app, "/sync/status") == "Synced" &&
                   statusAt(app, "/operationState/phase") == "Succeeded";
        });
    }
};

TEST_F(ProjectTest, MissingProjectIsInvalidSpecUntilCreated) {
    commitApp();
    startController(defaultOptions());
    server_->create(inProject("orphan", "team-x", automated()));
    ASSERT_TRUE(conditionHas("orphan", "InvalidSpecError",
                             "Application referencing project team-x which does not exist"))
        << status("orphan").dump(2);
    EXPECT_EQ(statusAt("orphan", "/sync/status"), "Unknown");
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
    // Creating the project re-evaluates its Applications without waiting for a poll.
    createProject("team-x", allowAll());
    ASSERT_TRUE(synced("orphan")) << status("orphan").dump(2);
    EXPECT_EQ(condition("orphan", "InvalidSpecError"), "");
    EXPECT_TRUE(object("v1", "ConfigMap", "settings"));
}

TEST_F(ProjectTest, SourceRepoNotPermittedUntilTheProjectChanges) {
    commitApp();
    json spec = allowAll();
    spec["sourceRepos"] = {"!" + kRepo, "https://git.example.com/*"};
    createProject("team-a", spec);
    startController(defaultOptions());
    server_->create(inProject("src", "team-a", automated()));
    ASSERT_TRUE(conditionHas("src", "InvalidSpecError",
                             "application repo " + kRepo + " is not permitted in project 'team-a'"))
        << status("src").dump(2);
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
    EXPECT_FALSE(eventsFor("InvalidSpec").empty());
    patchProject("team-a", {{"sourceRepos", {"https://git.example.com/org/*"}}});
    ASSERT_TRUE(synced("src")) << status("src").dump(2);
}

TEST_F(ProjectTest, DestinationNotPermitted) {
    commitApp();
    json spec = allowAll();
    spec["destinations"] = {{{"name", "in-cluster"}, {"namespace", "prod-*"}},
                            {{"server", "*"}, {"namespace", "!" + kDestNs}}};
    createProject("team-a", spec);
    startController(defaultOptions());
    server_->create(inProject("dst", "team-a", automated()));
    ASSERT_TRUE(conditionHas(
        "dst", "InvalidSpecError",
        "application destination server 'https://kubernetes.default.svc' and namespace 'demo' do "
        "not match any of the allowed destinations in project 'team-a'"))
        << status("dst").dump(2);
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
}

TEST_F(ProjectTest, ForbiddenKindAppliesAndPrunesNothing) {
    commitApp();
    createProject("team-a", allowAll());
    startController(defaultOptions());
    server_->create(inProject("kinds", "team-a", automated(true)));
    ASSERT_TRUE(synced("kinds")) << status("kinds").dump(2);
    // The next revision drops the ConfigMap (a prune) and the project now refuses Deployments.
    git_.commit(kRepo, {{"app/deploy.yaml", deploymentYaml("web", "nginx:1.26")}});
    patchProject("team-a", {{"namespaceResourceBlacklist", {{{"group", "apps"}, {"kind", "*"}}}}});
    ASSERT_TRUE(conditionHas("kinds", "ComparisonError",
                             "resource apps:Deployment is not permitted in project team-a"))
        << status("kinds").dump(2);
    EXPECT_TRUE(object("v1", "ConfigMap", "settings")) << "nothing pruned";
    EXPECT_EQ(at(*object("apps/v1", "Deployment", "web"), "/spec/template/spec/containers/0/image"),
              "nginx:1.25")
        << "nothing applied";
}

TEST_F(ProjectTest, ClusterScopedKindsNeedTheWhitelist) {
    git_.commit(kRepo,
                {{"app/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: extra\n"},
                 {"app/config.yaml", configMapYaml("settings", "a")}});
    json spec = allowAll();
    spec.erase("clusterResourceWhitelist");
    createProject("team-a", spec);
    startController(defaultOptions());
    server_->create(inProject("cluster", "team-a", automated()));
    ASSERT_TRUE(conditionHas("cluster", "ComparisonError",
                             "resource :Namespace is not permitted in project team-a "
                             "(clusterResourceWhitelist/Blacklist)"))
        << status("cluster").dump(2);
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
    EXPECT_FALSE(server_->get("v1", "Namespace", "", "extra"));
}

TEST_F(ProjectTest, AnAppProjectNamedDefaultReplacesTheBuiltInOne) {
    commitApp();
    startController(defaultOptions());
    server_->create(application("plain", "app", automated()));  // project: default
    ASSERT_TRUE(synced("plain")) << status("plain").dump(2);
    json spec = allowAll();
    spec["sourceRepos"] = {"https://elsewhere.example.com/*"};
    createProject("default", spec);
    ASSERT_TRUE(conditionHas("plain", "InvalidSpecError", "is not permitted in project 'default'"))
        << status("plain").dump(2);
}

TEST_F(ProjectTest, FieldsWithoutEffectAreReported) {
    commitApp();
    json spec = allowAll();
    spec["roles"] = {
        {{"name", "ci"}, {"policies", {"p, proj:team-a:ci, applications, sync, *, allow"}}}};
    createProject("team-a", spec);
    startController(defaultOptions());
    server_->create(inProject("roles", "team-a", automated()));
    ASSERT_TRUE(synced("roles"));
    ASSERT_TRUE(eventually([&] { return !eventsFor("FieldsNotImplemented").empty(); }));
    EXPECT_NE(eventsFor("FieldsNotImplemented")[0]
                  .value("message", "")
                  .find("AppProject team-a spec.roles"),
              std::string::npos);
    // Said once: more reconciles add nothing.
    for (int i = 0; i < 3; ++i) controller_->reconcileNow(kControlNs, "roles");
    EXPECT_EQ(eventsFor("FieldsNotImplemented").size(), 1u);
    EXPECT_EQ(eventsFor("FieldsNotImplemented")[0].value("count", 1), 1);
}

// The test clock starts at 2026-01-01T00:00:00Z.
TEST_F(ProjectTest, DenyWindowHoldsAutomatedSyncsUntilItCloses) {
    commitApp();
    json spec = allowAll();
    spec["syncWindows"] = {
        {{"kind", "deny"}, {"schedule", "0 0 * * *"}, {"duration", "1h"}, {"applications", {"*"}}}};
    createProject("team-a", spec);
    auto o = defaultOptions();
    o.clock = &fakeClock_;
    startController(o);
    server_->create(inProject("held", "team-a", automated()));
    ASSERT_TRUE(conditionHas("held", "SyncWindowBlocked",
                             "Sync operation blocked by sync window: an active deny window "
                             "(deny 0 0 * * * (1h)); automated sync held"))
        << status("held").dump(2);
    EXPECT_EQ(statusAt("held", "/sync/status"), "OutOfSync");
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
    EXPECT_FALSE(eventsFor("SyncBlocked").empty());
    fakeClock_.advance(std::chrono::minutes(59));
    fakeClock_.advance(std::chrono::seconds(50));
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
    fakeClock_.advance(std::chrono::seconds(11));  // 01:00:01, the window closed
    ASSERT_TRUE(synced("held")) << status("held").dump(2);
    EXPECT_EQ(condition("held", "SyncWindowBlocked"), "");
}

TEST_F(ProjectTest, ManualSyncsPassOnlyWindowsWithManualSync) {
    commitApp();
    json spec = allowAll();
    // Outside its allow window: 02:00-03:00 in Berlin is 01:00-02:00Z in winter.
    spec["syncWindows"] = {{{"kind", "allow"},
                            {"schedule", "0 2 * * *"},
                            {"duration", "1h"},
                            {"timeZone", "Europe/Berlin"},
                            {"namespaces", {kDestNs}}}};
    createProject("team-a", spec);
    auto o = defaultOptions();
    o.clock = &fakeClock_;
    startController(o);
    server_->create(inProject("manual", "team-a", json::object()));
    ASSERT_TRUE(eventually([&] { return statusAt("manual", "/sync/status") == "OutOfSync"; }));
    patchApp("manual", {{"operation",
                         {{"sync", {{"prune", true}}}, {"initiatedBy", {{"username", "alice"}}}}}});
    ASSERT_TRUE(eventually([&] {
        return statusAt("manual", "/operationState/phase") == "Running" &&
               statusAt("manual", "/operationState/message") ==
                   "Sync operation blocked by sync window";
    })) << status("manual").dump(2);
    EXPECT_TRUE(app("manual").contains("operation")) << "kept until a window allows it";
    EXPECT_NE(condition("manual", "SyncWindowBlocked").find("no allow window is active"),
              std::string::npos);
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
    // manualSync on the window lets the waiting operation run.
    spec["syncWindows"][0]["manualSync"] = true;
    patchProject("team-a", {{"syncWindows", spec["syncWindows"]}});
    ASSERT_TRUE(synced("manual")) << status("manual").dump(2);
    EXPECT_FALSE(app("manual").contains("operation"));
    EXPECT_TRUE(object("v1", "ConfigMap", "settings"));
}

TEST_F(ProjectTest, AllowWindowOpensOnTheTestClockInItsTimeZone) {
    commitApp();
    json spec = allowAll();
    // 01:00 Berlin is 00:00Z in winter: the window is open from the start.
    spec["syncWindows"] = {{{"kind", "allow"},
                            {"schedule", "0 1 * * *"},
                            {"duration", "30m"},
                            {"timeZone", "Europe/Berlin"},
                            {"clusters", {"in-cluster"}}}};
    createProject("team-a", spec);
    auto o = defaultOptions();
    o.clock = &fakeClock_;
    startController(o);
    server_->create(inProject("open", "team-a", automated()));
    ASSERT_TRUE(synced("open")) << status("open").dump(2);
    // After it closes, a new revision waits for the next day's window.
    fakeClock_.advance(std::chrono::minutes(31));
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "b")},
                        {"app/deploy.yaml", deploymentYaml("web", "nginx:1.25")}});
    controller_->refreshRepository(kRepo, "");
    ASSERT_TRUE(conditionHas("open", "SyncWindowBlocked", "no allow window is active"))
        << status("open").dump(2);
    EXPECT_EQ(at(*object("v1", "ConfigMap", "settings"), "/data/value"), "a");
    fakeClock_.advance(std::chrono::hours(24) - std::chrono::minutes(31));
    ASSERT_TRUE(eventually([&] {
        auto cm = object("v1", "ConfigMap", "settings");
        return cm && at(*cm, "/data/value") == "b";
    })) << status("open").dump(2);
}

}  // namespace
}  // namespace sluice::apptest
