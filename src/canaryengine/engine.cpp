#include "sluice/canaryengine/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "sluice/util/strings.h"
#include "verdicts.h"

namespace sluice::canaryengine {

namespace detail {

namespace {

std::string formatNumber(double value) {
    if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
        return std::to_string(static_cast<long long>(value));
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", value);
    return buf;
}

std::string describeMissing(const MetricResult& result) {
    std::string what;
    switch (result.kind) {
        case MetricResult::Kind::QueryError:
            what = "query error";
            break;
        case MetricResult::Kind::NoData:
            what = "no data";
            break;
        case MetricResult::Kind::Value:
            what = "value is NaN";
            break;
    }
    return result.reason.empty() ? what : what + " (" + result.reason + ")";
}

}  // namespace

MetricVerdicts judgeMetrics(const std::vector<MetricSpec>& metrics,
                            const std::map<std::string, MetricResult>& results) {
    MetricVerdicts verdicts;
    for (const MetricSpec& metric : metrics) {
        const MetricResult& result = results.at(metric.name);
        const ThresholdRange& range = metric.thresholdRange;
        if (!result.hasValue()) {
            verdicts.missing.push_back(metric.name + ": " + describeMissing(result));
        } else if (range.min && result.value < *range.min) {
            verdicts.failures.push_back(metric.name + " " + formatNumber(result.value) + " < " +
                                        formatNumber(*range.min));
        } else if (range.max && result.value > *range.max) {
            verdicts.failures.push_back(metric.name + " " + formatNumber(result.value) + " > " +
                                        formatNumber(*range.max));
        }
    }
    return verdicts;
}

namespace {

int precedence(ManualAction action) {
    switch (action) {
        case ManualAction::Abort:
            return 0;
        case ManualAction::Promote:
            return 1;
        case ManualAction::Retry:
            return 2;
    }
    return 3;
}

// Honoured once: only a request later (to the second) than the last phase transition, or
// for promote than the promotion request already being carried out.
bool isStale(const ManualRequest& request, const CanaryStatus& status) {
    const Time at = std::chrono::floor<std::chrono::seconds>(*request.requestedAt);
    if (status.lastTransitionTime && at <= *status.lastTransitionTime) return true;
    return request.action == ManualAction::Promote && status.manualPromotionRequested &&
           at <= *status.manualPromotionRequested;
}

// Why the request cannot be carried out now ("" when it can).
std::string refusal(const ManualRequest& request, const RequestContext& context) {
    const Phase phase = context.status.phase;
    auto in = [&](std::initializer_list<Phase> phases) {
        return std::find(phases.begin(), phases.end(), phase) != phases.end();
    };
    std::string current =
        phase == Phase::None ? "no phase yet" : "phase " + std::string(toString(phase));
    switch (request.action) {
        case ManualAction::Promote:
            if (!in({Phase::Progressing, Phase::Waiting, Phase::WaitingPromotion}))
                return "promote applies only in phase Progressing, Waiting or "
                       "WaitingPromotion, not in " +
                       current;
            if (context.revisionChanged)
                return context.target +
                       " changed since its analysis started: the new revision "
                       "is analysed first";
            return "";
        case ManualAction::Abort:
            if (!in({Phase::Progressing, Phase::Waiting, Phase::WaitingPromotion,
                     Phase::Promoting}))
                return "abort applies only in phase Progressing, Waiting, WaitingPromotion "
                       "or Promoting, not in " +
                       current;
            return "";
        case ManualAction::Retry:
            if (phase != Phase::Failed)
                return "retry applies only in phase Failed, not in " + current;
            if (context.status.targetKeptServing)
                return context.target + " is serving in place of " + context.primary +
                       ", which is not ready";
            return "";
    }
    return "unknown request";
}

}  // namespace

std::string requestText(const ManualRequest& request) {
    return std::string(annotationOf(request.action)) + "=" + request.value;
}

RequestTriage triageRequests(const std::vector<ManualRequest>& requests,
                             const RequestContext& context) {
    RequestTriage triage;
    auto refuse = [&](const ManualRequest& request, const std::string& why) {
        triage.removed.push_back(request.action);
        triage.refusals.push_back(requestText(request) + " refused: " + why);
    };
    std::vector<const ManualRequest*> fresh;
    for (const ManualRequest& request : requests) {
        if (!request.requestedAt) {
            refuse(request, "the value is not an RFC 3339 time");
        } else if (isStale(request, context.status)) {
            triage.removed.push_back(request.action);
        } else {
            fresh.push_back(&request);
        }
    }
    std::stable_sort(fresh.begin(), fresh.end(),
                     [](const ManualRequest* a, const ManualRequest* b) {
                         return precedence(a->action) < precedence(b->action);
                     });
    for (const ManualRequest* request : fresh) {
        if (triage.chosen) {
            refuse(*request, "superseded by " + requestText(*triage.chosen));
            continue;
        }
        if (std::string why = refusal(*request, context); !why.empty()) {
            refuse(*request, why);
            continue;
        }
        triage.chosen = request;
        triage.removed.push_back(request->action);
    }
    return triage;
}

}  // namespace detail

namespace {

using std::chrono::seconds;

// Requeue delay while the controller fetches results the engine asked for.
constexpr seconds kAwaitResults{1};
// Readiness is polled at least this often, even with long analysis intervals.
constexpr seconds kMaxReadinessPoll{10};
// The Promoted condition's message while spec.suspend holds the Canary: also how a later
// round knows that the Canary has just been resumed.
constexpr std::string_view kSuspendedText =
    "Canary suspended: not advanced while spec.suspend is true";

struct Checks {
    std::vector<WebhookType> webhooks;
    bool metrics = false;
    bool includes(WebhookType type) const {
        return std::find(webhooks.begin(), webhooks.end(), type) != webhooks.end();
    }
};

enum class GateState { Open, Closed, Expired };

// The decision one call of step() draws up: the new status (with the Promoted condition), the
// actions in order, the requeue delay and the requests to remove.
class Draft {
  protected:
    Draft(const CanarySpec& spec, const CanaryStatus& status, Time now)
        : spec_(spec), before_(status), st_(status), now_(std::chrono::floor<seconds>(now)) {}

    Decision finish() {
        syncPromotedCondition();
        return Decision{std::move(st_), std::move(actions_), requeue_, std::move(removeRequests_)};
    }

    void setPhase(Phase phase) {
        if (st_.phase != phase) {
            st_.phase = phase;
            st_.lastTransitionTime = now_;
        }
    }

    void emit(EventType type, std::string reason, std::string message) {
        Event event{type, std::move(reason), std::move(message)};
        actions_.push_back(action::EmitEvent{event});
        if (spec_.hasWebhooks(WebhookType::Event)) {
            actions_.push_back(action::CallWebhooks{WebhookType::Event, event});
        }
    }

    // Holds in place; the event is only emitted when the situation changes, since holds are
    // re-evaluated at every readiness poll.
    void holdAndReport(const std::string& message, EventType type, const std::string& reason,
                       seconds requeue) {
        if (previousMessage() != message) emit(type, reason, message);
        message_ = message;
        holdReason_ = reason;
        requeue_ = requeue;
    }

    void setWeights(int primaryWeight, int canaryWeight, bool mirror = false) {
        actions_.push_back(action::SetWeights{primaryWeight, canaryWeight, mirror});
        st_.canaryWeight = canaryWeight;
    }

    void scaleTarget(int replicas) { actions_.push_back(action::ScaleTarget{replicas}); }

    void callWebhooks(WebhookType type) {
        if (spec_.hasWebhooks(type)) actions_.push_back(action::CallWebhooks{type, std::nullopt});
    }

    const CanarySpec& spec_;
    const CanaryStatus& before_;
    CanaryStatus st_;
    Time now_;
    std::vector<Action> actions_;
    seconds requeue_{0};
    std::optional<std::string> message_;     // new Promoted condition message, if it changes
    std::optional<std::string> holdReason_;  // the condition's reason while there is no phase
    bool invalidSpec_ = false;
    std::vector<ManualAction> removeRequests_;

  private:
    void syncPromotedCondition() {
        // Without a phase the condition still says why nothing happens (an invalid spec, a
        // missing target).
        if (st_.phase == Phase::None && !message_ && !st_.condition(kPromotedCondition)) return;
        auto it = std::find_if(st_.conditions.begin(), st_.conditions.end(),
                               [](const Condition& c) { return c.type == kPromotedCondition; });
        if (it == st_.conditions.end()) {
            st_.conditions.push_back(
                Condition{std::string(kPromotedCondition), "", "", "", {}, {}});
            it = std::prev(st_.conditions.end());
        }
        std::string status = "Unknown";
        if (st_.phase == Phase::Initialized || st_.phase == Phase::Succeeded) status = "True";
        if (st_.phase == Phase::Failed) status = "False";
        std::string reason(toString(st_.phase));
        if (st_.phase == Phase::None) {
            status = invalidSpec_ ? "False" : "Unknown";
            reason = holdReason_.value_or(it->reason);
        }
        if (invalidSpec_) reason = "InvalidSpec";
        std::string message = message_.value_or(it->message);
        if (it->status != status) it->lastTransitionTime = now_;
        if (it->status != status || it->reason != reason || it->message != message) {
            it->lastUpdateTime = now_;
        }
        it->status = status;
        it->reason = reason;
        it->message = message;
    }

    const std::string& previousMessage() const {
        static const std::string kEmpty;
        const Condition* condition = before_.condition(kPromotedCondition);
        return condition ? condition->message : kEmpty;
    }
};

// One call of step(): reads the inputs and decides, phase by phase.
class Round : private Draft {
  public:
    Round(const CanarySpec& spec, const CanaryStatus& status, const Observation& observation,
          Time now)
        : Draft(spec, status, now), obs_(observation) {}

    Decision run() {
        if (spec_.suspend) {
            holdSuspended();
            return finish();
        }
        if (wasSuspended()) resume();
        // With the target gone nothing can be carried out: requests wait for it.
        if (obs_.target.exists && handleRequests()) return finish();
        dispatch();
        initializePrimaryAutoscaler();
        return finish();
    }

    Decision rejectSpec(const std::vector<std::string>& errors) {
        std::string text = "Invalid spec: " + join(errors, "; ");
        invalidSpec_ = true;
        holdAndReport(text, EventType::Warning, "InvalidSpec", seconds(60));
        return finish();
    }

  private:
    const std::string& target() const { return spec_.targetRef.name; }
    std::string primary() const { return spec_.primaryName(); }

    seconds interval() const {
        return std::max(seconds(1), std::chrono::ceil<seconds>(spec_.analysis.interval));
    }
    seconds readinessPoll() const { return std::min(interval(), kMaxReadinessPoll); }
    bool pastDeadline(const std::optional<Time>& since) const {
        return since && now_ - *since > spec_.progressDeadline();
    }
    std::string deadlineText() const { return std::to_string(spec_.progressDeadlineSeconds) + "s"; }
    std::string readiness(const WorkloadObservation& workload) const {
        return std::to_string(workload.readyReplicas) + "/" + std::to_string(workload.replicas) +
               " replicas ready";
    }

    // --- suspend -----------------------------------------------------------------------------

    // As Flagger's suspend: nothing advances, whatever the phase: no new revision is picked
    // up, a running analysis holds at its weight, requests wait.
    void holdSuspended() {
        holdAndReport(std::string(kSuspendedText), EventType::Normal, "Suspended", interval());
    }

    bool wasSuspended() const {
        const Condition* condition = before_.condition(kPromotedCondition);
        return condition && condition->message == kSuspendedText;
    }

    // The deadlines that measure a wait (readiness, no data, a closed gate's maxWait) restart,
    // so the time spent suspended never fails the Canary.
    void resume() {
        st_.noDataSince.reset();
        st_.noDataReason.clear();
        st_.gateWaitingSince.clear();
        if (st_.targetUnreadySince) st_.targetUnreadySince = now_;
        if (st_.primaryUnreadySince) st_.primaryUnreadySince = now_;
        emit(EventType::Normal, "Resumed", "Canary resumed: spec.suspend is no longer true");
        message_ = "Canary resumed.";
        holdReason_ = "Resumed";
    }

    // --- manual requests -------------------------------------------------------------------

    // Returns true when a request decided this round (the phases are not run).
    bool handleRequests() {
        detail::RequestTriage triage =
            detail::triageRequests(obs_.requests, {st_, revisionChanged(), target(), primary()});
        removeRequests_.insert(removeRequests_.end(), triage.removed.begin(), triage.removed.end());
        for (const std::string& refusal : triage.refusals) {
            emit(EventType::Warning, "RequestRefused", refusal);
        }
        const ManualRequest* chosen = triage.chosen;
        if (!chosen) return false;
        const std::string what = detail::requestText(*chosen);
        switch (chosen->action) {
            case ManualAction::Abort:
                // The revision in the target is the one aborted: it is not analysed again
                // until it changes.
                if (!obs_.targetTemplateHash.empty()) st_.lastAppliedSpec = obs_.targetTemplateHash;
                rollback("Rolling back " + target() + ": manual abort (" + what + ")");
                return true;
            case ManualAction::Retry:
                startRevision(
                    false, "Manual retry (" + what + "): restarting the analysis of " + target());
                return true;
            case ManualAction::Promote: {
                st_.manualPromotionRequested = std::chrono::floor<seconds>(*chosen->requestedAt);
                std::string text = "Manual promotion (" + what + "): promoting " + target() +
                                   " without further analysis once it and " + primary() +
                                   " are ready";
                emit(EventType::Normal, "PromotionRequested", text);
                message_ = text;
                return false;  // the phase carries it out
            }
        }
        return false;
    }

    std::string manualPromotionText() const {
        return "Manual promotion (" + std::string(annotationOf(ManualAction::Promote)) + "=" +
               formatTimestamp(*st_.manualPromotionRequested) + ")";
    }

    void dispatch() {
        if (!obs_.target.exists) {
            holdAndReport("Target " + target() + " not found", EventType::Warning, "TargetNotFound",
                          interval());
            return;
        }
        switch (st_.phase) {
            case Phase::None:
            case Phase::Initializing:
                initialize();
                return;
            case Phase::Initialized:
            case Phase::Succeeded:
            case Phase::Failed:
                atRest();
                return;
            case Phase::Waiting:
                awaitRolloutApproval();
                return;
            case Phase::Progressing:
            case Phase::WaitingPromotion:
                analyse();
                return;
            case Phase::Promoting:
                promote();
                return;
            case Phase::Finalising:
                finalise();
                return;
        }
    }

    // --- status and action helpers -------------------------------------------------------

    int scaleUpReplicas() const { return std::max(1, obs_.primary.replicas); }

    void requestChecks(const Checks& checks) {
        for (WebhookType type : checks.webhooks) callWebhooks(type);
        if (checks.metrics && !spec_.analysis.metrics.empty()) {
            actions_.push_back(action::RunMetricChecks{});
        }
        requeue_ = kAwaitResults;
    }

    WebhookOutcome outcomeOf(const WebhookSpec& hook) const {
        auto it = obs_.webhooks.find(hook.name);
        return it == obs_.webhooks.end() ? WebhookOutcome::NotCalled : it->second.outcome;
    }

    std::string failureText(const WebhookSpec& hook) const {
        std::string text = std::string(toString(hook.type)) + " webhook " + hook.name + " failed";
        auto it = obs_.webhooks.find(hook.name);
        if (it != obs_.webhooks.end() && !it->second.message.empty()) {
            text += ": " + it->second.message;
        }
        return text;
    }

    bool haveResults(const Checks& checks) const {
        for (WebhookType type : checks.webhooks) {
            for (const WebhookSpec* hook : spec_.webhooksOfType(type)) {
                if (outcomeOf(*hook) == WebhookOutcome::NotCalled) return false;
            }
        }
        if (checks.metrics) {
            for (const MetricSpec& metric : spec_.analysis.metrics) {
                if (!obs_.metrics.contains(metric.name)) return false;
            }
        }
        return true;
    }

    bool revisionChanged() const {
        return !obs_.targetTemplateHash.empty() && obs_.targetTemplateHash != st_.lastAppliedSpec;
    }

    // Per-revision analysis state, cleared when a revision starts and when it ends.
    void clearAnalysisTimers() {
        st_.lastAnalysisTime.reset();
        st_.noDataSince.reset();
        st_.noDataReason.clear();
        st_.gateWaitingSince.clear();
        st_.targetUnreadySince.reset();
        st_.primaryUnreadySince.reset();
        st_.manualPromotionRequested.reset();
    }

    // --- rollback ------------------------------------------------------------------------

    void rollback(const std::string& reason) {
        emit(EventType::Warning, "RollingBack", reason);
        if (obs_.primary.ready) {
            setWeights(100, 0);
            scaleTarget(0);
            st_.targetKeptServing = false;
            emit(EventType::Warning, "Failed", "Canary failed! Scaling down " + target());
        } else {
            // Never scale down the only version that can serve, never route to a primary
            // that is not ready.
            st_.targetKeptServing = true;
            if (obs_.target.ready) setWeights(0, 100);
            emit(EventType::Warning, "Failed",
                 "Canary failed! " + primary() + " is not ready, so " + target() +
                     " stays up and serving");
        }
        setPhase(Phase::Failed);
        clearAnalysisTimers();
        message_ = reason;
        callWebhooks(WebhookType::PostRollout);
        requeue_ = interval();
    }

    void rollbackOnThreshold() {
        rollback("Rolling back " + target() + " failed checks threshold reached " +
                 std::to_string(st_.failedChecks));
    }

    // A successful rollback webhook is a manual abort.
    bool rolledBackByWebhook() {
        for (const WebhookSpec* hook : spec_.webhooksOfType(WebhookType::Rollback)) {
            if (outcomeOf(*hook) == WebhookOutcome::Succeeded) {
                rollback("Rolling back " + target() + " manual webhook invoked (" + hook->name +
                         ")");
                return true;
            }
        }
        return false;
    }

    // Open when every hook of the gate type succeeded. A gate closed for longer than a hook's
    // maxWait rolls the canary back.
    GateState checkGate(WebhookType type) {
        std::vector<const WebhookSpec*> closed;
        for (const WebhookSpec* hook : spec_.webhooksOfType(type)) {
            if (outcomeOf(*hook) != WebhookOutcome::Succeeded) closed.push_back(hook);
        }
        if (closed.empty()) {
            st_.gateWaitingSince.erase(type);
            return GateState::Open;
        }
        Time since = st_.gateWaitingSince.emplace(type, now_).first->second;
        std::vector<std::string> names;
        for (const WebhookSpec* hook : closed) {
            if (hook->maxWait && now_ - since > *hook->maxWait) {
                rollback("Rolling back " + target() + ": " + std::string(toString(type)) +
                         " gate " + hook->name + " not approved within " +
                         formatGoDuration(*hook->maxWait));
                return GateState::Expired;
            }
            names.push_back(hook->name);
        }
        std::string text = "Waiting for approval: " + std::string(toString(type)) + " " +
                           join(names, ", ") + " for " + target();
        emit(EventType::Normal, "AwaitingApproval", text);
        message_ = text;
        requeue_ = interval();
        return GateState::Closed;
    }

    // --- phases ----------------------------------------------------------------------------

    void initialize() {
        if (!obs_.primary.exists && spec_.autoscalerRef && !obs_.autoscaler.target) {
            // As Flagger, which cannot initialise without the autoscaler it copies: a primary
            // created without it would run at a replica count nobody scales.
            holdAndReport("Waiting for " + autoscaler() + " (spec.autoscalerRef) to exist",
                          EventType::Warning, "AutoscalerNotFound", readinessPoll());
            return;
        }
        if (!obs_.primary.exists) {
            actions_.push_back(action::InitializePrimary{obs_.targetTemplateHash});
            st_.lastAppliedSpec = obs_.targetTemplateHash;
            if (st_.phase != Phase::Initializing) {
                setPhase(Phase::Initializing);
                st_.primaryUnreadySince = now_;
                emit(EventType::Normal, "Initializing",
                     "Initializing " + primary() + " from " + target());
            }
            if (!st_.primaryUnreadySince) st_.primaryUnreadySince = now_;
            message_ = "Creating " + primary();
            requeue_ = readinessPoll();
            return;
        }
        // A primary that exists without status (adopted) runs what the target runs.
        if (st_.lastAppliedSpec.empty()) st_.lastAppliedSpec = obs_.targetTemplateHash;
        if (!obs_.primary.ready) {
            setPhase(Phase::Initializing);
            if (!st_.primaryUnreadySince) st_.primaryUnreadySince = now_;
            if (pastDeadline(st_.primaryUnreadySince)) {
                // The target has not been scaled down yet and keeps serving.
                setPhase(Phase::Failed);
                st_.targetKeptServing = true;
                std::string text = "Initialization failed: " + primary() + " not ready within " +
                                   deadlineText() + " (" + readiness(obs_.primary) + "); " +
                                   target() + " stays up";
                emit(EventType::Warning, "InitializationFailed", text);
                message_ = text;
                st_.primaryUnreadySince.reset();
                requeue_ = interval();
                return;
            }
            holdAndReport(
                "Waiting for " + primary() + " to be ready (" + readiness(obs_.primary) + ")",
                EventType::Normal, "Initializing", readinessPoll());
            return;
        }
        setWeights(100, 0);
        scaleTarget(0);
        st_.primaryUnreadySince.reset();
        st_.targetKeptServing = false;
        st_.lastPromotedSpec = st_.lastAppliedSpec;
        setPhase(Phase::Initialized);
        emit(EventType::Normal, "Initialized", "Initialization done! " + target());
        message_ = "Installation successful.";
        requeue_ = interval();
    }

    void atRest() {
        requeue_ = interval();
        if (st_.targetKeptServing && obs_.primary.ready) {
            setWeights(100, 0);
            scaleTarget(0);
            st_.targetKeptServing = false;
            emit(EventType::Normal, "TrafficRestored",
                 primary() + " is ready: routing all traffic to it and scaling down " + target());
            if (st_.lastPromotedSpec.empty()) {
                // Initialization had timed out; it has now completed.
                st_.lastPromotedSpec = st_.lastAppliedSpec;
                setPhase(Phase::Initialized);
                message_ = "Installation successful.";
            }
        }
        if (st_.lastAppliedSpec.empty()) st_.lastAppliedSpec = obs_.targetTemplateHash;
        if (revisionChanged()) startRevision(false);
    }

    // --- autoscaler (spec.autoscalerRef) ----------------------------------------------------

    std::string autoscaler() const {
        return spec_.autoscalerRef->kind + " " + spec_.autoscalerRef->name;
    }

    template <class A>
    bool decided() const {
        return std::any_of(actions_.begin(), actions_.end(),
                           [](const Action& a) { return std::holds_alternative<A>(a); });
    }

    // The primary's copy of the autoscaler is created once, beside the primary (or later, for a
    // Canary whose autoscalerRef was added or whose copy was deleted), as Flagger's Initialize
    // does each round; its spec follows the target's only at promotion.
    void initializePrimaryAutoscaler() {
        if (!spec_.autoscalerRef || !obs_.autoscaler.target || obs_.autoscaler.primary ||
            !obs_.target.exists)
            return;
        const bool primaryThere = obs_.primary.exists || decided<action::InitializePrimary>();
        if (primaryThere && !decided<action::CopyAutoscalerToPrimary>())
            actions_.push_back(action::InitializePrimaryAutoscaler{});
    }

    // At promotion; a target autoscaler that is gone leaves the primary's as it is.
    void copyAutoscalerToPrimary() {
        if (!spec_.autoscalerRef) return;
        if (obs_.autoscaler.target) {
            actions_.push_back(action::CopyAutoscalerToPrimary{});
            return;
        }
        emit(EventType::Warning, "AutoscalerNotFound",
             autoscaler() + " (spec.autoscalerRef) not found: " +
                 spec_.autoscalerRef->primaryName() + " is left as it is");
    }

    // retryText: a manual retry of the current revision, with its event and message.
    void startRevision(bool restart, const std::optional<std::string>& retryText = std::nullopt) {
        st_.failedChecks = 0;
        st_.iterations = 0;
        st_.preRolloutPassed = false;
        clearAnalysisTimers();
        st_.lastAppliedSpec = obs_.targetTemplateHash;
        bool needsApproval = spec_.hasWebhooks(WebhookType::ConfirmRollout);
        if (retryText) {
            emit(EventType::Normal, "Retry", *retryText);
        } else if (restart) {
            emit(EventType::Normal, "NewRevision",
                 "New revision detected! Restarting analysis for " + target());
        } else {
            emit(EventType::Normal, "NewRevision",
                 std::string("New revision detected! ") +
                     (needsApproval ? "Waiting for approval to scale up " : "Scaling up ") +
                     target());
        }
        if (needsApproval) {
            // The new revision waits for confirm-rollout at zero replicas, as a fresh one does;
            // only safe to scale down when the primary can take the traffic.
            if (restart && obs_.primary.ready) {
                setWeights(100, 0);
                scaleTarget(0);
            }
            setPhase(Phase::Waiting);
            message_ = retryText ? *retryText + "; waiting for confirm-rollout approval"
                                 : "Waiting for confirm-rollout approval for " + target();
            requestChecks({{WebhookType::ConfirmRollout, WebhookType::Rollback}, false});
            return;
        }
        if (restart) {
            if (obs_.primary.ready) setWeights(100, 0);
        } else {
            scaleTarget(scaleUpReplicas());
        }
        setPhase(Phase::Progressing);
        st_.targetUnreadySince = now_;
        message_ = retryText ? *retryText : "New revision detected, progressing canary analysis.";
        requeue_ = readinessPoll();
    }

    void awaitRolloutApproval() {
        if (revisionChanged()) {
            startRevision(true);
            return;
        }
        if (st_.manualPromotionRequested) {
            // A manual promotion stands for the approval.
            st_.gateWaitingSince.erase(WebhookType::ConfirmRollout);
            scaleTarget(scaleUpReplicas());
            setPhase(Phase::Progressing);
            st_.targetUnreadySince = now_;
            std::string text = manualPromotionText() + ": scaling up " + target();
            emit(EventType::Normal, "Approved", text);
            message_ = text;
            requeue_ = readinessPoll();
            return;
        }
        Checks checks{{WebhookType::ConfirmRollout, WebhookType::Rollback}, false};
        if (!haveResults(checks)) {
            requestChecks(checks);
            return;
        }
        if (rolledBackByWebhook()) return;
        if (checkGate(WebhookType::ConfirmRollout) != GateState::Open) return;
        scaleTarget(scaleUpReplicas());
        setPhase(Phase::Progressing);
        st_.targetUnreadySince = now_;
        emit(EventType::Normal, "Approved", "Confirm-rollout approved: scaling up " + target());
        message_ = "New revision approved, progressing canary analysis.";
        requeue_ = readinessPoll();
    }

    // A/B testing and mirrored blue-green count, as Flagger, the iteration that starts the
    // traffic to the canary (startsTraffic()) among analysis.iterations, and promote after that
    // many analysed ones.
    bool countsRoutingIteration() const {
        return spec_.strategy() == Strategy::BlueGreen && (spec_.abTesting() || spec_.mirrors());
    }

    // The iteration that starts the canary's traffic, which the canary has none of before, so
    // its metrics are not judged (Flagger's "Starting canary analysis" round, which runs the
    // pre-rollout hooks): the first of A/B testing (matched requests go to the canary) and of
    // mirroring (a copy of the requests goes to it), each weight-0 one of a progressive canary.
    bool startsTraffic() const {
        if (countsRoutingIteration()) return st_.iterations == 0;
        if (spec_.strategy() == Strategy::BlueGreen) return false;
        return st_.canaryWeight == 0 && !(spec_.mirrors() && st_.iterations > 0);
    }

    bool atPromotionPoint() const {
        if (spec_.strategy() == Strategy::BlueGreen) {
            if (countsRoutingIteration()) {
                return !startsTraffic() && st_.iterations >= spec_.analysis.iterations;
            }
            return st_.iterations + 1 >= spec_.analysis.iterations;
        }
        return st_.canaryWeight >= spec_.maxWeight();
    }

    Checks iterationChecks() const {
        Checks checks;
        checks.webhooks.push_back(WebhookType::Rollback);
        if (!st_.preRolloutPassed) checks.webhooks.push_back(WebhookType::PreRollout);
        checks.webhooks.push_back(WebhookType::Rollout);
        if (atPromotionPoint()) {
            checks.webhooks.push_back(WebhookType::ConfirmPromotion);
        } else if (spec_.strategy() == Strategy::Canary) {
            checks.webhooks.push_back(WebhookType::ConfirmTrafficIncrease);
        }
        // With no traffic on the canary yet its metrics would be empty (Flagger skips them
        // too); this iteration can only start the traffic, never promote.
        checks.metrics = !startsTraffic();
        return checks;
    }

    void analyse() {
        if (revisionChanged()) {
            startRevision(true);
            return;
        }
        if (st_.failedChecks >= spec_.analysis.threshold) {
            rollbackOnThreshold();
            return;
        }
        if (!obs_.target.ready) {
            if (!st_.targetUnreadySince) st_.targetUnreadySince = now_;
            if (pastDeadline(st_.targetUnreadySince)) {
                rollback("Rolling back " + target() + " progress deadline exceeded: " + target() +
                         " not ready within " + deadlineText() + " (" + readiness(obs_.target) +
                         ")");
                return;
            }
            holdAndReport(
                "Waiting for " + target() + " rollout to finish (" + readiness(obs_.target) + ")",
                EventType::Normal, "Waiting", readinessPoll());
            return;
        }
        st_.targetUnreadySince.reset();
        if (st_.manualPromotionRequested) {
            // As a passed analysis: never starts while the primary is not ready.
            if (!obs_.primary.ready) {
                holdAndReport(manualPromotionText() + " held: " + primary() + " is not ready (" +
                                  readiness(obs_.primary) + ")",
                              EventType::Warning, "PrimaryNotReady", readinessPoll());
                return;
            }
            startPromotion(manualPromotionText() + " for " + target());
            return;
        }
        if (spec_.skipAnalysis) {
            startPromotion("Canary analysis skipped for " + target());
            return;
        }
        if (st_.lastAnalysisTime) {
            Time next = *st_.lastAnalysisTime + spec_.analysis.interval;
            if (now_ < next) {
                requeue_ = std::max(seconds(1), std::chrono::ceil<seconds>(next - now_));
                return;
            }
        }
        Checks checks = iterationChecks();
        if (!haveResults(checks)) {
            requestChecks(checks);
            return;
        }
        evaluateIteration(checks);
    }

    // One analysis iteration with every result in: roll back, halt, or advance.
    void evaluateIteration(const Checks& checks) {
        const bool promotionPoint = atPromotionPoint();
        const bool startTraffic = startsTraffic();
        st_.lastAnalysisTime = now_;
        requeue_ = interval();
        if (rolledBackByWebhook()) return;

        std::vector<std::string> failures = webhookFailures(checks);
        detail::MetricVerdicts metrics;
        if (checks.metrics) metrics = detail::judgeMetrics(spec_.analysis.metrics, obs_.metrics);
        failures.insert(failures.end(), metrics.failures.begin(), metrics.failures.end());
        std::vector<std::string> halts;
        if (!failures.empty() && failCheck(failures, halts)) return;
        if (checks.metrics && lackData(metrics.missing, halts)) return;
        if (!halts.empty()) {
            message_ = join(halts, "; ");
            return;
        }
        advance(promotionPoint, startTraffic);
    }

    // The pre-rollout (when this iteration runs them) and rollout webhooks that failed; whether
    // pre-rollout passed is recorded.
    std::vector<std::string> webhookFailures(const Checks& checks) {
        std::vector<std::string> failures;
        if (checks.includes(WebhookType::PreRollout)) {
            bool passed = true;
            for (const WebhookSpec* hook : spec_.webhooksOfType(WebhookType::PreRollout)) {
                if (outcomeOf(*hook) != WebhookOutcome::Succeeded) {
                    failures.push_back(failureText(*hook));
                    passed = false;
                }
            }
            st_.preRolloutPassed = passed;
        }
        for (const WebhookSpec* hook : spec_.webhooksOfType(WebhookType::Rollout)) {
            if (outcomeOf(*hook) != WebhookOutcome::Succeeded)
                failures.push_back(failureText(*hook));
        }
        return failures;
    }

    // Counts one failed check (an event per failure) and halts; true when that reached the
    // threshold and rolled the canary back.
    bool failCheck(const std::vector<std::string>& failures, std::vector<std::string>& halts) {
        ++st_.failedChecks;
        for (const std::string& failure : failures) {
            emit(EventType::Warning, "Halt", "Halt advancement: " + failure);
        }
        halts.push_back("Halt advancement: " + join(failures, "; ") + " (failed checks " +
                        std::to_string(st_.failedChecks) + "/" +
                        std::to_string(spec_.analysis.threshold) + ")");
        if (st_.failedChecks < spec_.analysis.threshold) return false;
        rollbackOnThreshold();
        return true;
    }

    // Missing data never passes, but is not a failed check: it halts, and only rolls back (true)
    // once it has lasted past the progress deadline. Data for every metric ends it.
    bool lackData(const std::vector<std::string>& missing, std::vector<std::string>& halts) {
        if (missing.empty()) {
            st_.noDataSince.reset();
            st_.noDataReason.clear();
            return false;
        }
        if (!st_.noDataSince) st_.noDataSince = now_;
        st_.noDataReason = join(missing, "; ");
        std::string text = "Halt advancement: no metric data since " +
                           formatTimestamp(*st_.noDataSince) + ": " + st_.noDataReason;
        emit(EventType::Warning, "NoData", text);
        halts.push_back(text);
        if (!pastDeadline(st_.noDataSince)) return false;
        rollback("Rolling back " + target() + ": no metric data for longer than " + deadlineText() +
                 " (" + st_.noDataReason + ")");
        return true;
    }

    // A passed iteration: the promotion (past its gate), the next blue-green iteration, or more
    // traffic to the canary (past its gate).
    void advance(bool promotionPoint, bool startTraffic) {
        // Checks still run (and can fail or abort) while the primary is not ready, but
        // nothing advances: neither more traffic to the canary nor a promotion.
        if (!obs_.primary.ready) {
            holdAndReport("Halt advancement: " + primary() + " is not ready (" +
                              readiness(obs_.primary) + ")",
                          EventType::Warning, "PrimaryNotReady", interval());
            return;
        }
        if (!(promotionPoint && countsRoutingIteration())) ++st_.iterations;
        if (promotionPoint) {
            GateState gate = checkGate(WebhookType::ConfirmPromotion);
            if (gate == GateState::Closed) setPhase(Phase::WaitingPromotion);
            if (gate != GateState::Open) return;
            startPromotion("Canary analysis succeeded for " + target());
            return;
        }
        if (spec_.strategy() == Strategy::BlueGreen) {
            std::string text = "Advance " + target() + " canary iteration " +
                               std::to_string(st_.iterations) + "/" +
                               std::to_string(spec_.analysis.iterations);
            if (startTraffic && spec_.abTesting()) {
                // Matched requests go to the canary; the rest stays on the primary.
                setWeights(0, 100);
                text += ": routing requests that match analysis.match to " + target();
            } else if (startTraffic) {
                setWeights(100, 0, true);
                text += ": " + mirrorText();
            }
            emit(EventType::Normal, "Advance", text);
            message_ = text;
            return;
        }
        if (checkGate(WebhookType::ConfirmTrafficIncrease) != GateState::Open) {
            // The mirroring has not started (mirrorsTraffic() reads it from the iterations).
            if (startTraffic && spec_.mirrors()) st_.iterations = 0;
            return;
        }
        if (startTraffic && spec_.mirrors() && st_.canaryWeight == 0) {
            // One mirrored step before the first weight, as Flagger.
            setWeights(100, 0, true);
            std::string text = "Advance " + target() + " canary: " + mirrorText();
            emit(EventType::Normal, "Advance", text);
            message_ = text;
            return;
        }
        int weight = spec_.nextWeight(st_.canaryWeight);
        setWeights(100 - weight, weight);
        std::string text = "Advance " + target() + " canary weight " + std::to_string(weight);
        emit(EventType::Normal, "Advance", text);
        message_ = text;
    }

    std::string mirrorText() const {
        const std::optional<int>& percent = spec_.analysis.mirrorWeight;
        return "mirroring " +
               (percent && *percent > 0 ? std::to_string(*percent) + "% of the"
                                        : std::string("the")) +
               " requests to " + target() + ", answered by " + primary();
    }

    void startPromotion(const std::string& why) {
        // The analysed canary is ready and takes all traffic while the primary rolls out, so
        // traffic never lands on a primary that is mid-rollout.
        setWeights(0, 100);
        actions_.push_back(action::CopyTargetToPrimary{st_.lastAppliedSpec});
        copyAutoscalerToPrimary();
        setPhase(Phase::Promoting);
        clearAnalysisTimers();
        st_.primaryUnreadySince = now_;
        st_.lastAnalysisTime = now_;
        std::string text = why + ": routing all traffic to " + target() +
                           " and copying its template spec to " + primary();
        emit(EventType::Normal, "Promoting", text);
        message_ = text;
        requeue_ = readinessPoll();
    }

    // A revision that changes while promoting may or may not have reached the primary (the
    // copy is refused once the hash moved), so it is analysed from the start like any other.
    bool restartedByNewRevision() {
        if (!revisionChanged()) return false;
        startRevision(true);
        return true;
    }

    void promote() {
        if (restartedByNewRevision()) return;
        if (!obs_.primary.ready) {
            if (!st_.primaryUnreadySince) st_.primaryUnreadySince = now_;
            if (st_.canaryWeight < 100 && obs_.target.ready) setWeights(0, 100);
            if (pastDeadline(st_.primaryUnreadySince)) {
                setPhase(Phase::Failed);
                st_.targetKeptServing = true;
                clearAnalysisTimers();
                std::string text = "Promotion failed: " + primary() + " not ready within " +
                                   deadlineText() + " (" + readiness(obs_.primary) +
                                   "); traffic stays on " + target();
                emit(EventType::Warning, "PromotionFailed", text);
                message_ = text;
                callWebhooks(WebhookType::PostRollout);
                requeue_ = interval();
                return;
            }
            holdAndReport("Promoting: waiting for " + primary() + " rollout to finish (" +
                              readiness(obs_.primary) + ")",
                          EventType::Normal, "Promoting", readinessPoll());
            return;
        }
        st_.primaryUnreadySince.reset();
        int stepPromotion =
            spec_.strategy() == Strategy::Canary ? spec_.analysis.stepWeightPromotion : 0;
        if (stepPromotion > 0 && st_.canaryWeight > stepPromotion) {
            if (st_.lastAnalysisTime) {
                Time next = *st_.lastAnalysisTime + spec_.analysis.interval;
                if (now_ < next) {
                    requeue_ = std::max(seconds(1), std::chrono::ceil<seconds>(next - now_));
                    return;
                }
            }
            int primaryWeight = 100 - st_.canaryWeight + stepPromotion;
            setWeights(primaryWeight, 100 - primaryWeight);
            st_.lastAnalysisTime = now_;
            std::string text =
                "Advance " + primary() + " primary weight " + std::to_string(primaryWeight);
            emit(EventType::Normal, "Advance", text);
            message_ = text;
            requeue_ = interval();
            return;
        }
        setWeights(100, 0);
        setPhase(Phase::Finalising);
        st_.lastAnalysisTime.reset();
        emit(EventType::Normal, "Promoting", "Routing all traffic to " + primary());
        message_ = "Routing all traffic to " + primary();
        requeue_ = kAwaitResults;
    }

    void finalise() {
        if (restartedByNewRevision()) return;
        if (!obs_.primary.ready) {
            // Back to the canary until the primary is ready again.
            if (obs_.target.ready) setWeights(0, 100);
            setPhase(Phase::Promoting);
            if (!st_.primaryUnreadySince) st_.primaryUnreadySince = now_;
            holdAndReport(primary() + " is not ready (" + readiness(obs_.primary) +
                              "): traffic back on " + target(),
                          EventType::Warning, "PrimaryNotReady", readinessPoll());
            return;
        }
        scaleTarget(0);
        st_.canaryWeight = 0;
        st_.targetKeptServing = false;
        st_.lastPromotedSpec = st_.lastAppliedSpec;
        clearAnalysisTimers();
        setPhase(Phase::Succeeded);
        emit(EventType::Normal, "Promoted", "Promotion completed! Scaling down " + target());
        message_ = "Canary analysis completed successfully, promotion finished.";
        callWebhooks(WebhookType::PostRollout);
        requeue_ = interval();
    }

    const Observation& obs_;
};

}  // namespace

std::string_view toString(ManualAction action) {
    switch (action) {
        case ManualAction::Promote:
            return "promote";
        case ManualAction::Abort:
            return "abort";
        case ManualAction::Retry:
            return "retry";
    }
    return "";
}

std::string_view annotationOf(ManualAction action) {
    switch (action) {
        case ManualAction::Promote:
            return "sluice.io/promote";
        case ManualAction::Abort:
            return "sluice.io/abort";
        case ManualAction::Retry:
            return "sluice.io/retry";
    }
    return "";
}

std::string_view toString(EventType type) {
    return type == EventType::Warning ? "Warning" : "Normal";
}

int readyReplicasRequired(int desired, int percent) {
    const long long d = std::max(0, desired);
    const long long p = std::clamp(percent, 0, 100);
    return static_cast<int>((d * p + 99) / 100);
}

MetricResult MetricResult::measured(double value) {
    return {Kind::Value, value, ""};
}
MetricResult MetricResult::noData(std::string reason) {
    return {Kind::NoData, 0, std::move(reason)};
}
MetricResult MetricResult::queryError(std::string reason) {
    return {Kind::QueryError, 0, std::move(reason)};
}
bool MetricResult::hasValue() const {
    return kind == Kind::Value && !std::isnan(value);
}

std::string describe(const Action& action) {
    struct Describer {
        std::string operator()(const action::InitializePrimary& a) const {
            return "InitializePrimary(" + a.templateHash + ")";
        }
        std::string operator()(const action::ScaleTarget& a) const {
            return "ScaleTarget(" + std::to_string(a.replicas) + ")";
        }
        std::string operator()(const action::SetWeights& a) const {
            return "SetWeights(primary=" + std::to_string(a.primary) +
                   ", canary=" + std::to_string(a.canary) + (a.mirror ? ", mirror" : "") + ")";
        }
        std::string operator()(const action::CopyTargetToPrimary& a) const {
            return "CopyTargetToPrimary(" + a.templateHash + ")";
        }
        std::string operator()(const action::CallWebhooks& a) const {
            return "CallWebhooks(" + std::string(toString(a.type)) + ")";
        }
        std::string operator()(const action::RunMetricChecks&) const { return "RunMetricChecks"; }
        std::string operator()(const action::InitializePrimaryAutoscaler&) const {
            return "InitializePrimaryAutoscaler";
        }
        std::string operator()(const action::CopyAutoscalerToPrimary&) const {
            return "CopyAutoscalerToPrimary";
        }
        std::string operator()(const action::EmitEvent& a) const {
            return "EmitEvent(" + std::string(toString(a.event.type)) + ", " + a.event.reason +
                   ", " + a.event.message + ")";
        }
    };
    return std::visit(Describer{}, action);
}

Decision step(const CanarySpec& spec, const CanaryStatus& status, const Observation& observation,
              Time now) {
    return Round(spec, status, observation, now).run();
}

bool mirrorsTraffic(const CanarySpec& spec, const CanaryStatus& status) {
    const bool analysing =
        status.phase == Phase::Progressing || status.phase == Phase::WaitingPromotion;
    return spec.mirrors() && analysing && status.canaryWeight == 0 && status.iterations > 0;
}

Decision rejectInvalidSpec(const CanaryStatus& status, const std::vector<std::string>& errors,
                           Time now) {
    static const CanarySpec kNoSpec;
    static const Observation kNoObservation;
    return Round(kNoSpec, status, kNoObservation, now).rejectSpec(errors);
}

}  // namespace sluice::canaryengine
