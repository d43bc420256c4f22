// manifests/: install.yaml and kustomization.yaml. The CRDs in them are crds/ byte for byte,
// every object applies with the real kubectl (server-side dry run, then for real) to the
// Kubernetes API test server, `kubectl kustomize` renders the same objects, the RBAC is the
// least-privilege set the controllers use, the Deployment runs the controller hardened with
// flags the built binary accepts, and the sharded/ Component turns it into three replicas that
// share the work through Leases.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <regex>
#include <set>
#include <thread>

#include "install_support.h"

namespace sluice::testing::install {
namespace {

std::vector<fs::path> crdFiles() {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(kCrdDir))
        if (e.path().extension() == ".yaml") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return files;
}

TEST(InstallManifest, CrdsAreTheFilesOfCrdsByteForByte) {
    auto docs = documentTexts(readFile(kInstallYaml));
    auto files = crdFiles();
    ASSERT_EQ(files.size(), 5u);
    for (const auto& file : files) {
        std::string crd = readFile(file);
        auto matches = std::count(docs.begin(), docs.end(), crd);
        EXPECT_EQ(matches, 1) << file.filename()
                              << " must appear verbatim, as one document, in manifests/install.yaml"
                                 " (run manifests/sync-crds.sh after changing crds/)";
        // Helm installs the chart's crds/ directory as it is.
        fs::path chartCopy = kChartDir / "crds" / file.filename();
        ASSERT_TRUE(fs::exists(chartCopy)) << chartCopy;
        EXPECT_TRUE(readFile(chartCopy) == crd)
            << chartCopy << " differs from " << file << " (run manifests/sync-crds.sh)";
    }
    // No CRD in install.yaml or in the chart that crds/ does not have.
    size_t crdDocs = 0;
    for (const auto& obj : installObjects())
        if (obj["kind"] == "CustomResourceDefinition") ++crdDocs;
    EXPECT_EQ(crdDocs, files.size());
    size_t chartCrds = 0;
    for (const auto& e : fs::directory_iterator(kChartDir / "crds")) {
        ++chartCrds;
        EXPECT_TRUE(fs::exists(kCrdDir / e.path().filename())) << e.path() << " is not in crds/";
    }
    EXPECT_EQ(chartCrds, files.size());
}

TEST(InstallManifest, SyncScriptRewritesTheCrdCopies) {
    // manifests/sync-crds.sh on a scratch copy of the repository's files: a changed CRD in
    // crds/ reaches install.yaml and the chart, and every other document stays as it was.
    TempDir root;
    fs::copy(kCrdDir, root.file("crds"), fs::copy_options::recursive);
    fs::create_directories(root.file("manifests"));
    fs::create_directories(root.file("charts/sluice/crds"));
    fs::copy_file(kInstallYaml, root.file("manifests/install.yaml"));
    const std::string changed = "# a new comment line\n";
    {
        std::ofstream crd(root.file("crds/sluice.io_canaries.yaml"), std::ios::app);
        crd << changed;
    }
    auto r = runProcess({(kManifestDir / "sync-crds.sh").string(), root.str()});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;

    const std::string canaries = readFile(kCrdDir / "sluice.io_canaries.yaml") + changed;
    EXPECT_EQ(readFile(root.file("charts/sluice/crds/sluice.io_canaries.yaml")), canaries);
    auto before = documentTexts(readFile(kInstallYaml));
    auto after = documentTexts(readFile(root.file("manifests/install.yaml")));
    ASSERT_EQ(after.size(), before.size());
    for (size_t i = 0; i < before.size(); ++i) {
        if (before[i] == readFile(kCrdDir / "sluice.io_canaries.yaml")) {
            EXPECT_EQ(after[i], canaries);
        } else {
            EXPECT_EQ(after[i], before[i]) << "document " << i;
        }
    }
    // Unchanged input gives back the same file.
    auto again = runProcess({(kManifestDir / "sync-crds.sh").string(), root.str()});
    ASSERT_EQ(again.exitCode, 0) << again.err;
    EXPECT_EQ(documentTexts(readFile(root.file("manifests/install.yaml"))), after);
}

TEST(InstallManifest, HoldsTheExpectedObjects) {
    std::set<std::string> keys;
    for (const auto& [key, obj] : byKey(installObjects())) keys.insert(key);
    const std::set<std::string> expected = {
        "v1/Namespace//sluice",
        "apiextensions.k8s.io/v1/CustomResourceDefinition//applications.sluice.io",
        "apiextensions.k8s.io/v1/CustomResourceDefinition//canaries.sluice.io",
        "apiextensions.k8s.io/v1/CustomResourceDefinition//metrictemplates.sluice.io",
        "apiextensions.k8s.io/v1/CustomResourceDefinition//alertproviders.sluice.io",
        "apiextensions.k8s.io/v1/CustomResourceDefinition//appprojects.sluice.io",
        "v1/ServiceAccount/sluice/sluice-controller",
        "rbac.authorization.k8s.io/v1/ClusterRole//sluice-controller",
        "rbac.authorization.k8s.io/v1/ClusterRole//sluice-controller-deployer",
        "rbac.authorization.k8s.io/v1/ClusterRole//sluice-controller-readonly",
        "rbac.authorization.k8s.io/v1/ClusterRoleBinding//sluice-controller",
        "rbac.authorization.k8s.io/v1/ClusterRoleBinding//sluice-controller-deployer",
        "rbac.authorization.k8s.io/v1/Role/sluice/sluice-controller",
        "rbac.authorization.k8s.io/v1/RoleBinding/sluice/sluice-controller",
        "apps/v1/Deployment/sluice/sluice-controller",
        "v1/Service/sluice/sluice-controller",
    };
    EXPECT_EQ(keys, expected);
}

// "group resource verb" triples of a rule list.
std::set<std::string> grants(const json& rules) {
    std::set<std::string> out;
    for (const auto& r : rules)
        for (const auto& g : r.at("apiGroups"))
            for (const auto& res : r.at("resources"))
                for (const auto& v : r.at("verbs"))
                    out.insert(g.get<std::string>() + " " + res.get<std::string>() + " " +
                               v.get<std::string>());
    return out;
}

std::set<std::string> cross(const std::vector<std::string>& groups,
                            const std::vector<std::string>& resources,
                            const std::vector<std::string>& verbs) {
    std::set<std::string> out;
    for (const auto& g : groups)
        for (const auto& r : resources)
            for (const auto& v : verbs) out.insert(g + " " + r + " " + v);
    return out;
}

TEST(InstallManifest, RbacIsExactlyWhatTheControllersUse) {
    auto objects = installObjects();
    const std::vector<std::string> all = {"get",    "list",  "watch", "create",
                                          "update", "patch", "delete"};
    std::set<std::string> expected;
    auto add = [&](std::set<std::string> s) { expected.insert(s.begin(), s.end()); };
    add(cross({"sluice.io"}, {"applications", "canaries", "metrictemplates"},
              {"get", "list", "watch", "update", "patch"}));
    add(cross({"sluice.io"}, {"applications/status", "canaries/status", "metrictemplates/status"},
              {"get", "update", "patch"}));
    add(cross({"sluice.io"}, {"applications/finalizers", "canaries/finalizers"}, {"update"}));
    add(cross({"sluice.io"}, {"alertproviders"}, {"get", "list", "watch"}));
    add(cross({"sluice.io"}, {"appprojects"}, {"get", "list", "watch"}));
    add(cross({"", "events.k8s.io"}, {"events"}, {"create", "patch"}));
    add(cross({"apps"}, {"deployments"}, all));
    add(cross({"apps"}, {"deployments/scale"}, {"get", "update", "patch"}));
    add(cross({"apps"}, {"daemonsets"}, all));
    add(cross({""}, {"services"}, all));
    add(cross({"networking.k8s.io"}, {"ingresses"}, all));
    add(cross({"gateway.networking.k8s.io"}, {"httproutes"}, all));
    add(cross({"networking.istio.io"}, {"virtualservices", "destinationrules"}, all));
    add(cross({"split.smi-spec.io"}, {"trafficsplits"}, all));
    add(cross({"projectcontour.io"}, {"httpproxies"}, all));
    add(cross({"traefik.io"}, {"traefikservices"}, all));
    add(cross({"gateway.solo.io"}, {"routetables"}, all));
    add(cross({"gloo.solo.io"}, {"upstreams"}, all));
    add(cross({"kuma.io"}, {"meshhttproutes"}, all));
    add(cross({"apisix.apache.org"}, {"apisixroutes"}, all));
    add(cross({"appmesh.k8s.aws"}, {"virtualnodes", "virtualrouters", "virtualservices"}, all));
    add(cross({"autoscaling"}, {"horizontalpodautoscalers"}, all));
    add(cross({"keda.sh"}, {"scaledobjects"}, all));
    // AppProject destinationServiceAccounts: sync writes impersonate the named service account.
    add(cross({""}, {"serviceaccounts"}, {"impersonate"}));

    const json* controller = findObject(objects, "ClusterRole", "sluice-controller");
    ASSERT_TRUE(controller);
    EXPECT_EQ(grants((*controller)["rules"]), expected);

    // Secrets, Leases and the plugin ConfigMap only in the control namespace, through a Role.
    const json* role = findObject(objects, "Role", "sluice-controller");
    ASSERT_TRUE(role);
    EXPECT_EQ((*role)["metadata"]["namespace"], "sluice");
    std::set<std::string> roleExpected = cross({""}, {"secrets"}, {"get", "list", "watch"});
    // Leader election, and with --sharding leases the membership and slot Leases: replicas
    // list and watch them, and delete their own when they leave.
    auto leases = cross({"coordination.k8s.io"}, {"leases"}, all);
    roleExpected.insert(leases.begin(), leases.end());
    // The config management plugins' ConfigMap is read; the clusters' state is published.
    for (const char* verb : {"get", "create", "patch"})
        roleExpected.insert(std::string(" configmaps ") + verb);
    EXPECT_EQ(grants((*role)["rules"]), roleExpected);

    // The broad grants are separate roles: write on everything (bound), read on everything
    // (the documented read-only alternative, not bound).
    const json* deployer = findObject(objects, "ClusterRole", "sluice-controller-deployer");
    const json* readonly = findObject(objects, "ClusterRole", "sluice-controller-readonly");
    ASSERT_TRUE(deployer && readonly);
    EXPECT_EQ(grants((*deployer)["rules"]), cross({"*"}, {"*"}, all));
    EXPECT_EQ(grants((*readonly)["rules"]), cross({"*"}, {"*"}, {"get", "list", "watch"}));

    // Bindings: each grants its role to the controller's ServiceAccount; the read-only role
    // and the deployer role are never bound together.
    std::set<std::string> bound;
    for (const auto* kind : {"ClusterRoleBinding", "RoleBinding"}) {
        for (const auto* b : findKind(objects, kind)) {
            const json& ref = (*b)["roleRef"];
            EXPECT_EQ(ref["apiGroup"], "rbac.authorization.k8s.io");
            std::string roleKind = ref["kind"];
            EXPECT_EQ(roleKind, std::string(kind) == "RoleBinding" ? "Role" : "ClusterRole");
            EXPECT_TRUE(findObject(objects, roleKind, ref["name"])) << ref.dump();
            bound.insert(roleKind + "/" + ref["name"].get<std::string>());
            ASSERT_EQ((*b)["subjects"].size(), 1u);
            EXPECT_EQ((*b)["subjects"][0], json({{"kind", "ServiceAccount"},
                                                 {"name", "sluice-controller"},
                                                 {"namespace", "sluice"}}));
        }
    }
    EXPECT_EQ(bound, std::set<std::string>({"ClusterRole/sluice-controller",
                                            "ClusterRole/sluice-controller-deployer",
                                            "Role/sluice-controller"}));
}

std::string argValue(const json& args, const std::string& flag) {
    for (const auto& a : args) {
        std::string s = a;
        if (s.rfind("--" + flag + "=", 0) == 0) return s.substr(flag.size() + 3);
    }
    return "";
}

TEST(InstallManifest, DeploymentRunsTheControllerHardened) {
    auto objects = installObjects();
    const json* d = findObject(objects, "Deployment", "sluice-controller");
    ASSERT_TRUE(d);
    const json& pod = (*d)["spec"]["template"]["spec"];
    ASSERT_EQ(pod["containers"].size(), 1u);
    const json& c = pod["containers"][0];
    EXPECT_EQ(c["image"], "ghcr.io/sluice-io/sluice-controller:0.1.0");
    EXPECT_EQ(pod["serviceAccountName"], "sluice-controller");
    // Selector selects the pod template, and the Service selects the same pods.
    for (const auto& [k, v] : (*d)["spec"]["selector"]["matchLabels"].items())
        EXPECT_EQ((*d)["spec"]["template"]["metadata"]["labels"][k], v) << k;
    const json* svc = findObject(objects, "Service", "sluice-controller");
    ASSERT_TRUE(svc);
    EXPECT_EQ((*svc)["spec"]["selector"], (*d)["spec"]["selector"]["matchLabels"]);

    // Pod and container security.
    const json& psc = pod["securityContext"];
    EXPECT_EQ(psc["runAsNonRoot"], true);
    EXPECT_EQ(psc["runAsUser"], 65532);
    EXPECT_EQ(psc["seccompProfile"]["type"], "RuntimeDefault");
    const json& csc = c["securityContext"];
    EXPECT_EQ(csc["allowPrivilegeEscalation"], false);
    EXPECT_EQ(csc["readOnlyRootFilesystem"], true);
    EXPECT_EQ(csc["capabilities"]["drop"], json::array({"ALL"}));
    EXPECT_FALSE(csc["capabilities"].contains("add"));
    EXPECT_FALSE(csc.value("privileged", false));
    EXPECT_TRUE(c["resources"]["requests"].contains("cpu"));
    EXPECT_TRUE(c["resources"]["requests"].contains("memory"));
    EXPECT_TRUE(c["resources"]["limits"].contains("memory"));

    // Every flag is one the built controller knows.
    auto known = controllerFlags();
    ASSERT_TRUE(known.count("repo-cache-dir")) << "--help lists no flags?";
    for (const auto& a : c["args"]) {
        std::string s = a;
        ASSERT_EQ(s.rfind("--", 0), 0u) << s;
        std::string name = s.substr(2, s.find('=') - 2);
        EXPECT_TRUE(known.count(name)) << "sluice-controller --help does not list --" << name;
    }

    // Ports: the addresses in the flags are the container ports, the probes use the health
    // port, the Service targets the metrics and webhook ports.
    std::map<std::string, int> ports;
    for (const auto& p : c["ports"]) ports[p["name"]] = p["containerPort"];
    EXPECT_EQ(argValue(c["args"], "metrics-addr"), ":" + std::to_string(ports["metrics"]));
    EXPECT_EQ(argValue(c["args"], "health-addr"), ":" + std::to_string(ports["health"]));
    EXPECT_EQ(argValue(c["args"], "webhook-addr"), ":" + std::to_string(ports["webhook"]));
    EXPECT_EQ(ports,
              (std::map<std::string, int>{{"metrics", 8080}, {"health", 8081}, {"webhook", 8082}}));
    EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    EXPECT_EQ(c["livenessProbe"]["httpGet"]["port"], "health");
    EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    EXPECT_EQ(c["readinessProbe"]["httpGet"]["port"], "health");
    std::map<std::string, int> servicePorts;
    for (const auto& p : (*svc)["spec"]["ports"]) {
        servicePorts[p["name"]] = p["port"];
        EXPECT_TRUE(ports.count(p["targetPort"].get<std::string>())) << p.dump();
    }
    EXPECT_EQ(servicePorts, (std::map<std::string, int>{{"metrics", 8080}, {"webhook", 8082}}));

    // POD_NAMESPACE from the downward API makes the pod's namespace the control namespace.
    bool podNamespace = false;
    for (const auto& e : c["env"])
        if (e["name"] == "POD_NAMESPACE")
            podNamespace = e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace";
    EXPECT_TRUE(podNamespace) << c["env"].dump();

    // The root filesystem is read-only: the repository cache and /tmp are emptyDirs.
    std::map<std::string, std::string> mounts;
    for (const auto& m : c["volumeMounts"]) mounts[m["mountPath"]] = m["name"];
    std::set<std::string> emptyDirs;
    for (const auto& v : pod["volumes"])
        if (v.contains("emptyDir")) emptyDirs.insert(v["name"]);
    std::string cacheDir = argValue(c["args"], "repo-cache-dir");
    ASSERT_FALSE(cacheDir.empty());
    ASSERT_TRUE(mounts.count(cacheDir)) << cacheDir << " is not a mount";
    EXPECT_TRUE(emptyDirs.count(mounts[cacheDir]));
    ASSERT_TRUE(mounts.count("/tmp"));
    EXPECT_TRUE(emptyDirs.count(mounts["/tmp"]));

    // One replica without leader election must not overlap with its successor.
    EXPECT_EQ((*d)["spec"]["replicas"], 1);
    EXPECT_EQ(argValue(c["args"], "leader-elect"), "false");
    EXPECT_EQ((*d)["spec"]["strategy"]["type"], "Recreate");
}

class InstallManifestKubectl : public KubectlTest {};

TEST_F(InstallManifestKubectl, EveryObjectAppliesWithServerSideDryRunThenForReal) {
    const size_t objects = installObjects().size();
    // As on a cluster, namespaced objects can only be dry-run into an existing namespace.
    createNamespace("sluice");
    auto dry = kubectl({"apply", "--server-side", "--dry-run=server", "-f", kInstallYaml.string()});
    ASSERT_EQ(dry.exitCode, 0) << dry.out << dry.err;
    size_t dryLines = 0;
    std::istringstream lines(dry.out);
    for (std::string line; std::getline(lines, line);)
        if (line.find("serverside-applied (server dry run)") != std::string::npos) ++dryLines;
    EXPECT_EQ(dryLines, objects) << dry.out;
    // A dry run stores nothing.
    EXPECT_FALSE(server->get("apps/v1", "Deployment", "sluice", "sluice-controller"));
    EXPECT_FALSE(server->get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                             "applications.sluice.io"));

    auto real = kubectl({"apply", "--server-side", "-f", kInstallYaml.string()});
    ASSERT_EQ(real.exitCode, 0) << real.out << real.err;
    for (const auto& obj : installObjects()) {
        auto stored = server->get(obj["apiVersion"], obj["kind"],
                                  obj["metadata"].value("namespace", ""), obj["metadata"]["name"]);
        EXPECT_TRUE(stored) << objectKey(obj);
    }
    auto d = server->get("apps/v1", "Deployment", "sluice", "sluice-controller");
    ASSERT_TRUE(d);
    EXPECT_EQ((*d)["spec"]["template"]["spec"]["securityContext"]["runAsUser"], 65532);
    // The CRDs are served once applied: the controller's resources exist in discovery.
    auto resources = kubectl({"api-resources", "--api-group=sluice.io", "-o", "name"});
    EXPECT_NE(resources.out.find("applications.sluice.io"), std::string::npos) << resources.err;
    EXPECT_NE(resources.out.find("canaries.sluice.io"), std::string::npos);

    // Applying again (an upgrade with nothing changed) succeeds as well.
    auto again = kubectl({"apply", "--server-side", "-k", kManifestDir.string()});
    EXPECT_EQ(again.exitCode, 0) << again.out << again.err;
}

// GET http://127.0.0.1:port/path over a plain socket: {status, body}, status 0 if nothing
// answers.
std::pair<int, std::string> loopbackGet(int port, const std::string& path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(fd);
        return {0, ""};
    }
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (send(fd, req.data(), req.size(), 0) != static_cast<ssize_t>(req.size())) {
        close(fd);
        return {0, ""};
    }
    std::string resp;
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) resp.append(buf, n);
    close(fd);
    if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12) return {0, ""};
    auto bodyAt = resp.find("\r\n\r\n");
    return {std::atoi(resp.c_str() + 9),
            bodyAt == std::string::npos ? "" : resp.substr(bodyAt + 4)};
}

TEST_F(InstallManifestKubectl, TheControllerRunsAsTheDeploymentStartsIt) {
    // install.yaml applied, then the built controller started with the Deployment's args and
    // env as the kubelet would (the downward API's POD_NAMESPACE, a kubeconfig in place of the
    // in-cluster config, free loopback ports in place of :8080-:8082 and a temp dir for the
    // emptyDir): the probes answer on the paths and port the Deployment names, /metrics serves
    // the controller's families, and SIGTERM stops it cleanly within the grace period.
    auto apply = kubectl({"apply", "--server-side", "-f", kInstallYaml.string()});
    ASSERT_EQ(apply.exitCode, 0) << apply.out << apply.err;
    auto objects = installObjects();
    const json* d = findObject(objects, "Deployment", "sluice-controller");
    ASSERT_TRUE(d);
    const json& pod = (*d)["spec"]["template"]["spec"];
    const json& c = pod["containers"][0];

    std::map<std::string, int> ports;  // container port name -> loopback port
    std::map<int, std::string> byNumber;
    for (const auto& p : c["ports"]) byNumber[p["containerPort"]] = p["name"];
    std::vector<std::string> argv = {SLUICE_CONTROLLER_BINARY, "--kubeconfig=" + kubeconfig};
    for (const auto& a : c["args"]) {
        std::string arg = a;
        std::smatch m;
        if (std::regex_match(arg, m, std::regex("(--[a-z-]+-addr)=:([0-9]+)"))) {
            const std::string& name = byNumber.at(std::stoi(m[2]));
            ports[name] = sluice::testing::freeLoopbackPort();
            arg = m[1].str() + "=127.0.0.1:" + std::to_string(ports[name]);
        } else if (arg.rfind("--repo-cache-dir=", 0) == 0) {
            arg = "--repo-cache-dir=" + dir.file("repositories");
        }
        argv.push_back(arg);
    }
    ASSERT_EQ(ports.size(), 3u);
    std::map<std::string, std::string> env = {{"HOME", dir.str()}};
    for (const auto& e : c["env"]) {
        if (e.contains("valueFrom")) {
            ASSERT_EQ(e["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace");
            env[e["name"]] = (*d)["metadata"]["namespace"];
        } else {
            env[e["name"]] = e["value"];
        }
    }

    ChildProcess controller(argv, env);
    const int health = ports.at(c["readinessProbe"]["httpGet"]["port"].get<std::string>());
    const std::string readyPath = c["readinessProbe"]["httpGet"]["path"];
    const std::string livePath = c["livenessProbe"]["httpGet"]["path"];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::pair<int, std::string> ready;
    while (std::chrono::steady_clock::now() < deadline && controller.running()) {
        ready = loopbackGet(health, readyPath);
        if (ready.first == 200) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ASSERT_EQ(ready.first, 200) << ready.second << controller.stderrText();
    EXPECT_EQ(loopbackGet(health, livePath).first, 200);
    auto metrics = loopbackGet(ports.at("metrics"), "/metrics");
    EXPECT_EQ(metrics.first, 200);
    for (const char* family : {"sluice_leader", "sluice_build_info", "sluice_reconcile_total"})
        EXPECT_NE(metrics.second.find(family), std::string::npos) << family;
    // JSON logs, as --log-format=json asks.
    std::string logs = controller.stderrText() + controller.stdoutText();
    auto firstLine = logs.substr(0, logs.find('\n'));
    EXPECT_TRUE(json::accept(firstLine)) << firstLine;

    controller.signal(SIGTERM);
    auto code = controller.wait(std::chrono::seconds(pod["terminationGracePeriodSeconds"]));
    ASSERT_TRUE(code) << "still running after the grace period";
    EXPECT_EQ(*code, 0) << controller.stderrText();
}

TEST_F(InstallManifestKubectl, ServerDryRunRefusesWhatTheServerWouldRefuse) {
    // The test server checks kinds, versions, names, namespaces and CRDs (not the schemas of
    // built-in kinds): the same manifest with such a mistake fails the dry run, so the test
    // above would catch it in install.yaml.
    createNamespace("sluice");
    const std::string text = readFile(kInstallYaml);
    auto broken = [&](const std::string& from, const std::string& to) {
        std::string t = text;
        auto at = t.find(from);
        EXPECT_NE(at, std::string::npos) << from;
        return at == std::string::npos ? t : t.replace(at, from.size(), to);
    };
    struct Case {
        std::string manifest;
        std::string expected;
    };
    const std::vector<Case> cases = {
        {broken("apiVersion: apps/v1\nkind: Deployment",
                "apiVersion: apps/v1beta1\nkind: Deployment"),
         "apps/v1beta1"},
        {broken("kind: Service\nmetadata:\n  name: sluice-controller",
                "kind: Service\nmetadata:\n  name: Sluice_Controller"),
         "Sluice_Controller"},
        {broken("  namespace: sluice\n", "  namespace: sluice-system\n"), "sluice-system"},
    };
    for (const auto& c : cases) {
        auto r = kubectl({"apply", "--server-side", "--dry-run=server", "-f", "-"}, c.manifest);
        EXPECT_NE(r.exitCode, 0) << c.expected << ": " << r.out;
        EXPECT_NE(r.err.find(c.expected), std::string::npos) << r.err;
    }
}

TEST_F(InstallManifestKubectl, KustomizeRendersTheSameObjects) {
    auto r = kubectl({"kustomize", kManifestDir.string()});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    auto rendered = byKey(yamlDocumentsToJson(r.out));
    auto expected = byKey(installObjects());
    ASSERT_EQ(rendered.size(), expected.size());
    for (const auto& [key, obj] : expected) {
        ASSERT_TRUE(rendered.count(key)) << key;
        EXPECT_EQ(rendered[key], obj) << key << "\n" << json::diff(obj, rendered[key]).dump(2);
    }
    // Nothing outside manifests/ is referenced (kustomize refuses such paths by default, and
    // the kustomization lists only files of this directory).
    auto kustomization = yamlToJson(readFile(kManifestDir / "kustomization.yaml"));
    for (const auto& res : kustomization["resources"]) {
        std::string path = res;
        EXPECT_EQ(path.find(".."), std::string::npos) << path;
        EXPECT_TRUE(fs::exists(kManifestDir / path)) << path;
    }
}

TEST_F(InstallManifestKubectl, ShardedComponentRunsThreeReplicasSharingThroughLeases) {
    auto component = yamlToJson(readFile(kManifestDir / "sharded" / "kustomization.yaml"));
    EXPECT_EQ(component["kind"], "Component");
    auto r = kubectl({"kustomize", writeShardedOverlay(dir)});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    auto rendered = byKey(yamlDocumentsToJson(r.out));
    auto base = byKey(installObjects());
    ASSERT_EQ(rendered.size(), base.size());
    const std::string deployment = "apps/v1/Deployment/sluice/sluice-controller";
    // Only the Deployment changes.
    for (const auto& [key, obj] : base) {
        ASSERT_TRUE(rendered.count(key)) << key;
        if (key != deployment) {
            EXPECT_EQ(rendered[key], obj) << key;
        }
    }
    json d = rendered[deployment];
    json expected = base[deployment];
    EXPECT_EQ(d["spec"]["replicas"], 3);
    EXPECT_EQ(d["spec"]["strategy"],
              json({{"type", "RollingUpdate"},
                    {"rollingUpdate", {{"maxUnavailable", 1}, {"maxSurge", 1}}}}));
    // --sharding leases in place of --leader-elect (they cannot be combined), with the slots
    // and the Leases' name prefix.
    json args = json::array();
    for (const auto& a : expected["spec"]["template"]["spec"]["containers"][0]["args"])
        if (a != "--leader-elect=false") args.push_back(a);
    for (const char* a :
         {"--sharding=leases", "--shard-slots=32", "--leader-election-id=sluice-controller"})
        args.push_back(a);
    const json gotArgs = d["spec"]["template"]["spec"]["containers"][0]["args"];
    auto strings = [](const json& list) {
        std::multiset<std::string> out;
        for (const auto& a : list) out.insert(a.get<std::string>());
        return out;
    };
    EXPECT_EQ(strings(gotArgs), strings(args)) << gotArgs.dump();
    for (const auto& a : gotArgs)
        EXPECT_NE(a.get<std::string>().rfind("--leader-elect=", 0), 0u) << a;
    // Everything else is the base's Deployment.
    for (json* obj : {&d, &expected}) {
        (*obj)["spec"].erase("replicas");
        (*obj)["spec"].erase("strategy");
        (*obj)["spec"]["template"]["spec"]["containers"][0].erase("args");
    }
    EXPECT_EQ(d, expected) << json::diff(expected, d).dump(2);

    // The flags are ones the built controller knows.
    auto known = controllerFlags();
    for (const auto& a : gotArgs) {
        std::string s = a;
        EXPECT_TRUE(known.count(s.substr(2, s.find('=') - 2)))
            << "sluice-controller --help does not list " << s;
    }

    // And the overlay applies.
    createNamespace("sluice");
    auto dry = kubectl({"apply", "--server-side", "--dry-run=server", "-f", "-"}, r.out);
    EXPECT_EQ(dry.exitCode, 0) << dry.out << dry.err;
}

}  // namespace
}  // namespace sluice::testing::install
