#include "decide.h"

#include <algorithm>
#include <vector>

#include "sluice/util/strings.h"
#include "types.h"
#include "util.h"

namespace sluice::appcontroller::detail {

AutoSyncDecision decideAutoSync(const AutoSyncInput& in) {
    using Action = AutoSyncDecision::Action;
    AutoSyncDecision d;
    d.endEarlierOperation = !in.sameRevision && in.phase == "Running";
    if (in.sameRevision && in.phase == "Running") {
        d.action = in.retryPending ? Action::WaitRetry : Action::Continue;
    } else if (!in.needsSync) {
        d.action = Action::None;
    } else if (in.rendersNothing && in.wouldPrune > 0 && !in.allowEmpty) {
        d.action = Action::RefuseEmpty;
    } else if (in.heldAfterRollback) {
        d.action = Action::HoldRolledBack;
    } else if (in.sameRevision && (in.phase == "Failed" || in.phase == "Error")) {
        d.action = Action::RefuseFailed;
    } else if (in.sameRevision && in.phase == "Succeeded") {
        d.action = in.selfHeal ? Action::SelfHeal : Action::None;
    } else {
        d.action = Action::Sync;
    }
    return d;
}

bool rollbackApplies(const RollbackInput& in) {
    return in.enabled && in.automated && in.phase == "Failed" && !in.retryScheduled &&
           in.failedHookPhase == "PostSync";
}

nlohmann::json rollbackTarget(const RollbackInput& in) {
    if (!rollbackApplies(in) || !in.history.is_array()) return nullptr;
    for (auto it = in.history.rbegin(); it != in.history.rend(); ++it) {
        const std::string revision = recordedRevision(*it);
        if (!revision.empty() && revision != in.failedRevision) return *it;
    }
    return nullptr;
}

bool needsSync(const appengine::CompareResult& compared, bool prune) {
    for (const auto& r : compared.resources) {
        if (r.desired && r.state != appengine::SyncState::Synced) return true;
        if (!r.desired && r.requiresPruning && prune && !r.pruneDisabled) return true;
    }
    return false;
}

std::size_t wouldPrune(const appengine::CompareResult& compared, bool prune) {
    if (!prune) return 0;
    return std::count_if(compared.resources.begin(), compared.resources.end(), [](const auto& r) {
        return !r.desired && r.requiresPruning && !r.pruneDisabled;
    });
}

std::string driftMessage(const appengine::CompareResult& compared,
                         const std::string& fieldManager) {
    std::vector<std::string> lines;
    for (const auto& r : compared.resources) {
        if (!r.desired || !r.live || r.state != appengine::SyncState::OutOfSync ||
            !r.ownedBy.empty())
            continue;
        auto who = appengine::driftManagers(*r.live, r.diff, fieldManager);
        std::vector<std::string> paths;
        for (const auto& d : r.diff.differences) paths.push_back(d.path);
        lines.push_back(describe(r.key.group, r.key.kind, r.key.ns, r.key.name) + " (" +
                        join(paths, ", ") + ")" +
                        (who.empty() ? "" : " changed by " + join(who, ", ")));
    }
    if (lines.empty()) return "self-heal: re-creating missing resources";
    return "self-heal: correcting drift of " + join(lines, "; ");
}

}  // namespace sluice::appcontroller::detail
