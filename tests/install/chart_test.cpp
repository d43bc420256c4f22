// charts/sluice with the real helm (helmPath(): the pinned copy scripts/install-deps.sh
// installs): `helm lint` passes, `helm template` with the default values gives the objects of
// manifests/install.yaml, its values change what they should (controller.replicas > 1 shards
// through Leases, as the manifests/sharded Component does), the output with every option turned
// on applies with the real kubectl to the test API server, NOTES.txt renders, and the Grafana
// dashboard queries the controller's metrics.
#include <regex>
#include <set>

#include "install_support.h"
#include "testutil/tools.h"

namespace sluice::testing::install {
namespace {

struct Release {
    std::string name = "sluice";
    std::string ns = "sluice";
};

// The real helm with a scratch HOME, Helm and XDG directories and kubeconfig: the tests never
// read or write the user's Helm configuration, cache, plugins or cluster.
class Helm {
  public:
    RunResult run(std::vector<std::string> args, const std::string& kubeconfig = "") const {
        std::vector<std::string> argv = {helmPath()};
        argv.insert(argv.end(), args.begin(), args.end());
        return runProcess(argv,
                          {{"HOME", dir_.str()},
                           {"HELM_CACHE_HOME", dir_.file("cache")},
                           {"HELM_CONFIG_HOME", dir_.file("config")},
                           {"HELM_DATA_HOME", dir_.file("data")},
                           {"XDG_CACHE_HOME", dir_.file("cache")},
                           {"XDG_CONFIG_HOME", dir_.file("config")},
                           {"XDG_DATA_HOME", dir_.file("data")},
                           {"KUBECONFIG", kubeconfig.empty() ? dir_.file("none") : kubeconfig}},
                          std::chrono::seconds(60));
    }

    // A values file for -f: JSON is YAML, and keys with dots need none of --set's escaping.
    std::string valuesFile(const json& values) {
        std::string name = "values-" + std::to_string(++valuesFiles_) + ".json";
        dir_.write(name, values.dump());
        return dir_.file(name);
    }

    // `helm template` of the chart; with crds, the crds/ files come first, as `helm install`
    // creates them.
    std::string templateText(const json& values = json::object(), const Release& release = {},
                             bool crds = false) {
        std::vector<std::string> args = {"template",        release.name, kChartDir.string(),
                                         "--namespace",     release.ns,   "-f",
                                         valuesFile(values)};
        if (crds) args.push_back("--include-crds");
        auto r = run(args);
        EXPECT_EQ(r.exitCode, 0) << r.err;
        return r.out;
    }

    std::vector<json> render(const json& values = json::object(), const Release& release = {},
                             bool crds = false) {
        return yamlDocumentsToJson(templateText(values, release, crds));
    }

    // NOTES.txt as `helm install` prints it. Helm renders the notes only on install, and even
    // `--dry-run=client` asks a cluster (discovery, then a GET of every object): the API test
    // server at `kubeconfig` answers, and nothing is created.
    std::string notes(const std::string& kubeconfig, const json& values, const Release& release) {
        auto r = run({"install", release.name, kChartDir.string(), "--namespace", release.ns, "-f",
                      valuesFile(values), "--dry-run=client", "-o", "json"},
                     kubeconfig);
        EXPECT_EQ(r.exitCode, 0) << r.err;
        if (r.exitCode != 0) return "";
        return json::parse(r.out)["info"].value("notes", "");
    }

  private:
    TempDir dir_;
    int valuesFiles_ = 0;
};

// Fails rather than skips without helm: these are the chart's only checks, and
// scripts/install-deps.sh installs helm wherever the tests run.
void expectHelm() {
    ASSERT_TRUE(isExecutable(helmPath()))
        << "no helm at " << helmPath() << " (scripts/install-deps.sh installs it)";
}

class Chart : public ::testing::Test {
  protected:
    void SetUp() override { expectHelm(); }
    void TearDown() override {
        if (server) server->stop();
    }

    // A kubeconfig for an API test server started on first use (for `helm install --dry-run`).
    std::string clusterKubeconfig() {
        if (!server) {
            ApiServerOptions opts;
            opts.simulateWorkloads = false;
            server = std::make_unique<ApiServer>(opts);
            server->start();
        }
        return server->writeKubeconfig(dir.file("kubeconfig"));
    }

    Helm helm;
    TempDir dir;
    std::unique_ptr<ApiServer> server;
};

// Labels only Helm sets; manifests/install.yaml has every other label the chart sets.
json withoutHelmLabels(json obj) {
    for (auto* labels :
         {&obj["metadata"]["labels"], obj.contains("spec") && obj["spec"].contains("template")
                                          ? &obj["spec"]["template"]["metadata"]["labels"]
                                          : nullptr}) {
        if (!labels || !labels->is_object()) continue;
        labels->erase("helm.sh/chart");
        labels->erase("app.kubernetes.io/managed-by");
    }
    if (obj["metadata"]["labels"].is_null()) obj["metadata"].erase("labels");
    return obj;
}

const json& container(const json& deployment) {
    return deployment["spec"]["template"]["spec"]["containers"][0];
}

bool hasArg(const json& deployment, const std::string& arg) {
    for (const auto& a : container(deployment)["args"])
        if (a == arg) return true;
    return false;
}

// Whether an argument starts with `prefix`.
bool hasArgPrefix(const json& deployment, const std::string& prefix) {
    for (const auto& a : container(deployment)["args"])
        if (a.get<std::string>().rfind(prefix, 0) == 0) return true;
    return false;
}

// Several replicas sharing the work through Leases: every one active (no leader election, which
// --sharding leases cannot be combined with), and one pod replaced at a time.
void expectSharded(const json& d, int replicas, int slots,
                   const std::string& leaseName = "sluice-controller") {
    EXPECT_EQ(d["spec"]["replicas"], replicas);
    EXPECT_TRUE(hasArg(d, "--sharding=leases")) << container(d)["args"].dump();
    EXPECT_TRUE(hasArg(d, "--shard-slots=" + std::to_string(slots))) << container(d)["args"].dump();
    EXPECT_TRUE(hasArg(d, "--leader-election-id=" + leaseName)) << container(d)["args"].dump();
    EXPECT_FALSE(hasArgPrefix(d, "--leader-elect=")) << container(d)["args"].dump();
    EXPECT_FALSE(hasArgPrefix(d, "--shards")) << container(d)["args"].dump();
    EXPECT_EQ(d["spec"]["strategy"],
              json({{"type", "RollingUpdate"},
                    {"rollingUpdate", {{"maxUnavailable", 1}, {"maxSurge", 1}}}}));
}

// One controller, as install.yaml runs it: no sharding flag.
void expectNotSharded(const json& d) {
    EXPECT_FALSE(hasArgPrefix(d, "--sharding")) << container(d)["args"].dump();
    EXPECT_FALSE(hasArgPrefix(d, "--shard")) << container(d)["args"].dump();
}

// Every option of values.yaml turned on or changed (the kubectl dry run and lint use it).
json everyOption() {
    return {
        {"controller", {{"replicas", 2}, {"shardSlots", 16}}},
        {"leaderElection", {{"leaseName", "sluice-shards"}}},
        {"watchNamespace", "apps"},
        {"webhookSecret", {{"create", true}, {"values", {{"webhook.gitlab.secret", "t"}}}}},
        {"prometheusAddress", "http://prometheus:9090"},
        {"meshProvider", "gatewayapi:v1"},
        {"extraEnv", json::array({{{"name", "A"}, {"value", "b"}}})},
        {"rbac", {{"readOnly", true}}},
        {"serviceMonitor", {{"enabled", true}}},
        {"grafanaDashboard", {{"enabled", true}}},
        {"podAnnotations", {{"example.com/a", "b"}}},
        {"imagePullSecrets", json::array({{{"name", "registry"}}})},
        {"repoCache", {{"sizeLimit", "1Gi"}}},
        {"nodeSelector", {{"kubernetes.io/os", "linux"}}},
        {"tolerations", json::array({{{"key", "k"}, {"operator", "Exists"}}})},
    };
}

TEST_F(Chart, LintPassesForDefaultsAndEveryOption) {
    auto defaults = helm.run({"lint", "--strict", kChartDir.string()});
    EXPECT_EQ(defaults.exitCode, 0) << defaults.out << defaults.err;
    auto options =
        helm.run({"lint", "--strict", kChartDir.string(), "-f", helm.valuesFile(everyOption())});
    EXPECT_EQ(options.exitCode, 0) << options.out << options.err;
}

TEST_F(Chart, DefaultsRenderTheObjectsOfInstallYaml) {
    auto rendered = byKey(helm.render(json::object(), {}, true));
    std::map<std::string, json> expected;
    for (const auto& obj : installObjects())
        // The Namespace is Helm's (--create-namespace), not the chart's.
        if (obj["kind"] != "Namespace") expected[objectKey(obj)] = obj;

    std::set<std::string> renderedKeys, expectedKeys;
    for (const auto& [k, v] : rendered) renderedKeys.insert(k);
    for (const auto& [k, v] : expected) expectedKeys.insert(k);
    ASSERT_EQ(renderedKeys, expectedKeys);
    for (const auto& [key, obj] : expected) {
        json chart = withoutHelmLabels(rendered[key]);
        EXPECT_EQ(chart, obj) << key << ": chart vs manifests/install.yaml\n"
                              << json::diff(obj, chart).dump(2);
    }
    // The labels that were set aside are Helm's usual ones.
    const json& labels =
        rendered["apps/v1/Deployment/sluice/sluice-controller"]["metadata"]["labels"];
    EXPECT_EQ(labels["app.kubernetes.io/managed-by"], "Helm");
    EXPECT_EQ(labels["helm.sh/chart"], "sluice-0.1.0");
}

TEST_F(Chart, ChartYamlAndImageMatchTheManifest) {
    auto chart = yamlToJson(readFile(kChartDir / "Chart.yaml"));
    EXPECT_EQ(chart["apiVersion"], "v2");
    EXPECT_EQ(chart["name"], "sluice");
    EXPECT_EQ(chart["type"], "application");
    EXPECT_TRUE(
        std::regex_match(chart["version"].get<std::string>(), std::regex(R"(\d+\.\d+\.\d+)")));
    auto manifest = installObjects();
    const json* d = findObject(manifest, "Deployment", "sluice-controller");
    ASSERT_TRUE(d);
    std::string image = container(*d)["image"];
    EXPECT_EQ(image,
              "ghcr.io/sluice-io/sluice-controller:" + chart["appVersion"].get<std::string>());
    // The chart's appVersion is the controller's version (CMake's project version).
    auto version = runProcess({SLUICE_CONTROLLER_BINARY, "--version"});
    EXPECT_NE(version.out.find(chart["appVersion"].get<std::string>()), std::string::npos)
        << version.out;
    for (const char* f : {"values.yaml", "templates/_helpers.tpl", "templates/NOTES.txt",
                          "templates/servicemonitor.yaml", "dashboards/sluice.json"})
        EXPECT_TRUE(fs::exists(kChartDir / f)) << f;
}

// The chart's SLUICE_<FLAG> variables and flags are ones the built controller knows.
void expectKnownFlags(const json& c) {
    auto known = controllerFlags();
    for (const auto& e : c["env"]) {
        std::string name = e["name"];
        if (name.rfind("SLUICE_", 0) != 0) continue;
        std::string flag;
        for (char ch : name.substr(7))
            flag +=
                ch == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        EXPECT_TRUE(known.count(flag)) << name << ": sluice-controller --help has no --" << flag;
    }
    for (const auto& a : c["args"]) {
        std::string s = a;
        EXPECT_TRUE(known.count(s.substr(2, s.find('=') - 2))) << s;
    }
}

void expectDeploymentOptions(const json& d) {
    const json& c = container(d);
    EXPECT_EQ(c["image"], "registry.example/sluice:0.2.0");
    EXPECT_EQ(c["imagePullPolicy"], "Always");
    // More than one replica: every one active, sharing the work through Leases.
    expectSharded(d, 3, 32);
    EXPECT_EQ(c["resources"], json({{"requests", {{"cpu", "250m"}, {"memory", "512Mi"}}},
                                    {"limits", {{"cpu", "1"}, {"memory", "1Gi"}}}}));
    EXPECT_TRUE(hasArg(d, "--log-level=debug"));
    EXPECT_TRUE(hasArg(d, "--log-format=text"));
    EXPECT_TRUE(hasArg(d, "--namespace=apps"));
    EXPECT_TRUE(hasArg(d, "--webhook-secret=git-hooks"));
    json env = c["env"];
    ASSERT_EQ(env.size(), 4u) << env.dump();
    EXPECT_EQ(env[0]["name"], "POD_NAMESPACE");
    EXPECT_EQ(env[1], json({{"name", "SLUICE_METRICS_SERVER"},
                            {"value", "http://prometheus.monitoring:9090"}}));
    EXPECT_EQ(env[2], json({{"name", "SLUICE_MESH_PROVIDER"}, {"value", "istio"}}));
    EXPECT_EQ(env[3], json({{"name", "HTTPS_PROXY"}, {"value", "http://proxy:3128"}}));
    expectKnownFlags(c);
    EXPECT_EQ(d["spec"]["template"]["spec"]["volumes"][0]["emptyDir"]["sizeLimit"], "4Gi");
    EXPECT_EQ(d["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/os"], "linux");
}

// Read-only RBAC: the read-only role is bound and the deployer role is not.
void expectReadOnlyRbac(const std::vector<json>& objects) {
    const json* ro = findObject(objects, "ClusterRoleBinding", "sluice-controller-readonly");
    ASSERT_TRUE(ro);
    EXPECT_EQ((*ro)["roleRef"]["name"], "sluice-controller-readonly");
    EXPECT_FALSE(findObject(objects, "ClusterRoleBinding", "sluice-controller-deployer"));
    for (const auto* b : findKind(objects, "ClusterRoleBinding"))
        EXPECT_NE((*b)["roleRef"]["name"], "sluice-controller-deployer");
}

// The ServiceMonitor scrapes the Service's metrics port.
void expectServiceMonitor(const std::vector<json>& objects) {
    const json* sm = findObject(objects, "ServiceMonitor", "sluice-controller");
    const json* svc = findObject(objects, "Service", "sluice-controller");
    ASSERT_TRUE(sm && svc);
    EXPECT_EQ((*sm)["apiVersion"], "monitoring.coreos.com/v1");
    EXPECT_EQ((*sm)["metadata"]["labels"]["release"], "kube-prometheus");
    for (const auto& [k, v] : (*sm)["spec"]["selector"]["matchLabels"].items())
        EXPECT_EQ((*svc)["metadata"]["labels"][k], v) << k;
    EXPECT_EQ((*sm)["spec"]["namespaceSelector"]["matchNames"], json::array({"sluice"}));
    EXPECT_EQ((*sm)["spec"]["endpoints"][0]["port"], "metrics");
    EXPECT_EQ((*sm)["spec"]["endpoints"][0]["path"], "/metrics");
    EXPECT_EQ((*svc)["spec"]["ports"][0]["name"], "metrics");
}

TEST_F(Chart, ValuesChangeTheRenderedObjects) {
    json overrides = {
        {"image",
         {{"repository", "registry.example/sluice"}, {"tag", "0.2.0"}, {"pullPolicy", "Always"}}},
        {"controller", {{"replicas", 3}}},
        {"resources", {{"requests", {{"cpu", "250m"}, {"memory", "512Mi"}}}}},
        {"logLevel", "debug"},
        {"logFormat", "text"},
        {"watchNamespace", "apps"},
        {"webhookSecret",
         {{"name", "git-hooks"}, {"create", true}, {"values", {{"webhook.github.secret", "s3"}}}}},
        {"prometheusAddress", "http://prometheus.monitoring:9090"},
        {"meshProvider", "istio"},
        {"extraEnv", json::array({{{"name", "HTTPS_PROXY"}, {"value", "http://proxy:3128"}}})},
        {"rbac", {{"readOnly", true}}},
        {"serviceMonitor", {{"enabled", true}, {"labels", {{"release", "kube-prometheus"}}}}},
        {"grafanaDashboard", {{"enabled", true}}},
        {"repoCache", {{"sizeLimit", "4Gi"}}},
        {"nodeSelector", {{"kubernetes.io/os", "linux"}}},
    };
    auto objects = helm.render(overrides);

    const json* d = findObject(objects, "Deployment", "sluice-controller");
    ASSERT_TRUE(d);
    expectDeploymentOptions(*d);
    expectReadOnlyRbac(objects);

    // The webhook Secret, in the release namespace.
    const json* secret = findObject(objects, "Secret", "git-hooks");
    ASSERT_TRUE(secret);
    EXPECT_EQ((*secret)["metadata"]["namespace"], "sluice");
    EXPECT_EQ((*secret)["stringData"], json({{"webhook.github.secret", "s3"}}));

    expectServiceMonitor(objects);

    // The dashboard ConfigMap carries dashboards/sluice.json for Grafana's sidecar.
    const json* cm = findObject(objects, "ConfigMap", "sluice-controller-dashboard");
    ASSERT_TRUE(cm);
    EXPECT_EQ((*cm)["metadata"]["labels"]["grafana_dashboard"], "1");
    EXPECT_EQ(json::parse((*cm)["data"]["sluice.json"].get<std::string>()),
              json::parse(readFile(kChartDir / "dashboards" / "sluice.json")));
}

TEST_F(Chart, ManagedNamespacesBindTheRolePerNamespace) {
    auto objects = helm.render({{"managedNamespaces", json::array({"apps", "web"})}});
    const json* d = findObject(objects, "Deployment", "sluice-controller");
    ASSERT_TRUE(d);
    EXPECT_TRUE(hasArg(*d, "--managed-namespaces=apps,web"));
    for (const auto& a : container(*d)["args"])
        EXPECT_EQ(a.get<std::string>().rfind("--cluster-resources", 0), std::string::npos);
    EXPECT_FALSE(findObject(objects, "ClusterRoleBinding", "sluice-controller-deployer"));
    std::vector<std::string> bound;
    for (const auto& o : objects) {
        if (o.value("kind", "") != "RoleBinding") continue;
        if (o["metadata"]["name"] != "sluice-controller-deployer") continue;
        EXPECT_EQ(o["roleRef"]["kind"], "ClusterRole");
        EXPECT_EQ(o["roleRef"]["name"], "sluice-controller-deployer");
        EXPECT_EQ(o["subjects"][0]["namespace"], "sluice");
        bound.push_back(o["metadata"]["namespace"]);
    }
    EXPECT_EQ(bound, (std::vector<std::string>{"apps", "web"}));
    // The controller's own grants stay cluster-wide.
    EXPECT_TRUE(findObject(objects, "ClusterRoleBinding", "sluice-controller"));

    objects = helm.render({{"managedNamespaces", json::array({"apps"})},
                           {"clusterResources", true},
                           {"rbac", {{"readOnly", true}}}});
    d = findObject(objects, "Deployment", "sluice-controller");
    ASSERT_TRUE(d);
    EXPECT_TRUE(hasArg(*d, "--cluster-resources=true"));
    const json* readonly = findObject(objects, "RoleBinding", "sluice-controller-readonly");
    ASSERT_TRUE(readonly);
    EXPECT_EQ((*readonly)["metadata"]["namespace"], "apps");
}

TEST_F(Chart, LeaderElectionWithOneReplicaRolls) {
    auto objects = helm.render({{"leaderElection", {{"enabled", true}}}});
    const json* d = findObject(objects, "Deployment", "sluice-controller");
    ASSERT_TRUE(d);
    EXPECT_TRUE(hasArg(*d, "--leader-elect=true"));
    EXPECT_TRUE(hasArg(*d, "--leader-election-id=sluice-controller"));
    EXPECT_EQ((*d)["spec"]["replicas"], 1);
    EXPECT_FALSE((*d)["spec"].contains("strategy"));
    expectNotSharded(*d);
    expectKnownFlags(container(*d));
}

// The Deployment of `helm template --set <set>...`.
json deploymentWithSet(const Helm& helm, const std::vector<std::string>& sets) {
    std::vector<std::string> args = {"template", "sluice", kChartDir.string(), "--namespace",
                                     "sluice"};
    for (const auto& s : sets) {
        args.push_back("--set");
        args.push_back(s);
    }
    auto r = helm.run(args);
    EXPECT_EQ(r.exitCode, 0) << r.err;
    auto objects = yamlDocumentsToJson(r.out);
    const json* d = findObject(objects, "Deployment", "sluice-controller");
    return d ? *d : json::object();
}

TEST_F(Chart, ControllerReplicasShardThroughLeases) {
    json d = deploymentWithSet(helm, {"controller.replicas=3"});
    ASSERT_FALSE(d.empty());
    expectSharded(d, 3, 32);
    expectKnownFlags(container(d));

    // One replica is install.yaml's Deployment: no sharding, no leader election, Recreate.
    d = deploymentWithSet(helm, {"controller.replicas=1"});
    ASSERT_FALSE(d.empty());
    EXPECT_EQ(d["spec"]["replicas"], 1);
    EXPECT_TRUE(hasArg(d, "--leader-elect=false"));
    EXPECT_FALSE(hasArgPrefix(d, "--leader-election-id"));
    EXPECT_EQ(d["spec"]["strategy"]["type"], "Recreate");
    expectNotSharded(d);

    // The slots and the Leases' name prefix.
    d = deploymentWithSet(helm, {"controller.replicas=5", "controller.shardSlots=64",
                                 "leaderElection.leaseName=gitops"});
    ASSERT_FALSE(d.empty());
    expectSharded(d, 5, 64, "gitops");

    // Sharding wins over leaderElection.enabled: the two flags cannot be combined.
    d = deploymentWithSet(helm, {"controller.replicas=2", "leaderElection.enabled=true"});
    ASSERT_FALSE(d.empty());
    expectSharded(d, 2, 32);
}

TEST_F(Chart, DeprecatedReplicasIsAnAliasOfControllerReplicas) {
    json d = deploymentWithSet(helm, {"replicas=3"});
    ASSERT_FALSE(d.empty());
    expectSharded(d, 3, 32);
    d = deploymentWithSet(helm, {"replicas=1"});
    ASSERT_FALSE(d.empty());
    EXPECT_EQ(d["spec"]["replicas"], 1);
    expectNotSharded(d);
    // controller.replicas, once changed from 1, wins.
    d = deploymentWithSet(helm, {"replicas=3", "controller.replicas=2"});
    ASSERT_FALSE(d.empty());
    expectSharded(d, 2, 32);
}

TEST_F(Chart, ShardingNoneKeepsStandbysWithLeaderElection) {
    json d = deploymentWithSet(helm, {"controller.replicas=3", "controller.sharding=none"});
    ASSERT_FALSE(d.empty());
    EXPECT_EQ(d["spec"]["replicas"], 3);
    EXPECT_TRUE(hasArg(d, "--leader-elect=true"));
    EXPECT_TRUE(hasArg(d, "--leader-election-id=sluice-controller"));
    EXPECT_FALSE(d["spec"].contains("strategy"));
    expectNotSharded(d);
    expectKnownFlags(container(d));
}

TEST_F(Chart, RoleGrantsTheLeasesOfSharding) {
    // Membership and slot Leases are created, listed, watched, updated and deleted by the
    // replicas in the release namespace; the grant does not depend on the replica count.
    for (int replicas : {1, 3}) {
        auto objects =
            helm.render({{"controller", {{"replicas", replicas}}}}, Release{"sluice", "gitops"});
        const json* role = findObject(objects, "Role", "sluice-controller");
        ASSERT_TRUE(role);
        EXPECT_EQ((*role)["metadata"]["namespace"], "gitops");
        std::set<std::string> verbs;
        for (const auto& rule : (*role)["rules"]) {
            if (rule["resources"] != json::array({"leases"})) continue;
            EXPECT_EQ(rule["apiGroups"], json::array({"coordination.k8s.io"}));
            for (const auto& v : rule["verbs"]) verbs.insert(v.get<std::string>());
        }
        EXPECT_EQ(verbs, (std::set<std::string>{"get", "list", "watch", "create", "update", "patch",
                                                "delete"}))
            << replicas;
    }
}

TEST_F(Chart, ReleaseNameAndNamespaceNameEveryObject) {
    auto objects = helm.render(json::object(), Release{"gitops", "platform"});
    ASSERT_FALSE(objects.empty());
    for (const auto& obj : objects) {
        std::string name = obj["metadata"]["name"];
        EXPECT_EQ(name.rfind("gitops-controller", 0), 0u) << objectKey(obj);
        if (obj["metadata"].contains("namespace")) {
            EXPECT_EQ(obj["metadata"]["namespace"], "platform") << objectKey(obj);
        }
        if (obj.contains("subjects")) {
            EXPECT_EQ(obj["subjects"][0]["namespace"], "platform") << objectKey(obj);
        }
        EXPECT_EQ(obj["metadata"]["labels"]["app.kubernetes.io/instance"], "gitops");
    }
    const json* d = findObject(objects, "Deployment", "gitops-controller");
    ASSERT_TRUE(d);
    EXPECT_EQ((*d)["spec"]["template"]["spec"]["serviceAccountName"], "gitops-controller");
}

TEST_F(Chart, NotesRenderForDefaultsAndOptions) {
    std::string kubeconfig = clusterKubeconfig();
    std::string notes = helm.notes(kubeconfig, json::object(), {});
    EXPECT_NE(notes.find("deployment/sluice-controller"), std::string::npos) << notes;
    EXPECT_NE(notes.find("every namespace"), std::string::npos) << notes;
    EXPECT_NE(notes.find("create secret generic sluice-webhook"), std::string::npos) << notes;
    EXPECT_EQ(notes.find("{{"), std::string::npos) << notes;
    // Paragraphs stay apart: the watch scope is not glued to the kubectl commands above it.
    EXPECT_NE(notes.find("sluice-controller\n\nIt watches"), std::string::npos) << notes;

    std::string custom = helm.notes(kubeconfig,
                                    {{"watchNamespace", "apps"},
                                     {"rbac", {{"readOnly", true}}},
                                     {"webhookSecret", {{"create", true}}},
                                     {"serviceMonitor", {{"enabled", true}}}},
                                    Release{"sluice", "gitops"});
    EXPECT_NE(custom.find("namespace apps only"), std::string::npos) << custom;
    EXPECT_NE(custom.find("read-only"), std::string::npos) << custom;
    EXPECT_NE(custom.find("stored in Secret sluice-webhook"), std::string::npos) << custom;
    EXPECT_NE(custom.find("ServiceMonitor"), std::string::npos) << custom;
    EXPECT_NE(custom.find("kubectl -n gitops"), std::string::npos) << custom;
}

class ChartKubectl : public KubectlTest {
  protected:
    void SetUp() override {
        KubectlTest::SetUp();
        if (!IsSkipped()) expectHelm();
    }
    Helm helm;
};

TEST_F(ChartKubectl, ShardedComponentRendersTheChartsShardedDeployment) {
    // manifests/sharded and controller.replicas=3: the same Deployment (less Helm's labels).
    auto r = kubectl({"kustomize", writeShardedOverlay(dir)});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    auto overlay = yamlDocumentsToJson(r.out);
    const json* fromOverlay = findObject(overlay, "Deployment", "sluice-controller");
    auto chart = helm.render({{"controller", {{"replicas", 3}}}});
    const json* fromChart = findObject(chart, "Deployment", "sluice-controller");
    ASSERT_TRUE(fromOverlay && fromChart);
    json expected = withoutHelmLabels(*fromChart);
    EXPECT_EQ(*fromOverlay, expected) << json::diff(expected, *fromOverlay).dump(2);
}

TEST_F(ChartKubectl, EveryOptionAppliesWithServerSideDryRun) {
    // helm's own output, as `helm template | kubectl apply` would send it.
    std::string stream = helm.templateText(everyOption(), Release{"sluice", "gitops"}, true);
    size_t objects = yamlDocumentsToJson(stream).size();
    ASSERT_GT(objects, 0u);
    createNamespace("gitops");
    auto r = kubectl({"apply", "--server-side", "--dry-run=server", "-f", "-"}, stream);
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    size_t lines = 0;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);)
        if (line.find("(server dry run)") != std::string::npos) ++lines;
    EXPECT_EQ(lines, objects) << r.out;
    EXPECT_NE(r.out.find("servicemonitor.monitoring.coreos.com/sluice-controller"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("configmap/sluice-controller-dashboard"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("secret/sluice-webhook"), std::string::npos) << r.out;
}

// ---- Grafana dashboard ----------------------------------------------------------------------

// The controller's metric families (issue 5): the dashboard may query these only.
const std::set<std::string> kMetrics = {
    "sluice_application_info",
    "sluice_application_sync_total",
    "sluice_reconcile_total",
    "sluice_reconcile_duration_seconds",
    "sluice_git_fetch_total",
    "sluice_git_fetch_duration_seconds",
    "sluice_kube_requests_total",
    "sluice_kube_request_duration_seconds",
    "sluice_workqueue_depth",
    "sluice_webhook_requests_total",
    "sluice_leader",
    "sluice_build_info",
    "sluice_canary_weight",
    "sluice_canary_status",
    "sluice_canary_phase",
    "sluice_canary_failed_checks",
};
const std::set<std::string> kHistograms = {"sluice_reconcile_duration_seconds",
                                           "sluice_git_fetch_duration_seconds",
                                           "sluice_kube_request_duration_seconds"};

void collectPanels(const json& panels, std::vector<json>& out) {
    for (const auto& p : panels) {
        out.push_back(p);
        if (p.contains("panels")) collectPanels(p["panels"], out);
    }
}

TEST(Dashboard, QueriesTheControllersMetrics) {
    json dash = json::parse(readFile(kChartDir / "dashboards" / "sluice.json"));
    EXPECT_EQ(dash["uid"], "sluice");
    std::vector<json> panels;
    collectPanels(dash["panels"], panels);
    std::set<std::string> used, titles;
    std::set<int> ids;
    std::regex metric(R"(\bsluice_[a-z_]+)");
    for (const auto& p : panels) {
        titles.insert(p.value("title", ""));
        EXPECT_TRUE(ids.insert(p["id"].get<int>()).second) << "duplicate panel id " << p["id"];
        if (p["type"] == "row") continue;
        ASSERT_TRUE(p.contains("targets")) << p["title"];
        for (const auto& t : p["targets"]) {
            std::string expr = t["expr"];
            // Balanced brackets: a typo here would only show as a broken panel in Grafana.
            int round = 0, curly = 0, square = 0;
            for (char ch : expr) {
                round += ch == '(' ? 1 : ch == ')' ? -1 : 0;
                curly += ch == '{' ? 1 : ch == '}' ? -1 : 0;
                square += ch == '[' ? 1 : ch == ']' ? -1 : 0;
                EXPECT_TRUE(round >= 0 && curly >= 0 && square >= 0) << expr;
            }
            EXPECT_EQ(round, 0) << expr;
            EXPECT_EQ(curly, 0) << expr;
            EXPECT_EQ(square, 0) << expr;
            for (std::sregex_iterator it(expr.begin(), expr.end(), metric), end; it != end; ++it) {
                std::string name = it->str();
                std::string family = name;
                for (const char* suffix : {"_bucket", "_sum", "_count"}) {
                    std::string s = suffix;
                    if (name.size() > s.size() &&
                        name.compare(name.size() - s.size(), s.size(), s) == 0 &&
                        kHistograms.count(name.substr(0, name.size() - s.size())))
                        family = name.substr(0, name.size() - s.size());
                }
                EXPECT_TRUE(kMetrics.count(family)) << name << " in " << expr;
                // Histograms are queried through their buckets, counters through rate().
                if (kHistograms.count(family)) {
                    EXPECT_NE(name, family) << expr;
                }
                if (family.size() > 6 && family.compare(family.size() - 6, 6, "_total") == 0) {
                    EXPECT_NE(expr.find("rate("), std::string::npos) << expr;
                }
                used.insert(family);
            }
        }
    }
    // Application sync status and health, controller work, and canary progress.
    for (const char* m :
         {"sluice_application_info", "sluice_application_sync_total", "sluice_reconcile_total",
          "sluice_reconcile_duration_seconds", "sluice_git_fetch_total",
          "sluice_git_fetch_duration_seconds", "sluice_kube_requests_total",
          "sluice_workqueue_depth", "sluice_webhook_requests_total", "sluice_leader",
          "sluice_canary_weight", "sluice_canary_status", "sluice_canary_phase",
          "sluice_canary_failed_checks"})
        EXPECT_TRUE(used.count(m)) << m << " is on no panel";
    for (const char* t : {"Applications", "Canaries", "Canary weight", "Canary status"})
        EXPECT_TRUE(titles.count(t)) << t;

    // Canary status values read as Flagger's: 0 running, 1 successful, 2 failed.
    bool mapped = false;
    for (const auto& p : panels) {
        if (p.value("title", "") != "Canary status") continue;
        const json& opts = p["fieldConfig"]["defaults"]["mappings"][0]["options"];
        EXPECT_EQ(opts["0"]["text"], "running");
        EXPECT_EQ(opts["1"]["text"], "successful");
        EXPECT_EQ(opts["2"]["text"], "failed");
        mapped = true;
    }
    EXPECT_TRUE(mapped);
    // The data source is a variable, so the dashboard imports into any Grafana.
    EXPECT_EQ(dash["templating"]["list"][0]["type"], "datasource");
}

}  // namespace
}  // namespace sluice::testing::install
