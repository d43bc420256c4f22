// The Application controller against the in-process API server, with a fake git source.
#include <gtest/gtest.h>

#include <set>

#include "harness.h"
#include "sluice/appengine/tracking.h"
#include "sluice/util/base64.h"

namespace sluice::apptest {
namespace {

// Built with += rather than "literal" + std::string&&: g++ 12 at -O3 reports a false
// -Wrestrict on the latter (GCC bug 105329).
std::string indexed(const char* prefix, int i) {
    std::string s = prefix;
    s += std::to_string(i);
    return s;
}

TEST_F(ControllerTest, FirstSyncAppliesTrackedObjectsAndReportsStatus) {
    const std::string sha =
        git_.commit(kRepo, {{"guestbook/deploy.yaml", deploymentYaml("web", "nginx:1.25", 2)},
                            {"guestbook/config.yaml", configMapYaml("settings", "a")}});
    startController(defaultOptions());
    server_->create(application("guestbook", "guestbook", automated()));

    ASSERT_TRUE(eventually([&] {
        return statusAt("guestbook", "/sync/status") == "Synced" &&
               statusAt("guestbook", "/health/status") == "Healthy";
    })) << status("guestbook").dump(2);

    auto deploy = object("apps/v1", "Deployment", "web");
    ASSERT_TRUE(deploy);
    EXPECT_EQ(at(*deploy, "/metadata/annotations/sluice.io~1tracking-id"),
              "guestbook:apps/Deployment:demo/web");
    EXPECT_EQ(at(*deploy, "/spec/replicas"), "2");
    auto cm = object("v1", "ConfigMap", "settings");
    ASSERT_TRUE(cm);
    EXPECT_EQ(at(*cm, "/metadata/annotations/sluice.io~1tracking-id"),
              "guestbook:/ConfigMap:demo/settings");
    bool bySluice = false;
    for (const auto& mf : (*cm)["metadata"]["managedFields"])
        bySluice |= mf.value("manager", "") == "sluice" && mf.value("operation", "") == "Apply";
    EXPECT_TRUE(bySluice) << "server-side applied with field manager sluice";

    json st = status("guestbook");
    const json a = app("guestbook");
    EXPECT_EQ(st["sync"]["revision"], sha);
    EXPECT_EQ(st["sync"]["comparedTo"]["source"]["path"], "guestbook");
    EXPECT_EQ(st["sync"]["comparedTo"]["destination"]["namespace"], kDestNs);
    ASSERT_EQ(st["resources"].size(), 2u);
    for (const auto& r : st["resources"]) {
        EXPECT_EQ(r["status"], "Synced") << r.dump();
        EXPECT_EQ(r["health"]["status"], "Healthy") << r.dump();
    }
    EXPECT_EQ(st["operationState"]["phase"], "Succeeded");
    EXPECT_EQ(st["operationState"]["message"], "successfully synced (all tasks run)");
    EXPECT_EQ(st["operationState"]["syncResult"]["revision"], sha);
    EXPECT_EQ(st["operationState"]["syncResult"]["resources"].size(), 2u);
    EXPECT_EQ(st["operationState"]["operation"]["initiatedBy"]["automated"], true);
    EXPECT_FALSE(at(st, "/operationState/startedAt").empty());
    EXPECT_FALSE(at(st, "/operationState/finishedAt").empty());
    ASSERT_EQ(st["history"].size(), 1u);
    EXPECT_EQ(st["history"][0]["id"], 0);
    EXPECT_EQ(st["history"][0]["revision"], sha);
    EXPECT_EQ(st["inventory"].size(), 2u);
    EXPECT_FALSE(at(st, "/reconciledAt").empty());
    EXPECT_EQ(st["observedGeneration"], a["metadata"]["generation"]);
    EXPECT_FALSE(st.contains("conditions") && !st["conditions"].empty()) << st["conditions"];

    EXPECT_FALSE(eventsFor("SyncStarted").empty());
    ASSERT_FALSE(eventsFor("SyncSucceeded").empty());
    EXPECT_EQ(eventsFor("SyncSucceeded")[0]["involvedObject"]["name"], "guestbook");
    EXPECT_GE(controller_->stats().syncs, 1u);
}

TEST_F(ControllerTest, WithoutAutomatedReportsOutOfSyncUntilAnOperationSyncs) {
    const std::string sha =
        git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")}});
    startController(defaultOptions());
    server_->create(application("manual", "app"));

    ASSERT_TRUE(eventually([&] { return statusAt("manual", "/sync/status") == "OutOfSync"; }))
        << status("manual").dump(2);
    json st = status("manual");
    EXPECT_EQ(st["sync"]["revision"], sha);
    EXPECT_EQ(st["health"]["status"], "Missing");
    ASSERT_EQ(st["resources"].size(), 1u);
    EXPECT_EQ(st["resources"][0]["health"]["status"], "Missing");
    EXPECT_FALSE(st.contains("operationState"));
    EXPECT_FALSE(object("v1", "ConfigMap", "settings")) << "nothing applied without a sync";

    patchApp("manual", {{"operation",
                         {{"sync", {{"revision", "HEAD"}, {"prune", true}}},
                          {"initiatedBy", {{"username", "alice"}}}}}});
    ASSERT_TRUE(eventually([&] {
        return statusAt("manual", "/operationState/phase") == "Succeeded" &&
               statusAt("manual", "/sync/status") == "Synced" &&
               !app("manual").contains("operation");
    })) << app("manual").dump(2);
    EXPECT_TRUE(object("v1", "ConfigMap", "settings"));
    st = status("manual");
    EXPECT_EQ(st["operationState"]["operation"]["initiatedBy"]["username"], "alice");
    EXPECT_EQ(st["operationState"]["syncResult"]["revision"], sha);
    EXPECT_EQ(st["history"].size(), 1u);
}

TEST_F(ControllerTest, InvalidSpecGivesAConditionAndNoSync) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")}});
    startController(defaultOptions());
    json a = application("broken", "app", automated());
    a["spec"]["syncPolicy"]["syncOptions"] = {"CreateNamespace=true", "Frobnicate=yes"};
    server_->create(a);

    ASSERT_TRUE(eventually([&] { return !statusAt("broken", "/conditions").empty(); }));
    json st = status("broken");
    ASSERT_EQ(st["conditions"].size(), 1u);
    EXPECT_EQ(st["conditions"][0]["type"], "InvalidSpecError");
    EXPECT_NE(at(st, "/conditions/0/message").find("Frobnicate"), std::string::npos)
        << st["conditions"];
    EXPECT_EQ(st["sync"]["status"], "Unknown");
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
    EXPECT_TRUE(eventually([&] { return eventsFor("InvalidSpec").size() == 1; }));

    // Fixing the spec clears the condition and syncs.
    patchApp("broken", {{"spec", {{"syncPolicy", {{"syncOptions", {"CreateNamespace=true"}}}}}}});
    ASSERT_TRUE(eventually([&] { return statusAt("broken", "/sync/status") == "Synced"; }))
        << status("broken").dump(2);
    EXPECT_FALSE(status("broken").contains("conditions"));
    EXPECT_TRUE(object("v1", "ConfigMap", "settings"));
}

// Without the AppProject CRD (an installation from before projects) only the built-in default
// project exists: its Applications sync, others name the missing project. (Projects with the
// CRD: project_test.cpp.)
TEST_F(ControllerTest, WithoutTheAppProjectCrdOnlyTheDefaultProjectExists) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")},
                        {"other/config.yaml", configMapYaml("other", "b")}});
    startController(defaultOptions());
    json a = application("team", "app", automated());
    a["spec"]["project"] = "team-a";
    server_->create(a);
    server_->create(application("plain", "other", automated()));
    ASSERT_TRUE(eventually([&] { return statusAt("plain", "/sync/status") == "Synced"; }));
    ASSERT_TRUE(eventually([&] {
        return statusAt("team", "/conditions/0/message")
                   .rfind("Application referencing project team-a which does not exist", 0) == 0;
    })) << status("team").dump(2);
    EXPECT_EQ(statusAt("team", "/conditions/0/type"), "InvalidSpecError");
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
    EXPECT_TRUE(eventsFor("FieldsNotImplemented").empty());
}

TEST_F(ControllerTest, GitErrorGivesComparisonErrorAndPrunesNothing) {
    git_.commit(kRepo,
                {{"app/a.yaml", configMapYaml("a", "1")}, {"app/b.yaml", configMapYaml("b", "1")}});
    auto& ctl = startController(defaultOptions());
    server_->create(application("flaky", "app", automated(true)));
    ASSERT_TRUE(eventually([&] { return statusAt("flaky", "/sync/status") == "Synced"; }));

    git_.setError(kRepo, git::GitError(git::GitError::Kind::Auth,
                                       "fetch https://deploy:s3cr3t@git.example.com/org/apps.git: "
                                       "authentication required"));
    ctl.refresh(kControlNs, "flaky");
    ASSERT_TRUE(eventually([&] {
        return statusAt("flaky", "/conditions/0/type") == "ComparisonError";
    })) << status("flaky").dump(2);
    json st = status("flaky");
    const std::string msg = at(st, "/conditions/0/message");
    EXPECT_NE(msg.find("authentication required"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("s3cr3t"), std::string::npos) << "credentials never reach the status";
    EXPECT_EQ(st["sync"]["status"], "Unknown");
    EXPECT_TRUE(object("v1", "ConfigMap", "a"));
    EXPECT_TRUE(object("v1", "ConfigMap", "b"));
    ASSERT_TRUE(eventually([&] { return !eventsFor("ComparisonError").empty(); }));
    EXPECT_EQ(eventsFor("ComparisonError")[0]["message"].get<std::string>().find("s3cr3t"),
              std::string::npos);

    // A render error of a new commit is a ComparisonError too, and nothing of it is applied.
    git_.setError(kRepo, std::nullopt);
    git_.commit(kRepo, {{"app/a.yaml", configMapYaml("a", "2")},
                        {"app/b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n"}});
    ctl.refresh(kControlNs, "flaky");
    ASSERT_TRUE(eventually([&] {
        return statusAt("flaky", "/conditions/0/message").find("b.yaml") != std::string::npos;
    })) << status("flaky").dump(2);
    EXPECT_EQ(at(*object("v1", "ConfigMap", "a"), "/data/value"), "1");
    EXPECT_TRUE(object("v1", "ConfigMap", "b"));

    // Fixed: the condition goes away and the new commit is applied.
    git_.commit(kRepo, {{"app/a.yaml", configMapYaml("a", "3")}});
    ctl.refresh(kControlNs, "flaky");
    ASSERT_TRUE(eventually([&] {
        auto a = object("v1", "ConfigMap", "a");
        return a && at(*a, "/data/value") == "3" && !object("v1", "ConfigMap", "b") &&
               !status("flaky").contains("conditions");
    })) << status("flaky").dump(2);
}

TEST_F(ControllerTest, NoOpReconcileMakesNoApiWrites) {
    git_.commit(kRepo, {{"app/deploy.yaml", deploymentYaml("web", "nginx:1.25")},
                        {"app/config.yaml", configMapYaml("settings", "a")}});
    auto& ctl = makeController(defaultOptions());  // no workers: every reconcile is ours
    server_->create(application("quiet", "app", automated()));
    ASSERT_TRUE(eventually([&] { return ctl.waitForSync(1s) && app("quiet").is_object(); }));
    ASSERT_TRUE(eventually([&] {
        ctl.reconcileNow(kControlNs, "quiet");
        return statusAt("quiet", "/health/status") == "Healthy" &&
               statusAt("quiet", "/sync/status") == "Synced";
    })) << status("quiet").dump(2);
    // Let the Application cache catch up with our last status write.
    auto& appInformer = factory_->informerFor(kAppGvk, "");
    ASSERT_TRUE(eventually([&] {
        auto cached = appInformer.store().get(kControlNs, "quiet");
        return cached && kube::resourceVersionOf(*cached) == kube::resourceVersionOf(app("quiet"));
    }));

    server_->resetRequestCounts();
    for (int i = 0; i < 3; ++i) {
        auto rec = ctl.reconcileNow(kControlNs, "quiet");
        EXPECT_FALSE(rec.synced);
        EXPECT_TRUE(rec.succeeded) << rec.error;
        EXPECT_EQ(rec.syncStatus, "Synced");
        EXPECT_EQ(rec.health, "Healthy");
    }
    EXPECT_EQ(writes(), 0u) << nlohmann::json(server_->requestCounts()).dump();
}

TEST_F(ControllerTest, FailedSyncIsRetriedWithBackoffAndThenGivenUp) {
    // The namespace does not exist: every apply fails (Validate=false skips the dry run).
    git_.commit(kRepo, {{"app/config.yaml",
                         "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: "
                         "nowhere\ndata:\n  k: v\n"}});
    startController(defaultOptions());
    json policy = automated();
    policy["syncOptions"] = {"Validate=false"};
    policy["retry"] = {{"limit", 2},
                       {"backoff", {{"duration", "200ms"}, {"factor", 2}, {"maxDuration", "1s"}}}};
    server_->create(application("retrying", "app", policy));

    // Attempts are recorded while the retries are pending...
    std::set<std::string> messages;
    ASSERT_TRUE(eventually([&] {
        json st = status("retrying");
        if (at(st, "/operationState/phase") == "Running")
            messages.insert(at(st, "/operationState/message"));
        return at(st, "/operationState/phase") == "Failed";
    })) << status("retrying").dump(2);
    bool sawFirstRetry = false;
    for (const auto& m : messages)
        sawFirstRetry |= m.rfind("retrying attempt #1 after 200ms: ", 0) == 0;
    EXPECT_TRUE(sawFirstRetry) << nlohmann::json(messages).dump();
    json st = status("retrying");
    EXPECT_EQ(st["operationState"]["retryCount"], 2);
    const std::string finalMessage = at(st, "/operationState/message");
    EXPECT_NE(finalMessage.find("nowhere"), std::string::npos) << finalMessage;
    EXPECT_NE(finalMessage.find("(retried 2 times)"), std::string::npos) << finalMessage;
    EXPECT_EQ(st["operationState"]["syncResult"]["resources"][0]["status"], "SyncFailed");

    // ...and the same revision is not tried again automatically.
    server_->create(
        {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "nowhere"}}}});
    controller_->refresh(kControlNs, "retrying");
    ASSERT_TRUE(eventually([&] {
        return statusAt("retrying", "/conditions/0/type") == "SyncError";
    })) << status("retrying").dump(2);
    EXPECT_NE(statusAt("retrying", "/conditions/0/message").find("will not be attempted again"),
              std::string::npos);
    EXPECT_FALSE(server_->get("v1", "ConfigMap", "nowhere", "c"));
    EXPECT_EQ(status("retrying")["operationState"]["retryCount"], 2);
}

TEST_F(ControllerTest, SelfHealRevertsDriftAndNamesTheOtherManager) {
    git_.commit(kRepo, {{"app/deploy.yaml", deploymentYaml("web", "nginx:1.25", 2)}});
    startController(defaultOptions());
    server_->create(application("healing", "app", automated(true, true)));
    ASSERT_TRUE(eventually([&] {
        return statusAt("healing", "/sync/status") == "Synced" &&
               statusAt("healing", "/health/status") == "Healthy";
    }));

    kube::PatchOptions po;
    po.fieldManager = "kubectl-edit";
    client_->patch(kDeploymentGvk, kDestNs, "web", kube::PatchType::Merge,
                   R"({"spec":{"replicas":5}})", po);

    ASSERT_TRUE(eventually([&] { return !eventsFor("DriftCorrected").empty(); }));
    ASSERT_TRUE(eventually([&] {
        auto d = object("apps/v1", "Deployment", "web");
        return d && at(*d, "/spec/replicas") == "2";
    }));
    const std::string msg = eventsFor("DriftCorrected")[0]["message"];
    EXPECT_NE(msg.find("kubectl-edit"), std::string::npos) << msg;
    EXPECT_NE(msg.find(".spec.replicas"), std::string::npos) << msg;
    EXPECT_NE(msg.find("apps/Deployment demo/web"), std::string::npos) << msg;
    EXPECT_TRUE(eventually([&] { return statusAt("healing", "/sync/status") == "Synced"; }));
    EXPECT_GE(controller_->stats().driftCorrections, 1u);
}

TEST_F(ControllerTest, DriftWithoutSelfHealIsReportedNotCorrected) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")}});
    startController(defaultOptions());
    server_->create(application("watching", "app", automated(true, false)));
    ASSERT_TRUE(eventually([&] { return statusAt("watching", "/sync/status") == "Synced"; }));

    kube::PatchOptions po;
    po.fieldManager = "kubectl-edit";
    client_->patch(kConfigMapGvk, kDestNs, "settings", kube::PatchType::Merge,
                   R"({"data":{"value":"hand-edited"}})", po);
    ASSERT_TRUE(eventually([&] { return statusAt("watching", "/sync/status") == "OutOfSync"; }));
    EXPECT_EQ(statusAt("watching", "/resources/0/status"), "OutOfSync");
    // A reconcile of its own (no event needed) still leaves the edit alone.
    auto rec = controller_->reconcileNow(kControlNs, "watching");
    EXPECT_FALSE(rec.synced);
    EXPECT_EQ(at(*object("v1", "ConfigMap", "settings"), "/data/value"), "hand-edited");
    EXPECT_TRUE(eventsFor("DriftCorrected").empty());
}

TEST_F(ControllerTest, ObjectTrackedByAnotherApplicationIsNotTakenOver) {
    git_.commit(kRepo, {{"first/shared.yaml", configMapYaml("shared", "first")},
                        {"second/shared.yaml", configMapYaml("shared", "second")},
                        {"second/own.yaml", configMapYaml("own", "second")}});
    startController(defaultOptions());
    server_->create(application("first", "first", automated()));
    ASSERT_TRUE(eventually([&] { return statusAt("first", "/sync/status") == "Synced"; }));
    server_->create(application("second", "second", automated()));

    ASSERT_TRUE(eventually([&] {
        return statusAt("second", "/operationState/phase") == "Failed" &&
               !statusAt("second", "/conditions").empty();
    })) << status("second").dump(2);
    json st = status("second");
    bool warned = false;
    for (const auto& c : st["conditions"])
        if (c["type"] == "SharedResourceWarning") {
            warned = true;
            EXPECT_NE(c["message"].get<std::string>().find("first"), std::string::npos) << c;
        }
    EXPECT_TRUE(warned) << st["conditions"];
    bool failedShared = false;
    for (const auto& r : st["operationState"]["syncResult"]["resources"])
        if (r["name"] == "shared") {
            failedShared = r["status"] == "SyncFailed";
            EXPECT_NE(r["message"].get<std::string>().find("first"), std::string::npos) << r;
        }
    EXPECT_TRUE(failedShared) << st["operationState"].dump(2);
    auto shared = object("v1", "ConfigMap", "shared");
    ASSERT_TRUE(shared);
    EXPECT_EQ(at(*shared, "/data/value"), "first");
    EXPECT_EQ(at(*shared, "/metadata/annotations/sluice.io~1tracking-id"),
              "first:/ConfigMap:demo/shared");
    EXPECT_TRUE(object("v1", "ConfigMap", "own")) << "the rest of the application is applied";
    EXPECT_EQ(statusAt("first", "/sync/status"), "Synced");
}

TEST_F(ControllerTest, FinalizerDeletesTrackedObjectsExceptDeleteFalse) {
    git_.commit(kRepo,
                {{"app/deploy.yaml", deploymentYaml("web", "nginx:1.25")},
                 {"app/config.yaml", configMapYaml("settings", "a")},
                 {"app/keep.yaml",
                  configMapYaml("keep", "k", "    sluice.io/sync-options: Delete=false\n")}});
    startController(defaultOptions());
    json a = application("doomed", "app", automated());
    a["metadata"]["finalizers"] = {"resources-finalizer.sluice.io"};
    server_->create(a);
    ASSERT_TRUE(eventually([&] { return statusAt("doomed", "/sync/status") == "Synced"; }));
    // An untracked object next to them is not touched.
    server_->create({{"apiVersion", "v1"},
                     {"kind", "ConfigMap"},
                     {"metadata", {{"name", "bystander"}, {"namespace", kDestNs}}}});

    client_->remove(kAppGvk, kControlNs, "doomed");
    ASSERT_TRUE(eventually([&] { return !app("doomed").is_object(); })) << app("doomed").dump(2);
    EXPECT_FALSE(object("apps/v1", "Deployment", "web"));
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
    EXPECT_TRUE(object("v1", "ConfigMap", "keep"));
    EXPECT_TRUE(object("v1", "ConfigMap", "bystander"));
}

TEST_F(ControllerTest, WithoutFinalizerDeletingTheApplicationLeavesObjects) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")}});
    startController(defaultOptions());
    server_->create(application("plain", "app", automated()));
    ASSERT_TRUE(eventually([&] { return statusAt("plain", "/sync/status") == "Synced"; }));
    client_->remove(kAppGvk, kControlNs, "plain");
    ASSERT_TRUE(eventually([&] { return !app("plain").is_object(); }));
    auto rec = controller_->reconcileNow(kControlNs, "plain");
    EXPECT_FALSE(rec.synced);
    EXPECT_TRUE(object("v1", "ConfigMap", "settings"));
}

TEST_F(ControllerTest, SyncWavesApplyInOrderAndWaitForHealth) {
    // Record, from a watch of our own, when each object first appeared and when the Deployment
    // first became available, as resourceVersions (one global order on the server).
    std::mutex mu;
    std::map<std::string, uint64_t> created;
    uint64_t deploymentReady = 0;
    auto rvOf = [](const json& o) { return std::stoull(kube::resourceVersionOf(o)); };
    auto& cms = factory_->informerFor(kConfigMapGvk, kDestNs);
    auto& deps = factory_->informerFor(kDeploymentGvk, kDestNs);
    auto onAdd = [&](const cache::ObjectPtr& o) {
        std::lock_guard lock(mu);
        created.emplace(kube::nameOf(*o), rvOf(*o));
    };
    cms.addEventHandler({onAdd, nullptr, nullptr});
    deps.addEventHandler({onAdd,
                          [&](const cache::ObjectPtr&, const cache::ObjectPtr& n) {
                              std::lock_guard lock(mu);
                              if (!deploymentReady && at(*n, "/status/availableReplicas") == "1")
                                  deploymentReady = rvOf(*n);
                          },
                          nullptr});
    factory_->startAll();
    ASSERT_TRUE(factory_->waitForCacheSync(30s));

    git_.commit(kRepo, {{"app/first.yaml", configMapYaml("first", "x", waveAnnotation(-1))},
                        {"app/web.yaml", deploymentYaml("web", "nginx:1.25")},
                        {"app/last.yaml", configMapYaml("last", "x", waveAnnotation(1))}});
    startController(defaultOptions());
    server_->create(application("waves", "app", automated()));
    ASSERT_TRUE(eventually([&] {
        return statusAt("waves", "/operationState/phase") == "Succeeded";
    })) << status("waves").dump(2);
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lock(mu);
        return created.size() == 3;
    }));
    std::lock_guard lock(mu);
    EXPECT_LT(created["first"], created["web"]);
    ASSERT_NE(deploymentReady, 0u);
    EXPECT_GT(created["last"], deploymentReady) << "wave 1 waited for wave 0 to be healthy";
}

TEST_F(ControllerTest, ValidateDryRunRejectionAppliesNothing) {
    git_.commit(kRepo,
                {{"app/good.yaml", configMapYaml("good", "x")},
                 {"app/bad.yaml", configMapYaml("Not_A_Valid_Name", "x", waveAnnotation(1))}});
    startController(defaultOptions());
    server_->create(application("validated", "app", automated()));
    ASSERT_TRUE(eventually([&] {
        return statusAt("validated", "/operationState/phase") == "Failed";
    })) << status("validated").dump(2);
    const std::string msg = statusAt("validated", "/operationState/message");
    EXPECT_NE(msg.find("Not_A_Valid_Name"), std::string::npos) << msg;
    EXPECT_NE(msg.find("dry run"), std::string::npos) << msg;
    EXPECT_FALSE(object("v1", "ConfigMap", "good")) << "nothing applied after a rejection";
    EXPECT_TRUE(status("validated")["inventory"].empty());
    ASSERT_FALSE(eventsFor("SyncFailed").empty());
}

TEST_F(ControllerTest, PruneDeletesWhatGitNoLongerHasAndAllowEmptyGuardsEverything) {
    git_.commit(kRepo, {{"app/a.yaml", configMapYaml("a", "1")},
                        {"app/b.yaml", configMapYaml("b", "1")},
                        {"app/c.yaml",
                         configMapYaml("c", "1", "    sluice.io/sync-options: Prune=false\n")}});
    auto& ctl = startController(defaultOptions());
    server_->create(application("pruning", "app", automated(true)));
    ASSERT_TRUE(eventually([&] { return statusAt("pruning", "/sync/status") == "Synced"; }));

    git_.commit(kRepo, {{"app/a.yaml", configMapYaml("a", "1")}});
    ctl.refresh(kControlNs, "pruning");
    ASSERT_TRUE(eventually([&] { return !object("v1", "ConfigMap", "b"); }));
    EXPECT_TRUE(object("v1", "ConfigMap", "c")) << "Prune=false";
    ASSERT_TRUE(eventually([&] { return !eventsFor("Pruned").empty(); }));
    EXPECT_EQ(eventsFor("Pruned")[0]["message"].get<std::string>(), "pruned ConfigMap demo/b");

    // Nothing rendered: refused, nothing deleted.
    git_.commit(kRepo, {{"app/README.md", "nothing here"}});
    ctl.refresh(kControlNs, "pruning");
    ASSERT_TRUE(eventually([&] {
        return statusAt("pruning", "/conditions/0/type") == "SyncError";
    })) << status("pruning").dump(2);
    EXPECT_NE(statusAt("pruning", "/conditions/0/message").find("allowEmpty"), std::string::npos);
    EXPECT_TRUE(object("v1", "ConfigMap", "a"));
}

TEST_F(ControllerTest, ReplaceRecreatesObjectsWhoseImmutableFieldsChanged) {
    git_.commit(kRepo, {{"app/web.yaml", deploymentYaml("web", "nginx:1.25", 1, "", "web")}});
    startController(defaultOptions());
    server_->create(application("replacing", "app"));
    patchApp("replacing", {{"operation", {{"sync", {{"prune", true}}}}}});
    ASSERT_TRUE(eventually([&] {
        return statusAt("replacing", "/operationState/phase") == "Succeeded" &&
               !app("replacing").contains("operation");
    })) << status("replacing").dump(2);
    const std::string uid = at(*object("apps/v1", "Deployment", "web"), "/metadata/uid");

    // The selector is immutable: a plain apply is refused...
    git_.commit(kRepo, {{"app/web.yaml", deploymentYaml("web", "nginx:1.25", 1, "", "web-v2")}});
    controller_->refresh(kControlNs, "replacing");
    ASSERT_TRUE(eventually([&] { return statusAt("replacing", "/sync/status") == "OutOfSync"; }));
    patchApp("replacing", {{"operation", {{"sync", {{"prune", true}}}}}});
    ASSERT_TRUE(eventually([&] {
        return statusAt("replacing", "/operationState/phase") == "Failed" &&
               !app("replacing").contains("operation");
    })) << status("replacing").dump(2);
    EXPECT_NE(statusAt("replacing", "/operationState/message").find("field is immutable"),
              std::string::npos);

    // ...and Replace=true deletes and re-creates the object.
    patchApp("replacing",
             {{"operation", {{"sync", {{"prune", true}, {"syncOptions", {"Replace=true"}}}}}}});
    ASSERT_TRUE(eventually([&] {
        return statusAt("replacing", "/operationState/phase") == "Succeeded" &&
               statusAt("replacing", "/sync/status") == "Synced";
    })) << status("replacing").dump(2);
    auto web = object("apps/v1", "Deployment", "web");
    ASSERT_TRUE(web);
    EXPECT_EQ(at(*web, "/spec/selector/matchLabels/app"), "web-v2");
    EXPECT_NE(at(*web, "/metadata/uid"), uid) << "re-created";
    bool replaced = false;
    const json result = status("replacing")["operationState"]["syncResult"];
    for (const auto& r : result["resources"])
        replaced |= r["message"].get<std::string>().find("replaced") != std::string::npos;
    EXPECT_TRUE(replaced) << result.dump(2);
}

TEST_F(ControllerTest, RollbackToAnEarlierRevisionFromHistory) {
    const std::string first = git_.commit(kRepo, {{"app/c.yaml", configMapYaml("c", "one")}});
    auto& ctl = startController(defaultOptions());
    server_->create(application("rolling", "app"));
    auto syncAndWait = [&](json op, const std::string& expectValue) {
        patchApp("rolling", {{"operation", op}});
        return eventually([&] {
            auto c = object("v1", "ConfigMap", "c");
            return !app("rolling").contains("operation") &&
                   statusAt("rolling", "/operationState/phase") == "Succeeded" && c &&
                   at(*c, "/data/value") == expectValue;
        });
    };
    ASSERT_TRUE(syncAndWait({{"sync", json::object()}}, "one")) << status("rolling").dump(2);
    const std::string second = git_.commit(kRepo, {{"app/c.yaml", configMapYaml("c", "two")}});
    ctl.refresh(kControlNs, "rolling");
    ASSERT_TRUE(eventually([&] { return statusAt("rolling", "/sync/revision") == second; }));
    ASSERT_TRUE(syncAndWait({{"sync", json::object()}}, "two")) << status("rolling").dump(2);

    json history = status("rolling")["history"];
    ASSERT_EQ(history.size(), 2u);
    EXPECT_EQ(history[0]["revision"], first);
    EXPECT_EQ(history[1]["revision"], second);
    ASSERT_TRUE(syncAndWait({{"sync", {{"revision", history[0]["revision"]}}}}, "one"))
        << status("rolling").dump(2);
    json st = status("rolling");
    ASSERT_EQ(st["history"].size(), 3u);
    EXPECT_EQ(st["history"][2]["id"], 2);
    EXPECT_EQ(st["history"][2]["revision"], first);
    EXPECT_EQ(st["operationState"]["syncResult"]["revision"], first);
    EXPECT_EQ(st["sync"]["revision"], second) << "compared with the target, not the rollback";
    EXPECT_EQ(st["sync"]["status"], "OutOfSync");

    // An unknown revision fails the operation with a message, not the Application.
    patchApp("rolling", {{"operation", {{"sync", {{"revision", "no-such-branch"}}}}}});
    ASSERT_TRUE(eventually([&] {
        return !app("rolling").contains("operation") &&
               statusAt("rolling", "/operationState/phase") == "Error";
    })) << status("rolling").dump(2);
    EXPECT_NE(statusAt("rolling", "/operationState/message").find("no-such-branch"),
              std::string::npos);
    EXPECT_EQ(at(*object("v1", "ConfigMap", "c"), "/data/value"), "one");
}

TEST_F(ControllerTest, RefreshAnnotationFetchesNowAndIsRemoved) {
    git_.commit(kRepo, {{"app/c.yaml", configMapYaml("c", "one")}});
    startController(defaultOptions());  // poll interval 3m: only the annotation can fetch
    server_->create(application("annotated", "app", automated()));
    ASSERT_TRUE(eventually([&] { return statusAt("annotated", "/sync/status") == "Synced"; }));
    const int fetches = git_.resolveCalls(kRepo);

    const std::string second = git_.commit(kRepo, {{"app/c.yaml", configMapYaml("c", "two")}});
    patchApp("annotated", {{"metadata", {{"annotations", {{"sluice.io/refresh", "normal"}}}}}});
    ASSERT_TRUE(eventually([&] {
        auto c = object("v1", "ConfigMap", "c");
        return c && at(*c, "/data/value") == "two" &&
               at(app("annotated"), "/metadata/annotations/sluice.io~1refresh").empty() &&
               statusAt("annotated", "/sync/revision") == second;
    })) << app("annotated").dump(2);
    EXPECT_GT(git_.resolveCalls(kRepo), fetches);
}

TEST_F(ControllerTest, RefreshRepositoryQueuesTheApplicationsOfThatBranch) {
    git_.commit(
        kRepo,
        {{"app/c.yaml", configMapYaml("c", "one")}, {"other/d.yaml", configMapYaml("d", "one")}},
        {"HEAD", "main", "release"});
    auto& ctl = startController(defaultOptions());
    server_->create(application("tracking-head", "app", automated()));
    json release = application("tracking-release", "other", automated());
    release["spec"]["source"]["targetRevision"] = "release";
    server_->create(release);
    ASSERT_TRUE(eventually([&] {
        return statusAt("tracking-head", "/sync/status") == "Synced" &&
               statusAt("tracking-release", "/sync/status") == "Synced";
    }));

    git_.commit(
        kRepo,
        {{"app/c.yaml", configMapYaml("c", "two")}, {"other/d.yaml", configMapYaml("d", "two")}},
        {"HEAD", "main"});
    // Another spelling of the same repository, as a webhook payload would give it.
    EXPECT_EQ(ctl.refreshRepository("git@git.example.com:org/apps", "main"), 1);
    ASSERT_TRUE(eventually([&] {
        auto c = object("v1", "ConfigMap", "c");
        return c && at(*c, "/data/value") == "two";
    }));
    EXPECT_EQ(at(*object("v1", "ConfigMap", "d"), "/data/value"), "one");
    EXPECT_EQ(ctl.refreshRepository("https://git.example.com/org/other", "main"), 0);
}

// Records the credentials each resolve was given.
class RecordingGit : public git::GitSource {
  public:
    explicit RecordingGit(git::GitSource& inner) : inner_(inner) {}
    git::Revision resolve(const git::Repository& repo, const std::string& rev) override {
        {
            std::lock_guard lock(mu_);
            seen_[repo.url] = repo.credentials;
        }
        return inner_.resolve(repo, rev);
    }
    std::vector<git::File> listFiles(const git::Repository& repo, const std::string& sha,
                                     const std::string& path, bool recurse) override {
        return inner_.listFiles(repo, sha, path, recurse);
    }
    std::string readFile(const git::Repository& repo, const std::string& sha,
                         const std::string& path) override {
        return inner_.readFile(repo, sha, path);
    }
    std::optional<git::Credentials> credentials(const std::string& url) {
        std::lock_guard lock(mu_);
        auto it = seen_.find(url);
        if (it == seen_.end()) return std::nullopt;
        return it->second;
    }

  private:
    git::GitSource& inner_;
    std::mutex mu_;
    std::map<std::string, git::Credentials> seen_;
};

json repoSecret(const std::string& name, const std::string& label, const std::string& type,
                const std::map<std::string, std::string>& data) {
    json d = json::object();
    for (const auto& [k, v] : data) d[k] = base64Encode(v);
    return {{"apiVersion", "v1"},
            {"kind", "Secret"},
            {"metadata", {{"name", name}, {"namespace", kControlNs}, {"labels", {{label, type}}}}},
            {"data", d}};
}

TEST_F(ControllerTest, RepositoryCredentialsComeFromLabelledSecrets) {
    const std::string otherRepo = "https://git.example.com/org/other.git";
    git_.commit(kRepo, {{"app/c.yaml", configMapYaml("c", "x")}});
    git_.commit(otherRepo, {{"app/d.yaml", configMapYaml("d", "x")}});
    server_->create(repoSecret("exact", "sluice.io/secret-type", "repository",
                               {{"url", "https://git.example.com/org/apps"},
                                {"username", "deployer"},
                                {"password", "token-1"}}));
    server_->create(repoSecret("org-wide", "argocd.argoproj.io/secret-type", "repo-creds",
                               {{"url", "https://git.example.com/org"},
                                {"username", "org-bot"},
                                {"password", "token-2"},
                                {"insecureIgnoreHostKey", "true"}}));
    server_->create(
        repoSecret("unrelated", "sluice.io/secret-type", "repo-creds",
                   {{"url", "https://git.example.com/organisation"}, {"username", "wrong"}}));
    RecordingGit recording(git_);
    appcontroller::ApplicationController ctl(*client_, *factory_, recording, defaultOptions());
    ctl.start();
    ASSERT_TRUE(ctl.waitForSync(30s));
    server_->create(application("exact", "app", automated()));
    json other = application("prefixed", "app", automated());
    other["spec"]["source"]["repoURL"] = otherRepo;
    server_->create(other);
    ASSERT_TRUE(eventually([&] {
        return statusAt("exact", "/sync/status") == "Synced" &&
               statusAt("prefixed", "/sync/status") == "Synced";
    }));
    auto exact = recording.credentials(kRepo);
    ASSERT_TRUE(exact);
    EXPECT_EQ(exact->username, "deployer");
    EXPECT_EQ(exact->password, "token-1");
    auto prefixed = recording.credentials(otherRepo);
    ASSERT_TRUE(prefixed);
    EXPECT_EQ(prefixed->username, "org-bot");
    EXPECT_EQ(prefixed->password, "token-2");
    EXPECT_TRUE(prefixed->insecureIgnoreHostKey);
    ctl.stop();
}

TEST_F(ControllerTest, CreateNamespaceAndCrdWithItsCustomResourceInOneCommit) {
    const std::string crd = R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
)";
    git_.commit(kRepo, {{"app/crd.yaml", crd},
                        {"app/widget.yaml",
                         "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"
                         "spec:\n  size: 3\n"}});
    startController(defaultOptions());
    json a = application("bootstrap", "app", automated());
    a["spec"]["destination"]["namespace"] = "fresh";
    a["spec"]["syncPolicy"]["syncOptions"] = {"CreateNamespace=true"};
    server_->create(a);
    ASSERT_TRUE(eventually([&] {
        return statusAt("bootstrap", "/sync/status") == "Synced" &&
               statusAt("bootstrap", "/operationState/phase") == "Succeeded";
    })) << status("bootstrap").dump(2);
    auto ns = server_->get("v1", "Namespace", "", "fresh");
    ASSERT_TRUE(ns);
    EXPECT_EQ(at(*ns, "/metadata/annotations/sluice.io~1tracking-id"), "")
        << "the destination namespace is not tracked";
    auto w = server_->get("example.com/v1", "Widget", "fresh", "w");
    ASSERT_TRUE(w);
    EXPECT_EQ(at(*w, "/spec/size"), "3");
    EXPECT_EQ(status("bootstrap")["inventory"].size(), 2u);
}

TEST_F(ControllerTest, RespectIgnoreDifferencesLeavesFieldsToTheirOwner) {
    git_.commit(kRepo, {{"app/web.yaml", deploymentYaml("web", "nginx:1.25", 2)}});
    auto& ctl = startController(defaultOptions());
    json a = application("scaled", "app", automated(true, true));
    a["spec"]["syncPolicy"]["syncOptions"] = {"RespectIgnoreDifferences=true"};
    a["spec"]["ignoreDifferences"] = {
        {{"group", "apps"}, {"kind", "Deployment"}, {"jsonPointers", {"/spec/replicas"}}}};
    server_->create(a);
    ASSERT_TRUE(eventually([&] { return statusAt("scaled", "/sync/status") == "Synced"; }));

    kube::PatchOptions po;
    po.fieldManager = "hpa-controller";
    client_->patch(kDeploymentGvk, kDestNs, "web", kube::PatchType::Merge,
                   R"({"spec":{"replicas":5}})", po);
    git_.commit(kRepo, {{"app/web.yaml", deploymentYaml("web", "nginx:1.26", 2)}});
    ctl.refresh(kControlNs, "scaled");
    ASSERT_TRUE(eventually([&] {
        auto d = object("apps/v1", "Deployment", "web");
        return d && at(*d, "/spec/template/spec/containers/0/image") == "nginx:1.26" &&
               statusAt("scaled", "/sync/status") == "Synced";
    })) << status("scaled").dump(2);
    EXPECT_EQ(at(*object("apps/v1", "Deployment", "web"), "/spec/replicas"), "5");
    EXPECT_TRUE(eventsFor("DriftCorrected").empty()) << "ignored fields are not drift";
}

TEST_F(ControllerTest, ApplicationsOfOneRepositoryShareFetches) {
    std::map<std::string, std::string> files;
    for (int i = 0; i < 6; ++i)
        files[indexed("app", i) + "/c.yaml"] = configMapYaml(indexed("c", i), "1");
    git_.commit(kRepo, files);
    // A clock that stands still: "resolved a moment ago" is exact, whatever the machine's speed.
    auto o = defaultOptions();
    o.clock = &fakeClock_;
    auto& ctl = startController(o);
    for (int i = 0; i < 6; ++i)
        server_->create(application(indexed("shared-", i), indexed("app", i), automated()));
    auto allAt = [&](const std::string& value) {
        for (int i = 0; i < 6; ++i) {
            auto c = object("v1", "ConfigMap", indexed("c", i));
            if (!c || at(*c, "/data/value") != value) return false;
        }
        return true;
    };
    ASSERT_TRUE(eventually([&] { return allAt("1"); }));
    // New Applications take a revision resolved a moment ago: at most one fetch per worker.
    EXPECT_LE(git_.resolveCalls(kRepo), o.concurrency);

    for (int i = 0; i < 6; ++i)
        files[indexed("app", i) + "/c.yaml"] = configMapYaml(indexed("c", i), "2");
    git_.commit(kRepo, files);
    const int before = git_.resolveCalls(kRepo);
    fakeClock_.advance(1ms);
    EXPECT_EQ(ctl.refreshRepository(kRepo, ""), 6);
    ASSERT_TRUE(eventually([&] { return allAt("2"); }));
    // A webhook refresh of six Applications: each needs a fetch started after it, one serves all
    // that come later.
    EXPECT_LE(git_.resolveCalls(kRepo) - before, o.concurrency);
}

TEST_F(ControllerTest, PruneLastDeletesAfterEveryWave) {
    std::mutex mu;
    std::map<std::string, uint64_t> created, deleted;
    auto rvOf = [](const json& o) { return std::stoull(kube::resourceVersionOf(o)); };
    auto& cms = factory_->informerFor(kConfigMapGvk, kDestNs);
    cms.addEventHandler({[&](const cache::ObjectPtr& o) {
                             std::lock_guard lock(mu);
                             created.emplace(kube::nameOf(*o), rvOf(*o));
                         },
                         nullptr,
                         [&](const cache::ObjectPtr& o) {
                             std::lock_guard lock(mu);
                             deleted.emplace(kube::nameOf(*o), rvOf(*o));
                         }});
    factory_->startAll();
    ASSERT_TRUE(factory_->waitForCacheSync(30s));

    git_.commit(kRepo, {{"app/a.yaml", configMapYaml("a", "1")},
                        {"app/old.yaml", configMapYaml("old", "1")}});
    auto& ctl = startController(defaultOptions());
    json policy = automated(true);
    policy["syncOptions"] = {"PruneLast=true"};
    server_->create(application("last", "app", policy));
    ASSERT_TRUE(eventually([&] { return statusAt("last", "/sync/status") == "Synced"; }));

    git_.commit(kRepo, {{"app/a.yaml", configMapYaml("a", "1")},
                        {"app/late.yaml", configMapYaml("late", "1", waveAnnotation(5))}});
    ctl.refresh(kControlNs, "last");
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lock(mu);
        return deleted.count("old") && created.count("late");
    }));
    std::lock_guard lock(mu);
    EXPECT_GT(deleted["old"], created["late"]) << "pruned after the last wave";
}

TEST_F(ControllerTest, ApplicationsOutsideTheControlNamespaceTrackAsNamespaceUnderscoreName) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")}});
    server_->create(
        {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "team"}}}});
    startController(defaultOptions());
    json a = application("web", "app", automated(true, true));
    a["metadata"]["namespace"] = "team";
    server_->create(a);
    auto teamStatus = [&] {
        auto obj = server_->get("sluice.io/v1alpha1", "Application", "team", "web");
        return obj ? obj->value("status", json::object()) : json::object();
    };
    ASSERT_TRUE(eventually([&] { return at(teamStatus(), "/sync/status") == "Synced"; }));
    EXPECT_EQ(
        at(*object("v1", "ConfigMap", "settings"), "/metadata/annotations/sluice.io~1tracking-id"),
        "team_web:/ConfigMap:demo/settings");

    // The owned object's watch event finds its Application in the other namespace.
    client_->patch(kConfigMapGvk, kDestNs, "settings", kube::PatchType::Merge,
                   R"({"data":{"value":"drifted"}})");
    ASSERT_TRUE(eventually([&] {
        return at(*object("v1", "ConfigMap", "settings"), "/data/value") == "a" &&
               !eventsFor("DriftCorrected", "team").empty();
    }));
}

// Workloads never report status here, so a Deployment never becomes healthy.
class StuckWorkloadsTest : public ControllerTest {
  protected:
    testing::ApiServerOptions serverOptions() override {
        auto o = ControllerTest::serverOptions();
        o.simulateWorkloads = false;
        return o;
    }
    void commitStuckWaves() {
        git_.commit(kRepo, {{"app/web.yaml", deploymentYaml("web", "nginx:1.25")},
                            {"app/after.yaml", configMapYaml("after", "x", waveAnnotation(1))}});
    }
    void markDeploymentAvailable() {
        json d = client_->get(kDeploymentGvk, kDestNs, "web");
        d["status"] = {{"observedGeneration", d["metadata"]["generation"]},
                       {"replicas", 1},
                       {"updatedReplicas", 1},
                       {"readyReplicas", 1},
                       {"availableReplicas", 1}};
        client_->updateStatus(d);
    }
};

TEST_F(StuckWorkloadsTest, SyncTimesOutAndLaterWavesAreNotApplied) {
    commitStuckWaves();
    auto o = defaultOptions();
    o.syncTimeout = 1s;
    startController(o);
    server_->create(application("slow", "app", automated()));
    ASSERT_TRUE(eventually([&] { return statusAt("slow", "/operationState/phase") == "Failed"; }))
        << status("slow").dump(2);
    EXPECT_EQ(statusAt("slow", "/operationState/message"), "sync timed out after 1s");
    EXPECT_FALSE(statusAt("slow", "/operationState/finishedAt").empty());
    EXPECT_TRUE(object("apps/v1", "Deployment", "web"));
    EXPECT_FALSE(object("v1", "ConfigMap", "after"));
    json resources = status("slow")["resources"];
    ASSERT_EQ(resources.size(), 2u);
    for (const auto& r : resources)
        EXPECT_EQ(r["health"]["status"], r["kind"] == "Deployment" ? "Progressing" : "Missing")
            << r;
}

TEST_F(StuckWorkloadsTest, DegradedResourceFailsTheSync) {
    commitStuckWaves();
    startController(defaultOptions());
    server_->create(application("degrading", "app", automated()));
    ASSERT_TRUE(eventually([&] {
        return statusAt("degrading", "/operationState/phase") == "Running" &&
               object("apps/v1", "Deployment", "web").has_value();
    }));
    json d = client_->get(kDeploymentGvk, kDestNs, "web");
    d["status"] = {
        {"observedGeneration", d["metadata"]["generation"]},
        {"replicas", 1},
        {"updatedReplicas", 1},
        {"conditions",
         {{{"type", "Progressing"}, {"status", "False"}, {"reason", "ProgressDeadlineExceeded"}}}}};
    client_->updateStatus(d);
    ASSERT_TRUE(eventually([&] {
        return statusAt("degrading", "/operationState/phase") == "Failed";
    })) << status("degrading").dump(2);
    const std::string msg = statusAt("degrading", "/operationState/message");
    EXPECT_NE(msg.find("apps/Deployment demo/web is Degraded"), std::string::npos) << msg;
    EXPECT_NE(msg.find("progress deadline"), std::string::npos) << msg;
    EXPECT_FALSE(object("v1", "ConfigMap", "after"));
}

TEST_F(StuckWorkloadsTest, UserCanTerminateARunningSync) {
    commitStuckWaves();
    startController(defaultOptions());
    server_->create(application("stoppable", "app", automated()));
    ASSERT_TRUE(eventually([&] {
        return statusAt("stoppable", "/operationState/phase") == "Running" &&
               object("apps/v1", "Deployment", "web").has_value();
    })) << status("stoppable").dump(2);
    patchApp("stoppable", {{"status", {{"operationState", {{"phase", "Terminating"}}}}}}, "status");
    ASSERT_TRUE(eventually([&] {
        return statusAt("stoppable", "/operationState/phase") == "Failed";
    })) << status("stoppable").dump(2);
    EXPECT_EQ(statusAt("stoppable", "/operationState/message"), "Operation terminated");
    EXPECT_FALSE(object("v1", "ConfigMap", "after"));
    // Terminated means given up for this revision: it does not start again by itself.
    controller_->reconcileNow(kControlNs, "stoppable");
    EXPECT_EQ(statusAt("stoppable", "/operationState/phase"), "Failed");
}

TEST_F(StuckWorkloadsTest, ShutdownLeavesTheOperationToResumeOnRestart) {
    commitStuckWaves();
    startController(defaultOptions());
    server_->create(application("resumable", "app", automated()));
    ASSERT_TRUE(eventually([&] {
        return statusAt("resumable", "/operationState/phase") == "Running" &&
               object("apps/v1", "Deployment", "web").has_value();
    }));
    controller_->stop();
    EXPECT_EQ(statusAt("resumable", "/operationState/phase"), "Running");
    EXPECT_EQ(statusAt("resumable", "/operationState/message"),
              "interrupted by controller shutdown; resumes on restart");
    EXPECT_FALSE(object("v1", "ConfigMap", "after"));

    markDeploymentAvailable();
    startController(defaultOptions());
    ASSERT_TRUE(eventually([&] {
        return statusAt("resumable", "/operationState/phase") == "Succeeded";
    })) << status("resumable").dump(2);
    EXPECT_TRUE(object("v1", "ConfigMap", "after"));
}

}  // namespace
}  // namespace sluice::apptest
