// Application controller against the test API server and real git repositories: self-heal,
// rollback, the resources finalizer, and two Applications claiming one object.
#include "app_fixture.h"

namespace sluice::apptest {
namespace {

class AppLifecycle : public AppIntegration {
  protected:
    // A `kubectl edit`-style change: a merge patch by another field manager.
    json editAsKubectl(const std::string& cm, const std::string& key, const std::string& value) {
        kube::PatchOptions o;
        o.fieldManager = "kubectl-edit";
        return user_->patch(kConfigMap, kDestNs, cm, kube::PatchType::Merge,
                            json{{"data", {{key, value}}}}.dump(), o);
    }
};

TEST_F(AppLifecycle, SelfHealRevertsAnotherManagersEditAndNamesIt) {
    repo_->write("app/config.yaml", configMapYaml("settings", {{"color", "blue"}}));
    std::string sha = repo_->commit("one");
    startController();
    createApp(application("healer", repo_->url(), "app",
                          {{"automated", {{"prune", true}, {"selfHeal", true}}}}));
    ASSERT_TRUE(waitSynced("healer", sha)) << describe("healer");

    json edited = editAsKubectl("settings", "color", "red");
    ASSERT_EQ(edited["data"]["color"], "red");
    ASSERT_TRUE(eventually([&] { return configMapValue("settings", "color") == "blue"; }))
        << describe("healer");
    ASSERT_TRUE(eventually([&] { return hasEvent("healer", "DriftCorrected", "kubectl-edit"); }))
        << describe("healer");
    EXPECT_TRUE(waitSynced("healer", sha)) << describe("healer");
    EXPECT_GE(controller_->stats().driftCorrections, 1u);
}

TEST_F(AppLifecycle, WithoutSelfHealDriftIsReportedAndLeftAlone) {
    repo_->write("app/config.yaml", configMapYaml("settings", {{"color", "blue"}}));
    std::string sha = repo_->commit("one");
    startController();
    createApp(application("watcher", repo_->url(), "app", {{"automated", {{"prune", true}}}}));
    ASSERT_TRUE(waitSynced("watcher", sha)) << describe("watcher");

    editAsKubectl("settings", "color", "red");
    ASSERT_TRUE(eventually([&] {
        json st = appStatus("watcher");
        if (st["sync"].value("status", "") != "OutOfSync") return false;
        for (const auto& r : st.value("resources", json::array()))
            if (r.value("name", "") == "settings" && r.value("status", "") == "OutOfSync")
                return true;
        return false;
    })) << describe("watcher");
    ASSERT_TRUE(reconcileAgain("watcher"));
    EXPECT_EQ(configMapValue("settings", "color"), "red") << describe("watcher");
    EXPECT_FALSE(hasEvent("watcher", "DriftCorrected")) << describe("watcher");
    EXPECT_EQ(controller_->stats().driftCorrections, 0u);
}

// Manual syncs through `operation` with automation off, then a rollback to history[0].
TEST_F(AppLifecycle, RollbackToAnEarlierHistoryEntry) {
    repo_->write("app/config.yaml", configMapYaml("settings", {{"version", "1"}}));
    std::string sha1 = repo_->commit("v1");
    startController();
    createApp(application("manual", repo_->url(), "app", json::object()));
    // Without automation nothing is applied; the app only reports what is missing.
    ASSERT_TRUE(eventually([&] {
        return appStatus("manual").value("sync", json::object()).value("status", "") == "OutOfSync";
    })) << describe("manual");
    EXPECT_FALSE(configMap("settings"));

    patchApp(
        "manual",
        {{"operation", {{"sync", {{"revision", sha1}}}, {"initiatedBy", {{"username", "ann"}}}}}});
    ASSERT_TRUE(waitSynced("manual", sha1)) << describe("manual");
    EXPECT_EQ(configMapValue("settings", "version"), "1");
    EXPECT_TRUE(eventually([&] { return !getApp("manual")->contains("operation"); }))
        << describe("manual");

    repo_->write("app/config.yaml", configMapYaml("settings", {{"version", "2"}}));
    std::string sha2 = repo_->commit("v2");
    patchApp("manual", {{"operation", {{"sync", {{"revision", sha2}}}}}});
    ASSERT_TRUE(eventually([&] { return configMapValue("settings", "version") == "2"; }))
        << describe("manual");
    ASSERT_TRUE(eventually([&] { return appStatus("manual")["history"].size() == 2; }))
        << describe("manual");

    json history = appStatus("manual")["history"];
    ASSERT_EQ(history[0]["revision"], sha1) << history.dump(2);
    const std::string rollbackTo = history[0]["revision"];
    patchApp("manual", {{"operation", {{"sync", {{"revision", rollbackTo}}}}}});
    ASSERT_TRUE(eventually([&] { return configMapValue("settings", "version") == "1"; }))
        << describe("manual");
    ASSERT_TRUE(eventually([&] { return appStatus("manual")["history"].size() == 3; }))
        << describe("manual");
    json st = appStatus("manual");
    EXPECT_EQ(st["history"][2]["revision"], sha1) << st.dump(2);
    EXPECT_EQ(st["history"][2]["id"], 2) << st.dump(2);
    EXPECT_EQ(st["operationState"]["syncResult"]["revision"], sha1) << st.dump(2);
    EXPECT_EQ(st["operationState"]["phase"], "Succeeded") << st.dump(2);
    // The target branch still points at v2, so the rolled-back app is out of sync with git.
    EXPECT_TRUE(eventually([&] {
        return appStatus("manual")["sync"].value("status", "") == "OutOfSync";
    })) << describe("manual");
    EXPECT_EQ(configMapValue("settings", "version"), "1");
}

TEST_F(AppLifecycle, FinalizerDeletesTheObjectsBeforeTheApplication) {
    repo_->write("app/config.yaml", configMapYaml("settings", {{"k", "1"}}));
    repo_->write("app/web.yaml", deploymentYaml("web"));
    repo_->write("app/kept.yaml",
                 configMapYaml("kept", {{"k", "1"}}, {{"sluice.io/sync-options", "Delete=false"}}));
    std::string sha = repo_->commit("one");
    startController();
    json app = application("doomed", repo_->url(), "app");
    app["metadata"]["finalizers"] = json::array({"resources-finalizer.sluice.io"});
    createApp(app);
    ASSERT_TRUE(waitSynced("doomed", sha)) << describe("doomed");
    ASSERT_TRUE(configMap("settings") && getObject("apps/v1", "Deployment", kDestNs, "web"));

    user_->remove(kApplication, kControlNs, "doomed");
    ASSERT_TRUE(eventually([&] { return !getApp("doomed"); })) << describe("doomed");
    // The finalizer is dropped only once the objects are gone.
    EXPECT_FALSE(configMap("settings"));
    EXPECT_FALSE(getObject("apps/v1", "Deployment", kDestNs, "web"));
    EXPECT_TRUE(configMap("kept")) << "Delete=false objects outlive the Application";
}

TEST_F(AppLifecycle, WithoutTheFinalizerObjectsStay) {
    repo_->write("app/config.yaml", configMapYaml("settings", {{"k", "1"}}));
    std::string sha = repo_->commit("one");
    startController();
    createApp(application("orphaner", repo_->url(), "app"));
    ASSERT_TRUE(waitSynced("orphaner", sha)) << describe("orphaner");

    user_->remove(kApplication, kControlNs, "orphaner");
    ASSERT_TRUE(eventually([&] { return !getApp("orphaner"); }));
    // A reconcile that starts after the deletion has seen it.
    ASSERT_TRUE(reconcileAgain("orphaner"));
    auto cm = configMap("settings");
    ASSERT_TRUE(cm) << "without the finalizer the Application's objects are left in place";
    EXPECT_EQ(annotation(*cm, "sluice.io/tracking-id"), "orphaner:/ConfigMap:demo/settings");
}

TEST_F(AppLifecycle, SecondApplicationDoesNotTakeOverAnObject) {
    repo_->write("alpha/shared.yaml", configMapYaml("shared", {{"owner", "alpha"}}));
    repo_->write("beta/shared.yaml", configMapYaml("shared", {{"owner", "beta"}}));
    std::string sha = repo_->commit("two apps, one object");
    startController();
    createApp(application("alpha", repo_->url(), "alpha"));
    ASSERT_TRUE(waitSynced("alpha", sha)) << describe("alpha");

    createApp(application("beta", repo_->url(), "beta"));
    ASSERT_TRUE(eventually([&] {
        auto c = condition(appStatus("beta"), "SharedResourceWarning");
        return c && c->value("message", "").find("alpha") != std::string::npos;
    })) << describe("beta");
    ASSERT_TRUE(reconcileAgain("beta"));
    auto cm = configMap("shared");
    ASSERT_TRUE(cm);
    EXPECT_EQ(annotation(*cm, "sluice.io/tracking-id"), "alpha:/ConfigMap:demo/shared");
    EXPECT_EQ((*cm)["data"]["owner"], "alpha");
    EXPECT_NE(appStatus("beta")["sync"].value("status", ""), "Synced") << describe("beta");
    // The first owner is not disturbed.
    EXPECT_EQ(appStatus("alpha")["sync"].value("status", ""), "Synced") << describe("alpha");
    EXPECT_FALSE(condition(appStatus("alpha"), "SharedResourceWarning")) << describe("alpha");
}

}  // namespace
}  // namespace sluice::apptest
