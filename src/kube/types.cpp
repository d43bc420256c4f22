#include "sluice/kube/types.h"

#include <algorithm>

namespace sluice::kube {

namespace {
std::string stringField(const Object& obj, const char* section, const char* field) {
    if (!obj.is_object()) return {};
    auto s = obj.find(section);
    if (s == obj.end() || !s->is_object()) return {};
    auto f = s->find(field);
    if (f == s->end() || !f->is_string()) return {};
    return f->get<std::string>();
}
}  // namespace

GroupVersionKind GroupVersionKind::fromApiVersion(const std::string& apiVersion,
                                                  const std::string& kind) {
    GroupVersionKind gvk;
    gvk.kind = kind;
    auto slash = apiVersion.find('/');
    if (slash == std::string::npos) {
        gvk.version = apiVersion;
    } else {
        gvk.group = apiVersion.substr(0, slash);
        gvk.version = apiVersion.substr(slash + 1);
    }
    return gvk;
}

GroupVersionKind GroupVersionKind::of(const Object& obj) {
    std::string apiVersion, kind;
    if (obj.is_object()) {
        if (auto it = obj.find("apiVersion"); it != obj.end() && it->is_string()) apiVersion = *it;
        if (auto it = obj.find("kind"); it != obj.end() && it->is_string()) kind = *it;
    }
    return fromApiVersion(apiVersion, kind);
}

std::string GroupVersionKind::apiVersion() const {
    return group.empty() ? version : group + "/" + version;
}

std::string GroupVersionKind::str() const {
    return apiVersion() + ", Kind=" + kind;
}

bool ResourceInfo::supports(const std::string& verb) const {
    return std::find(verbs.begin(), verbs.end(), verb) != verbs.end();
}

ObjectKey keyOf(const Object& obj) {
    return ObjectKey{namespaceOf(obj), nameOf(obj)};
}

std::string nameOf(const Object& obj) {
    return stringField(obj, "metadata", "name");
}
std::string namespaceOf(const Object& obj) {
    return stringField(obj, "metadata", "namespace");
}
std::string resourceVersionOf(const Object& obj) {
    return stringField(obj, "metadata", "resourceVersion");
}
std::string uidOf(const Object& obj) {
    return stringField(obj, "metadata", "uid");
}

}  // namespace sluice::kube
