// Faults against sluice-controller as a process: SIGKILL in the middle of a sync while git moves
// on (issue: objects the killed sync created were never pruned and the operation stayed Running).
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "apiserver/api_server.h"
#include "process/process.h"
#include "sluice/kube/client.h"
#include "testutil/testutil.h"

using namespace std::chrono_literals;
using nlohmann::json;
using sluice::testing::ChildProcess;
using sluice::testing::eventually;
using sluice::testing::runProcess;
using sluice::testing::TempDir;

namespace {

namespace fs = std::filesystem;

const std::string kController = SLUICE_CONTROLLER_BIN;
const sluice::kube::GroupVersionKind kApp{"sluice.io", "v1alpha1", "Application"};
const sluice::kube::GroupVersionKind kConfigMap{"", "v1", "ConfigMap"};

const bool kDefaultPortsOff = [] {
    setenv("SLUICE_METRICS_ADDR", "0", 1);
    setenv("SLUICE_HEALTH_ADDR", "0", 1);
    setenv("SLUICE_WEBHOOK_ADDR", "0", 1);
    return true;
}();

class FaultProcess : public ::testing::Test {
  protected:
    void SetUp() override {
        server_.start();
        kubeconfig_ = server_.writeKubeconfig(dir_.file("kubeconfig"));
        server_.createFromFile(sluice::testing::sourcePath("crds/sluice.io_applications.yaml"));
        for (const char* ns : {"sluice", "web"})
            server_.create(
                {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
        repo_ = dir_.file("repo");
        git({"init", "-q", "-b", "main", repo_});
        client_ =
            std::make_unique<sluice::kube::RestClient>(sluice::kube::loadKubeconfig(kubeconfig_));
    }

    void git(std::vector<std::string> args) {
        args.insert(args.begin(), "git");
        auto r = runProcess(args, {{"GIT_CONFIG_GLOBAL", "/dev/null"},
                                   {"GIT_CONFIG_NOSYSTEM", "1"},
                                   {"GIT_AUTHOR_NAME", "t"},
                                   {"GIT_AUTHOR_EMAIL", "t@example.com"},
                                   {"GIT_COMMITTER_NAME", "t"},
                                   {"GIT_COMMITTER_EMAIL", "t@example.com"}});
        ASSERT_EQ(r.exitCode, 0) << r.err;
    }
    void writeConfigMaps(int from, int to) {
        fs::create_directories(repo_ + "/app");
        for (int i = from; i < to; ++i)
            std::ofstream(repo_ + "/app/cm-" + std::to_string(i) + ".yaml")
                << "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-" << i
                << "\ndata:\n  k: v\n";
    }
    std::string commit() {
        git({"-C", repo_, "add", "-A"});
        git({"-C", repo_, "commit", "-q", "-m", "change"});
        auto r = runProcess({"git", "-C", repo_, "rev-parse", "HEAD"});
        std::string sha = r.out;
        while (!sha.empty() && sha.back() == '\n') sha.pop_back();
        return sha;
    }
    std::unique_ptr<ChildProcess> startController() {
        // A client rate limit keeps the sync slow enough to be killed in the middle.
        auto c = std::make_unique<ChildProcess>(std::vector<std::string>{
            kController, "--kubeconfig", kubeconfig_, "--control-namespace", "sluice",
            "--repo-cache-dir", dir_.file("cache"), "--render-dir", dir_.file("sources"),
            "--reconcile-interval", "10m", "--qps", "100", "--burst", "20"});
        EXPECT_TRUE(c->waitForOutput("application controller started", 30s)) << c->stderrText();
        return c;
    }
    void refresh() {
        client_->patch(kApp, "sluice", "many", sluice::kube::PatchType::Merge,
                       R"({"metadata":{"annotations":{"sluice.io/refresh":"normal"}}})");
    }
    json status() { return client_->get(kApp, "sluice", "many").value("status", json::object()); }
    // ConfigMaps of the Application that exist, by index range.
    int existing(int from, int to) {
        int n = 0;
        for (const auto& cm : client_->listAll(kConfigMap, "web").items) {
            const std::string name = cm["metadata"].value("name", "");
            if (name.rfind("cm-", 0) != 0) continue;
            const int i = std::stoi(name.substr(3));
            if (i >= from && i < to) ++n;
        }
        return n;
    }
    bool syncedAt(const std::string& sha) {
        json st = status();
        return st.value("/sync/status"_json_pointer, json()) == "Synced" &&
               st.value("/sync/revision"_json_pointer, json()) == sha &&
               st.value("/operationState/phase"_json_pointer, json()) == "Succeeded";
    }

    TempDir dir_;
    sluice::testing::ApiServer server_;
    std::string kubeconfig_;
    std::string repo_;
    std::unique_ptr<sluice::kube::RestClient> client_;
};

TEST_F(FaultProcess, ASyncKilledWhileGitMovesLeavesNothingUnprunedAndEnds) {
    writeConfigMaps(0, 600);
    const std::string first = commit();
    auto controller = startController();
    client_->create(
        {{"apiVersion", "sluice.io/v1alpha1"},
         {"kind", "Application"},
         {"metadata", {{"name", "many"}, {"namespace", "sluice"}}},
         {"spec",
          {{"source", {{"repoURL", "file://" + repo_}, {"path", "app"}}},
           {"destination", {{"server", "https://kubernetes.default.svc"}, {"namespace", "web"}}},
           {"syncPolicy", {{"automated", {{"prune", true}}}}}}}});
    ASSERT_TRUE(eventually([&] { return syncedAt(first); }, 120s)) << status().dump(2);

    // 300 more; the controller is killed once some of them exist.
    writeConfigMaps(600, 900);
    commit();
    refresh();
    ASSERT_TRUE(eventually([&] { return existing(600, 900) >= 60; }, 60s, 5ms))
        << controller->stderrText();
    controller->signal(SIGKILL);
    controller->wait(10s);
    const int created = existing(600, 900);
    ASSERT_LT(created, 300) << "the sync finished before it could be killed";

    // Meanwhile git drops those 300 again.
    git({"-C", repo_, "rm", "-q", "-r", "--cached", "app"});
    for (int i = 600; i < 900; ++i) fs::remove(repo_ + "/app/cm-" + std::to_string(i) + ".yaml");
    const std::string third = commit();

    controller = startController();
    EXPECT_TRUE(eventually([&] { return syncedAt(third) && existing(600, 900) == 0; }, 120s))
        << "created by the killed sync: " << created << ", left: " << existing(600, 900) << "\n"
        << status().dump(2).substr(0, 4000) << "\n"
        << controller->stderrText().substr(0, 8000);
    EXPECT_EQ(existing(0, 600), 600);
    EXPECT_NE(status().value("/operationState/phase"_json_pointer, json()), "Running");
}

}  // namespace
