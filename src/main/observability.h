#pragma once
// The controller process's Prometheus metrics: one registry, the families Sluice exports, and
// the hooks that feed them (Kubernetes client requests, Application reconciles, git fetches,
// webhooks, work queues, and per-object status read from the watch caches at scrape time).
#include <chrono>
#include <functional>
#include <string>

#include "sluice/appcontroller/controller.h"
#include "sluice/cache/informer.h"
#include "sluice/canarycontroller/controller.h"
#include "sluice/git/git.h"
#include "sluice/kube/client.h"
#include "sluice/leader/sharding.h"
#include "sluice/telemetry/registry.h"

namespace sluice {

class ControllerMetrics {
  public:
    explicit ControllerMetrics(const std::string& version);

    telemetry::Registry& registry() { return registry_; }
    std::string exposition() const { return registry_.exposition(); }

    kube::RequestObserver kubeRequestObserver();
    void observeApplicationReconcile(const appcontroller::ReconcileRecord& record);
    void observeCanaryReconcile(const canarycontroller::ReconcileRecord& record);
    void observeGitFetch(std::chrono::nanoseconds duration, const std::string& error);
    void observeWebhook(const std::string& provider, int status);
    void setLeader(bool leading);

    // Scrape-time views of the watch caches: Application sync/health, Canary phase/weight.
    void collectApplications(cache::Informer& applications);
    void collectCanaries(cache::Informer& canaries);
    // Scrape-time work-queue depth.
    void collectQueueDepth(const std::string& controller, std::function<std::size_t()> depth);
    // Scrape-time destination clusters: info, connection, cached objects, Applications.
    void collectClusters(std::function<std::vector<appcontroller::ClusterState>()> clusters);
    // Scrape-time sharding by Leases: slots held, live members seen.
    void collectSharding(std::function<leader::ShardingState()> state);

  private:
    telemetry::Registry registry_;
    telemetry::CounterFamily& kubeRequests_;
    telemetry::HistogramFamily& kubeLatency_;
    telemetry::CounterFamily& reconciles_;
    telemetry::HistogramFamily& reconcileDuration_;
    telemetry::CounterFamily& syncs_;
    telemetry::GaugeFamily& appInfo_;
    telemetry::CounterFamily& gitFetches_;
    telemetry::HistogramFamily& gitFetchDuration_;
    telemetry::GaugeFamily& canaryWeight_;
    telemetry::GaugeFamily& canaryStatus_;
    telemetry::GaugeFamily& canaryPhase_;
    telemetry::GaugeFamily& canaryFailedChecks_;
    telemetry::GaugeFamily& canaryMetricValue_;
    telemetry::GaugeFamily& queueDepth_;
    telemetry::CounterFamily& webhooks_;
    telemetry::GaugeFamily& leader_;
    telemetry::GaugeFamily& clusterInfo_;
    telemetry::GaugeFamily& clusterConnection_;
    telemetry::GaugeFamily& clusterObjects_;
    telemetry::GaugeFamily& clusterApps_;
    telemetry::GaugeFamily& shardSlots_;
    telemetry::GaugeFamily& shardMembers_;
};

// A GitSource that times every fetch (resolve) of the one it wraps.
class MeteredGitSource final : public git::GitSource {
  public:
    MeteredGitSource(git::GitSource& inner, ControllerMetrics& metrics)
        : inner_(inner), metrics_(metrics) {}
    git::Revision resolve(const git::Repository& repo, const std::string& targetRevision) override;
    std::vector<git::File> listFiles(const git::Repository& repo, const std::string& sha,
                                     const std::string& path, bool recurse) override;
    std::string readFile(const git::Repository& repo, const std::string& sha,
                         const std::string& path) override;
    std::vector<std::string> readFiles(const git::Repository& repo, const std::string& sha,
                                       const std::vector<std::string>& paths) override;

  private:
    git::GitSource& inner_;
    ControllerMetrics& metrics_;
};

}  // namespace sluice
