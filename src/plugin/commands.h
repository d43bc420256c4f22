#pragma once
// kubectl-sluice commands. Each takes a Context (a KubeClient, output streams, the parsed
// command line) and returns the process exit code; API errors propagate as exceptions and are
// reported by run().
//
// Canary requests (Flagger's Canary has no field for them, so they are annotations on the
// Canary, written with a JSON merge patch by `kubectl sluice canary promote|abort|retry`):
//
//   sluice.io/promote: "<RFC 3339 time of the request>"
//       Finish the analysis now and promote the canary (as a successful last iteration and an
//       open confirm-promotion gate would). Accepted while the phase is Progressing, Waiting or
//       WaitingPromotion.
//   sluice.io/abort: "<RFC 3339 time of the request>"
//       Stop the analysis and roll back (phase Failed, traffic back to the primary), as a
//       successful rollback webhook does. Accepted while the phase is Progressing, Waiting,
//       WaitingPromotion or Promoting.
//   sluice.io/retry: "<RFC 3339 time of the request>"
//       Start the analysis of the current revision again after it Failed (failedChecks and
//       iterations reset). Accepted while the phase is Failed.
//
// Contract for the Canary controller: a request is honoured once, when its time is later than
// status.lastTransitionTime (an annotation left from an earlier rollout is ignored); the
// controller then removes the annotation (merge patch with null) and records the outcome in
// status (phase, a condition message naming the request). The plugin never writes status.
#include <chrono>
#include <functional>

#include <iosfwd>
#include <string>
#include "sluice/appengine/spec.h"
#include "sluice/source/service.h"

#include <nlohmann/json.hpp>

#include "args.h"
#include "sluice/git/git.h"
#include "sluice/kube/client.h"

namespace sluice::plugin {

using nlohmann::json;

inline constexpr const char* kPromoteAnnotation = "sluice.io/promote";
inline constexpr const char* kAbortAnnotation = "sluice.io/abort";
inline constexpr const char* kRetryAnnotation = "sluice.io/retry";

inline const kube::GroupVersionKind kApplicationGvk{"sluice.io", "v1alpha1", "Application"};
inline const kube::GroupVersionKind kCanaryGvk{"sluice.io", "v1alpha1", "Canary"};
inline const kube::GroupVersionKind kAppProjectGvk{"sluice.io", "v1alpha1", "AppProject"};

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;      // API or runtime error (app diff: differences found)
inline constexpr int kExitUsage = 2;      // bad command line
inline constexpr int kExitDiffError = 2;  // app diff could not compare

struct Context {
    Context(kube::KubeClient& c, std::ostream& o, std::ostream& e, const Invocation& i)
        : client(c), out(o), err(e), inv(i) {}
    kube::KubeClient& client;
    std::ostream& out;
    std::ostream& err;
    const Invocation& inv;
    std::string ns;        // namespace to use ("" with --all-namespaces for lists)
    bool color = false;    // ANSI colour on stdout
    std::string username;  // operation.initiatedBy.username
    std::function<std::chrono::system_clock::time_point()> now;
    std::function<void(std::chrono::milliseconds)> sleep;
    // Git for `app diff`, created on first use.
    std::function<git::GitSource&()> git;
};

// Application commands (app_commands.cpp, app_diff.cpp).
int appList(Context& ctx);
int appGet(Context& ctx, const std::string& name);
int appHistory(Context& ctx, const std::string& name);
int appSync(Context& ctx, const std::string& name);
int appRollback(Context& ctx, const std::string& name, const std::string& id);
int appRefresh(Context& ctx, const std::string& name);
int appDiff(Context& ctx, const std::string& name);
// Renders an Application's sources exactly as the controller does (app diff, app manifests);
// false, with the reason on ctx.err, when they cannot be rendered.
bool renderApplication(Context& ctx, const nlohmann::json& application,
                       const appengine::ApplicationSpec& spec, source::RenderedPtr& out,
                       std::string& revisionShown);
// app manifests: the rendered manifests, as `argocd app manifests`.
int appManifests(Context& ctx, const std::string& name);

// Canary commands (canary_commands.cpp).
int canaryList(Context& ctx);
int canaryStatus(Context& ctx, const std::string& name);
// action: "promote", "abort" or "retry".
int canaryRequest(Context& ctx, const std::string& name, const std::string& action);

// AppProject commands (project_commands.cpp); projects are read from --control-namespace
// unless -n or -A says otherwise.
int projectList(Context& ctx);
int clusterList(Context& ctx);
int clusterGet(Context& ctx, const std::string& name);
int projectGet(Context& ctx, const std::string& name);

// The usage text (`kubectl sluice --help`).
std::string usage();

}  // namespace sluice::plugin
