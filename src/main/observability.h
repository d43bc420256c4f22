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
#include "sluice/metrics/registry.h"

namespace sluice {

class ControllerMetrics {
  public:
    explicit ControllerMetrics(const std::string& version);

    metrics::Registry& registry() { return registry_; }
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

  private:
    metrics::Registry registry_;
    metrics::CounterFamily& kubeRequests_;
    metrics::HistogramFamily& kubeLatency_;
    metrics::CounterFamily& reconciles_;
    metrics::HistogramFamily& reconcileDuration_;
    metrics::CounterFamily& syncs_;
    metrics::GaugeFamily& appInfo_;
    metrics::CounterFamily& gitFetches_;
    metrics::HistogramFamily& gitFetchDuration_;
    metrics::GaugeFamily& canaryWeight_;
    metrics::GaugeFamily& canaryStatus_;
    metrics::GaugeFamily& canaryPhase_;
    metrics::GaugeFamily& canaryFailedChecks_;
    metrics::GaugeFamily& canaryMetricValue_;
    metrics::GaugeFamily& queueDepth_;
    metrics::CounterFamily& webhooks_;
    metrics::GaugeFamily& leader_;
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
