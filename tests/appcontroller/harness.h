#pragma once
// Test bed for the Application controller: the in-process API server with the Application CRD
// installed, a RestClient, a shared informer factory, and a FakeGitSource.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "sluice/appcontroller/controller.h"
#include "sluice/git/fake_source.h"
#include "sluice/util/yaml_json.h"
#include "testutil/cluster_test.h"
#include "testutil/testutil.h"

namespace sluice::apptest {

using nlohmann::json;
using namespace std::chrono_literals;
using testing::eventually;

inline const kube::GroupVersionKind kAppGvk{"sluice.io", "v1alpha1", "Application"};
inline const kube::GroupVersionKind kDeploymentGvk{"apps", "v1", "Deployment"};
inline const kube::GroupVersionKind kConfigMapGvk{"", "v1", "ConfigMap"};
inline const std::string kRepo = "https://git.example.com/org/apps.git";
inline const std::string kControlNs = "sluice";
inline const std::string kDestNs = "demo";

inline std::string configMapYaml(const std::string& name, const std::string& value,
                                 const std::string& annotations = "") {
    std::string y = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n";
    if (!annotations.empty()) y += "  annotations:\n" + annotations;
    return y + "data:\n  value: \"" + value + "\"\n";
}

inline std::string deploymentYaml(const std::string& name, const std::string& image,
                                  int replicas = 1, const std::string& annotations = "",
                                  const std::string& appLabel = "") {
    const std::string label = appLabel.empty() ? name : appLabel;
    std::string y = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name + "\n";
    if (!annotations.empty()) y += "  annotations:\n" + annotations;
    y += "spec:\n  replicas: " + std::to_string(replicas) +
         "\n  selector:\n    matchLabels:\n      app: " + label +
         "\n  template:\n    metadata:\n      labels:\n        app: " + label +
         "\n    spec:\n      containers:\n      - name: app\n        image: " + image + "\n";
    return y;
}

inline std::string waveAnnotation(int wave) {
    return "    sluice.io/sync-wave: \"" + std::to_string(wave) + "\"\n";
}

class ControllerTest : public testing::ClusterTest {
  protected:
    void SetUp() override {
        ClusterTest::SetUp();
        server_->createFromFile(testing::sourcePath("crds/sluice.io_applications.yaml"));
        for (const auto& ns : {kControlNs, kDestNs}) createNamespace(ns);
    }

    void TearDown() override {
        controller_.reset();
        ClusterTest::TearDown();
    }

    appcontroller::Options defaultOptions() {
        appcontroller::Options o;
        o.controlNamespace = kControlNs;
        o.healthPollInterval = 20ms;
        o.concurrency = 2;
        // The controller's own kubeconfig, impersonating (a project's destinationServiceAccounts).
        o.impersonatingClient = [path = dir_.file("kubeconfig")](
                                    const std::string& user,
                                    const std::vector<std::string>& groups) {
            kube::ClusterConfig cfg = kube::loadKubeconfig(path);
            cfg.qps = 0;
            cfg.impersonateUser = user;
            cfg.impersonateGroups = groups;
            return std::unique_ptr<kube::KubeClient>(std::make_unique<kube::RestClient>(cfg));
        };
        return o;
    }

    appcontroller::ApplicationController& makeController(appcontroller::Options o) {
        controller_ =
            std::make_unique<appcontroller::ApplicationController>(*client_, *factory_, git_, o);
        return *controller_;
    }
    appcontroller::ApplicationController& startController(appcontroller::Options o) {
        makeController(o).start();
        EXPECT_TRUE(controller_->waitForSync(30s));
        return *controller_;
    }

    // An AppProject in the control namespace (its CRD installed by the test), and a merge
    // patch of its spec.
    void createProject(const std::string& name, const json& spec) {
        server_->create({{"apiVersion", "sluice.io/v1alpha1"},
                         {"kind", "AppProject"},
                         {"metadata", {{"name", name}, {"namespace", kControlNs}}},
                         {"spec", spec}});
    }
    void patchProject(const std::string& name, const json& spec) {
        client_->patch(kube::GroupVersionKind{"sluice.io", "v1alpha1", "AppProject"}, kControlNs,
                       name, kube::PatchType::Merge, json{{"spec", spec}}.dump(), {});
    }

    // An Application in the control namespace deploying `path` of kRepo to kDestNs.
    static json application(const std::string& name, const std::string& path,
                            json syncPolicy = json::object()) {
        json spec = {{"project", "default"},
                     {"source", {{"repoURL", kRepo}, {"targetRevision", "HEAD"}, {"path", path}}},
                     {"destination",
                      {{"server", "https://kubernetes.default.svc"}, {"namespace", kDestNs}}}};
        if (!syncPolicy.empty()) spec["syncPolicy"] = syncPolicy;
        return {{"apiVersion", "sluice.io/v1alpha1"},
                {"kind", "Application"},
                {"metadata", {{"name", name}, {"namespace", kControlNs}}},
                {"spec", spec}};
    }
    static json automated(bool prune = true, bool selfHeal = false) {
        return {{"automated", {{"prune", prune}, {"selfHeal", selfHeal}}}};
    }

    json app(const std::string& name) {
        auto a = server_->get("sluice.io/v1alpha1", "Application", kControlNs, name);
        return a ? *a : json();
    }
    json status(const std::string& name) { return app(name).value("status", json::object()); }
    static std::string at(const json& obj, const std::string& pointer) {
        json::json_pointer p(pointer);
        if (!obj.contains(p)) return "";
        const json& v = obj.at(p);
        return v.is_string() ? v.get<std::string>() : v.dump();
    }
    std::string statusAt(const std::string& name, const std::string& pointer) {
        return at(status(name), pointer);
    }
    std::optional<json> object(const std::string& apiVersion, const std::string& kind,
                               const std::string& name, const std::string& ns = kDestNs) {
        return server_->get(apiVersion, kind, ns, name);
    }
    std::vector<json> eventsFor(const std::string& reason, const std::string& ns = kControlNs) {
        std::vector<json> out;
        for (auto& e : server_->list("v1", "Event", ns))
            if (e.value("reason", "") == reason) out.push_back(e);
        return out;
    }
    uint64_t writes() {
        auto c = server_->requestCounts();
        uint64_t n = 0;
        for (const char* verb : {"create", "update", "patch", "apply", "delete"})
            if (c.count(verb)) n += c[verb];
        return n;
    }
    void patchApp(const std::string& name, const json& patch, const std::string& sub = "") {
        kube::PatchOptions po;
        po.subresource = sub;
        client_->patch(kAppGvk, kControlNs, name, kube::PatchType::Merge, patch.dump(), po);
    }

    git::FakeGitSource git_;
    FakeClock fakeClock_;  // for tests that set Options::clock; outlives the controller
    std::unique_ptr<appcontroller::ApplicationController> controller_;
};

}  // namespace sluice::apptest
