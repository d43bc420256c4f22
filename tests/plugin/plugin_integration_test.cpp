// The real kubectl-sluice binary (and `kubectl sluice` through the real kubectl) against the
// Kubernetes API test server, with real git repositories and, for sync/rollback/diff end to
// end, the real Application controller in this process.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>

#include "apiserver/api_server.h"
#include "git_http_server.h"
#include "sluice/appcontroller/controller.h"
#include "sluice/appengine/spec.h"
#include "sluice/cache/informer.h"
#include "sluice/canaryengine/time_format.h"
#include "sluice/git/git.h"
#include "sluice/kube/client.h"
#include "sluice/kube/config.h"
#include "sluice/util/yaml_json.h"
#include "tempdir/tempdir.h"
#include "test_repo.h"
#include "testutil/tools.h"

extern char** environ;

namespace sluice::plugintest {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kControlNs = "sluice";
constexpr const char* kDestNs = "demo";
const kube::GroupVersionKind kApplication{"sluice.io", "v1alpha1", "Application"};
const kube::GroupVersionKind kCanary{"sluice.io", "v1alpha1", "Canary"};
const kube::GroupVersionKind kConfigMap{"", "v1", "ConfigMap"};
const kube::GroupVersionKind kDeployment{"apps", "v1", "Deployment"};

struct Ran {
    int code = -1;
    std::string out;
    std::string err;
};

std::string readFile(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Runs argv (searched in PATH when argv[0] has no slash) with the test's environment plus
// `env`, stdin from /dev/null, and waits at most two minutes.
Ran runProgram(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
               const fs::path& scratch) {
    static int counter = 0;
    const std::string base = (scratch / ("run-" + std::to_string(++counter))).string();
    const std::string outPath = base + ".out", errPath = base + ".err";
    std::map<std::string, std::string> vars;
    for (char** e = environ; *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : env) vars[k] = v;
    std::vector<std::string> envStrings;
    for (const auto& [k, v] : vars) envStrings.push_back(k + "=" + v);
    std::vector<char*> envp, args;
    for (auto& s : envStrings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argvCopy = argv;
    for (auto& s : argvCopy) args.push_back(s.data());
    args.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        int in = ::open("/dev/null", O_RDONLY);
        int out = ::open(outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = ::open(errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(in, 0);
        ::dup2(out, 1);
        ::dup2(err, 2);
        ::execvpe(args[0], args.data(), envp.data());
        ::_exit(127);
    }
    Ran r;
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    int status = 0;
    for (;;) {
        pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) break;
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            r.err = "timed out\n";
            break;
        }
        std::this_thread::sleep_for(10ms);
    }
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = readFile(outPath);
    r.err += readFile(errPath);
    fs::remove(outPath);
    fs::remove(errPath);
    return r;
}

std::vector<std::string> linesOf(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
}

bool hasLine(const std::string& text, const std::string& line) {
    for (const auto& l : linesOf(text))
        if (l == line) return true;
    return false;
}

std::string trim(std::string s) {
    while (!s.empty() && s.back() == ' ') s.pop_back();
    while (!s.empty() && s.front() == ' ') s.erase(s.begin());
    return s;
}

// A kubectl-style table: headers are separated by 3+ spaces (words inside one by a single
// space), every cell starts where its header starts. Also checks kubectl's widths: each column
// is max(6, widest cell + 3) wide.
struct Table {
    std::vector<std::string> headers;
    std::vector<std::map<std::string, std::string>> rows;
    std::string error;  // what is wrong with the layout, if anything
    const std::map<std::string, std::string>* row(const std::string& column,
                                                  const std::string& value) const {
        for (const auto& r : rows)
            if (r.count(column) && r.at(column) == value) return &r;
        return nullptr;
    }
};

Table parseTable(const std::vector<std::string>& lines) {
    Table t;
    if (lines.empty()) {
        t.error = "no lines";
        return t;
    }
    const std::string& h = lines[0];
    std::vector<std::size_t> starts;
    for (std::size_t i = 0; i < h.size();) {
        if (h[i] == ' ') {
            ++i;
            continue;
        }
        starts.push_back(i);
        std::size_t end = i;
        while (end < h.size() && !(h[end] == ' ' && (end + 1 >= h.size() || h[end + 1] == ' ')))
            ++end;
        t.headers.push_back(h.substr(i, end - i));
        i = end;
    }
    std::vector<std::size_t> widths;
    for (const auto& hd : t.headers) widths.push_back(hd.size());
    for (std::size_t li = 1; li < lines.size(); ++li) {
        const std::string& l = lines[li];
        std::map<std::string, std::string> row;
        for (std::size_t c = 0; c < starts.size(); ++c) {
            std::string cell;
            if (starts[c] < l.size()) {
                std::size_t len =
                    c + 1 < starts.size() ? starts[c + 1] - starts[c] : std::string::npos;
                cell = l.substr(starts[c], len);
            }
            if (c + 1 < starts.size() && !cell.empty() &&
                cell.find("   ", cell.find_last_not_of(' ') + 1) == std::string::npos &&
                cell.back() != ' ')
                t.error = "cell runs into the next column: \"" + l + "\"";
            cell = trim(cell);
            widths[c] = std::max(widths[c], cell.size());
            row[t.headers[c]] = cell;
        }
        t.rows.push_back(row);
    }
    for (std::size_t c = 0; c + 1 < starts.size(); ++c) {
        std::size_t want = std::max<std::size_t>(6, widths[c] + 3);
        if (starts[c + 1] - starts[c] != want)
            t.error = "column " + t.headers[c] + " is " +
                      std::to_string(starts[c + 1] - starts[c]) + " wide, kubectl makes it " +
                      std::to_string(want);
    }
    return t;
}

Table parseTable(const std::string& text) {
    return parseTable(linesOf(text));
}

// The lines of `text` from the one starting with `firstHeader` to the next blank line.
std::vector<std::string> section(const std::string& text, const std::string& firstHeader) {
    std::vector<std::string> out;
    bool in = false;
    for (const auto& l : linesOf(text)) {
        if (!in && l.rfind(firstHeader, 0) == 0) in = true;
        if (in && l.empty()) break;
        if (in) out.push_back(l);
    }
    return out;
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) return cond();
        std::this_thread::sleep_for(25ms);
    }
    return true;
}

std::string configMapYaml(const std::string& name, const std::string& version) {
    return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name +
           "\ndata:\n  mode: demo\n  version: \"" + version + "\"\n";
}

const char* kDeploymentYaml = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: main
        image: registry.example/web:1.0
)";

class PluginTest : public ::testing::Test {
  protected:
    void SetUp() override {
        server_.start();
        for (const char* crd :
             {"/crds/sluice.io_applications.yaml", "/crds/sluice.io_canaries.yaml"})
            for (const auto& doc :
                 yamlDocumentsToJson(readFile(std::string(SLUICE_SOURCE_DIR) + crd)))
                server_.create(doc);
        for (const char* ns : {kControlNs, kDestNs})
            server_.create(
                {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
        kubeconfig_ = server_.writeKubeconfig((tmp_.path() / "kubeconfig").string());
        auto cfg = kube::loadKubeconfig(kubeconfig_);
        cfg.qps = 0;
        client_ = std::make_unique<kube::RestClient>(cfg);
        ASSERT_TRUE(eventually([&] {
            try {
                client_->resourceFor(kApplication);
                client_->resourceFor(kCanary);
                return true;
            } catch (const std::exception&) {
                return false;
            }
        })) << "CRDs not served";
        fs::create_directories(tmp_.path() / "home");
        repo_ = std::make_unique<testing::TestRepo>(tmp_.path() / "root" / "repo");
        repo_->write("app/settings.yaml", configMapYaml("settings", "1"));
        repo_->write("app/web.yaml", kDeploymentYaml);
        sha1_ = repo_->commit("v1");
    }

    void TearDown() override {
        if (controller_) controller_->stop();
        controller_.reset();
        if (informers_) informers_->stopAll();
        informers_.reset();
        git_.reset();
        client_.reset();
        server_.stop();
    }

    std::map<std::string, std::string> pluginEnv() const {
        return {{"KUBECONFIG", kubeconfig_},
                {"HOME", (tmp_.path() / "home").string()},
                {"XDG_CACHE_HOME", (tmp_.path() / "home" / "cache").string()},
                {"USER", "tester"},
                {"SLUICE_HELM_PATH", testing::helmPath()},
                {"SLUICE_KUBECTL_PATH", testing::kubectlPath()}};
    }

    Ran sluice(std::vector<std::string> args) {
        args.insert(args.begin(), KUBECTL_SLUICE_BIN);
        return runProgram(args, pluginEnv(), tmp_.path());
    }

    json application(const std::string& name, json syncPolicy = json(),
                     const std::string& ns = kControlNs) const {
        json a = {
            {"apiVersion", "sluice.io/v1alpha1"},
            {"kind", "Application"},
            {"metadata", {{"name", name}, {"namespace", ns}}},
            {"spec",
             {{"project", "default"},
              {"source", {{"repoURL", repo_->url()}, {"targetRevision", "main"}, {"path", "app"}}},
              {"destination",
               {{"server", "https://kubernetes.default.svc"}, {"namespace", kDestNs}}}}}};
        if (!syncPolicy.is_null()) a["spec"]["syncPolicy"] = std::move(syncPolicy);
        return a;
    }

    json getApp(const std::string& name, const std::string& ns = kControlNs) {
        return client_->get(kApplication, ns, name);
    }

    void setStatus(const kube::GroupVersionKind& gvk, const std::string& ns,
                   const std::string& name, const json& status) {
        json obj = client_->get(gvk, ns, name);
        obj["status"] = status;
        client_->updateStatus(obj);
    }

    std::string configMapValue(const std::string& key) {
        auto cm = server_.get("v1", "ConfigMap", kDestNs, "settings");
        if (!cm) return "";
        return (*cm)["data"].value(key, "");
    }

    void startController() {
        git_ = std::make_unique<git::LibGit2Source>(tmp_.path() / "controller-git");
        informers_ = std::make_unique<cache::SharedInformerFactory>(*client_);
        appcontroller::Options o;
        o.controlNamespace = kControlNs;
        o.concurrency = 2;
        o.pollInterval = 10min;
        o.healthPollInterval = 50ms;
        o.syncTimeout = 60s;
        controller_ =
            std::make_unique<appcontroller::ApplicationController>(*client_, *informers_, *git_, o);
        controller_->start();
        ASSERT_TRUE(controller_->waitForSync(30s));
    }

    json canary(const std::string& name) const {
        return {
            {"apiVersion", "sluice.io/v1alpha1"},
            {"kind", "Canary"},
            {"metadata", {{"name", name}, {"namespace", kDestNs}}},
            {"spec",
             {{"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", name}}},
              {"service", {{"port", 9898}}},
              {"analysis",
               {{"interval", "1m"}, {"threshold", 5}, {"maxWeight", 50}, {"stepWeight", 10}}}}}};
    }

    testing::TempDir tmp_;
    testing::ApiServer server_;
    std::string kubeconfig_;
    std::unique_ptr<kube::RestClient> client_;
    std::unique_ptr<testing::TestRepo> repo_;
    std::string sha1_;
    std::unique_ptr<git::LibGit2Source> git_;
    std::unique_ptr<cache::SharedInformerFactory> informers_;
    std::unique_ptr<appcontroller::ApplicationController> controller_;
};

TEST_F(PluginTest, UsageAndExitCodes) {
    Ran none = sluice({});
    EXPECT_EQ(none.code, 2);
    EXPECT_NE(none.err.find("a command is required"), std::string::npos) << none.err;
    Ran help = sluice({"--help"});
    EXPECT_EQ(help.code, 0);
    for (const char* cmd :
         {"app list", "app get", "app diff", "app manifests", "app sync", "app rollback",
          "app history", "app refresh", "canary list", "canary status",
          "canary promote|abort|retry", "project list", "project get"})
        EXPECT_NE(help.out.find(cmd), std::string::npos) << cmd;
    EXPECT_EQ(sluice({"app", "frobnicate"}).code, 2);
    EXPECT_EQ(sluice({"app", "get"}).code, 2);
    EXPECT_EQ(sluice({"app", "list", "--prune"}).code, 2);
    EXPECT_EQ(sluice({"app", "sync", "x", "-o", "json"}).code, 2);
    Ran missing = sluice({"app", "get", "nope", "-n", kControlNs});
    EXPECT_EQ(missing.code, 1);
    EXPECT_NE(missing.err.find("NotFound"), std::string::npos) << missing.err;
    // --context picks a kubeconfig context (writeKubeconfig names its context "test").
    EXPECT_EQ(sluice({"app", "list", "-n", kControlNs, "--context", "test"}).code, 0);
    Ran badContext = sluice({"app", "list", "--context=nope"});
    EXPECT_EQ(badContext.code, 1);
    EXPECT_NE(badContext.err.find("nope"), std::string::npos) << badContext.err;
    // A kubeconfig that does not exist is a one-line error, exit 1.
    Ran badConfig = sluice({"app", "list", "--kubeconfig", "/nonexistent/kubeconfig"});
    EXPECT_EQ(badConfig.code, 1);
    EXPECT_NE(badConfig.err.find("/nonexistent/kubeconfig"), std::string::npos) << badConfig.err;
}

TEST_F(PluginTest, AppListTablesAndOutputFormats) {
    client_->create(application("guestbook", {{"automated", {{"prune", true}}}}));
    client_->create(application("manual"));
    client_->create(application("elsewhere", json(), kDestNs));
    setStatus(kApplication, kControlNs, "guestbook",
              {{"sync", {{"status", "Synced"}, {"revision", sha1_}}},
               {"health", {{"status", "Healthy"}}}});

    Ran r = sluice({"app", "list", "-n", kControlNs});
    ASSERT_EQ(r.code, 0) << r.err;
    Table t = parseTable(r.out);
    EXPECT_EQ(t.error, "") << r.out;
    EXPECT_EQ(t.headers, (std::vector<std::string>{"NAME", "SYNC STATUS", "HEALTH", "REVISION",
                                                   "SYNCPOLICY", "AGE"}))
        << r.out;
    ASSERT_EQ(t.rows.size(), 2u) << r.out;
    auto* g = t.row("NAME", "guestbook");
    ASSERT_TRUE(g) << r.out;
    EXPECT_EQ(g->at("SYNC STATUS"), "Synced");
    EXPECT_EQ(g->at("HEALTH"), "Healthy");
    EXPECT_EQ(g->at("REVISION"), sha1_.substr(0, 7));
    EXPECT_EQ(g->at("SYNCPOLICY"), "Auto-Prune");
    EXPECT_TRUE(std::regex_match(g->at("AGE"), std::regex("[0-9]+s"))) << g->at("AGE");
    auto* m = t.row("NAME", "manual");
    ASSERT_TRUE(m) << r.out;
    EXPECT_EQ(m->at("SYNCPOLICY"), "<none>");
    EXPECT_EQ(m->at("SYNC STATUS"), "");

    Ran all = sluice({"app", "list", "-A"});
    ASSERT_EQ(all.code, 0) << all.err;
    Table ta = parseTable(all.out);
    EXPECT_EQ(ta.error, "") << all.out;
    ASSERT_EQ(ta.headers.front(), "NAMESPACE");
    ASSERT_EQ(ta.rows.size(), 3u) << all.out;
    ASSERT_TRUE(ta.row("NAME", "elsewhere"));
    EXPECT_EQ(ta.row("NAME", "elsewhere")->at("NAMESPACE"), kDestNs);

    Ran wide = sluice({"app", "list", "-n", kControlNs, "-o", "wide"});
    ASSERT_EQ(wide.code, 0) << wide.err;
    Table tw = parseTable(wide.out);
    EXPECT_EQ(tw.error, "") << wide.out;
    ASSERT_TRUE(tw.row("NAME", "guestbook")) << wide.out;
    EXPECT_EQ(tw.row("NAME", "guestbook")->at("REPO"), repo_->url());
    EXPECT_EQ(tw.row("NAME", "guestbook")->at("PATH"), "app");
    EXPECT_EQ(tw.row("NAME", "guestbook")->at("TARGET"), "main");

    Ran js = sluice({"app", "list", "-n", kControlNs, "-o", "json"});
    ASSERT_EQ(js.code, 0) << js.err;
    json list = json::parse(js.out);
    EXPECT_EQ(list["kind"], "List");
    std::set<std::string> names;
    for (const auto& i : list["items"]) names.insert(i["metadata"]["name"].get<std::string>());
    EXPECT_EQ(names, (std::set<std::string>{"guestbook", "manual"}));
    Ran ym = sluice({"app", "list", "-n", kControlNs, "-oyaml"});
    ASSERT_EQ(ym.code, 0) << ym.err;
    EXPECT_EQ(yamlToJson(ym.out), list);
    Ran nm = sluice({"app", "list", "--namespace=sluice", "-o", "name"});
    EXPECT_EQ(nm.out, "application.sluice.io/guestbook\napplication.sluice.io/manual\n");

    // The kubeconfig context's namespace (default) is used without -n.
    Ran def = sluice({"app", "list"});
    EXPECT_EQ(def.code, 0);
    EXPECT_EQ(def.out, "");
    EXPECT_EQ(def.err, "No resources found in default namespace.\n");
}

TEST_F(PluginTest, AppGetSummaryConditionsAndResources) {
    client_->create(application("guestbook", {{"automated", {{"prune", true}}}}));
    setStatus(kApplication, kControlNs, "guestbook",
              {{"sync", {{"status", "OutOfSync"}, {"revision", sha1_}}},
               {"health", {{"status", "Progressing"}}},
               {"conditions", json::array({{{"type", "SyncError"},
                                            {"message", "one or more objects failed to apply"},
                                            {"lastTransitionTime", "2026-12-04T10:00:00Z"}}})},
               {"operationState",
                {{"phase", "Failed"},
                 {"message", "one or more objects failed to apply"},
                 {"startedAt", "2026-12-04T10:00:00Z"},
                 {"finishedAt", "2026-12-04T10:00:05Z"},
                 {"operation", {{"sync", json::object()}, {"initiatedBy", {{"username", "ann"}}}}},
                 {"syncResult", {{"revision", sha1_}}}}},
               {"resources", json::array({{{"group", ""},
                                           {"version", "v1"},
                                           {"kind", "ConfigMap"},
                                           {"namespace", kDestNs},
                                           {"name", "settings"},
                                           {"status", "Synced"},
                                           {"health", {{"status", "Healthy"}}}},
                                          {{"group", "apps"},
                                           {"version", "v1"},
                                           {"kind", "Deployment"},
                                           {"namespace", kDestNs},
                                           {"name", "web"},
                                           {"status", "OutOfSync"},
                                           {"health", {{"status", "Missing"}}}}})}});
    Ran r = sluice({"app", "get", "guestbook", "-n", kControlNs});
    ASSERT_EQ(r.code, 0) << r.err;
    for (const std::string line :
         {"Name:               sluice/guestbook", "Project:            default",
          "Server:             https://kubernetes.default.svc", "Namespace:          demo",
          "Target:             main", "Path:               app",
          "Sync Policy:        Automated (Prune)", "Health Status:      Progressing",
          "Phase:              Failed", "Initiated By:       ann"})
        EXPECT_TRUE(hasLine(r.out, line)) << line << "\n" << r.out;
    EXPECT_TRUE(hasLine(r.out, "Repo:               " + repo_->url())) << r.out;
    EXPECT_TRUE(
        hasLine(r.out, "Sync Status:        OutOfSync to main (" + sha1_.substr(0, 7) + ")"))
        << r.out;
    Table conditions = parseTable(section(r.out, "CONDITION"));
    EXPECT_EQ(conditions.error, "") << r.out;
    ASSERT_TRUE(conditions.row("CONDITION", "SyncError")) << r.out;
    EXPECT_EQ(conditions.row("CONDITION", "SyncError")->at("MESSAGE"),
              "one or more objects failed to apply");
    Table resources = parseTable(section(r.out, "GROUP"));
    EXPECT_EQ(resources.error, "") << r.out;
    EXPECT_EQ(resources.headers,
              (std::vector<std::string>{"GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH"}));
    ASSERT_EQ(resources.rows.size(), 2u) << r.out;
    auto* web = resources.row("NAME", "web");
    ASSERT_TRUE(web);
    EXPECT_EQ(web->at("GROUP"), "apps");
    EXPECT_EQ(web->at("KIND"), "Deployment");
    EXPECT_EQ(web->at("STATUS"), "OutOfSync");
    EXPECT_EQ(web->at("HEALTH"), "Missing");
    EXPECT_EQ(resources.row("NAME", "settings")->at("GROUP"), "");

    Ran js = sluice({"app", "get", "guestbook", "-n", kControlNs, "-o", "json"});
    ASSERT_EQ(js.code, 0) << js.err;
    json a = json::parse(js.out);
    EXPECT_EQ(a["metadata"]["name"], "guestbook");
    EXPECT_EQ(a["status"]["health"]["status"], "Progressing");
    Ran ym = sluice({"app", "get", "guestbook", "-n", kControlNs, "-o", "yaml"});
    ASSERT_EQ(ym.code, 0) << ym.err;
    EXPECT_EQ(yamlToJson(ym.out), a);
}

TEST_F(PluginTest, AppHistoryTableAndJson) {
    client_->create(application("guestbook"));
    Ran empty = sluice({"app", "history", "guestbook", "-n", kControlNs});
    EXPECT_EQ(empty.code, 0);
    EXPECT_NE(empty.err.find("No history"), std::string::npos);
    const std::string sha2 = std::string(40, 'b');
    json history = json::array({{{"id", 0},
                                 {"revision", sha1_},
                                 {"deployedAt", "2026-12-04T10:00:00Z"},
                                 {"deployStartedAt", "2026-12-04T09:59:58Z"}},
                                {{"id", 1},
                                 {"revision", sha2},
                                 {"deployedAt", "2026-12-04T11:00:00Z"},
                                 {"deployStartedAt", "2026-12-04T10:59:58Z"}}});
    setStatus(kApplication, kControlNs, "guestbook", {{"history", history}});
    Ran r = sluice({"app", "history", "guestbook", "-n", kControlNs});
    ASSERT_EQ(r.code, 0) << r.err;
    Table t = parseTable(r.out);
    EXPECT_EQ(t.error, "") << r.out;
    EXPECT_EQ(t.headers, (std::vector<std::string>{"ID", "DATE", "REVISION"}));
    ASSERT_EQ(t.rows.size(), 2u);
    EXPECT_EQ(t.rows[0].at("ID"), "0");
    EXPECT_EQ(t.rows[0].at("DATE"), "2026-12-04T10:00:00Z");
    EXPECT_EQ(t.rows[0].at("REVISION"), sha1_);
    EXPECT_EQ(t.rows[1].at("REVISION"), sha2);
    Ran js = sluice({"app", "history", "guestbook", "-n", kControlNs, "-o", "json"});
    ASSERT_EQ(js.code, 0) << js.err;
    EXPECT_EQ(json::parse(js.out), history);
    Ran ym = sluice({"app", "history", "guestbook", "-n", kControlNs, "-o", "yaml"});
    EXPECT_EQ(yamlToJson(ym.out), history);
}

TEST_F(PluginTest, AppSyncWritesTheOperationTheControllerParses) {
    client_->create(application("manual"));
    Ran r = sluice({"app", "sync", "manual", "-n", kControlNs, "--revision", "main", "--prune",
                    "--sync-option", "CreateNamespace=true"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("sync requested"), std::string::npos) << r.out;
    json a = getApp("manual");
    ASSERT_TRUE(a.contains("operation")) << a.dump(2);
    EXPECT_EQ(a["operation"], (json{{"sync",
                                     {{"revision", "main"},
                                      {"prune", true},
                                      {"syncOptions", json::array({"CreateNamespace=true"})}}},
                                    {"initiatedBy", {{"username", "tester"}}}}))
        << a.dump(2);
    appengine::ParseResult parsed = appengine::parseApplication(a);
    EXPECT_TRUE(parsed.errors.empty()) << parsed.errors.front();
    ASSERT_TRUE(parsed.operation);
    EXPECT_EQ(parsed.operation->revision, "main");
    EXPECT_TRUE(parsed.operation->prune);
    EXPECT_EQ(parsed.operation->initiatedBy, "tester");

    // One operation at a time, as Argo CD.
    Ran again = sluice({"app", "sync", "manual", "-n", kControlNs});
    EXPECT_EQ(again.code, 1);
    EXPECT_NE(again.err.find("already"), std::string::npos) << again.err;

    client_->patch(kApplication, kControlNs, "manual", kube::PatchType::Merge,
                   R"({"operation":null})");
    Ran dry = sluice({"app", "sync", "manual", "-n", kControlNs, "--dry-run"});
    ASSERT_EQ(dry.code, 0) << dry.err;
    a = getApp("manual");
    EXPECT_EQ(a["operation"]["sync"], (json{{"dryRun", true}})) << a.dump(2);
    parsed = appengine::parseApplication(a);
    ASSERT_TRUE(parsed.operation);
    EXPECT_TRUE(parsed.operation->dryRun);
    EXPECT_EQ(parsed.operation->revision, "");
}

TEST_F(PluginTest, AppRollbackAndRefresh) {
    client_->create(application("manual"));
    client_->create(application("auto", {{"automated", json::object()}}));
    const std::string sha2 = std::string(40, 'c');
    json history =
        json::array({{{"id", 3}, {"revision", sha1_}, {"deployedAt", "2026-12-04T10:00:00Z"}},
                     {{"id", 4}, {"revision", sha2}, {"deployedAt", "2026-12-04T11:00:00Z"}}});
    setStatus(kApplication, kControlNs, "manual", {{"history", history}});
    setStatus(kApplication, kControlNs, "auto", {{"history", history}});

    EXPECT_EQ(sluice({"app", "rollback", "manual", "x", "-n", kControlNs}).code, 2);
    Ran unknown = sluice({"app", "rollback", "manual", "7", "-n", kControlNs});
    EXPECT_EQ(unknown.code, 1);
    EXPECT_NE(unknown.err.find("no history entry with ID 7"), std::string::npos) << unknown.err;
    Ran automated = sluice({"app", "rollback", "auto", "3", "-n", kControlNs});
    EXPECT_EQ(automated.code, 1);
    EXPECT_NE(automated.err.find("auto-sync"), std::string::npos) << automated.err;
    EXPECT_FALSE(getApp("auto").contains("operation"));

    Ran r = sluice({"app", "rollback", "manual", "3", "-n", kControlNs});
    ASSERT_EQ(r.code, 0) << r.err;
    json a = getApp("manual");
    EXPECT_EQ(a["operation"],
              (json{{"sync", {{"revision", sha1_}}}, {"initiatedBy", {{"username", "tester"}}}}))
        << a.dump(2);
    appengine::ParseResult parsed = appengine::parseApplication(a);
    ASSERT_TRUE(parsed.operation);
    EXPECT_EQ(parsed.operation->revision, sha1_);

    Ran refresh = sluice({"app", "refresh", "manual", "-n", kControlNs});
    ASSERT_EQ(refresh.code, 0) << refresh.err;
    EXPECT_EQ(getApp("manual")["metadata"]["annotations"]["sluice.io/refresh"], "normal");
    Ran hard = sluice({"app", "refresh", "auto", "-n", kControlNs, "--hard"});
    ASSERT_EQ(hard.code, 0) << hard.err;
    EXPECT_EQ(getApp("auto")["metadata"]["annotations"]["sluice.io/refresh"], "hard");
}

// With the real controller: sync, an empty diff once synced, drift and a missing object in the
// diff, a new commit, and a rollback to the first history entry.
TEST_F(PluginTest, SyncDiffAndRollbackWithTheController) {
    startController();
    client_->create(application("e2e"));
    ASSERT_TRUE(eventually([&] {
        return getApp("e2e").value("status", json::object()).contains("sync");
    })) << getApp("e2e").dump(2);

    // Nothing in the cluster yet: both objects are all additions.
    Ran before = sluice({"app", "diff", "e2e", "-n", kControlNs});
    EXPECT_EQ(before.code, 1) << before.err;
    EXPECT_NE(before.out.find("===== /ConfigMap demo/settings ======\n"), std::string::npos)
        << before.out;
    EXPECT_NE(before.out.find("===== apps/Deployment demo/web ======\n"), std::string::npos);
    EXPECT_NE(before.out.find("+++ desired/v1.ConfigMap.demo.settings\n@@ -0,0 +1,"),
              std::string::npos)
        << before.out;
    for (const auto& l : linesOf(before.out))
        EXPECT_FALSE(l.rfind("-", 0) == 0 && l.rfind("---", 0) != 0) << l;

    Ran sync = sluice({"app", "sync", "e2e", "-n", kControlNs, "--wait", "--timeout", "60s"});
    ASSERT_EQ(sync.code, 0) << sync.out << sync.err << getApp("e2e").dump(2);
    EXPECT_TRUE(hasLine(sync.out, "Phase:    Succeeded")) << sync.out;
    EXPECT_EQ(configMapValue("version"), "1");
    ASSERT_TRUE(eventually([&] {
        return getApp("e2e")["status"]["sync"].value("status", "") == "Synced";
    })) << getApp("e2e").dump(2);

    // The controller says Synced: so does the diff.
    Ran clean = sluice({"app", "diff", "e2e", "-n", kControlNs});
    EXPECT_EQ(clean.code, 0) << clean.out << clean.err;
    EXPECT_EQ(clean.out, "");

    // Drift by hand, and a deleted Deployment.
    client_->patch(kConfigMap, kDestNs, "settings", kube::PatchType::Merge,
                   R"({"data":{"version":"9"}})");
    client_->remove(kDeployment, kDestNs, "web");
    ASSERT_TRUE(eventually([&] { return !server_.get("apps/v1", "Deployment", kDestNs, "web"); }));
    Ran drift = sluice({"app", "diff", "e2e", "-n", kControlNs});
    EXPECT_EQ(drift.code, 1) << drift.err;
    const std::string cmPart = drift.out.substr(0, drift.out.find("===== apps/"));
    EXPECT_NE(cmPart.find("===== /ConfigMap demo/settings ======\n"
                          "--- live/v1.ConfigMap.demo.settings\n"
                          "+++ desired/v1.ConfigMap.demo.settings\n@@ "),
              std::string::npos)
        << drift.out;
    std::vector<std::string> removed, added;
    for (const auto& l : linesOf(cmPart)) {
        if (l.rfind("-", 0) == 0 && l.rfind("---", 0) != 0) removed.push_back(l);
        if (l.rfind("+", 0) == 0 && l.rfind("+++", 0) != 0) added.push_back(l);
    }
    ASSERT_EQ(removed.size(), 1u) << drift.out;
    ASSERT_EQ(added.size(), 1u) << drift.out;
    EXPECT_NE(removed[0].find("version:"), std::string::npos);
    EXPECT_NE(removed[0].find("9"), std::string::npos);
    EXPECT_NE(added[0].find("version:"), std::string::npos);
    EXPECT_NE(added[0].find("1"), std::string::npos);
    const std::string depPart = drift.out.substr(drift.out.find("===== apps/Deployment demo/web"));
    EXPECT_NE(depPart.find("@@ -0,0 +1,"), std::string::npos) << depPart;
    EXPECT_NE(depPart.find("\n+kind: Deployment\n"), std::string::npos) << depPart;
    EXPECT_NE(depPart.find("\n+        - image: registry.example/web:1.0\n"), std::string::npos)
        << depPart;
    // Server fields never appear; the other manager's managedFields entry neither.
    EXPECT_EQ(drift.out.find("resourceVersion"), std::string::npos);
    EXPECT_EQ(drift.out.find("managedFields"), std::string::npos);
    Ran colour = sluice({"app", "diff", "e2e", "-n", kControlNs, "--color=always"});
    EXPECT_EQ(colour.code, 1);
    EXPECT_NE(colour.out.find("\033[31m-"), std::string::npos);
    EXPECT_NE(colour.out.find("\033[32m+"), std::string::npos);
    EXPECT_EQ(drift.out.find("\033["), std::string::npos) << "no colour when not a terminal";

    // A second commit, synced; then roll back to history ID 0 (the first commit).
    repo_->write("app/settings.yaml", configMapYaml("settings", "2"));
    const std::string sha2 = repo_->commit("v2");
    Ran sync2 = sluice({"app", "sync", "e2e", "-n", kControlNs, "--wait"});
    ASSERT_EQ(sync2.code, 0) << sync2.out << sync2.err << getApp("e2e").dump(2);
    EXPECT_TRUE(hasLine(sync2.out, "Revision: " + sha2)) << sync2.out;
    EXPECT_EQ(configMapValue("version"), "2");
    Ran history = sluice({"app", "history", "e2e", "-n", kControlNs});
    Table h = parseTable(history.out);
    ASSERT_EQ(h.rows.size(), 2u) << history.out;
    EXPECT_EQ(h.rows[0].at("REVISION"), sha1_);
    EXPECT_EQ(h.rows[1].at("REVISION"), sha2);

    Ran rollback = sluice({"app", "rollback", "e2e", "0", "-n", kControlNs, "--wait"});
    ASSERT_EQ(rollback.code, 0) << rollback.out << rollback.err << getApp("e2e").dump(2);
    EXPECT_EQ(configMapValue("version"), "1");
    EXPECT_TRUE(server_.get("apps/v1", "Deployment", kDestNs, "web"));
    json st = getApp("e2e")["status"];
    ASSERT_EQ(st["history"].size(), 3u) << st.dump(2);
    EXPECT_EQ(st["history"][2]["revision"], sha1_);
    EXPECT_EQ(st["operationState"]["operation"]["initiatedBy"]["username"], "tester");

    // A refresh the controller takes: --wait returns once it removed the annotation.
    Ran refresh = sluice({"app", "refresh", "e2e", "-n", kControlNs, "--hard", "--wait"});
    ASSERT_EQ(refresh.code, 0) << refresh.out << refresh.err;
    EXPECT_NE(refresh.out.find("Sync Status:"), std::string::npos) << refresh.out;
    EXPECT_FALSE(getApp("e2e")["metadata"]
                     .value("annotations", json::object())
                     .contains("sluice.io/refresh"));

    // Against the rolled-back revision nothing differs; against the target (v2) one line does.
    Ran atSha1 = sluice({"app", "diff", "e2e", "-n", kControlNs, "--revision", sha1_});
    EXPECT_EQ(atSha1.code, 0) << atSha1.out << atSha1.err;
    ASSERT_TRUE(eventually(
        [&] { return getApp("e2e")["status"]["sync"].value("status", "") == "OutOfSync"; }));
    Ran atTarget = sluice({"app", "diff", "e2e", "-n", kControlNs});
    EXPECT_EQ(atTarget.code, 1) << atTarget.err;
    EXPECT_NE(atTarget.out.find("===== /ConfigMap demo/settings ======"), std::string::npos);
    EXPECT_EQ(atTarget.out.find("===== apps/Deployment"), std::string::npos) << atTarget.out;
}

// ignoreDifferences is honoured; a git error is exit code 2; credentials come from the
// repository Secret in the control namespace, as the controller takes them.
TEST_F(PluginTest, DiffHonoursIgnoreDifferencesCredentialsAndErrors) {
    const std::string password = "Plugin-Pa55";
    testing::GitHttpServer http(tmp_.path() / "root", "alice", password);
    json a = application("ign");
    a["spec"]["source"]["repoURL"] = http.url("repo");
    a["spec"]["ignoreDifferences"] =
        json::array({{{"kind", "ConfigMap"}, {"jsonPointers", json::array({"/data/version"})}}});
    client_->create(a);
    // Live: as applied by the controller, but version changed by someone else and the
    // Deployment present.
    for (const auto& doc :
         {yamlToJson(configMapYaml("settings", "5")), yamlToJson(kDeploymentYaml)}) {
        json obj = doc;
        obj["metadata"]["namespace"] = kDestNs;
        obj["metadata"]["annotations"]["sluice.io/tracking-id"] =
            "ign:" + std::string(obj["kind"] == "Deployment" ? "apps" : "") + "/" +
            obj["kind"].get<std::string>() + ":" + kDestNs + "/" +
            obj["metadata"]["name"].get<std::string>();
        kube::ApplyOptions ao;
        ao.fieldManager = "sluice";
        client_->apply(obj, ao);
    }
    // Without credentials the fetch fails: exit 2, and the password never shows.
    Ran noCreds = sluice({"app", "diff", "ign", "-n", kControlNs});
    EXPECT_EQ(noCreds.code, 2) << noCreds.out << noCreds.err;
    EXPECT_NE(noCreds.err.find("error:"), std::string::npos) << noCreds.err;

    client_->create({{"apiVersion", "v1"},
                     {"kind", "Secret"},
                     {"metadata",
                      {{"name", "repo"},
                       {"namespace", kControlNs},
                       {"labels", {{"sluice.io/secret-type", "repository"}}}}},
                     {"data",
                      {{"url", testing::base64Encode(http.url("repo"))},
                       {"username", testing::base64Encode("alice")},
                       {"password", testing::base64Encode(password)}}}});
    Ran ok = sluice({"app", "diff", "ign", "-n", kControlNs});
    EXPECT_EQ(ok.code, 0) << ok.out << ok.err;
    EXPECT_EQ(ok.out, "");
    auto auths = http.authorizations();
    EXPECT_NE(std::find(auths.begin(), auths.end(),
                        "Basic " + testing::base64Encode("alice:" + password)),
              auths.end());

    // Without the rule the version is a difference.
    client_->patch(kApplication, kControlNs, "ign", kube::PatchType::Merge,
                   R"({"spec":{"ignoreDifferences":null}})");
    Ran diff = sluice({"app", "diff", "ign", "-n", kControlNs});
    EXPECT_EQ(diff.code, 1) << diff.err;
    EXPECT_NE(diff.out.find("-  version: \"5\""), std::string::npos) << diff.out;
    EXPECT_NE(diff.out.find("+  version: \"1\""), std::string::npos) << diff.out;

    // A revision that does not exist.
    Ran bad = sluice({"app", "diff", "ign", "-n", kControlNs, "--revision", "no-such-branch"});
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.err.find("no-such-branch"), std::string::npos) << bad.err;
    EXPECT_EQ(bad.err.find(password), std::string::npos);
}

// app manifests renders as the controller does: here a Helm chart with a value file and a
// parameter, and a render error as a one-line message with exit code 1.
TEST_F(PluginTest, AppManifestsRendersTheSourceWithTheRealTools) {
    repo_->write("chart/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
    repo_->write("chart/values.yaml", "replicas: 1\ngreeting: hi\n");
    repo_->write("chart/values-prod.yaml", "replicas: 4\n");
    repo_->write(
        "chart/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-cm}\n"
        "data: {replicas: \"{{ .Values.replicas }}\", greeting: {{ .Values.greeting }}}\n");
    repo_->commit("chart");
    json a = application("charted");
    a["spec"]["source"]["path"] = "chart";
    a["spec"]["source"]["helm"] = {{"valueFiles", {"values-prod.yaml"}},
                                   {"parameters", {{{"name", "greeting"}, {"value", "hello"}}}}};
    client_->create(a);
    Ran out = sluice({"app", "manifests", "charted", "-n", kControlNs});
    ASSERT_EQ(out.code, 0) << out.err;
    EXPECT_NE(out.out.find("name: charted-cm"), std::string::npos) << out.out;
    EXPECT_NE(out.out.find("replicas: \"4\""), std::string::npos) << out.out;
    EXPECT_NE(out.out.find("greeting: hello"), std::string::npos) << out.out;

    repo_->write("chart/templates/broken.yaml", "{{ .Values.nope.deeper }}\n");
    repo_->commit("broken");
    Ran broken = sluice({"app", "manifests", "charted", "-n", kControlNs, "--refresh"});
    EXPECT_EQ(broken.code, 1);
    EXPECT_NE(broken.err.find("broken.yaml"), std::string::npos) << broken.err;
}

TEST_F(PluginTest, CanaryListStatusAndRequests) {
    client_->create(canary("podinfo"));
    client_->create(canary("backend"));
    setStatus(kCanary, kDestNs, "podinfo",
              {{"phase", "Progressing"},
               {"canaryWeight", 20},
               {"failedChecks", 1},
               {"iterations", 2},
               {"lastTransitionTime", "2026-12-04T10:00:00Z"},
               {"conditions",
                json::array({{{"type", "Promoted"},
                              {"status", "Unknown"},
                              {"reason", "Progressing"},
                              {"message", "New revision detected, progressing canary analysis."},
                              {"lastTransitionTime", "2026-12-04T10:00:00Z"}}})}});
    setStatus(kCanary, kDestNs, "backend",
              {{"phase", "Failed"},
               {"canaryWeight", 0},
               {"failedChecks", 5},
               {"lastTransitionTime", "2026-12-04T09:00:00Z"}});

    Ran list = sluice({"canary", "list", "-n", kDestNs});
    ASSERT_EQ(list.code, 0) << list.err;
    Table t = parseTable(list.out);
    EXPECT_EQ(t.error, "") << list.out;
    EXPECT_EQ(t.headers, (std::vector<std::string>{"NAME", "STATUS", "WEIGHT", "FAILEDCHECKS",
                                                   "LASTTRANSITIONTIME"}));
    ASSERT_TRUE(t.row("NAME", "podinfo")) << list.out;
    EXPECT_EQ(t.row("NAME", "podinfo")->at("STATUS"), "Progressing");
    EXPECT_EQ(t.row("NAME", "podinfo")->at("WEIGHT"), "20");
    EXPECT_EQ(t.row("NAME", "podinfo")->at("FAILEDCHECKS"), "1");
    EXPECT_EQ(t.row("NAME", "podinfo")->at("LASTTRANSITIONTIME"), "2026-12-04T10:00:00Z");
    EXPECT_EQ(t.row("NAME", "backend")->at("STATUS"), "Failed");
    Ran all = sluice({"canary", "list", "-A", "-o", "json"});
    ASSERT_EQ(all.code, 0) << all.err;
    EXPECT_EQ(json::parse(all.out)["items"].size(), 2u);
    EXPECT_EQ(sluice({"canary", "list", "-n", kDestNs, "-o", "name"}).out,
              "canary.sluice.io/backend\ncanary.sluice.io/podinfo\n");

    // kubectl's own table (CRD printer columns, served by the API server) agrees.
    if (sluice::testing::isExecutable(sluice::testing::kubectlPath())) {
        Ran k = runProgram({sluice::testing::kubectlPath(), "get", "canaries", "-n", kDestNs},
                           pluginEnv(), tmp_.path());
        ASSERT_EQ(k.code, 0) << k.err;
        Table kt = parseTable(k.out);
        for (const char* name : {"podinfo", "backend"})
            for (const char* col : {"STATUS", "WEIGHT", "FAILEDCHECKS", "LASTTRANSITIONTIME"})
                EXPECT_EQ(kt.row("NAME", name)->at(col), t.row("NAME", name)->at(col))
                    << name << " " << col << "\n"
                    << k.out << list.out;
    }

    Ran status = sluice({"canary", "status", "podinfo", "-n", kDestNs});
    ASSERT_EQ(status.code, 0) << status.err;
    for (const std::string line :
         {"Name:                 demo/podinfo", "Target:               Deployment/podinfo",
          "Phase:                Progressing", "Canary Weight:        20",
          "Primary Weight:       80", "Failed Checks:        1 (threshold 5)",
          "Iterations:           2"})
        EXPECT_TRUE(hasLine(status.out, line)) << line << "\n" << status.out;
    Table conditions = parseTable(section(status.out, "TYPE"));
    ASSERT_TRUE(conditions.row("TYPE", "Promoted")) << status.out;
    EXPECT_EQ(conditions.row("TYPE", "Promoted")->at("REASON"), "Progressing");
    Ran sy = sluice({"canary", "status", "podinfo", "-n", kDestNs, "-o", "yaml"});
    ASSERT_EQ(sy.code, 0);
    EXPECT_EQ(yamlToJson(sy.out)["status"]["canaryWeight"], 20);

    auto annotation = [&](const std::string& name, const std::string& key) {
        json c = client_->get(kCanary, kDestNs, name);
        return c["metadata"].value("annotations", json::object()).value(key, "");
    };
    auto recent = [](const std::string& ts) {
        auto t = canaryengine::parseTimestamp(ts);
        if (!t) return false;
        auto d = std::chrono::system_clock::now() - *t;
        return d > -5s && d < 60s;
    };
    Ran promote = sluice({"canary", "promote", "podinfo", "-n", kDestNs});
    ASSERT_EQ(promote.code, 0) << promote.err;
    EXPECT_TRUE(recent(annotation("podinfo", "sluice.io/promote")))
        << annotation("podinfo", "sluice.io/promote");
    Ran abort = sluice({"canary", "abort", "podinfo", "-n", kDestNs});
    ASSERT_EQ(abort.code, 0) << abort.err;
    EXPECT_TRUE(recent(annotation("podinfo", "sluice.io/abort")));
    Ran pending = sluice({"canary", "status", "podinfo", "-n", kDestNs});
    EXPECT_NE(pending.out.find("Pending Requests:     sluice.io/promote="), std::string::npos)
        << pending.out;

    // retry only after a failure; promote/abort only while a rollout is under way.
    Ran retryProgressing = sluice({"canary", "retry", "podinfo", "-n", kDestNs});
    EXPECT_EQ(retryProgressing.code, 1);
    EXPECT_EQ(annotation("podinfo", "sluice.io/retry"), "");
    Ran retry = sluice({"canary", "retry", "backend", "-n", kDestNs});
    ASSERT_EQ(retry.code, 0) << retry.err;
    EXPECT_TRUE(recent(annotation("backend", "sluice.io/retry")));
    Ran promoteFailed = sluice({"canary", "promote", "backend", "-n", kDestNs});
    EXPECT_EQ(promoteFailed.code, 1);
    EXPECT_NE(promoteFailed.err.find("Failed"), std::string::npos) << promoteFailed.err;
    EXPECT_EQ(annotation("backend", "sluice.io/promote"), "");
    EXPECT_EQ(sluice({"canary", "status", "nope", "-n", kDestNs}).code, 1);
}

// Installed beside kubectl (on PATH), the plugin runs as `kubectl sluice ...`.
TEST_F(PluginTest, RunsThroughKubectl) {
    const std::string kubectl = sluice::testing::kubectlPath();
    if (!sluice::testing::isExecutable(kubectl)) GTEST_SKIP() << "no kubectl at " << kubectl;
    client_->create(application("guestbook"));
    auto env = pluginEnv();
    const std::string binDir = fs::path(KUBECTL_SLUICE_BIN).parent_path().string();
    const char* path = std::getenv("PATH");
    env["PATH"] = binDir + ":" + (path ? path : "/usr/bin:/bin");
    Ran plugins = runProgram({kubectl, "plugin", "list"}, env, tmp_.path());
    EXPECT_NE(plugins.out.find("kubectl-sluice"), std::string::npos) << plugins.out << plugins.err;
    Ran list = runProgram({kubectl, "sluice", "app", "list", "-n", kControlNs}, env, tmp_.path());
    ASSERT_EQ(list.code, 0) << list.err;
    ASSERT_TRUE(parseTable(list.out).row("NAME", "guestbook")) << list.out;
    Ran missing =
        runProgram({kubectl, "sluice", "app", "get", "nope", "-n", kControlNs}, env, tmp_.path());
    EXPECT_EQ(missing.code, 1);
    EXPECT_NE(missing.err.find("NotFound"), std::string::npos) << missing.err;
    Ran usage = runProgram({kubectl, "sluice", "app"}, env, tmp_.path());
    EXPECT_EQ(usage.code, 2);
}

}  // namespace
}  // namespace sluice::plugintest
