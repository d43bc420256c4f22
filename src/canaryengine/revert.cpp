// revertOnDeletion: what deleting a Canary asks of its target (pure; the controller's
// finalizer carries it out).
#include <algorithm>

#include "sluice/canaryengine/engine.h"

namespace sluice::canaryengine {

namespace {

// Readiness is polled this often while the deletion waits for the target.
constexpr std::chrono::seconds kRevertPoll{5};

std::string readiness(const WorkloadObservation& workload) {
    return std::to_string(workload.readyReplicas) + "/" + std::to_string(workload.replicas) +
           " replicas ready";
}

}  // namespace

RevertStep revertStep(const CanarySpec& spec, const WorkloadObservation& target,
                      const WorkloadObservation& primary, Time deletedAt, Time now) {
    RevertStep step;
    const std::string& name = spec.targetRef.name;
    if (!target.exists) {
        step.removeFinalizer = true;
        step.events.push_back(
            {EventType::Warning, "RevertSkipped",
             "Canary deleted: target " + name + " not found, nothing to restore"});
        return step;
    }
    // The target takes over the primary's load; a primary already gone leaves the target's
    // own size (a target at 0 is a target to serve from, so at least 1).
    const int wanted = std::max(1, primary.exists ? primary.replicas : target.replicas);
    step.requeueAfter = kRevertPoll;
    if (target.replicas != wanted) {
        step.scaleTarget = wanted;
        step.events.push_back({EventType::Normal, "Reverting",
                               "Canary deleted: scaling " + name + " to " + std::to_string(wanted) +
                                   " replicas before routing all traffic to it"});
        return step;
    }
    if (!target.ready) {
        // Routing to a target that cannot serve would be an outage once the primary goes with
        // the Canary: the deletion waits, as Flagger's does.
        if (now - deletedAt > spec.progressDeadline()) {
            std::string text = "Canary deleted, but " + name + " is not ready after " +
                               std::to_string(spec.progressDeadlineSeconds) + "s (" +
                               readiness(target) + "): ";
            if (primary.exists) text += spec.primaryName() + " keeps serving; ";
            text += std::string("remove the finalizer ") + kRevertFinalizer +
                    " to delete the Canary without restoring " + name;
            step.events.push_back({EventType::Warning, "RevertBlocked", std::move(text)});
        }
        return step;
    }
    step.routeToTarget = true;
    step.removeFinalizer = true;
    step.requeueAfter = std::chrono::seconds(0);
    step.events.push_back(
        {EventType::Normal, "Reverted",
         "Canary deleted: all traffic routed to " + name + " (" + readiness(target) + ")"});
    return step;
}

}  // namespace sluice::canaryengine
