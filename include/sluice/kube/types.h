#pragma once
// Basic Kubernetes API vocabulary. Objects are kept as JSON: Sluice handles arbitrary kinds
// (anything in git), so a typed model would only cover a fraction of them.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace sluice::kube {

using Object = nlohmann::json;

struct GroupVersionKind {
    std::string group;  // "" for the core group
    std::string version;
    std::string kind;

    // "apps/v1" + "Deployment" -> {apps, v1, Deployment}; "v1" -> core group.
    static GroupVersionKind fromApiVersion(const std::string& apiVersion, const std::string& kind);
    static GroupVersionKind of(const Object& obj);  // from obj.apiVersion and obj.kind
    std::string apiVersion() const;                 // "apps/v1" or "v1"
    std::string groupVersion() const { return apiVersion(); }
    std::string str() const;  // "apps/v1, Kind=Deployment"
    bool operator==(const GroupVersionKind&) const = default;
    auto operator<=>(const GroupVersionKind&) const = default;
};

// What discovery says about one resource type.
struct ResourceInfo {
    GroupVersionKind gvk;
    std::string resource;  // plural name used in URLs, e.g. "deployments"
    bool namespaced = true;
    std::vector<std::string> verbs;
    std::vector<std::string> shortNames;
    bool hasStatus = false;  // exposes the status subresource
    bool supports(const std::string& verb) const;
};

// Namespace ("" for cluster-scoped) and name.
struct ObjectKey {
    std::string ns;
    std::string name;
    std::string str() const { return ns.empty() ? name : ns + "/" + name; }
    bool operator==(const ObjectKey&) const = default;
    auto operator<=>(const ObjectKey&) const = default;
};

ObjectKey keyOf(const Object& obj);

// Accessors that tolerate missing fields.
std::string nameOf(const Object& obj);
std::string namespaceOf(const Object& obj);
std::string resourceVersionOf(const Object& obj);
std::string uidOf(const Object& obj);

}  // namespace sluice::kube
