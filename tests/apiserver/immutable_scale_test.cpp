// Immutable fields of built-in kinds (422 Invalid with kube-apiserver's messages) and the
// /scale subresource of workloads (autoscaling/v1 Scale), over HTTPS and with kubectl.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "fixture.h"
#include "testutil/tools.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDeployWeb = "/apis/apps/v1/namespaces/default/deployments/web";

json causeFields(const json& status) {
    json fields = json::array();
    for (const auto& c : status["details"]["causes"]) fields.push_back(c["field"]);
    return fields;
}

// A 422 Invalid whose message ends the way kube-apiserver words it, with one cause per field.
void expectInvalid(const ClientResponse& r, const std::string& message, const json& fields) {
    ASSERT_EQ(r.status, 422) << r.body;
    auto st = r.json();
    EXPECT_EQ(st["kind"], "Status");
    EXPECT_EQ(st["reason"], "Invalid");
    EXPECT_EQ(st["message"], message);
    EXPECT_EQ(causeFields(st), fields) << r.body;
}

json withSelector(json obj, const json& matchLabels) {
    obj["spec"]["selector"] = {{"matchLabels", matchLabels}};
    obj["spec"]["template"]["metadata"]["labels"] = matchLabels;
    return obj;
}

json workload(const std::string& kind, const std::string& name, int replicas = 1) {
    json obj = deployment(name, replicas);
    obj["kind"] = kind;
    if (kind == "DaemonSet") obj["spec"].erase("replicas");
    if (kind == "StatefulSet") obj["spec"]["serviceName"] = name;
    return obj;
}

std::string pathOf(const std::string& kind, const std::string& name) {
    std::string plural = kind == "Deployment"    ? "deployments"
                         : kind == "StatefulSet" ? "statefulsets"
                         : kind == "ReplicaSet"  ? "replicasets"
                                                 : "daemonsets";
    return "/apis/apps/v1/namespaces/default/" + plural + "/" + name;
}

// Without the simulated controllers nothing but the test writes, so resourceVersions read
// stay current and "nothing changed" can be checked by resourceVersion.
class ImmutableTest : public ApiServerTest {
  protected:
    ApiServerOptions options() override {
        auto o = ApiServerTest::options();
        o.simulateWorkloads = false;
        return o;
    }
};

TEST_F(ImmutableTest, DeploymentSelectorCannotChangeThroughUpdatePatchOrApply) {
    ASSERT_EQ(client->post(kDeploy, deployment("web", 2)).status, 201);
    auto live = client->get(kDeployWeb).json();
    const std::string expected =
        "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: "
        "v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"other\"}, "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable";

    expectInvalid(client->put(kDeployWeb, withSelector(live, {{"app", "other"}})), expected,
                  json::array({"spec.selector"}));
    auto patched = client->mergePatch(
        kDeployWeb, {{"spec", {{"selector", {{"matchLabels", {{"app", "other"}}}}}}}});
    ASSERT_EQ(patched.status, 422) << patched.body;
    auto st = patched.json();
    EXPECT_EQ(st["details"]["kind"], "Deployment");
    EXPECT_EQ(st["details"]["group"], "apps");
    EXPECT_EQ(st["details"]["causes"][0]["reason"], "FieldValueInvalid");
    EXPECT_NE(st["details"]["causes"][0]["message"].get<std::string>().find("field is immutable"),
              std::string::npos);
    // Forcing conflicts does not help: immutability is validation, not ownership.
    const std::string applied = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: other}}
  template:
    metadata: {labels: {app: other}}
    spec: {containers: [{name: app, image: nginx:1}]}
)";
    expectInvalid(
        client->apply(std::string(kDeployWeb) + "?fieldManager=gitops&force=true", applied),
        expected, json::array({"spec.selector"}));
    // Validation runs for dry runs too.
    EXPECT_EQ(
        client->put(std::string(kDeployWeb) + "?dryRun=All", withSelector(live, {{"app", "other"}}))
            .status,
        422);
    // Expressions are rendered as Go prints them (values in the order given).
    auto exprs = live;
    exprs["spec"]["selector"]["matchExpressions"] =
        json::array({{{"key", "tier"}, {"operator", "In"}, {"values", {"b", "a"}}}});
    auto r = client->put(kDeployWeb, exprs);
    ASSERT_EQ(r.status, 422);
    EXPECT_NE(r.json()["message"].get<std::string>().find(
                  "MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{"
                  "Key:\"tier\", Operator:\"In\", Values:[]string{\"b\", \"a\"}}}}: field is "
                  "immutable"),
              std::string::npos)
        << r.body;

    // Nothing was written by the refused requests.
    auto after = client->get(kDeployWeb).json();
    EXPECT_EQ(after["metadata"]["resourceVersion"], live["metadata"]["resourceVersion"]);
    EXPECT_EQ(after["spec"]["selector"], live["spec"]["selector"]);

    // Other spec fields stay mutable, and re-sending the same selector is no change.
    auto scaled = live;
    scaled["spec"]["replicas"] = 5;
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2";
    auto ok = client->put(kDeployWeb, scaled);
    ASSERT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(ok.json()["spec"]["replicas"], 5);
    // An empty matchExpressions list equals none, as apimachinery's semantic equality has it.
    auto same = ok.json();
    same["spec"]["selector"]["matchExpressions"] = json::array();
    EXPECT_EQ(client->put(kDeployWeb, same).status, 200);
}

TEST_F(ImmutableTest, ReplicaSetAndDaemonSetSelectorsAreImmutable) {
    for (const std::string kind : {"ReplicaSet", "DaemonSet"}) {
        SCOPED_TRACE(kind);
        std::string path = pathOf(kind, "web");
        ASSERT_EQ(client->post(path.substr(0, path.rfind('/')), workload(kind, "web")).status, 201);
        auto live = client->get(path).json();
        expectInvalid(client->put(path, withSelector(live, {{"app", "web"}, {"v", "2"}})),
                      kind +
                          ".apps \"web\" is invalid: spec.selector: Invalid value: "
                          "v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", "
                          "\"v\":\"2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: "
                          "field is immutable",
                      json::array({"spec.selector"}));
        auto relabeled = live;
        relabeled["metadata"]["labels"] = {{"team", "a"}};
        EXPECT_EQ(client->put(path, relabeled).status, 200);
    }
}

TEST_F(ImmutableTest, StatefulSetOnlyAllowsItsMutableSpecFields) {
    const std::string path = pathOf("StatefulSet", "db");
    ASSERT_EQ(client->post(path.substr(0, path.rfind('/')), workload("StatefulSet", "db")).status,
              201);
    auto live = client->get(path).json();
    const std::string forbidden =
        "StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for "
        "fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
        "'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
        "are forbidden";
    expectInvalid(client->put(path, withSelector(live, {{"app", "other"}})), forbidden,
                  json::array({"spec"}));
    auto renamed = live;
    renamed["spec"]["serviceName"] = "db-headless";
    expectInvalid(client->put(path, renamed), forbidden, json::array({"spec"}));
    auto claims = live;
    claims["spec"]["volumeClaimTemplates"] =
        json::array({{{"metadata", {{"name", "data"}}},
                      {"spec",
                       {{"accessModes", {"ReadWriteOnce"}},
                        {"resources", {{"requests", {{"storage", "1Gi"}}}}}}}}});
    expectInvalid(client->put(path, claims), forbidden, json::array({"spec"}));

    // The default pod management policy spelled out is no change.
    auto mutableFields = live;
    mutableFields["spec"]["replicas"] = 3;
    mutableFields["spec"]["template"]["spec"]["containers"][0]["image"] = "postgres:16";
    mutableFields["spec"]["updateStrategy"] = {{"type", "OnDelete"}};
    mutableFields["spec"]["minReadySeconds"] = 10;
    mutableFields["spec"]["podManagementPolicy"] = "OrderedReady";
    auto ok = client->put(path, mutableFields);
    ASSERT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(ok.json()["spec"]["replicas"], 3);
}

json job(const std::string& name, bool suspend) {
    json container = {{"name", "main"}, {"image", "busybox:1"}};
    json podSpec = {{"restartPolicy", "Never"}, {"containers", json::array({container})}};
    json tmpl = {{"metadata", {{"labels", {{"job", name}}}}}, {"spec", podSpec}};
    return {{"apiVersion", "batch/v1"},
            {"kind", "Job"},
            {"metadata", {{"name", name}}},
            {"spec", {{"suspend", suspend}, {"template", tmpl}}}};
}

TEST_F(ImmutableTest, JobTemplateSelectorAndCompletionModeAreImmutable) {
    const std::string jobs = "/apis/batch/v1/namespaces/default/jobs";
    ASSERT_EQ(client->post(jobs, job("migrate", false)).status, 201);
    auto live = client->get(jobs + "/migrate").json();

    auto image = live;
    image["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2";
    auto r = client->put(jobs + "/migrate", image);
    ASSERT_EQ(r.status, 422) << r.body;
    const std::string msg = r.json()["message"];
    EXPECT_EQ(msg.rfind("Job.batch \"migrate\" is invalid: spec.template: Invalid value: "
                        "core.PodTemplateSpec{",
                        0),
              0u)
        << msg;
    EXPECT_NE(msg.find("busybox:2"), std::string::npos) << msg;
    EXPECT_EQ(msg.substr(msg.size() - 20), ": field is immutable");

    auto selector = live;
    selector["spec"]["selector"] = {{"matchLabels", {{"job", "migrate"}}}};
    selector["spec"]["completionMode"] = "Indexed";
    expectInvalid(client->put(jobs + "/migrate", selector),
                  "Job.batch \"migrate\" is invalid: [spec.selector: Invalid value: "
                  "v1.LabelSelector{MatchLabels:map[string]string{\"job\":\"migrate\"}, "
                  "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable, "
                  "spec.completionMode: Invalid value: \"Indexed\": field is immutable]",
                  json::array({"spec.selector", "spec.completionMode"}));
    // The default completion mode spelled out is no change; parallelism stays mutable.
    auto ok = live;
    ok["spec"]["completionMode"] = "NonIndexed";
    ok["spec"]["parallelism"] = 2;
    EXPECT_EQ(client->put(jobs + "/migrate", ok).status, 200);

    // A suspended Job that never started may change its scheduling directives only.
    ASSERT_EQ(client->post(jobs, job("queued", true)).status, 201);
    auto queued = client->get(jobs + "/queued").json();
    queued["spec"]["template"]["spec"]["nodeSelector"] = {{"pool", "batch"}};
    queued["spec"]["template"]["metadata"]["annotations"] = {{"queue", "a"}};
    auto placed = client->put(jobs + "/queued", queued);
    ASSERT_EQ(placed.status, 200) << placed.body;
    auto queuedImage = placed.json();
    queuedImage["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2";
    EXPECT_EQ(client->put(jobs + "/queued", queuedImage).status, 422);
}

TEST_F(ImmutableTest, ServiceKeepsItsClusterIPAndRefusesAnother) {
    const std::string svcs = "/api/v1/namespaces/default/services";
    json svc = {{"apiVersion", "v1"},
                {"kind", "Service"},
                {"metadata", {{"name", "web"}}},
                {"spec",
                 {{"clusterIP", "10.96.0.10"},
                  {"selector", {{"app", "web"}}},
                  {"ports", json::array({{{"port", 80}, {"targetPort", 8080}}})}}}};
    ASSERT_EQ(client->post(svcs, svc).status, 201);

    // A replace with the manifest minus its address (as Git has it) keeps the address.
    auto withoutIp = svc;
    withoutIp["spec"].erase("clusterIP");
    withoutIp["spec"]["ports"][0]["port"] = 81;
    auto kept = client->put(svcs + "/web", withoutIp);
    ASSERT_EQ(kept.status, 200) << kept.body;
    EXPECT_EQ(kept.json()["spec"]["clusterIP"], "10.96.0.10");
    EXPECT_EQ(kept.json()["spec"]["ports"][0]["port"], 81);

    auto moved = svc;
    moved["spec"]["clusterIP"] = "10.96.0.11";
    expectInvalid(client->put(svcs + "/web", moved),
                  "Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: "
                  "[]string{\"10.96.0.11\"}: may not change once set",
                  json::array({"spec.clusterIPs[0]"}));
    EXPECT_EQ(
        client->mergePatch(svcs + "/web", {{"spec", {{"clusterIPs", {"10.96.0.12"}}}}}).status,
        422);
    EXPECT_EQ(client->get(svcs + "/web").json()["spec"]["clusterIP"], "10.96.0.10");

    // Without an address yet, one may be set; an ExternalName service has none to protect.
    json bare = svc;
    bare["metadata"]["name"] = "bare";
    bare["spec"].erase("clusterIP");
    ASSERT_EQ(client->post(svcs, bare).status, 201);
    bare["spec"]["clusterIP"] = "10.96.0.20";
    EXPECT_EQ(client->put(svcs + "/bare", bare).status, 200);
    json external = {{"apiVersion", "v1"},
                     {"kind", "Service"},
                     {"metadata", {{"name", "ext"}}},
                     {"spec", {{"type", "ExternalName"}, {"externalName", "a.example.com"}}}};
    ASSERT_EQ(client->post(svcs, external).status, 201);
    external["spec"]["externalName"] = "b.example.com";
    EXPECT_EQ(client->put(svcs + "/ext", external).status, 200);
}

TEST_F(ImmutableTest, ImmutableConfigMapsAndSecretsKeepTheirData) {
    auto cm = configMap("frozen", json::object(), {{"mode", "a"}});
    cm["immutable"] = true;
    cm["binaryData"] = {{"blob", "AAE="}};
    ASSERT_EQ(client->post(kCm, cm).status, 201);
    const std::string path = std::string(kCm) + "/frozen";
    const std::string forbidden = "Forbidden: field is immutable when `immutable` is set";
    expectInvalid(client->mergePatch(path, {{"data", {{"mode", "b"}}}}),
                  "ConfigMap \"frozen\" is invalid: data: " + forbidden, json::array({"data"}));
    expectInvalid(client->mergePatch(path, {{"immutable", false}, {"binaryData", nullptr}}),
                  "ConfigMap \"frozen\" is invalid: [immutable: " + forbidden +
                      ", binaryData: " + forbidden + "]",
                  json::array({"immutable", "binaryData"}));
    // Metadata stays writable (and the object deletable).
    EXPECT_EQ(client->mergePatch(path, {{"metadata", {{"labels", {{"a", "b"}}}}}}).status, 200);
    // Without immutable: true, data changes as usual.
    ASSERT_EQ(client->post(kCm, configMap("open")).status, 201);
    EXPECT_EQ(client->mergePatch(std::string(kCm) + "/open", {{"data", {{"k", "w"}}}}).status, 200);

    const std::string secrets = "/api/v1/namespaces/default/secrets";
    json secret = {{"apiVersion", "v1"}, {"kind", "Secret"},  {"metadata", {{"name", "creds"}}},
                   {"type", "Opaque"},   {"immutable", true}, {"data", {{"user", "YWRtaW4="}}}};
    ASSERT_EQ(client->post(secrets, secret).status, 201);
    expectInvalid(client->mergePatch(secrets + "/creds", {{"stringData", {{"user", "root"}}}}),
                  "Secret \"creds\" is invalid: data: " + forbidden, json::array({"data"}));
    // stringData equal to the stored data is no change.
    EXPECT_EQ(client->mergePatch(secrets + "/creds", {{"stringData", {{"user", "admin"}}}}).status,
              200);
    expectInvalid(client->mergePatch(secrets + "/creds", {{"type", "kubernetes.io/tls"}}),
                  "Secret \"creds\" is invalid: type: Invalid value: \"kubernetes.io/tls\": field "
                  "is immutable",
                  json::array({"type"}));
}

// --- /scale ---

class ScaleTest : public ApiServerTest {};

TEST_F(ScaleTest, DiscoveryListsScaleForDeploymentsStatefulSetsAndReplicaSets) {
    auto apps = client->get("/apis/apps/v1").json();
    std::vector<std::string> scaled;
    for (const auto& r : apps["resources"]) {
        const std::string name = r["name"];
        if (name.size() > 6 && name.substr(name.size() - 6) == "/scale") {
            scaled.push_back(name);
            EXPECT_EQ(r["group"], "autoscaling");
            EXPECT_EQ(r["version"], "v1");
            EXPECT_EQ(r["kind"], "Scale");
            EXPECT_EQ(r["verbs"], json::array({"get", "patch", "update"}));
        }
    }
    EXPECT_EQ(scaled, (std::vector<std::string>{"deployments/scale", "statefulsets/scale",
                                                "replicasets/scale"}));
    ASSERT_EQ(
        client->post("/apis/apps/v1/namespaces/default/daemonsets", workload("DaemonSet", "agent"))
            .status,
        201);
    EXPECT_EQ(client->get("/apis/apps/v1/namespaces/default/daemonsets/agent/scale").status, 404);
}

TEST_F(ScaleTest, GetPutAndPatchScaleChangeOnlyReplicas) {
    ASSERT_EQ(client->post(kDeploy, deployment("web", 2)).status, 201);
    const std::string scalePath = std::string(kDeployWeb) + "/scale";
    auto deploy = client->get(kDeployWeb).json();
    auto scale = client->get(scalePath);
    ASSERT_EQ(scale.status, 200) << scale.body;
    auto s = scale.json();
    EXPECT_EQ(s["kind"], "Scale");
    EXPECT_EQ(s["apiVersion"], "autoscaling/v1");
    EXPECT_EQ(s["metadata"]["name"], "web");
    EXPECT_EQ(s["metadata"]["namespace"], "default");
    EXPECT_EQ(s["metadata"]["uid"], deploy["metadata"]["uid"]);
    EXPECT_EQ(s["spec"]["replicas"], 2);
    EXPECT_EQ(s["status"]["selector"], "app=web");
    // status.replicas follows the (simulated) controller.
    EXPECT_TRUE(eventually([&] { return client->get(scalePath).json()["status"]["replicas"] == 2; },
                           std::chrono::seconds(20)));

    auto current = client->get(scalePath).json();
    auto put = current;
    put["spec"]["replicas"] = 4;
    auto r = client->put(scalePath + "?fieldManager=hpa", put);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["kind"], "Scale");
    EXPECT_EQ(r.json()["spec"]["replicas"], 4);
    auto after = client->get(kDeployWeb).json();
    EXPECT_EQ(after["spec"]["replicas"], 4);
    EXPECT_EQ(after["metadata"]["generation"], deploy["metadata"]["generation"].get<int>() + 1);
    EXPECT_EQ(after["spec"]["template"], deploy["spec"]["template"]);
    bool scaleEntry = false;
    for (const auto& e : after["metadata"]["managedFields"])
        if (e["manager"] == "hpa") {
            scaleEntry = true;
            EXPECT_EQ(e["subresource"], "scale");
            EXPECT_EQ(e["operation"], "Update");
            EXPECT_EQ(e["fieldsV1"], json({{"f:spec", {{"f:replicas", json::object()}}}}));
        }
    EXPECT_TRUE(scaleEntry) << after["metadata"]["managedFields"].dump();
    EXPECT_TRUE(eventually([&] { return client->get(scalePath).json()["status"]["replicas"] == 4; },
                           std::chrono::seconds(20)));

    // The Scale's resourceVersion is a precondition: the one read before the PUT is stale.
    auto stale = current;
    stale["spec"]["replicas"] = 9;
    auto conflict = client->put(scalePath, stale);
    EXPECT_EQ(conflict.status, 409) << conflict.body;
    EXPECT_EQ(conflict.json()["reason"], "Conflict");

    auto negative = client->mergePatch(scalePath, {{"spec", {{"replicas", -1}}}});
    expectInvalid(negative,
                  "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must "
                  "be greater than or equal to 0",
                  json::array({"spec.replicas"}));
    EXPECT_EQ(client->mergePatch(scalePath, {{"spec", {{"replicas", "three"}}}}).status, 400);

    auto merge = client->mergePatch(scalePath, {{"spec", {{"replicas", 1}}}});
    ASSERT_EQ(merge.status, 200) << merge.body;
    EXPECT_EQ(merge.json()["spec"]["replicas"], 1);
    auto jsonPatch = client->request(
        "PATCH", scalePath,
        json::array({{{"op", "replace"}, {"path", "/spec/replicas"}, {"value", 0}}}).dump(),
        "application/json-patch+json");
    ASSERT_EQ(jsonPatch.status, 200) << jsonPatch.body;
    EXPECT_EQ(client->get(kDeployWeb).json()["spec"]["replicas"], 0);

    // Apply through /scale owns spec.replicas as an Apply entry with subresource scale, and
    // conflicts with the manager of the main resource like any apply.
    const std::string scaleDoc = R"(apiVersion: autoscaling/v1
kind: Scale
metadata: {name: web}
spec: {replicas: 3}
)";
    auto conflicted = client->apply(scalePath + "?fieldManager=autoscaler", scaleDoc);
    ASSERT_EQ(conflicted.status, 409) << conflicted.body;
    EXPECT_EQ(causeFields(conflicted.json()), json::array({".spec.replicas"}));
    auto applied = client->apply(scalePath + "?fieldManager=autoscaler&force=true", scaleDoc);
    ASSERT_EQ(applied.status, 200) << applied.body;
    EXPECT_EQ(applied.json()["spec"]["replicas"], 3);
    bool applyEntry = false;
    const json fields = client->get(kDeployWeb).json()["metadata"]["managedFields"];
    for (const auto& e : fields)
        if (e["manager"] == "autoscaler")
            applyEntry = e["operation"] == "Apply" && e["subresource"] == "scale";
    EXPECT_TRUE(applyEntry) << fields.dump();

    // Dry run answers with the would-be Scale and changes nothing.
    auto dry = client->mergePatch(scalePath + "?dryRun=All", {{"spec", {{"replicas", 7}}}});
    ASSERT_EQ(dry.status, 200);
    EXPECT_EQ(dry.json()["spec"]["replicas"], 7);
    EXPECT_EQ(client->get(kDeployWeb).json()["spec"]["replicas"], 3);

    EXPECT_EQ(client->get(std::string(kDeploy) + "/missing/scale").status, 404);
}

TEST_F(ScaleTest, StatefulSetsReplicaSetsAndSelectorsWithExpressions) {
    auto rs = workload("ReplicaSet", "front", 2);
    rs["spec"]["selector"]["matchExpressions"] =
        json::array({{{"key", "tier"}, {"operator", "In"}, {"values", {"web", "edge"}}},
                     {{"key", "canary"}, {"operator", "DoesNotExist"}}});
    rs["spec"]["template"]["metadata"]["labels"]["tier"] = "web";
    ASSERT_EQ(client->post("/apis/apps/v1/namespaces/default/replicasets", rs).status, 201);
    auto s = client->get(pathOf("ReplicaSet", "front") + "/scale").json();
    EXPECT_EQ(s["status"]["selector"], "app=front,!canary,tier in (edge,web)");
    EXPECT_EQ(s["spec"]["replicas"], 2);

    auto sts = workload("StatefulSet", "db", 1);
    sts["spec"].erase("replicas");  // defaults to 1
    ASSERT_EQ(client->post("/apis/apps/v1/namespaces/default/statefulsets", sts).status, 201);
    const std::string stsScale = pathOf("StatefulSet", "db") + "/scale";
    EXPECT_EQ(client->get(stsScale).json()["spec"]["replicas"], 1);
    ASSERT_EQ(client->mergePatch(stsScale, {{"spec", {{"replicas", 3}}}}).status, 200);
    EXPECT_EQ(client->get(pathOf("StatefulSet", "db")).json()["spec"]["replicas"], 3);
}

TEST_F(ScaleTest, CustomResourcesWithAScaleSubresource) {
    json crd = {
        {"apiVersion", "apiextensions.k8s.io/v1"},
        {"kind", "CustomResourceDefinition"},
        {"metadata", {{"name", "pools.example.com"}}},
        {"spec",
         {{"group", "example.com"},
          {"scope", "Namespaced"},
          {"names", {{"plural", "pools"}, {"singular", "pool"}, {"kind", "Pool"}}},
          {"versions",
           json::array(
               {{{"name", "v1"},
                 {"served", true},
                 {"storage", true},
                 {"subresources",
                  {{"status", json::object()},
                   {"scale",
                    {{"specReplicasPath", ".spec.size"},
                     {"statusReplicasPath", ".status.ready"},
                     {"labelSelectorPath", ".status.selector"}}}}},
                 {"schema",
                  {{"openAPIV3Schema",
                    {{"type", "object"},
                     {"properties",
                      {{"spec",
                        {{"type", "object"}, {"properties", {{"size", {{"type", "integer"}}}}}}},
                       {"status",
                        {{"type", "object"},
                         {"properties",
                          {{"ready", {{"type", "integer"}}},
                           {"selector", {{"type", "string"}}}}}}}}}}}}}}})}}}};
    ASSERT_EQ(client->post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd).status,
              201);
    const std::string pools = "/apis/example.com/v1/namespaces/default/pools";
    ASSERT_TRUE(eventually([&] { return client->get(pools).status == 200; }));
    bool listed = false;
    const json discovered = client->get("/apis/example.com/v1").json();
    for (const auto& r : discovered["resources"]) listed |= r["name"] == "pools/scale";
    EXPECT_TRUE(listed);
    ASSERT_EQ(client
                  ->post(pools, {{"apiVersion", "example.com/v1"},
                                 {"kind", "Pool"},
                                 {"metadata", {{"name", "p"}}},
                                 {"spec", {{"size", 2}}}})
                  .status,
              201);
    ASSERT_EQ(
        client
            ->mergePatch(pools + "/p/status", {{"status", {{"ready", 1}, {"selector", "pool=p"}}}})
            .status,
        200);
    auto s = client->get(pools + "/p/scale").json();
    EXPECT_EQ(s["spec"]["replicas"], 2);
    EXPECT_EQ(s["status"]["replicas"], 1);
    EXPECT_EQ(s["status"]["selector"], "pool=p");
    ASSERT_EQ(client->mergePatch(pools + "/p/scale", {{"spec", {{"replicas", 5}}}}).status, 200);
    EXPECT_EQ(client->get(pools + "/p").json()["spec"]["size"], 5);
}

// --- with kubectl ---

struct KubectlRun {
    int code;
    std::string out;
};

class KubectlScaleTest : public ApiServerTest {
  protected:
    void SetUp() override {
        if (!isExecutable(kubectlPath())) GTEST_SKIP() << "no kubectl at " << kubectlPath();
        ApiServerTest::SetUp();
        dir = fs::temp_directory_path() /
              ("apiserver-scale-" + std::to_string(::getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir / "cache");
        kubeconfig = server->writeKubeconfig((dir / "kubeconfig").string());
    }
    void TearDown() override {
        if (server) ApiServerTest::TearDown();
        if (!dir.empty()) fs::remove_all(dir);
    }
    KubectlRun kubectl(const std::string& args) {
        // HOME and KUBECONFIG point at the temp dir: no user configuration is read or written.
        std::string cmd = "HOME='" + dir.string() + "' KUBECONFIG='" + kubeconfig + "' '" +
                          kubectlPath() + "' --cache-dir='" + (dir / "cache").string() + "' " +
                          args + " 2>&1";
        KubectlRun r{0, ""};
        FILE* p = ::popen(cmd.c_str(), "r");
        std::array<char, 4096> buf;
        size_t n;
        while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
        int st = ::pclose(p);
        r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        return r;
    }
    std::string write(const std::string& name, const std::string& content) {
        auto path = dir / name;
        std::ofstream(path) << content;
        return path.string();
    }
    fs::path dir;
    std::string kubeconfig;
};

const char* kWeb = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 1
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: db
        image: postgres:16
)";

TEST_F(KubectlScaleTest, KubectlScaleAndImmutableSelector) {
    auto apply = kubectl("apply --server-side -f " + write("web.yaml", kWeb));
    ASSERT_EQ(apply.code, 0) << apply.out;

    auto scale = kubectl("scale deployment web --replicas=3");
    ASSERT_EQ(scale.code, 0) << scale.out;
    EXPECT_NE(scale.out.find("deployment.apps/web scaled"), std::string::npos) << scale.out;
    EXPECT_EQ((*server->get("apps/v1", "Deployment", "default", "web"))["spec"]["replicas"], 3);
    auto sts = kubectl("scale statefulset db --replicas=2");
    ASSERT_EQ(sts.code, 0) << sts.out;
    EXPECT_EQ((*server->get("apps/v1", "StatefulSet", "default", "db"))["spec"]["replicas"], 2);

    // --current-replicas makes kubectl read the Scale and update it with a precondition.
    auto guarded = kubectl("scale deployment web --current-replicas=3 --replicas=5");
    ASSERT_EQ(guarded.code, 0) << guarded.out;
    EXPECT_EQ((*server->get("apps/v1", "Deployment", "default", "web"))["spec"]["replicas"], 5);
    auto wrong = kubectl("scale deployment web --current-replicas=2 --replicas=1");
    EXPECT_NE(wrong.code, 0);
    EXPECT_NE(wrong.out.find("Expected replicas to be 2, was 5"), std::string::npos) << wrong.out;

    // Re-applying the manifest with a new selector: the server refuses, kubectl says why.
    std::string moved = kWeb;
    for (size_t at; (at = moved.find("{app: web}")) != std::string::npos;)
        moved.replace(at, 10, "{app: web2}");
    auto refused =
        kubectl("apply --server-side --force-conflicts -f " + write("moved.yaml", moved));
    EXPECT_NE(refused.code, 0);
    EXPECT_NE(refused.out.find("The Deployment \"web\" is invalid: spec.selector: Invalid value: "
                               "v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}"),
              std::string::npos)
        << refused.out;
    EXPECT_NE(refused.out.find("field is immutable"), std::string::npos) << refused.out;
}

}  // namespace
}  // namespace sluice::testing
