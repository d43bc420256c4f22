#pragma once
// The values the Application controller's parts hand each other: an Application as one
// reconcile sees it, the desired state of a revision, a sync's outcome, and the base informers.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/appengine/plan.h"
#include "sluice/appengine/project.h"
#include "sluice/appengine/spec.h"
#include "sluice/appengine/status.h"
#include "sluice/cache/informer.h"
#include "sluice/git/git.h"
#include "sluice/kube/types.h"

namespace sluice::appcontroller {

using nlohmann::json;

inline const kube::GroupVersionKind kApplicationGvk{appengine::kGroup, appengine::kVersion,
                                                    appengine::kKind};
inline const kube::GroupVersionKind kAppProjectGvk{appengine::kGroup, appengine::kVersion,
                                                   appengine::kProjectKind};
// Canaries (the Canary controller's kind): a Deployment one targets is scaled by it.
inline const kube::GroupVersionKind kCanaryGvk{"sluice.io", "v1alpha1", "Canary"};

// The informers the controller starts before any reconcile (ApplicationController::Impl::
// ensureBaseInformers, under its lock): the Applications, and the repository Secrets of the
// control namespace, and the AppProjects of the control namespace. Read by the parts only after
// that has returned.
struct BaseInformers {
    cache::Informer* applications = nullptr;
    std::vector<cache::Informer*> secrets;
    cache::Informer* projects = nullptr;
};

// One Application as a reconcile sees it.
struct AppRef {
    std::string ns;
    std::string name;
    std::string key;       // "ns/name"
    std::string instance;  // appengine::instanceName()
    json object;           // the Application without its status (cache plus our pending writes)
    std::shared_ptr<const json> status;  // its status as the server holds it (never null)
};

// The desired state of one revision, compared with the live state.
struct Desired {
    // The revision compared: a single source's commit or chart version; with multiple sources
    // their revisions joined by ",", each also in `revisions`.
    git::Revision revision;
    std::vector<std::string> revisions;
    std::vector<std::string> sourceTypes;  // status.sourceType(s)
    std::shared_ptr<const appengine::PreparedObjects> prepared;
    std::string preparedKey;  // identifies prepared's content; "" when it has errors
    appengine::CompareResult compared;
    std::vector<appengine::InventoryEntry> inventory;  // the inventory compared against
};

// What Argo CD records of a revision in sync, syncResult and history: {revision, source} for
// one source, {revisions, sources} for several.
json revisionAndSource(const AppRef& ref, const appengine::ApplicationSpec& spec, const Desired& d);
// The operation as operationState.operation records it: sync.source(s) without credentials.
json recordedOperation(const json& operation);
// The revision a syncResult or history entry records, as Desired::revision.sha spells it.
std::string recordedRevision(const json& entry);

// How a sync operation ended.
struct SyncOutcome {
    std::string phase;  // Running (retry pending or interrupted), Succeeded, Failed, Error
    std::string message;
    json resources = json::array();  // syncResult.resources
    std::vector<appengine::InventoryEntry> inventory;
    bool interrupted = false;  // controller shutdown between waves
    bool terminated = false;   // the user asked for it
    bool retryScheduled = false;
    std::chrono::milliseconds retryDelay{0};
    int retryCount = 0;
    std::string startedAt;
    uint64_t pruned = 0;
    std::string failedHookPhase;  // "PostSync", ...: a hook of that phase failed the sync
    // What our applies produced, so the caches can be waited for before comparing again.
    struct Written {
        kube::GroupVersionKind gvk;
        std::string ns;
        std::string name;
        std::string resourceVersion;
    };
    std::vector<Written> written;
};

}  // namespace sluice::appcontroller
