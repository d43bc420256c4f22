// Resource hooks through sluice-controller as a process, against the API test server (whose
// simulated kubelet runs Jobs: a container that runs `exit 1` fails), with git repositories
// changed by the git CLI and Helm charts rendered by the real helm. The order objects were
// created in is read from a watch of the destination namespace (creation resourceVersions).
#include <algorithm>
#include <mutex>
#include <thread>

#include "controller_process.h"
#include "sluice/util/stop.h"

using namespace std::chrono_literals;
using nlohmann::json;
using sluice::testing::ChildProcess;
using sluice::testing::eventually;

namespace {

using sluice::processtest::kApp;

// A Job; `fails` makes its container exit 1.
std::string jobYaml(const std::string& name, const std::string& annotations, bool fails = false,
                    bool generateName = false) {
    return "apiVersion: batch/v1\nkind: Job\nmetadata:\n  " +
           std::string(generateName ? "generateName: " : "name: ") + name + "\n  annotations:\n" +
           annotations +
           "spec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n"
           "      containers:\n      - name: run\n        image: busybox\n"
           "        command: [sh, -c, \"" +
           (fails ? "exit 1" : "exit 0") + "\"]\n";
}

std::string annotations(const std::map<std::string, std::string>& a) {
    std::string out;
    for (const auto& [k, v] : a) out += "    " + k + ": \"" + v + "\"\n";
    return out;
}

const char* kDeploymentYaml = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1"}]}
)";

std::string configMap(const std::string& name, const std::string& value,
                      const std::string& wave = "") {
    std::string y = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n";
    if (!wave.empty()) y += "  annotations: {argocd.argoproj.io/sync-wave: \"" + wave + "\"}\n";
    return y + "data: {value: \"" + value + "\"}\n";
}

class HooksProcess : public sluice::processtest::ControllerProcessTest {
  protected:
    void SetUp() override {
        ControllerProcessTest::SetUp();
        if (HasFatalFailure()) return;
        const std::string from = server_.currentResourceVersion();
        for (const auto& gvk : {kJob, kDeploymentGvk, kConfigMap})
            watchers_.emplace_back([this, gvk, from] { record(gvk, from); });
    }
    void TearDown() override {
        stop_.requestStop();
        for (auto& t : watchers_) t.join();
    }

    // Kind/name of each object created in namespace web, in creation order.
    std::vector<std::string> created() {
        std::lock_guard lock(mu_);
        auto all = created_;
        std::sort(all.begin(), all.end());
        std::vector<std::string> out;
        for (const auto& [rv, name] : all) out.push_back(name);
        return out;
    }
    std::size_t indexOf(const std::string& name) {
        auto all = created();
        auto it = std::find(all.begin(), all.end(), name);
        return it == all.end() ? SIZE_MAX : static_cast<std::size_t>(it - all.begin());
    }
    std::vector<std::string> jobsStartingWith(const std::string& prefix) {
        std::vector<std::string> out;
        for (const auto& j : server_.list("batch/v1", "Job", "web"))
            if (sluice::kube::nameOf(j).rfind(prefix, 0) == 0)
                out.push_back(sluice::kube::nameOf(j));
        return out;
    }
    bool waitFor(const std::function<bool()>& cond, const std::string& app) {
        if (eventually(cond, 60s)) return true;
        ADD_FAILURE() << "status of " << app << ": " << status(app).dump(2) << "\ncontroller:\n"
                      << controller_->stderrText().substr(0, 20000);
        return false;
    }
    std::string at(const json& obj, const std::string& pointer) {
        json::json_pointer p(pointer);
        if (!obj.contains(p)) return "";
        const json& v = obj.at(p);
        return v.is_string() ? v.get<std::string>() : v.dump();
    }
    std::string statusAt(const std::string& app, const std::string& pointer) {
        return at(status(app), pointer);
    }
    std::vector<json> events(const std::string& reason) {
        std::vector<json> out;
        for (auto& e : server_.list("v1", "Event", "sluice"))
            if (e.value("reason", "") == reason) out.push_back(e);
        return out;
    }

    const sluice::kube::GroupVersionKind kJob{"batch", "v1", "Job"};
    const sluice::kube::GroupVersionKind kDeploymentGvk{"apps", "v1", "Deployment"};
    const sluice::kube::GroupVersionKind kConfigMap{"", "v1", "ConfigMap"};
    std::unique_ptr<ChildProcess> controller_;

  private:
    void record(const sluice::kube::GroupVersionKind& gvk, const std::string& from) {
        sluice::kube::RestClient client(sluice::kube::loadKubeconfig(kubeconfig_));
        sluice::kube::WatchOptions opts;
        opts.resourceVersion = from;
        while (!stop_.stopRequested()) {
            try {
                client.watch(
                    gvk, "web", opts,
                    [&](const sluice::kube::WatchEvent& e) {
                        if (e.type == sluice::kube::WatchEvent::Type::Bookmark ||
                            e.type == sluice::kube::WatchEvent::Type::Error)
                            return true;
                        opts.resourceVersion = sluice::kube::resourceVersionOf(e.object);
                        if (e.type != sluice::kube::WatchEvent::Type::Added) return true;
                        std::lock_guard lock(mu_);
                        created_.emplace_back(std::stoull(opts.resourceVersion),
                                              gvk.kind + "/" + sluice::kube::nameOf(e.object));
                        return true;
                    },
                    stop_.token());
            } catch (const std::exception&) {
                stop_.token().sleepFor(100ms);
            }
        }
    }

    sluice::StopSource stop_;
    std::vector<std::thread> watchers_;
    std::mutex mu_;
    std::vector<std::pair<uint64_t, std::string>> created_;
};

TEST_F(HooksProcess, MigrationBeforeTheDeploymentSmokeTestAfterInWavesAndPolicies) {
    write("app/migrate.yaml",
          jobYaml("migrate",
                  annotations({{"argocd.argoproj.io/hook", "PreSync"},
                               {"argocd.argoproj.io/sync-wave", "-1"},
                               {"argocd.argoproj.io/hook-delete-policy", "HookSucceeded"}})));
    write("app/seed.yaml", jobYaml("seed", annotations({{"argocd.argoproj.io/hook", "PreSync"}})));
    write("app/deploy.yaml", kDeploymentYaml);
    write("app/config.yaml", configMap("config", "a", "1"));
    write("app/warm.yaml", jobYaml("warm", annotations({{"sluice.io/hook", "Sync"},
                                                        {"argocd.argoproj.io/sync-wave", "1"}})));
    write("app/smoke.yaml",
          jobYaml("smoke-", annotations({{"argocd.argoproj.io/hook", "PostSync"}}), false, true));
    commit();
    controller_ = startController();
    createApp("shop", {{"source", {{"repoURL", "file://" + repo_}, {"path", "app"}}}});
    ASSERT_TRUE(waitFor(
        [&] {
            return statusAt("shop", "/operationState/phase") == "Succeeded" &&
                   statusAt("shop", "/sync/status") == "Synced";
        },
        "shop"));
    const auto smoke = jobsStartingWith("smoke-");
    ASSERT_EQ(smoke.size(), 1u);
    // PreSync by wave, then wave 0 (the Deployment), wave 1 (the ConfigMap and its Sync hook),
    // then PostSync once everything is Healthy.
    EXPECT_LT(indexOf("Job/migrate"), indexOf("Job/seed"));
    EXPECT_LT(indexOf("Job/seed"), indexOf("Deployment/web"));
    EXPECT_LT(indexOf("Deployment/web"), indexOf("ConfigMap/config"));
    EXPECT_LT(indexOf("Deployment/web"), indexOf("Job/warm"));
    EXPECT_LT(indexOf("ConfigMap/config"), indexOf("Job/" + smoke[0]));
    EXPECT_LT(indexOf("Job/warm"), indexOf("Job/" + smoke[0]));
    EXPECT_LT(indexOf("Job/" + smoke[0]), SIZE_MAX) << ::testing::PrintToString(created());
    EXPECT_TRUE(waitFor([&] { return !object("batch/v1", "Job", "migrate"); }, "shop"))
        << "HookSucceeded";
    EXPECT_TRUE(object("batch/v1", "Job", "seed")) << "BeforeHookCreation keeps it";
    json st = status("shop");
    EXPECT_EQ(st["resources"].size(), 2u) << "hooks are not resources: " << st["resources"];
    int hooks = 0;
    for (const auto& r : st["operationState"]["syncResult"]["resources"])
        if (r.contains("hookType")) {
            ++hooks;
            EXPECT_EQ(r["hookPhase"], "Succeeded") << r;
        }
    EXPECT_EQ(hooks, 4);

    // A new commit: the seed Job is replaced (BeforeHookCreation), the smoke test gets a new
    // name, and nothing is pruned although hooks are not in the inventory.
    const std::string seedUid = sluice::kube::uidOf(*object("batch/v1", "Job", "seed"));
    write("app/config.yaml", configMap("config", "b", "1"));
    const std::string second = commit();
    refresh("shop");
    ASSERT_TRUE(waitFor(
        [&] {
            return statusAt("shop", "/operationState/syncResult/revision") == second &&
                   statusAt("shop", "/operationState/phase") == "Succeeded";
        },
        "shop"));
    EXPECT_EQ(jobsStartingWith("smoke-").size(), 2u) << "a fresh name per sync";
    EXPECT_NE(sluice::kube::uidOf(*object("batch/v1", "Job", "seed")), seedUid);
    EXPECT_TRUE(object("batch/v1", "Job", "warm"));
}

TEST_F(HooksProcess, FailedSmokeTestRunsSyncFailAndRollsBackToTheLastGoodRevision) {
    auto revision = [&](const std::string& value, bool smokeFails, bool extra) {
        write("app/deploy.yaml", kDeploymentYaml);
        write("app/config.yaml", configMap("config", value));
        write("app/smoke.yaml",
              jobYaml("smoke", annotations({{"argocd.argoproj.io/hook", "PostSync"}}), smokeFails));
        write("app/alert.yaml",
              jobYaml("alert", annotations({{"argocd.argoproj.io/hook", "SyncFail"}})));
        if (extra) {
            write("app/extra.yaml", configMap("extra", value));
        } else {
            remove("app/extra.yaml");
        }
        return commit();
    };
    const std::string good = revision("a", false, false);
    controller_ = startController();
    createApp("guarded", {{"source", {{"repoURL", "file://" + repo_}, {"path", "app"}}}});
    client_->patch(kApp, "sluice", "guarded", sluice::kube::PatchType::Merge,
                   R"({"spec":{"syncPolicy":{"rollbackOnPostSyncFailure":true}}})");
    ASSERT_TRUE(waitFor(
        [&] {
            return statusAt("guarded", "/operationState/syncResult/revision") == good &&
                   statusAt("guarded", "/operationState/phase") == "Succeeded";
        },
        "guarded"));
    EXPECT_FALSE(object("batch/v1", "Job", "alert")) << "SyncFail only runs when a sync fails";

    const std::string bad = revision("b", true, true);
    refresh("guarded");
    ASSERT_TRUE(waitFor(
        [&] { return statusAt("guarded", "/postSyncRollback/failedRevision") == bad; }, "guarded"));
    EXPECT_TRUE(object("batch/v1", "Job", "alert")) << "the failed sync ran its SyncFail hook";
    ASSERT_TRUE(waitFor(
        [&] {
            return statusAt("guarded", "/operationState/syncResult/revision") == good &&
                   statusAt("guarded", "/operationState/phase") == "Succeeded" &&
                   !object("v1", "ConfigMap", "extra");
        },
        "guarded"));
    EXPECT_EQ(at(*object("v1", "ConfigMap", "config"), "/data/value"), "a");
    json st = status("guarded");
    EXPECT_EQ(st["postSyncRollback"]["revision"], good);
    EXPECT_EQ(st["history"].back()["revision"], good);
    EXPECT_TRUE(eventually([&] { return events("RollingBack").size() == 1u; }, 10s));

    // Held: a refresh (and the periodic reconciles it brings) does not sync the bad revision.
    const std::string rolledBackAt = statusAt("guarded", "/operationState/startedAt");
    refresh("guarded");
    ASSERT_TRUE(waitFor(
        [&] { return statusAt("guarded", "/conditions").find("is held") != std::string::npos; },
        "guarded"));
    std::this_thread::sleep_for(2s);
    EXPECT_EQ(statusAt("guarded", "/operationState/startedAt"), rolledBackAt) << "no new sync";
    EXPECT_EQ(at(*object("v1", "ConfigMap", "config"), "/data/value"), "a");

    // A new commit moves past it.
    const std::string next = revision("c", false, false);
    refresh("guarded");
    ASSERT_TRUE(waitFor(
        [&] {
            return statusAt("guarded", "/operationState/syncResult/revision") == next &&
                   statusAt("guarded", "/operationState/phase") == "Succeeded" &&
                   statusAt("guarded", "/postSyncRollback").empty();
        },
        "guarded"));
    EXPECT_EQ(at(*object("v1", "ConfigMap", "config"), "/data/value"), "c");
}

TEST_F(HooksProcess, HelmHooksRunInTheirArgoCdPhases) {
    write("chart/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
    write("chart/templates/deployment.yaml", kDeploymentYaml);
    write("chart/templates/migrate.yaml",
          jobYaml("{{ .Release.Name }}-migrate",
                  annotations({{"helm.sh/hook", "pre-install,pre-upgrade"},
                               {"helm.sh/hook-weight", "-5"},
                               {"helm.sh/hook-delete-policy", "hook-succeeded"}})));
    write("chart/templates/prepare.yaml",
          jobYaml("{{ .Release.Name }}-prepare",
                  annotations({{"helm.sh/hook", "pre-install"}, {"helm.sh/hook-weight", "0"}})));
    write("chart/templates/notify.yaml",
          jobYaml("{{ .Release.Name }}-notify",
                  annotations({{"helm.sh/hook", "post-install,post-upgrade"}})));
    write("chart/templates/test.yaml",
          jobYaml("{{ .Release.Name }}-test", annotations({{"helm.sh/hook", "test"}})));
    commit();
    controller_ = startController();
    createApp("chart", {{"source", {{"repoURL", "file://" + repo_}, {"path", "chart"}}}});
    ASSERT_TRUE(waitFor(
        [&] {
            return statusAt("chart", "/operationState/phase") == "Succeeded" &&
                   statusAt("chart", "/sync/status") == "Synced";
        },
        "chart"));
    EXPECT_LT(indexOf("Job/chart-migrate"), indexOf("Job/chart-prepare")) << "hook-weight order";
    EXPECT_LT(indexOf("Job/chart-prepare"), indexOf("Deployment/web"));
    EXPECT_LT(indexOf("Deployment/web"), indexOf("Job/chart-notify"));
    EXPECT_LT(indexOf("Job/chart-notify"), SIZE_MAX) << ::testing::PrintToString(created());
    EXPECT_EQ(indexOf("Job/chart-test"), SIZE_MAX) << "test hooks are dropped";
    EXPECT_TRUE(waitFor([&] { return !object("batch/v1", "Job", "chart-migrate"); }, "chart"))
        << "hook-succeeded";
    EXPECT_TRUE(object("batch/v1", "Job", "chart-prepare"));
    EXPECT_EQ(status("chart")["resources"].size(), 1u);
}

}  // namespace

namespace {

// hook-delete-policy on failure, through the process: HookFailed deletes the failed hook,
// HookSucceeded keeps it. Without rollbackOnPostSyncFailure the failed PostSync ends the sync
// Failed, names the hooks in the operation state, and the new revision stays.
TEST_F(HooksProcess, FailedPostSyncHooksFollowTheirDeletePolicyAndLeaveTheNewRevision) {
    write("app/config.yaml", configMap("config", "a"));
    const std::string first = commit();
    controller_ = startController();
    createApp("plain", {{"source", {{"repoURL", "file://" + repo_}, {"path", "app"}}}});
    ASSERT_TRUE(waitFor(
        [&] {
            return statusAt("plain", "/operationState/syncResult/revision") == first &&
                   statusAt("plain", "/operationState/phase") == "Succeeded";
        },
        "plain"));

    write("app/config.yaml", configMap("config", "b"));
    write("app/dropped.yaml",
          jobYaml("smoke-dropped",
                  annotations({{"argocd.argoproj.io/hook", "PostSync"},
                               {"argocd.argoproj.io/hook-delete-policy", "HookFailed"}}),
                  true));
    write("app/kept.yaml",
          jobYaml("smoke-kept",
                  annotations({{"argocd.argoproj.io/hook", "PostSync"},
                               {"argocd.argoproj.io/hook-delete-policy", "HookSucceeded"}}),
                  true));
    const std::string second = commit();
    refresh("plain");
    ASSERT_TRUE(waitFor(
        [&] {
            return statusAt("plain", "/operationState/syncResult/revision") == second &&
                   statusAt("plain", "/operationState/phase") == "Failed";
        },
        "plain"));
    EXPECT_LT(indexOf("Job/smoke-dropped"), SIZE_MAX) << ::testing::PrintToString(created());
    EXPECT_TRUE(waitFor([&] { return !object("batch/v1", "Job", "smoke-dropped"); }, "plain"))
        << "HookFailed deletes the failed hook";
    EXPECT_TRUE(object("batch/v1", "Job", "smoke-kept")) << "HookSucceeded keeps a failed one";

    const json st = status("plain");
    const std::string message = st["operationState"].value("message", "");
    EXPECT_NE(message.find("PostSync hook failed"), std::string::npos) << message;
    for (const std::string name : {"smoke-dropped", "smoke-kept"}) {
        EXPECT_NE(message.find("job.batch/" + name + ": "), std::string::npos) << message;
        json found;
        for (const auto& r : st["operationState"]["syncResult"]["resources"])
            if (r.value("name", "") == name) found = r;
        ASSERT_TRUE(found.is_object()) << st["operationState"].dump(2);
        EXPECT_EQ(found["kind"], "Job") << found;
        EXPECT_EQ(found["group"], "batch") << found;
        EXPECT_EQ(found["hookType"], "PostSync") << found;
        EXPECT_EQ(found["hookPhase"], "Failed") << found;
        const std::string hookMessage = found.value("message", "");
        EXPECT_NE(hookMessage.find("backoff limit"), std::string::npos) << found;
        EXPECT_NE(message.find(hookMessage), std::string::npos) << message;
    }
    EXPECT_TRUE(waitFor([&] { return events("HookFailed").size() == 2u; }, "plain"));

    // The new revision stays: no rollback, and the resources are the new ones.
    EXPECT_TRUE(statusAt("plain", "/postSyncRollback").empty());
    EXPECT_TRUE(events("RollingBack").empty());
    EXPECT_EQ(at(*object("v1", "ConfigMap", "config"), "/data/value"), "b");
    std::this_thread::sleep_for(2s);
    EXPECT_EQ(statusAt("plain", "/operationState/syncResult/revision"), second);
    EXPECT_EQ(statusAt("plain", "/operationState/phase"), "Failed");
    EXPECT_EQ(at(*object("v1", "ConfigMap", "config"), "/data/value"), "b");
}

}  // namespace
