// End-to-end benchmark of the sluice-controller process, run with its default flags, against any
// API server: the project's test API server (started here, as a separate process) or a real
// cluster (--kubeconfig). kubectl's figures come from the same run, on the same server.
//
//   sluice-bench-e2e [--kubeconfig PATH] [--runs R] [--objects N] [--refreshes F]
//                    [--apps A] [--objects-per-app M] [--clusters K]
//                    [--only sync|refresh|scale|clusters|takeover] [--skip-kubectl]
//
// Every figure is printed as median (min..max) over R runs (default 3):
//   sync     N fresh objects (ConfigMaps, Services, Deployments with 0 replicas,
//            ServiceAccounts) through one Application, beside one `kubectl apply
//            --server-side` and 8 of them at once on the same objects split in 8 (the server's
//            limit); target: within 1.2x of the 8, never slower than the one.
//   refresh  asking for a refresh of that Application when nothing changed: controller CPU per
//            refresh (from /proc) and API writes per refresh (from its /metrics; target: <= 20 ms,
//            one write: removing the refresh annotation); then a periodic reconcile with
//            nothing changed (--reconcile-interval 1s): writes per reconcile (target: 0).
//   scale    A Applications x M objects from scratch, all Synced, beside 8 kubectl processes
//            applying the same A*M objects; controller RSS at the end (target: < 150 MB). Each
//            run's controller watches its own namespaces (--namespace, --managed-namespaces)
//            so that earlier runs' objects do not count.
//   clusters K more test API servers (separate processes) as remote clusters named by cluster
//            Secrets, each holding 1,000 ConfigMaps in the namespace one Application deploys a
//            ConfigMap to: controller RSS with the local Application only, then with the K
//            remote ones added, all Synced; RSS per extra cluster = the difference / K. Needs
//            the test API server (not --kubeconfig). No peer figure: kubectl keeps no caches.
//   takeover 3 controller replicas with --sharding leases and the default lease durations
//            (lease 15 s, renew deadline 10 s, retry 2 s) split A Applications (default 30,
//            one ConfigMap each); one replica is killed with SIGKILL, a commit changing every
//            ConfigMap is pushed right after and a refresh of every Application requested: the
//            time from the kill until every Application of the killed replica (known from its
//            "sync to" log lines) has the change applied, beside the bound it should keep, the
//            lease duration (its slot Leases expire after 15 s unrenewed). Each run uses a
//            --leader-election-id of its own, so that an earlier run's Leases do not count.
//            Needs the test API server (not --kubeconfig). No peer figure: Argo CD's dynamic
//            cluster distribution is heartbeat based and splits clusters, not Applications.
// On a real cluster the benchmark creates namespaces named e2e-<pid>-* and an Application
// namespace `sluice`; delete them afterwards. It needs the Application CRD (applied here).
#include <sys/types.h>
#include <unistd.h>
#include <cstdlib>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <cpprest/http_client.h>

#include "bench_util.h"
#include "sluice/cache/informer.h"
#include "sluice/util/base64.h"
#include "sluice/util/yaml_json.h"
#include "tempdir/tempdir.h"
#include "testutil/tools.h"

using namespace sluice::bench;
using namespace std::chrono;
using nlohmann::json;
using sluice::testing::ChildProcess;
using sluice::testing::TempDir;

namespace {

struct Args {
    std::string kubeconfig;
    int runs = 3;
    int objects = 1000;
    int refreshes = 20;
    int apps = 1000;
    int objectsPerApp = 20;
    int clusters = 4;
    bool appsGiven = false;  // --only takeover defaults to 30 Applications
    std::string only;
    bool skipKubectl = false;
};

Args parseArgs(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string f = argv[i];
        if (f == "--kubeconfig")
            a.kubeconfig = flagValue(argc, argv, i);
        else if (f == "--runs")
            a.runs = std::stoi(flagValue(argc, argv, i));
        else if (f == "--objects")
            a.objects = std::stoi(flagValue(argc, argv, i));
        else if (f == "--refreshes")
            a.refreshes = std::stoi(flagValue(argc, argv, i));
        else if (f == "--apps") {
            a.apps = std::stoi(flagValue(argc, argv, i));
            a.appsGiven = true;
        } else if (f == "--objects-per-app")
            a.objectsPerApp = std::stoi(flagValue(argc, argv, i));
        else if (f == "--clusters")
            a.clusters = std::stoi(flagValue(argc, argv, i));
        else if (f == "--only")
            a.only = flagValue(argc, argv, i);
        else if (f == "--skip-kubectl")
            a.skipKubectl = true;
        else
            throw std::invalid_argument("unknown flag " + f);
    }
    if (a.runs < 1) throw std::invalid_argument("--runs must be at least 1");
    return a;
}

// median (min..max) of the samples, each printed with `format`.
std::string spread(std::vector<double> v, const char* format) {
    if (v.empty()) return "n/a";
    std::sort(v.begin(), v.end());
    auto f = [&](double x) {
        char buf[64];
        std::snprintf(buf, sizeof buf, format, x);
        return std::string(buf);
    };
    return f(v[v.size() / 2]) + " (" + f(v.front()) + ".." + f(v.back()) + ", " +
           std::to_string(v.size()) + " runs)";
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// The first process named `name` (its /proc comm, 15 characters at most) among `root` and its
// descendants, or -1.
int descendantNamed(int root, const std::string& name) {
    std::map<int, std::vector<int>> children;
    std::map<int, std::string> comm;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const std::string dir = entry.path().filename();
        if (dir.empty() || !std::all_of(dir.begin(), dir.end(),
                                        [](unsigned char c) { return std::isdigit(c) != 0; }))
            continue;
        std::ifstream in(entry.path() / "stat");
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const auto open = text.find('('), close = text.rfind(')');
        if (open == std::string::npos || close == std::string::npos) continue;
        const int pid = std::stoi(dir);
        comm[pid] = text.substr(open + 1, close - open - 1);
        std::istringstream rest(text.substr(close + 2));
        std::string state;
        int parent = 0;
        rest >> state >> parent;
        children[parent].push_back(pid);
    }
    std::vector<int> todo{root};
    for (std::size_t i = 0; i < todo.size(); ++i) {
        if (comm[todo[i]].rfind(name, 0) == 0) return todo[i];
        for (int c : children[todo[i]]) todo.push_back(c);
    }
    return -1;
}

// One object of a mixed set, as a YAML file of its own.
std::string mixedObject(int i, const std::string& prefix) {
    const std::string name = prefix + "-" + std::to_string(i);
    switch (i % 4) {
        case 0:
            return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name +
                   "\ndata:\n  index: \"" + std::to_string(i) + "\"\n  settings: |\n" +
                   "    log.level=info\n    feature.x=true\n";
        case 1:
            return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
                   "\nspec:\n  selector:\n    app: " + name +
                   "\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n";
        case 2:
            return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name +
                   "\nspec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: " + name +
                   "\n  template:\n    metadata:\n      labels:\n        app: " + name +
                   "\n    spec:\n      containers:\n      - name: web\n        image: "
                   "nginx:1.27\n        ports:\n        - containerPort: 8080\n";
        default:
            return "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: " + name + "\n";
    }
}

// The server under test: the one --kubeconfig names, or a test API server started here.
class Target {
  public:
    explicit Target(const std::string& kubeconfig) {
        if (kubeconfig.empty()) {
            server_ = std::make_unique<ApiServerProcess>(
                SLUICE_APISERVER_BIN,
                std::vector<std::string>{
                    "--no-simulate", "--crds",
                    sluice::testing::sourcePath("crds/sluice.io_applications.yaml")});
            kubeconfig_ = server_->kubeconfig();
        } else {
            kubeconfig_ = kubeconfig;
        }
        auto cfg = sluice::kube::loadKubeconfig(kubeconfig_);
        cfg.qps = 0;
        client_ = std::make_unique<sluice::kube::RestClient>(cfg);
        if (!server_) applyCrd();
        ensureNamespace(*client_, "sluice");
    }
    const std::string& kubeconfig() const { return kubeconfig_; }
    sluice::kube::RestClient& client() { return *client_; }
    std::string where() const { return server_ ? "the project's test API server" : kubeconfig_; }

  private:
    void applyCrd() {
        std::ifstream in(sluice::testing::sourcePath("crds/sluice.io_applications.yaml"));
        std::stringstream text;
        text << in.rdbuf();
        for (auto& doc : sluice::yamlDocumentsToJson(text.str()))
            client_->apply(
                doc, {.fieldManager = "bench", .force = true, .dryRun = false, .subresource = ""});
    }
    std::unique_ptr<ApiServerProcess> server_;
    std::string kubeconfig_;
    std::unique_ptr<sluice::kube::RestClient> client_;
};

// `kubectl apply --server-side` of each directory into ns, all at once; seconds until the last
// one finished.
double kubectlApply(const Target& target, const std::vector<std::string>& dirs,
                    const std::string& ns) {
    auto start = steady_clock::now();
    std::vector<std::thread> runs;
    std::atomic<bool> failed{false};
    std::string error;
    std::mutex errorMu;
    for (const auto& dir : dirs)
        runs.emplace_back([&, dir] {
            auto r = sluice::testing::runProcess(
                {sluice::testing::kubectlPath(), "--kubeconfig", target.kubeconfig(), "apply",
                 "--server-side", "--field-manager", "bench-kubectl", "-n", ns, "-f", dir},
                {}, minutes(30));
            if (r.exitCode != 0) {
                failed = true;
                std::lock_guard lock(errorMu);
                error = r.err.substr(0, 2000);
            }
        });
    for (auto& t : runs) t.join();
    if (failed) throw std::runtime_error("kubectl apply failed: " + error);
    return secondsSince(start);
}

// sluice-controller with its default flags (plus where to keep its files, and a loopback
// metrics port the benchmark reads).
class Controller {
  public:
    Controller(const Target& target, TempDir& work, std::vector<std::string> extra = {})
        : metricsPort_(sluice::testing::freeLoopbackPort()) {
        std::vector<std::string> argv = {SLUICE_CONTROLLER_BIN,
                                         "--kubeconfig",
                                         target.kubeconfig(),
                                         "--control-namespace",
                                         "sluice",
                                         "--repo-cache-dir",
                                         work.file("git-cache"),
                                         "--render-dir",
                                         work.file("sources"),
                                         "--log-level",
                                         "warn",
                                         "--metrics-addr",
                                         "127.0.0.1:" + std::to_string(metricsPort_),
                                         "--health-addr",
                                         "0",
                                         "--webhook-addr",
                                         "0"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        // SLUICE_BENCH_WRAPPER="heaptrack -o /tmp/sluice" (words split at spaces) runs the
        // controller under a profiler; its figures are then the profiler's, not the target's.
        if (const char* wrapper = std::getenv("SLUICE_BENCH_WRAPPER"); wrapper && *wrapper) {
            std::vector<std::string> words;
            std::istringstream in(wrapper);
            for (std::string w; in >> w;) words.push_back(w);
            argv.insert(argv.begin(), words.begin(), words.end());
        }
        process_ = std::make_unique<ChildProcess>(argv);
        // --log-level warn hides the start message: wait for metrics instead.
        if (!sluice::testing::eventually([&] { return scrape().size() > 0; }, seconds(60),
                                         milliseconds(50)))
            throw std::runtime_error("sluice-controller did not start: " +
                                     process_->stderrText().substr(0, 2000));
    }

    // The controller's own process: under SLUICE_BENCH_WRAPPER the child started is the
    // wrapper, and the controller one of its descendants.
    int pid() const {
        if (!controllerPid_) controllerPid_ = descendantNamed(process_->pid(), "sluice-control");
        return controllerPid_ > 0 ? controllerPid_ : process_->pid();
    }
    bool running() { return process_->running(); }
    std::string log() const { return process_->stderrText().substr(0, 3000); }
    std::string fullLog() const { return process_->stderrText(); }
    // A wrapper killed alone would leave the controller running: it goes first.
    ~Controller() {
        if (process_ && pid() != process_->pid()) ::kill(pid(), SIGKILL);
    }
    Controller(const Controller&) = delete;
    Controller& operator=(const Controller&) = delete;

    void kill() {
        if (pid() != process_->pid()) ::kill(pid(), SIGKILL);
        process_->signal(SIGKILL);
        process_->wait(seconds(10));
    }
    // A gauge without labels from its /metrics (0 when missing).
    double gauge(const std::string& name) const { return sum(name + " ", ""); }

    // User + system CPU seconds of the whole process so far.
    double cpuSeconds() const {
        std::ifstream in("/proc/" + std::to_string(pid()) + "/stat");
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::istringstream fields(text.substr(text.rfind(')') + 2));
        std::string f;
        unsigned long long utime = 0, stime = 0;
        for (int i = 3; fields >> f; ++i) {
            if (i == 14) utime = std::stoull(f);
            if (i == 15) {
                stime = std::stoull(f);
                break;
            }
        }
        return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }

    // API writes so far (create, update, patch, apply, delete), from its own /metrics.
    double writes() const {
        double n = 0;
        for (const char* verb : {"create", "update", "patch", "apply", "delete"})
            n += sum("sluice_kube_requests_total{", std::string("verb=\"") + verb + "\"");
        return n;
    }
    // API requests so far by verb, from its own /metrics.
    std::map<std::string, double> requestsByVerb() const {
        std::map<std::string, double> out;
        std::istringstream lines(scrape());
        std::string line;
        const std::string prefix = "sluice_kube_requests_total{";
        while (std::getline(lines, line)) {
            const auto verb = line.find("verb=\"");
            if (line.rfind(prefix, 0) != 0 || verb == std::string::npos) continue;
            const auto end = line.find('"', verb + 6);
            out[line.substr(verb + 6, end - verb - 6)] +=
                std::stod(line.substr(line.rfind(' ') + 1));
        }
        return out;
    }
    // Application reconciles so far.
    double reconciles() const {
        return sum("sluice_reconcile_total{", "controller=\"application\"");
    }
    // Until the first reconcile after start-up is done (the status of an Application from an
    // earlier run says Synced before this controller looked at it), and a moment more.
    void waitUntilSettled() const {
        if (!sluice::testing::eventually([&] { return reconciles() >= 1; }, seconds(120),
                                         milliseconds(50)))
            throw std::runtime_error("no reconcile: " + log());
        std::this_thread::sleep_for(seconds(2));
    }

    double rssMb() const { return static_cast<double>(statusKb(pid(), "VmRSS")) / 1024.0; }
    double peakRssMb() const { return static_cast<double>(statusKb(pid(), "VmHWM")) / 1024.0; }

  private:
    // Sum of the samples of a metric family (prefix "name{") whose labels contain `label`.
    double sum(const std::string& prefix, const std::string& label) const {
        double n = 0;
        std::istringstream lines(scrape());
        std::string line;
        while (std::getline(lines, line))
            if (line.rfind(prefix, 0) == 0 && line.find(label) != std::string::npos)
                n += std::stod(line.substr(line.rfind(' ') + 1));
        return n;
    }
    std::string scrape() const {
        try {
            web::http::client::http_client_config cfg;
            cfg.set_timeout(seconds(10));
            web::http::client::http_client http("http://127.0.0.1:" + std::to_string(metricsPort_),
                                                cfg);
            auto response = http.request(web::http::methods::GET, "/metrics").get();
            return response.status_code() == 200 ? response.extract_utf8string(true).get() : "";
        } catch (const std::exception&) {
            return "";  // not listening yet
        }
    }
    int metricsPort_;
    std::unique_ptr<ChildProcess> process_;
    mutable int controllerPid_ = 0;  // 0 = not looked up yet, -1 = none below the child
};

bool syncedAndSucceeded(const json& app) {
    return syncStatusOf(app) == "Synced" &&
           app.value("/status/operationState/phase"_json_pointer, std::string()) == "Succeeded";
}

// Waits until the Application is Synced with its operation Succeeded; seconds since start.
double waitSynced(Target& target, Controller& controller, const std::string& name,
                  steady_clock::time_point start) {
    bool ok = sluice::testing::eventually(
        [&] {
            if (!controller.running()) return true;
            auto app = target.client().get(kApplication, "sluice", name);
            return syncedAndSucceeded(app);
        },
        minutes(30), milliseconds(20));
    if (!ok || !controller.running())
        throw std::runtime_error("Application " + name + " did not sync: " + controller.log());
    return secondsSince(start);
}

std::string runId() {
    return "e2e-" + std::to_string(getpid());
}

// The N mixed objects in one directory of the repository (for Sluice) and in 8 directories of
// plain files (for the parallel kubectl run).
struct MixedSet {
    std::string repoPath;
    std::string allDir;
    std::vector<std::string> eighths;
};

MixedSet writeMixedSet(Repo& repo, TempDir& work, const std::string& name, int objects) {
    MixedSet set{"sets/" + name, work.file(name + "-all"), {}};
    std::filesystem::create_directories(set.allDir);
    for (int part = 0; part < 8; ++part) {
        set.eighths.push_back(work.file(name + "-part" + std::to_string(part)));
        std::filesystem::create_directories(set.eighths.back());
    }
    for (int i = 0; i < objects; ++i) {
        const std::string file = "obj-" + std::to_string(i) + ".yaml";
        const std::string yaml = mixedObject(i, "obj");
        repo.write(set.repoPath + "/" + file, yaml);
        std::ofstream(set.allDir + "/" + file) << yaml;
        std::ofstream(set.eighths[static_cast<size_t>(i % 8)] + "/" + file) << yaml;
    }
    return set;
}

void syncBench(const Args& args, Target& target, TempDir& work, Repo& repo,
               std::string& syncedApp) {
    MixedSet set = writeMixedSet(repo, work, "sync", args.objects);
    repo.commit("mixed set");
    std::vector<double> sluiceS, serialS, parallelS;
    Controller controller(target, work);
    for (int run = 0; run < args.runs; ++run) {
        const std::string id = runId() + "-" + std::to_string(run);
        if (!args.skipKubectl) {
            ensureNamespace(target.client(), id + "-kubectl");
            serialS.push_back(kubectlApply(target, {set.allDir}, id + "-kubectl"));
            ensureNamespace(target.client(), id + "-kubectl8");
            parallelS.push_back(kubectlApply(target, set.eighths, id + "-kubectl8"));
        }
        ensureNamespace(target.client(), id + "-sluice");
        const std::string app = id + "-sync";
        auto start = steady_clock::now();
        target.client().create(application(app, repo.url(), set.repoPath, id + "-sluice"));
        sluiceS.push_back(waitSynced(target, controller, app, start));
        syncedApp = app;
    }
    std::printf("sync of %d fresh objects, default flags (%s):\n", args.objects,
                target.where().c_str());
    std::printf("  sluice                         %s s\n", spread(sluiceS, "%.2f").c_str());
    if (!args.skipKubectl) {
        std::printf("  kubectl apply --server-side    %s s\n", spread(serialS, "%.2f").c_str());
        std::printf("  8 x kubectl apply at once      %s s\n", spread(parallelS, "%.2f").c_str());
        std::printf(
            "  sluice / 8 kubectl = %.2f (target <= 1.2); sluice / 1 kubectl = %.2f "
            "(target <= 1)\n",
            median(sluiceS) / median(parallelS), median(sluiceS) / median(serialS));
    }
}

// Refreshes of an Application in sync; CPU and writes per refresh.
void refreshBench(const Args& args, Target& target, TempDir& work, const std::string& app) {
    std::vector<double> cpuMs, writes;
    for (int run = 0; run < args.runs; ++run) {
        Controller controller(target, work);
        controller.waitUntilSettled();
        const double cpu0 = controller.cpuSeconds(), writes0 = controller.writes();
        for (int i = 0; i < args.refreshes; ++i) {
            target.client().patch(kApplication, "sluice", app, sluice::kube::PatchType::Merge,
                                  R"({"metadata":{"annotations":{"sluice.io/refresh":"normal"}}})");
            bool done = sluice::testing::eventually(
                [&] {
                    auto a = target.client().get(kApplication, "sluice", app);
                    return !a["metadata"].contains("annotations") ||
                           !a["metadata"]["annotations"].contains("sluice.io/refresh");
                },
                seconds(60), milliseconds(5));
            if (!done) throw std::runtime_error("refresh not handled: " + controller.log());
        }
        std::this_thread::sleep_for(milliseconds(500));  // writes after the annotation's removal
        cpuMs.push_back((controller.cpuSeconds() - cpu0) * 1000.0 / args.refreshes);
        writes.push_back((controller.writes() - writes0) / args.refreshes);
    }
    std::printf("refresh of a %d-object Application with nothing to do (controller process):\n",
                args.objects);
    std::printf("  CPU per refresh     %s ms (target <= 20)\n", spread(cpuMs, "%.1f").c_str());
    std::printf("  writes per refresh  %s (target 1: the annotation's removal)\n",
                spread(writes, "%.2f").c_str());

    std::vector<double> periodicWrites, periodicCpuMs;
    for (int run = 0; run < args.runs; ++run) {
        Controller controller(target, work, {"--reconcile-interval", "1s"});
        controller.waitUntilSettled();
        // Past the first write of the clusters' ConfigMap (10 s after start-up), which
        // records the caches filled at start-up: not a reconcile's write. (That write is
        // itself one more cached object; a change of counts alone waits a minute.)
        std::this_thread::sleep_for(seconds(10));
        const double cpu0 = controller.cpuSeconds(), writes0 = controller.writes();
        const double reconciles0 = controller.reconciles();
        std::this_thread::sleep_for(seconds(10));
        const double reconciles = std::max(1.0, controller.reconciles() - reconciles0);
        periodicWrites.push_back(controller.writes() - writes0);
        periodicCpuMs.push_back((controller.cpuSeconds() - cpu0) * 1000.0 / reconciles);
    }
    std::printf("periodic reconcile every 1 s, nothing changed, over 10 s:\n");
    std::printf("  writes              %s (target 0)\n", spread(periodicWrites, "%.0f").c_str());
    std::printf("  CPU per reconcile   %s ms\n", spread(periodicCpuMs, "%.1f").c_str());
}

void scaleBench(const Args& args, Target& target, TempDir& work, Repo& repo) {
    const int total = args.apps * args.objectsPerApp;
    std::vector<std::string> eighths;
    for (int part = 0; part < 8; ++part) {
        eighths.push_back(work.file("scale-part" + std::to_string(part)));
        std::filesystem::create_directories(eighths.back());
    }
    for (int a = 0; a < args.apps; ++a)
        for (int o = 0; o < args.objectsPerApp; ++o) {
            const std::string file = "app-" + std::to_string(a) + "-" + std::to_string(o) + ".yaml";
            const std::string yaml =
                mixedObject(o, "app-" + std::to_string(a) + "-" + std::to_string(o));
            repo.write("scale/app-" + std::to_string(a) + "/" + file, yaml);
            std::ofstream(eighths[static_cast<size_t>(a % 8)] + "/" + file) << yaml;
        }
    repo.commit("many applications");
    std::vector<double> sluiceS, kubectlS, rss, peakRss, cpuS, reconcilesPerApp;
    std::map<std::string, std::vector<double>> requests;  // per Application, by verb
    for (int run = 0; run < args.runs; ++run) {
        const std::string id = runId() + "-" + std::to_string(run);
        ensureNamespace(target.client(), id + "-scale");
        // Each run's Applications live in a namespace of their own, watched alone, and its
        // objects in another, the only one whose objects it caches: earlier runs' Applications
        // and objects (and kubectl's) are neither reconciled again nor counted in its memory.
        const std::string appNs = id + "-apps";
        ensureNamespace(target.client(), appNs);
        // One watch on the run's Applications, as `kubectl get -w` would: listing 1,000
        // Applications with their statuses every 250 ms cost the server and this process about
        // a quarter of the run's time on a 2-core machine.
        sluice::cache::SharedInformerFactory informers(target.client());
        auto& appsSeen = informers.informerFor(kApplication, appNs);
        informers.startAll();
        if (!appsSeen.waitForSync(seconds(60)))
            throw std::runtime_error("cannot watch the Applications of " + appNs);
        Controller controller(target, work,
                              {"--namespace", appNs, "--managed-namespaces", id + "-scale"});
        auto start = steady_clock::now();
        std::vector<std::thread> creators;
        std::atomic<int> next{0};
        for (int t = 0; t < 8; ++t)
            creators.emplace_back([&] {
                for (int a = next++; a < args.apps; a = next++) {
                    auto app = application(id + "-app-" + std::to_string(a), repo.url(),
                                           "scale/app-" + std::to_string(a), id + "-scale");
                    app["metadata"]["namespace"] = appNs;
                    target.client().create(app);
                }
            });
        for (auto& t : creators) t.join();
        auto synced = [&] {
            int n = 0;
            for (const auto& a : appsSeen.store().list())
                if (syncedAndSucceeded(*a)) ++n;
            return n;
        };
        bool ok = sluice::testing::eventually(
            [&] { return synced() == args.apps || !controller.running(); }, minutes(30),
            milliseconds(100));
        if (!ok || !controller.running())
            throw std::runtime_error("not every Application synced: " + controller.log());
        sluiceS.push_back(secondsSince(start));
        cpuS.push_back(controller.cpuSeconds());
        reconcilesPerApp.push_back(controller.reconciles() / args.apps);
        for (const auto& [verb, n] : controller.requestsByVerb())
            requests[verb].push_back(n / args.apps);
        std::this_thread::sleep_for(seconds(2));
        rss.push_back(controller.rssMb());
        peakRss.push_back(controller.peakRssMb());
        if (!args.skipKubectl) {
            ensureNamespace(target.client(), id + "-kubectl8");
            kubectlS.push_back(kubectlApply(target, eighths, id + "-kubectl8"));
        }
    }
    std::printf("%d Applications x %d objects (%d objects) from scratch:\n", args.apps,
                args.objectsPerApp, total);
    std::printf("  sluice, all Synced            %s s\n", spread(sluiceS, "%.1f").c_str());
    if (!args.skipKubectl) {
        std::printf("  8 x kubectl apply at once     %s s\n", spread(kubectlS, "%.1f").c_str());
        std::printf("  sluice / 8 kubectl = %.2f (target <= 1.2)\n",
                    median(sluiceS) / median(kubectlS));
    }
    std::printf("  controller RSS                %s MB (target < 150)\n",
                spread(rss, "%.0f").c_str());
    std::printf("  controller peak RSS           %s MB\n", spread(peakRss, "%.0f").c_str());
    std::printf("  controller CPU until Synced   %s s\n", spread(cpuS, "%.1f").c_str());
    std::printf("  reconciles per Application    %s\n", spread(reconcilesPerApp, "%.1f").c_str());
    std::printf("  API requests per Application (controller's /metrics; kubectl sends %d):\n",
                args.objectsPerApp);
    for (const auto& [verb, perApp] : requests)
        std::printf("    %-10s %s\n", verb.c_str(), spread(perApp, "%.2f").c_str());
}

// One remote cluster: a test API server process with `objects` ConfigMaps in namespace
// "remote", and its cluster Secret (token and CA, Argo CD's format).
struct RemoteCluster {
    RemoteCluster(int index, int objects)
        : server(SLUICE_APISERVER_BIN, {"--no-simulate"}),
          client(server.config()),
          name("bench-" + std::to_string(index)) {
        ensureNamespace(client, "remote");
        for (int i = 0; i < objects; ++i)
            client.create(json{
                {"apiVersion", "v1"},
                {"kind", "ConfigMap"},
                {"metadata", {{"name", "cached-" + std::to_string(i)}, {"namespace", "remote"}}},
                {"data", {{"index", std::to_string(i)}, {"payload", "x"}}}});
    }
    json secret() const {
        const auto cfg = server.config();
        const json config = {{"bearerToken", cfg.token},
                             {"tlsClientConfig", {{"caData", sluice::base64Encode(cfg.caPem)}}}};
        return {
            {"apiVersion", "v1"},
            {"kind", "Secret"},
            {"metadata",
             {{"name", "cluster-" + name},
              {"namespace", "sluice"},
              {"labels", {{"argocd.argoproj.io/secret-type", "cluster"}}}}},
            {"stringData", {{"name", name}, {"server", cfg.server}, {"config", config.dump()}}}};
    }
    ApiServerProcess server;
    sluice::kube::RestClient client;
    std::string name;
};

// Controller RSS with one local Application, then with `clusters` remote ones added.
void clustersBench(const Args& args, Target& target, TempDir& work, Repo& repo) {
    if (!args.kubeconfig.empty())
        throw std::runtime_error("--only clusters needs the test API server (no --kubeconfig)");
    constexpr int kCachedObjects = 1000;
    repo.write("clusters/one/config.yaml", mixedObject(0, "deployed"));
    repo.commit("one ConfigMap per cluster");
    std::vector<std::unique_ptr<RemoteCluster>> remotes;
    for (int k = 0; k < args.clusters; ++k)
        remotes.push_back(std::make_unique<RemoteCluster>(k, kCachedObjects));
    for (auto& r : remotes)
        target.client().apply(
            r->secret(),
            {.fieldManager = "bench", .force = true, .dryRun = false, .subresource = ""});
    std::vector<double> base, withClusters, perCluster;
    for (int run = 0; run < args.runs; ++run) {
        const std::string id = runId() + "-" + std::to_string(run);
        const std::string appNs = id + "-apps";
        ensureNamespace(target.client(), appNs);
        ensureNamespace(target.client(), id + "-local");
        Controller controller(target, work, {"--namespace", appNs});
        auto create = [&](const std::string& name, const json& destination) {
            json app = application(name, repo.url(), "clusters/one", "");
            app["metadata"]["namespace"] = appNs;
            app["spec"]["destination"] = destination;
            target.client().create(app);
        };
        auto allSynced = [&](std::size_t n) {
            return sluice::testing::eventually(
                [&] {
                    std::size_t synced = 0;
                    for (const auto& a : target.client().listAll(kApplication, appNs).items)
                        if (syncedAndSucceeded(a)) ++synced;
                    return synced == n || !controller.running();
                },
                minutes(2), milliseconds(250));
        };
        create("local",
               {{"server", "https://kubernetes.default.svc"}, {"namespace", id + "-local"}});
        if (!allSynced(1) || !controller.running())
            throw std::runtime_error("the local Application did not sync: " + controller.log());
        std::this_thread::sleep_for(seconds(3));
        base.push_back(controller.rssMb());
        // Each run deploys into a namespace of its own there (an earlier run's object is
        // another Application's); the 1,000 cached ConfigMaps are in "remote".
        for (auto& r : remotes) {
            ensureNamespace(r->client, id + "-remote");
            create("to-" + r->name, {{"name", r->name}, {"namespace", id + "-remote"}});
        }
        if (!allSynced(remotes.size() + 1) || !controller.running()) {
            std::string states;
            for (const auto& a : target.client().listAll(kApplication, appNs).items)
                states += a.value("status", json::object()).dump().substr(0, 600) + "\n";
            throw std::runtime_error("not every remote Application synced:\n" + states);
        }
        std::this_thread::sleep_for(seconds(3));
        withClusters.push_back(controller.rssMb());
        perCluster.push_back((withClusters.back() - base.back()) /
                             static_cast<double>(args.clusters));
    }
    std::printf("%d remote clusters (test API server processes), %d cached objects each:\n",
                args.clusters, kCachedObjects);
    std::printf("  controller RSS, local Application only   %s MB\n", spread(base, "%.1f").c_str());
    std::printf("  controller RSS, with the %d clusters      %s MB\n", args.clusters,
                spread(withClusters, "%.1f").c_str());
    std::printf("  RSS per extra cluster                    %s MB (no peer figure)\n",
                spread(perCluster, "%.2f").c_str());
}

// --only takeover: the default lease durations of --sharding leases.
constexpr int kTakeoverLeaseSeconds = 15;
constexpr int kTakeoverSlots = 32;  // --shard-slots default

// The Applications of one takeover run, each deploying the ConfigMap cm-<i> (data.generation)
// from takeover/<id>/app-<i>; commits.
void writeTakeoverGeneration(Repo& repo, const std::string& id, int apps,
                             const std::string& generation) {
    for (int i = 0; i < apps; ++i)
        repo.write("takeover/" + id + "/app-" + std::to_string(i) + "/cm.yaml",
                   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-" + std::to_string(i) +
                       "\ndata:\n  generation: " + generation + "\n");
    repo.commit("takeover " + id + " " + generation);
}

// Names of the Applications in appNs whose sync replica `log` logged ("application
// <appNs>/<name>: sync to ...", --log-level info).
std::set<std::string> syncedBy(const std::string& log, const std::string& appNs) {
    std::set<std::string> names;
    const std::string prefix = "application " + appNs + "/";
    for (size_t at = log.find(prefix); at != std::string::npos; at = log.find(prefix, at + 1)) {
        const size_t start = at + prefix.size();
        const size_t colon = log.find(": sync to ", start);
        const size_t eol = log.find('\n', start);
        if (colon != std::string::npos && colon < eol)
            names.insert(log.substr(start, colon - start));
    }
    return names;
}

// Every slot held, every replica seeing `members` members, the slots held adding up.
bool shardsBalanced(std::vector<std::unique_ptr<Controller>>& replicas, int members) {
    double held = 0;
    for (auto& r : replicas) {
        if (!r->running()) continue;
        if (r->gauge("sluice_shard_members") != members) return false;
        const double mine = r->gauge("sluice_shard_slots_held");
        if (mine < 1) return false;
        held += mine;
    }
    return held == kTakeoverSlots;
}

// One run: seconds from the SIGKILL until every Application of the killed replica shows the
// change pushed after it; also the same for the survivors' own Applications (context).
std::pair<double, double> takeoverRun(Target& target, Repo& repo, int run, int apps,
                                      int& killedApps) {
    const std::string id = runId() + "-takeover-" + std::to_string(run);
    const std::string appNs = id + "-apps", destNs = id + "-dest";
    ensureNamespace(target.client(), appNs);
    ensureNamespace(target.client(), destNs);
    writeTakeoverGeneration(repo, id, apps, "one");
    std::vector<std::unique_ptr<TempDir>> dirs;
    std::vector<std::unique_ptr<Controller>> replicas;
    for (int r = 0; r < 3; ++r) {
        dirs.push_back(std::make_unique<TempDir>());
        replicas.push_back(std::make_unique<Controller>(
            target, *dirs.back(),
            std::vector<std::string>{"--log-level", "info", "--namespace", appNs, "--sharding",
                                     "leases", "--leader-election-id", id}));
    }
    if (!sluice::testing::eventually([&] { return shardsBalanced(replicas, 3); }, seconds(90),
                                     milliseconds(200)))
        throw std::runtime_error("the 3 replicas did not split the slots: " + replicas[0]->log());
    for (int i = 0; i < apps; ++i) {
        auto app = application("app-" + std::to_string(i), repo.url(),
                               "takeover/" + id + "/app-" + std::to_string(i), destNs);
        app["metadata"]["namespace"] = appNs;
        target.client().create(app);
    }
    auto countSynced = [&] {
        int n = 0;
        for (const auto& a : target.client().listAll(kApplication, appNs).items)
            if (isSynced(a)) ++n;
        return n;
    };
    if (!sluice::testing::eventually([&] { return countSynced() == apps; }, minutes(5),
                                     milliseconds(250)))
        throw std::runtime_error("not every Application synced: " + replicas[0]->log());
    // The victim: the replica with the most Applications.
    size_t victim = 0;
    std::vector<std::set<std::string>> owned;
    for (size_t r = 0; r < replicas.size(); ++r) {
        owned.push_back(syncedBy(replicas[r]->fullLog(), appNs));
        if (owned[r].size() > owned[victim].size()) victim = r;
    }
    if (owned[victim].empty()) throw std::runtime_error("no replica logged a sync");
    killedApps += static_cast<int>(owned[victim].size());

    replicas[victim]->kill();
    const auto killed = steady_clock::now();
    writeTakeoverGeneration(repo, id, apps, "two");
    for (int i = 0; i < apps; ++i)
        target.client().patch(kApplication, appNs, "app-" + std::to_string(i),
                              sluice::kube::PatchType::Merge,
                              R"({"metadata":{"annotations":{"sluice.io/refresh":"normal"}}})");
    std::map<std::string, double> changedAfter;
    bool done = sluice::testing::eventually(
        [&] {
            for (int i = 0; i < apps; ++i) {
                const std::string name = "app-" + std::to_string(i);
                if (changedAfter.contains(name)) continue;
                auto cm = target.client().get(kConfigMap, destNs, "cm-" + std::to_string(i));
                if (cm.value("/data/generation"_json_pointer, std::string()) == "two")
                    changedAfter[name] = secondsSince(killed);
            }
            return static_cast<int>(changedAfter.size()) == apps;
        },
        minutes(3), milliseconds(50));
    if (!done)
        throw std::runtime_error("the change was not applied everywhere: " +
                                 replicas[(victim + 1) % 3]->log());
    double victimS = 0, survivorS = 0;
    for (const auto& [name, s] : changedAfter) {
        double& slowest = owned[victim].contains(name) ? victimS : survivorS;
        slowest = std::max(slowest, s);
    }
    return {victimS, survivorS};
}

void takeoverBench(const Args& args, Target& target, TempDir&, Repo& repo) {
    if (!args.kubeconfig.empty())
        throw std::runtime_error("--only takeover needs the test API server (no --kubeconfig)");
    const int apps = args.appsGiven ? args.apps : 30;
    std::vector<double> victimS, survivorS;
    int killedApps = 0;
    for (int run = 0; run < args.runs; ++run) {
        auto [v, s] = takeoverRun(target, repo, run, apps, killedApps);
        victimS.push_back(v);
        survivorS.push_back(s);
    }
    std::printf(
        "takeover: 3 replicas, --sharding leases, default lease durations, %d Applications; one "
        "replica SIGKILLed (%.1f Applications on average), a change pushed and refreshed right "
        "after:\n",
        apps, static_cast<double>(killedApps) / args.runs);
    std::printf("  killed replica's Applications changed  %s s   bound: lease duration %d s\n",
                spread(victimS, "%.2f").c_str(), kTakeoverLeaseSeconds);
    std::printf("  survivors' own Applications changed    %s s   (no takeover involved)\n",
                spread(survivorS, "%.2f").c_str());
    std::printf(
        "  no peer figure: Argo CD's dynamic cluster distribution is heartbeat based and splits "
        "clusters, not Applications\n");
}

}  // namespace

int main(int argc, char** argv) {
    const Args args = parseArgsOrExit(
        argc, argv, parseArgs,
        "sluice-bench-e2e [--kubeconfig PATH] [--runs R] [--objects N] [--refreshes F] "
        "[--apps A] [--objects-per-app M] [--clusters K] "
        "[--only sync|refresh|scale|clusters|takeover] [--skip-kubectl]");
    try {
        TempDir work;
        Target target(args.kubeconfig);
        Repo repo(work.file("repo"));
        std::string syncedApp;
        const bool all = args.only.empty();
        if (all || args.only == "sync" || args.only == "refresh")
            syncBench(args, target, work, repo, syncedApp);
        if (all || args.only == "refresh") refreshBench(args, target, work, syncedApp);
        if (all || args.only == "scale") scaleBench(args, target, work, repo);
        if (args.only == "clusters") clustersBench(args, target, work, repo);
        if (args.only == "takeover") takeoverBench(args, target, work, repo);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sluice-bench-e2e: %s\n", e.what());
        return 1;
    }
    return 0;
}
