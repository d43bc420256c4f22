#pragma once
// Base fixture of the controller tests: the in-process Kubernetes API server, a RestClient for
// it and a shared informer factory on that client. Derived fixtures install their CRDs in SetUp
// and stop their controllers before they call TearDown.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "apiserver/api_server.h"
#include "process/process.h"
#include "sluice/cache/informer.h"
#include "sluice/kube/client.h"
#include "sluice/kube/config.h"
#include "tempdir/tempdir.h"
#include "testutil/objects.h"

namespace sluice::testing {

class ClusterTest : public ::testing::Test {
  protected:
    // Frequent bookmarks and quick simulated rollouts keep the tests short.
    virtual ApiServerOptions serverOptions() {
        using namespace std::chrono_literals;
        ApiServerOptions o;
        o.bookmarkInterval = 200ms;
        o.simulateDelay = 50ms;
        return o;
    }

    void SetUp() override {
        server_ = std::make_unique<ApiServer>(serverOptions());
        server_->start();
        auto cfg = kube::loadKubeconfig(server_->writeKubeconfig(dir_.file("kubeconfig")));
        cfg.qps = 0;  // the tests wait for the controller, never for a client-side limiter
        client_ = std::make_unique<kube::RestClient>(cfg);
        factory_ = std::make_unique<cache::SharedInformerFactory>(*client_);
    }

    // Informers and client go first, so none of their requests meets a stopped server. No
    // server when a derived SetUp skipped the test before calling this SetUp.
    void TearDown() override {
        factory_.reset();
        client_.reset();
        if (server_) server_->stop();
    }

    void createNamespace(const std::string& name) { server_->create(namespaceObject(name)); }

    TempDir dir_;
    std::unique_ptr<ApiServer> server_;
    std::unique_ptr<kube::RestClient> client_;
    std::unique_ptr<cache::SharedInformerFactory> factory_;
};

}  // namespace sluice::testing
