// Flagger's choice of alerts from a Canary's events (see alerts.h for the table).
#include "sluice/canaryengine/alerts.h"

#include <algorithm>

#include "sluice/util/strings.h"

namespace sluice::canaryengine {

namespace {

std::string trafficRouting(const CanarySpec& spec) {
    const AnalysisSpec& a = spec.analysis;
    if (a.stepWeight > 0)
        return "weight step " + std::to_string(a.stepWeight) + ", max " +
               std::to_string(spec.maxWeight());
    if (!a.stepWeights.empty()) {
        std::vector<std::string> steps;
        for (int w : a.stepWeights) steps.push_back(std::to_string(w));
        return "weight steps " + join(steps, ",");
    }
    if (a.iterations > 0) {
        const bool ab = a.match.is_array() && !a.match.empty();
        return std::string(ab ? "A/B testing" : "blue/green") + ", " +
               std::to_string(a.iterations) + " iterations";
    }
    return "";
}

// The engine's rollbacks that a person asked for (engine.cpp words them so); Flagger sends
// these at warn, failures at error.
bool isManualRollback(const std::string& message) {
    return message.find("manual abort") != std::string::npos ||
           message.find("manual webhook invoked") != std::string::npos;
}

std::string gateWaitText(WebhookType type) {
    switch (type) {
        case WebhookType::ConfirmRollout:
            return "Canary is waiting for approval (confirm-rollout).";
        case WebhookType::ConfirmTrafficIncrease:
            return "Canary traffic increase is waiting for approval (confirm-traffic-increase).";
        case WebhookType::ConfirmPromotion:
            return "Canary promotion is waiting for approval (confirm-promotion).";
        default:
            return "Canary is waiting for approval.";
    }
}

// Gates that began waiting in this decision and whose hooks are not all muted.
std::vector<WebhookType> gatesStartedWaiting(const CanarySpec& spec, const CanaryStatus& before,
                                             const CanaryStatus& after) {
    std::vector<WebhookType> out;
    for (const auto& [type, since] : after.gateWaitingSince) {
        if (before.gateWaitingSince.count(type)) continue;
        const auto hooks = spec.webhooksOfType(type);
        const bool muted =
            !hooks.empty() && std::all_of(hooks.begin(), hooks.end(),
                                          [](const WebhookSpec* h) { return h->muteAlert; });
        if (!muted) out.push_back(type);
    }
    return out;
}

class Builder {
  public:
    Builder(const CanarySpec& spec, const AlertSubject& subject) : spec_(spec), subject_(subject) {}

    AlertMessage make(AlertSeverity severity, const std::string& what, std::string text,
                      bool details) const {
        AlertMessage m;
        m.severity = severity;
        m.title = "Canary " + subject_.name + "." + subject_.namespaceName + " " + what;
        m.text = std::move(text);
        m.fields.emplace_back(
            "Target",
            (spec_.targetRef.kind.empty() ? std::string("Deployment") : spec_.targetRef.kind) +
                "/" + spec_.targetRef.name + "." + subject_.namespaceName);
        if (!subject_.revision.empty()) m.fields.emplace_back("Revision", subject_.revision);
        if (!details) return m;
        m.fields.emplace_back("Failed checks threshold", std::to_string(spec_.analysis.threshold));
        m.fields.emplace_back("Progress deadline",
                              std::to_string(spec_.progressDeadlineSeconds) + "s");
        if (std::string routing = trafficRouting(spec_); !routing.empty())
            m.fields.emplace_back("Traffic routing", routing);
        return m;
    }

  private:
    const CanarySpec& spec_;
    const AlertSubject& subject_;
};

const Event* eventOf(const Action& action) {
    const auto* emit = std::get_if<action::EmitEvent>(&action);
    return emit ? &emit->event : nullptr;
}

}  // namespace

std::vector<AlertMessage> alertsFor(const CanarySpec& spec, const AlertSubject& subject,
                                    const CanaryStatus& before, const Decision& decision) {
    const Builder b(spec, subject);
    std::vector<AlertMessage> out;
    // Failed checks of this decision, for the rollback they lead to.
    std::vector<std::string> failures;
    const std::vector<WebhookType> waiting = gatesStartedWaiting(spec, before, decision.status);
    const auto& actions = decision.actions;
    for (std::size_t i = 0; i < actions.size(); ++i) {
        const Event* e = eventOf(actions[i]);
        if (!e) continue;
        const std::string& r = e->reason;
        if (r == "Halt" || r == "NoData") {
            failures.push_back(e->message);
        } else if (r == "Initialized") {
            out.push_back(b.make(AlertSeverity::Info, "initialized", e->message, false));
        } else if (r == "NewRevision") {
            const bool restart = e->message.find("Restarting") != std::string::npos;
            out.push_back(b.make(restart ? AlertSeverity::Warn : AlertSeverity::Info,
                                 restart ? "restarted: new revision" : "new revision", e->message,
                                 true));
        } else if (r == "Retry") {
            out.push_back(b.make(AlertSeverity::Info, "retry", e->message, true));
        } else if (r == "Promoted") {
            out.push_back(
                b.make(AlertSeverity::Info, "promoted",
                       "Canary analysis completed successfully, promotion finished.\n" + e->message,
                       false));
        } else if (r == "InitializationFailed" || r == "PromotionFailed") {
            out.push_back(
                b.make(AlertSeverity::Error,
                       r == "PromotionFailed" ? "promotion failed" : "initialization failed",
                       e->message, true));
        } else if (r == "RollingBack") {
            std::string text = e->message;
            // The Failed event that follows says what happened to the traffic.
            for (std::size_t j = i + 1; j < actions.size(); ++j) {
                const Event* next = eventOf(actions[j]);
                if (next && next->reason == "Failed") {
                    text += "\n" + next->message;
                    break;
                }
            }
            const bool manual = isManualRollback(e->message);
            AlertMessage m = b.make(manual ? AlertSeverity::Warn : AlertSeverity::Error,
                                    "rolled back", text, true);
            if (!failures.empty())
                m.fields.insert(m.fields.begin() + (subject.revision.empty() ? 1 : 2),
                                {"Failed checks", join(failures, "\n")});
            out.push_back(std::move(m));
        } else if (r == "AwaitingApproval") {
            // The event names its gate ("Waiting for approval: confirm-promotion ...").
            for (WebhookType type : waiting) {
                if (e->message.find(std::string(toString(type)) + " ") == std::string::npos)
                    continue;
                out.push_back(b.make(AlertSeverity::Warn, "is waiting for approval",
                                     gateWaitText(type) + "\n" + e->message, false));
            }
        }
    }
    return out;
}

bool alertReaches(AlertSeverity message, AlertSeverity subscribed) {
    return static_cast<int>(message) >= static_cast<int>(subscribed);
}

std::vector<const AlertSpec*> subscribersOf(const CanarySpec& spec, AlertSeverity severity) {
    std::vector<const AlertSpec*> out;
    for (const AlertSpec& alert : spec.analysis.alerts)
        if (alertReaches(severity, alert.severity)) out.push_back(&alert);
    return out;
}

}  // namespace sluice::canaryengine
