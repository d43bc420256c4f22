// Discovery, auth, CRUD, resourceVersion/generation, status subresource, lists, SSA, dry run.
#include "fixture.h"
#include "http/certs.h"

namespace sluice::testing {
namespace {

TEST_F(ApiServerTest, DiscoveryDocuments) {
    auto api = client->get("/api").json();
    EXPECT_EQ(api["kind"], "APIVersions");
    EXPECT_EQ(api["versions"], json::array({"v1"}));

    auto core = client->get("/api/v1").json();
    EXPECT_EQ(core["kind"], "APIResourceList");
    EXPECT_EQ(core["groupVersion"], "v1");
    bool pods = false, podStatus = false, cmStatus = false;
    for (const auto& r : core["resources"]) {
        if (r["name"] == "pods") {
            pods = true;
            EXPECT_EQ(r["kind"], "Pod");
            EXPECT_EQ(r["singularName"], "pod");
            EXPECT_TRUE(r["namespaced"].get<bool>());
            EXPECT_EQ(r["shortNames"], json::array({"po"}));
            EXPECT_EQ(r["categories"], json::array({"all"}));
        }
        if (r["name"] == "pods/status") podStatus = true;
        if (r["name"] == "configmaps/status") cmStatus = true;
        if (r["name"] == "namespaces") {
            EXPECT_FALSE(r["namespaced"].get<bool>());
        }
    }
    EXPECT_TRUE(pods);
    EXPECT_TRUE(podStatus);
    EXPECT_FALSE(cmStatus);

    auto groups = client->get("/apis").json();
    EXPECT_EQ(groups["kind"], "APIGroupList");
    bool apps = false;
    for (const auto& g : groups["groups"])
        if (g["name"] == "apps") {
            apps = true;
            EXPECT_EQ(g["preferredVersion"]["groupVersion"], "apps/v1");
        }
    EXPECT_TRUE(apps);

    auto appsV1 = client->get("/apis/apps/v1").json();
    bool deploy = false;
    for (const auto& r : appsV1["resources"])
        if (r["name"] == "deployments") {
            deploy = true;
            EXPECT_EQ(r["shortNames"], json::array({"deploy"}));
            EXPECT_NE(std::find(r["verbs"].begin(), r["verbs"].end(), "watch"), r["verbs"].end());
        }
    EXPECT_TRUE(deploy);
    EXPECT_EQ(client->get("/apis/nope.example.com/v1").status, 404);
    EXPECT_EQ(client->get("/version").json()["major"], "1");
    EXPECT_EQ(client->get("/apis/autoscaling/v2").status, 200);
    EXPECT_EQ(client->get("/apis/apiextensions.k8s.io/v1").status, 200);

    // kubectl's server-side field validation check reads these.
    auto root = client->get("/openapi/v3").json();
    ASSERT_TRUE(root["paths"].contains("apis/apps/v1"));
    std::string url = root["paths"]["apis/apps/v1"]["serverRelativeURL"];
    auto doc = client->get(url).json();
    auto patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    EXPECT_EQ(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
    bool fv = false;
    for (const auto& p : patch["parameters"]) fv |= p["name"] == "fieldValidation";
    EXPECT_TRUE(fv);
}

TEST_F(ApiServerTest, HealthEndpointsAreAnonymousOthersNeedAuth) {
    TestClient anon(*server, "");
    EXPECT_EQ(anon.get("/healthz").status, 200);
    EXPECT_EQ(anon.get("/readyz").status, 200);
    EXPECT_EQ(anon.get("/livez").body, "ok");
    auto r = anon.get(kCm);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.json()["reason"], "Unauthorized");
    EXPECT_EQ(r.json()["kind"], "Status");
    TestClient wrong(*server, "wrong-token");
    EXPECT_EQ(wrong.get(kCm).status, 401);
    EXPECT_EQ(client->get(kCm).status, 200);
}

class MtlsTest : public ApiServerTest {
  protected:
    ApiServerOptions options() override {
        ca = generateCa("client-ca");
        ApiServerOptions o;
        o.clientCaPem = ca.certPem;
        return o;
    }
    KeyPair ca;
};

TEST_F(MtlsTest, ClientCertificateAuthenticates) {
    TestClient c(*server, "");
    EXPECT_EQ(c.get(kCm).status, 401);
    auto cert = issueCertificate(ca, "alice", {}, true, "system:masters");
    c.setClientCertificate(cert.certPem, cert.keyPem);
    EXPECT_EQ(c.get(kCm).status, 200);
    // A certificate from another CA is not accepted (handshake fails or 401).
    auto other = issueCertificate(generateCa("other"), "mallory", {}, true);
    TestClient m(*server, "");
    m.setClientCertificate(other.certPem, other.keyPem);
    EXPECT_NE(m.get(kCm).status, 200);
}

TEST_F(ApiServerTest, CreateGetUpdateDeleteWithUpstreamErrors) {
    auto created = client->post(kCm, configMap("a"));
    ASSERT_EQ(created.status, 201) << created.body;
    json obj = created.json();
    EXPECT_FALSE(obj["metadata"]["uid"].get<std::string>().empty());
    EXPECT_FALSE(obj["metadata"]["creationTimestamp"].get<std::string>().empty());
    EXPECT_EQ(obj["metadata"]["generation"], 1);
    EXPECT_EQ(obj["metadata"]["namespace"], "default");
    EXPECT_EQ(obj["metadata"]["managedFields"][0]["manager"], "apiserver-test");
    EXPECT_EQ(obj["metadata"]["managedFields"][0]["operation"], "Update");
    EXPECT_EQ(rvOf(obj), server->currentResourceVersion());

    auto got = client->get(std::string(kCm) + "/a");
    EXPECT_EQ(got.status, 200);
    EXPECT_EQ(got.json()["data"]["k"], "v");

    auto dup = client->post(kCm, configMap("a")).json();
    EXPECT_EQ(dup["code"], 409);
    EXPECT_EQ(dup["reason"], "AlreadyExists");
    EXPECT_EQ(dup["message"], "configmaps \"a\" already exists");

    auto missing = client->get(std::string(kCm) + "/nope").json();
    EXPECT_EQ(missing["code"], 404);
    EXPECT_EQ(missing["reason"], "NotFound");
    EXPECT_EQ(missing["message"], "configmaps \"nope\" not found");
    EXPECT_EQ(missing["details"]["kind"], "configmaps");
    auto missingDeploy = client->get(std::string(kDeploy) + "/x").json();
    EXPECT_EQ(missingDeploy["message"], "deployments.apps \"x\" not found");
    EXPECT_EQ(missingDeploy["details"]["group"], "apps");

    // Optimistic concurrency.
    json stale = obj;
    stale["data"]["k"] = "v2";
    auto upd = client->put(std::string(kCm) + "/a", stale);
    ASSERT_EQ(upd.status, 200) << upd.body;
    EXPECT_GT(std::stoull(rvOf(upd.json())), std::stoull(rvOf(obj)));
    auto conflict = client->put(std::string(kCm) + "/a", stale).json();
    EXPECT_EQ(conflict["code"], 409);
    EXPECT_EQ(conflict["reason"], "Conflict");
    EXPECT_EQ(conflict["message"],
              "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; "
              "please apply your changes to the latest version and try again");

    auto del = client->del(std::string(kCm) + "/a");
    EXPECT_EQ(del.status, 200);
    EXPECT_EQ(del.json()["status"], "Success");
    EXPECT_EQ(client->get(std::string(kCm) + "/a").status, 404);
    EXPECT_EQ(client->del(std::string(kCm) + "/a").status, 404);
}

TEST_F(ApiServerTest, CreateValidation) {
    auto noNs = client->post("/api/v1/namespaces/missing/configmaps", configMap("a")).json();
    EXPECT_EQ(noNs["code"], 404);
    EXPECT_EQ(noNs["message"], "namespaces \"missing\" not found");

    auto badName = client->post(kCm, configMap("Bad_Name")).json();
    EXPECT_EQ(badName["code"], 422);
    EXPECT_EQ(badName["reason"], "Invalid");
    EXPECT_EQ(badName["details"]["causes"][0]["field"], "metadata.name");
    EXPECT_EQ(badName["message"].get<std::string>().rfind(
                  "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": "
                  "a lowercase RFC 1123 subdomain",
                  0),
              0u)
        << badName["message"];
    // Namespaces are RFC 1123 labels: dots are not allowed.
    json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "a.b"}}}};
    EXPECT_EQ(client->post("/api/v1/namespaces", ns).status, 422);

    json gen = configMap("");
    gen["metadata"].erase("name");
    gen["metadata"]["generateName"] = "gen-";
    auto g = client->post(kCm, gen);
    ASSERT_EQ(g.status, 201);
    std::string name = g.json()["metadata"]["name"];
    EXPECT_EQ(name.size(), 9u);
    EXPECT_EQ(name.rfind("gen-", 0), 0u);

    json noName = configMap("");
    noName["metadata"].erase("name");
    EXPECT_EQ(client->post(kCm, noName).status, 422);
    // Wrong kind for the endpoint.
    EXPECT_EQ(client->post(kCm, deployment("x")).status, 400);
}

class NoSimulationTest : public ApiServerTest {
  protected:
    ApiServerOptions options() override {
        ApiServerOptions o;
        o.simulateWorkloads = false;
        return o;
    }
};

// Without the simulated workload controllers, whose status writes would take resource versions
// between ours (and made the counter check below flaky under load).
TEST_F(NoSimulationTest, ResourceVersionAndGenerationRules) {
    auto d = client->post(kDeploy, deployment("web")).json();
    EXPECT_EQ(d["metadata"]["generation"], 1);
    std::string rv1 = rvOf(d);
    // Metadata-only change: new resourceVersion, same generation.
    auto l =
        client
            ->mergePatch(std::string(kDeploy) + "/web", {{"metadata", {{"labels", {{"a", "b"}}}}}})
            .json();
    EXPECT_EQ(l["metadata"]["generation"], 1);
    EXPECT_GT(std::stoull(rvOf(l)), std::stoull(rv1));
    // Spec change bumps generation.
    auto s =
        client->mergePatch(std::string(kDeploy) + "/web", {{"spec", {{"replicas", 3}}}}).json();
    EXPECT_EQ(s["metadata"]["generation"], 2);
    // A no-op write does not create a revision.
    auto same =
        client->mergePatch(std::string(kDeploy) + "/web", {{"spec", {{"replicas", 3}}}}).json();
    EXPECT_EQ(rvOf(same), rvOf(s));
    // The global counter is shared by all kinds.
    auto cm = client->post(kCm, configMap("c")).json();
    EXPECT_EQ(std::stoull(rvOf(cm)), std::stoull(rvOf(s)) + 1);
    // Without a status subresource, every non-metadata change counts.
    auto cm2 = client->mergePatch(std::string(kCm) + "/c", {{"data", {{"k", "x"}}}}).json();
    EXPECT_EQ(cm2["metadata"]["generation"], 2);
    // Immutable metadata is kept.
    json put = cm2;
    put["metadata"]["uid"] = "changed";
    put["metadata"]["creationTimestamp"] = "2000-01-01T00:00:00Z";
    auto p = client->put(std::string(kCm) + "/c", put).json();
    EXPECT_EQ(p["metadata"]["uid"], cm["metadata"]["uid"]);
    EXPECT_EQ(p["metadata"]["creationTimestamp"], cm["metadata"]["creationTimestamp"]);
}

TEST_F(NoSimulationTest, StatusSubresource) {
    json d = deployment("web");
    d["status"] = {{"replicas", 7}};
    auto created = client->post(kDeploy, d).json();
    EXPECT_FALSE(created.contains("status")) << "status is dropped on create";
    // Main resource writes ignore status.
    auto p =
        client->mergePatch(std::string(kDeploy) + "/web", {{"status", {{"replicas", 5}}}}).json();
    EXPECT_FALSE(p.contains("status"));
    // /status writes change only status, without bumping generation.
    auto st =
        client->request("PATCH", std::string(kDeploy) + "/web/status",
                        json{{"status", {{"replicas", 5}}}, {"spec", {{"replicas", 9}}}}.dump(),
                        "application/merge-patch+json");
    ASSERT_EQ(st.status, 200) << st.body;
    EXPECT_EQ(st.json()["status"]["replicas"], 5);
    EXPECT_EQ(st.json()["spec"]["replicas"], 1);
    EXPECT_EQ(st.json()["metadata"]["generation"], 1);
    bool statusManager = false;
    const json stBody = st.json();
    for (const auto& e : stBody["metadata"]["managedFields"])
        statusManager |= e.value("subresource", "") == "status";
    EXPECT_TRUE(statusManager);
    // PUT on /status.
    json full = st.json();
    full["status"]["replicas"] = 6;
    auto put = client->put(std::string(kDeploy) + "/web/status", full).json();
    EXPECT_EQ(put["status"]["replicas"], 6);
    // Kinds without the subresource do not serve it.
    client->post(kCm, configMap("c"));
    EXPECT_EQ(client->get(std::string(kCm) + "/c/status").status, 404);
    EXPECT_EQ(client->get(std::string(kDeploy) + "/web/status").status, 200);
}

TEST_F(ApiServerTest, ListPaginationAndExpiredContinue) {
    for (int i = 0; i < 5; ++i) client->post(kCm, configMap("cm" + std::to_string(i)));
    std::vector<std::string> names;
    std::string cont;
    int pages = 0;
    std::string firstRv;
    do {
        std::string url = std::string(kCm) + "?limit=2" + (cont.empty() ? "" : "&continue=" + cont);
        auto page = client->get(url).json();
        ASSERT_EQ(page["kind"], "ConfigMapList");
        if (firstRv.empty()) {
            firstRv = page["metadata"]["resourceVersion"];
            EXPECT_EQ(page["metadata"]["remainingItemCount"], 3);
        }
        for (const auto& it : page["items"]) {
            names.push_back(it["metadata"]["name"]);
            EXPECT_FALSE(it.contains("kind")) << "built-in list items carry no kind";
        }
        cont = page["metadata"].value("continue", "");
        ++pages;
    } while (!cont.empty() && pages < 10);
    EXPECT_EQ(pages, 3);
    EXPECT_EQ(names, (std::vector<std::string>{"cm0", "cm1", "cm2", "cm3", "cm4"}));
    EXPECT_EQ(firstRv, server->currentResourceVersion());

    auto first = client->get(std::string(kCm) + "?limit=2").json();
    std::string token = first["metadata"]["continue"];
    server->compact();
    client->post(kCm, configMap("later"));
    auto expired = client->get(std::string(kCm) + "?limit=2&continue=" + token);
    EXPECT_EQ(expired.status, 410);
    EXPECT_EQ(expired.json()["reason"], "Expired");
    EXPECT_EQ(
        expired.json()["message"].get<std::string>().rfind(
            "The provided continue parameter is too old to display a consistent list result.", 0),
        0u);
    EXPECT_EQ(client->get(std::string(kCm) + "?continue=garbage").status, 400);
    // resourceVersion=0 and resourceVersionMatch are accepted.
    EXPECT_EQ(client->get(std::string(kCm) + "?resourceVersion=0").status, 200);
    EXPECT_EQ(client
                  ->get(std::string(kCm) + "?resourceVersion=" + server->currentResourceVersion() +
                        "&resourceVersionMatch=NotOlderThan")
                  .status,
              200);
}

TEST_F(ApiServerTest, LabelAndFieldSelectors) {
    client->post(kCm, configMap("a", {{"app", "web"}, {"tier", "fe"}}));
    client->post(kCm, configMap("b", {{"app", "db"}}));
    client->post(kCm, configMap("c", json::object()));
    auto names = [&](const std::string& q) {
        std::vector<std::string> out;
        auto r = client->get(std::string(kCm) + "?" + q);
        const json body = r.json();
        for (const auto& it : body["items"]) out.push_back(it["metadata"]["name"]);
        return out;
    };
    using V = std::vector<std::string>;
    EXPECT_EQ(names("labelSelector=app%3Dweb"), V{"a"});
    EXPECT_EQ(names("labelSelector=app%3D%3Ddb"), V{"b"});
    EXPECT_EQ(names("labelSelector=app!%3Dweb"), (V{"b", "c"}));
    EXPECT_EQ(names("labelSelector=app%20in%20(web,db)"), (V{"a", "b"}));
    EXPECT_EQ(names("labelSelector=app%20notin%20(web)"), (V{"b", "c"}));
    EXPECT_EQ(names("labelSelector=app"), (V{"a", "b"}));
    EXPECT_EQ(names("labelSelector=!app"), V{"c"});
    EXPECT_EQ(names("labelSelector=app,tier%3Dfe"), V{"a"});
    EXPECT_EQ(names("fieldSelector=metadata.name%3Db"), V{"b"});
    EXPECT_EQ(names("fieldSelector=metadata.name!%3Db"), (V{"a", "c"}));
    EXPECT_EQ(names("fieldSelector=metadata.namespace%3Ddefault").size(), 3u);
    EXPECT_EQ(client->get(std::string(kCm) + "?fieldSelector=spec.foo%3Dx").status, 400);
    // All-namespaces list.
    EXPECT_GE(client->get("/api/v1/configmaps").json()["items"].size(), 3u);
    // status.phase is a pod field selector.
    EXPECT_EQ(client->get("/api/v1/pods?fieldSelector=status.phase%3DRunning").status, 200);
}

TEST_F(NoSimulationTest, ServerSideApply) {
    const std::string url = std::string(kDeploy) + "/web";
    const std::string cfg = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {a: "1", b: "2"}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1
)";
    auto noManager = client->apply(url, cfg);
    EXPECT_EQ(noManager.status, 422);
    EXPECT_NE(noManager.json()["message"].get<std::string>().find("fieldManager: Required value"),
              std::string::npos);

    auto created = client->apply(url + "?fieldManager=mgr", cfg);
    ASSERT_EQ(created.status, 201) << created.body;
    auto mf = created.json()["metadata"]["managedFields"];
    ASSERT_EQ(mf.size(), 1u);
    EXPECT_EQ(mf[0]["manager"], "mgr");
    EXPECT_EQ(mf[0]["operation"], "Apply");

    // Re-applying the same config is a no-op.
    auto again = client->apply(url + "?fieldManager=mgr", cfg);
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(rvOf(again.json()), rvOf(created.json()));

    // Dropping a field from the applied config removes it.
    std::string noB = cfg;
    noB.replace(noB.find(", b: \"2\""), 8, "");
    auto removed = client->apply(url + "?fieldManager=mgr", noB).json();
    EXPECT_FALSE(removed["metadata"]["labels"].contains("b"));
    EXPECT_EQ(removed["metadata"]["labels"]["a"], "1");

    // Another manager changes replicas with an update: the next apply conflicts.
    auto upd =
        client->request("PATCH", url + "?fieldManager=editor",
                        json{{"spec", {{"replicas", 5}}}}.dump(), "application/merge-patch+json");
    ASSERT_EQ(upd.status, 200);
    std::string more = noB;
    more.replace(more.find("replicas: 2"), 11, "replicas: 3");
    auto conflict = client->apply(url + "?fieldManager=mgr", more);
    ASSERT_EQ(conflict.status, 409) << conflict.body;
    auto cj = conflict.json();
    EXPECT_EQ(cj["reason"], "Conflict");
    EXPECT_EQ(
        cj["message"],
        "Apply failed with 1 conflict: conflict with \"editor\" using apps/v1: .spec.replicas");
    EXPECT_EQ(cj["details"]["causes"][0]["type"], "FieldManagerConflict");
    EXPECT_EQ(cj["details"]["causes"][0]["field"], ".spec.replicas");
    EXPECT_EQ(cj["details"]["causes"][0]["message"], "conflict with \"editor\" using apps/v1");

    // dryRun: full result, nothing stored.
    std::string rvBefore = server->currentResourceVersion();
    auto dry = client->apply(url + "?fieldManager=mgr&force=true&dryRun=All", more);
    EXPECT_EQ(dry.status, 200);
    EXPECT_EQ(dry.json()["spec"]["replicas"], 3);
    EXPECT_EQ(server->currentResourceVersion(), rvBefore);
    EXPECT_EQ(client->get(url).json()["spec"]["replicas"], 5);

    // force takes ownership.
    auto forced = client->apply(url + "?fieldManager=mgr&force=true", more);
    ASSERT_EQ(forced.status, 200) << forced.body;
    EXPECT_EQ(forced.json()["spec"]["replicas"], 3);
    EXPECT_EQ(forced.json()["metadata"]["generation"], 3);

    // Apply with JSON content is also YAML.
    auto cm = client->apply(std::string(kCm) + "/j?fieldManager=mgr", configMap("j").dump());
    EXPECT_EQ(cm.status, 201);
}

TEST_F(ApiServerTest, PatchFormatsAndDryRunCreate) {
    // Dry-run create first: once a Deployment exists the server's simulated
    // rollout status bumps the resourceVersion on its own, 200 ms later.
    std::string rv = server->currentResourceVersion();
    auto dry = client->post(std::string(kCm) + "?dryRun=All", configMap("dry"));
    EXPECT_EQ(dry.status, 201);
    EXPECT_FALSE(dry.json()["metadata"]["uid"].get<std::string>().empty());
    EXPECT_EQ(server->currentResourceVersion(), rv);
    EXPECT_EQ(client->get(std::string(kCm) + "/dry").status, 404);

    client->post(kDeploy, deployment("web"));
    const std::string url = std::string(kDeploy) + "/web";
    auto jp =
        client->request("PATCH", url, R"([{"op":"replace","path":"/spec/replicas","value":4}])",
                        "application/json-patch+json");
    ASSERT_EQ(jp.status, 200) << jp.body;
    EXPECT_EQ(jp.json()["spec"]["replicas"], 4);
    auto sm = client->request(
        "PATCH", url,
        R"({"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:2"}]}}}})",
        "application/strategic-merge-patch+json");
    ASSERT_EQ(sm.status, 200) << sm.body;
    EXPECT_EQ(sm.json()["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
    auto bad = client->request("PATCH", url, "{}", "text/plain");
    EXPECT_EQ(bad.status, 415);
    auto missing = client->mergePatch(std::string(kDeploy) + "/nope", json::object());
    EXPECT_EQ(missing.status, 404);
    auto rvPre = client->mergePatch(url, {{"metadata", {{"resourceVersion", "1"}}}});
    EXPECT_EQ(rvPre.status, 409);

    auto dryDel = client->request("DELETE", url + "?dryRun=All");
    EXPECT_EQ(dryDel.status, 200);
    EXPECT_EQ(client->get(url).status, 200);
}

TEST_F(ApiServerTest, DirectAccessAndRequestCounts) {
    auto created = server->create(configMap("direct"));
    EXPECT_EQ(created["metadata"]["managedFields"][0]["manager"], "test");
    EXPECT_TRUE(server->get("v1", "ConfigMap", "default", "direct").has_value());
    EXPECT_FALSE(server->get("v1", "ConfigMap", "default", "none").has_value());
    EXPECT_EQ(server->list("v1", "ConfigMap", "default").size(), 1u);
    EXPECT_THROW(server->create(configMap("direct")), ApiError);

    server->resetRequestCounts();
    client->get(std::string(kCm) + "/direct");
    client->get(kCm);
    client->post(kCm, configMap("x"));
    client->mergePatch(std::string(kCm) + "/x", {{"data", {{"a", "b"}}}});
    client->apply(std::string(kCm) + "/y?fieldManager=m", configMap("y").dump());
    client->put(std::string(kCm) + "/x", client->get(std::string(kCm) + "/x").json());
    client->del(std::string(kCm) + "/x");
    auto counts = server->requestCounts();
    EXPECT_EQ(counts["get"], 2u);
    EXPECT_EQ(counts["list"], 1u);
    EXPECT_EQ(counts["create"], 1u);
    EXPECT_EQ(counts["patch"], 1u);
    EXPECT_EQ(counts["apply"], 1u);
    EXPECT_EQ(counts["update"], 1u);
    EXPECT_EQ(counts["delete"], 1u);
}

}  // namespace
}  // namespace sluice::testing
