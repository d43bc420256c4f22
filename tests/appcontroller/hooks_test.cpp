// Resource hooks in syncs (Argo CD's semantics), against the in-process API server. Workloads
// are not simulated here: each test decides when a hook Job completes or fails.
#include <gtest/gtest.h>

#include "harness.h"

namespace sluice::apptest {
namespace {

const kube::GroupVersionKind kJobGvk{"batch", "v1", "Job"};

std::string jobYaml(const std::string& name, const std::string& annotations,
                    bool generateName = false) {
    return "apiVersion: batch/v1\nkind: Job\nmetadata:\n  " +
           std::string(generateName ? "generateName: " : "name: ") + name + "\n  annotations:\n" +
           annotations +
           "spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n"
           "      - name: run\n        image: busybox\n";
}

std::string hook(const std::string& phase, const std::string& policy = "") {
    std::string a = "    argocd.argoproj.io/hook: " + phase + "\n";
    if (!policy.empty()) a += "    argocd.argoproj.io/hook-delete-policy: " + policy + "\n";
    return a;
}

class HooksTest : public ControllerTest {
  protected:
    testing::ApiServerOptions serverOptions() override {
        auto o = ControllerTest::serverOptions();
        o.simulateWorkloads = false;
        return o;
    }
    std::optional<json> job(const std::string& name) { return object("batch/v1", "Job", name); }
    // The hook Job whose name starts with `prefix` (generateName), if any.
    std::optional<json> jobStartingWith(const std::string& prefix) {
        for (auto& j : server_->list("batch/v1", "Job", kDestNs))
            if (kube::nameOf(j).rfind(prefix, 0) == 0) return j;
        return std::nullopt;
    }
    void finishJob(const std::string& name, bool succeeded) {
        json j = client_->get(kJobGvk, kDestNs, name);
        j["status"] = {
            {"conditions",
             {{{"type", succeeded ? "Complete" : "Failed"},
               {"status", "True"},
               {"message", succeeded ? "" : "BackoffLimitExceeded: smoke test failed"}}}}};
        client_->updateStatus(j);
    }
    // The syncResult entry of a hook, by name.
    json hookResult(const std::string& app, const std::string& name) {
        const json st = status(app);
        const auto resources = "/operationState/syncResult/resources"_json_pointer;
        if (!st.contains(resources) || !st[resources].is_array()) return json();
        for (const auto& r : st[resources])
            if (r.is_object() && r.value("name", "") == name && r.contains("hookType")) return r;
        return json();
    }
};

TEST_F(HooksTest, PreSyncRunsFirstAndPostSyncOnceEverythingIsHealthy) {
    git_.commit(kRepo, {{"app/migrate.yaml", jobYaml("migrate", hook("PreSync"))},
                        {"app/config.yaml", configMapYaml("settings", "a")},
                        {"app/smoke.yaml", jobYaml("smoke-", hook("PostSync"), true)}});
    startController(defaultOptions());
    server_->create(application("hooked", "app", automated()));

    ASSERT_TRUE(eventually([&] { return job("migrate").has_value(); }));
    EXPECT_EQ(statusAt("hooked", "/operationState/phase"), "Running");
    // The progress is written once the step's hooks are created: waited for, not read at once.
    EXPECT_TRUE(eventually([&] {
        return statusAt("hooked", "/operationState/message") ==
               "waiting for completion of PreSync hook job.batch/migrate";
    })) << status("hooked").dump(2);
    EXPECT_FALSE(object("v1", "ConfigMap", "settings")) << "nothing before PreSync completes";
    EXPECT_EQ(at(*job("migrate"), "/metadata/annotations/sluice.io~1tracking-id"),
              "hooked:batch/Job:demo/migrate");
    finishJob("migrate", true);

    ASSERT_TRUE(eventually([&] { return jobStartingWith("smoke-").has_value(); }));
    EXPECT_TRUE(object("v1", "ConfigMap", "settings")) << "PostSync after the resources";
    const std::string smoke = kube::nameOf(*jobStartingWith("smoke-"));
    EXPECT_NE(smoke.find("-postsync"), std::string::npos) << smoke;
    finishJob(smoke, true);

    ASSERT_TRUE(eventually([&] {
        return statusAt("hooked", "/operationState/phase") == "Succeeded";
    })) << status("hooked").dump(2);
    json st = status("hooked");
    EXPECT_EQ(st["sync"]["status"], "Synced") << "hooks never count as OutOfSync";
    ASSERT_EQ(st["resources"].size(), 1u) << "hooks are not resources";
    EXPECT_EQ(st["resources"][0]["name"], "settings");
    ASSERT_EQ(st["inventory"].dump().find("Job"), std::string::npos) << st["inventory"].dump();
    json migrate = hookResult("hooked", "migrate");
    EXPECT_EQ(migrate["hookType"], "PreSync");
    EXPECT_EQ(migrate["hookPhase"], "Succeeded");
    EXPECT_EQ(migrate["syncPhase"], "PreSync");
    EXPECT_EQ(hookResult("hooked", smoke)["hookPhase"], "Succeeded");
    EXPECT_TRUE(job("migrate")) << "BeforeHookCreation keeps it until the next sync";
    // Events are recorded apart from the status: waited for.
    EXPECT_TRUE(eventually([&] { return eventsFor("HookSucceeded").size() == 2u; }));
}

TEST_F(HooksTest, FailedPreSyncHookAppliesNothingAndRunsSyncFailHooks) {
    git_.commit(kRepo, {{"app/migrate.yaml", jobYaml("migrate", hook("PreSync"))},
                        {"app/config.yaml", configMapYaml("settings", "a")},
                        {"app/cleanup.yaml", jobYaml("cleanup", hook("SyncFail"))}});
    startController(defaultOptions());
    server_->create(application("failing", "app", automated()));
    ASSERT_TRUE(eventually([&] { return job("migrate").has_value(); }));
    EXPECT_FALSE(job("cleanup"));
    finishJob("migrate", false);

    ASSERT_TRUE(eventually([&] { return job("cleanup").has_value(); }));
    finishJob("cleanup", true);
    ASSERT_TRUE(eventually([&] {
        return statusAt("failing", "/operationState/phase") == "Failed";
    })) << status("failing").dump(2);
    const std::string msg = statusAt("failing", "/operationState/message");
    EXPECT_NE(msg.find("PreSync hook failed: job.batch/migrate: BackoffLimitExceeded"),
              std::string::npos)
        << msg;
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
    EXPECT_EQ(hookResult("failing", "migrate")["hookPhase"], "Failed");
    EXPECT_EQ(hookResult("failing", "cleanup")["hookPhase"], "Succeeded");
    EXPECT_EQ(hookResult("failing", "cleanup")["syncPhase"], "SyncFail");
    EXPECT_TRUE(eventually([&] { return eventsFor("HookFailed").size() == 1u; }));
}

TEST_F(HooksTest, DeletePoliciesAndRecreationOnTheNextSync) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")},
                        {"app/once.yaml", jobYaml("once", hook("PostSync", "HookSucceeded"))},
                        {"app/again.yaml", jobYaml("again", hook("PostSync"))}});
    startController(defaultOptions());
    server_->create(application("policies", "app", automated()));
    ASSERT_TRUE(eventually([&] { return job("once") && job("again"); }));
    const std::string firstUid = kube::uidOf(*job("again"));
    finishJob("once", true);
    finishJob("again", true);
    ASSERT_TRUE(eventually([&] {
        return statusAt("policies", "/operationState/phase") == "Succeeded";
    })) << status("policies").dump(2);
    ASSERT_TRUE(eventually([&] { return !job("once"); })) << "HookSucceeded deletes it";
    EXPECT_TRUE(job("again"));

    // A new revision syncs again: BeforeHookCreation replaces the old Job with a new one.
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "b")},
                        {"app/once.yaml", jobYaml("once", hook("PostSync", "HookSucceeded"))},
                        {"app/again.yaml", jobYaml("again", hook("PostSync"))}});
    controller_->refresh(kControlNs, "policies");
    ASSERT_TRUE(eventually([&] {
        auto j = job("again");
        return j && kube::uidOf(*j) != firstUid;
    }));
    finishJob("again", true);
    ASSERT_TRUE(eventually([&] { return job("once").has_value(); }));
    finishJob("once", true);
    ASSERT_TRUE(eventually([&] {
        return statusAt("policies", "/operationState/phase") == "Succeeded" &&
               at(*object("v1", "ConfigMap", "settings"), "/data/value") == "b";
    })) << status("policies").dump(2);
}

TEST_F(HooksTest, HooksAreNeverPrunedAndSkipObjectsNeverApplied) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")},
                        {"app/manual.yaml", configMapYaml("manual", "x", hook("Skip"))},
                        {"app/setup.yaml", jobYaml("setup", hook("Sync"))}});
    startController(defaultOptions());
    server_->create(application("kept", "app", automated()));
    ASSERT_TRUE(eventually([&] { return job("setup").has_value(); }));
    finishJob("setup", true);
    ASSERT_TRUE(eventually([&] {
        return statusAt("kept", "/operationState/phase") == "Succeeded";
    })) << status("kept").dump(2);
    EXPECT_FALSE(object("v1", "ConfigMap", "manual")) << "Skip: never applied";
    EXPECT_EQ(statusAt("kept", "/sync/status"), "Synced") << "nor compared";

    // The hook leaves git: it is not pruned (hooks are not in the inventory).
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "b")}});
    controller_->refresh(kControlNs, "kept");
    ASSERT_TRUE(eventually([&] {
        return at(*object("v1", "ConfigMap", "settings"), "/data/value") == "b" &&
               statusAt("kept", "/operationState/phase") == "Succeeded";
    }));
    EXPECT_TRUE(job("setup"));
}

TEST_F(HooksTest, TerminatingASyncStopsTheHookItWaitsFor) {
    git_.commit(kRepo, {{"app/migrate.yaml", jobYaml("migrate", hook("PreSync"))},
                        {"app/config.yaml", configMapYaml("settings", "a")},
                        {"app/cleanup.yaml", jobYaml("cleanup", hook("SyncFail"))}});
    startController(defaultOptions());
    server_->create(application("stoppable", "app", automated()));
    ASSERT_TRUE(eventually([&] { return job("migrate").has_value(); }));
    patchApp("stoppable", {{"status", {{"operationState", {{"phase", "Terminating"}}}}}}, "status");
    ASSERT_TRUE(eventually([&] {
        return statusAt("stoppable", "/operationState/phase") == "Failed";
    })) << status("stoppable").dump(2);
    EXPECT_EQ(statusAt("stoppable", "/operationState/message"), "Operation terminated");
    ASSERT_TRUE(eventually([&] { return !job("migrate"); })) << "the running hook is deleted";
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
    EXPECT_FALSE(job("cleanup")) << "a terminated sync runs no SyncFail hooks";
}

// The termination arrives while no sync runs (here: the controller was stopped mid-hook): the
// next reconcile ends the operation and deletes the hook its progress shows running.
TEST_F(HooksTest, ATerminationFoundAfterARestartStopsTheHookLeftRunning) {
    git_.commit(kRepo, {{"app/migrate.yaml", jobYaml("migrate", hook("PreSync"))},
                        {"app/config.yaml", configMapYaml("settings", "a")}});
    startController(defaultOptions());
    server_->create(application("restarted", "app", automated()));
    ASSERT_TRUE(eventually([&] {
        return hookResult("restarted", "migrate")["hookPhase"] == "Running";
    })) << status("restarted").dump(2);
    controller_->stop();
    ASSERT_TRUE(job("migrate")) << "a shutdown leaves the hook to the restarted sync";
    patchApp("restarted", {{"status", {{"operationState", {{"phase", "Terminating"}}}}}}, "status");

    startController(defaultOptions());
    ASSERT_TRUE(eventually([&] {
        return statusAt("restarted", "/operationState/phase") == "Failed";
    })) << status("restarted").dump(2);
    EXPECT_EQ(statusAt("restarted", "/operationState/message"), "Operation terminated");
    EXPECT_TRUE(eventually([&] { return !job("migrate"); })) << "the hook left running is deleted";
    const json left = hookResult("restarted", "migrate");  // absent when a resumed sync ended it
    EXPECT_TRUE(left.is_null() || left["hookPhase"] == "Failed") << left.dump();
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
}

// A sync resumed after a restart begins with its dry run, before it reaches the hook the
// interrupted run left running: stopped again there, then terminated, the hook is still found
// (the resumed run keeps it in its results) and deleted.
TEST_F(HooksTest, AResumedSyncStoppedBeforeItsHooksStillLetsATerminationStopThem) {
    git_.commit(kRepo, {{"app/migrate.yaml", jobYaml("migrate", hook("PreSync"))},
                        {"app/config.yaml", configMapYaml("settings", "a")}});
    startController(defaultOptions());
    server_->create(application("resumed", "app", automated()));
    ASSERT_TRUE(eventually([&] {
        return hookResult("resumed", "migrate")["hookPhase"] == "Running";
    })) << status("resumed").dump(2);
    controller_->stop();

    // Restarted, the sync resumes and waits in its dry run; stopped there.
    server_->faults().delayNext(20, 1500ms, "PATCH", "dryRun=All");
    startController(defaultOptions());
    ASSERT_TRUE(eventually([&] {
        return statusAt("resumed", "/operationState/message") == "syncing";
    })) << status("resumed").dump(2);
    controller_->stop();
    server_->faults().clear();
    EXPECT_EQ(hookResult("resumed", "migrate")["hookPhase"], "Running")
        << status("resumed").dump(2);
    ASSERT_TRUE(job("migrate"));

    patchApp("resumed", {{"status", {{"operationState", {{"phase", "Terminating"}}}}}}, "status");
    startController(defaultOptions());
    ASSERT_TRUE(eventually([&] {
        return statusAt("resumed", "/operationState/phase") == "Failed";
    })) << status("resumed").dump(2);
    EXPECT_TRUE(eventually([&] { return !job("migrate"); })) << "the hook left running is deleted";
    EXPECT_EQ(hookResult("resumed", "migrate")["hookPhase"], "Failed") << status("resumed").dump(2);
}

// The dry run comes before the PreSync hooks (as gitops-engine dry-runs every task first): a
// manifest the server refuses fails the sync before a migration could run.
TEST_F(HooksTest, ADryRunRejectionFailsTheSyncBeforeAnyPreSyncHookRuns) {
    git_.commit(kRepo, {{"app/migrate.yaml", jobYaml("migrate", hook("PreSync"))},
                        {"app/good.yaml", configMapYaml("good", "x")},
                        {"app/bad.yaml", configMapYaml("Not_A_Valid_Name", "x")}});
    startController(defaultOptions());
    server_->create(application("refused", "app", automated()));
    ASSERT_TRUE(eventually([&] {
        return statusAt("refused", "/operationState/phase") == "Failed";
    })) << status("refused").dump(2);
    const std::string msg = statusAt("refused", "/operationState/message");
    EXPECT_NE(msg.find("Not_A_Valid_Name"), std::string::npos) << msg;
    EXPECT_NE(msg.find("dry run"), std::string::npos) << msg;
    controller_->reconcileNow(kControlNs, "refused");
    EXPECT_FALSE(job("migrate")) << "the PreSync hook never ran";
    EXPECT_TRUE(server_->list("batch/v1", "Job", kDestNs).empty());
    EXPECT_FALSE(object("v1", "ConfigMap", "good"));
    EXPECT_TRUE(hookResult("refused", "migrate").is_null()) << status("refused").dump(2);
}

// Hooks are dry-run too: a PostSync hook the server refuses fails the sync before the PreSync
// hook runs.
TEST_F(HooksTest, ARefusedHookFailsTheSyncBeforeAnyHookRuns) {
    git_.commit(kRepo, {{"app/migrate.yaml", jobYaml("migrate", hook("PreSync"))},
                        {"app/config.yaml", configMapYaml("settings", "a")},
                        {"app/smoke.yaml", jobYaml("Bad_Smoke", hook("PostSync"))}});
    startController(defaultOptions());
    server_->create(application("badhook", "app", automated()));
    ASSERT_TRUE(eventually([&] {
        return statusAt("badhook", "/operationState/phase") == "Failed";
    })) << status("badhook").dump(2);
    const std::string msg = statusAt("badhook", "/operationState/message");
    EXPECT_NE(msg.find("PostSync hook"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Bad_Smoke"), std::string::npos) << msg;
    EXPECT_NE(msg.find("dry run"), std::string::npos) << msg;
    EXPECT_FALSE(job("migrate"));
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
}

// A bare Pod as a hook completes by its phase: Succeeded passes, Failed fails the sync. (Pods
// are not simulated here: the test sets the phase as the kubelet would.)
TEST_F(HooksTest, APodHookSucceedsOrFailsByItsPhase) {
    auto podYaml = [](const std::string& name, const std::string& phase) {
        return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\n  annotations:\n" +
               hook(phase) +
               "spec:\n  restartPolicy: Never\n  containers:\n  - name: run\n    image: "
               "busybox\n";
    };
    auto setPhase = [&](const std::string& name, const std::string& phase) {
        json pod = client_->get(kube::GroupVersionKind{"", "v1", "Pod"}, kDestNs, name);
        pod["status"] = {{"phase", phase}};
        if (phase == "Failed") pod["status"]["message"] = "smoke pod exited 1";
        client_->updateStatus(pod);
    };
    git_.commit(kRepo, {{"app/migrate.yaml", podYaml("migrate-pod", "PreSync")},
                        {"app/config.yaml", configMapYaml("settings", "a")},
                        {"app/smoke.yaml", podYaml("smoke-pod", "PostSync")}});
    startController(defaultOptions());
    server_->create(application("pods", "app", automated()));
    ASSERT_TRUE(eventually([&] { return object("v1", "Pod", "migrate-pod").has_value(); }));
    EXPECT_FALSE(object("v1", "ConfigMap", "settings")) << "waits for the Pod to complete";
    setPhase("migrate-pod", "Succeeded");
    ASSERT_TRUE(eventually([&] { return object("v1", "Pod", "smoke-pod").has_value(); }))
        << status("pods").dump(2);
    EXPECT_TRUE(object("v1", "ConfigMap", "settings"));
    // The status shows it with the sync's next progress write, which may come after the Pod.
    EXPECT_TRUE(eventually([&] {
        return hookResult("pods", "migrate-pod")["hookPhase"] == "Succeeded";
    })) << status("pods").dump(2);
    setPhase("smoke-pod", "Failed");
    ASSERT_TRUE(eventually([&] { return statusAt("pods", "/operationState/phase") == "Failed"; }))
        << status("pods").dump(2);
    const json smoke = hookResult("pods", "smoke-pod");
    EXPECT_EQ(smoke["hookPhase"], "Failed") << smoke;
    EXPECT_EQ(smoke["kind"], "Pod") << smoke;
    const std::string msg = statusAt("pods", "/operationState/message");
    EXPECT_NE(msg.find("PostSync hook failed: pod/smoke-pod"), std::string::npos) << msg;

    // The next revision changes the Pods (a Pod's spec cannot be updated): the old ones are
    // deleted and created anew (BeforeHookCreation), not refused by the dry run.
    const std::string oldUid = kube::uidOf(*object("v1", "Pod", "migrate-pod"));
    git_.commit(kRepo, {{"app/migrate.yaml", podYaml("migrate-pod", "PreSync")},
                        {"app/config.yaml", configMapYaml("settings", "b")},
                        {"app/smoke.yaml", podYaml("smoke-pod", "PostSync")}});
    controller_->refresh(kControlNs, "pods");
    ASSERT_TRUE(eventually([&] {
        auto pod = object("v1", "Pod", "migrate-pod");
        return pod && kube::uidOf(*pod) != oldUid;
    })) << status("pods").dump(2);
    setPhase("migrate-pod", "Succeeded");
    ASSERT_TRUE(eventually([&] {
        auto pod = object("v1", "Pod", "smoke-pod");
        return pod && at(*pod, "/status/phase") != "Failed";
    })) << status("pods").dump(2);
    setPhase("smoke-pod", "Succeeded");
    ASSERT_TRUE(eventually([&] {
        return statusAt("pods", "/operationState/phase") == "Succeeded";
    })) << status("pods").dump(2);
    EXPECT_EQ(at(*object("v1", "ConfigMap", "settings"), "/data/value"), "b");
}

TEST_F(HooksTest, AHookThatNeverCompletesTimesTheSyncOut) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")},
                        {"app/smoke.yaml", jobYaml("smoke", hook("PostSync"))}});
    auto o = defaultOptions();
    o.syncTimeout = 1s;
    startController(o);
    server_->create(application("slow", "app", automated()));
    ASSERT_TRUE(eventually([&] { return statusAt("slow", "/operationState/phase") == "Failed"; }))
        << status("slow").dump(2);
    EXPECT_EQ(statusAt("slow", "/operationState/message"), "sync timed out after 1s");
    EXPECT_EQ(hookResult("slow", "smoke")["hookPhase"], "Running");
    EXPECT_TRUE(object("v1", "ConfigMap", "settings"));
}

}  // namespace
}  // namespace sluice::apptest

namespace sluice::apptest {
namespace {

// syncPolicy.rollbackOnPostSyncFailure: a failed smoke test (PostSync hook) brings back the
// last good revision and holds the failed one until Git moves past it.
class SmokeTestRollbackTest : public HooksTest {
  protected:
    std::string commitRevision(const std::string& value, bool extra) {
        std::map<std::string, std::string> files = {
            {"app/config.yaml", configMapYaml("settings", value)},
            {"app/smoke.yaml", jobYaml("smoke", hook("PostSync"))}};
        if (extra) files["app/extra.yaml"] = configMapYaml("extra", value);
        return git_.commit(kRepo, files);
    }
    // Waits for a smoke Job other than `previousUid`, completes it, returns its uid.
    std::string runSmokeTest(const std::string& previousUid, bool succeeds) {
        std::string uid;
        EXPECT_TRUE(eventually([&] {
            auto j = job("smoke");
            if (!j || kube::uidOf(*j) == previousUid) return false;
            uid = kube::uidOf(*j);
            return true;
        }));
        if (!uid.empty()) finishJob("smoke", succeeds);
        return uid;
    }
    json smokePolicy(bool rollback) {
        json p = automated();
        p["rollbackOnPostSyncFailure"] = rollback;
        return p;
    }
};

TEST_F(SmokeTestRollbackTest, FailedSmokeTestRestoresTheLastGoodRevisionAndHoldsTheBadOne) {
    const std::string good = commitRevision("a", false);
    startController(defaultOptions());
    server_->create(application("guarded", "app", smokePolicy(true)));
    std::string uid = runSmokeTest("", true);
    ASSERT_TRUE(eventually([&] {
        return statusAt("guarded", "/operationState/phase") == "Succeeded";
    })) << status("guarded").dump(2);

    const std::string bad = commitRevision("b", true);
    controller_->refresh(kControlNs, "guarded");
    uid = runSmokeTest(uid, false);  // the new revision's smoke test fails
    ASSERT_TRUE(eventually([&] {
        return statusAt("guarded", "/postSyncRollback/failedRevision") == bad;
    })) << status("guarded").dump(2);
    uid = runSmokeTest(uid, true);  // the restored revision's smoke test passes
    ASSERT_TRUE(eventually([&] {
        return statusAt("guarded", "/operationState/phase") == "Succeeded" &&
               statusAt("guarded", "/operationState/syncResult/revision") == good;
    })) << status("guarded").dump(2);

    EXPECT_EQ(at(*object("v1", "ConfigMap", "settings"), "/data/value"), "a");
    ASSERT_TRUE(eventually([&] { return !object("v1", "ConfigMap", "extra"); }))
        << "what only the failed revision had is pruned";
    json st = status("guarded");
    EXPECT_EQ(st["postSyncRollback"]["revision"], good);
    EXPECT_NE(st["postSyncRollback"]["message"].get<std::string>().find("PostSync hook failed"),
              std::string::npos);
    EXPECT_EQ(st["history"].back()["revision"], good) << "the rollback is in history";
    EXPECT_EQ(st["operationState"]["operation"]["initiatedBy"]["username"], "sluice");
    ASSERT_TRUE(eventually([&] { return eventsFor("RollingBack").size() == 1u; }));
    EXPECT_NE(
        eventsFor("RollingBack")[0]["message"].get<std::string>().find("rolling back to " + good),
        std::string::npos);

    // Held: reconciles do not sync the failed revision again (no flapping).
    for (int i = 0; i < 3; ++i) controller_->reconcileNow(kControlNs, "guarded");
    ASSERT_TRUE(eventually([&] {
        return statusAt("guarded", "/conditions").find("is held") != std::string::npos;
    })) << status("guarded").dump(2);
    EXPECT_EQ(kube::uidOf(*job("smoke")), uid) << "no new sync ran";
    EXPECT_EQ(at(*object("v1", "ConfigMap", "settings"), "/data/value"), "a");
    EXPECT_EQ(statusAt("guarded", "/sync/status"), "OutOfSync");

    // Git moves on: the new revision syncs, and the hold is lifted once it succeeds.
    const std::string next = commitRevision("c", false);
    controller_->refresh(kControlNs, "guarded");
    runSmokeTest(uid, true);
    ASSERT_TRUE(eventually([&] {
        return statusAt("guarded", "/operationState/syncResult/revision") == next &&
               statusAt("guarded", "/operationState/phase") == "Succeeded" &&
               statusAt("guarded", "/postSyncRollback").empty();
    })) << status("guarded").dump(2);
    EXPECT_EQ(at(*object("v1", "ConfigMap", "settings"), "/data/value"), "c");
}

TEST_F(SmokeTestRollbackTest, WithoutTheOptionAFailedSmokeTestLeavesTheNewRevision) {
    commitRevision("a", false);
    startController(defaultOptions());
    server_->create(application("plain", "app", smokePolicy(false)));
    std::string uid = runSmokeTest("", true);
    ASSERT_TRUE(
        eventually([&] { return statusAt("plain", "/operationState/phase") == "Succeeded"; }));
    const std::string bad = commitRevision("b", true);
    controller_->refresh(kControlNs, "plain");
    runSmokeTest(uid, false);
    ASSERT_TRUE(eventually([&] { return statusAt("plain", "/operationState/phase") == "Failed"; }))
        << status("plain").dump(2);
    controller_->reconcileNow(kControlNs, "plain");
    EXPECT_EQ(statusAt("plain", "/operationState/syncResult/revision"), bad);
    EXPECT_EQ(at(*object("v1", "ConfigMap", "settings"), "/data/value"), "b");
    EXPECT_TRUE(object("v1", "ConfigMap", "extra"));
    EXPECT_TRUE(statusAt("plain", "/postSyncRollback").empty());
    EXPECT_TRUE(eventsFor("RollingBack").empty());
}

}  // namespace
}  // namespace sluice::apptest

namespace sluice::apptest {
namespace {

// PostDelete hooks: the Application gets the post-delete finalizer, and its deletion runs them
// once its resources are gone.
class PostDeleteTest : public HooksTest {
  protected:
    json deletableApp(const std::string& name) {
        json a = application(name, "app", automated());
        a["metadata"]["finalizers"] = {"resources-finalizer.argocd.argoproj.io"};
        return a;
    }
    bool hasFinalizer(const std::string& name, const std::string& finalizer) {
        const json a = app(name);
        if (!a.is_object()) return false;
        for (const auto& f : a["metadata"].value("finalizers", json::array()))
            if (f == finalizer) return true;
        return false;
    }
};

TEST_F(PostDeleteTest, DeletingTheApplicationRunsItsPostDeleteHooksAfterItsResources) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")},
                        {"app/farewell.yaml", jobYaml("farewell", hook("PostDelete"))}});
    startController(defaultOptions());
    server_->create(deletableApp("leaving"));
    ASSERT_TRUE(eventually([&] {
        return statusAt("leaving", "/operationState/phase") == "Succeeded" &&
               hasFinalizer("leaving", "post-delete-finalizer.sluice.io");
    })) << app("leaving").dump(2);
    EXPECT_FALSE(job("farewell")) << "PostDelete hooks do not run in syncs";

    client_->remove(kAppGvk, kControlNs, "leaving");
    ASSERT_TRUE(eventually([&] { return job("farewell").has_value(); }));
    EXPECT_FALSE(object("v1", "ConfigMap", "settings")) << "resources go first";
    EXPECT_TRUE(app("leaving").is_object()) << "held by the post-delete finalizer";
    finishJob("farewell", true);
    ASSERT_TRUE(eventually([&] { return !app("leaving").is_object(); }));
    ASSERT_TRUE(eventually([&] { return !job("farewell"); })) << "deleted once it succeeded";
}

TEST_F(PostDeleteTest, AFailedPostDeleteHookKeepsTheFinalizer) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")},
                        {"app/farewell.yaml", jobYaml("farewell", hook("PostDelete"))}});
    startController(defaultOptions());
    server_->create(deletableApp("stuck"));
    ASSERT_TRUE(
        eventually([&] { return hasFinalizer("stuck", "post-delete-finalizer.sluice.io"); }));
    client_->remove(kAppGvk, kControlNs, "stuck");
    ASSERT_TRUE(eventually([&] { return job("farewell").has_value(); }));
    finishJob("farewell", false);
    ASSERT_TRUE(eventually([&] { return !eventsFor("PostDeleteHookFailed").empty(); }));
    const std::string msg = eventsFor("PostDeleteHookFailed")[0]["message"];
    EXPECT_NE(msg.find("job.batch/farewell: BackoffLimitExceeded"), std::string::npos) << msg;
    EXPECT_TRUE(hasFinalizer("stuck", "post-delete-finalizer.sluice.io"));
    EXPECT_TRUE(job("farewell")) << "kept for inspection (no HookFailed policy)";
}

}  // namespace
}  // namespace sluice::apptest
