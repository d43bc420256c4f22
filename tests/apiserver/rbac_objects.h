#pragma once
// Roles and bindings as the RBAC tests write them.
#include <nlohmann/json.hpp>

#include <string>

namespace sluice::testing {

// A Role (ns set) or ClusterRole with these rules.
inline nlohmann::json rbacRole(const std::string& kind, const std::string& name,
                               const std::string& ns, nlohmann::json rules) {
    nlohmann::json meta = {{"name", name}};
    if (!ns.empty()) meta["namespace"] = ns;
    return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
            {"kind", kind},
            {"metadata", meta},
            {"rules", rules}};
}

// A RoleBinding (ns set) or ClusterRoleBinding of roleKind/roleName to the subjects.
inline nlohmann::json rbacBinding(const std::string& kind, const std::string& name,
                                  const std::string& ns, const std::string& roleKind,
                                  const std::string& roleName, nlohmann::json subjects) {
    nlohmann::json meta = {{"name", name}};
    if (!ns.empty()) meta["namespace"] = ns;
    return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
            {"kind", kind},
            {"metadata", meta},
            {"roleRef",
             {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", roleKind}, {"name", roleName}}},
            {"subjects", subjects}};
}

}  // namespace sluice::testing
