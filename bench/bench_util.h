#pragma once
// What the benchmarks share: the command line, CPU and wall clocks, percentiles, and the API
// test server as a child process (so its CPU and memory never count as the measured code's).
#include <signal.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "process/process.h"
#include "sluice/kube/client.h"
#include "sluice/kube/config.h"
#include "sluice/kube/types.h"
#include "tempdir/tempdir.h"
#include "testutil/testutil.h"

namespace sluice::bench {

// The kinds the benchmarks create and read.
inline const kube::GroupVersionKind kConfigMap{"", "v1", "ConfigMap"};
inline const kube::GroupVersionKind kDeployment{"apps", "v1", "Deployment"};
inline const kube::GroupVersionKind kApplication{"sluice.io", "v1alpha1", "Application"};
inline const kube::GroupVersionKind kCanary{"sluice.io", "v1alpha1", "Canary"};
inline const kube::GroupVersionKind kHttpRoute{"gateway.networking.k8s.io", "v1", "HTTPRoute"};

// The value after the flag at argv[i]; i moves onto it. Throws when the flag comes last.
inline std::string flagValue(int argc, char** argv, int& i) {
    if (i + 1 >= argc) throw std::invalid_argument(std::string(argv[i]) + " needs a value");
    return argv[++i];
}

// parse(argc, argv), which throws std::invalid_argument on a bad argument. --help prints the
// usage and exits 0; a bad argument prints the reason and the usage and exits 2.
template <class Parse>
auto parseArgsOrExit(int argc, char** argv, Parse parse, const char* usage) {
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
            std::cout << "usage: " << usage << "\n";
            std::exit(0);
        }
    }
    try {
        return parse(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\nusage: " << usage << "\n";
        std::exit(2);
    }
}

inline double secondsSince(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// User + system CPU of the whole process: every thread the measured code runs on.
inline double processCpuSeconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU of the calling thread alone.
inline double threadCpuSeconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// A "<field>: N kB" line of /proc/<pid>/status (VmRSS, VmHWM), in kB; -1 when absent.
inline long statusKb(int pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
    return -1;
}

struct Percentiles {
    double p50 = 0, p90 = 0, p99 = 0, max = 0;
};

// Nearest-rank percentiles of the samples; all zero when there are none.
inline Percentiles percentiles(std::vector<double> v) {
    if (v.empty()) return {};
    std::sort(v.begin(), v.end());
    auto at = [&](double q) {
        return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
    };
    return {at(0.50), at(0.90), at(0.99), v.back()};
}

// sluice-test-apiserver as a child process, on a free port, writing its kubeconfig to a
// temporary directory; extraArgs follow the port and kubeconfig flags. The constructor waits
// until the kubeconfig is written and throws with the server's stderr when it never is. SIGTERM
// on destruction.
class ApiServerProcess {
  public:
    explicit ApiServerProcess(const std::string& binary, std::vector<std::string> extraArgs = {}) {
        std::vector<std::string> argv = {binary, "--port", "0", "--kubeconfig-out", kubeconfig_};
        argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
        process_ = std::make_unique<testing::ChildProcess>(argv);
        const bool started = testing::eventually(
            [&] {
                return std::filesystem::exists(kubeconfig_) &&
                       std::filesystem::file_size(kubeconfig_) > 0;
            },
            std::chrono::seconds(30), std::chrono::milliseconds(50));
        if (!started)
            throw std::runtime_error("API test server did not start:\n" + process_->stderrText());
    }
    ~ApiServerProcess() {
        process_->signal(SIGTERM);
        process_->wait(std::chrono::seconds(10));
    }
    ApiServerProcess(const ApiServerProcess&) = delete;
    ApiServerProcess& operator=(const ApiServerProcess&) = delete;

    const std::string& kubeconfig() const { return kubeconfig_; }
    // No client-side rate limit: the benchmarks measure client, server and controller.
    kube::ClusterConfig config() const {
        auto cfg = kube::loadKubeconfig(kubeconfig_);
        cfg.qps = 0;
        return cfg;
    }

  private:
    testing::TempDir dir_;
    std::string kubeconfig_ = dir_.file("kubeconfig");
    std::unique_ptr<testing::ChildProcess> process_;
};

// Runs a command to completion; throws with its output when it fails.
inline void run(const std::string& what, const std::vector<std::string>& argv) {
    auto r = testing::runProcess(argv,
                                 {{"GIT_CONFIG_GLOBAL", "/dev/null"}, {"GIT_CONFIG_NOSYSTEM", "1"}},
                                 std::chrono::minutes(10));
    if (r.exitCode != 0) throw std::runtime_error(what + " failed: " + r.err + r.out);
}

// A git repository on disk, changed with the git CLI.
class Repo {
  public:
    explicit Repo(std::string dir) : dir_(std::move(dir)) {
        std::filesystem::create_directories(dir_);
        git({"init", "-q", "-b", "main"});
    }
    std::string url() const { return "file://" + dir_; }
    void write(const std::string& rel, const std::string& content) {
        auto path = std::filesystem::path(dir_) / rel;
        std::filesystem::create_directories(path.parent_path());
        std::ofstream(path) << content;
    }
    void commit(const std::string& message) {
        git({"add", "-A"});
        git({"-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-q", "-m",
             message});
    }

  private:
    void git(std::vector<std::string> args) {
        args.insert(args.begin(), {"git", "-C", dir_});
        run("git " + args[3], args);
    }
    std::string dir_;
};

// An Application of `path` in `repoUrl` deploying to destNs, automated with prune and
// self-heal; `source` overrides fields of spec.source (helm, kustomize, ...).
inline kube::Object application(const std::string& name, const std::string& repoUrl,
                                const std::string& path, const std::string& destNs,
                                const nlohmann::json& source = nlohmann::json::object()) {
    kube::Object app = {
        {"apiVersion", "sluice.io/v1alpha1"},
        {"kind", "Application"},
        {"metadata", {{"name", name}, {"namespace", "sluice"}}},
        {"spec",
         {{"project", "default"},
          {"source", {{"repoURL", repoUrl}, {"targetRevision", "main"}, {"path", path}}},
          {"destination", {{"server", "https://kubernetes.default.svc"}, {"namespace", destNs}}},
          {"syncPolicy", {{"automated", {{"prune", true}, {"selfHeal", true}}}}}}}};
    app["spec"]["source"].update(source);
    return app;
}

// The API test server (SLUICE_APISERVER_BIN of the benchmark) with the Application CRD.
inline ApiServerProcess applicationServer(const std::string& binary) {
    return ApiServerProcess(binary, {"--no-simulate", "--crds",
                                     testing::sourcePath("crds/sluice.io_applications.yaml")});
}

inline void ensureNamespace(kube::KubeClient& client, const std::string& name) {
    client.apply({{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}},
                 kube::ApplyOptions{
                     .fieldManager = "bench", .force = true, .dryRun = false, .subresource = ""});
}

inline std::string syncStatusOf(const kube::Object& app) {
    if (!app.contains("status")) return "";
    return app["status"].value("/sync/status"_json_pointer, std::string());
}

inline bool isSynced(const kube::Object& app) {
    return syncStatusOf(app) == "Synced" &&
           app["status"].value("/operationState/phase"_json_pointer, std::string()) == "Succeeded";
}

}  // namespace sluice::bench
