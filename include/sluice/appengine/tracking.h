#pragma once
// How Sluice marks what it owns, and per-object annotations it honours. Argo CD's annotation
// names (argocd.argoproj.io/...) are accepted beside Sluice's so migrated manifests keep working.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace sluice::appengine {

inline constexpr const char* kTrackingAnnotation = "sluice.io/tracking-id";
inline constexpr const char* kSyncWaveAnnotation = "sluice.io/sync-wave";
inline constexpr const char* kArgoSyncWaveAnnotation = "argocd.argoproj.io/sync-wave";
inline constexpr const char* kSyncOptionsAnnotation = "sluice.io/sync-options";
inline constexpr const char* kArgoSyncOptionsAnnotation = "argocd.argoproj.io/sync-options";
inline constexpr const char* kRefreshAnnotation = "sluice.io/refresh";
inline constexpr const char* kArgoRefreshAnnotation = "argocd.argoproj.io/refresh";

// The name an Application signs its objects with: its bare name when it lives in the
// controller's namespace, "<namespace>_<name>" otherwise (Argo CD's rule).
std::string instanceName(const std::string& appNamespace, const std::string& appName,
                         const std::string& controlNamespace);

struct TrackingId {
    std::string instance;  // as instanceName()
    std::string group;     // "" for the core group
    std::string kind;
    std::string ns;  // "" for cluster-scoped
    std::string name;
    std::string str() const;  // "<instance>:<group>/<kind>:<ns>/<name>"
    bool operator==(const TrackingId&) const = default;
};
// Parses "<instance>:<group>/<kind>:<ns>/<name>"; nullopt when malformed.
std::optional<TrackingId> parseTrackingId(const std::string& text);
// The object's tracking annotation, parsed; nullopt when absent or malformed.
std::optional<TrackingId> trackingIdOf(const nlohmann::json& obj);
// The tracking id an object (apiVersion, kind, metadata.namespace/name) gets from `instance`.
TrackingId trackingIdFor(const std::string& instance, const nlohmann::json& obj);
// True when obj carries a tracking id that names `instance` and matches obj's own identity
// (a copied annotation on another object does not count).
bool isTrackedBy(const nlohmann::json& obj, const std::string& instance);

// sync-wave annotation (Sluice's wins over Argo CD's); 0 when absent. A value that is not an
// integer sets `error` (if given) and yields 0.
int syncWaveOf(const nlohmann::json& obj, std::string* error = nullptr);

// Per-object sync-options annotation: comma-separated "Name=value" (e.g. "Prune=false,
// Replace=true"). Unknown names are ignored, as Argo CD does.
struct ObjectSyncOptions {
    bool pruneDisabled = false;     // Prune=false
    bool deleteDisabled = false;    // Delete=false (kept when the Application is deleted)
    bool replace = false;           // Replace=true
    bool validateDisabled = false;  // Validate=false
    bool skipDryRunOnMissingResource = false;  // SkipDryRunOnMissingResource=true
    bool pruneLast = false;  // PruneLast=true (this object is pruned after all waves)
};
ObjectSyncOptions objectSyncOptionsOf(const nlohmann::json& obj);

// Argo CD's kind order inside one wave (Namespace first ... Ingress, APIService last); kinds
// not listed (custom resources) come after all listed ones.
int kindOrder(const std::string& group, const std::string& kind);

}  // namespace sluice::appengine
