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
        for (const auto& r : st["operationState"]["syncResult"]["resources"])
            if (r.value("name", "") == name && r.contains("hookType")) return r;
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
    EXPECT_EQ(statusAt("hooked", "/operationState/message"),
              "waiting for completion of PreSync hook job.batch/migrate");
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
    EXPECT_EQ(eventsFor("HookSucceeded").size(), 2u);
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
    EXPECT_EQ(eventsFor("HookFailed").size(), 1u);
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

}  // namespace
}  // namespace sluice::apptest
