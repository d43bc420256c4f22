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

namespace sluice::appengine {

inline constexpr const char* kGroup = "sluice.io";
inline constexpr const char* kVersion = "v1alpha1";
inline constexpr const char* kKind = "Application";
inline constexpr const char* kFinalizer = "resources-finalizer.sluice.io";
// Argo CD's finalizer name, accepted on migrated manifests with the same meaning.
inline constexpr const char* kArgoFinalizer = "resources-finalizer.argocd.argoproj.io";
// Added while the Application's source has PostDelete hooks: they run when it is deleted,
// after its resources (Argo CD's, honoured too).
inline constexpr const char* kPostDeleteFinalizer = "post-delete-finalizer.sluice.io";
inline constexpr const char* kArgoPostDeleteFinalizer = "post-delete-finalizer.argocd.argoproj.io";
inline constexpr const char* kDefaultServer = "https://kubernetes.default.svc";

// spec.source.helm (Argo CD's ApplicationSourceHelm).
struct HelmParameter {
    std::string name;
    std::string value;
    bool forceString = false;  // --set-string instead of --set
};
struct HelmFileParameter {
    std::string name;
    std::string path;  // relative to the chart, or $ref/... with multiple sources
};
struct HelmSource {
    std::vector<std::string> valueFiles;  // relative to the chart; "$ref/path" for a ref source
    std::string values;                   // inline values (YAML text)
    nlohmann::json valuesObject;          // inline values as an object (null when absent)
    std::vector<HelmParameter> parameters;
    std::vector<HelmFileParameter> fileParameters;
    std::string releaseName;  // "" = the Application's name
    std::string namespace_;   // "" = the destination namespace
    bool skipCrds = false;
    bool skipSchemaValidation = false;
    bool ignoreMissingValueFiles = false;
    bool passCredentials = false;
    std::string kubeVersion;               // "" = the destination cluster's
    std::vector<std::string> apiVersions;  // empty = the destination cluster's
};

// spec.source.kustomize (Argo CD's ApplicationSourceKustomize).
struct KustomizeReplica {
    std::string name;
    long long count = 0;
};
struct KustomizeSource {
    std::string namePrefix;
    std::string nameSuffix;
    std::string namespace_;
    std::vector<std::string> images;  // "name=newName:tag", "name:tag", "name@digest"
    std::map<std::string, std::string> commonLabels;
    std::map<std::string, std::string> commonAnnotations;
    bool commonAnnotationsEnvsubst = false;
    bool labelWithoutSelector = false;
    bool forceCommonLabels = false;
    bool forceCommonAnnotations = false;
    std::vector<KustomizeReplica> replicas;
    nlohmann::json patches = nlohmann::json::array();  // Kustomize patches, as written
    std::vector<std::string> components;
    bool ignoreMissingComponents = false;
    std::string kubeVersion;
    std::vector<std::string> apiVersions;
    // Whether any field asks for a change to the kustomization (none: it is built as it is).
    bool modifiesKustomization() const;
};

// spec.source.directory.jsonnet.
struct JsonnetVar {
    std::string name;
    std::string value;
    bool code = false;  // a Jsonnet expression rather than a string
};
struct JsonnetOptions {
    std::vector<JsonnetVar> extVars;
    std::vector<JsonnetVar> tlas;
    std::vector<std::string> libs;  // library directories, relative to the repository root
};

// spec.source.plugin (a config management plugin named by an administrator's definition).
struct PluginSource {
    std::string name;  // "" = discovered
    std::vector<std::pair<std::string, std::string>> env;
    nlohmann::json parameters = nlohmann::json::array();
};

struct Source {
    std::string repoURL;
    std::string targetRevision;  // "" = HEAD (git) or the latest version (Helm chart)
    std::string path;            // "" or "." = repository root
    std::string chart;           // a chart of a Helm repository (repoURL) instead of git
    std::string ref;             // with multiple sources: name for "$ref/..." value files
    std::string name;            // with multiple sources: Argo CD's display name
    bool recurse = false;        // directory.recurse
    std::string include;         // directory.include glob ("{a,b}" alternatives)
    std::string exclude;         // directory.exclude glob
    std::optional<JsonnetOptions> jsonnet;  // directory.jsonnet
    bool directory = false;                 // an explicit directory block was given
    std::optional<HelmSource> helm;
    std::optional<KustomizeSource> kustomize;
    std::optional<PluginSource> plugin;
    nlohmann::json raw;  // the source as written (echoed in status, digested for caches)
    // A Helm chart from a Helm (HTTP or OCI) repository rather than a git repository.
    bool isHelmRepository() const { return !chart.empty(); }
    // With multiple sources, a source with a ref and neither path nor chart only provides
    // files to the others (Argo CD renders nothing from it).
    bool rendersManifests() const { return ref.empty() || !path.empty() || !chart.empty(); }
};

struct Destination {
    std::string server;      // "" when only name is given
    std::string name;        // "in-cluster" is the local cluster
    std::string namespace_;  // default namespace for namespaced objects without one
};

// spec.syncPolicy.syncOptions ("Name=value" strings), Argo CD's names and defaults.
struct SyncOptions {
    bool validate = true;                               // Validate=false skips the dry run
    bool createNamespace = false;                       // CreateNamespace=true
    std::string prunePropagationPolicy = "foreground";  // foreground|background|orphan
    bool pruneLast = false;                             // PruneLast=true
    bool applyOutOfSyncOnly = false;                    // ApplyOutOfSyncOnly=true
    bool serverSideApply = true;            // accepted; Sluice always applies server-side
    bool respectIgnoreDifferences = false;  // RespectIgnoreDifferences=true
    bool replace = false;                   // Replace=true
    // Parses the list; unknown names or bad values are appended to `errors`
    // ("syncPolicy.syncOptions[2]: unknown option \"Foo=bar\"").
    static SyncOptions parse(const std::vector<std::string>& options,
                             std::vector<std::string>& errors);
};

struct RetryPolicy {
    int limit = 0;                                  // 0 = no retry; < 0 = unlimited (Argo CD)
    std::chrono::milliseconds duration{5000};       // backoff.duration (default 5s)
    double factor = 2;                              // backoff.factor
    std::chrono::milliseconds maxDuration{180000};  // backoff.maxDuration (default 3m)
    // Delay before retry number `attempt` (1-based): min(duration * factor^(attempt-1), max).
    std::chrono::milliseconds delayFor(int attempt) const;
};

struct SyncPolicy {
    bool automated = false;  // syncPolicy.automated present
    bool prune = false;
    bool selfHeal = false;
    bool allowEmpty = false;
    // Sluice's: an automated sync whose PostSync hook fails syncs back to the last revision
    // whose sync succeeded, and holds the failed revision until git moves past it.
    bool rollbackOnPostSyncFailure = false;
    SyncOptions options;
    std::vector<std::string> rawOptions;
    std::optional<RetryPolicy> retry;
};

struct ApplicationSpec {
    std::string project = "default";
    Source source;  // spec.source, or the first of spec.sources
    // Every source in order: spec.source alone, or spec.sources (multiSource).
    std::vector<Source> sources;
    bool multiSource = false;
    Destination destination;
    SyncPolicy syncPolicy;
    std::vector<diff::IgnoreRule> ignoreDifferences;
    int revisionHistoryLimit = 10;
};

// The top-level `operation` field (Argo CD's Operation): a manual sync or, with a revision
// other than the target, a rollback.
struct Operation {
    std::string revision;                  // operation.sync.revision; "" = the target revision
    std::vector<std::string> revisions;    // operation.sync.revisions (multiple sources)
    bool prune = false;                    // operation.sync.prune
    bool dryRun = false;                   // operation.sync.dryRun
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

// Parses one source (spec.source or spec.sources[i], named by `at` in messages).
Source parseSource(const nlohmann::json& source, const std::string& at,
                   std::vector<std::string>& errors);

// Parses a whole Application object. Unknown fields under spec (typos such as "syncPolicy.
// automatic") are errors, as are wrong types, a missing repoURL, a destination other than
// the local cluster (server "https://kubernetes.default.svc" or name "in-cluster"; any other
// server is reported as unsupported), a path escaping the repository, a negative
// revisionHistoryLimit, and invalid syncOptions / retry durations ("5s", "3m", "1h").
ParseResult parseApplication(const nlohmann::json& app);

// The Application fields this version accepts without acting on them, as paths from the object
// ("spec.project"): exactly the rows docs/crds.md marks "not implemented" (a test holds the two
// together).
const std::vector<std::string>& fieldsWithoutEffect();
// Those an Application sets to something that would restrict or change a sync in Argo CD
// ("spec.project" other than "default"). The controller says so in a FieldsNotImplemented Event.
std::vector<std::string> unimplementedFieldsIn(const nlohmann::json& app);

// Argo CD duration strings: "30s", "5m", "1h", "1h30m", "250ms", or a bare number of seconds.
std::optional<std::chrono::milliseconds> parseDuration(const std::string& text);

}  // namespace sluice::appengine
