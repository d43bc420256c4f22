#include "run.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <ostream>
#include <thread>

#include "commands.h"
#include "sluice/kube/errors.h"

namespace sluice::plugin {

namespace {

struct Command {
    std::vector<std::string> args;  // positional argument names
    std::set<std::string> flags;
    std::set<std::string> outputs;
};

const std::map<std::string, Command>& commands() {
    static const std::map<std::string, Command> kCommands = {
        {"app list", {{}, {}, {"json", "yaml", "wide", "name"}}},
        {"app get", {{"NAME"}, {}, {"json", "yaml"}}},
        {"app history", {{"NAME"}, {}, {"json", "yaml"}}},
        {"app diff", {{"NAME"}, {"revision", "refresh"}, {}}},
        {"app manifests", {{"NAME"}, {"revision", "refresh"}, {}}},
        {"app sync",
         {{"NAME"}, {"revision", "prune", "dry-run", "sync-option", "wait", "timeout"}, {}}},
        {"app rollback", {{"NAME", "ID"}, {"prune", "dry-run", "wait", "timeout"}, {}}},
        {"app refresh", {{"NAME"}, {"hard", "wait", "timeout"}, {}}},
        {"canary list", {{}, {}, {"json", "yaml", "wide", "name"}}},
        {"project list", {{}, {}, {"json", "yaml", "name"}}},
        {"project get", {{"NAME"}, {}, {"json", "yaml"}}},
        {"cluster list", {{}, {}, {"json", "yaml", "name"}}},
        {"cluster get", {{"NAME"}, {}, {"json", "yaml"}}},
        {"canary status", {{"NAME"}, {}, {"json", "yaml"}}},
        {"canary promote", {{"NAME"}, {}, {}}},
        {"canary abort", {{"NAME"}, {}, {}}},
        {"canary retry", {{"NAME"}, {}, {}}},
    };
    return kCommands;
}

std::string apiErrorText(const kube::ApiError& e) {
    return "Error from server (" + (e.reason().empty() ? std::to_string(e.code()) : e.reason()) +
           "): " + e.message();
}

}  // namespace

std::string usage() {
    return R"(kubectl sluice: Sluice Applications, AppProjects and Canaries from kubectl.

Usage:
  kubectl sluice app list [-n NS | -A] [-o json|yaml|wide|name]
  kubectl sluice app get NAME [-o json|yaml]
  kubectl sluice app diff NAME [--revision REV] [--refresh]
  kubectl sluice app manifests NAME [--revision REV] [--refresh]
  kubectl sluice app sync NAME [--revision REV] [--prune] [--dry-run] [--sync-option OPT]...
                               [--wait [--timeout 5m]]
  kubectl sluice app rollback NAME ID [--prune] [--dry-run] [--wait [--timeout 5m]]
  kubectl sluice app history NAME [-o json|yaml]
  kubectl sluice app refresh NAME [--hard] [--wait [--timeout 5m]]
  kubectl sluice canary list [-n NS | -A] [-o json|yaml|wide|name]
  kubectl sluice canary status NAME [-o json|yaml]
  kubectl sluice canary promote|abort|retry NAME
  kubectl sluice project list [-n NS | -A] [-o json|yaml|name]
  kubectl sluice project get NAME [-o json|yaml]
  kubectl sluice cluster list [-o json|yaml|name]
  kubectl sluice cluster get NAME|SERVER [-o json|yaml]

Global flags:
  -n, --namespace NS          namespace (default: the kubeconfig context's)
  -A, --all-namespaces        list across all namespaces
      --kubeconfig PATH       kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)
      --context NAME          kubeconfig context
  -o, --output FORMAT         output format where listed above
      --control-namespace NS  the controller's namespace, holding repository and cluster
                              Secrets and AppProjects (sluice; project commands read it
                              unless -n/-A, cluster commands always)
      --repo-cache-dir DIR    git clones for app diff and app manifests (~/.cache/sluice/repos)
      --color auto|always|never  colour the diff (auto: when stdout is a terminal)

app diff and app manifests render sources as the controller does, with helm and kubectl
(kustomize) from PATH, or SLUICE_HELM_PATH, SLUICE_KUBECTL_PATH, SLUICE_KUSTOMIZE_PATH.

Exit codes: 0 success; 1 error (app diff: differences found); 2 bad usage (app diff: error).
)";
}

int run(const std::vector<std::string>& args, Environment& env) {
    Invocation inv;
    bool isDiff = false;
    try {
        inv = parseArgs(args);
        if (inv.help) {
            env.out << usage();
            return kExitOk;
        }
        if (inv.words.size() < 2) {
            if (inv.words.empty()) throw UsageError("a command is required");
            throw UsageError("a subcommand of \"" + inv.words[0] + "\" is required");
        }
        const std::string name = inv.words[0] + " " + inv.words[1];
        auto it = commands().find(name);
        if (it == commands().end()) throw UsageError("unknown command \"" + name + "\"");
        const Command& cmd = it->second;
        isDiff = name == "app diff";
        const std::size_t given = inv.words.size() - 2;
        if (given != cmd.args.size()) {
            std::string names;
            for (const auto& a : cmd.args) names += " " + a;
            throw UsageError(
                "\"" + name + "\" takes " +
                (cmd.args.empty() ? std::string("no arguments") : "arguments:" + names) + " (got " +
                std::to_string(given) + ")");
        }
        checkFlags(inv, name, cmd.flags);
        checkOutput(inv, name, cmd.outputs);
        if (inv.allNamespaces && !cmd.args.empty())
            throw UsageError("--all-namespaces applies only to list commands");

        std::string defaultNamespace = "default";
        std::unique_ptr<kube::KubeClient> client = env.connect(inv, defaultNamespace);
        std::unique_ptr<git::GitSource> git;
        Context ctx(*client, env.out, env.err, inv);
        ctx.ns = inv.allNamespaces ? "" : (inv.ns.empty() ? defaultNamespace : inv.ns);
        ctx.color =
            inv.color == "always" || (inv.color == "auto" && env.stdoutIsTty && !env.noColor);
        ctx.username = env.username;
        ctx.now = env.now;
        ctx.sleep = env.sleep;
        ctx.git = [&]() -> git::GitSource& {
            if (!git) git = env.makeGit(inv);
            return *git;
        };
        const auto& w = inv.words;
        if (name == "app list") return appList(ctx);
        if (name == "app get") return appGet(ctx, w[2]);
        if (name == "app history") return appHistory(ctx, w[2]);
        if (name == "app diff") return appDiff(ctx, w[2]);
        if (name == "app manifests") return appManifests(ctx, w[2]);
        if (name == "app sync") return appSync(ctx, w[2]);
        if (name == "app rollback") return appRollback(ctx, w[2], w[3]);
        if (name == "app refresh") return appRefresh(ctx, w[2]);
        if (name == "canary list") return canaryList(ctx);
        if (name == "canary status") return canaryStatus(ctx, w[2]);
        if (name == "project list") return projectList(ctx);
        if (name == "project get") return projectGet(ctx, w[2]);
        if (name == "cluster list") return clusterList(ctx);
        if (name == "cluster get") return clusterGet(ctx, w[2]);
        return canaryRequest(ctx, w[2], w[1]);
    } catch (const UsageError& e) {
        env.err << "error: " << e.what() << "\nSee 'kubectl sluice --help' for usage.\n";
        return kExitUsage;
    } catch (const kube::ApiError& e) {
        env.err << apiErrorText(e) << "\n";
    } catch (const std::exception& e) {
        env.err << "error: " << e.what() << "\n";
    }
    return isDiff ? kExitDiffError : kExitError;
}

Environment defaultEnvironment(std::ostream& out, std::ostream& err) {
    Environment env(out, err);
    env.stdoutIsTty = ::isatty(STDOUT_FILENO) == 1;
    env.noColor = std::getenv("NO_COLOR") != nullptr && *std::getenv("NO_COLOR") != '\0';
    const char* user = std::getenv("USER");
    if (!user || !*user) user = std::getenv("LOGNAME");
    env.username = user && *user ? user : "kubectl-sluice";
    env.now = [] { return std::chrono::system_clock::now(); };
    env.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
    env.connect = [](const Invocation& inv, std::string& defaultNamespace) {
        kube::ClusterConfig cfg = kube::loadDefaultConfig(inv.kubeconfig, inv.context);
        cfg.userAgent = "kubectl-sluice/0.1";
        cfg.maxRetries = 2;
        if (!cfg.defaultNamespace.empty()) defaultNamespace = cfg.defaultNamespace;
        return std::unique_ptr<kube::KubeClient>(std::make_unique<kube::RestClient>(cfg));
    };
    env.makeGit = [](const Invocation& inv) {
        std::filesystem::path dir = inv.repoCacheDir;
        if (dir.empty()) {
            const char* xdg = std::getenv("XDG_CACHE_HOME");
            const char* home = std::getenv("HOME");
            if (xdg && *xdg) {
                dir = std::filesystem::path(xdg) / "sluice" / "repos";
            } else if (home && *home) {
                dir = std::filesystem::path(home) / ".cache" / "sluice" / "repos";
            } else {
                dir = std::filesystem::temp_directory_path() / "sluice-repos";
            }
        }
        std::filesystem::create_directories(dir);
        return std::unique_ptr<git::GitSource>(std::make_unique<git::LibGit2Source>(dir));
    };
    return env;
}

}  // namespace sluice::plugin
