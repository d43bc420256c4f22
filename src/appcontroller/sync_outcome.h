#pragma once
// The pure end of a sync: how it ended (with Argo CD's retry rules) and which objects the
// inventory must keep naming afterwards.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "sluice/appengine/plan.h"
#include "sluice/appengine/spec.h"

namespace sluice::appcontroller::detail {

struct SyncAttempt {
    bool terminated = false;   // the user terminated the operation
    bool interrupted = false;  // controller shutdown: resumes on restart
    bool ok = false;           // every step ran
    std::string failure;       // non-empty: why the sync failed
    bool terminal = false;     // a failure a retry cannot mend (timeout, termination)
    bool dryRun = false;
    std::optional<appengine::RetryPolicy> retry;
    int retryCount = 0;  // retries made before this attempt
};

struct SyncVerdict {
    std::string phase;  // Succeeded, Failed, or Running (retry scheduled, or interrupted)
    std::string message;
    bool retryScheduled = false;
    int retryCount = 0;
    std::chrono::milliseconds retryDelay{0};
};

SyncVerdict judgeSync(const SyncAttempt& attempt);

// What the inventory names after a sync, indexed like compared.resources. It carries our
// tracking id and may need pruning later: after a success, the desired set plus anything left
// unpruned; after a failure, what was recorded before (written ahead) plus whatever this
// attempt applied, minus what it pruned, since an apply that failed on our side may still have
// reached the server.
std::vector<appengine::InventoryEntry> inventoryAfterSync(
    const appengine::CompareResult& compared,
    const std::vector<appengine::InventoryEntry>& recorded, const std::vector<bool>& applied,
    const std::vector<bool>& pruned, bool succeeded);

appengine::InventoryEntry inventoryEntryOf(const appengine::ResourceComparison& resource);

}  // namespace sluice::appcontroller::detail
