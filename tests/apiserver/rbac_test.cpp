// RBAC authorization over real HTTPS: restricted userTokens users against the Roles,
// ClusterRoles and bindings stored in the server; superusers and authorize=false unaffected.
#include "fixture.h"

#include "rbac_objects.h"

namespace sluice::testing {
namespace {

const std::string kSa = "system:serviceaccount:sluice:sluice-controller";
const std::string kRbac = "/apis/rbac.authorization.k8s.io/v1";

json ns(const std::string& name) {
    return {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
}

json in(json obj, const std::string& namespace_) {
    obj["metadata"]["namespace"] = namespace_;
    return obj;
}

json rule(json groups, json resources, json verbs, json names = json()) {
    json r = {{"apiGroups", groups}, {"resources", resources}, {"verbs", verbs}};
    if (!names.is_null()) r["resourceNames"] = names;
    return r;
}

constexpr auto& role = rbacRole;
constexpr auto& binding = rbacBinding;

json saSubject() {
    return json::array(
        {{{"kind", "ServiceAccount"}, {"name", "sluice-controller"}, {"namespace", "sluice"}}});
}

const json kReadConfigMaps = json::array({rule({""}, {"configmaps"}, {"get", "list", "watch"})});

class RbacTest : public ApiServerTest {
  protected:
    ApiServerOptions options() override {
        auto o = ApiServerTest::options();
        o.userTokens = {{"sa-token", kSa}, {"jane-token", "jane"}};
        o.authorize = true;
        return o;
    }
    void SetUp() override {
        ApiServerTest::SetUp();
        for (const char* n : {"apps", "sluice"}) server->create(ns(n));
        server->create(in(configMap("x"), "apps"));
        server->create(in(configMap("y"), "apps"));
        server->create(in(configMap("z"), "default"));
        sa = std::make_unique<TestClient>(*server, "sa-token");
        jane = std::make_unique<TestClient>(*server, "jane-token");
    }
    void TearDown() override {
        sa.reset();
        jane.reset();
        ApiServerTest::TearDown();
    }
    std::unique_ptr<TestClient> sa, jane;
};

TEST_F(RbacTest, DeniedClusterScopeListIsKubeApiserversStatus) {
    auto r = sa->get("/api/v1/configmaps");
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.json(),
              (json{{"kind", "Status"},
                    {"apiVersion", "v1"},
                    {"metadata", json::object()},
                    {"status", "Failure"},
                    {"message",
                     "configmaps is forbidden: User "
                     "\"system:serviceaccount:sluice:sluice-controller\" cannot list resource "
                     "\"configmaps\" in API group \"\" at the cluster scope"},
                    {"reason", "Forbidden"},
                    {"details", {{"kind", "configmaps"}}},
                    {"code", 403}}));

    auto named = sa->get("/api/v1/namespaces/apps/configmaps/x").json();
    EXPECT_EQ(named["message"],
              "configmaps \"x\" is forbidden: User "
              "\"system:serviceaccount:sluice:sluice-controller\" cannot get resource "
              "\"configmaps\" in API group \"\" in the namespace \"apps\"");
    EXPECT_EQ(named["details"], (json{{"name", "x"}, {"kind", "configmaps"}}));

    // Authorization comes before routing, as upstream: no hint whether a resource exists.
    EXPECT_EQ(sa->get("/apis/nope.example.com/v1/widgets").status, 403);
    EXPECT_EQ(server->requestCounts().count("list"), 0u);
}

TEST_F(RbacTest, RoleBindingToRoleAllowsOnlyItsNamespace) {
    server->create(role("Role", "cm-reader", "apps", kReadConfigMaps));
    server->create(binding("RoleBinding", "sluice-cm", "apps", "Role", "cm-reader", saSubject()));
    auto r = sa->get("/api/v1/namespaces/apps/configmaps");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["items"].size(), 2u);
    EXPECT_EQ(sa->get("/api/v1/namespaces/apps/configmaps/x").status, 200);
    EXPECT_EQ(sa->get("/api/v1/namespaces/default/configmaps").status, 403);
    EXPECT_EQ(sa->get("/api/v1/configmaps").status, 403);
    // Only the verbs granted.
    auto del = sa->del("/api/v1/namespaces/apps/configmaps/x");
    EXPECT_EQ(del.status, 403);
    EXPECT_EQ(del.json()["message"],
              "configmaps \"x\" is forbidden: User "
              "\"system:serviceaccount:sluice:sluice-controller\" cannot delete resource "
              "\"configmaps\" in API group \"\" in the namespace \"apps\"");
    EXPECT_EQ(sa->post("/api/v1/namespaces/apps/configmaps", configMap("new")).status, 403);
}

TEST_F(RbacTest, RoleBindingToClusterRoleGrantsItInTheBindingsNamespace) {
    server->create(role("ClusterRole", "cm-reader", "", kReadConfigMaps));
    server->create(
        binding("RoleBinding", "sluice-cm", "apps", "ClusterRole", "cm-reader", saSubject()));
    EXPECT_EQ(sa->get("/api/v1/namespaces/apps/configmaps").status, 200);
    EXPECT_EQ(sa->get("/api/v1/namespaces/default/configmaps").status, 403);
    EXPECT_EQ(sa->get("/api/v1/configmaps").status, 403);
}

TEST_F(RbacTest, ClusterRoleBindingWrittenThroughTheApiAllowsClusterWideWatch) {
    auto denied = sa->stream("/api/v1/configmaps?watch=true");
    EXPECT_EQ(denied->status, 403);

    ASSERT_EQ(
        client->post(kRbac + "/clusterroles", role("ClusterRole", "cm-reader", "", kReadConfigMaps))
            .status,
        201);
    ASSERT_EQ(
        client
            ->post(kRbac + "/clusterrolebindings", binding("ClusterRoleBinding", "sluice-cm", "",
                                                           "ClusterRole", "cm-reader", saSubject()))
            .status,
        201);
    auto list = sa->get("/api/v1/configmaps");
    ASSERT_EQ(list.status, 200);
    auto w = sa->stream("/api/v1/configmaps?watch=true&resourceVersion=" +
                        list.json()["metadata"]["resourceVersion"].get<std::string>());
    ASSERT_EQ(w->status, 200);
    server->create(in(configMap("later"), "default"));
    auto ev = w->next(std::chrono::seconds(5));
    ASSERT_TRUE(ev);
    EXPECT_EQ((*ev)["type"], "ADDED");
    EXPECT_EQ((*ev)["object"]["metadata"]["name"], "later");
    // The grant is not a write permission.
    EXPECT_EQ(sa->del("/api/v1/namespaces/default/configmaps/z").status, 403);

    // Deleting the binding revokes at once: the policy is read per request.
    ASSERT_EQ(client->del(kRbac + "/clusterrolebindings/sluice-cm").status, 200);
    EXPECT_EQ(sa->get("/api/v1/configmaps").status, 403);
}

TEST_F(RbacTest, SubresourceRule) {
    server->create(in(deployment("web"), "apps"));
    server->create(role("Role", "status-writer", "apps",
                        json::array({rule({"apps"}, {"deployments/status"}, {"get", "patch"})})));
    server->create(binding("RoleBinding", "status", "apps", "Role", "status-writer", saSubject()));
    const std::string web = "/apis/apps/v1/namespaces/apps/deployments/web";
    auto ok = sa->mergePatch(web + "/status", {{"status", {{"observedGeneration", 1}}}});
    EXPECT_EQ(ok.status, 200) << ok.body;

    auto main = sa->mergePatch(web, {{"spec", {{"replicas", 3}}}});
    EXPECT_EQ(main.status, 403);
    EXPECT_EQ(main.json()["message"],
              "deployments.apps \"web\" is forbidden: User "
              "\"system:serviceaccount:sluice:sluice-controller\" cannot patch resource "
              "\"deployments\" in API group \"apps\" in the namespace \"apps\"");
    auto scale = sa->mergePatch(web + "/scale", {{"spec", {{"replicas", 3}}}});
    EXPECT_EQ(scale.status, 403);
    EXPECT_EQ(scale.json()["message"],
              "deployments.apps \"web\" is forbidden: User "
              "\"system:serviceaccount:sluice:sluice-controller\" cannot patch resource "
              "\"deployments/scale\" in API group \"apps\" in the namespace \"apps\"");
    EXPECT_EQ(scale.json()["details"],
              (json{{"name", "web"}, {"group", "apps"}, {"kind", "deployments"}}));
}

TEST_F(RbacTest, ResourceNamesRestrictNamedRequestsOnly) {
    server->create(
        role("Role", "only-x", "apps",
             json::array({rule({""}, {"configmaps"}, {"get", "list", "watch", "update"}, {"x"})})));
    server->create(binding("RoleBinding", "only-x", "apps", "Role", "only-x", saSubject()));
    const std::string cms = "/api/v1/namespaces/apps/configmaps";
    auto x = sa->get(cms + "/x");
    ASSERT_EQ(x.status, 200);
    EXPECT_EQ(sa->put(cms + "/x", x.json()).status, 200);
    EXPECT_EQ(sa->get(cms + "/y").status, 403);
    EXPECT_EQ(sa->get(cms).status, 403);
    EXPECT_EQ(sa->post(cms, configMap("x2")).status, 403);
    // A list pinned to the name by a field selector is a request for that object, as upstream.
    auto pinned = sa->get(cms + "?fieldSelector=metadata.name%3Dx");
    ASSERT_EQ(pinned.status, 200) << pinned.body;
    EXPECT_EQ(pinned.json()["items"].size(), 1u);
    EXPECT_EQ(sa->get(cms + "?fieldSelector=metadata.name%3Dy").status, 403);
}

TEST_F(RbacTest, GroupAndServiceAccountSubjects) {
    server->create(role("ClusterRole", "cm-reader", "", kReadConfigMaps));
    // Group: every service account of namespace sluice, not the user jane.
    server->create(
        binding("RoleBinding", "by-group", "apps", "ClusterRole", "cm-reader",
                json::array({{{"kind", "Group"}, {"name", "system:serviceaccounts:sluice"}}})));
    EXPECT_EQ(sa->get("/api/v1/namespaces/apps/configmaps").status, 200);
    EXPECT_EQ(jane->get("/api/v1/namespaces/apps/configmaps").status, 403);

    // ServiceAccount without a namespace: one in the binding's own namespace.
    server->create(
        binding("RoleBinding", "local-sa", "sluice", "ClusterRole", "cm-reader",
                json::array({{{"kind", "ServiceAccount"}, {"name", "sluice-controller"}}})));
    EXPECT_EQ(sa->get("/api/v1/namespaces/sluice/configmaps").status, 200);
    server->create(
        binding("RoleBinding", "other-sa", "default", "ClusterRole", "cm-reader",
                json::array({{{"kind", "ServiceAccount"}, {"name", "sluice-controller"}}})));
    EXPECT_EQ(sa->get("/api/v1/namespaces/default/configmaps").status, 403);

    // User subject by name.
    server->create(binding("RoleBinding", "jane", "default", "ClusterRole", "cm-reader",
                           json::array({{{"kind", "User"}, {"name", "jane"}}})));
    EXPECT_EQ(jane->get("/api/v1/namespaces/default/configmaps").status, 200);
}

TEST_F(RbacTest, BindingToMissingRoleExplainsWhy) {
    server->create(binding("RoleBinding", "dangling", "apps", "Role", "gone", saSubject()));
    EXPECT_EQ(sa->get("/api/v1/namespaces/apps/configmaps").json()["message"],
              "configmaps is forbidden: User \"system:serviceaccount:sluice:sluice-controller\" "
              "cannot list resource \"configmaps\" in API group \"\" in the namespace \"apps\": "
              "RBAC: roles.rbac.authorization.k8s.io \"gone\" not found");
}

TEST_F(RbacTest, DiscoveryAllowedToEveryAuthenticatedUser) {
    for (const char* p :
         {"/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/version", "/openapi/v3",
          "/openapi/v3/apis/apps/v1", "/healthz", "/readyz", "/livez"})
        EXPECT_EQ(sa->get(p).status, 200) << p;
    // The root is not in system:discovery.
    auto root = sa->get("/");
    EXPECT_EQ(root.status, 403);
    EXPECT_EQ(root.json()["message"],
              "forbidden: User \"system:serviceaccount:sluice:sluice-controller\" cannot get "
              "path \"/\"");
    EXPECT_EQ(TestClient(*server, "wrong").get("/api").status, 401);
}

TEST_F(RbacTest, SuperuserTokenUnaffected) {
    EXPECT_EQ(client->get("/api/v1/configmaps").status, 200);
    EXPECT_EQ(client->get("/").status, 200);
    EXPECT_EQ(client->post("/api/v1/namespaces/apps/configmaps", configMap("new")).status, 201);
    EXPECT_EQ(client->del("/api/v1/namespaces/apps/configmaps").status, 200);
}

class RbacOffTest : public RbacTest {
  protected:
    ApiServerOptions options() override {
        auto o = RbacTest::options();
        o.authorize = false;
        return o;
    }
};

TEST_F(RbacOffTest, UserTokensMayDoEverything) {
    EXPECT_EQ(sa->get("/api/v1/configmaps").status, 200);
    EXPECT_EQ(jane->post("/api/v1/namespaces/apps/configmaps", configMap("new")).status, 201);
    EXPECT_EQ(sa->del("/api/v1/namespaces/apps/configmaps/x").status, 200);
    EXPECT_EQ(sa->get("/").status, 200);
    EXPECT_EQ(TestClient(*server, "wrong").get("/api").status, 401);
}

}  // namespace
}  // namespace sluice::testing
