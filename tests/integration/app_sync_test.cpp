// Application controller against the test API server and real git repositories: first sync,
// updates by new commits, prune, PruneLast, allowEmpty, waves, Validate, CRD plus custom resource.
#include <algorithm>

#include "app_fixture.h"
#include "git_http_server.h"

namespace sluice::apptest {
namespace {

using testing::GitHttpServer;

bool hasResource(const json& status, const std::string& kind, const std::string& name,
                 const std::string& syncStatus) {
    for (const auto& r : status.value("resources", json::array()))
        if (r.value("kind", "") == kind && r.value("name", "") == name &&
            r.value("status", "") == syncStatus)
            return true;
    return false;
}

bool inInventory(const json& status, const std::string& kind, const std::string& name) {
    for (const auto& e : status.value("inventory", json::array()))
        if (e.value("kind", "") == kind && e.value("name", "") == name) return true;
    return false;
}

class AppSync : public AppIntegration {};

TEST_F(AppSync, FirstSyncOverHttpAppliesTrackedObjectsAndRecordsStatus) {
    repo_->write("app/config.yaml", configMapYaml("settings", {{"color", "blue"}}));
    repo_->write("app/web.yaml", deploymentYaml("web"));
    repo_->write("README.md", "not a manifest, outside the path anyway\n");
    std::string sha = repo_->commit("first");
    GitHttpServer http(tmp_.path() / "root");
    startController();
    createApp(application("first", http.url("repo"), "app"));

    ASSERT_TRUE(waitSynced("first", sha)) << describe("first");
    auto cm = configMap("settings");
    ASSERT_TRUE(cm);
    EXPECT_EQ((*cm)["data"]["color"], "blue");
    EXPECT_EQ(annotation(*cm, "sluice.io/tracking-id"), "first:/ConfigMap:demo/settings");
    auto web = getObject("apps/v1", "Deployment", kDestNs, "web");
    ASSERT_TRUE(web);
    EXPECT_EQ(annotation(*web, "sluice.io/tracking-id"), "first:apps/Deployment:demo/web");

    // The simulated Deployment becomes available shortly after it is created.
    ASSERT_TRUE(eventually([&] {
        return appStatus("first").value("health", json::object()).value("status", "") == "Healthy";
    })) << describe("first");

    json st = appStatus("first");
    EXPECT_TRUE(hasResource(st, "ConfigMap", "settings", "Synced")) << st.dump(2);
    EXPECT_TRUE(hasResource(st, "Deployment", "web", "Synced")) << st.dump(2);
    EXPECT_EQ(st["resources"].size(), 2u) << st.dump(2);
    ASSERT_EQ(st.value("history", json::array()).size(), 1u) << st.dump(2);
    EXPECT_EQ(st["history"][0]["id"], 0);
    EXPECT_EQ(st["history"][0]["revision"], sha);
    EXPECT_TRUE(st["history"][0].contains("deployedAt"));
    EXPECT_TRUE(inInventory(st, "ConfigMap", "settings")) << st.dump(2);
    EXPECT_TRUE(inInventory(st, "Deployment", "web")) << st.dump(2);
    EXPECT_EQ(st["inventory"].size(), 2u) << st.dump(2);
    EXPECT_EQ(st["operationState"]["syncResult"]["revision"], sha);
    EXPECT_TRUE(st.contains("reconciledAt"));
    EXPECT_EQ(st.value("observedGeneration", -1), (*getApp("first"))["metadata"]["generation"]);
    EXPECT_FALSE(condition(st, "ComparisonError")) << st.dump(2);
    EXPECT_FALSE(condition(st, "SyncError")) << st.dump(2);

    ASSERT_TRUE(eventually([&] { return hasEvent("first", "SyncSucceeded"); }))
        << describe("first");
    EXPECT_TRUE(hasEvent("first", "SyncStarted")) << describe("first");
    EXPECT_GT(http.requests(), 0);
}

TEST_F(AppSync, NewCommitIsAppliedAfterRefreshAnnotationOrWebhook) {
    repo_->write("app/config.yaml", configMapYaml("settings", {{"color", "blue"}}));
    std::string sha1 = repo_->commit("v1");
    startController();
    createApp(application("upd", repo_->url(), "app"));
    ASSERT_TRUE(waitSynced("upd", sha1)) << describe("upd");

    // 1. refresh() (the poll interval is 10 minutes, so nothing else fetches).
    repo_->write("app/config.yaml", configMapYaml("settings", {{"color", "green"}}));
    repo_->write("app/extra.yaml", configMapYaml("extra", {{"k", "v"}}));
    std::string sha2 = repo_->commit("v2");
    controller_->refresh(kControlNs, "upd");
    ASSERT_TRUE(waitSynced("upd", sha2)) << describe("upd");
    EXPECT_EQ(configMapValue("settings", "color"), "green");
    auto extra = configMap("extra");
    ASSERT_TRUE(extra);
    EXPECT_EQ(annotation(*extra, "sluice.io/tracking-id"), "upd:/ConfigMap:demo/extra");
    json st = appStatus("upd");
    ASSERT_EQ(st["history"].size(), 2u) << st.dump(2);
    EXPECT_EQ(st["history"][1]["revision"], sha2);
    EXPECT_EQ(st["history"][1]["id"], 1);
    EXPECT_TRUE(inInventory(st, "ConfigMap", "extra")) << st.dump(2);

    // 2. The refresh annotation, which the controller removes once handled.
    repo_->write("app/config.yaml", configMapYaml("settings", {{"color", "red"}}));
    std::string sha3 = repo_->commit("v3");
    patchApp("upd", {{"metadata", {{"annotations", {{"sluice.io/refresh", "normal"}}}}}});
    ASSERT_TRUE(waitSynced("upd", sha3)) << describe("upd");
    EXPECT_EQ(configMapValue("settings", "color"), "red");
    EXPECT_EQ(appStatus("upd")["history"].size(), 3u);
    EXPECT_TRUE(eventually([&] { return annotation(*getApp("upd"), "sluice.io/refresh").empty(); }))
        << describe("upd");

    // 3. The webhook entry point, by repository URL and branch.
    repo_->write("app/config.yaml", configMapYaml("settings", {{"color", "white"}}));
    std::string sha4 = repo_->commit("v4");
    EXPECT_EQ(controller_->refreshRepository(repo_->url(), "main"), 1);
    ASSERT_TRUE(waitSynced("upd", sha4)) << describe("upd");
    EXPECT_EQ(configMapValue("settings", "color"), "white");
    EXPECT_EQ(appStatus("upd")["history"].size(), 4u);
}

TEST_F(AppSync, PruneTrueDeletesWhatGitNoLongerHoldsExceptPruneFalse) {
    repo_->write("app/keep.yaml", configMapYaml("keep", {{"k", "1"}}));
    repo_->write("app/old.yaml", configMapYaml("old", {{"k", "1"}}));
    repo_->write("app/pinned.yaml", configMapYaml("pinned", {{"k", "1"}},
                                                  {{"sluice.io/sync-options", "Prune=false"}}));
    std::string sha1 = repo_->commit("three");
    startController();
    createApp(application("pruner", repo_->url(), "app"));
    ASSERT_TRUE(waitSynced("pruner", sha1)) << describe("pruner");
    ASSERT_TRUE(configMap("old") && configMap("pinned"));

    repo_->remove("app/old.yaml");
    repo_->remove("app/pinned.yaml");
    std::string sha2 = repo_->commit("drop two");
    controller_->refresh(kControlNs, "pruner");
    ASSERT_TRUE(eventually([&] { return !configMap("old"); })) << describe("pruner");
    ASSERT_TRUE(eventually([&] { return hasEvent("pruner", "Pruned", "old"); }))
        << describe("pruner");
    EXPECT_TRUE(configMap("keep"));
    // Prune=false: never deleted by a prune.
    EXPECT_TRUE(configMap("pinned")) << describe("pruner");
    // The prune happens inside the sync; its status (result, inventory) is written when the
    // sync finishes, a moment after the delete and its Event.
    json st;
    EXPECT_TRUE(eventually([&] {
        st = appStatus("pruner");
        return st["operationState"].value("phase", "") == "Succeeded" &&
               st["operationState"]["syncResult"].value("revision", "") == sha2;
    })) << st.dump(2);
    EXPECT_FALSE(inInventory(st, "ConfigMap", "old")) << st.dump(2);
}

TEST_F(AppSync, PruneFalseKeepsTheObjectAndReportsRequiresPruning) {
    repo_->write("app/keep.yaml", configMapYaml("keep", {{"k", "1"}}));
    repo_->write("app/old.yaml", configMapYaml("old", {{"k", "1"}}));
    std::string sha1 = repo_->commit("two");
    startController();
    createApp(application("keeper", repo_->url(), "app", {{"automated", {{"prune", false}}}}));
    ASSERT_TRUE(waitSynced("keeper", sha1)) << describe("keeper");

    repo_->remove("app/old.yaml");
    repo_->commit("drop old");
    controller_->refresh(kControlNs, "keeper");
    auto requiresPruning = [&] {
        for (const auto& r : appStatus("keeper").value("resources", json::array()))
            if (r.value("name", "") == "old" && r.value("requiresPruning", false)) return true;
        return false;
    };
    ASSERT_TRUE(eventually(requiresPruning)) << describe("keeper");
    ASSERT_TRUE(eventually([&] {
        return appStatus("keeper")["sync"].value("status", "") == "OutOfSync";
    })) << describe("keeper");
    ASSERT_TRUE(reconcileAgain("keeper"));
    auto old = configMap("old");
    ASSERT_TRUE(old) << "prune=false must keep the object" << describe("keeper");
    EXPECT_EQ(annotation(*old, "sluice.io/tracking-id"), "keeper:/ConfigMap:demo/old");
    EXPECT_FALSE(hasEvent("keeper", "Pruned")) << describe("keeper");
}

// Commit 2 changes `keep` (wave 0), adds `late` (wave 1) and drops `old` (wave 0). A prune runs
// in its object's wave unless PruneLast=true, which moves it after every wave.
class PruneOrder : public AppIntegration {
  protected:
    void run(bool pruneLast) {
        repo_->write("app/keep.yaml", configMapYaml("keep", {{"k", "1"}}));
        repo_->write("app/old.yaml", configMapYaml("old", {{"k", "1"}}));
        std::string sha1 = repo_->commit("one");
        startController();
        json policy = {{"automated", {{"prune", true}}}};
        if (pruneLast) policy["syncOptions"] = json::array({"PruneLast=true"});
        createApp(application("order", repo_->url(), "app", policy));
        ASSERT_TRUE(waitSynced("order", sha1)) << describe("order");

        log_ = &watchChanges(kConfigMap);
        repo_->write("app/keep.yaml", configMapYaml("keep", {{"k", "2"}}));
        repo_->write("app/late.yaml",
                     configMapYaml("late", {{"k", "1"}}, {{"sluice.io/sync-wave", "1"}}));
        repo_->remove("app/old.yaml");
        std::string sha2 = repo_->commit("two");
        controller_->refresh(kControlNs, "order");
        ASSERT_TRUE(waitSynced("order", sha2)) << describe("order");
        // The test's own watch may still be delivering the sync's writes.
        ASSERT_TRUE(eventually([&] { return log_->deletionStarted("old").has_value(); }))
            << log_->dump();
        ASSERT_TRUE(eventually([&] { return log_->created("late").has_value(); })) << log_->dump();
        auto keepAtTwo = [&] {
            return log_->first("keep", [](const ChangeLog::Entry& e) {
                return e.object.value("data", json::object()).value("k", "") == "2";
            });
        };
        ASSERT_TRUE(eventually([&] { return keepAtTwo().has_value(); })) << log_->dump();
        auto keepChanged = keepAtTwo();
        pruned_ = log_->deletionStarted("old")->seq;
        lateCreated_ = log_->created("late")->seq;
        keepChanged_ = keepChanged->seq;
    }
    ChangeLog* log_ = nullptr;
    uint64_t pruned_ = 0, lateCreated_ = 0, keepChanged_ = 0;
};

TEST_F(PruneOrder, PruneLastDeletesAfterEveryWaveWasApplied) {
    ASSERT_NO_FATAL_FAILURE(run(true));
    EXPECT_GT(pruned_, keepChanged_) << log_->dump();
    EXPECT_GT(pruned_, lateCreated_) << log_->dump();
}

TEST_F(PruneOrder, WithoutPruneLastThePruneRunsInItsOwnWave) {
    ASSERT_NO_FATAL_FAILURE(run(false));
    EXPECT_GT(pruned_, keepChanged_) << "a wave prunes after its applies\n" << log_->dump();
    EXPECT_LT(pruned_, lateCreated_) << "wave 0's prune precedes wave 1\n" << log_->dump();
}

TEST_F(AppSync, AllowEmptyFalseRefusesToPruneEverything) {
    repo_->write("app/a.yaml", configMapYaml("a", {{"k", "1"}}));
    repo_->write("app/b.yaml", configMapYaml("b", {{"k", "1"}}));
    std::string sha1 = repo_->commit("two");
    startController();
    createApp(application("empty", repo_->url(), "app"));
    ASSERT_TRUE(waitSynced("empty", sha1)) << describe("empty");

    // The path stays (a README), but renders no manifest at all.
    repo_->remove("app/a.yaml");
    repo_->remove("app/b.yaml");
    repo_->write("app/README.md", "moved elsewhere\n");
    repo_->commit("empty");
    controller_->refresh(kControlNs, "empty");
    ASSERT_TRUE(eventually([&] {
        auto c = condition(appStatus("empty"), "SyncError");
        return c && c->value("message", "").find("allowEmpty") != std::string::npos;
    })) << describe("empty");
    ASSERT_TRUE(reconcileAgain("empty"));
    EXPECT_TRUE(configMap("a")) << describe("empty");
    EXPECT_TRUE(configMap("b")) << describe("empty");
    EXPECT_FALSE(hasEvent("empty", "Pruned")) << describe("empty");
}

TEST_F(AppSync, AllowEmptyTruePrunesEverything) {
    repo_->write("app/a.yaml", configMapYaml("a", {{"k", "1"}}));
    repo_->write("app/b.yaml", configMapYaml("b", {{"k", "1"}}));
    std::string sha1 = repo_->commit("two");
    startController();
    createApp(application("empty-ok", repo_->url(), "app",
                          {{"automated", {{"prune", true}, {"allowEmpty", true}}}}));
    ASSERT_TRUE(waitSynced("empty-ok", sha1)) << describe("empty-ok");

    repo_->remove("app/a.yaml");
    repo_->remove("app/b.yaml");
    repo_->write("app/README.md", "moved elsewhere\n");
    std::string sha2 = repo_->commit("empty");
    controller_->refresh(kControlNs, "empty-ok");
    ASSERT_TRUE(eventually([&] { return !configMap("a") && !configMap("b"); }))
        << describe("empty-ok");
    ASSERT_TRUE(waitSynced("empty-ok", sha2)) << describe("empty-ok");
    json st = appStatus("empty-ok");
    EXPECT_TRUE(st.value("inventory", json::array()).empty()) << st.dump(2);
    EXPECT_FALSE(condition(st, "SyncError")) << st.dump(2);
}

// Waves -1 (Argo CD's annotation), 0 and 1 (Sluice's): each starts only after the previous one
// is healthy, which for the Deployment in wave 0 takes the simulated rollout (~200 ms).
TEST_F(AppSync, WavesApplyInOrderAndWaitForHealth) {
    repo_->write("app/early.yaml",
                 configMapYaml("early", {{"k", "1"}}, {{"argocd.argoproj.io/sync-wave", "-1"}}));
    repo_->write("app/middle.yaml", configMapYaml("middle", {{"k", "1"}}));
    repo_->write("app/web.yaml", deploymentYaml("web"));
    repo_->write("app/late.yaml",
                 configMapYaml("late", {{"k", "1"}}, {{"sluice.io/sync-wave", "1"}}));
    std::string sha = repo_->commit("waves");
    ChangeLog& cms = watchChanges(kConfigMap);
    ChangeLog& deployments = watchChanges(kDeployment);
    startController();
    createApp(application("waves", repo_->url(), "app"));
    ASSERT_TRUE(waitSynced("waves", sha)) << describe("waves");
    // The test's own watches may still be delivering the sync's writes.
    ASSERT_TRUE(eventually([&] {
        return cms.created("early") && cms.created("middle") && cms.created("late") &&
               deployments.created("web");
    })) << cms.dump()
        << deployments.dump();

    auto early = cms.created("early");
    auto middle = cms.created("middle");
    auto late = cms.created("late");
    auto web = deployments.created("web");
    auto webAvailable = deployments.first("web", [](const ChangeLog::Entry& e) {
        return e.object.value("status", json::object()).value("availableReplicas", 0) >= 1;
    });
    ASSERT_TRUE(early && middle && late && web && webAvailable) << cms.dump() << deployments.dump();
    EXPECT_LT(early->rv, middle->rv) << cms.dump();
    EXPECT_LT(early->rv, web->rv) << cms.dump() << deployments.dump();
    EXPECT_LT(middle->rv, late->rv) << cms.dump();
    EXPECT_LT(webAvailable->rv, late->rv) << "wave 1 must wait until wave 0 is healthy\n"
                                          << cms.dump() << deployments.dump();
}

TEST_F(AppSync, ValidateRejectsBrokenManifestsAndAppliesNothing) {
    server_.create(widgetCrd("Gadget", "gadgets"));
    repo_->write("app/good.yaml", configMapYaml("good", {{"k", "1"}}));
    // Invalid object name (uppercase and '_'), and a custom resource breaking its schema.
    repo_->write("app/bad-name.yaml", configMapYaml("Bad_Name", {{"k", "1"}}));
    repo_->write("app/gadget.yaml",
                 "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: broken-gadget\n"
                 "spec:\n  size: big\n");
    repo_->commit("broken");
    startController();
    createApp(application("strict", repo_->url(), "app"));

    ASSERT_TRUE(eventually([&] {
        return appStatus("strict").value("operationState", json::object()).value("phase", "") ==
               "Failed";
    })) << describe("strict");
    json st = appStatus("strict");
    std::string message = st["operationState"].value("message", "");
    EXPECT_NE(message.find("Bad_Name"), std::string::npos) << message;
    EXPECT_NE(message.find("broken-gadget"), std::string::npos) << message;
    EXPECT_FALSE(configMap("good")) << "nothing may be applied when a dry run fails";
    EXPECT_FALSE(getObject("example.com/v1", "Gadget", kDestNs, "broken-gadget"));
    EXPECT_TRUE(server_.list("v1", "ConfigMap", kDestNs).empty());
    EXPECT_NE(st["sync"].value("status", ""), "Synced") << st.dump(2);
    EXPECT_TRUE(st.value("history", json::array()).empty()) << st.dump(2);
    EXPECT_TRUE(eventually([&] { return hasEvent("strict", "SyncFailed"); })) << describe("strict");
}

TEST_F(AppSync, CrdAndItsCustomResourceSyncFromOneCommit) {
    repo_->write("app/crd.json", widgetCrd("Widget", "widgets").dump(2));
    repo_->write(
        "app/widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n");
    std::string sha = repo_->commit("crd and cr");
    startController();
    createApp(application("widgets", repo_->url(), "app"));
    ASSERT_TRUE(waitSynced("widgets", sha)) << describe("widgets");
    auto crd =
        getObject("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com");
    ASSERT_TRUE(crd);
    EXPECT_EQ(annotation(*crd, "sluice.io/tracking-id"),
              "widgets:apiextensions.k8s.io/CustomResourceDefinition:/widgets.example.com");
    auto w = getObject("example.com/v1", "Widget", kDestNs, "w1");
    ASSERT_TRUE(w) << describe("widgets");
    EXPECT_EQ((*w)["spec"]["size"], 3);
    EXPECT_EQ(annotation(*w, "sluice.io/tracking-id"), "widgets:example.com/Widget:demo/w1");
    json st = appStatus("widgets");
    EXPECT_TRUE(hasResource(st, "Widget", "w1", "Synced")) << st.dump(2);
    EXPECT_TRUE(hasResource(st, "CustomResourceDefinition", "widgets.example.com", "Synced"))
        << st.dump(2);
    EXPECT_TRUE(eventually([&] {
        return appStatus("widgets").value("health", json::object()).value("status", "") ==
               "Healthy";
    })) << describe("widgets");
}

}  // namespace
}  // namespace sluice::apptest
