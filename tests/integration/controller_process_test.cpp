// sluice-controller as a process: flags, configuration errors, and its watch caches against the
// Kubernetes API test server over HTTPS.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cpprest/http_client.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "apiserver/api_server.h"
#include "http/http_server.h"
#include "metrics/exposition_parser.h"
#include "process/process.h"
#include "prometheus/prometheus_server.h"
#include "sluice/gitwebhook/webhook.h"
#include "sluice/kube/client.h"
#include "sluice/util/yaml_json.h"
#include "tempdir/tempdir.h"
#include "testutil/objects.h"
#include "testutil/testutil.h"

using namespace std::chrono_literals;
using sluice::testing::ChildProcess;
using sluice::testing::eventually;
using sluice::testing::runProcess;
using sluice::testing::TempDir;

namespace {

const std::string kController = SLUICE_CONTROLLER_BIN;

// Every controller these tests start keeps off the default ports (:8080-:8082), which parallel
// tests or the machine may hold; the tests of the endpoints give free loopback ports instead.
const bool kDefaultPortsOff = [] {
    setenv("SLUICE_METRICS_ADDR", "0", 1);
    setenv("SLUICE_HEALTH_ADDR", "0", 1);
    setenv("SLUICE_WEBHOOK_ADDR", "0", 1);
    return true;
}();

std::string loopback(int port) {
    return "127.0.0.1:" + std::to_string(port);
}

// GET on loopback: {status, body}; status 0 when nothing answers.
std::pair<int, std::string> httpGet(int port, const std::string& path) {
    auto r = sluice::testing::localHttpGet(port, path, 2s);
    if (!r) return {0, ""};
    return {r->status, r->body};
}

std::pair<int, std::string> httpPost(int port, const std::string& path, const std::string& body,
                                     const std::map<std::string, std::string>& headers) {
    web::http::client::http_client client("http://127.0.0.1:" + std::to_string(port));
    web::http::http_request req(web::http::methods::POST);
    req.set_request_uri(path);
    for (const auto& [k, v] : headers) req.headers().add(k, v);
    // Bytes, not cpprest's std::string overload (UBSan: char buffer used as uint8_t).
    std::vector<uint8_t> bytes(body.begin(), body.end());
    auto size = bytes.size();
    req.set_body(concurrency::streams::bytestream::open_istream(std::move(bytes)), size,
                 "application/json");
    auto resp = client.request(req).get();
    return {resp.status_code(), resp.extract_utf8string(true).get()};
}

nlohmann::json configMap(const std::string& ns, const std::string& name) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}, {"namespace", ns}}},
            {"data", {{"k", "v"}}}};
}

// The controller refuses to start without the Application CRD.
const char* const kApplicationCrd = "sluice.io_applications.yaml";

// A started API test server and a kubeconfig for it in a fresh temporary directory, with the
// given CRDs (files of crds/, as shipped) and namespaces.
struct Cluster {
    explicit Cluster(std::initializer_list<const char*> crds = {},
                     std::initializer_list<const char*> namespaces = {}) {
        server.start();
        kubeconfig = server.writeKubeconfig(dir.file("kubeconfig"));
        for (const char* crd : crds)
            server.createFromFile(sluice::testing::sourcePath(std::string("crds/") + crd));
        for (const char* ns : namespaces) server.create(sluice::testing::namespaceObject(ns));
    }

    TempDir dir;
    sluice::testing::ApiServer server;
    std::string kubeconfig;
};

// SIGTERM stops the controller cleanly: exit code 0 within `timeout`.
void expectCleanStop(ChildProcess& controller, std::chrono::milliseconds timeout) {
    controller.signal(SIGTERM);
    auto code = controller.wait(timeout);
    ASSERT_TRUE(code.has_value()) << "controller did not stop on SIGTERM";
    EXPECT_EQ(*code, 0) << controller.stderrText();
}

}  // namespace

TEST(ControllerProcess, HelpVersionAndBadFlags) {
    auto help = runProcess({kController, "--help"});
    EXPECT_EQ(help.exitCode, 0);
    EXPECT_NE(help.out.find("--kubeconfig"), std::string::npos);

    auto version = runProcess({kController, "--version"});
    EXPECT_EQ(version.exitCode, 0);
    EXPECT_NE(version.out.find("sluice-controller "), std::string::npos);

    auto bad = runProcess({kController, "--bogus"});
    EXPECT_EQ(bad.exitCode, 2);
    EXPECT_NE(bad.err.find("unknown flag --bogus"), std::string::npos);

    auto badEnv = runProcess({kController}, {{"SLUICE_LOG_FORMAT", "xml"}});
    EXPECT_EQ(badEnv.exitCode, 2);
    EXPECT_NE(badEnv.err.find("--log-format"), std::string::npos);

    auto badQps = runProcess({kController, "--qps=fast"});
    EXPECT_EQ(badQps.exitCode, 2);
}

TEST(ControllerProcess, MissingKubeconfigNamesTheFile) {
    TempDir dir;
    auto r = runProcess({kController, "--kubeconfig", dir.file("nope")});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find(dir.file("nope")), std::string::npos) << r.err;
}

TEST(ControllerProcess, UnreachableServerIsAClearError) {
    Cluster cluster;
    cluster.server.stop();  // the port is now closed
    auto r = runProcess({kController, "--kubeconfig", cluster.kubeconfig, "--log-format", "json"},
                        {}, 120s);
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("cannot reach the API server"), std::string::npos) << r.err;
}

TEST(ControllerProcess, CachesFollowTheClusterAndShutDownOnSigterm) {
    Cluster cluster({kApplicationCrd}, {"demo"});
    cluster.server.create(configMap("demo", "before"));

    ChildProcess controller({kController, "--kubeconfig", cluster.kubeconfig, "--namespace", "demo",
                             "--watch", "v1/ConfigMap", "--log-format", "json"});
    ASSERT_TRUE(controller.waitForOutput("caches synced: 1 objects", 30s))
        << controller.stderrText();

    sluice::kube::RestClient client(sluice::kube::loadKubeconfig(cluster.kubeconfig));
    client.create(configMap("demo", "after"));
    EXPECT_TRUE(controller.waitForOutput("added ConfigMap demo/after", 10s))
        << controller.stderrText();
    client.remove({"", "v1", "ConfigMap"}, "demo", "before");
    EXPECT_TRUE(controller.waitForOutput("deleted ConfigMap demo/before", 10s))
        << controller.stderrText();

    ASSERT_NO_FATAL_FAILURE(expectCleanStop(controller, 15s));

    // --log-format json: every line is one JSON object.
    std::istringstream lines(controller.stderrText());
    std::string line;
    int parsed = 0;
    while (std::getline(lines, line)) {
        if (line.empty()) continue;
        auto j = nlohmann::json::parse(line, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << line;
        ++parsed;
    }
    EXPECT_GE(parsed, 4);
    // No credential ever reaches the logs.
    EXPECT_EQ(controller.stderrText().find(cluster.server.token()), std::string::npos);
}

TEST(ControllerProcess, UnknownKindIsRejectedWithTheApiMessage) {
    Cluster cluster({kApplicationCrd});
    auto r = runProcess(
        {kController, "--kubeconfig", cluster.kubeconfig, "--watch", "example.com/v1/Widget"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("Widget"), std::string::npos) << r.err;
}

TEST(ControllerProcess, MissingApplicationCrdIsAClearError) {
    Cluster cluster;
    auto r = runProcess({kController, "--kubeconfig", cluster.kubeconfig});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("applications.sluice.io) is not installed"), std::string::npos) << r.err;
}

// The binary end to end: an Application pointing at a local git repository is synced, a new
// commit is followed after a refresh annotation, and SIGTERM stops the process cleanly.
TEST(ControllerProcess, SyncsAnApplicationFromGit) {
    Cluster cluster({kApplicationCrd}, {"sluice", "web"});

    const std::map<std::string, std::string> gitEnv = {
        {"GIT_CONFIG_GLOBAL", "/dev/null"}, {"GIT_CONFIG_NOSYSTEM", "1"},
        {"GIT_AUTHOR_NAME", "t"},           {"GIT_AUTHOR_EMAIL", "t@example.com"},
        {"GIT_COMMITTER_NAME", "t"},        {"GIT_COMMITTER_EMAIL", "t@example.com"}};
    const std::string repo = cluster.dir.file("repo");
    auto git = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {"git", "-C", repo});
        auto r = runProcess(args, gitEnv);
        ASSERT_EQ(r.exitCode, 0) << r.err;
    };
    std::filesystem::create_directories(repo + "/app");
    auto writeConfig = [&](const std::string& greeting) {
        std::ofstream(repo + "/app/config.yaml")
            << "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: "
            << greeting << "\n";
    };
    runProcess({"git", "init", "-q", "-b", "main", repo}, gitEnv);
    writeConfig("hello");
    git({"add", "-A"});
    git({"commit", "-q", "-m", "one"});

    // The git webhook Secret, as an operator would create it.
    cluster.server.create({{"apiVersion", "v1"},
                           {"kind", "Secret"},
                           {"metadata", {{"name", "sluice-webhook"}, {"namespace", "sluice"}}},
                           {"stringData", {{"webhook.github.secret", "s3cret"}}}});

    const int healthPort = sluice::testing::freeLoopbackPort(),
              metricsPort = sluice::testing::freeLoopbackPort(),
              webhookPort = sluice::testing::freeLoopbackPort();
    ChildProcess controller({kController, "--kubeconfig", cluster.kubeconfig, "--control-namespace",
                             "sluice", "--repo-cache-dir", cluster.dir.file("cache"),
                             "--reconcile-interval", "10m", "--log-format", "json", "--health-addr",
                             loopback(healthPort), "--metrics-addr", loopback(metricsPort),
                             "--webhook-addr", loopback(webhookPort)});
    ASSERT_TRUE(controller.waitForOutput("application controller started", 30s))
        << controller.stderrText();
    EXPECT_EQ(httpGet(healthPort, "/healthz"), std::make_pair(200, std::string("ok\n")));
    EXPECT_EQ(httpGet(healthPort, "/readyz"), std::make_pair(200, std::string("ready\n")));

    sluice::kube::RestClient client(sluice::kube::loadKubeconfig(cluster.kubeconfig));
    const sluice::kube::GroupVersionKind app{"sluice.io", "v1alpha1", "Application"};
    client.create(
        {{"apiVersion", "sluice.io/v1alpha1"},
         {"kind", "Application"},
         {"metadata", {{"name", "web"}, {"namespace", "sluice"}}},
         {"spec",
          {{"source", {{"repoURL", "file://" + repo}, {"path", "app"}, {"targetRevision", "main"}}},
           {"destination", {{"server", "https://kubernetes.default.svc"}, {"namespace", "web"}}},
           {"syncPolicy", {{"automated", {{"selfHeal", true}}}}}}}});
    auto greeting = [&] {
        auto cm = cluster.server.get("v1", "ConfigMap", "web", "settings");
        return cm ? cm->value("/data/greeting"_json_pointer, std::string()) : std::string();
    };
    ASSERT_TRUE(eventually([&] { return greeting() == "hello"; })) << controller.stderrText();
    EXPECT_TRUE(eventually([&] {
        auto a = client.get(app, "sluice", "web");
        return a.value("/status/sync/status"_json_pointer, std::string()) == "Synced";
    }));

    // A hand edit by another field manager is undone and attributed to it: the watch cache keeps
    // managedFields as text (rawMembers) and drift attribution reads it from there.
    sluice::kube::PatchOptions byHand;
    byHand.fieldManager = "kubectl-edit";
    client.patch({"", "v1", "ConfigMap"}, "web", "settings", sluice::kube::PatchType::Merge,
                 R"({"data":{"greeting":"edited"}})", byHand);
    EXPECT_TRUE(eventually([&] { return greeting() == "hello"; })) << controller.stderrText();
    EXPECT_TRUE(eventually([&] {
        for (const auto& e : client.list({"", "v1", "Event"}, "sluice").items)
            if (e.value("reason", "") == "DriftCorrected" &&
                e.value("message", "").find("kubectl-edit") != std::string::npos)
                return true;
        return false;
    })) << controller.stderrText();

    // A new commit, announced by a signed GitHub push webhook: synced without waiting for the
    // 10 minute poll.
    writeConfig("again");
    git({"commit", "-q", "-am", "two"});
    const std::string push =
        nlohmann::json({{"ref", "refs/heads/main"},
                        {"repository", {{"clone_url", "file://" + repo + ".git"}}}})
            .dump();
    auto forged = httpPost(
        webhookPort, "/api/webhook", push,
        {{"X-GitHub-Event", "push"},
         {"X-Hub-Signature-256", "sha256=" + sluice::gitwebhook::hmacSha256Hex("wrong", push)}});
    EXPECT_EQ(forged.first, 401) << forged.second;
    auto signed_ = httpPost(
        webhookPort, "/api/webhook", push,
        {{"X-GitHub-Event", "push"},
         {"X-Hub-Signature-256", "sha256=" + sluice::gitwebhook::hmacSha256Hex("s3cret", push)}});
    EXPECT_EQ(signed_.first, 202) << signed_.second;
    EXPECT_EQ(nlohmann::json::parse(signed_.second).value("refreshed", 0), 1) << signed_.second;
    EXPECT_TRUE(eventually([&] { return greeting() == "again"; })) << controller.stderrText();

    // The metrics page parses as Prometheus reads it and tells what happened.
    sluice::testing::ParsedExposition page;
    ASSERT_TRUE(eventually([&] {
        auto [status, body] = httpGet(metricsPort, "/metrics");
        if (status != 200) return false;
        page = sluice::testing::parseExposition(body);
        // A reconcile is counted when it returns, a moment after its objects were applied.
        return page.value("sluice_application_info", {{"name", "web"}, {"sync_status", "Synced"}})
                   .has_value() &&
               page.value("sluice_application_sync_total",
                          {{"namespace", "sluice"}, {"name", "web"}, {"result", "Succeeded"}})
                       .value_or(0) >= 2;
    })) << httpGet(metricsPort, "/metrics").second;
    EXPECT_EQ(page.value("sluice_build_info"), 1);
    EXPECT_EQ(page.value("sluice_leader"), 1);
    EXPECT_GE(page.value("sluice_application_sync_total",
                         {{"namespace", "sluice"}, {"name", "web"}, {"result", "Succeeded"}})
                  .value_or(0),
              2);
    EXPECT_GE(page.value("sluice_git_fetch_total", {{"result", "success"}}).value_or(0), 2);
    EXPECT_GE(page.value("sluice_git_fetch_duration_seconds_count").value_or(0), 2);
    EXPECT_GT(
        page.value("sluice_kube_requests_total", {{"verb", "list"}, {"code", "200"}}).value_or(0),
        0);
    EXPECT_GT(
        page.value("sluice_kube_request_duration_seconds_count", {{"verb", "apply"}}).value_or(0),
        0);
    EXPECT_GE(
        page.value("sluice_reconcile_total", {{"controller", "application"}, {"result", "success"}})
            .value_or(0),
        2);
    EXPECT_EQ(
        page.value("sluice_webhook_requests_total", {{"provider", "github"}, {"code", "401"}}), 1);
    EXPECT_EQ(
        page.value("sluice_webhook_requests_total", {{"provider", "github"}, {"code", "202"}}), 1);
    EXPECT_TRUE(page.value("sluice_workqueue_depth", {{"controller", "application"}}).has_value());
    EXPECT_EQ(page.families.at("sluice_reconcile_duration_seconds").type, "histogram");

    ASSERT_NO_FATAL_FAILURE(expectCleanStop(controller, 30s));
    EXPECT_EQ(controller.stderrText().find(cluster.server.token()), std::string::npos);
}

// Two replicas with --leader-elect: one leads and reconciles, the other waits as a ready
// standby; SIGTERM on the leader releases the Lease and the standby takes over at once.
TEST(ControllerProcess, LeaderElectionHandsOverBetweenTwoReplicas) {
    Cluster cluster({kApplicationCrd}, {"sluice", "web"});

    auto start = [&](const std::string& name, int healthPort) {
        return std::make_unique<ChildProcess>(std::vector<std::string>{
            kController, "--kubeconfig", cluster.kubeconfig, "--control-namespace", "sluice",
            "--repo-cache-dir", cluster.dir.file("cache-" + name), "--leader-elect",
            "--health-addr", loopback(healthPort)});
    };
    const int portA = sluice::testing::freeLoopbackPort(),
              portB = sluice::testing::freeLoopbackPort();
    auto a = start("a", portA);
    ASSERT_TRUE(a->waitForOutput("is now the leader", 30s)) << a->stderrText();
    ASSERT_TRUE(a->waitForOutput("application controller started", 30s)) << a->stderrText();
    auto b = start("b", portB);
    ASSERT_TRUE(b->waitForOutput("this replica", 30s)) << b->stderrText();
    EXPECT_TRUE(eventually([&] {
        return httpGet(portB, "/readyz").second.find("ready: standby") == 0;
    })) << httpGet(portB, "/readyz").second;
    EXPECT_EQ(httpGet(portA, "/readyz").second, "ready: leader\n");
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(b->stderrText().find("application controller started"), std::string::npos)
        << "a standby must not reconcile";

    auto lease =
        cluster.server.get("coordination.k8s.io/v1", "Lease", "sluice", "sluice-controller");
    ASSERT_TRUE(lease);
    const std::string holderA = (*lease)["spec"]["holderIdentity"];

    auto before = std::chrono::steady_clock::now();
    ASSERT_NO_FATAL_FAILURE(expectCleanStop(*a, 30s));
    EXPECT_NE(a->stderrText().find("released Lease"), std::string::npos) << a->stderrText();
    ASSERT_TRUE(b->waitForOutput("application controller started", 30s)) << b->stderrText();
    // Released, not expired: the hand-over needs no 15 s lease expiry.
    EXPECT_LT(std::chrono::steady_clock::now() - before, 12s);
    lease = cluster.server.get("coordination.k8s.io/v1", "Lease", "sluice", "sluice-controller");
    EXPECT_NE((*lease)["spec"]["holderIdentity"], holderA);
    EXPECT_EQ((*lease)["spec"]["leaseTransitions"], 1);
    EXPECT_TRUE(eventually([&] { return httpGet(portB, "/readyz").second == "ready: leader\n"; }));

    ASSERT_NO_FATAL_FAILURE(expectCleanStop(*b, 30s));
}

TEST(ControllerProcess, OperationsFlagsAreValidated) {
    auto badAddr = runProcess({kController, "--metrics-addr", "8080"});
    EXPECT_EQ(badAddr.exitCode, 2);
    EXPECT_NE(badAddr.err.find("--metrics-addr"), std::string::npos) << badAddr.err;
    auto badBool = runProcess({kController, "--leader-elect=maybe"});
    EXPECT_EQ(badBool.exitCode, 2);
    EXPECT_NE(badBool.err.find("--leader-elect"), std::string::npos) << badBool.err;
    auto help = runProcess({kController, "--help"});
    for (const char* flag : {"--metrics-addr", "--health-addr", "--webhook-addr",
                             "--webhook-secret", "--leader-elect", "--leader-election-id"})
        EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
}

// With the Canary CRD installed the binary runs the Canary controller too: a Canary's target
// gets its primary and Services, and the Canary shows up in /metrics.
TEST(ControllerProcess, RunsTheCanaryControllerWhenItsCrdIsInstalled) {
    Cluster cluster({"sluice.io_applications.yaml", "sluice.io_canaries.yaml",
                     "sluice.io_metrictemplates.yaml", "sluice.io_alertproviders.yaml"},
                    {"sluice", "shop"});
    cluster.server.create(nlohmann::json::parse(R"({
      "apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "cart", "namespace": "shop"},
      "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "cart"}},
               "template": {"metadata": {"labels": {"app": "cart"}},
                            "spec": {"containers": [{"name": "cart", "image": "cart:1"}]}}}})"));
    cluster.server.create(nlohmann::json::parse(R"({
      "apiVersion": "sluice.io/v1alpha1", "kind": "Canary",
      "metadata": {"name": "cart", "namespace": "shop"},
      "spec": {"provider": "kubernetes",
               "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "cart"},
               "service": {"port": 80, "targetPort": 8080},
               "analysis": {"interval": "1s", "threshold": 2, "iterations": 2,
                            "metrics": [{"name": "request-success-rate",
                                         "thresholdRange": {"min": 99}, "interval": "1m"}]}}})"));

    // A Prometheus HTTP API that answers every query with 99.5 (the real-Prometheus tests are
    // in tests/canarycontroller; here the process wiring is under test).
    sluice::testing::HttpServer prometheus({});
    std::atomic<int> queries{0};
    prometheus.start(
        [&](const sluice::testing::HttpRequest& req, sluice::testing::ResponseWriter& w) {
            if (req.path != "/api/v1/query") return w.respond(404, {}, "");
            ++queries;
            w.respond(200, {{"Content-Type", "application/json"}},
                      R"({"status":"success","data":{"resultType":"vector","result":[)"
                      R"({"metric":{},"value":[1764890000,"99.5"]}]}})");
        });

    const int metricsPort = sluice::testing::freeLoopbackPort();
    ChildProcess controller({kController, "--kubeconfig", cluster.kubeconfig, "--control-namespace",
                             "sluice", "--repo-cache-dir", cluster.dir.file("cache"),
                             "--metrics-addr", loopback(metricsPort), "--metrics-server",
                             prometheus.url()});
    ASSERT_TRUE(controller.waitForOutput("canary controller started", 30s))
        << controller.stderrText();
    EXPECT_TRUE(eventually([&] {
        auto canary = cluster.server.get("sluice.io/v1alpha1", "Canary", "shop", "cart");
        return canary &&
               canary->value("/status/phase"_json_pointer, std::string()) == "Initialized";
    })) << controller.stderrText();
    EXPECT_TRUE(cluster.server.get("apps/v1", "Deployment", "shop", "cart-primary").has_value());
    for (const char* svc : {"cart", "cart-primary", "cart-canary"})
        EXPECT_TRUE(cluster.server.get("v1", "Service", "shop", svc).has_value()) << svc;
    auto target = cluster.server.get("apps/v1", "Deployment", "shop", "cart");
    EXPECT_EQ(target->value("/spec/replicas"_json_pointer, -1), 0) << "the target rests at zero";

    EXPECT_TRUE(eventually([&] {
        auto [status, body] = httpGet(metricsPort, "/metrics");
        if (status != 200) return false;
        auto page = sluice::testing::parseExposition(body);
        return page.value("sluice_canary_phase",
                          {{"namespace", "shop"}, {"name", "cart"}, {"phase", "Initialized"}}) ==
                   1 &&
               page.value("sluice_canary_status", {{"namespace", "shop"}, {"name", "cart"}}) == 1 &&
               page.value("sluice_reconcile_total",
                          {{"controller", "canary"}, {"result", "success"}})
                       .value_or(0) > 0;
    })) << httpGet(metricsPort, "/metrics").second;

    // A new image starts an analysis: two passing iterations at 99.5 % promote it, and the
    // last value shows in /metrics.
    sluice::kube::RestClient client(sluice::kube::loadKubeconfig(cluster.kubeconfig));
    client.patch(
        {"apps", "v1", "Deployment"}, "shop", "cart", sluice::kube::PatchType::Merge,
        R"({"spec":{"template":{"spec":{"containers":[{"name":"cart","image":"cart:2"}]}}}})");
    EXPECT_TRUE(eventually(
        [&] {
            auto primary = cluster.server.get("apps/v1", "Deployment", "shop", "cart-primary");
            auto canary = cluster.server.get("sluice.io/v1alpha1", "Canary", "shop", "cart");
            return primary &&
                   primary->value("/spec/template/spec/containers/0/image"_json_pointer,
                                  std::string()) == "cart:2" &&
                   canary->value("/status/phase"_json_pointer, std::string()) == "Succeeded";
        },
        60s))
        << controller.stderrText();
    EXPECT_GE(queries.load(), 2);
    auto page = sluice::testing::parseExposition(httpGet(metricsPort, "/metrics").second);
    EXPECT_EQ(
        page.value("sluice_canary_metric_value",
                   {{"namespace", "shop"}, {"name", "cart"}, {"metric", "request-success-rate"}}),
        99.5);

    ASSERT_NO_FATAL_FAILURE(expectCleanStop(controller, 30s));
}
