#pragma once
// Kubernetes RBAC authorization for the test API server: the request attributes kube-apiserver
// derives from a URL (k8s.io/apiserver RequestInfo), the RBAC authorizer's rule matching over
// Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, and the 403 Status it answers with.
// Pure functions: the caller reads the RBAC objects from the store.
//
// Not supported: aggregated ClusterRoles (aggregationRule; upstream a controller fills in their
// rules, here only the stored `rules` count) and the escalate/bind checks on RBAC writes.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace sluice::testing {

struct UserInfo {
    std::string name;
    std::vector<std::string> groups;
};

// The user behind a userTokens token: service accounts ("system:serviceaccount:<ns>:<name>")
// get their two service-account groups, every user gets system:authenticated.
UserInfo userFromName(const std::string& name);
// The user behind a `tokens` token: allowed everything, as kube-apiserver's system:masters.
UserInfo superUser();
bool isSuperUser(const UserInfo& user);

struct RequestAttributes {
    bool resourceRequest = false;
    std::string verb;  // get list watch create update patch delete deletecollection; lowercase
                       // HTTP method for non-resource requests
    std::string path;  // the request path (matched against nonResourceURLs)
    std::string apiGroup, apiVersion, resource, subresource, ns, name;
};

// As kube-apiserver's RequestInfoFactory: /api/v1/... and /apis/<g>/<v>/... are resource
// requests, everything else (discovery, /version, /openapi, health) non-resource. `watch` is the
// server's reading of the watch query parameter, so the check matches what is served;
// `fieldSelector` names the object of a list/watch when it pins metadata.name, as upstream.
RequestAttributes requestAttributes(const std::string& method, const std::string& path, bool watch,
                                    const std::string& fieldSelector);

// The RBAC objects the decision may use (roles and roleBindings: at least the request's
// namespace; other namespaces' are ignored).
struct RbacPolicy {
    std::vector<nlohmann::json> roles, clusterRoles, roleBindings, clusterRoleBindings;
};

struct Decision {
    bool allowed = false;
    // Why bindings that apply to the user could not be used ("RBAC: role... not found"),
    // appended to the forbidden message as upstream does.
    std::string reason;
};

// One PolicyRule against the request (upstream rbac RuleAllows).
bool ruleAllows(const nlohmann::json& rule, const RequestAttributes& attrs);
// Whether a binding subject (User, Group, ServiceAccount) is the user; a ServiceAccount
// without a namespace means one in the binding's namespace.
bool subjectMatches(const nlohmann::json& subject, const UserInfo& user,
                    const std::string& bindingNamespace);
Decision authorize(const RequestAttributes& attrs, const UserInfo& user, const RbacPolicy& policy);

// kube-apiserver's impersonation filter for the Impersonate-User and Impersonate-Group headers:
// the checks the requesting user must pass (verb impersonate on serviceaccounts <name> in
// <ns> for "system:serviceaccount:<ns>:<name>", else on users <name>; on groups <name> for each
// group) and the user the request then runs as: the given groups, or a service account's two
// groups when none is given, plus system:authenticated (not for system:anonymous). error is
// set when groups come without a user.
struct Impersonation {
    std::vector<RequestAttributes> checks;
    UserInfo user;
    std::string error;
};
Impersonation impersonationOf(const std::string& userName, const std::vector<std::string>& groups);

// The 403 metav1.Status kube-apiserver answers a denied request with.
nlohmann::json forbiddenStatus(const RequestAttributes& attrs, const UserInfo& user,
                               const std::string& reason);

// The non-empty segments of a URL path ("/api//v1/" -> {"api", "v1"}), as the router reads
// them: the authorizer and the router must agree on which resource a request names.
std::vector<std::string> splitPath(const std::string& path);

}  // namespace sluice::testing
