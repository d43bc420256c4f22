#pragma once
// CanaryController internals shared by its source files.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/canarycontroller/controller.h"
#include "sluice/canaryengine/alerts.h"
#include "sluice/canaryengine/engine.h"
#include "sluice/metricprovider/query_template.h"
#include "sluice/router/context.h"

namespace sluice::canarycontroller::detail {

// Existence, desired and ready replicas, and rollout completion of a Deployment (nullopt: it
// does not exist). `readyThreshold`: the percentage of the desired replicas that must be ready
// and available (the Canary's primaryReadyThreshold / canaryReadyThreshold).
canaryengine::WorkloadObservation observeDeployment(const std::optional<nlohmann::json>& deployment,
                                                    int readyThreshold = 100);
// spec.replicas (1 when unset).
int specReplicas(const nlohmann::json& deployment);
// The same of a DaemonSet: its replicas are status.desiredNumberScheduled, its ready and
// available pods numberReady and numberAvailable, its rollout updatedNumberScheduled.
canaryengine::WorkloadObservation observeDaemonSet(const std::optional<nlohmann::json>& daemonSet,
                                                   int readyThreshold = 100);
// Whether the Canary targets a DaemonSet (else a Deployment: unsupportedTarget refuses others).
bool isDaemonSet(const canaryengine::ObjectRef& targetRef);
// apps/v1 Deployment or DaemonSet: the kind of the target and of its primary.
const kube::GroupVersionKind& workloadGvk(const canaryengine::ObjectRef& targetRef);
// observeDeployment or observeDaemonSet, as the target's kind says.
canaryengine::WorkloadObservation observeWorkload(const canaryengine::ObjectRef& targetRef,
                                                  const std::optional<nlohmann::json>& workload,
                                                  int readyThreshold);
// The merge patch that scales the target to `replicas` (nullopt: it is already there). A
// Deployment's spec.replicas; a DaemonSet is at zero with kScaleToZeroNodeSelector in its pod
// template's nodeSelector and runs everywhere it would without it at any other count.
std::optional<nlohmann::json> scalePatch(const canaryengine::ObjectRef& targetRef,
                                         const nlohmann::json& target, int replicas);

// --- the engine's inputs and outputs as the Canary object holds them (engine_io.cpp) -------

// The request annotations (kubectl sluice canary promote|abort|retry) on a Canary.
std::vector<canaryengine::ManualRequest> manualRequests(const nlohmann::json& canary);

// "" when the Canary's target is a kind the controller delivers (apps/v1 Deployment or
// DaemonSet), else the spec error saying it is not.
std::string unsupportedTarget(const canaryengine::ObjectRef& targetRef);

// The Canary's status as written with the engine's fields replaced by `status`: fields the
// engine cleared are removed, fields of others are kept.
nlohmann::json mergeStatus(const nlohmann::json& written, const canaryengine::CanaryStatus& status);

// What a metric's query may name ({{ target }}, {{ service }}, {{ variables.KEY }}...); the
// interval is the metric's (metricprovider::analysisQuery fills it in).
metricprovider::TemplateModel templateModel(const std::string& ns, const std::string& name,
                                            const canaryengine::CanarySpec& spec,
                                            const canaryengine::MetricSpec& metric);

// The body POSTed to a webhook (Flagger's CanaryWebhookPayload) for the status a decision
// leads to. An event hook also gets the event and `now` (Unix milliseconds) in its metadata.
nlohmann::json webhookPayload(const std::string& ns, const std::string& name,
                              const canaryengine::CanaryStatus& next,
                              const canaryengine::WebhookSpec& hook,
                              const canaryengine::Event* event, canaryengine::Time now);

// The weights the routes must already have after a decision that sets none (the status'
// canaryWeight), to repair routes someone else edited or deleted. nullopt when they are not to
// be checked: no routes yet, this decision sets weights itself, the target serves in place of
// the primary, or the side that would get traffic is not ready.
std::optional<router::Weights> weightsToKeep(const canaryengine::Decision& decision,
                                             const canaryengine::Observation& observation);

// --- revertOnDeletion (revert.cpp) ----------------------------------------------------------

bool hasRevertFinalizer(const nlohmann::json& canary);
// Adds canaryengine::kRevertFinalizer to a Canary (not being deleted) with
// spec.revertOnDeletion, removes it from one without.
void syncRevertFinalizer(kube::KubeClient& client, const nlohmann::json& canary);

struct RevertOptions {
    kube::KubeClient& client;
    kube::EventRecorder& events;
    const std::string& fieldManager;
    const std::vector<std::string>& selectorLabels;  // empty: router::defaultSelectorLabels()
    const std::string& defaultProvider;
    canaryengine::Time now;
};
// One reconcile of a Canary being deleted that holds the finalizer (canaryengine::revertStep):
// scales the target, routes all traffic to it, removes the finalizer. The requeue delay, 0
// once the finalizer is gone.
std::chrono::seconds revertOnDeletion(const RevertOptions& options, const nlohmann::json& canary);

// --- alerts (alerts.cpp) ---------------------------------------------------------------------

// An AlertProvider's spec (sluice.io/v1alpha1, Flagger's AlertProvider).
struct AlertProviderSpec {
    std::string type, channel, username, address, proxy;
    std::string secretName;  // "" = no secretRef
};
AlertProviderSpec parseAlertProvider(const nlohmann::json& provider);

struct DestinationResult {
    notify::Destination destination;
    std::string error;  // why the provider cannot be sent to (no secret value in it)
    bool ok() const { return error.empty(); }
};
// Where a provider sends, with its Secret's decoded data (keys address, token or apiToken,
// proxy) when it has a secretRef.
DestinationResult destinationFor(const AlertProviderSpec& provider,
                                 const std::map<std::string, std::string>* secret);

notify::Severity toNotify(canaryengine::AlertSeverity severity);
notify::Message messageFor(const canaryengine::AlertMessage& alert);
// "name=image, ..." of a workload's pod template: the revision a person recognises.
std::string containerImages(const nlohmann::json& workload);
// The flags' Slack and Teams destinations (none when their URLs are unset).
std::vector<notify::Destination> defaultDestinations(const DefaultAlertOptions& options);

}  // namespace sluice::canarycontroller::detail
