#include "sluice/fieldset/fieldset.h"

#include <gtest/gtest.h>

#include <chrono>

using nlohmann::json;
namespace fs = sluice::fieldset;

namespace {

const char* kT0 = "2024-05-01T10:00:00Z";
const char* kT1 = "2024-05-01T11:00:00Z";
const char* kT2 = "2024-05-01T12:00:00Z";

fs::Path P(std::initializer_list<std::string> elems) {
    fs::Path p;
    for (const auto& e : elems) p.push_back(fs::PathElement{e});
    return p;
}

fs::Schema deploySchema() {
    return fs::Schema::forKind("apps/v1", "Deployment");
}

json deployment(int replicas = 2) {
    json d = json::parse(R"({
      "apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
      "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
          "metadata": {"labels": {"app": "web"}},
          "spec": {"containers": [{
            "name": "web", "image": "web:1",
            "ports": [{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
          }]}
        }
      }})");
    d["spec"]["replicas"] = replicas;
    return d;
}

const fs::ManagedFieldsEntry* entryOf(const json& obj, const std::string& manager,
                                      const std::string& op,
                                      std::vector<fs::ManagedFieldsEntry>& storage) {
    storage = fs::parseManagedFields(obj);
    for (const auto& e : storage)
        if (e.manager == manager && e.operation == op) return &e;
    return nullptr;
}

fs::FieldSet fieldsOfManager(const json& obj, const std::string& manager, const std::string& op) {
    std::vector<fs::ManagedFieldsEntry> storage;
    const auto* e = entryOf(obj, manager, op, storage);
    return e ? e->fields : fs::FieldSet{};
}

const fs::Path kReplicas = P({"f:spec", "f:replicas"});
const fs::Path kContainer =
    P({"f:spec", "f:template", "f:spec", "f:containers", "k:{\"name\":\"web\"}"});

fs::Path under(const fs::Path& base, std::initializer_list<std::string> more) {
    fs::Path p = base;
    for (const auto& e : more) p.push_back(fs::PathElement{e});
    return p;
}

}  // namespace

// ---------- paths and fieldsV1 ----------

TEST(FieldsV1, RoundTripsRealDeploymentManagedFields) {
    // As kube-apiserver stores it for `kubectl apply --server-side` of a Deployment.
    json v1 = json::parse(R"({
      "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
      "f:spec": {
        "f:replicas": {},
        "f:selector": {},
        "f:template": {
          "f:metadata": {"f:labels": {"f:app": {}}},
          "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
            ".": {}, "f:image": {}, "f:name": {},
            "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {
              ".": {}, "f:containerPort": {}}}
          }}}
        }
      }})");
    fs::FieldSet set = fs::FieldSet::fromFieldsV1(v1);
    EXPECT_EQ(set.size(), 10u);
    EXPECT_TRUE(set.contains(P({"f:metadata", "f:labels"})));
    EXPECT_TRUE(set.contains(P({"f:metadata", "f:labels", "f:app"})));
    EXPECT_FALSE(set.contains(P({"f:metadata"})));
    EXPECT_TRUE(set.contains(kContainer));
    EXPECT_TRUE(set.contains(
        under(kContainer, {"f:ports", "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}"})));
    EXPECT_TRUE(set.contains(P({"f:spec", "f:selector"})));
    EXPECT_EQ(set.toFieldsV1(), v1);
    EXPECT_EQ(fs::FieldSet::fromFieldsV1(set.toFieldsV1()), set);
}

TEST(FieldsV1, EntryJsonRoundTrip) {
    json entry = json::parse(R"({"manager":"kubectl","operation":"Update","apiVersion":"v1",
      "time":"2024-05-01T10:00:00Z","fieldsType":"FieldsV1","subresource":"status",
      "fieldsV1":{"f:status":{"f:phase":{}}}})");
    auto e = fs::ManagedFieldsEntry::fromJson(entry);
    EXPECT_EQ(e.manager, "kubectl");
    EXPECT_EQ(e.subresource, "status");
    EXPECT_TRUE(e.fields.contains(P({"f:status", "f:phase"})));
    EXPECT_EQ(e.toJson(), entry);
}

TEST(FieldsV1, ManagedFieldsAreReadFromTheirPackedTextToo) {
    // A watch cache may keep metadata.managedFields as its JSON text (cache::packManagedFields).
    json entries = json::parse(R"([
      {"manager":"sluice","operation":"Apply","apiVersion":"v1","time":"2024-05-01T10:00:00Z",
       "fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:a":{}}}},
      {"manager":"kubectl-edit","operation":"Update","apiVersion":"v1",
       "time":"2024-05-01T11:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:b":{}}}}])");
    json tree = {{"metadata", {{"name", "x"}, {"managedFields", entries}}}};
    json packed = {{"metadata", {{"name", "x"}, {"managedFields", entries.dump()}}}};
    auto fromTree = fs::parseManagedFields(tree);
    auto fromText = fs::parseManagedFields(packed);
    ASSERT_EQ(fromText.size(), 2u);
    for (size_t i = 0; i < fromText.size(); ++i)
        EXPECT_EQ(fromText[i].toJson(), fromTree[i].toJson());
    EXPECT_TRUE(fromText[1].fields.contains(P({"f:data", "f:b"})));
    // Text that is not an array of entries yields none rather than failing.
    packed["metadata"]["managedFields"] = "{not json";
    EXPECT_TRUE(fs::parseManagedFields(packed).empty());
}

TEST(Paths, ToStringAndCanonicalKeys) {
    EXPECT_EQ(fs::toString(kReplicas), ".spec.replicas");
    EXPECT_EQ(fs::toString(under(kContainer, {"f:image"})),
              ".spec.template.spec.containers[name=\"web\"].image");
    EXPECT_EQ(fs::toString(P({"f:metadata", "f:finalizers", "v:\"x\""})),
              ".metadata.finalizers[=\"x\"]");
    EXPECT_EQ(fs::PathElement::key(json{{"protocol", "TCP"}, {"containerPort", 80.0}}).encoded,
              "k:{\"containerPort\":80,\"protocol\":\"TCP\"}");
    EXPECT_EQ(fs::PathElement::value(json(1.5)).encoded, "v:1.5");
}

TEST(FieldSet, SetOperationsAndUnder) {
    fs::FieldSet a, b;
    a.insert(kReplicas);
    a.insert(kContainer);
    a.insert(under(kContainer, {"f:image"}));
    b.insert(kReplicas);
    b.insert(P({"f:spec", "f:paused"}));
    EXPECT_EQ(a.unionWith(b).size(), 4u);
    EXPECT_EQ(a.intersection(b).size(), 1u);
    EXPECT_EQ(a.difference(b).size(), 2u);
    EXPECT_EQ(a.under(kContainer).size(), 2u);
    EXPECT_EQ(a.under(P({"f:spec"})).size(), 3u);
    EXPECT_TRUE(a.under(P({"f:status"})).empty());
}

// ---------- fieldsOf ----------

TEST(FieldsOf, DeploymentWithContainersPortsAndEnv) {
    json d = deployment();
    d["metadata"]["uid"] = "123";
    d["metadata"]["resourceVersion"] = "7";
    d["status"] = {{"replicas", 2}};
    fs::FieldSet set = fs::fieldsOf(d, deploySchema());
    fs::Path port8080 =
        under(kContainer, {"f:ports", "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}"});
    fs::Path port53 =
        under(kContainer, {"f:ports", "k:{\"containerPort\":53,\"protocol\":\"UDP\"}"});
    EXPECT_TRUE(set.contains(kReplicas));
    EXPECT_TRUE(set.contains(P({"f:spec", "f:selector"})));  // LabelSelector is atomic
    EXPECT_FALSE(set.contains(P({"f:spec", "f:selector", "f:matchLabels", "f:app"})));
    EXPECT_TRUE(set.contains(P({"f:metadata", "f:labels", "f:app"})));
    EXPECT_FALSE(set.contains(P({"f:metadata", "f:name"})));
    EXPECT_FALSE(set.contains(P({"f:metadata", "f:uid"})));
    EXPECT_TRUE(set.under(P({"f:status"})).empty());  // status subresource
    EXPECT_TRUE(set.under(P({"f:apiVersion"})).empty());
    EXPECT_TRUE(set.contains(kContainer));
    EXPECT_TRUE(set.contains(under(kContainer, {"f:name"})));
    EXPECT_TRUE(set.contains(under(kContainer, {"f:image"})));
    EXPECT_TRUE(set.contains(port8080));
    EXPECT_TRUE(set.contains(under(port8080, {"f:containerPort"})));
    EXPECT_FALSE(set.contains(under(port8080, {"f:protocol"})));  // defaulted key, not set
    EXPECT_TRUE(set.contains(under(port53, {"f:protocol"})));
    EXPECT_TRUE(set.contains(under(kContainer, {"f:env", "k:{\"name\":\"A\"}", "f:value"})));
    // 4 meta/spec leaves + container(3) + 2 ports(2+3) + 2 env(3+3) = 18
    EXPECT_EQ(set.size(), 18u) << set.toFieldsV1().dump();

    fs::FieldSet statusOnly = fs::fieldsOf(d, deploySchema(), "status");
    EXPECT_EQ(statusOnly.size(), 1u);
    EXPECT_TRUE(statusOnly.contains(P({"f:status", "f:replicas"})));
}

TEST(FieldsOf, UnknownKindListsAreAtomicEmptyMapsAreLeaves) {
    json obj = json::parse(R"({"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"x"},
      "spec":{"items":[{"name":"a"},{"name":"b"}],"opts":{},"nothing":null},"status":{"a":1}})");
    fs::Schema s = fs::Schema::forKind("example.com/v1", "Thing");
    fs::FieldSet set = fs::fieldsOf(obj, s);
    EXPECT_TRUE(set.contains(P({"f:spec", "f:items"})));
    EXPECT_TRUE(set.contains(P({"f:spec", "f:opts"})));
    EXPECT_TRUE(set.contains(P({"f:spec", "f:nothing"})));
    EXPECT_EQ(set.size(), 3u);
    s.setStatusSubresource(false);
    EXPECT_TRUE(fs::fieldsOf(obj, s).contains(P({"f:status", "f:a"})));
}

TEST(FieldsOf, ServiceSelectorAtomicPortsByPortAndProtocol) {
    json svc = json::parse(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},
      "spec":{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":8080}]}})");
    fs::FieldSet set = fs::fieldsOf(svc, fs::Schema::forKind("v1", "Service"));
    EXPECT_TRUE(set.contains(P({"f:spec", "f:selector"})));
    EXPECT_TRUE(set.contains(
        P({"f:spec", "f:ports", "k:{\"port\":80,\"protocol\":\"TCP\"}", "f:targetPort"})));
}

TEST(FieldsOf, ValueAtFollowsKeysWithDefaults) {
    json d = deployment();
    auto v = fs::valueAt(
        d,
        under(kContainer,
              {"f:ports", "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}", "f:containerPort"}),
        deploySchema());
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, 8080);
    EXPECT_EQ(*fs::valueAt(d, kReplicas, deploySchema()), 2);
    EXPECT_FALSE(fs::valueAt(d, P({"f:spec", "f:paused"}), deploySchema()));
}

// ---------- schema ----------

TEST(Schema, BuiltInLists) {
    auto s = deploySchema();
    auto c = s.listAt("spec.template.spec.containers");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->kind, fs::ListType::Kind::Map);
    EXPECT_EQ(c->keys, std::vector<std::string>{"name"});
    auto ports = s.listAt("spec.template.spec.containers[].ports");
    ASSERT_TRUE(ports);
    EXPECT_EQ(ports->keys, (std::vector<std::string>{"containerPort", "protocol"}));
    EXPECT_EQ(ports->keyDefaults.at("protocol"), "TCP");
    EXPECT_EQ(s.listAt("spec.template.spec.volumes")->keys[0], "name");
    EXPECT_EQ(s.listAt("spec.template.spec.containers[].volumeMounts")->keys[0], "mountPath");
    EXPECT_EQ(s.listAt("metadata.finalizers")->kind, fs::ListType::Kind::Set);
    EXPECT_EQ(s.listAt("metadata.ownerReferences")->keys[0], "uid");
    EXPECT_EQ(s.listAt("status.conditions")->keys[0], "type");
    EXPECT_FALSE(s.listAt("spec.template.spec.tolerations"));
    EXPECT_FALSE(s.listAt("spec.template.spec.containers[].args"));
    EXPECT_TRUE(s.isAtomicMap("spec.selector"));
    EXPECT_FALSE(s.isAtomicMap("spec.template.metadata.labels"));

    auto cj = fs::Schema::forKind("batch/v1", "CronJob");
    EXPECT_TRUE(cj.listAt("spec.jobTemplate.spec.template.spec.containers[].env"));
    auto tsc = fs::Schema::forKind("v1", "Pod").listAt("spec.topologySpreadConstraints");
    ASSERT_TRUE(tsc);
    EXPECT_EQ(tsc->keys, (std::vector<std::string>{"topologyKey", "whenUnsatisfiable"}));
    EXPECT_FALSE(fs::Schema::forKind("example.com/v1", "Thing").listAt("spec.items"));
}

TEST(Schema, FromOpenApiListMapKeysDefaultsAndMaps) {
    json schema = json::parse(R"({
      "type": "object",
      "properties": {
        "spec": {"type": "object", "properties": {
          "routes": {"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name", "port"],
            "items": {"type": "object", "properties": {
              "name": {"type": "string"}, "port": {"type": "integer", "default": 80},
              "hosts": {"type": "array", "x-kubernetes-list-type": "set",
                        "items": {"type": "string"}}}}},
          "tags": {"type": "array", "items": {"type": "string"}},
          "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                       "additionalProperties": {"type": "string"}},
          "backends": {"type": "object", "additionalProperties": {"type": "object",
            "properties": {"weights": {"type": "array", "x-kubernetes-list-type": "map",
              "x-kubernetes-list-map-keys": ["id"], "items": {"type": "object"}}}}}
        }}
      }})");
    fs::Schema s = fs::Schema::fromOpenApi(schema);
    auto routes = s.listAt("spec.routes");
    ASSERT_TRUE(routes);
    EXPECT_EQ(routes->kind, fs::ListType::Kind::Map);
    EXPECT_EQ(routes->keys, (std::vector<std::string>{"name", "port"}));
    EXPECT_EQ(routes->keyDefaults.at("port"), 80);
    EXPECT_EQ(s.listAt("spec.routes[].hosts")->kind, fs::ListType::Kind::Set);
    EXPECT_FALSE(s.listAt("spec.tags"));
    EXPECT_TRUE(s.isAtomicMap("spec.selector"));
    EXPECT_EQ(s.listAt("spec.backends.blue.weights")->keys[0], "id");
    EXPECT_EQ(s.listAt("metadata.finalizers")->kind, fs::ListType::Kind::Set);

    json cr = json::parse(R"({"apiVersion":"x.io/v1","kind":"R","metadata":{"name":"r"},
      "spec":{"routes":[{"name":"a","hosts":["h1","h2"]}],"backends":{"blue":{"weights":[{"id":1,"w":5}]}}}})");
    fs::FieldSet set = fs::fieldsOf(cr, s);
    fs::Path route = P({"f:spec", "f:routes", "k:{\"name\":\"a\",\"port\":80}"});
    EXPECT_TRUE(set.contains(route));
    EXPECT_TRUE(set.contains(under(route, {"f:hosts", "v:\"h2\""})));
    EXPECT_TRUE(
        set.contains(P({"f:spec", "f:backends", "f:blue", "f:weights", "k:{\"id\":1}", "f:w"})));
}

// ---------- apply ----------

TEST(Apply, CreateOwnsEverythingApplied) {
    json cfg = deployment();
    auto r = fs::apply(nullptr, cfg, "sluice", false, deploySchema(), kT0);
    const json& obj = r.object;
    EXPECT_EQ(obj["spec"]["replicas"], 2);
    EXPECT_EQ(obj["metadata"]["name"], "web");
    ASSERT_EQ(obj["metadata"]["managedFields"].size(), 1u);
    const json& e = obj["metadata"]["managedFields"][0];
    EXPECT_EQ(e["manager"], "sluice");
    EXPECT_EQ(e["operation"], "Apply");
    EXPECT_EQ(e["apiVersion"], "apps/v1");
    EXPECT_EQ(e["time"], kT0);
    EXPECT_EQ(e["fieldsType"], "FieldsV1");
    EXPECT_FALSE(e.contains("subresource"));
    EXPECT_EQ(fs::FieldSet::fromFieldsV1(e["fieldsV1"]), fs::fieldsOf(cfg, deploySchema()));
    // New port items get their defaulted key field, as the apiserver's defaulting would.
    EXPECT_EQ(obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
}

TEST(Apply, ReapplyWithoutFieldRemovesIt) {
    json cfg = deployment();
    cfg["metadata"]["annotations"] = {{"note", "x"}};
    auto s = deploySchema();
    json live = fs::apply(nullptr, cfg, "sluice", false, s, kT0).object;
    json cfg2 = cfg;
    cfg2["metadata"].erase("annotations");
    cfg2["spec"]["template"]["spec"]["containers"][0]["env"].erase(1);    // drop env B
    cfg2["spec"]["template"]["spec"]["containers"][0]["ports"].erase(1);  // drop UDP port
    json out = fs::apply(live, cfg2, "sluice", false, s, kT1).object;
    EXPECT_FALSE(out["metadata"].contains("annotations")) << out["metadata"].dump();
    const json& c = out["spec"]["template"]["spec"]["containers"][0];
    ASSERT_EQ(c["env"].size(), 1u);
    EXPECT_EQ(c["env"][0]["name"], "A");
    ASSERT_EQ(c["ports"].size(), 1u);
    EXPECT_EQ(c["ports"][0]["containerPort"], 8080);
    EXPECT_EQ(fieldsOfManager(out, "sluice", "Apply"), fs::fieldsOf(cfg2, s));
}

TEST(Apply, RemovedContainerGoesWithItsUnownedDefaults) {
    auto s = deploySchema();
    json cfg = deployment();
    cfg["spec"]["template"]["spec"]["containers"].push_back({{"name", "side"}, {"image", "s:1"}});
    json live = fs::apply(nullptr, cfg, "sluice", false, s, kT0).object;
    // The server defaults a field nobody owns.
    live["spec"]["template"]["spec"]["containers"][1]["imagePullPolicy"] = "IfNotPresent";
    json out = fs::apply(live, deployment(), "sluice", false, s, kT1).object;
    ASSERT_EQ(out["spec"]["template"]["spec"]["containers"].size(), 1u);
    EXPECT_EQ(out["spec"]["template"]["spec"]["containers"][0]["name"], "web");
}

TEST(Apply, RemovedFieldOwnedByAnotherManagerStays) {
    auto s = deploySchema();
    json live = fs::apply(nullptr, deployment(), "sluice", false, s, kT0).object;
    // "other" applies the same replicas: shared ownership.
    json otherCfg = {{"apiVersion", "apps/v1"},
                     {"kind", "Deployment"},
                     {"metadata", {{"name", "web"}, {"namespace", "shop"}}},
                     {"spec", {{"replicas", 2}}}};
    live = fs::apply(live, otherCfg, "other", false, s, kT1).object;
    EXPECT_TRUE(fieldsOfManager(live, "other", "Apply").contains(kReplicas));
    EXPECT_TRUE(fieldsOfManager(live, "sluice", "Apply").contains(kReplicas));

    json cfg = deployment();
    cfg["spec"].erase("replicas");
    json out = fs::apply(live, cfg, "sluice", false, s, kT2).object;
    EXPECT_EQ(out["spec"]["replicas"], 2);
    EXPECT_FALSE(fieldsOfManager(out, "sluice", "Apply").contains(kReplicas));
    EXPECT_TRUE(fieldsOfManager(out, "other", "Apply").contains(kReplicas));
}

TEST(Apply, SharedOwnershipOnEqualValuesNoConflict) {
    auto s = deploySchema();
    json live = fs::recordUpdate(nullptr, deployment(3), "kubectl-create", s, kT0);
    json out = fs::apply(live, deployment(3), "sluice", false, s, kT1).object;
    EXPECT_TRUE(fieldsOfManager(out, "kubectl-create", "Update").contains(kReplicas));
    EXPECT_TRUE(fieldsOfManager(out, "sluice", "Apply").contains(kReplicas));
    // 1 and 1.0 are the same value.
    json cfg = deployment(3);
    cfg["spec"]["replicas"] = 3.0;
    EXPECT_NO_THROW(fs::apply(live, cfg, "sluice", false, s, kT1));
}

TEST(Apply, ConflictWithUpdateManagerThenForce) {
    auto s = deploySchema();
    json live = fs::apply(nullptr, deployment(2), "sluice", false, s, kT0).object;
    json scaled = live;
    scaled["spec"]["replicas"] = 5;
    live = fs::recordUpdate(live, scaled, "kube-controller-manager", s, kT1);
    EXPECT_TRUE(fieldsOfManager(live, "kube-controller-manager", "Update").contains(kReplicas));
    EXPECT_FALSE(fieldsOfManager(live, "sluice", "Apply").contains(kReplicas));

    try {
        fs::apply(live, deployment(3), "sluice", false, s, kT2);
        FAIL() << "expected a conflict";
    } catch (const fs::ApplyConflict& c) {
        ASSERT_EQ(c.conflicts().size(), 1u);
        EXPECT_EQ(c.conflicts()[0].manager, "kube-controller-manager");
        EXPECT_EQ(c.conflicts()[0].path, kReplicas);
        EXPECT_EQ(std::string(c.what()),
                  "Apply failed with 1 conflict: conflict with \"kube-controller-manager\" "
                  "using apps/v1: .spec.replicas");
    }
    json out = fs::apply(live, deployment(3), "sluice", true, s, kT2).object;
    EXPECT_EQ(out["spec"]["replicas"], 3);
    EXPECT_TRUE(fieldsOfManager(out, "sluice", "Apply").contains(kReplicas));
    // Its only field was taken: the entry is gone.
    std::vector<fs::ManagedFieldsEntry> st;
    EXPECT_EQ(entryOf(out, "kube-controller-manager", "Update", st), nullptr);
}

TEST(Apply, ConflictWithAnotherApplierListsEveryPath) {
    auto s = deploySchema();
    json live = fs::apply(nullptr, deployment(2), "alice", false, s, kT0).object;
    json cfg = deployment(4);
    cfg["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2";
    try {
        fs::apply(live, cfg, "bob", false, s, kT1);
        FAIL() << "expected a conflict";
    } catch (const fs::ApplyConflict& c) {
        ASSERT_EQ(c.conflicts().size(), 2u);
        EXPECT_EQ(c.conflicts()[0].manager, "alice");
        EXPECT_NE(std::string(c.what()).find("conflicts with \"alice\":"), std::string::npos);
        EXPECT_NE(
            std::string(c.what()).find("- .spec.template.spec.containers[name=\"web\"].image"),
            std::string::npos);
    }
    json out = fs::apply(live, cfg, "bob", true, s, kT1).object;
    fs::FieldSet alice = fieldsOfManager(out, "alice", "Apply");
    EXPECT_FALSE(alice.contains(kReplicas));
    EXPECT_FALSE(alice.contains(under(kContainer, {"f:image"})));
    EXPECT_TRUE(alice.contains(under(kContainer, {"f:name"})));  // equal values stay shared
    EXPECT_EQ(out["spec"]["template"]["spec"]["containers"][0]["image"], "web:2");
}

TEST(Apply, HpaScenarioReplicasKeptWhenApplierDropsThem) {
    auto s = deploySchema();
    json live = fs::apply(nullptr, deployment(2), "sluice", false, s, kT0).object;
    json scaled = live;
    scaled["spec"]["replicas"] = 7;
    live = fs::recordUpdate(live, scaled, "kube-controller-manager", s, kT1);
    json cfg = deployment();
    cfg["spec"].erase("replicas");
    json out = fs::apply(live, cfg, "sluice", false, s, kT2).object;
    EXPECT_EQ(out["spec"]["replicas"], 7);
    EXPECT_TRUE(fieldsOfManager(out, "kube-controller-manager", "Update").contains(kReplicas));
    EXPECT_FALSE(fieldsOfManager(out, "sluice", "Apply").contains(kReplicas));
    // Sorted as the apiserver sorts: Apply entries before Update entries.
    EXPECT_EQ(out["metadata"]["managedFields"][0]["operation"], "Apply");
    EXPECT_EQ(out["metadata"]["managedFields"][1]["operation"], "Update");
}

TEST(Apply, AssociativeListMergePreservesLiveOrderAndAppends) {
    auto s = deploySchema();
    json live = fs::recordUpdate(nullptr, deployment(), "creator", s, kT0);
    auto& env = live["spec"]["template"]["spec"]["containers"][0]["env"];
    env = json::parse(
        R"([{"name":"C","value":"c"},{"name":"A","value":"1"},{"name":"B","value":"2"}])");
    json cfg = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","namespace":"shop"},
      "spec":{"template":{"spec":{"containers":[{"name":"web",
        "env":[{"name":"D","value":"4"},{"name":"A","value":"1"}]}]}}}})");
    json out = fs::apply(live, cfg, "sluice", false, s, kT1).object;
    const json& merged = out["spec"]["template"]["spec"]["containers"][0]["env"];
    ASSERT_EQ(merged.size(), 4u) << merged.dump();
    EXPECT_EQ(merged[0]["name"], "C");
    EXPECT_EQ(merged[1]["name"], "A");
    EXPECT_EQ(merged[2]["name"], "B");
    EXPECT_EQ(merged[3]["name"], "D");
    // Untouched fields of the container survive the merge.
    EXPECT_EQ(out["spec"]["template"]["spec"]["containers"][0]["image"], "web:1");
    // Tolerations are atomic: replaced whole.
    live = out;
    live["spec"]["template"]["spec"]["tolerations"] = json::parse(R"([{"key":"a"},{"key":"b"}])");
    cfg["spec"]["template"]["spec"]["tolerations"] = json::parse(R"([{"key":"c"}])");
    out = fs::apply(live, cfg, "sluice", false, s, kT2).object;
    EXPECT_EQ(out["spec"]["template"]["spec"]["tolerations"], json::parse(R"([{"key":"c"}])"));
}

TEST(Apply, PortsMatchOnDefaultedProtocol) {
    auto s = deploySchema();
    json live = fs::apply(nullptr, deployment(), "sluice", false, s, kT0).object;
    ASSERT_EQ(live["spec"]["template"]["spec"]["containers"][0]["ports"].size(), 2u);
    json cfg = deployment();
    cfg["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] = "http";
    json out = fs::apply(live, cfg, "sluice", false, s, kT1).object;
    const json& ports = out["spec"]["template"]["spec"]["containers"][0]["ports"];
    ASSERT_EQ(ports.size(), 2u);
    EXPECT_EQ(ports[0]["name"], "http");
    EXPECT_EQ(ports[0]["protocol"], "TCP");
}

TEST(Apply, FinalizersAreASet) {
    auto s = fs::Schema::forKind("v1", "ConfigMap");
    json cm = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata", {{"name", "c"}, {"finalizers", {"a.io/x"}}}}};
    json live = fs::apply(nullptr, cm, "sluice", false, s, kT0).object;
    json other = {{"apiVersion", "v1"},
                  {"kind", "ConfigMap"},
                  {"metadata", {{"name", "c"}, {"finalizers", {"b.io/y"}}}}};
    live = fs::apply(live, other, "other", false, s, kT1).object;
    EXPECT_EQ(live["metadata"]["finalizers"], json({"a.io/x", "b.io/y"}));
    EXPECT_TRUE(fieldsOfManager(live, "other", "Apply")
                    .contains(P({"f:metadata", "f:finalizers", "v:\"b.io/y\""})));
    // sluice drops its finalizer: only that value goes.
    json mine = {{"apiVersion", "v1"},
                 {"kind", "ConfigMap"},
                 {"metadata", {{"name", "c"}}},
                 {"data", {{"k", "v"}}}};
    json out = fs::apply(live, mine, "sluice", false, s, kT2).object;
    EXPECT_EQ(out["metadata"]["finalizers"], json({"b.io/y"}));
    EXPECT_EQ(out["data"]["k"], "v");
}

TEST(Apply, StatusSubresourceSeparated) {
    auto s = deploySchema();
    json cfg = deployment();
    cfg["status"] = {{"replicas", 9}};
    json live = fs::apply(nullptr, cfg, "sluice", false, s, kT0).object;
    EXPECT_FALSE(live.contains("status"));  // reset on the main resource
    json st = {{"apiVersion", "apps/v1"},
               {"kind", "Deployment"},
               {"metadata", {{"name", "web"}}},
               {"status", {{"replicas", 2}}},
               {"spec", {{"replicas", 100}}}};
    json out = fs::apply(live, st, "kcm", false, s, kT1, "status").object;
    EXPECT_EQ(out["status"]["replicas"], 2);
    EXPECT_EQ(out["spec"]["replicas"], 2);
    std::vector<fs::ManagedFieldsEntry> storage;
    const auto* e = entryOf(out, "kcm", "Apply", storage);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->subresource, "status");
    EXPECT_EQ(e->fields.size(), 1u);
}

TEST(Apply, ObjectWithoutManagedFieldsGetsBeforeFirstApply) {
    auto s = deploySchema();
    json live = deployment(2);
    EXPECT_THROW(fs::apply(live, deployment(3), "sluice", false, s, kT0), fs::ApplyConflict);
    json out = fs::apply(live, deployment(2), "sluice", false, s, kT0).object;
    EXPECT_TRUE(fieldsOfManager(out, "before-first-apply", "Update").contains(kReplicas));
}

TEST(Apply, NullsInConfigAreUnset) {
    auto s = deploySchema();
    json cfg = deployment();
    cfg["spec"]["paused"] = nullptr;
    json out = fs::apply(nullptr, cfg, "sluice", false, s, kT0).object;
    EXPECT_FALSE(out["spec"].contains("paused"));
}

TEST(Apply, MapEmptiedByRemovalGoesToo) {
    auto s = fs::Schema::forKind("v1", "ConfigMap");
    json cm = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata", {{"name", "c"}, {"annotations", {{"a", "1"}}}}},
               {"data", {{"k", "v"}}}};
    json live = fs::apply(nullptr, cm, "sluice", false, s, kT0).object;
    cm["metadata"].erase("annotations");
    json out = fs::apply(live, cm, "sluice", false, s, kT1).object;
    EXPECT_FALSE(out["metadata"].contains("annotations")) << out.dump();
    EXPECT_EQ(out["metadata"]["name"], "c");
    EXPECT_EQ(out["data"]["k"], "v");
}

TEST(Apply, CustomResourceListMapUsesKeyDefaults) {
    json schema = json::parse(R"({"type":"object","properties":{"spec":{"type":"object",
      "properties":{"routes":{"type":"array","x-kubernetes-list-type":"map",
        "x-kubernetes-list-map-keys":["name","port"],
        "items":{"type":"object","properties":{"name":{"type":"string"},
          "port":{"type":"integer","default":80},"weight":{"type":"integer"}}}}}}}})");
    fs::Schema s = fs::Schema::fromOpenApi(schema);
    // Live as stored after defaulting: port filled in.
    json live = fs::recordUpdate(nullptr, json::parse(R"({"apiVersion":"x.io/v1","kind":"R",
      "metadata":{"name":"r"},"spec":{"routes":[{"name":"a","port":80,"weight":1},
      {"name":"a","port":8080,"weight":2}]}})"),
                                 "creator", s, kT0);
    json cfg = json::parse(R"({"apiVersion":"x.io/v1","kind":"R","metadata":{"name":"r"},
      "spec":{"routes":[{"name":"a","weight":5}]}})");
    EXPECT_THROW(fs::apply(live, cfg, "sluice", false, s, kT1), fs::ApplyConflict);
    json out = fs::apply(live, cfg, "sluice", true, s, kT1).object;
    ASSERT_EQ(out["spec"]["routes"].size(), 2u);
    EXPECT_EQ(out["spec"]["routes"][0]["weight"], 5);
    EXPECT_EQ(out["spec"]["routes"][1]["weight"], 2);
    EXPECT_TRUE(
        fieldsOfManager(out, "sluice", "Apply")
            .contains(P({"f:spec", "f:routes", "k:{\"name\":\"a\",\"port\":80}", "f:weight"})));
}

// ---------- recordUpdate ----------

TEST(RecordUpdate, CreateOwnsAllAndUpdateSteals) {
    auto s = deploySchema();
    json created = fs::recordUpdate(nullptr, deployment(), "kubectl", s, kT0);
    fs::FieldSet creator = fieldsOfManager(created, "kubectl", "Update");
    // Every field, plus the maps and lists the write created, as upstream's Update entries.
    EXPECT_EQ(creator.intersection(fs::fieldsOf(deployment(), s)), fs::fieldsOf(deployment(), s));
    EXPECT_TRUE(creator.contains(P({"f:metadata", "f:labels"})));
    EXPECT_TRUE(creator.contains(under(kContainer, {"f:ports"})));
    EXPECT_FALSE(creator.contains(P({"f:spec"})));
    EXPECT_EQ(creator.toFieldsV1()["f:metadata"],
              json::parse(R"({"f:labels":{".":{},"f:app":{}}})"));

    json changed = created;
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2";
    changed["spec"]["template"]["spec"]["containers"][0]["env"].erase(1);
    changed["metadata"]["labels"]["tier"] = "front";
    json out = fs::recordUpdate(created, changed, "editor", s, kT1);
    fs::FieldSet editor = fieldsOfManager(out, "editor", "Update");
    fs::FieldSet kubectl = fieldsOfManager(out, "kubectl", "Update");
    EXPECT_EQ(editor.size(), 2u) << editor.toFieldsV1().dump();
    EXPECT_TRUE(editor.contains(under(kContainer, {"f:image"})));
    EXPECT_TRUE(editor.contains(P({"f:metadata", "f:labels", "f:tier"})));
    EXPECT_FALSE(kubectl.contains(under(kContainer, {"f:image"})));
    EXPECT_FALSE(kubectl.contains(under(kContainer, {"f:env", "k:{\"name\":\"B\"}"})));
    EXPECT_FALSE(kubectl.contains(under(kContainer, {"f:env", "k:{\"name\":\"B\"}", "f:value"})));
    EXPECT_TRUE(kubectl.contains(under(kContainer, {"f:env", "k:{\"name\":\"A\"}", "f:value"})));

    // A no-op update neither adds an entry nor bumps times.
    json same = fs::recordUpdate(out, out, "noop", s, kT2);
    std::vector<fs::ManagedFieldsEntry> st;
    EXPECT_EQ(entryOf(same, "noop", "Update", st), nullptr);
    EXPECT_EQ(same["metadata"]["managedFields"], out["metadata"]["managedFields"]);
}

TEST(RecordUpdate, VanishedFieldsLeaveEverySet) {
    auto s = deploySchema();
    json live = fs::apply(nullptr, deployment(), "sluice", false, s, kT0).object;
    json edited = live;
    edited["spec"].erase("replicas");
    edited["metadata"]["labels"]["extra"] = "1";
    json out = fs::recordUpdate(live, edited, "kubectl-edit", s, kT1);
    EXPECT_FALSE(fieldsOfManager(out, "sluice", "Apply").contains(kReplicas));
    EXPECT_FALSE(fieldsOfManager(out, "kubectl-edit", "Update").contains(kReplicas));
    EXPECT_TRUE(fieldsOfManager(out, "kubectl-edit", "Update")
                    .contains(P({"f:metadata", "f:labels", "f:extra"})));
    // Nobody owns replicas any more: the next apply sets it without conflict.
    json again = fs::apply(out, deployment(4), "sluice", false, s, kT2).object;
    EXPECT_EQ(again["spec"]["replicas"], 4);
    EXPECT_EQ(again["metadata"]["labels"]["extra"], "1");
}

TEST(RecordUpdate, ManagedFieldsResetAndOverride) {
    auto s = deploySchema();
    json created = fs::recordUpdate(nullptr, deployment(), "kubectl", s, kT0);
    json reset = created;
    reset["metadata"]["managedFields"] = json::array({json::object()});
    EXPECT_FALSE(
        fs::recordUpdate(created, reset, "x", s, kT1)["metadata"].contains("managedFields"));
    json stripped = created;
    stripped["metadata"].erase("managedFields");
    json kept = fs::recordUpdate(created, stripped, "x", s, kT1);
    EXPECT_EQ(kept["metadata"]["managedFields"], created["metadata"]["managedFields"]);
}

TEST(RecordUpdate, SubresourceEntriesAreSeparate) {
    auto s = deploySchema();
    json created = fs::recordUpdate(nullptr, deployment(), "kubectl", s, kT0);
    json st = created;
    st["status"] = {{"readyReplicas", 2}};
    json out = fs::recordUpdate(created, st, "kcm", s, kT1, "status");
    std::vector<fs::ManagedFieldsEntry> storage;
    const auto* e = entryOf(out, "kcm", "Update", storage);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->subresource, "status");
    EXPECT_TRUE(e->fields.contains(P({"f:status", "f:readyReplicas"})));
    EXPECT_EQ(out["metadata"]["managedFields"].size(), 2u);
}

// ---------- large objects (speed is measured in bench/, not asserted here) ----------

TEST(LargeObjects, RepeatedApplyKeepsItemsAndOwnership) {
    auto s = deploySchema();
    json cfg = deployment();
    auto& containers = cfg["spec"]["template"]["spec"]["containers"];
    for (int i = 0; i < 30; ++i) {
        json c = containers[0];
        c["name"] = std::string("c").append(std::to_string(i));
        for (int j = 0; j < 10; ++j)
            c["env"].push_back({{"name", std::string("E").append(std::to_string(j))},
                                {"value", std::to_string(j)}});
        containers.push_back(c);
    }
    json live = fs::apply(nullptr, cfg, "sluice", false, s, kT0).object;
    for (int i = 0; i < 10; ++i) live = fs::apply(live, cfg, "sluice", false, s, kT1).object;
    EXPECT_EQ(live["spec"]["template"]["spec"]["containers"].size(), 31u);
    EXPECT_EQ(fieldsOfManager(live, "sluice", "Apply"), fs::fieldsOf(cfg, s));
}
