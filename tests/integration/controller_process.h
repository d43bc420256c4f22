#pragma once
// Shared set-up of the tests that run sluice-controller as a process against the API test
// server: the Application CRD and the namespaces sluice (control) and web (destination), a git
// repository changed with the git CLI, a client, and helpers to start the controller and to
// create, refresh and read Applications.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>

#include "apiserver/api_server.h"
#include "process/process.h"
#include "sluice/kube/client.h"
#include "tempdir/tempdir.h"
#include "testutil/testutil.h"
#include "testutil/tools.h"

namespace sluice::processtest {

using namespace std::chrono_literals;
using nlohmann::json;

inline const kube::GroupVersionKind kApp{"sluice.io", "v1alpha1", "Application"};

// Every controller these tests start keeps off the default ports (:8080-:8082).
inline const bool kDefaultPortsOff = [] {
    setenv("SLUICE_METRICS_ADDR", "0", 1);
    setenv("SLUICE_HEALTH_ADDR", "0", 1);
    setenv("SLUICE_WEBHOOK_ADDR", "0", 1);
    return true;
}();

class ControllerProcessTest : public ::testing::Test {
  protected:
    ControllerProcessTest() = default;
    explicit ControllerProcessTest(testing::ApiServerOptions options)
        : server_(std::move(options)) {}

    void SetUp() override {
        server_.start();
        kubeconfig_ = server_.writeKubeconfig(dir_.file("kubeconfig"));
        server_.createFromFile(testing::sourcePath("crds/sluice.io_applications.yaml"));
        for (const char* ns : {"sluice", "web"})
            server_.create(
                {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
        repo_ = dir_.file("repo");
        git({"init", "-q", "-b", "main", repo_});
        client_ = std::make_unique<kube::RestClient>(kube::loadKubeconfig(kubeconfig_));
    }

    // sluice-controller (SLUICE_CONTROLLER_BIN) with the pinned tools, a 10-minute poll and
    // `extra` flags; waits until it has started.
    std::unique_ptr<testing::ChildProcess> startController(std::vector<std::string> extra = {},
                                                           const std::string& kubeconfig = "") {
        std::vector<std::string> argv = {SLUICE_CONTROLLER_BIN,
                                         "--kubeconfig",
                                         kubeconfig.empty() ? kubeconfig_ : kubeconfig,
                                         "--control-namespace",
                                         "sluice",
                                         "--repo-cache-dir",
                                         dir_.file("cache"),
                                         "--render-dir",
                                         dir_.file("sources"),
                                         "--helm-path",
                                         testing::helmPath(),
                                         "--kubectl-path",
                                         testing::kubectlPath(),
                                         "--reconcile-interval",
                                         "10m"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        auto c = std::make_unique<testing::ChildProcess>(argv);
        EXPECT_TRUE(c->waitForOutput("application controller started", 30s)) << c->stderrText();
        return c;
    }

    void git(std::vector<std::string> args) {
        args.insert(args.begin(), "git");
        auto r = testing::runProcess(args, {{"GIT_CONFIG_GLOBAL", "/dev/null"},
                                            {"GIT_CONFIG_NOSYSTEM", "1"},
                                            {"GIT_AUTHOR_NAME", "t"},
                                            {"GIT_AUTHOR_EMAIL", "t@example.com"},
                                            {"GIT_COMMITTER_NAME", "t"},
                                            {"GIT_COMMITTER_EMAIL", "t@example.com"}});
        ASSERT_EQ(r.exitCode, 0) << r.err;
    }
    void write(const std::string& path, const std::string& content) {
        std::filesystem::create_directories(
            std::filesystem::path(repo_ + "/" + path).parent_path());
        std::ofstream(repo_ + "/" + path) << content;
    }
    void remove(const std::string& path) { std::filesystem::remove(repo_ + "/" + path); }
    // Commits everything; returns the new HEAD.
    std::string commit() {
        git({"-C", repo_, "add", "-A"});
        git({"-C", repo_, "commit", "-q", "-m", "change"});
        return testing::runProcess({"git", "-C", repo_, "rev-parse", "HEAD"}).out.substr(0, 40);
    }

    // An Application in sluice deploying to web; automated with prune unless told otherwise.
    void createApp(const std::string& name, const json& spec, bool automated = true) {
        json s = spec;
        s["destination"] = {{"server", "https://kubernetes.default.svc"}, {"namespace", "web"}};
        if (automated) s["syncPolicy"] = {{"automated", {{"prune", true}}}};
        client_->create({{"apiVersion", "sluice.io/v1alpha1"},
                         {"kind", "Application"},
                         {"metadata", {{"name", name}, {"namespace", "sluice"}}},
                         {"spec", s}});
    }
    // What a git webhook or `kubectl sluice app refresh` does.
    void refresh(const std::string& name) {
        client_->patch(kApp, "sluice", name, kube::PatchType::Merge,
                       R"({"metadata":{"annotations":{"sluice.io/refresh":"normal"}}})");
    }
    json status(const std::string& name) {
        return client_->get(kApp, "sluice", name).value("status", json::object());
    }
    std::optional<json> object(const std::string& apiVersion, const std::string& kind,
                               const std::string& name) {
        return server_.get(apiVersion, kind, "web", name);
    }

    testing::TempDir dir_;
    testing::ApiServer server_;
    std::string kubeconfig_;
    std::string repo_;
    std::unique_ptr<kube::RestClient> client_;
};

}  // namespace sluice::processtest
