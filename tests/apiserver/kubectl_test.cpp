// The real kubectl against the test server: apply --server-side (with its default
// validation), get (json, tables with CRD printer columns), delete, server dry run.
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "fixture.h"
#include "testutil/tools.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;

struct KubectlRun {
    int code;
    std::string out;
};

class KubectlTest : public ApiServerTest {
  protected:
    void SetUp() override {
        if (!isExecutable(kubectlPath())) GTEST_SKIP() << "no kubectl at " << kubectlPath();
        ApiServerTest::SetUp();
        dir = fs::temp_directory_path() /
              ("apiserver-kubectl-" + std::to_string(::getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir / "cache");
        kubeconfig = server->writeKubeconfig((dir / "kubeconfig").string());
    }
    void TearDown() override {
        if (server) ApiServerTest::TearDown();
        if (!dir.empty()) fs::remove_all(dir);
    }
    KubectlRun kubectl(const std::string& args, const std::string& env = "") {
        // HOME and KUBECONFIG point at the temp dir: no user configuration is read or written.
        std::string cmd = env + " HOME='" + dir.string() + "' KUBECONFIG='" + kubeconfig + "' '" +
                          kubectlPath() + "' --cache-dir='" + (dir / "cache").string() + "' " +
                          args + " 2>&1";
        KubectlRun r{0, ""};
        FILE* p = ::popen(cmd.c_str(), "r");
        std::array<char, 4096> buf;
        size_t n;
        while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
        int st = ::pclose(p);
        r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        return r;
    }
    std::string write(const std::string& name, const std::string& content) {
        auto path = dir / name;
        std::ofstream(path) << content;
        return path.string();
    }
    fs::path dir;
    std::string kubeconfig;
};

const char* kManifests = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: demo
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string}
)";

const char* kWidget = R"(apiVersion: example.com/v1
kind: Widget
metadata:
  name: blue-widget
spec:
  size: 3
  color: blue
)";

TEST_F(KubectlTest, ApplyGetDeleteDryRun) {
    auto apply = kubectl("apply --server-side -f " + write("manifests.yaml", kManifests));
    ASSERT_EQ(apply.code, 0) << apply.out;
    EXPECT_NE(apply.out.find("deployment.apps/web serverside-applied"), std::string::npos)
        << apply.out;
    EXPECT_NE(apply.out.find("configmap/settings serverside-applied"), std::string::npos);
    EXPECT_NE(
        apply.out.find(
            "customresourcedefinition.apiextensions.k8s.io/widgets.example.com serverside-applied"),
        std::string::npos);
    // kubectl sent its default server-side validation and the manager "kubectl".
    auto cm = server->get("v1", "ConfigMap", "default", "settings");
    ASSERT_TRUE(cm);
    EXPECT_EQ((*cm)["metadata"]["managedFields"][0]["manager"], "kubectl");
    EXPECT_EQ((*cm)["metadata"]["managedFields"][0]["operation"], "Apply");

    auto cr = kubectl("apply --server-side -f " + write("widget.yaml", kWidget));
    ASSERT_EQ(cr.code, 0) << cr.out;

    auto json = kubectl("get deployments -o json");
    ASSERT_EQ(json.code, 0) << json.out;
    auto list = nlohmann::json::parse(json.out, nullptr, false);
    ASSERT_FALSE(list.is_discarded()) << json.out;
    ASSERT_EQ(list["items"].size(), 1u);
    EXPECT_EQ(list["items"][0]["metadata"]["name"], "web");
    EXPECT_EQ(list["items"][0]["spec"]["replicas"], 2);

    auto table = kubectl("get widgets");
    ASSERT_EQ(table.code, 0) << table.out;
    EXPECT_NE(table.out.find("SIZE"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("COLOR"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("blue-widget"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("blue"), std::string::npos);
    auto shortName = kubectl("get wg blue-widget -o yaml");
    EXPECT_EQ(shortName.code, 0) << shortName.out;
    EXPECT_NE(shortName.out.find("color: blue"), std::string::npos);

    // Server dry run changes nothing.
    std::string rv = server->currentResourceVersion();
    std::string changed = kWidget;
    changed.replace(changed.find("size: 3"), 7, "size: 9");
    auto dry = kubectl("apply --server-side --dry-run=server -f " + write("dry.yaml", changed));
    ASSERT_EQ(dry.code, 0) << dry.out;
    EXPECT_NE(dry.out.find("(server dry run)"), std::string::npos) << dry.out;
    EXPECT_EQ(server->currentResourceVersion(), rv);
    EXPECT_EQ((*server->get("example.com/v1", "Widget", "default", "blue-widget"))["spec"]["size"],
              3);

    // Invalid custom resource: kubectl reports the server's 422.
    std::string invalid = kWidget;
    invalid.replace(invalid.find("size: 3"), 7, "size: 0");
    auto bad = kubectl("apply --server-side -f " + write("bad.yaml", invalid));
    EXPECT_NE(bad.code, 0);
    EXPECT_NE(bad.out.find("is invalid"), std::string::npos) << bad.out;
    // Unknown field: kubectl's default validation is server-side Strict.
    std::string unknown = std::string(kWidget) + "  bogus: 1\n";
    auto strict = kubectl("apply --server-side -f " + write("unknown.yaml", unknown));
    EXPECT_NE(strict.code, 0);
    EXPECT_NE(strict.out.find("unknown field \"spec.bogus\""), std::string::npos) << strict.out;

    auto patch = kubectl("patch deployment web --type=merge -p '{\"spec\":{\"replicas\":4}}'");
    EXPECT_EQ(patch.code, 0) << patch.out;
    EXPECT_EQ((*server->get("apps/v1", "Deployment", "default", "web"))["spec"]["replicas"], 4);

    // edit-style update: kubectl computes a patch and sends it as manager "kubectl-edit".
    auto edit = kubectl("edit configmap settings", "KUBE_EDITOR='sed -i s/demo/edited/'");
    ASSERT_EQ(edit.code, 0) << edit.out;
    auto edited = server->get("v1", "ConfigMap", "default", "settings");
    EXPECT_EQ((*edited)["data"]["mode"], "edited");
    bool editManager = false;
    for (const auto& e : (*edited)["metadata"]["managedFields"])
        editManager |= e["manager"] == "kubectl-edit";
    EXPECT_TRUE(editManager);

    // get -w prints the table rows of the changes it sees.
    std::string watchOut = (dir / "watch.out").string();
    std::thread watcher(
        [&] { std::ofstream(watchOut) << kubectl("get widgets -w --request-timeout=3s").out; });
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    kubectl("label widget blue-widget seen=yes");
    watcher.join();
    std::ifstream wf(watchOut);
    std::string watched((std::istreambuf_iterator<char>(wf)), std::istreambuf_iterator<char>());
    EXPECT_NE(watched.find("SIZE"), std::string::npos) << watched;
    size_t first = watched.find("blue-widget");
    ASSERT_NE(first, std::string::npos) << watched;
    EXPECT_NE(watched.find("blue-widget", first + 1), std::string::npos)
        << "the MODIFIED row: " << watched;

    auto del = kubectl("delete deployment web");
    ASSERT_EQ(del.code, 0) << del.out;
    EXPECT_NE(del.out.find("deployment.apps \"web\" deleted"), std::string::npos) << del.out;
    EXPECT_FALSE(server->get("apps/v1", "Deployment", "default", "web"));
    auto gone = kubectl("get deployment web");
    EXPECT_NE(gone.code, 0);
    EXPECT_NE(gone.out.find("deployments.apps \"web\" not found"), std::string::npos) << gone.out;
}

}  // namespace
}  // namespace sluice::testing
