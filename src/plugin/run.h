#pragma once
// kubectl-sluice's entry point as a function: parses the command line, connects, dispatches and
// maps errors to exit codes (0 ok; 1 error, or differences for `app diff`; 2 usage errors, or
// `app diff` failing to compare).
#include <chrono>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "sluice/git/git.h"
#include "sluice/kube/client.h"

namespace sluice::plugin {

struct Environment {
    Environment(std::ostream& o, std::ostream& e) : out(o), err(e) {}
    std::ostream& out;
    std::ostream& err;
    bool stdoutIsTty = false;  // --color=auto colours only then
    bool noColor = false;      // NO_COLOR is set
    std::string username;      // operation.initiatedBy.username
    std::function<std::chrono::system_clock::time_point()> now;
    std::function<void(std::chrono::milliseconds)> sleep;
    // A client for the flags' kubeconfig/context; sets defaultNamespace to the context's
    // namespace. Throws kube::ConfigError.
    std::function<std::unique_ptr<kube::KubeClient>(const Invocation&,
                                                    std::string& defaultNamespace)>
        connect;
    // The git source for `app diff`.
    std::function<std::unique_ptr<git::GitSource>(const Invocation&)> makeGit;
};

int run(const std::vector<std::string>& args, Environment& env);

// Production wiring: RestClient from kube::loadDefaultConfig, LibGit2Source under
// --repo-cache-dir (default $XDG_CACHE_HOME/sluice/repos or ~/.cache/sluice/repos), the real
// clock, $USER (or "kubectl-sluice") as the username.
Environment defaultEnvironment(std::ostream& out, std::ostream& err);

}  // namespace sluice::plugin
