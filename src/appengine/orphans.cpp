// AppProject spec.orphanedResources: see include/sluice/appengine/orphans.h (Argo CD's rules).
#include "sluice/appengine/orphans.h"

#include <algorithm>

#include "sluice/appengine/tracking.h"

namespace sluice::appengine {

using nlohmann::json;

std::optional<OrphanedResourcesSettings> parseOrphanedResources(const json& appProject) {
    if (!appProject.is_object()) return std::nullopt;
    auto spec = appProject.find("spec");
    if (spec == appProject.end() || !spec->is_object()) return std::nullopt;
    auto it = spec->find("orphanedResources");
    if (it == spec->end() || !it->is_object()) return std::nullopt;
    OrphanedResourcesSettings s;
    if (auto w = it->find("warn"); w != it->end() && w->is_boolean()) s.warn = w->get<bool>();
    if (auto ig = it->find("ignore"); ig != it->end() && ig->is_array())
        for (const json& item : *ig)
            if (item.is_object())
                s.ignore.push_back(
                    {item.value("group", ""), item.value("kind", ""), item.value("name", "")});
    return s;
}

bool isKnownOrphanExclusion(const ResourceKey& key, const OrphanedResourcesSettings& settings) {
    if (key.group.empty()) {
        if (key.ns == "default" && key.kind == "Service" && key.name == "kubernetes") return true;
        if (key.kind == "ServiceAccount" && key.name == "default") return true;
        if (key.kind == "ConfigMap" && key.name == "kube-root-ca.crt") return true;
    }
    for (const OrphanedResourceKey& item : settings.ignore) {
        if (!item.kind.empty() && !globMatch(item.kind, key.kind)) continue;
        if (!globMatch(item.group, key.group)) continue;
        if (item.name.empty() || globMatch(item.name, key.name)) return true;
    }
    return false;
}

namespace {

bool hasOwnerReferences(const json& obj) {
    auto md = obj.find("metadata");
    if (md == obj.end() || !md->is_object()) return false;
    auto refs = md->find("ownerReferences");
    return refs != md->end() && refs->is_array() && !refs->empty();
}

}  // namespace

std::vector<ResourceKey> findOrphans(const OrphanInput& in) {
    std::vector<ResourceKey> out;
    if (in.ns.empty()) return out;
    for (const auto& obj : in.live) {
        if (!obj || !obj->is_object()) continue;
        ResourceKey key = ResourceKey::of(*obj);
        if (key.ns != in.ns || key.name.empty() || key.kind.empty()) continue;
        if (hasOwnerReferences(*obj)) continue;  // not top level
        if (in.own.count(key)) continue;
        if (auto id = trackingIdOf(*obj);
            id && !id->instance.empty() && isTrackedBy(*obj, id->instance) &&
            (!in.applicationExists || in.applicationExists(id->instance)))
            continue;  // managed by an Application
        if (in.project && !isGroupKindPermitted(*in.project, key.group, key.kind, true)) continue;
        if (isKnownOrphanExclusion(key, in.settings)) continue;
        out.push_back(std::move(key));
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::string orphanedResourcesMessage(std::size_t count) {
    return "Application has " + std::to_string(count) + " orphaned resources";
}

}  // namespace sluice::appengine
