// sluice-controller as a process with RBAC as the chart installs it, against the API test server
// authorizing every request (issue: with the deployer role bound per namespace the controller
// still watched at the cluster scope, got "forbidden", stayed unready and said nothing).
#include "controller_process.h"
#include "sluice/util/yaml_json.h"

using namespace std::chrono_literals;
using nlohmann::json;
using sluice::testing::eventually;

namespace {

const sluice::kube::GroupVersionKind kConfigMap{"", "v1", "ConfigMap"};
const char* kControllerToken = "sa-token";
const char* kControllerUser = "system:serviceaccount:sluice:sluice-controller";

sluice::testing::ApiServerOptions authorizingServer() {
    sluice::testing::ApiServerOptions o;
    o.userTokens = {{kControllerToken, kControllerUser}};
    o.authorize = true;
    return o;
}

class RbacProcess : public sluice::processtest::ControllerProcessTest {
  protected:
    RbacProcess() : ControllerProcessTest(authorizingServer()) {}

    void SetUp() override {
        ControllerProcessTest::SetUp();
        // The whole install: the Canary controller runs too, under the same grants.
        server_.createFromFile(sluice::testing::sourcePath("crds/sluice.io_canaries.yaml"));
        server_.createFromFile(sluice::testing::sourcePath("crds/sluice.io_metrictemplates.yaml"));
        server_.createFromFile(sluice::testing::sourcePath("crds/sluice.io_alertproviders.yaml"));
        server_.create(
            {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "other"}}}});
        // The controller connects as its service account; the test keeps the admin token.
        std::ifstream in(kubeconfig_);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const std::string admin = server_.token();
        text.replace(text.find(admin), admin.size(), kControllerToken);
        controllerKubeconfig_ = dir_.file("controller-kubeconfig");
        std::ofstream(controllerKubeconfig_) << text;
    }

    // The chart's RBAC objects, rendered by helm with these extra arguments.
    void installChartRbac(std::vector<std::string> set) {
        std::vector<std::string> argv = {sluice::testing::helmPath(),
                                         "template",
                                         "sluice",
                                         sluice::testing::sourcePath("charts/sluice"),
                                         "-n",
                                         "sluice"};
        for (auto& s : set) {
            argv.push_back("--set");
            argv.push_back(s);
        }
        auto r = sluice::testing::runProcess(argv);
        ASSERT_EQ(r.exitCode, 0) << r.err;
        int created = 0;
        for (const auto& doc : sluice::yamlDocumentsToJson(r.out)) {
            const std::string kind = doc.value("kind", "");
            if (kind != "ClusterRole" && kind != "ClusterRoleBinding" && kind != "Role" &&
                kind != "RoleBinding")
                continue;
            server_.create(doc);
            ++created;
        }
        ASSERT_GE(created, 5);
    }

    void createAppTo(const std::string& name, const std::string& path) {
        createApp(name, {{"source", {{"repoURL", "file://" + repo_}, {"path", path}}}});
    }
    std::string condition(const std::string& app, const std::string& type) {
        for (const auto& c : status(app).value("conditions", json::array()))
            if (c.value("type", "") == type) return c.value("message", "");
        return "";
    }
    bool synced(const std::string& app) {
        json st = status(app);
        return st.value("/sync/status"_json_pointer, json()) == "Synced" &&
               st.value("/operationState/phase"_json_pointer, json()) == "Succeeded";
    }

    std::string controllerKubeconfig_;
};

const char* configMapYaml(const char* name, const char* ns) {
    static thread_local std::string text;
    text = std::string("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ") + name +
           (ns[0] ? std::string("\n  namespace: ") + ns : std::string()) + "\ndata:\n  k: v\n";
    return text.c_str();
}

}  // namespace

TEST_F(RbacProcess, NamespacedInstallationDeploysWithRoleBindingsAndRefusesTheRest) {
    installChartRbac({"managedNamespaces={web}"});
    write("ok/cm.yaml", configMapYaml("ok", ""));
    write("elsewhere/cm.yaml", configMapYaml("stray", "other"));
    write("cluster/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: extra\n");
    commit();
    auto controller = startController({"--managed-namespaces", "web"}, controllerKubeconfig_);
    createAppTo("ok", "ok");
    createAppTo("elsewhere", "elsewhere");
    createAppTo("cluster", "cluster");

    EXPECT_TRUE(eventually([&] { return synced("ok"); }, 60s))
        << status("ok").dump(2) << controller->stderrText().substr(0, 6000);
    EXPECT_TRUE(object("v1", "ConfigMap", "ok"));
    EXPECT_TRUE(eventually(
        [&] {
            return condition("elsewhere", "ComparisonError")
                       .find("namespace \"other\" is not managed") != std::string::npos;
        },
        30s))
        << status("elsewhere").dump(2);
    EXPECT_TRUE(eventually(
        [&] {
            return condition("cluster", "ComparisonError")
                       .find("cluster level Namespace \"extra\" can not be managed") !=
                   std::string::npos;
        },
        30s))
        << status("cluster").dump(2);
    EXPECT_FALSE(server_.get("v1", "ConfigMap", "other", "stray"));
    EXPECT_FALSE(server_.get("v1", "Namespace", "", "extra"));
    EXPECT_EQ(controller->stderrText().find("forbidden"), std::string::npos)
        << "nothing should be listed or watched where the controller may not";
    EXPECT_NE(controller->stderrText().find("canary controller started"), std::string::npos);
}

TEST_F(RbacProcess, ARefusedWatchIsAConditionUntilTheGrantExists) {
    // Deployer bound in web only, but the controller is not told: its cluster-wide watch of
    // ConfigMaps is refused.
    installChartRbac({"managedNamespaces={web}"});
    write("ok/cm.yaml", configMapYaml("ok", ""));
    commit();
    auto controller = startController({}, controllerKubeconfig_);
    createAppTo("ok", "ok");
    EXPECT_TRUE(eventually(
        [&] {
            const std::string m = condition("ok", "ComparisonError");
            return m.find("configmaps is forbidden") != std::string::npos &&
                   m.find("at the cluster scope") != std::string::npos;
        },
        30s))
        << status("ok").dump(2) << controller->stderrText().substr(0, 6000);
    EXPECT_EQ(status("ok").value("/sync/status"_json_pointer, json()), "Unknown");
    EXPECT_FALSE(object("v1", "ConfigMap", "ok"));

    // The cluster-wide grant arrives: the retrying watch fills and the Application syncs,
    // without a restart.
    server_.create({{"apiVersion", "rbac.authorization.k8s.io/v1"},
                    {"kind", "ClusterRoleBinding"},
                    {"metadata", {{"name", "sluice-controller-deployer"}}},
                    {"roleRef",
                     {{"apiGroup", "rbac.authorization.k8s.io"},
                      {"kind", "ClusterRole"},
                      {"name", "sluice-controller-deployer"}}},
                    {"subjects", json::array({{{"kind", "ServiceAccount"},
                                               {"name", "sluice-controller"},
                                               {"namespace", "sluice"}}})}});
    EXPECT_TRUE(eventually([&] { return synced("ok"); }, 60s))
        << status("ok").dump(2) << controller->stderrText().substr(0, 6000);
    EXPECT_TRUE(object("v1", "ConfigMap", "ok"));
    EXPECT_EQ(condition("ok", "ComparisonError"), "");
}
