#pragma once
// The Canary decision engine: a pure function from (spec, status, what the controller observed,
// now) to (new status, actions, requeue delay). It performs no I/O; the controller carries out
// the actions in order, writes the new status and calls step() again after requeueAfter.
//
// Round trip for checks: when the engine needs webhook or metric results it emits
// CallWebhooks / RunMetricChecks and asks for a short requeue. The controller reports the
// outcomes in the Observation of the very next step() call (and only there). Results that are
// missing (e.g. after a controller restart) are simply requested again.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "sluice/canaryengine/spec.h"

namespace sluice::canaryengine {

enum class EventType { Normal, Warning };
std::string_view toString(EventType type);

struct Event {
    EventType type = EventType::Normal;
    std::string reason;
    std::string message;
    bool operator==(const Event&) const = default;
};

enum class WebhookOutcome { NotCalled, Succeeded, Failed };

struct WebhookResult {
    WebhookOutcome outcome = WebhookOutcome::NotCalled;
    std::string message;  // e.g. the HTTP status or error, for events
};

struct MetricResult {
    enum class Kind { Value, NoData, QueryError };
    Kind kind = Kind::NoData;
    double value = 0;
    std::string reason;

    static MetricResult measured(double value);
    static MetricResult noData(std::string reason);
    static MetricResult queryError(std::string reason);
    // A NaN value is no data, whatever the kind says.
    bool hasValue() const;
};

struct WorkloadObservation {
    bool exists = false;
    // Rollout complete and available (observedGeneration current, all updated replicas ready).
    bool ready = false;
    int replicas = 0;  // desired
    int readyReplicas = 0;
};

// The ready replicas a workload of `desired` replicas needs to count as ready under Flagger's
// primaryReadyThreshold / canaryReadyThreshold `percent` (0-100): at least that percentage of
// them, rounded up (100 asks for every replica, 0 for none).
int readyReplicasRequired(int desired, int percent);

// Manual requests (kubectl sluice canary promote|abort|retry): annotations on the Canary whose
// value is the RFC 3339 time of the request. A request is honoured once, when its time (to the
// second) is later than status.lastTransitionTime; older ones are stale and only removed.
//   promote (Progressing, Waiting, WaitingPromotion): skip the rest of the analysis and any
//       gate and promote as soon as the canary and the primary are ready.
//   abort (Progressing, Waiting, WaitingPromotion, Promoting): roll back as a successful
//       rollback webhook does.
//   retry (Failed): analyse the current target revision again from the start.
// A request in another phase, or beside one that takes precedence (abort, then promote, then
// retry), is removed with a Warning event saying why.
enum class ManualAction { Promote, Abort, Retry };
std::string_view toString(ManualAction action);      // "promote", "abort", "retry"
std::string_view annotationOf(ManualAction action);  // "sluice.io/promote", ...

struct ManualRequest {
    ManualAction action = ManualAction::Promote;
    std::optional<Time> requestedAt;  // nullopt: the value is not an RFC 3339 time
    std::string value;                // the annotation's value as written (for messages)
    bool operator==(const ManualRequest&) const = default;
};

// spec.autoscalerRef's object and the copy the controller made of it for the primary
// (`<autoscalerRef.name>-primary`). Both false without an autoscalerRef.
struct AutoscalerObservation {
    bool target = false;   // the autoscaler the Canary names exists (and its kind is served)
    bool primary = false;  // the primary's copy exists
};

struct Observation {
    std::string targetTemplateHash;  // of the target's pod template (and tracked configs)
    WorkloadObservation target;
    WorkloadObservation primary;
    AutoscalerObservation autoscaler;
    // Outcomes of the checks requested by the previous decision, keyed by metric / webhook
    // name. A requested metric that could not be evaluated must be reported as
    // noData/queryError, never left out.
    std::map<std::string, MetricResult> metrics;
    std::map<std::string, WebhookResult> webhooks;
    // The request annotations present on the Canary.
    std::vector<ManualRequest> requests;
};

namespace action {
// Create the primary workload (and routing objects) as a copy of the target, but only if the
// target still has this template hash.
struct InitializePrimary {
    std::string templateHash;
    bool operator==(const InitializePrimary&) const = default;
};
// Scale the target. A KEDA ScaledObject on it is paused at zero replicas (KEDA would scale it
// back up) and resumed before it scales up again.
struct ScaleTarget {
    int replicas = 0;
    bool operator==(const ScaleTarget&) const = default;
};
// Create `<autoscalerRef.name>-primary`, a copy of the target's autoscaler that scales the
// primary. Decided only while that copy does not exist; from then on the primary's replicas
// are the autoscaler's and the controller never writes them.
struct InitializePrimaryAutoscaler {
    bool operator==(const InitializePrimaryAutoscaler&) const = default;
};
// Bring the primary's autoscaler in line with the target's (promotion): spec, labels and
// annotations, with primaryScalerReplicas and primaryScalerQueries applied.
struct CopyAutoscalerToPrimary {
    bool operator==(const CopyAutoscalerToPrimary&) const = default;
};
// With A/B testing (spec.abTesting()) the weights are those of the requests that match
// analysis.match; the others always go to the primary. `mirror`: the canary also gets a copy of
// the primary's requests (analysis.mirror, mirrorWeight percent of them).
struct SetWeights {
    int primary = 100;
    int canary = 0;
    bool mirror = false;
    bool operator==(const SetWeights&) const = default;
};
// Copy the target's pod template (and configs) to the primary; refuse if the target no longer
// has this hash, since only the analysed revision may be promoted.
struct CopyTargetToPrimary {
    std::string templateHash;
    bool operator==(const CopyTargetToPrimary&) const = default;
};
// Call every webhook of the type. For WebhookType::Event the event to deliver is attached.
struct CallWebhooks {
    WebhookType type = WebhookType::Rollout;
    std::optional<Event> event;
    bool operator==(const CallWebhooks&) const = default;
};
// Query every metric of spec.analysis.metrics.
struct RunMetricChecks {
    bool operator==(const RunMetricChecks&) const = default;
};
struct EmitEvent {
    Event event;
    bool operator==(const EmitEvent&) const = default;
};
}  // namespace action

using Action = std::variant<action::InitializePrimary, action::ScaleTarget, action::SetWeights,
                            action::CopyTargetToPrimary, action::CallWebhooks,
                            action::RunMetricChecks, action::EmitEvent,
                            action::InitializePrimaryAutoscaler, action::CopyAutoscalerToPrimary>;

// One line per action, e.g. "SetWeights(primary=100, canary=0)", for logs and tests.
std::string describe(const Action& action);

struct Decision {
    CanaryStatus status;
    std::vector<Action> actions;
    std::chrono::seconds requeueAfter{0};
    // Request annotations the controller removes once the status is written (honoured, stale
    // or refused).
    std::vector<ManualAction> removeRequests;
};

Decision step(const CanarySpec& spec, const CanaryStatus& status, const Observation& observation,
              Time now);

// Whether the routes of a Canary in this status mirror traffic to the canary: the controller
// keeps the routes as the last SetWeights left them, which the status records (canaryWeight)
// but for the mirroring, derived here. Mirroring lasts from the first iteration of the analysis
// (which only starts it) through the blue-green iterations, or for one step of a progressive
// canary, before its first weight.
bool mirrorsTraffic(const CanarySpec& spec, const CanaryStatus& status);

// revertOnDeletion: the finalizer the controller keeps on such a Canary, removed once the
// target has been restored.
inline constexpr const char* kRevertFinalizer = "sluice.io/canary-revert";

// One reconcile of a Canary that is being deleted with spec.revertOnDeletion: the target
// becomes the workload that serves again, as Flagger does. Scaled to the primary's replicas
// (at least 1) first; once ready (canaryReadyThreshold), all traffic is routed to it and the
// finalizer is removed. A target that never gets ready holds the deletion (the primary keeps
// serving) with a Warning after progressDeadlineSeconds: removing the finalizer by hand lets
// the deletion go on regardless. Without a target there is nothing to restore.
struct RevertStep {
    std::optional<int> scaleTarget;  // scale the target to this many replicas
    bool routeToTarget = false;      // route all traffic to the target (then remove)
    bool removeFinalizer = false;
    std::vector<Event> events;
    std::chrono::seconds requeueAfter{0};  // when the finalizer stays
};
RevertStep revertStep(const CanarySpec& spec, const WorkloadObservation& target,
                      const WorkloadObservation& primary, Time deletedAt, Time now);

// For a spec with parse errors: nothing moves; the errors go to the Promoted condition (reason
// InvalidSpec; status False when the Canary has no phase yet, which stays empty) and a Warning
// event, sent again only when the errors change.
Decision rejectInvalidSpec(const CanaryStatus& status, const std::vector<std::string>& errors,
                           Time now);

}  // namespace sluice::canaryengine
