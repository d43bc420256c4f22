// Faults against sluice-controller as a process: SIGKILL in the middle of a sync while git moves
// on (issue: objects the killed sync created were never pruned and the operation stayed Running).
#include <signal.h>

#include "controller_process.h"

using namespace std::chrono_literals;
using nlohmann::json;
using sluice::processtest::kApp;
using sluice::testing::eventually;

namespace {

const sluice::kube::GroupVersionKind kConfigMap{"", "v1", "ConfigMap"};

class FaultProcess : public sluice::processtest::ControllerProcessTest {
  protected:
    void writeConfigMaps(int from, int to) {
        fs::create_directories(repo_ + "/app");
        for (int i = from; i < to; ++i)
            std::ofstream(repo_ + "/app/cm-" + std::to_string(i) + ".yaml")
                << "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-" << i
                << "\ndata:\n  k: v\n";
    }
    // A client rate limit keeps the sync slow enough to be killed in the middle.
    std::unique_ptr<sluice::testing::ChildProcess> startSlowController() {
        return startController({"--qps", "100", "--burst", "20"});
    }
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
        json st = status("many");
        return st.value("/sync/status"_json_pointer, json()) == "Synced" &&
               st.value("/sync/revision"_json_pointer, json()) == sha &&
               st.value("/operationState/phase"_json_pointer, json()) == "Succeeded";
    }
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
    ASSERT_TRUE(eventually([&] { return syncedAt(first); }, 120s)) << status("many").dump(2);

    // 300 more; the controller is killed once some of them exist.
    writeConfigMaps(600, 900);
    commit();
    refresh("many");
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

    controller = startSlowController();
    EXPECT_TRUE(eventually([&] { return syncedAt(third) && existing(600, 900) == 0; }, 120s))
        << "created by the killed sync: " << created << ", left: " << existing(600, 900) << "\n"
        << status("many").dump(2).substr(0, 4000) << "\n"
        << controller->stderrText().substr(0, 8000);
    EXPECT_EQ(existing(0, 600), 600);
    EXPECT_NE(status("many").value("/operationState/phase"_json_pointer, json()), "Running");
}

}  // namespace
