#pragma once
// The pure decisions of an Application reconcile: whether an automated sync runs, and how
// self-heal names the drift it corrects.
#include <string>

#include <nlohmann/json.hpp>

#include "sluice/appengine/plan.h"

namespace sluice::appcontroller::detail {

// What the automated sync policy sees at one reconcile.
struct AutoSyncInput {
    bool needsSync = false;     // something desired differs, or something is to be pruned
    bool sameRevision = false;  // the last operation was for this revision and source
    std::string phase;          // operationState.phase ("" when none)
    bool retryPending = false;  // a failed sync's retry is not due yet
    bool rendersNothing = false;
    std::size_t wouldPrune = 0;  // objects an automated sync would delete
    bool allowEmpty = false;
    bool selfHeal = false;
    // status.postSyncRollback names this revision: its PostSync hooks failed and an earlier
    // revision was restored (syncPolicy.rollbackOnPostSyncFailure).
    bool heldAfterRollback = false;
};

struct AutoSyncDecision {
    enum class Action {
        None,           // nothing to do
        WaitRetry,      // the running operation's retry is not due yet
        Continue,       // the running operation of this revision runs on (retry or restart)
        Sync,           // a new automated sync of this revision
        SelfHeal,       // a sync of the same revision undoing drift
        RefuseEmpty,    // the source renders nothing and objects would be pruned
        RefuseFailed,   // the last sync of this revision failed: not attempted again
        HoldRolledBack  // this revision failed its PostSync hooks and was rolled back
    };
    Action action = Action::None;
    // A running operation of an earlier revision or source ends (it never resumes once the
    // target moved).
    bool endEarlierOperation = false;
};

// Argo CD's automated sync rules.
AutoSyncDecision decideAutoSync(const AutoSyncInput& in);

// syncPolicy.rollbackOnPostSyncFailure: after an automated sync of `failedRevision` that ended
// Failed because of a PostSync hook, the history entry to sync back to: the newest whose
// revision is another one. Null when there is none (or the rule does not apply).
struct RollbackInput {
    bool enabled = false;    // syncPolicy.rollbackOnPostSyncFailure
    bool automated = false;  // the sync was started by the automated policy
    std::string phase;       // how the sync ended
    bool retryScheduled = false;
    std::string failedHookPhase;
    std::string failedRevision;
    nlohmann::json history;  // status.history, oldest first
};
bool rollbackApplies(const RollbackInput& in);
nlohmann::json rollbackTarget(const RollbackInput& in);  // a history entry, or null

// Whether syncing would change anything: something desired differs or is missing, or an object
// is to be pruned. Objects owned by another Application count: the sync reports the conflict.
bool needsSync(const appengine::CompareResult& compared, bool prune);
// The objects an automated sync with `prune` would delete.
std::size_t wouldPrune(const appengine::CompareResult& compared, bool prune);

// "self-heal: correcting drift of <object> (<paths>) changed by <managers>; ..." naming who
// changed what, or "self-heal: re-creating missing resources".
std::string driftMessage(const appengine::CompareResult& compared, const std::string& fieldManager);

}  // namespace sluice::appcontroller::detail
