// The RBAC authorizer's pure pieces: request attributes from URLs, rule and subject matching,
// binding scope and the forbidden Status.
#include <gtest/gtest.h>

#include "apiserver/authorizer.h"

#include "rbac_objects.h"

namespace sluice::testing {
namespace {

using nlohmann::json;

const char* kSa = "system:serviceaccount:sluice:sluice-controller";

RequestAttributes attrs(const std::string& method, const std::string& path, bool watch = false,
                        const std::string& fieldSelector = "") {
    return requestAttributes(method, path, watch, fieldSelector);
}

constexpr auto& role = rbacRole;
constexpr auto& binding = rbacBinding;

TEST(RequestAttributesTest, VerbsFromMethodsAndUrls) {
    auto a = attrs("GET", "/api/v1/namespaces/apps/configmaps/x");
    EXPECT_TRUE(a.resourceRequest);
    EXPECT_EQ(a.verb, "get");
    EXPECT_EQ(a.apiGroup, "");
    EXPECT_EQ(a.apiVersion, "v1");
    EXPECT_EQ(a.resource, "configmaps");
    EXPECT_EQ(a.ns, "apps");
    EXPECT_EQ(a.name, "x");

    EXPECT_EQ(attrs("GET", "/api/v1/namespaces/apps/configmaps").verb, "list");
    EXPECT_EQ(attrs("GET", "/api/v1/configmaps", true).verb, "watch");
    EXPECT_EQ(attrs("GET", "/api/v1/configmaps", true).ns, "");
    EXPECT_EQ(attrs("GET", "/api/v1/watch/namespaces/apps/configmaps").verb, "watch");
    EXPECT_EQ(attrs("GET", "/api/v1/watch/namespaces/apps/configmaps").ns, "apps");
    // A watch of one object through ?watch is authorized as get, as upstream.
    EXPECT_EQ(attrs("GET", "/api/v1/namespaces/apps/configmaps/x", true).verb, "get");
    EXPECT_EQ(attrs("POST", "/api/v1/namespaces/apps/configmaps").verb, "create");
    EXPECT_EQ(attrs("PUT", "/api/v1/namespaces/apps/configmaps/x").verb, "update");
    EXPECT_EQ(attrs("PATCH", "/api/v1/namespaces/apps/configmaps/x").verb, "patch");
    EXPECT_EQ(attrs("DELETE", "/api/v1/namespaces/apps/configmaps/x").verb, "delete");
    EXPECT_EQ(attrs("DELETE", "/api/v1/namespaces/apps/configmaps").verb, "deletecollection");

    auto st = attrs("PATCH", "/apis/apps/v1/namespaces/apps/deployments/web/status");
    EXPECT_EQ(st.apiGroup, "apps");
    EXPECT_EQ(st.resource, "deployments");
    EXPECT_EQ(st.subresource, "status");
    EXPECT_EQ(st.name, "web");

    // Namespaces are named by their own namespace; status/finalize are their subresources.
    auto ns = attrs("PUT", "/api/v1/namespaces/apps/finalize");
    EXPECT_EQ(ns.resource, "namespaces");
    EXPECT_EQ(ns.name, "apps");
    EXPECT_EQ(ns.ns, "apps");
    EXPECT_EQ(ns.subresource, "finalize");
    auto crd = attrs("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions");
    EXPECT_EQ(crd.verb, "list");
    EXPECT_EQ(crd.ns, "");
}

TEST(RequestAttributesTest, FieldSelectorOnNameNamesTheObject) {
    EXPECT_EQ(attrs("GET", "/api/v1/namespaces/a/configmaps", false, "metadata.name=x").name, "x");
    EXPECT_EQ(attrs("GET", "/api/v1/namespaces/a/configmaps", true, "a=b,metadata.name==x").name,
              "x");
    EXPECT_EQ(attrs("GET", "/api/v1/namespaces/a/configmaps", false, "metadata.name!=x").name, "");
    EXPECT_EQ(attrs("GET", "/api/v1/namespaces/a/configmaps", false, "metadata.name=..").name, "");
    EXPECT_EQ(attrs("DELETE", "/api/v1/namespaces/a/configmaps", false, "metadata.name=x").verb,
              "deletecollection");
}

TEST(RequestAttributesTest, NonResourcePaths) {
    for (const char* p : {"/", "/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1",
                          "/version", "/openapi/v3/apis/apps/v1", "/healthz"}) {
        auto a = attrs("GET", p);
        EXPECT_FALSE(a.resourceRequest) << p;
        EXPECT_EQ(a.verb, "get") << p;
        EXPECT_EQ(a.path, p);
    }
}

TEST(UserInfoTest, ServiceAccountGroups) {
    auto sa = userFromName(kSa);
    EXPECT_EQ(sa.groups,
              (std::vector<std::string>{"system:serviceaccounts", "system:serviceaccounts:sluice",
                                        "system:authenticated"}));
    EXPECT_EQ(userFromName("jane").groups, std::vector<std::string>{"system:authenticated"});
    EXPECT_FALSE(isSuperUser(sa));
    EXPECT_TRUE(isSuperUser(superUser()));
}

TEST(RuleAllowsTest, VerbsGroupsResources) {
    json rule = {{"apiGroups", {""}}, {"resources", {"configmaps"}}, {"verbs", {"get", "list"}}};
    EXPECT_TRUE(ruleAllows(rule, attrs("GET", "/api/v1/namespaces/a/configmaps/x")));
    EXPECT_TRUE(ruleAllows(rule, attrs("GET", "/api/v1/configmaps")));
    EXPECT_FALSE(ruleAllows(rule, attrs("GET", "/api/v1/configmaps", true)));
    EXPECT_FALSE(ruleAllows(rule, attrs("GET", "/api/v1/namespaces/a/secrets/x")));
    EXPECT_FALSE(ruleAllows(rule, attrs("GET", "/apis/apps/v1/namespaces/a/deployments/x")));

    json all = {{"apiGroups", {"*"}}, {"resources", {"*"}}, {"verbs", {"*"}}};
    EXPECT_TRUE(ruleAllows(all, attrs("PATCH", "/apis/apps/v1/namespaces/a/deployments/x/scale")));
    // Resource rules never grant non-resource URLs.
    EXPECT_FALSE(ruleAllows(all, attrs("GET", "/version")));
}

TEST(RuleAllowsTest, Subresources) {
    json status = {
        {"apiGroups", {"apps"}}, {"resources", {"deployments/status"}}, {"verbs", {"patch"}}};
    EXPECT_TRUE(
        ruleAllows(status, attrs("PATCH", "/apis/apps/v1/namespaces/a/deployments/x/status")));
    EXPECT_FALSE(ruleAllows(status, attrs("PATCH", "/apis/apps/v1/namespaces/a/deployments/x")));
    EXPECT_FALSE(
        ruleAllows(status, attrs("PATCH", "/apis/apps/v1/namespaces/a/deployments/x/scale")));

    json plain = {{"apiGroups", {"apps"}}, {"resources", {"deployments"}}, {"verbs", {"patch"}}};
    EXPECT_FALSE(
        ruleAllows(plain, attrs("PATCH", "/apis/apps/v1/namespaces/a/deployments/x/status")));

    json anyScale = {{"apiGroups", {"*"}}, {"resources", {"*/scale"}}, {"verbs", {"get"}}};
    EXPECT_TRUE(
        ruleAllows(anyScale, attrs("GET", "/apis/apps/v1/namespaces/a/deployments/x/scale")));
    EXPECT_FALSE(ruleAllows(anyScale, attrs("GET", "/apis/apps/v1/namespaces/a/deployments/x")));
    EXPECT_FALSE(
        ruleAllows(anyScale, attrs("GET", "/apis/apps/v1/namespaces/a/deployments/x/status")));
}

TEST(RuleAllowsTest, ResourceNamesOnlyMatchNamedRequests) {
    json rule = {{"apiGroups", {""}},
                 {"resources", {"configmaps"}},
                 {"resourceNames", {"x"}},
                 {"verbs", {"*"}}};
    EXPECT_TRUE(ruleAllows(rule, attrs("GET", "/api/v1/namespaces/a/configmaps/x")));
    EXPECT_TRUE(ruleAllows(rule, attrs("DELETE", "/api/v1/namespaces/a/configmaps/x")));
    EXPECT_FALSE(ruleAllows(rule, attrs("GET", "/api/v1/namespaces/a/configmaps/y")));
    EXPECT_FALSE(ruleAllows(rule, attrs("GET", "/api/v1/namespaces/a/configmaps")));
    EXPECT_FALSE(ruleAllows(rule, attrs("POST", "/api/v1/namespaces/a/configmaps")));
    EXPECT_FALSE(ruleAllows(rule, attrs("DELETE", "/api/v1/namespaces/a/configmaps")));
    EXPECT_TRUE(
        ruleAllows(rule, attrs("GET", "/api/v1/namespaces/a/configmaps", true, "metadata.name=x")));
}

TEST(RuleAllowsTest, NonResourceUrls) {
    json rule = {{"verbs", {"get"}}, {"nonResourceURLs", {"/metrics", "/logs/*"}}};
    EXPECT_TRUE(ruleAllows(rule, attrs("GET", "/metrics")));
    EXPECT_TRUE(ruleAllows(rule, attrs("GET", "/logs/a/b")));
    EXPECT_FALSE(ruleAllows(rule, attrs("GET", "/metricsx")));
    EXPECT_FALSE(ruleAllows(rule, attrs("POST", "/metrics")));
}

TEST(SubjectMatchesTest, UserGroupServiceAccount) {
    auto sa = userFromName(kSa);
    EXPECT_TRUE(subjectMatches({{"kind", "User"}, {"name", kSa}}, sa, ""));
    EXPECT_FALSE(subjectMatches({{"kind", "User"}, {"name", "jane"}}, sa, ""));
    EXPECT_TRUE(
        subjectMatches({{"kind", "Group"}, {"name", "system:serviceaccounts:sluice"}}, sa, ""));
    EXPECT_FALSE(
        subjectMatches({{"kind", "Group"}, {"name", "system:serviceaccounts:other"}}, sa, ""));
    json subj = {
        {"kind", "ServiceAccount"}, {"name", "sluice-controller"}, {"namespace", "sluice"}};
    EXPECT_TRUE(subjectMatches(subj, sa, ""));
    EXPECT_TRUE(subjectMatches(subj, sa, "elsewhere"));
    // Without a namespace: the binding's namespace; a ClusterRoleBinding has none.
    json bare = {{"kind", "ServiceAccount"}, {"name", "sluice-controller"}};
    EXPECT_TRUE(subjectMatches(bare, sa, "sluice"));
    EXPECT_FALSE(subjectMatches(bare, sa, "apps"));
    EXPECT_FALSE(subjectMatches(bare, sa, ""));
}

TEST(AuthorizeTest, BindingScopes) {
    auto sa = userFromName(kSa);
    json readCm = json::array({{{"apiGroups", {""}},
                                {"resources", {"configmaps"}},
                                {"verbs", {"get", "list", "watch"}}}});
    json subjects = json::array({{{"kind", "User"}, {"name", kSa}}});
    RbacPolicy p;
    p.clusterRoles.push_back(role("ClusterRole", "cm-reader", "", readCm));
    p.roles.push_back(role("Role", "cm-reader", "apps", readCm));

    // Nothing bound: denied; discovery still allowed.
    EXPECT_FALSE(authorize(attrs("GET", "/api/v1/namespaces/apps/configmaps"), sa, p).allowed);
    EXPECT_TRUE(authorize(attrs("GET", "/apis/apps/v1"), sa, p).allowed);
    EXPECT_FALSE(authorize(attrs("GET", "/"), sa, p).allowed);
    EXPECT_TRUE(authorize(attrs("DELETE", "/api/v1/namespaces/x"), superUser(), p).allowed);

    // A RoleBinding to a ClusterRole grants it in the binding's namespace only.
    p.roleBindings.push_back(
        binding("RoleBinding", "b", "apps", "ClusterRole", "cm-reader", subjects));
    EXPECT_TRUE(authorize(attrs("GET", "/api/v1/namespaces/apps/configmaps"), sa, p).allowed);
    EXPECT_FALSE(authorize(attrs("GET", "/api/v1/namespaces/other/configmaps"), sa, p).allowed);
    EXPECT_FALSE(authorize(attrs("GET", "/api/v1/configmaps"), sa, p).allowed);

    // A RoleBinding to a Role of the same namespace.
    p.roleBindings = {binding("RoleBinding", "b", "apps", "Role", "cm-reader", subjects)};
    EXPECT_TRUE(authorize(attrs("GET", "/api/v1/namespaces/apps/configmaps"), sa, p).allowed);

    // A ClusterRoleBinding grants everywhere, the cluster scope included.
    p.roleBindings.clear();
    p.clusterRoleBindings.push_back(
        binding("ClusterRoleBinding", "b", "", "ClusterRole", "cm-reader", subjects));
    EXPECT_TRUE(authorize(attrs("GET", "/api/v1/configmaps", true), sa, p).allowed);
    EXPECT_TRUE(authorize(attrs("GET", "/api/v1/namespaces/other/configmaps/x"), sa, p).allowed);
    EXPECT_FALSE(
        authorize(attrs("DELETE", "/api/v1/namespaces/other/configmaps/x"), sa, p).allowed);
}

TEST(AuthorizeTest, MissingRoleIsTheReason) {
    auto sa = userFromName(kSa);
    json subjects = json::array({{{"kind", "Group"}, {"name", "system:serviceaccounts"}}});
    RbacPolicy p;
    p.clusterRoleBindings.push_back(
        binding("ClusterRoleBinding", "b", "", "ClusterRole", "gone", subjects));
    p.roleBindings.push_back(binding("RoleBinding", "b", "apps", "Role", "gone", subjects));
    auto d = authorize(attrs("GET", "/api/v1/namespaces/apps/configmaps"), sa, p);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.reason,
              "RBAC: [clusterroles.rbac.authorization.k8s.io \"gone\" not found, "
              "roles.rbac.authorization.k8s.io \"gone\" not found]");
    // Bindings of other users are not looked at.
    EXPECT_EQ(authorize(attrs("GET", "/api/v1/configmaps"), userFromName("jane"), p).reason, "");
}

TEST(ForbiddenStatusTest, MessagesAsKubeApiserver) {
    auto sa = userFromName(kSa);
    auto st = forbiddenStatus(attrs("GET", "/api/v1/configmaps"), sa, "");
    EXPECT_EQ(st["code"], 403);
    EXPECT_EQ(st["reason"], "Forbidden");
    EXPECT_EQ(st["message"],
              "configmaps is forbidden: User \"system:serviceaccount:sluice:sluice-controller\" "
              "cannot list resource \"configmaps\" in API group \"\" at the cluster scope");
    EXPECT_EQ(st["details"], (json{{"kind", "configmaps"}}));

    st = forbiddenStatus(attrs("PATCH", "/apis/apps/v1/namespaces/apps/deployments/web/status"), sa,
                         "");
    EXPECT_EQ(st["message"],
              "deployments.apps \"web\" is forbidden: User "
              "\"system:serviceaccount:sluice:sluice-controller\" cannot patch resource "
              "\"deployments/status\" in API group \"apps\" in the namespace \"apps\"");
    EXPECT_EQ(st["details"], (json{{"name", "web"}, {"group", "apps"}, {"kind", "deployments"}}));

    st = forbiddenStatus(attrs("GET", "/"), userFromName("jane"), "");
    EXPECT_EQ(st["message"], "forbidden: User \"jane\" cannot get path \"/\"");
}

}  // namespace
}  // namespace sluice::testing
