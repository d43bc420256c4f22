#pragma once
// Building the Application's status (Argo CD's shape plus status.inventory). Pure functions
// over JSON; the controller writes the result through the status subresource.
#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/appengine/plan.h"

namespace sluice::appengine {

// status.resources: [{group, version, kind, namespace, name, status, health: {status,
// message}, requiresPruning}] in compare order. Missing objects report status "OutOfSync"
// and health "Missing" (Argo CD's encoding).
json resourcesStatus(const CompareResult& compared);

// status.inventory from the resources a sync applied (sorted, unique).
json inventoryStatus(const std::vector<InventoryEntry>& entries);

// Appends {id, revision, deployedAt, deployStartedAt, source} to status.history (id = last id
// + 1, starting at 0 as Argo CD) and keeps the newest `limit` entries.
void appendHistory(json& history, const std::string& revision, const json& source,
                   const std::string& deployStartedAt, const std::string& deployedAt, int limit);
// The same with the revision fields given as an object: {revision, source} or, for multiple
// sources, {revisions, sources}.
void appendHistory(nlohmann::json& history, const nlohmann::json& revisionRecord,
                   const std::string& deployStartedAt, const std::string& deployedAt, int limit);
// The history entry with this id, or null.
json historyEntry(const json& history, long id);

// status.conditions: [{type, message, lastTransitionTime}]. setCondition replaces the entry of
// that type (keeping lastTransitionTime when the message is unchanged); returns true if the
// list changed.
bool setCondition(json& conditions, const std::string& type, const std::string& message,
                  const std::string& now);
bool removeCondition(json& conditions, const std::string& type);

// Condition types, as Argo CD names them.
inline constexpr const char* kInvalidSpecError = "InvalidSpecError";
inline constexpr const char* kComparisonError = "ComparisonError";
inline constexpr const char* kSyncError = "SyncError";
inline constexpr const char* kSharedResourceWarning = "SharedResourceWarning";
inline constexpr const char* kRepeatedResourceWarning = "RepeatedResourceWarning";
inline constexpr const char* kOrphanedResourceWarning = "OrphanedResourceWarning";

// Equality of two status objects ignoring reconciledAt (so a no-op reconcile writes nothing).
bool sameStatus(const json& a, const json& b);

// The controller's watch cache keeps the bulky parts of a status that only the controller reads
// (resources, inventory, history, operationState.syncResult.resources) as their compact JSON
// text: an Application of a thousand objects then costs kilobytes of cache, not megabytes.
// packStatus turns those arrays into strings; unpackStatus turns such strings back (what is
// written to the API is always unpacked). Both are idempotent and leave other fields alone.
void packStatus(json& status);
// The members packStatus packs, as paths from the Application's top ({"status", "resources"}):
// a watch can deliver them as text already (kube::WatchOptions::rawMembers).
std::vector<std::vector<std::string>> packedStatusMembers();
void unpackStatus(json& status);
// A status field as stored: the value itself, or the JSON its packed text holds.
json unpackedField(const json& value);

}  // namespace sluice::appengine
