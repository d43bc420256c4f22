// Faults against sluice-controller as a process: SIGKILL in the middle of a sync (while git moves
// on, and not), an API server restart with compaction, 429 and 5xx bursts with dropped watches,
// git unreachable then force-pushed, hostile repositories under a memory limit. Each checks that
// nothing tracked is left unpruned, nothing is pruned wrongly and every operation ends.
// (rbac_process_test.cpp: a namespaced RBAC set-up.)
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <thread>

// gtest before cpprest: cpprest's U() macro breaks gtest's templates.
#include "controller_process.h"
#include "testutil/hostile.h"

#include <cpprest/http_client.h>

using namespace std::chrono_literals;
using nlohmann::json;
using sluice::processtest::kApp;
using sluice::testing::eventually;

namespace {

namespace fs = std::filesystem;

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
    // An Application of the ConfigMaps under app/, automated with prune and self-heal.
    void createConfigMapApp(const std::string& name, json syncPolicy = json::object()) {
        syncPolicy["automated"] = {{"prune", true}, {"selfHeal", true}};
        client_->create({{"apiVersion", "sluice.io/v1alpha1"},
                         {"kind", "Application"},
                         {"metadata", {{"name", name}, {"namespace", "sluice"}}},
                         {"spec",
                          {{"source", {{"repoURL", "file://" + repo_}, {"path", "app"}}},
                           {"destination",
                            {{"server", "https://kubernetes.default.svc"}, {"namespace", "web"}}},
                           {"syncPolicy", syncPolicy}}}});
    }
    void removeConfigMaps(int from, int to) {
        for (int i = from; i < to; ++i)
            fs::remove(repo_ + "/app/cm-" + std::to_string(i) + ".yaml");
    }
    // By another field manager, as `kubectl edit` would.
    void editByHand(const std::string& name) {
        sluice::kube::PatchOptions by;
        by.fieldManager = "kubectl-edit";
        client_->patch(kConfigMap, "web", name, sluice::kube::PatchType::Merge,
                       R"({"data":{"k":"edited"}})", by);
    }
    bool restored(const std::string& name) {
        auto cm = server_.get("v1", "ConfigMap", "web", name);
        return cm && (*cm)["data"].value("k", "") == "v";
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
    // An explicit client rate limit: by default the test API server's APF headers turn the
    // client-side limit off, and the sync would end before it could be killed.
    auto controller = startSlowController();
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

TEST_F(FaultProcess, ASyncKilledAtTheSameRevisionResumesWithoutDuplicates) {
    writeConfigMaps(0, 400);
    const std::string sha = commit();
    auto controller = startSlowController();
    createConfigMapApp("many");
    ASSERT_TRUE(eventually([&] { return existing(0, 400) >= 60; }, 60s, 5ms))
        << controller->stderrText();
    controller->signal(SIGKILL);
    controller->wait(10s);
    const int created = existing(0, 400);
    ASSERT_LT(created, 400) << "the sync finished before it could be killed";
    EXPECT_EQ(status("many").value("/operationState/phase"_json_pointer, json()), "Running");
    std::map<std::string, std::string> uids;
    for (const auto& cm : client_->listAll(kConfigMap, "web").items)
        uids[cm["metadata"].value("name", "")] = cm["metadata"].value("uid", "");

    controller = startController();
    EXPECT_TRUE(eventually([&] { return syncedAt(sha) && existing(0, 400) == 400; }, 120s))
        << "created before the kill: " << created << "\n"
        << status("many").dump(2).substr(0, 4000);
    // What the killed sync created was kept, not deleted and created again.
    for (const auto& cm : client_->listAll(kConfigMap, "web").items) {
        auto before = uids.find(cm["metadata"].value("name", ""));
        if (before != uids.end()) {
            EXPECT_EQ(cm["metadata"].value("uid", ""), before->second);
        }
    }
    EXPECT_NE(status("many").value("/operationState/phase"_json_pointer, json()), "Running");
}

TEST_F(FaultProcess, AnApiServerRestartWithCompactionRelistsAndSelfHeals) {
    writeConfigMaps(0, 30);
    const std::string first = commit();
    auto controller = startController();
    createConfigMapApp("many");
    ASSERT_TRUE(eventually([&] { return syncedAt(first); }, 60s)) << status("many").dump(2);

    // Down for 3 s; every watch's resourceVersion is compacted away meanwhile.
    server_.restart(3s);
    const auto back = std::chrono::steady_clock::now();
    editByHand("cm-3");
    ASSERT_TRUE(eventually([&] { return restored("cm-3"); }, 60s))
        << controller->stderrText().substr(0, 6000);
    std::printf("self-heal after the API server came back: %lld ms\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - back)
                                           .count()));
    EXPECT_NE(controller->stderrText().find("relisting"), std::string::npos);

    // Git moves on: exactly what left git is pruned, nothing else.
    removeConfigMaps(20, 30);
    writeConfigMaps(30, 35);
    const std::string second = commit();
    refresh("many");
    EXPECT_TRUE(eventually([&] { return syncedAt(second); }, 60s)) << status("many").dump(2);
    EXPECT_EQ(existing(0, 20), 20);
    EXPECT_EQ(existing(20, 30), 0);
    EXPECT_EQ(existing(30, 35), 5);
}

TEST_F(FaultProcess, BurstsOf429And5xxAndDroppedWatchesLoseNothing) {
    writeConfigMaps(0, 100);
    const std::string first = commit();
    auto controller = startController();
    // Throttled and failing writes and reads, and watches cut while the sync runs.
    server_.faults().throttleNext(30, 1, "PATCH", "configmaps");
    server_.faults().failNext(15, 503, "PATCH", "configmaps");
    server_.faults().failNext(10, 500, "GET", "configmaps");
    server_.faults().failNext(5, 502, "PATCH", "applications/many/status");
    std::atomic<bool> cutting{true};
    std::thread cutter([&] {
        for (int i = 0; i < 20 && cutting; ++i) {
            std::this_thread::sleep_for(250ms);
            server_.dropWatches();
        }
    });
    createConfigMapApp("many", {{"retry", {{"limit", 5}}}});
    const bool synced = eventually([&] { return syncedAt(first); }, 120s);
    cutting = false;
    cutter.join();
    ASSERT_TRUE(synced) << status("many").dump(2).substr(0, 4000)
                        << controller->stderrText().substr(0, 6000);
    EXPECT_EQ(existing(0, 100), 100);

    // A prune under 5xx bursts deletes exactly what left git.
    server_.faults().failNext(6, 503, "DELETE", "configmaps");
    server_.faults().throttleNext(6, 1, "DELETE", "configmaps");
    removeConfigMaps(90, 100);
    const std::string second = commit();
    refresh("many");
    EXPECT_TRUE(eventually([&] { return syncedAt(second) && existing(90, 100) == 0; }, 120s))
        << status("many").dump(2).substr(0, 4000);
    EXPECT_EQ(existing(0, 90), 90);
    editByHand("cm-7");
    EXPECT_TRUE(eventually([&] { return restored("cm-7"); }, 60s));
}

TEST_F(FaultProcess, GitUnreachableThenForcePushedLosesNothingAndPrunesExactly) {
    writeConfigMaps(0, 10);
    const std::string first = commit();
    auto controller = startController();
    createConfigMapApp("many");
    ASSERT_TRUE(eventually([&] { return syncedAt(first); }, 60s)) << status("many").dump(2);

    // The repository goes away: an error in status, nothing pruned, nothing changed.
    fs::rename(repo_, repo_ + ".away");
    refresh("many");
    auto unreachable = [&] {
        for (const auto& c : status("many").value("conditions", json::array()))
            if (c.value("type", "") == "ComparisonError") return true;
        return false;
    };
    EXPECT_TRUE(eventually(unreachable, 60s)) << status("many").dump(2);
    EXPECT_EQ(existing(0, 10), 10);
    EXPECT_EQ(status("many").value("/sync/status"_json_pointer, json()), "Unknown");

    // Back, with main force-pushed to a commit that does not descend from the synced one.
    fs::rename(repo_ + ".away", repo_);
    git({"-C", repo_, "checkout", "-q", "--orphan", "rewritten"});
    removeConfigMaps(5, 10);
    writeConfigMaps(10, 12);
    const std::string rewritten = commit();
    git({"-C", repo_, "branch", "-q", "-D", "main"});
    git({"-C", repo_, "branch", "-q", "-m", "main"});
    refresh("many");
    EXPECT_TRUE(eventually([&] { return syncedAt(rewritten) && !unreachable(); }, 60s))
        << status("many").dump(2).substr(0, 4000);
    EXPECT_EQ(existing(0, 5), 5);
    EXPECT_EQ(existing(5, 10), 0);
    EXPECT_EQ(existing(10, 12), 2);
}

// GET /healthz of a controller on loopback: the status code, 0 when nothing answers.
int healthz(int port) {
    try {
        web::http::client::http_client_config cfg;
        cfg.set_timeout(std::chrono::seconds(2));
        web::http::client::http_client c("http://127.0.0.1:" + std::to_string(port), cfg);
        return c.request(web::http::methods::GET, "/healthz").get().status_code();
    } catch (const std::exception&) {
        return 0;
    }
}

// Hostile repositories under a memory limit (issue: an alias bomb grew the controller to 14 GB):
// the bomb and a 40 MB manifest are refused with a condition naming the file, the controller
// stays up and serving, and the other Applications sync.
TEST_F(FaultProcess, HostileRepositoriesUnderAMemoryLimitAreRefusedAndTheControllerServes) {
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "AddressSanitizer reserves more address space than any useful limit";
#endif
    write("bomb/bomb.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n" +
                                sluice::testing::yamlAliasBomb("  "));
    write("huge/huge.yaml",
          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: huge}\ndata:\n  x: " +
              std::string(40u << 20, 'x') + "\n");
    writeConfigMaps(0, 3);
    const std::string sha = commit();
    const int health = sluice::testing::freeLoopbackPort();
    // 3 GiB of address space: thread stacks and malloc arenas need some; the bomb needed 14 GB.
    auto controller = std::make_unique<sluice::testing::ChildProcess>(std::vector<std::string>{
        "sh", "-c", "ulimit -v 3145728 && exec \"$0\" \"$@\"", SLUICE_CONTROLLER_BIN,
        "--kubeconfig", kubeconfig_, "--control-namespace", "sluice", "--repo-cache-dir",
        dir_.file("cache"), "--render-dir", dir_.file("sources"), "--reconcile-interval", "10m",
        "--health-addr", "127.0.0.1:" + std::to_string(health)});
    ASSERT_TRUE(controller->waitForOutput("application controller started", 30s))
        << controller->stderrText();
    createApp("bomb", {{"source", {{"repoURL", "file://" + repo_}, {"path", "bomb"}}}});
    createApp("huge", {{"source", {{"repoURL", "file://" + repo_}, {"path", "huge"}}}});
    createApp("fine", {{"source", {{"repoURL", "file://" + repo_}, {"path", "app"}}}});
    auto comparisonError = [&](const std::string& app, const std::string& file) {
        for (const auto& c : status(app).value("conditions", json::array()))
            if (c.value("type", "") == "ComparisonError" &&
                c.value("message", "").find(file) != std::string::npos)
                return true;
        return false;
    };
    EXPECT_TRUE(eventually([&] { return comparisonError("bomb", "bomb/bomb.yaml"); }, 60s))
        << status("bomb").dump(2) << controller->stderrText().substr(0, 4000);
    EXPECT_TRUE(eventually([&] { return comparisonError("huge", "huge/huge.yaml"); }, 60s))
        << status("huge").dump(2).substr(0, 2000);
    EXPECT_TRUE(eventually(
        [&] {
            json st = status("fine");
            return st.value("/sync/status"_json_pointer, json()) == "Synced" &&
                   st.value("/sync/revision"_json_pointer, json()) == sha;
        },
        60s))
        << status("fine").dump(2);
    EXPECT_TRUE(controller->running()) << controller->stderrText().substr(0, 4000);
    EXPECT_EQ(healthz(health), 200);
}

}  // namespace
