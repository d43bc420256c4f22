#include "observability.h"

#include "sluice/kube/types.h"

namespace sluice {

using nlohmann::json;

namespace {

std::string strAt(const json& obj, const char* pointer) {
    auto ptr = json::json_pointer(pointer);
    if (!obj.contains(ptr)) return "";
    const json& v = obj.at(ptr);
    return v.is_string() ? v.get<std::string>() : "";
}

double numAt(const json& obj, const char* pointer) {
    auto ptr = json::json_pointer(pointer);
    if (!obj.contains(ptr)) return 0;
    const json& v = obj.at(ptr);
    return v.is_number() ? v.get<double>() : 0;
}

double seconds(std::chrono::nanoseconds d) {
    return std::chrono::duration<double>(d).count();
}

// Flagger's flagger_canary_status values: 0 running, 1 successful, 2 failed.
int canaryStatusCode(const std::string& phase) {
    if (phase == "Succeeded" || phase == "Initialized") return 1;
    if (phase == "Failed") return 2;
    return 0;
}

}  // namespace

ControllerMetrics::ControllerMetrics(const std::string& version)
    : kubeRequests_(registry_.counter("sluice_kube_requests_total",
                                      "Kubernetes API requests by verb and HTTP code (0: no "
                                      "response).",
                                      {"verb", "code"})),
      kubeLatency_(registry_.histogram("sluice_kube_request_duration_seconds",
                                       "Kubernetes API request latency by verb.", {"verb"})),
      reconciles_(registry_.counter("sluice_reconcile_total",
                                    "Reconciles by controller and result (success, error).",
                                    {"controller", "result"})),
      reconcileDuration_(registry_.histogram("sluice_reconcile_duration_seconds",
                                             "Reconcile duration by controller.", {"controller"},
                                             telemetry::exponentialBuckets(0.001, 2.5, 12))),
      syncs_(registry_.counter("sluice_application_sync_total",
                               "Application sync operations by result (Succeeded, Failed).",
                               {"namespace", "name", "result"})),
      appInfo_(registry_.gauge("sluice_application_info",
                               "One series per Application: its sync and health status.",
                               {"namespace", "name", "sync_status", "health_status"})),
      gitFetches_(registry_.counter("sluice_git_fetch_total",
                                    "Git fetches (resolves of a targetRevision) by result.",
                                    {"result"})),
      gitFetchDuration_(registry_.histogram("sluice_git_fetch_duration_seconds",
                                            "Git fetch duration.", {},
                                            telemetry::exponentialBuckets(0.01, 2.5, 10))),
      canaryWeight_(registry_.gauge("sluice_canary_weight",
                                    "Traffic weight routed to the canary, percent.",
                                    {"namespace", "name"})),
      canaryStatus_(registry_.gauge("sluice_canary_status",
                                    "Canary state as Flagger reports it: 0 running, 1 "
                                    "successful, 2 failed.",
                                    {"namespace", "name"})),
      canaryPhase_(registry_.gauge("sluice_canary_phase",
                                   "One series per Canary with its current phase.",
                                   {"namespace", "name", "phase"})),
      canaryFailedChecks_(registry_.gauge("sluice_canary_failed_checks",
                                          "Failed checks of the current canary analysis.",
                                          {"namespace", "name"})),
      canaryMetricValue_(registry_.gauge("sluice_canary_metric_value",
                                         "The last value each analysis metric of a Canary "
                                         "returned (no series while it returns no data).",
                                         {"namespace", "name", "metric"})),
      queueDepth_(registry_.gauge("sluice_workqueue_depth", "Keys waiting in a work queue.",
                                  {"controller"})),
      webhooks_(registry_.counter("sluice_webhook_requests_total",
                                  "Git webhook requests by provider and HTTP status answered.",
                                  {"provider", "code"})),
      leader_(registry_.gauge("sluice_leader",
                              "1 while this replica holds the leader Lease (or runs without "
                              "leader election), else 0.")),
      clusterInfo_(registry_.gauge("sluice_cluster_info",
                                   "One series per destination cluster with its version.",
                                   {"name", "server", "k8s_version"})),
      clusterConnection_(registry_.gauge("sluice_cluster_connection_status",
                                         "1 while the cluster's watches are connected, 0 when "
                                         "it is unreachable (no series while unused).",
                                         {"name", "server"})),
      clusterObjects_(registry_.gauge("sluice_cluster_cache_objects",
                                      "Objects in the cluster's watch caches.",
                                      {"name", "server"})),
      clusterApps_(registry_.gauge("sluice_cluster_applications",
                                   "Applications deploying to the cluster.", {"name", "server"})),
      shardSlots_(registry_.gauge("sluice_shard_slots_held",
                                  "Slots (shares of the Applications and Canaries) whose Lease "
                                  "this replica holds, with --sharding leases.")),
      shardMembers_(registry_.gauge("sluice_shard_members",
                                    "Live replicas this replica sees in its sharding group, "
                                    "itself included, with --sharding leases.")) {
    registry_.gauge("sluice_build_info", "Version of the running controller.", {"version"})
        .set({version}, 1);
}

kube::RequestObserver ControllerMetrics::kubeRequestObserver() {
    return [this](const std::string& verb, int code, std::chrono::nanoseconds latency) {
        kubeRequests_.inc({verb, std::to_string(code)});
        kubeLatency_.observe({verb}, seconds(latency));
    };
}

void ControllerMetrics::observeApplicationReconcile(const appcontroller::ReconcileRecord& r) {
    reconciles_.inc({"application", r.succeeded ? "success" : "error"});
    reconcileDuration_.observe({"application"}, seconds(r.duration));
    if (r.synced) {
        auto slash = r.key.find('/');
        std::string ns = slash == std::string::npos ? "" : r.key.substr(0, slash);
        std::string name = slash == std::string::npos ? r.key : r.key.substr(slash + 1);
        syncs_.inc({ns, name, r.succeeded ? "Succeeded" : "Failed"});
    }
}

void ControllerMetrics::observeCanaryReconcile(const canarycontroller::ReconcileRecord& r) {
    reconciles_.inc({"canary", r.succeeded ? "success" : "error"});
    reconcileDuration_.observe({"canary"}, seconds(r.duration));
    auto slash = r.key.find('/');
    if (slash == std::string::npos) return;
    const std::string ns = r.key.substr(0, slash), name = r.key.substr(slash + 1);
    if (r.phase.empty()) {  // the Canary is gone
        canaryMetricValue_.removeMatching({ns, name});
        return;
    }
    for (const auto& [metric, result] : r.metrics) {
        // No data or a query error is no value: the series goes rather than show a stale one.
        if (result.hasValue())
            canaryMetricValue_.set({ns, name, metric}, result.value);
        else
            canaryMetricValue_.remove({ns, name, metric});
    }
}

void ControllerMetrics::observeGitFetch(std::chrono::nanoseconds duration,
                                        const std::string& error) {
    gitFetches_.inc({error.empty() ? "success" : "error"});
    gitFetchDuration_.observe(seconds(duration));
}

void ControllerMetrics::observeWebhook(const std::string& provider, int status) {
    webhooks_.inc({provider.empty() ? "unknown" : provider, std::to_string(status)});
}

void ControllerMetrics::setLeader(bool leading) {
    leader_.set(leading ? 1 : 0);
}

void ControllerMetrics::collectApplications(cache::Informer& applications) {
    registry_.addCollector([this, &applications] {
        // Rebuilt at every scrape, so a deleted Application leaves no series behind.
        appInfo_.clear();
        for (const auto& obj : applications.store().list()) {
            std::string sync = strAt(*obj, "/status/sync/status");
            std::string health = strAt(*obj, "/status/health/status");
            appInfo_.set({kube::namespaceOf(*obj), kube::nameOf(*obj),
                          sync.empty() ? "Unknown" : sync, health.empty() ? "Unknown" : health},
                         1);
        }
    });
}

void ControllerMetrics::collectCanaries(cache::Informer& canaries) {
    registry_.addCollector([this, &canaries] {
        canaryWeight_.clear();
        canaryStatus_.clear();
        canaryPhase_.clear();
        canaryFailedChecks_.clear();
        for (const auto& obj : canaries.store().list()) {
            const std::string ns = kube::namespaceOf(*obj), name = kube::nameOf(*obj);
            std::string phase = strAt(*obj, "/status/phase");
            if (phase.empty()) phase = "Unknown";
            canaryWeight_.set({ns, name}, numAt(*obj, "/status/canaryWeight"));
            canaryStatus_.set({ns, name}, canaryStatusCode(phase));
            canaryPhase_.set({ns, name, phase}, 1);
            canaryFailedChecks_.set({ns, name}, numAt(*obj, "/status/failedChecks"));
        }
    });
}

void ControllerMetrics::collectQueueDepth(const std::string& controller,
                                          std::function<std::size_t()> depth) {
    registry_.addCollector([this, controller, depth = std::move(depth)] {
        queueDepth_.set({controller}, static_cast<double>(depth()));
    });
}

void ControllerMetrics::collectClusters(
    std::function<std::vector<appcontroller::ClusterState>()> clusters) {
    registry_.addCollector([this, clusters = std::move(clusters)] {
        for (auto* g : {&clusterInfo_, &clusterConnection_, &clusterObjects_, &clusterApps_})
            g->clear();
        for (const auto& c : clusters()) {
            clusterInfo_.set({c.name, c.server, c.serverVersion}, 1);
            if (c.connectionState != "Unknown")
                clusterConnection_.set({c.name, c.server},
                                       c.connectionState == "Successful" ? 1 : 0);
            clusterObjects_.set({c.name, c.server}, static_cast<double>(c.cachedObjects));
            clusterApps_.set({c.name, c.server}, static_cast<double>(c.applications.size()));
        }
    });
}

void ControllerMetrics::collectSharding(std::function<leader::ShardingState()> state) {
    registry_.addCollector([this, state = std::move(state)] {
        const leader::ShardingState st = state();
        shardSlots_.set(static_cast<double>(st.heldSlots.size()));
        shardMembers_.set(static_cast<double>(st.members.size()));
    });
}

git::Revision MeteredGitSource::resolve(const git::Repository& repo,
                                        const std::string& targetRevision) {
    auto start = std::chrono::steady_clock::now();
    try {
        auto rev = inner_.resolve(repo, targetRevision);
        metrics_.observeGitFetch(std::chrono::steady_clock::now() - start, "");
        return rev;
    } catch (const std::exception& e) {
        metrics_.observeGitFetch(std::chrono::steady_clock::now() - start, e.what());
        throw;
    }
}

std::vector<git::File> MeteredGitSource::listFiles(const git::Repository& repo,
                                                   const std::string& sha, const std::string& path,
                                                   bool recurse) {
    return inner_.listFiles(repo, sha, path, recurse);
}

std::string MeteredGitSource::readFile(const git::Repository& repo, const std::string& sha,
                                       const std::string& path) {
    return inner_.readFile(repo, sha, path);
}

std::vector<std::string> MeteredGitSource::readFiles(const git::Repository& repo,
                                                     const std::string& sha,
                                                     const std::vector<std::string>& paths) {
    return inner_.readFiles(repo, sha, paths);
}

}  // namespace sluice
