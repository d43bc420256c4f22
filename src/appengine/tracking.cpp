// Tracking ids and per-object annotations, with Argo CD's formats and rules.
#include "sluice/appengine/tracking.h"

#include <array>
#include <charconv>
#include <string_view>

namespace sluice::appengine {

using nlohmann::json;

namespace {

std::string groupOf(const std::string& apiVersion) {
    auto slash = apiVersion.find('/');
    return slash == std::string::npos ? "" : apiVersion.substr(0, slash);
}

const json* annotation(const json& obj, const char* name) {
    if (!obj.is_object()) return nullptr;
    auto md = obj.find("metadata");
    if (md == obj.end() || !md->is_object()) return nullptr;
    auto annotations = md->find("annotations");
    if (annotations == md->end() || !annotations->is_object()) return nullptr;
    auto it = annotations->find(name);
    if (it == annotations->end() || !it->is_string()) return nullptr;
    return &*it;
}

std::string metadataString(const json& obj, const char* field) {
    if (!obj.is_object()) return "";
    auto md = obj.find("metadata");
    if (md == obj.end() || !md->is_object()) return "";
    auto it = md->find(field);
    return it != md->end() && it->is_string() ? it->get<std::string>() : "";
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Splits "a<sep>b" into exactly two parts; nullopt when sep is missing or repeated.
std::optional<std::pair<std::string, std::string>> splitTwo(std::string_view s, char sep) {
    auto at = s.find(sep);
    if (at == std::string_view::npos || s.find(sep, at + 1) != std::string_view::npos)
        return std::nullopt;
    return std::make_pair(std::string(s.substr(0, at)), std::string(s.substr(at + 1)));
}

void applyObjectOptions(const json* text, ObjectSyncOptions& out) {
    if (text == nullptr) return;
    std::string_view rest = text->get_ref<const std::string&>();
    while (!rest.empty()) {
        auto comma = rest.find(',');
        std::string_view item = trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        // "confirm" (Argo CD: wait for a user's confirmation) has no UI in Sluice; the safe
        // reading is "do not delete on your own".
        if (item == "Prune=false" || item == "Prune=confirm") out.pruneDisabled = true;
        if (item == "Prune=true") out.pruneDisabled = false;
        if (item == "Delete=false" || item == "Delete=confirm") out.deleteDisabled = true;
        if (item == "Delete=true") out.deleteDisabled = false;
        if (item == "Replace=true") out.replace = true;
        if (item == "Replace=false") out.replace = false;
        if (item == "Validate=false") out.validateDisabled = true;
        if (item == "Validate=true") out.validateDisabled = false;
        if (item == "SkipDryRunOnMissingResource=true") out.skipDryRunOnMissingResource = true;
        if (item == "SkipDryRunOnMissingResource=false") out.skipDryRunOnMissingResource = false;
        if (item == "PruneLast=true") out.pruneLast = true;
        if (item == "PruneLast=false") out.pruneLast = false;
    }
}

}  // namespace

std::string instanceName(const std::string& appNamespace, const std::string& appName,
                         const std::string& controlNamespace) {
    if (appNamespace.empty() || appNamespace == controlNamespace) return appName;
    return appNamespace + "_" + appName;
}

std::string TrackingId::str() const {
    return instance + ":" + group + "/" + kind + ":" + ns + "/" + name;
}

std::optional<TrackingId> parseTrackingId(const std::string& text) {
    // Exactly three ':' separated parts; Kubernetes names cannot contain ':' or '/'.
    auto first = text.find(':');
    if (first == std::string::npos) return std::nullopt;
    auto second = text.find(':', first + 1);
    if (second == std::string::npos || text.find(':', second + 1) != std::string::npos)
        return std::nullopt;
    std::string_view view(text);
    auto groupKind = splitTwo(view.substr(first + 1, second - first - 1), '/');
    auto nsName = splitTwo(view.substr(second + 1), '/');
    if (!groupKind || !nsName) return std::nullopt;
    TrackingId id{text.substr(0, first), groupKind->first, groupKind->second, nsName->first,
                  nsName->second};
    if (id.instance.empty() || id.kind.empty() || id.name.empty()) return std::nullopt;
    return id;
}

std::optional<TrackingId> trackingIdOf(const json& obj) {
    const json* text = annotation(obj, kTrackingAnnotation);
    if (text == nullptr) return std::nullopt;
    return parseTrackingId(text->get<std::string>());
}

TrackingId trackingIdFor(const std::string& instance, const json& obj) {
    std::string apiVersion;
    std::string kind;
    if (obj.is_object()) {
        if (auto it = obj.find("apiVersion"); it != obj.end() && it->is_string())
            apiVersion = it->get<std::string>();
        if (auto it = obj.find("kind"); it != obj.end() && it->is_string())
            kind = it->get<std::string>();
    }
    return {instance, groupOf(apiVersion), kind, metadataString(obj, "namespace"),
            metadataString(obj, "name")};
}

bool isTrackedBy(const json& obj, const std::string& instance) {
    auto id = trackingIdOf(obj);
    return id && id->instance == instance && *id == trackingIdFor(instance, obj);
}

int syncWaveOf(const json& obj, std::string* error) {
    const char* name = kSyncWaveAnnotation;
    const json* text = annotation(obj, kSyncWaveAnnotation);
    if (text == nullptr) {
        name = kArgoSyncWaveAnnotation;
        text = annotation(obj, kArgoSyncWaveAnnotation);
    }
    if (text == nullptr) return 0;
    std::string_view value = trim(text->get_ref<const std::string&>());
    int wave = 0;
    const char* begin = value.data();
    const char* end = value.data() + value.size();
    if (!value.empty() && *begin == '+') ++begin;  // Go's strconv.Atoi accepts "+3"
    auto [ptr, ec] = std::from_chars(begin, end, wave);
    if (value.empty() || ec != std::errc() || ptr != end) {
        if (error != nullptr)
            *error = "annotation " + std::string(name) + ": \"" + text->get<std::string>() +
                     "\" is not an integer";
        return 0;
    }
    return wave;
}

ObjectSyncOptions objectSyncOptionsOf(const json& obj) {
    ObjectSyncOptions out;
    // Argo CD's annotation first so Sluice's, when both are present, has the last word.
    applyObjectOptions(annotation(obj, kArgoSyncOptionsAnnotation), out);
    applyObjectOptions(annotation(obj, kSyncOptionsAnnotation), out);
    return out;
}

int kindOrder(const std::string& group, const std::string& kind) {
    // Argo CD (gitops-engine syncTasks) orders by kind name alone, whatever the group.
    (void)group;
    static constexpr std::array<std::string_view, 35> kOrder = {"Namespace",
                                                                "NetworkPolicy",
                                                                "ResourceQuota",
                                                                "LimitRange",
                                                                "PodSecurityPolicy",
                                                                "PodDisruptionBudget",
                                                                "ServiceAccount",
                                                                "Secret",
                                                                "SecretList",
                                                                "ConfigMap",
                                                                "StorageClass",
                                                                "PersistentVolume",
                                                                "PersistentVolumeClaim",
                                                                "CustomResourceDefinition",
                                                                "ClusterRole",
                                                                "ClusterRoleList",
                                                                "ClusterRoleBinding",
                                                                "ClusterRoleBindingList",
                                                                "Role",
                                                                "RoleList",
                                                                "RoleBinding",
                                                                "RoleBindingList",
                                                                "Service",
                                                                "DaemonSet",
                                                                "Pod",
                                                                "ReplicationController",
                                                                "ReplicaSet",
                                                                "Deployment",
                                                                "HorizontalPodAutoscaler",
                                                                "StatefulSet",
                                                                "Job",
                                                                "CronJob",
                                                                "IngressClass",
                                                                "Ingress",
                                                                "APIService"};
    for (size_t i = 0; i < kOrder.size(); ++i)
        if (kOrder[i] == kind) return static_cast<int>(i);
    return static_cast<int>(kOrder.size());
}

}  // namespace sluice::appengine
