#pragma once
// Shared fixture: a started ApiServer (TLS, token auth) and a client for it.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <thread>

#include "apiserver/api_server.h"
#include "test_client.h"

namespace sluice::testing {

using nlohmann::json;

inline json configMap(const std::string& name, json labels = json::object(),
                      json data = {{"k", "v"}}) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}, {"labels", labels}}},
            {"data", data}};
}

inline json deployment(const std::string& name, int replicas = 1) {
    return {
        {"apiVersion", "apps/v1"},
        {"kind", "Deployment"},
        {"metadata", {{"name", name}}},
        {"spec",
         {{"replicas", replicas},
          {"selector", {{"matchLabels", {{"app", name}}}}},
          {"template",
           {{"metadata", {{"labels", {{"app", name}}}}},
            {"spec", {{"containers", json::array({{{"name", "app"}, {"image", "nginx:1"}}})}}}}}}}};
}

// Polls until pred() or the timeout; returns the last result of pred().
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
}

class ApiServerTest : public ::testing::Test {
  protected:
    virtual ApiServerOptions options() {
        ApiServerOptions o;
        o.bookmarkInterval = std::chrono::milliseconds(200);
        o.simulateDelay = std::chrono::milliseconds(50);
        return o;
    }
    void SetUp() override {
        server = std::make_unique<ApiServer>(options());
        server->start();
        client = std::make_unique<TestClient>(*server);
    }
    void TearDown() override {
        client.reset();
        server->stop();
    }
    std::string rvOf(const json& o) { return o["metadata"]["resourceVersion"].get<std::string>(); }

    std::unique_ptr<ApiServer> server;
    std::unique_ptr<TestClient> client;
};

constexpr const char* kCm = "/api/v1/namespaces/default/configmaps";
constexpr const char* kDeploy = "/apis/apps/v1/namespaces/default/deployments";

}  // namespace sluice::testing
