// Finalizers, garbage collection, namespace cascade, CRDs, tables and workload simulation.
#include <fstream>
#include <sstream>

#include "fixture.h"
#include "sluice/util/yaml_json.h"
#include "testutil/shared_data.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

json withOwner(json obj, const json& owner) {
    obj["metadata"]["ownerReferences"] = json::array({{{"apiVersion", owner["apiVersion"]},
                                                       {"kind", owner["kind"]},
                                                       {"name", owner["metadata"]["name"]},
                                                       {"uid", owner["metadata"]["uid"]},
                                                       {"blockOwnerDeletion", true}}});
    return obj;
}

TEST_F(ApiServerTest, FinalizersHoldDeletion) {
    json cm = configMap("f");
    cm["metadata"]["finalizers"] = {"example.com/hold"};
    client->post(kCm, cm);
    auto del = client->del(std::string(kCm) + "/f");
    ASSERT_EQ(del.status, 200);
    EXPECT_TRUE(del.json()["metadata"].contains("deletionTimestamp"));
    auto live = client->get(std::string(kCm) + "/f").json();
    EXPECT_TRUE(live["metadata"].contains("deletionTimestamp"));
    EXPECT_EQ(live["metadata"]["deletionGracePeriodSeconds"], 0);
    // No new finalizers once deleting.
    auto add = client->mergePatch(std::string(kCm) + "/f",
                                  {{"metadata", {{"finalizers", {"example.com/hold", "x/y"}}}}});
    EXPECT_EQ(add.status, 422);
    EXPECT_NE(add.json()["message"].get<std::string>().find("no new finalizers"),
              std::string::npos);
    // Other changes are still allowed; removing the last finalizer deletes it.
    EXPECT_EQ(client->mergePatch(std::string(kCm) + "/f", {{"data", {{"k", "2"}}}}).status, 200);
    auto fin =
        client->mergePatch(std::string(kCm) + "/f", {{"metadata", {{"finalizers", nullptr}}}});
    EXPECT_EQ(fin.status, 200);
    EXPECT_EQ(client->get(std::string(kCm) + "/f").status, 404);
}

TEST_F(ApiServerTest, DeletePreconditions) {
    auto c = client->post(kCm, configMap("p")).json();
    auto bad = client->del(std::string(kCm) + "/p", {{"preconditions", {{"uid", "other"}}}});
    EXPECT_EQ(bad.status, 409);
    EXPECT_EQ(bad.json()["message"],
              "Operation cannot be fulfilled on configmaps \"p\": Precondition failed: UID in "
              "precondition: other, UID in object meta: " +
                  c["metadata"]["uid"].get<std::string>());
    EXPECT_EQ(client->del(std::string(kCm) + "/p", {{"preconditions", {{"resourceVersion", "1"}}}})
                  .status,
              409);
    EXPECT_EQ(
        client->del(std::string(kCm) + "/p", {{"preconditions", {{"uid", c["metadata"]["uid"]}}}})
            .status,
        200);
}

TEST_F(ApiServerTest, BackgroundDeletionRemovesDependents) {
    auto owner = client->post(kCm, configMap("owner")).json();
    client->post(kCm, withOwner(configMap("dep1"), owner));
    client->post(kCm, withOwner(configMap("dep2"), owner));
    EXPECT_EQ(client->del(std::string(kCm) + "/owner").status, 200);
    EXPECT_EQ(client->get(std::string(kCm) + "/owner").status, 404) << "owner goes first";
    EXPECT_TRUE(eventually([&] { return server->list("v1", "ConfigMap", "default").empty(); }));
}

TEST_F(ApiServerTest, ForegroundDeletionWaitsForDependents) {
    auto owner = client->post(kCm, configMap("owner")).json();
    json dep = withOwner(configMap("dep"), owner);
    dep["metadata"]["finalizers"] = {"example.com/hold"};
    client->post(kCm, dep);
    auto del = client->del(std::string(kCm) + "/owner", {{"propagationPolicy", "Foreground"}});
    ASSERT_EQ(del.status, 200);
    auto o = del.json();
    EXPECT_TRUE(o["metadata"].contains("deletionTimestamp"));
    EXPECT_EQ(o["metadata"]["finalizers"], json::array({"foregroundDeletion"}));
    // The dependent is being deleted but held by its finalizer; the owner waits.
    EXPECT_TRUE(eventually([&] {
        auto d = server->get("v1", "ConfigMap", "default", "dep");
        return d && (*d)["metadata"].contains("deletionTimestamp");
    }));
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(server->get("v1", "ConfigMap", "default", "owner").has_value());
    client->mergePatch(std::string(kCm) + "/dep", {{"metadata", {{"finalizers", nullptr}}}});
    EXPECT_TRUE(eventually([&] { return !server->get("v1", "ConfigMap", "default", "owner"); }));
}

TEST_F(ApiServerTest, OrphanDeletionKeepsDependents) {
    auto owner = client->post(kCm, configMap("owner")).json();
    client->post(kCm, withOwner(configMap("dep"), owner));
    auto del = client->request("DELETE", std::string(kCm) + "/owner?propagationPolicy=Orphan");
    ASSERT_EQ(del.status, 200);
    EXPECT_TRUE(eventually([&] { return !server->get("v1", "ConfigMap", "default", "owner"); }));
    std::this_thread::sleep_for(300ms);
    auto dep = server->get("v1", "ConfigMap", "default", "dep");
    ASSERT_TRUE(dep);
    EXPECT_FALSE((*dep)["metadata"].contains("ownerReferences"));
    EXPECT_EQ(client->del(std::string(kCm) + "/dep", {{"propagationPolicy", "Sideways"}}).status,
              422);
}

TEST_F(ApiServerTest, NamespaceDeletionCascades) {
    json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "team"}}}};
    auto created = client->post("/api/v1/namespaces", ns).json();
    EXPECT_EQ(created["status"]["phase"], "Active");
    const std::string cms = "/api/v1/namespaces/team/configmaps";
    client->post(cms, configMap("a"));
    json held = configMap("held");
    held["metadata"]["finalizers"] = {"example.com/hold"};
    client->post(cms, held);
    auto del = client->del("/api/v1/namespaces/team");
    ASSERT_EQ(del.status, 200);
    EXPECT_EQ(del.json()["status"]["phase"], "Terminating");
    auto forbidden = client->post(cms, configMap("new"));
    EXPECT_EQ(forbidden.status, 403);
    EXPECT_EQ(forbidden.json()["reason"], "Forbidden");
    EXPECT_EQ(forbidden.json()["message"],
              "configmaps \"new\" is forbidden: unable to create new content in namespace team "
              "because it is being terminated");
    EXPECT_EQ(client->del("/api/v1/namespaces/team").status, 409) << "already terminating";
    EXPECT_TRUE(eventually([&] { return !server->get("v1", "ConfigMap", "team", "a"); }));
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(server->get("v1", "Namespace", "", "team").has_value()) << "held by a finalizer";
    client->mergePatch(cms + "/held", {{"metadata", {{"finalizers", nullptr}}}});
    EXPECT_TRUE(eventually([&] { return !server->get("v1", "Namespace", "", "team"); }));
}

TEST_F(ApiServerTest, NamespaceFinalizeSubresource) {
    json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "fin"}}}};
    auto created = client->post("/api/v1/namespaces", ns).json();
    EXPECT_EQ(created["spec"]["finalizers"], json::array({"kubernetes"}));
    json changed = created;
    changed["spec"]["finalizers"] = json::array();
    auto plain = client->put("/api/v1/namespaces/fin", changed).json();
    EXPECT_EQ(plain["spec"]["finalizers"], json::array({"kubernetes"})) << "only via /finalize";
    changed["metadata"]["labels"] = {{"x", "y"}};
    changed["metadata"].erase("resourceVersion");
    auto fin = client->put("/api/v1/namespaces/fin/finalize", changed);
    ASSERT_EQ(fin.status, 200) << fin.body;
    EXPECT_EQ(fin.json()["spec"]["finalizers"], json::array());
    EXPECT_FALSE(fin.json()["metadata"].contains("labels"));
}

json loadYaml(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return yamlToJson(ss.str());
}

TEST_F(ApiServerTest, GatewayApiCrdInstallValidationAndRemoval) {
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml");
    const std::string path =
        testing::sharedPath("thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml");
    json crd = loadYaml(path);
    ASSERT_EQ(crd["kind"], "CustomResourceDefinition");
    auto r = client->post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
    ASSERT_EQ(r.status, 201) << r.body.substr(0, 500);
    json st = r.json()["status"];
    EXPECT_EQ(st["acceptedNames"]["kind"], "HTTPRoute");
    bool established = false;
    for (const auto& c : st["conditions"])
        established |= c["type"] == "Established" && c["status"] == "True";
    EXPECT_TRUE(established);

    auto disc = client->get("/apis/gateway.networking.k8s.io/v1");
    ASSERT_EQ(disc.status, 200);
    bool routes = false, status = false;
    const json discBody = disc.json();
    for (const auto& res : discBody["resources"]) {
        routes |= res["name"] == "httproutes";
        status |= res["name"] == "httproutes/status";
    }
    EXPECT_TRUE(routes);
    EXPECT_TRUE(status);

    const std::string url = "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes";
    json route = {
        {"apiVersion", "gateway.networking.k8s.io/v1"},
        {"kind", "HTTPRoute"},
        {"metadata", {{"name", "web"}}},
        {"spec",
         {{"parentRefs", json::array({{{"name", "gw"}}})},
          {"rules",
           json::array({{{"backendRefs", json::array({{{"name", "svc"}, {"port", 80}}})}}})}}}};
    auto ok = client->post(url, route);
    ASSERT_EQ(ok.status, 201) << ok.body;
    EXPECT_EQ(ok.json()["spec"]["rules"][0]["backendRefs"][0]["weight"], 1) << "defaulted";

    json bad = route;
    bad["metadata"]["name"] = "bad";
    bad["spec"]["rules"][0]["backendRefs"][0]["port"] = 70000;
    auto inv = client->post(url, bad);
    ASSERT_EQ(inv.status, 422) << inv.body;
    auto ij = inv.json();
    EXPECT_EQ(ij["reason"], "Invalid");
    EXPECT_EQ(ij["details"]["kind"], "HTTPRoute");
    EXPECT_EQ(ij["details"]["group"], "gateway.networking.k8s.io");
    ASSERT_FALSE(ij["details"]["causes"].empty());
    EXPECT_NE(ij["details"]["causes"][0]["field"].get<std::string>().find("port"),
              std::string::npos);
    EXPECT_EQ(ij["message"].get<std::string>().rfind(
                  "HTTPRoute.gateway.networking.k8s.io \"bad\" is invalid: ", 0),
              0u);

    // Unknown fields: pruned, rejected with Strict, warned about by default.
    json extra = route;
    extra["metadata"]["name"] = "extra";
    extra["spec"]["foo"] = 1;
    auto strict = client->post(url + "?fieldValidation=Strict", extra);
    EXPECT_EQ(strict.status, 400);
    EXPECT_EQ(strict.json()["message"], "strict decoding error: unknown field \"spec.foo\"");
    auto warn = client->post(url, extra);
    ASSERT_EQ(warn.status, 201);
    EXPECT_EQ(warn.header("warning"), "299 - \"unknown field \\\"spec.foo\\\"\"");
    EXPECT_FALSE(warn.json()["spec"].contains("foo"));
    auto ignore = client->post(url + "?fieldValidation=Ignore&dryRun=All", extra);
    EXPECT_EQ(ignore.status, 409) << "already exists";

    // Strategic merge patch is not for custom resources.
    auto smp =
        client->request("PATCH", url + "/web", "{}", "application/strategic-merge-patch+json");
    EXPECT_EQ(smp.status, 415);

    // Delete the CRD: instances go, then the resource leaves discovery.
    EXPECT_EQ(client
                  ->del("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                        "httproutes.gateway.networking.k8s.io")
                  .status,
              200);
    EXPECT_TRUE(eventually(
        [&] { return client->get("/apis/gateway.networking.k8s.io/v1").status == 404; }));
    EXPECT_EQ(client->get(url).status, 404);
}

json widgetCrd() {
    return yamlToJson(R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
)");
}

TEST_F(ApiServerTest, TablesForKubectl) {
    server->create(widgetCrd());
    const std::string url = "/apis/example.com/v1/namespaces/default/widgets";
    client->post(url, {{"apiVersion", "example.com/v1"},
                       {"kind", "Widget"},
                       {"metadata", {{"name", "w"}}},
                       {"spec", {{"size", 3}}}});
    const std::map<std::string, std::string> accept = {
        {"Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}};
    auto t = client->request("GET", url, "", "", accept).json();
    EXPECT_EQ(t["kind"], "Table");
    EXPECT_EQ(t["apiVersion"], "meta.k8s.io/v1");
    std::vector<std::string> cols;
    for (const auto& c : t["columnDefinitions"]) cols.push_back(c["name"]);
    EXPECT_NE(std::find(cols.begin(), cols.end(), "Size"), cols.end());
    ASSERT_EQ(t["rows"].size(), 1u);
    auto sizeIdx = std::find(cols.begin(), cols.end(), "Size") - cols.begin();
    EXPECT_EQ(t["rows"][0]["cells"][sizeIdx], 3);

    client->post(kDeploy, deployment("web"));
    auto dt = client->request("GET", kDeploy, "", "", accept).json();
    EXPECT_EQ(dt["kind"], "Table");
    EXPECT_EQ(dt["rows"].size(), 1u);

    // Watch with tables: each event's object is a Table.
    auto w = client->stream(url + "?watch=1", accept);
    auto ev = w->next(3s);
    ASSERT_TRUE(ev);
    EXPECT_EQ((*ev)["type"], "ADDED");
    EXPECT_EQ((*ev)["object"]["kind"], "Table");
    EXPECT_EQ((*ev)["object"]["rows"].size(), 1u);
}

TEST_F(ApiServerTest, WorkloadStatusIsSimulated) {
    auto w = client->stream(std::string(kDeploy) +
                            "?watch=1&resourceVersion=" + server->currentResourceVersion());
    auto d = client->post(kDeploy, deployment("web", 2)).json();
    EXPECT_TRUE(eventually([&] {
        auto live = server->get("apps/v1", "Deployment", "default", "web");
        return live && live->value("status", json::object()).value("readyReplicas", 0) == 2;
    }));
    auto added = w->next(3s);
    auto modified = w->next(3s);
    ASSERT_TRUE(added && modified);
    EXPECT_EQ((*modified)["type"], "MODIFIED");
    EXPECT_EQ((*modified)["object"]["status"]["observedGeneration"], 1);
    // A status written by a client is not overwritten by the simulation.
    auto st = client->request("PATCH", std::string(kDeploy) + "/web/status",
                              json{{"status", {{"readyReplicas", 0}}}}.dump(),
                              "application/merge-patch+json");
    ASSERT_EQ(st.status, 200) << st.body;
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ((*server->get("apps/v1", "Deployment", "default", "web"))["status"]["readyReplicas"],
              0);
    // A spec change is simulated again.
    client->mergePatch(std::string(kDeploy) + "/web", {{"spec", {{"replicas", 3}}}});
    EXPECT_TRUE(eventually([&] {
        auto live = server->get("apps/v1", "Deployment", "default", "web");
        return live->value("status", json::object()).value("readyReplicas", 0) == 3;
    }));
    // Namespaces are Active; CRDs are Established (covered above).
    EXPECT_EQ((*server->get("v1", "Namespace", "", "default"))["status"]["phase"], "Active");
}

}  // namespace
}  // namespace sluice::testing
