#pragma once
// Resource hooks, with Argo CD's semantics: objects annotated `argocd.argoproj.io/hook` (or
// `sluice.io/hook`, or Helm's `helm.sh/hook`) are not part of the desired state. They are never
// compared (never OutOfSync), never in the inventory and never pruned; a sync creates them in
// their phase (PreSync before anything is applied, Sync with the resources of their wave,
// PostSync once everything is Healthy, SyncFail when the sync failed) and waits until they
// complete. Pure: no I/O.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::appengine {

inline constexpr const char* kHookAnnotation = "sluice.io/hook";
inline constexpr const char* kArgoHookAnnotation = "argocd.argoproj.io/hook";
inline constexpr const char* kHookDeletePolicyAnnotation = "sluice.io/hook-delete-policy";
inline constexpr const char* kArgoHookDeletePolicyAnnotation =
    "argocd.argoproj.io/hook-delete-policy";

enum class HookType { PreSync, Sync, PostSync, SyncFail, PostDelete };
const char* toString(HookType t);  // "PreSync", ...

struct HookInfo {
    // The phases the hook runs in. Empty for a Helm hook of a kind Argo CD does not map
    // (pre-delete, pre-rollback, post-rollback): never run.
    std::vector<HookType> types;
    bool skip = false;                  // hook "Skip": the object is never applied nor compared
    bool deleteOnSuccess = false;       // HookSucceeded
    bool deleteOnFailure = false;       // HookFailed
    bool deleteBeforeCreation = false;  // BeforeHookCreation (the default without a policy)
    int wave = 0;  // sync-wave, or helm.sh/hook-weight for Helm hooks without one
    bool runsIn(HookType t) const;
};

// The hook annotations of obj; nullopt for an ordinary resource. Sluice's annotation wins over
// Argo CD's, and either over Helm's (whose crd-install hook is an ordinary resource, as in Argo
// CD, and whose test hooks the Helm renderer already dropped). An unknown hook type or delete
// policy sets `error` (if given), naming the annotation.
std::optional<HookInfo> hookOf(const nlohmann::json& obj, std::string* error = nullptr);

// The name a hook object gets in one sync: metadata.name, or for a hook with only
// metadata.generateName, generateName + a suffix unique to this sync and phase (as Argo CD
// names them), at most 63 characters.
std::string hookObjectName(const nlohmann::json& obj, const std::string& syncId, HookType phase);

// A short id for one sync operation (lower-case hex), from what identifies it.
std::string syncIdOf(const std::string& instance, const std::string& startedAt, int retryCount);

}  // namespace sluice::appengine
