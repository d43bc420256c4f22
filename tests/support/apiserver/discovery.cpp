#include "apiserver/discovery.h"

#include <algorithm>
#include <cstdio>
#include <functional>

namespace sluice::testing::discovery {

namespace {

const std::vector<std::string> kVerbs = {"create", "delete", "deletecollection", "get",
                                         "list",   "patch",  "update",           "watch"};

std::string gvPathOf(const std::string& group, const std::string& version) {
    return group.empty() ? "api/" + version : "apis/" + group + "/" + version;
}

json groupJson(const std::vector<ResourcePtr>& resources, const std::string& group) {
    json versions = json::array();
    std::vector<std::string> seen;
    for (const auto& r : resources) {
        if (r->group != group) continue;
        if (std::find(seen.begin(), seen.end(), r->version) != seen.end()) continue;
        seen.push_back(r->version);
        versions.push_back({{"groupVersion", group + "/" + r->version}, {"version", r->version}});
    }
    json g = {{"name", group}, {"versions", versions}};
    if (!versions.empty()) g["preferredVersion"] = versions[0];
    return g;
}

std::string hashOf(const std::string& s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016zX", std::hash<std::string>{}(s));
    return buf;
}

}  // namespace

json apiVersions(const std::string& serverAddress) {
    return {{"kind", "APIVersions"},
            {"versions", {"v1"}},
            {"serverAddressByClientCIDRs",
             json::array({{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", serverAddress}}})}};
}

json apiGroupList(const std::vector<ResourcePtr>& resources) {
    json groups = json::array();
    std::vector<std::string> seen;
    for (const auto& r : resources) {
        if (r->group.empty()) continue;
        if (std::find(seen.begin(), seen.end(), r->group) != seen.end()) continue;
        seen.push_back(r->group);
        groups.push_back(groupJson(resources, r->group));
    }
    return {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
}

std::optional<json> apiGroup(const std::vector<ResourcePtr>& resources, const std::string& group) {
    json g = groupJson(resources, group);
    if (g["versions"].empty()) return std::nullopt;
    g["kind"] = "APIGroup";
    g["apiVersion"] = "v1";
    return g;
}

std::optional<json> apiResourceList(const std::vector<ResourcePtr>& resources,
                                    const std::string& group, const std::string& version) {
    json list = json::array();
    for (const auto& r : resources) {
        if (r->group != group || r->version != version) continue;
        json e = {{"name", r->plural},
                  {"singularName", r->singular},
                  {"namespaced", r->namespaced},
                  {"kind", r->kind},
                  {"verbs", kVerbs}};
        if (!r->shortNames.empty()) e["shortNames"] = r->shortNames;
        if (!r->categories.empty()) e["categories"] = r->categories;
        e["storageVersionHash"] = hashOf(r->storageKey()).substr(0, 11);
        list.push_back(e);
        if (r->hasStatus)
            list.push_back({{"name", r->plural + "/status"},
                            {"singularName", ""},
                            {"namespaced", r->namespaced},
                            {"kind", r->kind},
                            {"verbs", {"get", "patch", "update"}}});
        if (r->scale)
            list.push_back({{"name", r->plural + "/scale"},
                            {"singularName", ""},
                            {"namespaced", r->namespaced},
                            {"group", "autoscaling"},
                            {"version", "v1"},
                            {"kind", "Scale"},
                            {"verbs", {"get", "patch", "update"}}});
        if (r->kind == "Namespace" && r->group.empty())
            list.push_back({{"name", "namespaces/finalize"},
                            {"singularName", ""},
                            {"namespaced", false},
                            {"kind", "Namespace"},
                            {"verbs", {"update"}}});
    }
    if (list.empty()) return std::nullopt;
    return json{{"kind", "APIResourceList"},
                {"apiVersion", "v1"},
                {"groupVersion", group.empty() ? version : group + "/" + version},
                {"resources", list}};
}

json version() {
    return {{"major", "1"},
            {"minor", "32"},
            {"gitVersion", "v1.32.0"},
            {"gitCommit", "0000000000000000000000000000000000000000"},
            {"gitTreeState", "clean"},
            {"buildDate", "2024-12-11T00:00:00Z"},
            {"goVersion", "go1.23.3"},
            {"compiler", "gc"},
            {"platform", "linux/amd64"}};
}

std::optional<json> openApiV3GroupVersion(const std::vector<ResourcePtr>& resources,
                                          const std::string& gvPath) {
    json paths = json::object();
    json schemas = json::object();
    const json queryParam = [] {
        json params = json::array();
        for (const char* p : {"dryRun", "fieldManager", "fieldValidation", "force"})
            params.push_back({{"name", p},
                              {"in", "query"},
                              {"schema",
                               {{"type", p == std::string("force") ? "boolean" : "string"},
                                {"uniqueItems", true}}}});
        return params;
    }();
    for (const auto& r : resources) {
        if (gvPathOf(r->group, r->version) != gvPath) continue;
        json gvk = {{"group", r->group}, {"version", r->version}, {"kind", r->kind}};
        std::string schemaName =
            (r->group.empty() ? "io.k8s.api.core." : r->group + ".") + r->version + "." + r->kind;
        std::string base =
            "/" + gvPath + (r->namespaced ? "/namespaces/{namespace}/" : "/") + r->plural;
        json ref = {{"$ref", "#/components/schemas/" + schemaName}};
        json ok = {
            {"200",
             {{"description", "OK"}, {"content", {{"application/json", {{"schema", ref}}}}}}}};
        paths[base + "/{name}"] = {{"get",
                                    {{"x-kubernetes-action", "get"},
                                     {"x-kubernetes-group-version-kind", gvk},
                                     {"responses", ok}}},
                                   {"put",
                                    {{"x-kubernetes-action", "put"},
                                     {"x-kubernetes-group-version-kind", gvk},
                                     {"parameters", queryParam},
                                     {"responses", ok}}},
                                   {"patch",
                                    {{"x-kubernetes-action", "patch"},
                                     {"x-kubernetes-group-version-kind", gvk},
                                     {"parameters", queryParam},
                                     {"responses", ok}}},
                                   {"delete",
                                    {{"x-kubernetes-action", "delete"},
                                     {"x-kubernetes-group-version-kind", gvk},
                                     {"responses", ok}}}};
        paths[base] = {{"post",
                        {{"x-kubernetes-action", "post"},
                         {"x-kubernetes-group-version-kind", gvk},
                         {"parameters", queryParam},
                         {"responses", ok}}}};
        json schema = r->schema.is_object() ? r->schema
                                            : json{{"type", "object"},
                                                   {"x-kubernetes-preserve-unknown-fields", true}};
        schema["x-kubernetes-group-version-kind"] = json::array({gvk});
        schemas[schemaName] = schema;
    }
    if (paths.empty()) return std::nullopt;
    return json{{"openapi", "3.0.0"},
                {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
                {"paths", paths},
                {"components", {{"schemas", schemas}}}};
}

json openApiV3Root(const std::vector<ResourcePtr>& resources) {
    json paths = json::object();
    for (const auto& r : resources) {
        std::string gv = gvPathOf(r->group, r->version);
        if (paths.contains(gv)) continue;
        auto doc = openApiV3GroupVersion(resources, gv);
        paths[gv] = {{"serverRelativeURL", "/openapi/v3/" + gv + "?hash=" + hashOf(doc->dump())}};
    }
    return {{"paths", paths}};
}

json openApiV2() {
    return {{"swagger", "2.0"},
            {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
            {"paths", json::object()},
            {"definitions", json::object()}};
}

}  // namespace sluice::testing::discovery
