#pragma once
// The Application custom resource (Argo CD's argoproj.io/v1alpha1 Application served as
// sluice.io/v1alpha1): typed spec, parsed from JSON with every problem reported, never thrown.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/diff/diff.h"

namespace sluice::app {

inline constexpr const char* kGroup = "sluice.io";
inline constexpr const char* kVersion = "v1alpha1";
inline constexpr const char* kKind = "Application";
inline constexpr const char* kFinalizer = "resources-finalizer.sluice.io";
// Argo CD's finalizer name, accepted on migrated manifests with the same meaning.
inline constexpr const char* kArgoFinalizer = "resources-finalizer.argocd.argoproj.io";
inline constexpr const char* kDefaultServer = "https://kubernetes.default.svc";

struct Source {
    std::string repoURL;
    std::string targetRevision;  // "" = HEAD
    std::string path;            // "" or "." = repository root
    bool recurse = false;        // directory.recurse
};

struct Destination {
    std::string server;     // "" when only name is given
    std::string name;       // "in-cluster" is the local cluster
    std::string namespace_; // default namespace for namespaced objects without one
};

// spec.syncPolicy.syncOptions ("Name=value" strings), Argo CD's names and defaults.
struct SyncOptions {
    bool validate = true;               // Validate=false skips the dry run
    bool createNamespace = false;       // CreateNamespace=true
    std::string prunePropagationPolicy = "foreground";  // foreground|background|orphan
    bool pruneLast = false;             // PruneLast=true
    bool applyOutOfSyncOnly = false;    // ApplyOutOfSyncOnly=true
    bool serverSideApply = true;        // accepted; Sluice always applies server-side
    bool respectIgnoreDifferences = false;  // RespectIgnoreDifferences=true
    bool replace = false;               // Replace=true
    // Parses the list; unknown names or bad values are appended to `errors`
    // ("syncPolicy.syncOptions[2]: unknown option \"Foo=bar\"").
    static SyncOptions parse(const std::vector<std::string>& options,
                             std::vector<std::string>& errors);
};

struct RetryPolicy {
    int limit = 0;  // 0 = no retry; < 0 = unlimited (Argo CD)
    std::chrono::milliseconds duration{5000};      // backoff.duration (default 5s)
    double factor = 2;                             // backoff.factor
    std::chrono::milliseconds maxDuration{180000}; // backoff.maxDuration (default 3m)
    // Delay before retry number `attempt` (1-based): min(duration * factor^(attempt-1), max).
    std::chrono::milliseconds delayFor(int attempt) const;
};

struct SyncPolicy {
    bool automated = false;  // syncPolicy.automated present
    bool prune = false;
    bool selfHeal = false;
    bool allowEmpty = false;
    SyncOptions options;
    std::vector<std::string> rawOptions;
    std::optional<RetryPolicy> retry;
};

struct ApplicationSpec {
    std::string project = "default";
    Source source;
    Destination destination;
    SyncPolicy syncPolicy;
    std::vector<diff::IgnoreRule> ignoreDifferences;
    int revisionHistoryLimit = 10;
};

// The top-level `operation` field (Argo CD's Operation): a manual sync or, with a revision
// other than the target, a rollback.
struct Operation {
    std::string revision;            // operation.sync.revision; "" = the target revision
    bool prune = false;              // operation.sync.prune
    bool dryRun = false;             // operation.sync.dryRun
    std::vector<std::string> syncOptions;  // operation.sync.syncOptions (override the app's)
    std::optional<RetryPolicy> retry;      // operation.retry
    std::string initiatedBy;               // operation.initiatedBy.username
    bool automated = false;                // operation.initiatedBy.automated
    nlohmann::json raw;                    // the whole field, echoed into operationState
};

struct ParseResult {
    ApplicationSpec spec;
    std::optional<Operation> operation;
    // One message per problem, each naming the field ("spec.source.repoURL: required").
    // Non-empty means the Application gets an InvalidSpecError condition and is not synced.
    std::vector<std::string> errors;
};

// Parses a whole Application object. Unknown fields under spec (typos such as "syncPolicy.
// automatic") are errors, as are wrong types, a missing repoURL, a destination other than
// the local cluster (server "https://kubernetes.default.svc" or name "in-cluster"; any other
// server is reported as unsupported), a path escaping the repository, a negative
// revisionHistoryLimit, and invalid syncOptions / retry durations ("5s", "3m", "1h").
ParseResult parseApplication(const nlohmann::json& app);

// Argo CD duration strings: "30s", "5m", "1h", "1h30m", "250ms", or a bare number of seconds.
std::optional<std::chrono::milliseconds> parseDuration(const std::string& text);

}  // namespace sluice::app
