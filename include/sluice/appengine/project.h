#pragma once
// AppProjects (Argo CD's AppProject, group sluice.io): what an Application of a project may
// deploy, from where, to where, and when. Pure rules over parsed projects; the controller reads
// the projects from its informer and reports what these functions refuse.
//
// Semantics follow Argo CD:
// - Patterns are globs (`*`, `?`, `[a-z]`, `{a,b}`); sourceRepos and destinations take a leading
//   `!` to deny. A repository is permitted when some pattern matches it and no deny pattern
//   does; a destination likewise (its server or its name, and its namespace).
// - Cluster-scoped kinds must be in clusterResourceWhitelist (none by default) and not in
//   clusterResourceBlacklist; namespaced kinds must be in namespaceResourceWhitelist when that
//   is given (every kind when it is absent) and not in namespaceResourceBlacklist.
// - Sync windows: no matching window, every sync allowed; a matching active deny window blocks
//   syncs (manual ones pass when every active deny window has manualSync); otherwise an active
//   allow window allows, and matching allow windows none of which is active block (manual syncs
//   pass when one of them has manualSync).
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::appengine {

inline constexpr const char* kProjectKind = "AppProject";
inline constexpr const char* kDefaultProject = "default";
inline constexpr const char* kInClusterServer = "https://kubernetes.default.svc";
inline constexpr const char* kInClusterName = "in-cluster";
// The Application condition while a sync window holds a sync (Sluice's: Argo CD shows windows
// only through its API). Its message starts with Argo CD's kSyncBlockedMessage.
inline constexpr const char* kSyncWindowBlocked = "SyncWindowBlocked";
inline constexpr const char* kSyncBlockedMessage = "Sync operation blocked by sync window";

// Glob match of value against pattern: `*` any run, `?` one character, `[...]` (`[!...]`
// negated) a class, `{a,b}` alternatives, `\` escapes.
bool globMatch(const std::string& pattern, const std::string& value);

// A cron schedule of five fields (minute hour day-of-month month day-of-week): lists, ranges,
// steps, `*`/`?`, month and day names, 7 = Sunday; or @yearly, @monthly, @weekly, @daily,
// @hourly. Day of month and day of week are OR-ed when both are restricted, as in cron.
class CronSchedule {
  public:
    // nullopt with error set when the text is not a schedule.
    static std::optional<CronSchedule> parse(const std::string& text, std::string& error);
    // Whether the schedule fires at this local minute (month 1-12, weekday 0 = Sunday).
    bool matches(int minute, int hour, int day, int month, int weekday) const;
    bool matchesDay(int day, int month, int weekday) const;
    bool matchesHour(int hour) const { return (hours_ >> hour) & 1; }
    bool matchesMinute(int minute) const { return (minutes_ >> minute) & 1; }

  private:
    uint64_t minutes_ = 0;
    uint32_t hours_ = 0, days_ = 0;
    uint16_t months_ = 0;
    uint8_t weekdays_ = 0;
    bool dayStar_ = false, weekdayStar_ = false;
};

// A time zone from the system's zoneinfo files (TZif), read without touching the process's TZ.
// Times after the file's last transition (2037 in full zone files) keep its last offset.
class TimeZone {
  public:
    // "" and "UTC" are UTC; nullptr with error set when the zone is unknown.
    static std::shared_ptr<const TimeZone> load(const std::string& name, std::string& error);
    // The offset from UTC at that instant, in seconds.
    int64_t offsetAt(int64_t unixSeconds) const;

  private:
    std::vector<int64_t> transitions_;  // ascending, unix seconds
    std::vector<int32_t> offsets_;      // offsets_[i] applies from transitions_[i]
    int32_t initialOffset_ = 0;         // before the first transition
};

// Go's time.ParseDuration for the units a window uses: "1h", "30m", "1h30m", "90s", "1.5h".
std::optional<std::chrono::seconds> parseGoDuration(const std::string& text);

struct GroupKind {
    std::string group;
    std::string kind;
};

struct ProjectDestination {
    std::string server;
    std::string name;
    std::string namespace_;
};

// spec.destinationServiceAccounts[]: the service account a sync to a matching destination
// impersonates.
struct DestinationServiceAccount {
    std::string server;      // glob (leading `!` denies) on the destination cluster's URL
    std::string namespace_;  // glob (leading `!` denies) on the Application's destination namespace
    std::string defaultServiceAccount;  // "name" (in the destination namespace) or "ns:name"
};

struct SyncWindow {
    std::string kind;  // allow | deny
    std::string schedule;
    std::string duration;
    std::string timeZone;
    std::vector<std::string> applications, namespaces, clusters;
    bool manualSync = false;
    bool andOperator = false;  // every given list must match, not any
    CronSchedule cron;
    std::chrono::seconds length{0};
    std::shared_ptr<const TimeZone> zone;
    std::string describe() const;  // "deny 0 22 * * * (1h)"
};

struct Project {
    std::string name = kDefaultProject;
    std::vector<std::string> sourceRepos;
    std::vector<ProjectDestination> destinations;
    std::vector<GroupKind> clusterWhitelist, clusterBlacklist;
    std::optional<std::vector<GroupKind>> namespaceWhitelist;  // absent: every kind
    std::vector<GroupKind> namespaceBlacklist;
    std::vector<std::string> sourceNamespaces;
    bool permitOnlyProjectScopedClusters = false;
    std::vector<SyncWindow> syncWindows;
    std::vector<DestinationServiceAccount> destinationServiceAccounts;
    bool builtIn = false;  // the implicit default project (no AppProject named default)
};

struct ProjectParse {
    Project project;
    std::vector<std::string> errors;  // "spec.syncWindows[0].schedule: ..."
};
ProjectParse parseProject(const nlohmann::json& appProject);
// The project `default` while no AppProject of that name exists: everything is allowed.
Project builtInDefaultProject();

// The AppProject fields accepted without effect (docs/crds.md says so), and which of them a
// project sets.
const std::vector<std::string>& projectFieldsWithoutEffect();
std::vector<std::string> unimplementedProjectFieldsIn(const nlohmann::json& appProject);

// The destination as a project sees it: the in-cluster destination has both its server and
// its name (only the local cluster is managed).
struct AppDestination {
    std::string server;
    std::string name;
    std::string namespace_;
    std::string clusterProject;  // the project the resolved cluster is scoped to, if any
};
AppDestination resolveDestination(const std::string& server, const std::string& name,
                                  const std::string& ns);

bool isSourcePermitted(const Project& p, const std::string& repoUrl);
bool isDestinationPermitted(const Project& p, const AppDestination& d);
bool isGroupKindPermitted(const Project& p, const std::string& group, const std::string& kind,
                          bool namespaced);
bool isSourceNamespacePermitted(const Project& p, const std::string& appNamespace,
                                const std::string& controlNamespace);

// Argo CD's messages for each refusal.
std::string sourceNotPermitted(const Project& p, const std::string& repoUrl);
std::string destinationNotPermitted(const Project& p, const AppDestination& d);
std::string missingProject(const std::string& name);

// The rules an Application's spec breaks (source namespace, every source, the destination), in
// that order, as Argo CD words them; empty when it may be deployed.
std::vector<std::string> specViolations(const Project& p, const std::string& appNamespace,
                                        const std::string& controlNamespace,
                                        const std::vector<std::string>& repoUrls,
                                        const AppDestination& destination);
// The prepared objects (namespaced ones carry a namespace, cluster-scoped ones none) the
// project refuses: kinds not permitted, namespaces not among its destinations. One message
// per group/kind or namespace.
std::vector<std::string> resourceViolations(const Project& p,
                                            const std::vector<nlohmann::json>& prepared,
                                            const AppDestination& destination);

// Argo CD's "sync with impersonation": the user a sync impersonates. Empty user and no error
// when the project lists no destinationServiceAccounts (the controller's own identity).
// Otherwise the first item whose server matches the destination cluster's URL and whose
// namespace matches the Application's destination namespace gives
// "system:serviceaccount:<ns>:<name>" (ns: the item's, else the destination namespace, else
// the Application's namespace). No matching item, or a defaultServiceAccount that is blank or
// has one of `!*[]{}\/`, is an error worded as Argo CD's.
struct ImpersonationResult {
    std::string user;   // "" : no impersonation
    std::string error;  // the sync fails with it
};
ImpersonationResult serviceAccountToImpersonate(const Project& p, const std::string& clusterServer,
                                                const std::string& destinationServer,
                                                const std::string& destinationNamespace,
                                                const std::string& appNamespace);

// The sync windows of p that apply to the Application, and whether they let a sync run now.
struct SyncWindowVerdict {
    bool hasWindows = false;  // some window matches the Application
    bool automatedAllowed = true;
    bool manualAllowed = true;
    std::vector<std::string> active;  // describe() of the matching active windows
    std::string reason;               // why syncs are blocked ("" when allowed)
};
SyncWindowVerdict evaluateSyncWindows(const Project& p, const std::string& appName,
                                      const AppDestination& destination,
                                      std::chrono::system_clock::time_point now);
// Whether one window is active at `now`: its schedule fired within the last `duration`
// (a fire at t makes it active in [t, t + duration)).
bool windowActive(const SyncWindow& w, std::chrono::system_clock::time_point now);

}  // namespace sluice::appengine
