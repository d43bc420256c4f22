#pragma once
// AppProject spec.orphanedResources (Argo CD's orphaned resources monitoring): the top-level
// namespaced objects of an Application's destination namespace that no Application manages.
//
// Semantics follow Argo CD (controller.getResourceTree):
// - Monitoring is on when the project has `orphanedResources` (`{}` included); the Application
//   gets the OrphanedResourceWarning condition ("Application has N orphaned resources") only
//   with `warn: true`.
// - An object is an orphan when it is in the destination namespace, has no ownerReferences, is
//   not one of the Application's own resources, carries no tracking of an Application that
//   exists, is of a namespaced kind the project permits, and is not excluded: the ServiceAccount
//   `default`, the ConfigMap `kube-root-ca.crt`, the Service `kubernetes` in namespace
//   `default`, and the project's `ignore` items ({group, kind, name} globs; an empty kind or
//   name matches any).
// Sluice looks only among the kinds the destination cluster already watches (those its
// Applications deploy); see docs/crds.md.
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/appengine/plan.h"
#include "sluice/appengine/project.h"

namespace sluice::appengine {

struct OrphanedResourceKey {
    std::string group;  // glob
    std::string kind;   // glob; "" matches any
    std::string name;   // glob; "" matches any
};

struct OrphanedResourcesSettings {
    bool warn = false;
    std::vector<OrphanedResourceKey> ignore;
};

// spec.orphanedResources of an AppProject; nullopt when monitoring is off (absent or null).
std::optional<OrphanedResourcesSettings> parseOrphanedResources(const nlohmann::json& appProject);

// Argo CD's isKnownOrphanedResourceExclusion: the defaults and the ignore list.
bool isKnownOrphanExclusion(const ResourceKey& key, const OrphanedResourcesSettings& settings);

struct OrphanInput {
    std::string ns;  // the Application's destination namespace
    // Live objects (any kinds; those outside ns are skipped).
    std::vector<std::shared_ptr<const nlohmann::json>> live;
    // The Application's own resources (desired and recorded): never orphans.
    std::set<ResourceKey> own;
    // Whether an Application of that instance name (tracking id) exists; null: any tracked
    // object is managed.
    std::function<bool(const std::string& instance)> applicationExists;
    const Project* project = nullptr;  // null: every kind permitted
    OrphanedResourcesSettings settings;
};

// The orphans, sorted.
std::vector<ResourceKey> findOrphans(const OrphanInput& in);

// "Application has N orphaned resources" (Argo CD's message).
std::string orphanedResourcesMessage(std::size_t count);

}  // namespace sluice::appengine
