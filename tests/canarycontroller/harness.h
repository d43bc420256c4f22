#pragma once
// Test bed for the Canary controller: the in-process API server with the Canary, MetricTemplate
// and Gateway API HTTPRoute CRDs installed, a RestClient, a shared informer factory, a
// ScriptedMetricProvider behind the controller's provider factory, and a real local HTTP
// server for webhooks (called through the controller's HttpWebhookCaller).
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http/http_server.h"
#include "sluice/canarycontroller/controller.h"
#include "sluice/metricprovider/provider.h"
#include "sluice/util/yaml_json.h"
#include "testutil/cluster_test.h"
#include "testutil/objects.h"
#include "testutil/testutil.h"

namespace sluice::canarytest {

using nlohmann::json;
using namespace std::chrono_literals;
using testing::readFile;
using testing::sharedPath;

inline const kube::GroupVersionKind kCanaryGvk{"sluice.io", "v1alpha1", "Canary"};
inline const kube::GroupVersionKind kDeploymentGvk{"apps", "v1", "Deployment"};
inline const std::string kNs = "test";

// A rollout passes through several analysis steps: twice the shared default (generous too for
// sanitizer builds on a loaded machine).
inline bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 60s) {
    return testing::eventually(cond, timeout);
}

// The local webhook receiver: records every call, answers each path with the status the test
// set (200 by default).
class WebhookReceiver {
  public:
    struct Call {
        std::string path;
        json body;
    };
    WebhookReceiver() {
        server_.start([this](const testing::HttpRequest& req, testing::ResponseWriter& w) {
            int status = 200;
            {
                std::lock_guard lock(mu_);
                Call call{req.path, json::parse(req.body, nullptr, false)};
                calls_.push_back(std::move(call));
                auto it = statuses_.find(req.path);
                if (it != statuses_.end()) status = it->second;
            }
            w.respond(status, {{"Content-Type", "text/plain"}}, "answer " + std::to_string(status));
        });
    }
    ~WebhookReceiver() { server_.stop(); }
    std::string url(const std::string& path) const { return server_.url() + path; }
    void setStatus(const std::string& path, int status) {
        std::lock_guard lock(mu_);
        statuses_[path] = status;
    }
    std::vector<Call> calls(const std::string& path) const {
        std::lock_guard lock(mu_);
        std::vector<Call> out;
        for (const auto& c : calls_)
            if (c.path == path) out.push_back(c);
        return out;
    }

  private:
    mutable std::mutex mu_;
    std::vector<Call> calls_;
    std::map<std::string, int> statuses_;
    testing::HttpServer server_{testing::HttpServerOptions{}};
};

class CanaryControllerTest : public testing::ClusterTest {
  protected:
    // Discovery serves the kind (its CRD is established).
    void waitUntilServed(const kube::GroupVersionKind& gvk) {
        ASSERT_TRUE(eventually([&] {
            try {
                client_->resourceFor(gvk);
                return true;
            } catch (const std::exception&) {
                return false;
            }
        })) << gvk.str();
    }

    void SetUp() override {
        // The routers' Gateway API and Istio CRDs come from the shared folder beside the
        // repository.
        SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml");
        SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/istio-1.29.6/networking-crds.yaml");
        ClusterTest::SetUp();
        for (const std::string& file :
             {testing::sourcePath("crds/sluice.io_canaries.yaml"),
              testing::sourcePath("crds/sluice.io_metrictemplates.yaml"),
              testing::sourcePath("crds/sluice.io_alertproviders.yaml"),
              sharedPath("thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml"),
              sharedPath("thirdparty-crds/istio-1.29.6/networking-crds.yaml")})
            server_->createFromFile(file);
        createNamespace(kNs);
        // The CRDs are served once discovery shows them.
        for (const kube::GroupVersionKind& gvk :
             {kCanaryGvk, kube::GroupVersionKind{"sluice.io", "v1alpha1", "MetricTemplate"},
              kube::GroupVersionKind{"sluice.io", "v1alpha1", "AlertProvider"},
              kube::GroupVersionKind{"gateway.networking.k8s.io", "v1", "HTTPRoute"},
              kube::GroupVersionKind{"networking.istio.io", "v1", "VirtualService"}}) {
            ASSERT_NO_FATAL_FAILURE(waitUntilServed(gvk));
        }
        metrics_ = std::make_shared<metricprovider::ScriptedMetricProvider>();
    }

    void TearDown() override {
        controller_.reset();
        ClusterTest::TearDown();
    }

    canarycontroller::Options defaultOptions() {
        canarycontroller::Options o;
        o.concurrency = 2;
        o.metricsServer = "http://prometheus.test:9090";
        auto provider = metrics_;
        auto addresses = addresses_;
        o.metricProviders = [provider, addresses](const metricprovider::ClientOptions& co)
            -> std::shared_ptr<metricprovider::MetricProvider> {
            addresses->add(co);
            return provider;
        };
        return o;
    }

    canarycontroller::CanaryController& startController(canarycontroller::Options o) {
        controller_ = std::make_unique<canarycontroller::CanaryController>(*client_, *factory_, o);
        controller_->setObserver([this](const canarycontroller::ReconcileRecord& r) {
            std::lock_guard lock(recordsMu_);
            records_.push_back(r);
        });
        controller_->start();
        EXPECT_TRUE(controller_->waitForSync(30s));
        return *controller_;
    }
    canarycontroller::CanaryController& startController() {
        return startController(defaultOptions());
    }

    std::vector<canarycontroller::ReconcileRecord> records() {
        std::lock_guard lock(recordsMu_);
        return records_;
    }
    // Every action any reconcile carried out, in order.
    std::vector<std::string> actions() {
        std::vector<std::string> out;
        for (const auto& r : records())
            if (r.succeeded) out.insert(out.end(), r.actions.begin(), r.actions.end());
        return out;
    }
    bool sawAction(const std::string& action) {
        for (const auto& a : actions())
            if (a == action) return true;
        return false;
    }

    static json deployment(const std::string& name, const std::string& image, int replicas = 2,
                           const std::string& ns = kNs) {
        return testing::deploymentObject(name, image, replicas, ns);
    }

    // A Gateway API canary: stepWeight 25 up to 50, success rate >= 99 and p99 <= 500 ms.
    static json gatewayCanary(const std::string& name, const std::string& target,
                              json webhooks = json::array()) {
        json spec = {
            {"provider", "gatewayapi:v1"},
            {"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", target}}},
            {"progressDeadlineSeconds", 60},
            {"service",
             {{"port", 80},
              {"targetPort", 9898},
              {"gatewayRefs", json::array({{{"name", "public"}, {"namespace", kNs}}})}}},
            {"analysis",
             {{"interval", "1s"},
              {"threshold", 2},
              {"maxWeight", 50},
              {"stepWeight", 25},
              {"metrics",
               json::array({{{"name", "request-success-rate"},
                             {"thresholdRange", {{"min", 99}}},
                             {"interval", "1m"}},
                            {{"name", "request-duration"}, {"thresholdRange", {{"max", 500}}}}})},
              {"webhooks", webhooks}}}};
        return {{"apiVersion", "sluice.io/v1alpha1"},
                {"kind", "Canary"},
                {"metadata", {{"name", name}, {"namespace", kNs}}},
                {"spec", spec}};
    }

    // Healthy values for both built-in metrics (success rate 100 %, p99 50 ms).
    void healthyMetrics() {
        metrics_->whenQueryContains("_bucket", canaryengine::MetricResult::measured(50));
        metrics_->whenQueryContains("!~", canaryengine::MetricResult::measured(100));
    }

    json canaryObject(const std::string& name) {
        auto c = server_->get("sluice.io/v1alpha1", "Canary", kNs, name);
        return c ? *c : json();
    }
    json status(const std::string& name) {
        return canaryObject(name).value("status", json::object());
    }
    std::string phase(const std::string& name) { return status(name).value("phase", ""); }
    std::optional<json> object(const std::string& apiVersion, const std::string& kind,
                               const std::string& name) {
        return server_->get(apiVersion, kind, kNs, name);
    }
    std::optional<json> deploymentObject(const std::string& name) {
        return object("apps/v1", "Deployment", name);
    }
    std::string imageOf(const std::string& name) {
        auto d = deploymentObject(name);
        if (!d) return "";
        return (*d)["spec"]["template"]["spec"]["containers"][0].value("image", "");
    }
    int replicasOf(const std::string& name) {
        auto d = deploymentObject(name);
        if (!d) return -1;
        return (*d)["spec"].value("replicas", 1);
    }
    // The HTTPRoute's (primary, canary) backend weights; (-1, -1) when it does not exist.
    std::pair<int, int> routeWeights(const std::string& name) {
        auto r = object("gateway.networking.k8s.io/v1", "HTTPRoute", name);
        if (!r) return {-1, -1};
        int p = -1, c = -1;
        for (const json& rule : (*r)["spec"].value("rules", json::array()))
            for (const json& ref : rule.value("backendRefs", json::array())) {
                if (ref.value("name", "") == name + "-primary") p = ref.value("weight", 1);
                if (ref.value("name", "") == name + "-canary") c = ref.value("weight", 1);
            }
        return {p, c};
    }
    std::vector<json> events(const std::string& reason) {
        std::vector<json> out;
        for (auto& e : server_->list("v1", "Event", kNs))
            if (e.value("reason", "") == reason) out.push_back(e);
        return out;
    }
    bool hasEventContaining(const std::string& reason, const std::string& text) {
        for (const json& e : events(reason))
            if (e.value("message", "").find(text) != std::string::npos) return true;
        return false;
    }
    void setImage(const std::string& name, const std::string& image) {
        json patch = json::array({{{"op", "replace"},
                                   {"path", "/spec/template/spec/containers/0/image"},
                                   {"value", image}}});
        client_->patch(kDeploymentGvk, kNs, name, kube::PatchType::JsonPatch, patch.dump());
    }
    // Creates the target Deployment and the Canary and waits for phase Initialized.
    void initialise(const json& canary, const std::string& target) {
        server_->create(deployment(target, "example/app:1.0"));
        server_->create(canary);
        const std::string name = canary["metadata"]["name"];
        ASSERT_TRUE(eventually([&] { return phase(name) == "Initialized"; }))
            << status(name).dump(2);
    }

    // The options of every metric provider the controller asked for.
    struct Addresses {
        std::mutex mu;
        std::vector<std::string> seen;
        std::vector<metricprovider::ClientOptions> options;
        void add(const metricprovider::ClientOptions& o) {
            std::lock_guard lock(mu);
            seen.push_back(o.address);
            options.push_back(o);
        }
    };

    std::shared_ptr<metricprovider::ScriptedMetricProvider> metrics_;
    std::shared_ptr<Addresses> addresses_ = std::make_shared<Addresses>();
    WebhookReceiver hooks_;
    std::mutex recordsMu_;
    std::vector<canarycontroller::ReconcileRecord> records_;
    std::unique_ptr<canarycontroller::CanaryController> controller_;
};

}  // namespace sluice::canarytest
