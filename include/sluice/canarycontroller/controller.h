#pragma once
// The Canary controller: the I/O around the pure decision engine (sluice/canaryengine/engine.h).
// Watches Canaries (sluice.io/v1alpha1) and Deployments, and for each Canary (a key
// "namespace/name" on the work queue):
//   1. reads the Canary from the watch cache (with our own status writes the cache has not
//      shown yet) and parses its spec; errors -> canaryengine::rejectInvalidSpec + a Warning Event;
//   2. observes the target Deployment and `<target>-primary` (direct reads, never a stale
//      cache), hashes the target's pod template (SHA-256 of its canonical JSON);
//   3. calls canaryengine::step with the check results gathered during the previous reconcile (and
//      again at once with the results of checks that step asked for, see 4);
//   4. carries out the actions in order: creates the primary and the Services/routes
//      (router::reconcileRoutes), scales the target, sets weights, copies the analysed template
//      to the primary (refused when the target's hash moved), calls webhooks, queries metrics
//      (kept in memory for exactly the next step), records Events;
//   5. writes the status through the status subresource only when it changed, removes the
//      request annotations (sluice.io/promote|abort|retry) the decision took or found stale
//      (merge patch with null), and requeues after the decision's delay. A failed API call leaves
//      the status unwritten and retries with backoff: nothing is decided on missing information.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/cache/informer.h"
#include "sluice/canaryengine/engine.h"
#include "sluice/kube/client.h"
#include "sluice/kube/events.h"
#include "sluice/metricprovider/client.h"
#include "sluice/metricprovider/provider.h"
#include "sluice/notify/notifier.h"
#include "sluice/runtime/ownership.h"
#include "sluice/runtime/shard.h"
#include "sluice/util/clock.h"

namespace sluice::canarycontroller {

// One webhook call: POST `payload` as JSON to `url` within `timeout`.
struct WebhookRequest {
    std::string name;  // the webhook's name in the Canary (for logs)
    std::string url;
    std::chrono::milliseconds timeout{10000};
    nlohmann::json payload;
};

// Calls webhooks. Never throws: transport errors and timeouts are failures with a message.
class WebhookCaller {
  public:
    virtual ~WebhookCaller() = default;
    virtual canaryengine::WebhookResult call(const WebhookRequest& request) = 0;
};

// Flagger's semantics over HTTP(S) with cpprestsdk: success is a status of 202 or below; the
// message names the status (and the start of the body) or the error. Thread-safe.
class HttpWebhookCaller final : public WebhookCaller {
  public:
    HttpWebhookCaller();
    ~HttpWebhookCaller() override;
    canaryengine::WebhookResult call(const WebhookRequest& request) override;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Makes the metric provider for a Prometheus address and its auth (a MetricTemplate's
// provider, or the default server). May throw std::invalid_argument for an unusable address
// (the metrics using it report a query error). Providers are cached per (address, auth).
using MetricProviderFactory = std::function<std::shared_ptr<metricprovider::MetricProvider>(
    const metricprovider::ClientOptions& options)>;
// The real one: metricprovider::PrometheusClient.
MetricProviderFactory prometheusProviderFactory();

// Flagger's -slack-url, -slack-channel, -slack-user, -slack-proxy-url, -msteams-url and
// -msteams-proxy-url: where a Canary without spec.analysis.alerts sends every alert.
struct DefaultAlertOptions {
    std::string slackUrl, slackChannel, slackUser, slackProxy;
    std::string msteamsUrl, msteamsProxy;
};

struct Options {
    std::string watchNamespace;  // Canaries (and Deployments) watched; "" = all namespaces
    int concurrency = 2;         // Canaries reconciled in parallel
    // Flagger's -metrics-server: the Prometheus built-in metrics and templates without an
    // address are queried on.
    std::string metricsServer = "http://prometheus:9090";
    std::chrono::milliseconds metricsTimeout{5000};
    // Flagger's -mesh-provider: the router when spec.provider is empty.
    std::string defaultProvider = "kubernetes";
    // Owner of the fields the controller writes (primary, routes, the target's replicas):
    // distinct from the Application controller's "sluice", so the two never share fields.
    std::string fieldManager = "sluice-canary";
    // Flagger's -selector-labels; empty = router::defaultSelectorLabels().
    std::vector<std::string> selectorLabels;
    const Clock* clock = nullptr;  // nullptr = system clock
    // nullptr = Events written through the client (component "sluice-controller").
    kube::EventRecorder* events = nullptr;
    // nullptr = a PrometheusClient per (address, auth).
    MetricProviderFactory metricProviders;
    // nullptr = an HttpWebhookCaller owned by the controller.
    WebhookCaller* webhooks = nullptr;
    // Delivers the Canaries' alerts (canaryengine/alerts.h) off the reconcile path; nullptr =
    // no alerts are sent. Not owned: the process shares one with the Application controller.
    notify::Notifier* notifier = nullptr;
    DefaultAlertOptions defaultAlerts;
    // --shard/--shards: only the Canaries of this shard are reconciled.
    runtime::Shard shard;
    // Which Canaries this replica reconciles now (--sharding leases); nullptr = those of
    // `shard`. Each reconcile runs under its claim.
    std::shared_ptr<runtime::Ownership> ownership;
};

// What one reconcile did (tests, benchmarks, metrics).
struct ReconcileRecord {
    std::string key;  // "namespace/name"
    std::chrono::nanoseconds duration{0};
    bool succeeded = true;  // false: an API error or refused action (retried with backoff)
    std::string phase;      // the Canary's phase after the reconcile ("" when it is gone)
    int canaryWeight = 0;
    std::vector<std::string> actions;  // canaryengine::describe() of each action carried out
    bool statusWritten = false;
    std::chrono::seconds requeueAfter{0};
    std::string error;
    // Results of the metric checks run in this reconcile, by metric name (empty when none ran).
    std::map<std::string, canaryengine::MetricResult> metrics;
    // Request annotations (sluice.io/promote, ...) removed in this reconcile.
    std::vector<std::string> requestsRemoved;
    // Alerts handed to the notifier in this reconcile: "<severity> <title> -> <destination
    // label>" (no credentials).
    std::vector<std::string> alertsSent;
};

struct Stats {
    uint64_t reconciles = 0;
    uint64_t errors = 0;  // reconciles that failed (retried with backoff)
    uint64_t statusWrites = 0;
    uint64_t metricQueries = 0;
    uint64_t webhookCalls = 0;
    uint64_t promotions = 0;  // Succeeded phases reached
    uint64_t rollbacks = 0;   // Failed phases reached
    uint64_t alerts = 0;      // alert messages handed to the notifier
    std::size_t queueDepth = 0;
};

class CanaryController {
  public:
    CanaryController(kube::KubeClient& client, cache::SharedInformerFactory& informers,
                     Options options);
    ~CanaryController();  // stop()
    CanaryController(const CanaryController&) = delete;
    CanaryController& operator=(const CanaryController&) = delete;

    // Registers the Canary and Deployment informers, starts them and the workers.
    void start();
    // True once the Canary and Deployment caches have synced.
    bool waitForSync(std::chrono::milliseconds timeout);
    // Stops taking work and joins the workers (each finishes its reconcile). Idempotent.
    void stop();

    // Runs one reconcile of ns/name on the calling thread (tests; start() need not have been
    // called, but the informers are started and waited for).
    ReconcileRecord reconcileNow(const std::string& ns, const std::string& name);

    Stats stats() const;
    // Called after every reconcile (on a worker thread).
    void setObserver(std::function<void(const ReconcileRecord&)> observer);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The node selector that keeps a DaemonSet target's pods off every node while it is "scaled to
// zero" (Flagger's flagger.app/scale-to-zero, under Sluice's own domain): no node has the label.
inline constexpr const char* kScaleToZeroNodeSelector = "sluice.io/scale-to-zero";

// The pod template hash the controller tracks: the first 16 hex digits of the SHA-256 of the
// workload's spec.template serialised as canonical JSON (sorted keys), stable across
// processes; kScaleToZeroNodeSelector is left out of it. "" when the workload has no template.
std::string podTemplateHash(const nlohmann::json& workload);

// The `<target>-primary` Deployment for a target: a copy of its spec whose selector and pod
// labels say `<label>: <value>-primary`, `replicas` as given, without the target's tracking
// annotations/labels of other controllers (Application instance, last-applied-configuration).
nlohmann::json primaryDeploymentFor(const nlohmann::json& target, const std::string& primaryName,
                                    const std::string& label, const std::string& value,
                                    int replicas);

// The `<target>-primary` DaemonSet for a DaemonSet target: the same copy (minReadySeconds,
// revisionHistoryLimit, updateStrategy and the pod template), without the target's
// kScaleToZeroNodeSelector.
nlohmann::json primaryDaemonSetFor(const nlohmann::json& target, const std::string& primaryName,
                                   const std::string& label, const std::string& value);

}  // namespace sluice::canarycontroller
