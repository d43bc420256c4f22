// Source rendering benchmark: the real helm, a chart in a git repository on disk, and the
// project's API test server as a separate process.
//
//   sluice-bench-source [--apps N] [--objects M] [--rounds R]
//
// Prints, in one run:
//   1. rendering N Applications that share one chart and its values at one commit through the
//      render service (what the controller does), against `helm template` run once per
//      Application (what a renderer without a shared cache does): total CPU (this process and
//      its children) and wall time, with the spread over R rounds;
//   2. the same N Applications each with its own release name (nothing to share): the render
//      pool's wall time against N sequential `helm template` runs;
//   3. commit-to-applied after a refresh for a Helm Application of M objects (target < 1 s).
#include <sys/resource.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "sluice/appcontroller/controller.h"
#include "sluice/cache/informer.h"
#include "sluice/git/git.h"
#include "sluice/kube/client.h"
#include "sluice/kube/tls.h"
#include "sluice/source/service.h"
#include "tempdir/tempdir.h"

using namespace std::chrono;
using namespace sluice::bench;
using sluice::testing::eventually;
using sluice::testing::TempDir;

namespace {

struct Args {
    int apps = 100;
    int objects = 100;
    int rounds = 5;
};

Args parseArgs(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string f = argv[i];
        if (f == "--apps")
            a.apps = std::stoi(flagValue(argc, argv, i));
        else if (f == "--objects")
            a.objects = std::stoi(flagValue(argc, argv, i));
        else if (f == "--rounds")
            a.rounds = std::stoi(flagValue(argc, argv, i));
        else
            throw std::invalid_argument("unknown flag " + f);
    }
    return a;
}

// CPU of this process and of the children it has waited for (helm runs).
double cpuWithChildren() {
    auto seconds = [](const rusage& u) {
        return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
               static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
    };
    rusage self{}, children{};
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    return seconds(self) + seconds(children);
}

// A chart of `objects` ConfigMaps whose data comes from values.yaml.
void writeChart(Repo& repo, int objects, const std::string& greeting) {
    repo.write("chart/Chart.yaml", "apiVersion: v2\nname: bench\nversion: 0.1.0\n");
    repo.write("chart/values.yaml",
               "count: " + std::to_string(objects) + "\ngreeting: " + greeting + "\n");
    repo.write("chart/templates/configmaps.yaml",
               "{{- range $i := until (int .Values.count) }}\n---\napiVersion: v1\nkind: "
               "ConfigMap\nmetadata:\n  name: {{ $.Release.Name }}-{{ $i }}\n  labels:\n    "
               "app.kubernetes.io/part-of: bench\ndata:\n  greeting: {{ $.Values.greeting | quote "
               "}}\n  index: \"{{ $i }}\"\n{{- end }}\n");
}

struct Sample {
    double cpu = 0;
    double wall = 0;
};

void printSpread(const char* what, const std::vector<Sample>& samples) {
    std::vector<double> cpu, wall;
    for (const auto& s : samples) {
        cpu.push_back(s.cpu);
        wall.push_back(s.wall);
    }
    std::sort(cpu.begin(), cpu.end());
    std::sort(wall.begin(), wall.end());
    const auto p = [](const std::vector<double>& v) { return v[v.size() / 2]; };
    std::printf("  %-44s CPU %7.3f s (min %.3f, max %.3f)   wall %7.3f s (min %.3f, max %.3f)\n",
                what, p(cpu), cpu.front(), cpu.back(), p(wall), wall.front(), wall.back());
}

Sample helmTemplateEach(const std::string& chartDir, int apps, bool distinctNames,
                        const std::string& home) {
    const auto t0 = steady_clock::now();
    const double c0 = cpuWithChildren();
    for (int i = 0; i < apps; ++i)
        run("helm template",
            {"sh", "-c",
             "HOME='" + home + "' helm template '" +
                 (distinctNames ? "app-" + std::to_string(i) : std::string("shared")) + "' '" +
                 chartDir + "' --namespace bench --include-crds >/dev/null"});
    return {cpuWithChildren() - c0, secondsSince(t0)};
}

Sample serviceRenders(sluice::git::GitSource& git, const std::string& repoUrl, int apps,
                      bool distinctNames, const std::string& workDir) {
    sluice::source::Settings settings;
    settings.workDir = workDir;
    sluice::source::SourceService service(git, settings, {});
    std::vector<std::string> errors;
    sluice::appengine::Source source = sluice::appengine::parseSource(
        {{"repoURL", repoUrl}, {"path", "chart"}, {"helm", {{"releaseName", "shared"}}}},
        "spec.source", errors);
    if (distinctNames)
        source = sluice::appengine::parseSource({{"repoURL", repoUrl}, {"path", "chart"}},
                                                "spec.source", errors);
    const std::string sha = service.resolve(source, "main").sha;
    const auto t0 = steady_clock::now();
    const double c0 = cpuWithChildren();
    std::vector<std::thread> workers;  // the controller's 4 reconcile workers
    std::atomic<int> next{0};
    for (int w = 0; w < 4; ++w)
        workers.emplace_back([&] {
            for (int i = next++; i < apps; i = next++) {
                sluice::source::RenderContext ctx;
                ctx.appName = "app-" + std::to_string(i);
                ctx.appNamespace = "sluice";
                ctx.destinationNamespace = "bench";
                service.render({source}, {sha}, ctx);
            }
        });
    for (auto& t : workers) t.join();
    return {cpuWithChildren() - c0, secondsSince(t0)};
}

void renderBench(const Args& args, TempDir& work) {
    Repo repo(work.file("chart-repo"));
    writeChart(repo, args.objects, "hello");
    repo.commit("chart");
    sluice::git::LibGit2Source git(work.file("git-cache"));
    const std::string chartDir = work.file("chart-repo") + "/chart";
    for (bool distinct : {false, true}) {
        std::vector<Sample> sluice, helm;
        for (int r = 0; r < args.rounds; ++r) {
            sluice.push_back(serviceRenders(git, repo.url(), args.apps, distinct,
                                            work.file("sources-" + std::to_string(r))));
            helm.push_back(helmTemplateEach(chartDir, args.apps, distinct, work.file("home")));
        }
        std::printf("%d Applications of one %d-object chart at one commit, %s (%d rounds):\n",
                    args.apps, args.objects,
                    distinct ? "each with its own release name" : "same values and release name",
                    args.rounds);
        printSpread("sluice render service (4 workers)", sluice);
        printSpread("helm template once per Application", helm);
    }
}

void latencyBench(const Args& args, TempDir& work) {
    ApiServerProcess server = applicationServer(SLUICE_APISERVER_BIN);
    sluice::kube::RestClient client(server.config());
    ensureNamespace(client, "sluice");
    ensureNamespace(client, "bench-helm");
    Repo repo(work.file("latency-repo"));
    writeChart(repo, args.objects, "round-0");
    repo.commit("round 0");
    sluice::cache::SharedInformerFactory informers(client);
    auto& watched = informers.informerFor(kConfigMap, "bench-helm");
    sluice::git::LibGit2Source git(work.file("latency-git-cache"));
    sluice::appcontroller::Options opts;
    opts.controlNamespace = "sluice";
    opts.pollInterval = hours(1);
    opts.sources.workDir = work.file("latency-sources");
    sluice::appcontroller::ApplicationController controller(client, informers, git, opts);
    controller.start();
    informers.startAll();
    if (!controller.waitForSync(seconds(60))) throw std::runtime_error("controller not ready");
    client.create(application("helm", repo.url(), "chart", "bench-helm"));
    if (!eventually([&] { return isSynced(client.get(kApplication, "sluice", "helm")); },
                    minutes(2)))
        throw std::runtime_error("the Helm Application did not sync");
    auto allAt = [&](const std::string& value) {
        auto items = watched.store().list();
        if (static_cast<int>(items.size()) < args.objects) return false;
        for (const auto& o : items)
            if (o->value("/data/greeting"_json_pointer, std::string()) != value) return false;
        return true;
    };
    std::vector<double> ms;
    for (int round = 1; round <= args.rounds; ++round) {
        const std::string value = "round-" + std::to_string(round);
        writeChart(repo, args.objects, value);
        repo.commit(value);
        const auto t0 = steady_clock::now();
        controller.refresh("sluice", "helm");  // what the git webhook receiver calls
        if (!eventually([&] { return allAt(value); }, minutes(1), milliseconds(2)))
            throw std::runtime_error("round " + value + " was not applied");
        ms.push_back(secondsSince(t0) * 1000);
    }
    const auto p = percentiles(ms);
    std::sort(ms.begin(), ms.end());
    std::printf(
        "commit-to-applied after a refresh, Helm Application of %d objects: median %.0f ms "
        "(min %.0f, max %.0f; target < 1000 ms)\n",
        args.objects, p.p50, ms.front(), p.max);
    controller.stop();
}

}  // namespace

int main(int argc, char** argv) {
    const Args args = parseArgsOrExit(argc, argv, parseArgs,
                                      "sluice-bench-source [--apps N] [--objects M] [--rounds R]");
    sluice::kube::preferHashedCaDirectory();
    try {
        TempDir work;
        renderBench(args, work);
        latencyBench(args, work);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sluice-bench-source: %s\n", e.what());
        return 1;
    }
}
