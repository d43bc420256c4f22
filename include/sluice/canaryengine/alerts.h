#pragma once
// Which of a decision's events become chat alerts (Flagger's spec.analysis.alerts and its
// controller-wide -slack-url), with which severity and words. Pure: the controller resolves the
// AlertProviders and hands the messages to the notifier.
//
// As Flagger:
//   info   initialization done; a new revision detected (analysis starts); a manual retry;
//          promotion completed
//   warn   a new revision during an analysis (it restarts); a gate starts waiting for approval
//          (confirm-rollout, confirm-traffic-increase, confirm-promotion; once per wait, not
//          every interval, and not when every hook of the gate has muteAlert); a rollback asked
//          for by a person (rollback webhook, sluice.io/abort)
//   error  a rollback on failed checks, a progress deadline, a gate's maxWait or missing metric
//          data (with the failed checks: metric, value and threshold); initialization or
//          promotion that failed
// Canary weight steps, halts and other events send nothing.
#include <string>
#include <utility>
#include <vector>

#include "sluice/canaryengine/engine.h"
#include "sluice/canaryengine/spec.h"

namespace sluice::canaryengine {

struct AlertMessage {
    AlertSeverity severity = AlertSeverity::Info;
    std::string title;  // "Canary podinfo.test rolled back"
    std::string text;   // the events' words, one per line, no links
    // Ordered facts: ("Target", "Deployment/podinfo.test"), ("Failed checks", "...").
    std::vector<std::pair<std::string, std::string>> fields;
    bool operator==(const AlertMessage&) const = default;
};

// The Canary an alert is about.
struct AlertSubject {
    std::string namespaceName;
    std::string name;
    // What the target runs, e.g. "podinfo=ghcr.io/stefanprodan/podinfo:6.0.1" ("" = unknown).
    std::string revision;
};

// The alerts `decision` (made from `before`) calls for, in the order of its events.
std::vector<AlertMessage> alertsFor(const CanarySpec& spec, const AlertSubject& subject,
                                    const CanaryStatus& before, const Decision& decision);

// Whether a message of `message` severity goes to a subscription at `subscribed`.
bool alertReaches(AlertSeverity message, AlertSeverity subscribed);

// The spec's alerts that a message of `severity` goes to, in spec order.
std::vector<const AlertSpec*> subscribersOf(const CanarySpec& spec, AlertSeverity severity);

}  // namespace sluice::canaryengine
