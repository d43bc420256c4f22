#include <gtest/gtest.h>

#include "apilogic/apilogic.h"

namespace sluice::apilogic {
namespace {

const std::string kNow = "2024-05-01T12:00:00Z";

std::vector<std::string> columnNames(const json& table) {
    std::vector<std::string> out;
    for (const auto& c : table["columnDefinitions"]) out.push_back(c["name"].get<std::string>());
    return out;
}

TEST(Age, RendersLikeKubectl) {
    EXPECT_EQ(humanDuration(5), "5s");
    EXPECT_EQ(humanDuration(119), "119s");
    EXPECT_EQ(humanDuration(182), "3m2s");
    EXPECT_EQ(humanDuration(240), "4m");
    EXPECT_EQ(humanDuration(45 * 60), "45m");
    EXPECT_EQ(humanDuration(4 * 3600), "4h");
    EXPECT_EQ(humanDuration(4 * 3600 + 300), "4h5m");
    EXPECT_EQ(humanDuration(20 * 3600), "20h");
    EXPECT_EQ(humanDuration(2 * 86400), "2d");
    EXPECT_EQ(humanDuration(3 * 86400 + 7200), "3d2h");
    EXPECT_EQ(humanDuration(100 * 86400), "100d");
    EXPECT_EQ(humanDuration(-1), "0s");
    EXPECT_EQ(humanDuration(-5), "<invalid>");
    EXPECT_EQ(formatAge("2024-05-01T11:59:55Z", kNow), "5s");
    EXPECT_EQ(formatAge("2024-05-01T13:00:00+02:00", kNow), "60m");  // minutes up to 3h
    EXPECT_EQ(formatAge("2024-05-01T11:56:58.123456Z", kNow), "3m2s");
    EXPECT_EQ(formatAge("garbage", kNow), "<unknown>");
}

TEST(JsonPath, PrinterColumnSubset) {
    json o = R"({"metadata":{"name":"x","labels":{"app.kubernetes.io/name":"web"}},
      "spec":{"hostnames":["a","b"],"rules":[{"backendRefs":[{"name":"s","weight":90},{"name":"c","weight":10}]}]},
      "status":{"conditions":[{"type":"Accepted","status":"True"},{"type":"Ready","status":"False"}]}})"_json;
    EXPECT_EQ(evalJsonPath(o, ".metadata.name"), std::vector<json>{"x"});
    EXPECT_EQ(evalJsonPath(o, "{.metadata.name}"), std::vector<json>{"x"});
    EXPECT_EQ(evalJsonPath(o, ".spec.hostnames[1]"), std::vector<json>{"b"});
    EXPECT_EQ(evalJsonPath(o, ".spec.hostnames[-1]"), std::vector<json>{"b"});
    EXPECT_EQ(evalJsonPath(o, ".spec.rules[*].backendRefs[*].weight"), (std::vector<json>{90, 10}));
    EXPECT_EQ(evalJsonPath(o, ".status.conditions[?(@.type==\"Ready\")].status"),
              std::vector<json>{"False"});
    EXPECT_EQ(evalJsonPath(o, ".status.conditions[?(@.type=='Accepted')].status"),
              std::vector<json>{"True"});
    EXPECT_EQ(evalJsonPath(o, ".spec.rules[0].backendRefs[?(@.weight>50)].name"),
              std::vector<json>{"s"});
    EXPECT_EQ(evalJsonPath(o, ".metadata.labels['app.kubernetes.io/name']"),
              std::vector<json>{"web"});
    EXPECT_EQ(evalJsonPath(o, ".metadata.labels.app\\.kubernetes\\.io/name"),
              std::vector<json>{"web"});
    EXPECT_TRUE(evalJsonPath(o, ".spec.missing.deeper").empty());
    EXPECT_TRUE(evalJsonPath(o, ".spec.hostnames[5]").empty());
    EXPECT_THROW(evalJsonPath(o, ".spec.hostnames[abc]"), std::invalid_argument);
}

TEST(Table, CrdPrinterColumnsAndPartialMetadata) {
    json columns = R"([
      {"name":"Hostnames","type":"string","jsonPath":".spec.hostnames"},
      {"name":"Replicas","type":"integer","jsonPath":".spec.replicas","priority":1},
      {"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"},
      {"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}
    ])"_json;
    json obj = R"({"apiVersion":"gateway.networking.k8s.io/v1","kind":"HTTPRoute",
      "metadata":{"name":"web","namespace":"default","creationTimestamp":"2024-05-01T11:56:58Z","resourceVersion":"7"},
      "spec":{"hostnames":["a.example.com"],"replicas":3},
      "status":{"conditions":[{"type":"Ready","status":"True"}]}})"_json;
    json t = buildTable({obj}, columns, "Metadata", kNow, "42", "next-page");
    EXPECT_EQ(t["kind"], "Table");
    EXPECT_EQ(t["apiVersion"], "meta.k8s.io/v1");
    EXPECT_EQ(t["metadata"], R"({"resourceVersion":"42","continue":"next-page"})"_json);
    EXPECT_EQ(columnNames(t),
              (std::vector<std::string>{"Name", "Hostnames", "Replicas", "Ready", "Age"}));
    EXPECT_EQ(t["columnDefinitions"][0]["format"], "name");
    EXPECT_EQ(t["columnDefinitions"][2]["priority"], 1);
    EXPECT_EQ(t["columnDefinitions"][4]["type"], "date");
    ASSERT_EQ(t["rows"].size(), 1u);
    EXPECT_EQ(t["rows"][0]["cells"], R"(["web","[\"a.example.com\"]",3,"True","3m2s"])"_json);
    EXPECT_EQ(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    EXPECT_EQ(t["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1");
    EXPECT_EQ(t["rows"][0]["object"]["metadata"]["resourceVersion"], "7");
    EXPECT_FALSE(t["rows"][0]["object"].contains("spec"));

    json full = buildTable({obj}, columns, "Object", kNow, "42", "");
    EXPECT_EQ(full["rows"][0]["object"], obj);
    EXPECT_FALSE(full["metadata"].contains("continue"));
    json none = buildTable({obj}, columns, "None", kNow, "42", "");
    EXPECT_FALSE(none["rows"][0].contains("object"));

    json missing = obj;
    missing.erase("status");
    EXPECT_TRUE(
        buildTable({missing}, columns, "None", kNow, "1", "")["rows"][0]["cells"][3].is_null());
}

TEST(Table, UnknownKindHasNameAndAge) {
    json obj =
        R"({"kind":"Widget","metadata":{"name":"w","creationTimestamp":"2024-04-29T12:00:00Z"}})"_json;
    json t = buildTable({obj}, json::array(), "Metadata", kNow, "1", "");
    EXPECT_EQ(columnNames(t), (std::vector<std::string>{"Name", "Age"}));
    EXPECT_EQ(t["rows"][0]["cells"], R"(["w","2d"])"_json);
    json empty = buildTable({}, json::array(), "Metadata", kNow, "1", "", "Deployment");
    EXPECT_EQ(columnNames(empty)[1], "Ready");
    EXPECT_TRUE(empty["rows"].empty());
}

TEST(Table, Deployments) {
    json d = R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","creationTimestamp":"2024-05-01T08:00:00Z"},
      "spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},
              "template":{"spec":{"containers":[{"name":"app","image":"web:1"},{"name":"side","image":"s:2"}]}}},
      "status":{"readyReplicas":2,"updatedReplicas":3,"availableReplicas":2}})"_json;
    json t = buildTable({d}, nullptr, "None", kNow, "1", "");
    EXPECT_EQ(columnNames(t),
              (std::vector<std::string>{"Name", "Ready", "Up-to-date", "Available", "Age",
                                        "Containers", "Images", "Selector"}));
    EXPECT_EQ(t["rows"][0]["cells"],
              R"(["web","2/3",3,2,"4h","app,side","web:1,s:2","app=web"])"_json);
}

TEST(Table, PodsAndStatusReasons) {
    json running =
        R"({"kind":"Pod","metadata":{"name":"p1","creationTimestamp":"2024-05-01T11:59:00Z"},
      "spec":{"containers":[{"name":"a"},{"name":"b"}],"nodeName":"node-1"},
      "status":{"phase":"Running","podIP":"10.0.0.5","containerStatuses":[
        {"name":"a","ready":true,"restartCount":2,"state":{"running":{}}},
        {"name":"b","ready":false,"restartCount":1,"state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}})"_json;
    json t = buildTable({running}, json::array(), "None", kNow, "1", "");
    EXPECT_EQ(columnNames(t),
              (std::vector<std::string>{"Name", "Ready", "Status", "Restarts", "Age", "IP", "Node",
                                        "Nominated Node", "Readiness Gates"}));
    EXPECT_EQ(
        t["rows"][0]["cells"],
        R"(["p1","1/2","CrashLoopBackOff","3","60s","10.0.0.5","node-1","<none>","<none>"])"_json);

    json terminating = running;
    terminating["metadata"]["deletionTimestamp"] = "2024-05-01T11:59:59Z";
    EXPECT_EQ(
        buildTable({terminating}, json::array(), "None", kNow, "1", "")["rows"][0]["cells"][2],
        "Terminating");
}

TEST(Table, ServicesNamespacesConfigMapsSecrets) {
    json lb =
        R"({"kind":"Service","metadata":{"name":"web","creationTimestamp":"2024-05-01T11:00:00Z"},
      "spec":{"type":"LoadBalancer","clusterIP":"10.96.0.10","selector":{"app":"web"},
              "ports":[{"port":80,"nodePort":30080,"protocol":"TCP"},{"port":53,"protocol":"UDP"}]},
      "status":{"loadBalancer":{"ingress":[{"ip":"127.0.0.1"}]}}})"_json;
    json t = buildTable({lb}, json::array(), "None", kNow, "1", "");
    EXPECT_EQ(columnNames(t), (std::vector<std::string>{"Name", "Type", "Cluster-IP", "External-IP",
                                                        "Port(s)", "Age", "Selector"}));
    EXPECT_EQ(
        t["rows"][0]["cells"],
        R"(["web","LoadBalancer","10.96.0.10","127.0.0.1","80:30080/TCP,53/UDP","60m","app=web"])"_json);
    json pending = lb;
    pending.erase("status");
    EXPECT_EQ(buildTable({pending}, json::array(), "None", kNow, "1", "")["rows"][0]["cells"][3],
              "<pending>");

    json ns =
        R"({"kind":"Namespace","metadata":{"name":"prod","creationTimestamp":"2024-05-01T11:59:58Z"},
                  "status":{"phase":"Terminating"}})"_json;
    EXPECT_EQ(buildTable({ns}, json::array(), "None", kNow, "1", "")["rows"][0]["cells"],
              R"(["prod","Terminating","2s"])"_json);

    json cm =
        R"({"kind":"ConfigMap","metadata":{"name":"c","creationTimestamp":"2024-05-01T11:59:58Z"},
                  "data":{"a":"1","b":"2"},"binaryData":{"c":"AA=="}})"_json;
    EXPECT_EQ(buildTable({cm}, json::array(), "None", kNow, "1", "")["rows"][0]["cells"],
              R"(["c",3,"2s"])"_json);

    json secret =
        R"({"kind":"Secret","type":"kubernetes.io/tls","metadata":{"name":"s","creationTimestamp":"2024-05-01T11:59:58Z"},
                      "data":{"tls.crt":"","tls.key":""}})"_json;
    json st = buildTable({secret}, json::array(), "None", kNow, "1", "");
    EXPECT_EQ(columnNames(st), (std::vector<std::string>{"Name", "Type", "Data", "Age"}));
    EXPECT_EQ(st["rows"][0]["cells"], R"(["s","kubernetes.io/tls",2,"2s"])"_json);
}

TEST(Table, JobsStatefulSetsReplicaSetsCrdsLeasesEvents) {
    json job = R"({"kind":"Job","metadata":{"name":"j","creationTimestamp":"2024-05-01T11:50:00Z"},
      "spec":{"completions":2,"template":{"spec":{"containers":[{"name":"c","image":"i"}]}}},
      "status":{"succeeded":2,"startTime":"2024-05-01T11:50:00Z","completionTime":"2024-05-01T11:50:30Z",
                "conditions":[{"type":"Complete","status":"True"}]}})"_json;
    json jt = buildTable({job}, json::array(), "None", kNow, "1", "");
    EXPECT_EQ(columnNames(jt)[1], "Status");
    EXPECT_EQ(jt["rows"][0]["cells"][1], "Complete");
    EXPECT_EQ(jt["rows"][0]["cells"][2], "2/2");
    EXPECT_EQ(jt["rows"][0]["cells"][3], "30s");
    EXPECT_EQ(jt["rows"][0]["cells"][4], "10m");

    json sts =
        R"({"kind":"StatefulSet","metadata":{"name":"db"},"spec":{"replicas":3},"status":{"readyReplicas":1}})"_json;
    EXPECT_EQ(buildTable({sts}, json::array(), "None", kNow, "1", "")["rows"][0]["cells"][1],
              "1/3");

    json rs = R"({"kind":"ReplicaSet","metadata":{"name":"web-abc"},"spec":{"replicas":2},
                  "status":{"replicas":2,"readyReplicas":1}})"_json;
    json rt = buildTable({rs}, json::array(), "None", kNow, "1", "");
    EXPECT_EQ(columnNames(rt)[1], "Desired");
    EXPECT_EQ(rt["rows"][0]["cells"][1], 2);
    EXPECT_EQ(rt["rows"][0]["cells"][3], 1);

    json crd = R"({"kind":"CustomResourceDefinition","metadata":{"name":"widgets.example.com",
                   "creationTimestamp":"2024-05-01T10:00:00Z"}})"_json;
    json ct = buildTable({crd}, json::array(), "None", kNow, "1", "");
    EXPECT_EQ(columnNames(ct), (std::vector<std::string>{"Name", "Created At"}));
    EXPECT_EQ(ct["rows"][0]["cells"][1], "2024-05-01T10:00:00Z");

    json lease =
        R"({"kind":"Lease","metadata":{"name":"sluice-leader","creationTimestamp":"2024-05-01T11:59:00Z"},
                     "spec":{"holderIdentity":"pod-a"}})"_json;
    EXPECT_EQ(buildTable({lease}, json::array(), "None", kNow, "1", "")["rows"][0]["cells"],
              R"(["sluice-leader","pod-a","60s"])"_json);

    json ev =
        R"({"kind":"Event","metadata":{"name":"e1","creationTimestamp":"2024-05-01T11:00:00Z"},
      "type":"Warning","reason":"BackOff","message":"Back-off restarting",
      "involvedObject":{"kind":"Pod","name":"p1"},"lastTimestamp":"2024-05-01T11:59:30Z","count":4})"_json;
    json et = buildTable({ev}, json::array(), "None", kNow, "1", "");
    EXPECT_EQ(columnNames(et)[0], "Last Seen");
    EXPECT_EQ(et["rows"][0]["cells"][0], "30s");
    EXPECT_EQ(et["rows"][0]["cells"][3], "pod/p1");
    EXPECT_EQ(et["rows"][0]["cells"][6], "Back-off restarting");
    EXPECT_EQ(et["rows"][0]["cells"][8], "4");
}

}  // namespace
}  // namespace sluice::apilogic
