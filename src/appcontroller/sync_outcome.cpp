#include "sync_outcome.h"

#include <set>

#include "util.h"

namespace sluice::appcontroller::detail {

SyncVerdict judgeSync(const SyncAttempt& a) {
    SyncVerdict v;
    v.retryCount = a.retryCount;
    bool terminal = a.terminal;
    if (a.terminated) {
        v.phase = "Failed";
        v.message = "Operation terminated";
        terminal = true;
    } else if (a.interrupted) {
        v.phase = "Running";
        v.message = "interrupted by controller shutdown; resumes on restart";
    } else if (a.ok && a.failure.empty()) {
        v.phase = "Succeeded";
        v.message =
            a.dryRun ? "successfully synced (dry run)" : "successfully synced (all tasks run)";
    } else {
        v.phase = "Failed";
        v.message = a.failure.empty() ? "sync failed" : a.failure;
    }
    if (v.phase != "Failed" || terminal || !a.retry) return v;
    if (a.retry->limit < 0 || a.retryCount < a.retry->limit) {
        v.retryScheduled = true;
        v.retryCount = a.retryCount + 1;
        v.retryDelay = a.retry->delayFor(v.retryCount);
        v.phase = "Running";
        v.message = "retrying attempt #" + std::to_string(v.retryCount) + " after " +
                    formatDuration(v.retryDelay) + ": " + v.message;
    } else if (a.retryCount > 0) {
        v.message += " (retried " + std::to_string(a.retryCount) + " times)";
    }
    return v;
}

appengine::InventoryEntry inventoryEntryOf(const appengine::ResourceComparison& r) {
    return appengine::InventoryEntry{r.key.group, r.version, r.key.kind, r.key.ns, r.key.name};
}

std::vector<appengine::InventoryEntry> inventoryAfterSync(
    const appengine::CompareResult& compared,
    const std::vector<appengine::InventoryEntry>& recorded, const std::vector<bool>& applied,
    const std::vector<bool>& pruned, bool succeeded) {
    std::vector<appengine::InventoryEntry> entries;
    const auto& resources = compared.resources;
    if (succeeded) {
        for (std::size_t i = 0; i < resources.size(); ++i) {
            const auto& r = resources[i];
            if (r.desired && r.ownedBy.empty()) entries.push_back(inventoryEntryOf(r));
            if (!r.desired && !pruned[i]) entries.push_back(inventoryEntryOf(r));
        }
        return entries;
    }
    std::set<appengine::ResourceKey> prunedKeys;
    for (std::size_t i = 0; i < resources.size(); ++i)
        if (pruned[i]) prunedKeys.insert(resources[i].key);
    for (const auto& e : recorded)
        if (!prunedKeys.count(e.key())) entries.push_back(e);
    for (std::size_t i = 0; i < resources.size(); ++i)
        if (applied[i]) entries.push_back(inventoryEntryOf(resources[i]));
    return entries;
}

}  // namespace sluice::appcontroller::detail
