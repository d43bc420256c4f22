#pragma once
// Base fixture of the tests that drive the real kubectl: a fresh in-process API server (no
// simulated workloads, so only kubectl writes) and kubectl (kubectlPath(), tools.h) pointed at
// it. The test is skipped where that kubectl cannot be run. Link sluice_testkubectl.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apiserver/api_server.h"
#include "process/process.h"
#include "tempdir/tempdir.h"
#include "testutil/objects.h"
#include "testutil/tools.h"

namespace sluice::testing {

class KubectlTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!isExecutable(kubectlPath())) GTEST_SKIP() << "no kubectl at " << kubectlPath();
        ApiServerOptions opts;
        opts.simulateWorkloads = false;
        server = std::make_unique<ApiServer>(opts);
        server->start();
        kubeconfig = server->writeKubeconfig(dir.file("kubeconfig"));
        std::filesystem::create_directories(dir.file("cache"));
    }
    void TearDown() override {
        if (server) server->stop();
    }

    RunResult kubectl(std::vector<std::string> args, const std::string& stdinText = "") {
        std::vector<std::string> argv = {kubectlPath(), "--cache-dir=" + dir.file("cache")};
        argv.insert(argv.end(), args.begin(), args.end());
        // HOME and KUBECONFIG point at the temp dir: no user configuration is read or written.
        return runProcess(argv, {{"HOME", dir.str()}, {"KUBECONFIG", kubeconfig}},
                          std::chrono::seconds(60), stdinText);
    }

    void createNamespace(const std::string& name) { server->create(namespaceObject(name)); }

    TempDir dir;
    std::unique_ptr<ApiServer> server;
    std::string kubeconfig;
};

}  // namespace sluice::testing
