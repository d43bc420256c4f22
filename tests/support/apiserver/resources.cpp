#include "apiserver/resources.h"

#include <algorithm>

namespace sluice::testing {

using nlohmann::json;

namespace {

struct Builtin {
    const char* group;
    const char* version;
    const char* kind;
    const char* plural;
    bool namespaced;
    bool hasStatus;
    std::vector<std::string> shortNames;
    std::vector<std::string> categories;
};

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

}  // namespace

ResourceRegistry::ResourceRegistry() {
    // Scope, status subresources, short names and categories as kube-apiserver 1.32 serves them.
    const std::vector<Builtin> builtins = {
        {"", "v1", "Namespace", "namespaces", false, true, {"ns"}, {}},
        {"", "v1", "Pod", "pods", true, true, {"po"}, {"all"}},
        {"", "v1", "Service", "services", true, true, {"svc"}, {"all"}},
        {"", "v1", "Endpoints", "endpoints", true, false, {"ep"}, {}},
        {"", "v1", "ConfigMap", "configmaps", true, false, {"cm"}, {}},
        {"", "v1", "Secret", "secrets", true, false, {}, {}},
        {"", "v1", "ServiceAccount", "serviceaccounts", true, false, {"sa"}, {}},
        {"", "v1", "Event", "events", true, false, {"ev"}, {}},
        {"", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, true, {"pvc"}, {}},
        {"", "v1", "Node", "nodes", false, true, {"no"}, {}},
        {"apps", "v1", "Deployment", "deployments", true, true, {"deploy"}, {"all"}},
        {"apps", "v1", "StatefulSet", "statefulsets", true, true, {"sts"}, {"all"}},
        {"apps", "v1", "DaemonSet", "daemonsets", true, true, {"ds"}, {"all"}},
        {"apps", "v1", "ReplicaSet", "replicasets", true, true, {"rs"}, {"all"}},
        {"batch", "v1", "Job", "jobs", true, true, {}, {"all"}},
        {"batch", "v1", "CronJob", "cronjobs", true, true, {"cj"}, {"all"}},
        {"networking.k8s.io", "v1", "Ingress", "ingresses", true, true, {"ing"}, {}},
        {"networking.k8s.io", "v1", "IngressClass", "ingressclasses", false, false, {}, {}},
        {"autoscaling",
         "v2",
         "HorizontalPodAutoscaler",
         "horizontalpodautoscalers",
         true,
         true,
         {"hpa"},
         {"all"}},
        {"policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, true, {"pdb"}, {}},
        {"rbac.authorization.k8s.io", "v1", "Role", "roles", true, false, {}, {}},
        {"rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, false, {}, {}},
        {"rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, false, {}, {}},
        {"rbac.authorization.k8s.io",
         "v1",
         "ClusterRoleBinding",
         "clusterrolebindings",
         false,
         false,
         {},
         {}},
        {"coordination.k8s.io", "v1", "Lease", "leases", true, false, {}, {}},
        {"events.k8s.io", "v1", "Event", "events", true, false, {"ev"}, {}},
        {"monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors", true, false, {}, {}},
        {"apiextensions.k8s.io",
         "v1",
         "CustomResourceDefinition",
         "customresourcedefinitions",
         false,
         true,
         {"crd", "crds"},
         {"api-extensions"}},
    };
    for (const auto& b : builtins) {
        auto r = std::make_shared<ResourceInfo>();
        r->group = b.group;
        r->version = b.version;
        r->kind = b.kind;
        r->plural = b.plural;
        r->singular = lower(b.kind);
        r->namespaced = b.namespaced;
        r->hasStatus = b.hasStatus;
        r->shortNames = b.shortNames;
        r->categories = b.categories;
        r->mergeSchema =
            std::make_shared<fieldset::Schema>(fieldset::Schema::forKind(r->apiVersion(), r->kind));
        if (r->group == "apps" && r->kind != "DaemonSet") r->scale = apilogic::ScaleSubresource{};
        all_.push_back(r);
    }
}

ResourcePtr ResourceRegistry::find(const std::string& group, const std::string& version,
                                   const std::string& plural) const {
    for (const auto& r : all_)
        if (r->group == group && r->version == version && r->plural == plural) return r;
    return nullptr;
}

ResourcePtr ResourceRegistry::findKind(const std::string& apiVersion,
                                       const std::string& kind) const {
    for (const auto& r : all_)
        if (r->apiVersion() == apiVersion && r->kind == kind) return r;
    return nullptr;
}

ResourcePtr ResourceRegistry::findByStorageKey(const std::string& storageKey) const {
    for (const auto& r : all_)
        if (r->storageKey() == storageKey) return r;
    return nullptr;
}

void ResourceRegistry::upsertCrd(const json& crd) {
    const std::string name = crd["metadata"].value("name", "");
    removeCrd(name);
    const json& spec = crd["spec"];
    const json& names = spec.value("names", json::object());
    std::vector<ResourcePtr> added;
    for (const auto& v : spec.value("versions", json::array())) {
        if (!v.value("served", true)) continue;
        auto r = std::make_shared<ResourceInfo>();
        r->group = spec.value("group", "");
        r->version = v.value("name", "");
        r->kind = names.value("kind", "");
        r->plural = names.value("plural", "");
        r->singular = names.value("singular", lower(r->kind));
        r->namespaced = spec.value("scope", "Namespaced") == "Namespaced";
        r->hasStatus = v.contains("subresources") && v["subresources"].contains("status");
        r->isCustom = true;
        if (v.contains("subresources") && v["subresources"].contains("scale")) {
            const json& sc = v["subresources"]["scale"];
            apilogic::ScaleSubresource scale;
            scale.specReplicasPath = sc.value("specReplicasPath", "");
            scale.statusReplicasPath = sc.value("statusReplicasPath", "");
            scale.labelSelectorPath = sc.value("labelSelectorPath", "");
            scale.defaultSpecReplicas = 0;
            r->scale = scale;
        }
        r->crdName = name;
        if (names.contains("shortNames"))
            r->shortNames = names["shortNames"].get<std::vector<std::string>>();
        if (names.contains("categories"))
            r->categories = names["categories"].get<std::vector<std::string>>();
        r->printerColumns = v.value("additionalPrinterColumns", json::array());
        if (v.contains("schema") && v["schema"].contains("openAPIV3Schema"))
            r->schema = v["schema"]["openAPIV3Schema"];
        r->mergeSchema = std::make_shared<fieldset::Schema>(
            r->schema.is_null() ? fieldset::Schema() : fieldset::Schema::fromOpenApi(r->schema));
        // The storage version is listed first so it is the preferred version in discovery.
        if (v.value("storage", false))
            added.insert(added.begin(), r);
        else
            added.push_back(r);
    }
    all_.insert(all_.end(), added.begin(), added.end());
}

void ResourceRegistry::removeCrd(const std::string& crdName) {
    std::erase_if(all_, [&](const ResourcePtr& r) { return r->isCustom && r->crdName == crdName; });
}

std::vector<ResourceRegistry::GroupVersions> ResourceRegistry::groups() const {
    std::vector<GroupVersions> out;
    for (const auto& r : all_) {
        auto it = std::find_if(out.begin(), out.end(),
                               [&](const GroupVersions& g) { return g.group == r->group; });
        if (it == out.end()) {
            out.push_back({r->group, {r->version}});
        } else if (std::find(it->versions.begin(), it->versions.end(), r->version) ==
                   it->versions.end()) {
            it->versions.push_back(r->version);
        }
    }
    return out;
}

}  // namespace sluice::testing
