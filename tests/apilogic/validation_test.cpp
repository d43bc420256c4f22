#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "apilogic/apilogic.h"
#include "sluice/util/yaml_json.h"
#include "testutil/testutil.h"

namespace sluice::apilogic {
namespace {

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// openAPIV3Schema of `kind` at `version` from a CRD file of the shared third-party folder.
json crdSchema(const std::string& file, const std::string& kind, const std::string& version) {
    auto docs = yamlDocumentsToJson(readFile(testing::sharedPath("thirdparty-crds/" + file)));
    for (const auto& d : docs) {
        if (d.value("kind", "") != "CustomResourceDefinition" || d["spec"]["names"]["kind"] != kind)
            continue;
        for (const auto& v : d["spec"]["versions"])
            if (v["name"] == version) return v["schema"]["openAPIV3Schema"];
    }
    throw std::runtime_error("no " + kind + " " + version + " in " + file);
}

const json& httpRouteSchema() {
    static const json s = crdSchema("gateway-api-v1.6.1/httproutes.yaml", "HTTPRoute", "v1");
    return s;
}
const json& virtualServiceSchema() {
    static const json s = crdSchema("istio-1.29.6/networking-crds.yaml", "VirtualService", "v1");
    return s;
}

json weightedRoute() {
    return yamlToJson(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
  namespace: default
  labels: {app: web}
spec:
  parentRefs:
  - name: main-gateway
  hostnames: ["web.example.com"]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /}
    backendRefs:
    - {name: web-stable, port: 80, weight: 90}
    - {name: web-canary, port: 80, weight: 10}
)");
}

json weightedVirtualService() {
    return yamlToJson(R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: web
  namespace: default
spec:
  hosts: [web.default.svc.cluster.local]
  gateways: [mesh]
  http:
  - name: primary
    match:
    - uri: {prefix: /api}
      headers:
        x-canary: {exact: "true"}
    route:
    - destination: {host: web, subset: stable, port: {number: 80}}
      weight: 90
    - destination: {host: web, subset: canary, port: {number: 80}}
      weight: 10
    retries: {attempts: 3, perTryTimeout: 2s}
    timeout: 10s
)");
}

std::string describe(const ValidationResult& r) {
    std::string s;
    for (const auto& e : r.errors) s += e.reason + " " + e.field + " | " + e.message + "\n";
    for (const auto& u : r.unknownFields) s += "unknown " + u + "\n";
    return s;
}

const FieldCause* findCause(const ValidationResult& r, const std::string& field) {
    for (const auto& e : r.errors)
        if (e.field == field) return &e;
    return nullptr;
}

TEST(CrdValidation, AllSchemaPatternsCompileAsEcmaScript) {
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml");
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/istio-1.29.6/networking-crds.yaml");
    std::set<std::string> patterns;
    std::function<void(const json&)> walk = [&](const json& v) {
        if (v.is_object()) {
            if (v.contains("pattern") && v["pattern"].is_string())
                patterns.insert(v["pattern"].get<std::string>());
            for (const auto& [k, c] : v.items()) walk(c);
        } else if (v.is_array()) {
            for (const auto& c : v) walk(c);
        }
    };
    walk(httpRouteSchema());
    walk(virtualServiceSchema());
    ASSERT_GT(patterns.size(), 5u);
    std::vector<std::string> failed;
    for (const auto& p : patterns) {
        try {
            std::regex re(p, std::regex::ECMAScript);
        } catch (const std::regex_error&) {
            failed.push_back(p);
        }
    }
    EXPECT_TRUE(failed.empty()) << "uncompilable: " << (failed.empty() ? "" : failed.front());
}

TEST(CrdValidation, HttpRouteWithWeightedBackendsIsValidAndDefaulted) {
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml");
    auto r = validateCustomResource(weightedRoute(), httpRouteSchema());
    EXPECT_TRUE(r.errors.empty()) << describe(r);
    EXPECT_TRUE(r.unknownFields.empty()) << describe(r);
    EXPECT_TRUE(r.uncheckedPatterns.empty());
    EXPECT_GT(r.skippedCelRules, 0);
    // Defaults from the schema: parentRef group/kind, backendRef group/kind.
    EXPECT_EQ(r.object["spec"]["parentRefs"][0]["kind"], "Gateway");
    EXPECT_EQ(r.object["spec"]["parentRefs"][0]["group"], "gateway.networking.k8s.io");
    EXPECT_EQ(r.object["spec"]["rules"][0]["backendRefs"][1]["kind"], "Service");
    EXPECT_EQ(r.object["spec"]["rules"][0]["backendRefs"][1]["weight"], 10);
    EXPECT_EQ(r.object["metadata"]["labels"]["app"], "web");
}

TEST(CrdValidation, HttpRouteMissingWeightDefaultsToOne) {
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml");
    json route = weightedRoute();
    route["spec"]["rules"][0]["backendRefs"][0].erase("weight");
    auto r = validateCustomResource(route, httpRouteSchema());
    EXPECT_TRUE(r.errors.empty()) << describe(r);
    EXPECT_EQ(r.object["spec"]["rules"][0]["backendRefs"][0]["weight"], 1);
}

TEST(CrdValidation, HttpRouteWeightAsStringIsTypeError) {
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml");
    json route = weightedRoute();
    route["spec"]["rules"][0]["backendRefs"][1]["weight"] = "10";
    auto r = validateCustomResource(route, httpRouteSchema());
    const FieldCause* c = findCause(r, ".spec.rules[0].backendRefs[1].weight");
    ASSERT_NE(c, nullptr) << describe(r);
    EXPECT_EQ(c->reason, "FieldValueTypeInvalid");
    EXPECT_EQ(c->message,
              "spec.rules[0].backendRefs[1].weight: Invalid value: \"string\": "
              "spec.rules[0].backendRefs[1].weight "
              "in body must be of type integer: \"string\"");
}

TEST(CrdValidation, HttpRouteNegativeWeightBelowMinimum) {
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml");
    json route = weightedRoute();
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = -1;
    auto r = validateCustomResource(route, httpRouteSchema());
    ASSERT_EQ(r.errors.size(), 1u) << describe(r);
    EXPECT_EQ(r.errors[0].reason, "FieldValueInvalid");
    EXPECT_EQ(r.errors[0].field, ".spec.rules[0].backendRefs[0].weight");
    EXPECT_EQ(r.errors[0].message,
              "spec.rules[0].backendRefs[0].weight: Invalid value: -1: "
              "spec.rules[0].backendRefs[0].weight in body "
              "should be greater than or equal to 0");

    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1000001;
    r = validateCustomResource(route, httpRouteSchema());
    ASSERT_EQ(r.errors.size(), 1u) << describe(r);
    EXPECT_NE(r.errors[0].message.find("should be less than or equal to 1e+06"), std::string::npos)
        << r.errors[0].message;
}

TEST(CrdValidation, HttpRouteParentRefWithoutNameIsRequired) {
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml");
    json route = weightedRoute();
    route["spec"]["parentRefs"][0] = json{{"namespace", "infra"}};
    auto r = validateCustomResource(route, httpRouteSchema());
    const FieldCause* c = findCause(r, ".spec.parentRefs[0].name");
    ASSERT_NE(c, nullptr) << describe(r);
    EXPECT_EQ(c->reason, "FieldValueRequired");
    EXPECT_EQ(c->message, "spec.parentRefs[0].name: Required value");
}

TEST(CrdValidation, HttpRouteUnknownFieldIsPrunedAndReported) {
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml");
    json route = weightedRoute();
    route["spec"]["foo"] = "bar";
    route["spec"]["rules"][0]["backendRefs"][0]["colour"] = "blue";
    route["metadata"]["whatever"] = 1;  // metadata is never pruned
    auto r = validateCustomResource(route, httpRouteSchema());
    EXPECT_TRUE(r.errors.empty()) << describe(r);
    EXPECT_EQ(r.unknownFields,
              (std::vector<std::string>{".spec.rules[0].backendRefs[0].colour", ".spec.foo"}));
    EXPECT_FALSE(r.object["spec"].contains("foo"));
    EXPECT_FALSE(r.object["spec"]["rules"][0]["backendRefs"][0].contains("colour"));
    EXPECT_EQ(r.object["metadata"]["whatever"], 1);
}

TEST(CrdValidation, HttpRoutePatternEnumAndLengthViolations) {
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml");
    json route = weightedRoute();
    route["spec"]["hostnames"][0] = "Not_A_Host";
    route["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Glob";
    route["spec"]["parentRefs"][0]["name"] = std::string(300, 'a');
    auto r = validateCustomResource(route, httpRouteSchema());
    const FieldCause* host = findCause(r, ".spec.hostnames[0]");
    ASSERT_NE(host, nullptr) << describe(r);
    EXPECT_EQ(host->reason, "FieldValueInvalid");
    EXPECT_NE(host->message.find("spec.hostnames[0] in body should match '"), std::string::npos)
        << host->message;
    const FieldCause* type = findCause(r, ".spec.rules[0].matches[0].path.type");
    ASSERT_NE(type, nullptr) << describe(r);
    EXPECT_EQ(type->reason, "FieldValueNotSupported");
    EXPECT_EQ(type->message,
              "spec.rules[0].matches[0].path.type: Unsupported value: \"Glob\": supported values: "
              "\"Exact\", "
              "\"PathPrefix\", \"RegularExpression\"");
    const FieldCause* name = findCause(r, ".spec.parentRefs[0].name");
    ASSERT_NE(name, nullptr) << describe(r);
    EXPECT_EQ(name->reason, "FieldValueTooLong");
    EXPECT_EQ(name->message, "spec.parentRefs[0].name: Too long: may not be longer than 253");
}

TEST(CrdValidation, HttpRouteTooManyBackendRefs) {
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/gateway-api-v1.6.1/httproutes.yaml");
    json route = weightedRoute();
    json refs = json::array();
    for (int i = 0; i < 17; ++i) {
        std::string name = "b";
        name += std::to_string(i);  // not "b" + ...: g++ 12 -Wrestrict false positive
        refs.push_back({{"name", name}, {"port", 80}});
    }
    route["spec"]["rules"][0]["backendRefs"] = refs;
    auto r = validateCustomResource(route, httpRouteSchema());
    const FieldCause* c = findCause(r, ".spec.rules[0].backendRefs");
    ASSERT_NE(c, nullptr) << describe(r);
    EXPECT_EQ(c->reason, "FieldValueTooMany");
    EXPECT_EQ(c->message, "spec.rules[0].backendRefs: Too many: 17: must have at most 16 items");
}

TEST(CrdValidation, IstioVirtualServiceWithWeightedRoutesIsValid) {
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/istio-1.29.6/networking-crds.yaml");
    auto r = validateCustomResource(weightedVirtualService(), virtualServiceSchema());
    EXPECT_TRUE(r.errors.empty()) << describe(r);
    EXPECT_TRUE(r.unknownFields.empty()) << describe(r);
    EXPECT_EQ(r.object["spec"]["http"][0]["route"][1]["weight"], 10);
}

TEST(CrdValidation, IstioVirtualServiceBrokenWeightAndUnknownField) {
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/istio-1.29.6/networking-crds.yaml");
    json vs = weightedVirtualService();
    vs["spec"]["http"][0]["route"][0]["weight"] = "ninety";
    vs["spec"]["http"][0]["route"][1]["destination"]["hots"] = "typo";
    auto r = validateCustomResource(vs, virtualServiceSchema());
    const FieldCause* c = findCause(r, ".spec.http[0].route[0].weight");
    ASSERT_NE(c, nullptr) << describe(r);
    EXPECT_EQ(c->reason, "FieldValueTypeInvalid");
    EXPECT_NE(c->message.find("must be of type integer: \"string\""), std::string::npos);
    EXPECT_EQ(r.unknownFields, std::vector<std::string>{".spec.http[0].route[1].destination.hots"});

    json big = weightedVirtualService();
    big["spec"]["http"][0]["route"][0]["weight"] = 3000000000LL;  // format int32
    r = validateCustomResource(big, virtualServiceSchema());
    ASSERT_NE(findCause(r, ".spec.http[0].route[0].weight"), nullptr) << describe(r);
}

TEST(CrdValidation, IstioOneOfRejectsTwoUriMatchKinds) {
    SLUICE_SKIP_WITHOUT_SHARED("thirdparty-crds/istio-1.29.6/networking-crds.yaml");
    json vs = weightedVirtualService();
    vs["spec"]["http"][0]["match"][0]["uri"] = {{"prefix", "/api"}, {"exact", "/api"}};
    auto r = validateCustomResource(vs, virtualServiceSchema());
    const FieldCause* c = findCause(r, ".spec.http[0].match[0].uri");
    ASSERT_NE(c, nullptr) << describe(r);
    EXPECT_NE(c->message.find("(oneOf)"), std::string::npos) << c->message;
}

const json kSchema = R"({
  "type":"object",
  "properties":{
    "apiVersion":{"type":"string"},"kind":{"type":"string"},"metadata":{"type":"object"},
    "spec":{"type":"object","required":["size"],
      "x-kubernetes-validations":[{"rule":"self.size > 0"}],
      "properties":{
        "size":{"type":"integer","minimum":1,"exclusiveMaximum":true,"maximum":10},
        "ratio":{"type":"number","multipleOf":0.5},
        "mode":{"type":"string","default":"auto","enum":["auto","manual"]},
        "port":{"x-kubernetes-int-or-string":true},
        "note":{"type":"string","nullable":true},
        "flag":{"type":"boolean"},
        "when":{"type":"string","format":"date-time"},
        "tags":{"type":"array","items":{"type":"string"},"x-kubernetes-list-type":"set","minItems":1},
        "items":{"type":"array","x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["name"],
                 "items":{"type":"object","required":["name"],"properties":{
                    "name":{"type":"string"},"v":{"type":"integer","default":7}}}},
        "labels":{"type":"object","additionalProperties":{"type":"string"},"maxProperties":2},
        "raw":{"type":"object","x-kubernetes-preserve-unknown-fields":true,
               "properties":{"known":{"type":"integer"}}},
        "template":{"type":"object","x-kubernetes-embedded-resource":true,
                    "properties":{"spec":{"type":"object","properties":{"a":{"type":"string"}}}}}
      }},
    "status":{"type":"object","x-kubernetes-preserve-unknown-fields":true}
  }
})"_json;

json baseObject() {
    return R"({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":3}})"_json;
}

TEST(CrdValidation, DefaultsNullsAndPreservedFields) {
    json o = baseObject();
    o["spec"]["note"] = nullptr;
    o["spec"]["flag"] = nullptr;  // not nullable, no default: dropped
    o["spec"]["items"] = R"([{"name":"a"},{"name":"b","v":1}])"_json;
    o["spec"]["raw"] = R"({"known":1,"anything":{"x":1}})"_json;
    o["spec"]["template"] =
        R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"a":"b"}},"spec":{"a":"x","b":"y"}})"_json;
    o["status"] = R"({"free":"form"})"_json;
    auto r = validateCustomResource(o, kSchema);
    EXPECT_TRUE(r.errors.empty()) << describe(r);
    EXPECT_EQ(r.object["spec"]["mode"], "auto");
    EXPECT_TRUE(r.object["spec"]["note"].is_null());
    EXPECT_FALSE(r.object["spec"].contains("flag"));
    EXPECT_EQ(r.object["spec"]["items"][0]["v"], 7);
    EXPECT_EQ(r.object["spec"]["items"][1]["v"], 1);
    EXPECT_EQ(r.object["spec"]["raw"]["anything"]["x"], 1);
    EXPECT_EQ(r.object["spec"]["template"]["metadata"]["labels"]["a"], "b");
    EXPECT_EQ(r.unknownFields, std::vector<std::string>{".spec.template.spec.b"});
    EXPECT_EQ(r.object["status"]["free"], "form");
    EXPECT_EQ(r.skippedCelRules, 1);
}

TEST(CrdValidation, ScalarAndCollectionConstraints) {
    json o = baseObject();
    o["spec"]["size"] = 10;  // exclusive maximum
    o["spec"]["ratio"] = 0.3;
    o["spec"]["port"] = true;
    o["spec"]["when"] = "yesterday";
    o["spec"]["tags"] = R"(["a","a"])"_json;
    o["spec"]["items"] = R"([{"name":"a"},{"name":"a"}])"_json;
    o["spec"]["labels"] = R"({"a":"1","b":"2","c":3})"_json;
    o["kind"] = 5;
    auto r = validateCustomResource(o, kSchema);
    auto expect = [&](const std::string& field, const std::string& reason,
                      const std::string& fragment) {
        const FieldCause* c = findCause(r, field);
        ASSERT_NE(c, nullptr) << field << "\n" << describe(r);
        EXPECT_EQ(c->reason, reason) << field;
        EXPECT_NE(c->message.find(fragment), std::string::npos) << c->message;
    };
    expect(".spec.size", "FieldValueInvalid",
           "spec.size: Invalid value: 10: spec.size in body should be less than 10");
    expect(".spec.ratio", "FieldValueInvalid", "should be a multiple of 0.5");
    expect(".spec.port", "FieldValueTypeInvalid", "must be of type integer-or-string");
    expect(".spec.when", "FieldValueInvalid", "must be of type date-time: \"yesterday\"");
    expect(".spec.tags[1]", "FieldValueDuplicate", "spec.tags[1]: Duplicate value: \"a\"");
    expect(".spec.items[1]", "FieldValueDuplicate", "Duplicate value: {\"name\":\"a\"}");
    expect(".spec.labels", "FieldValueTooMany", "Too many: 3: must have at most 2 items");
    expect(".spec.labels.c", "FieldValueTypeInvalid", "must be of type string: \"integer\"");
    expect(".kind", "FieldValueTypeInvalid", "kind in body must be of type string");

    json missing = baseObject();
    missing["spec"].erase("size");
    missing["spec"]["tags"] = json::array();
    r = validateCustomResource(missing, kSchema);
    expect(".spec.size", "FieldValueRequired", "spec.size: Required value");
    expect(".spec.tags", "FieldValueInvalid", "should have at least 1 items");
}

TEST(CrdValidation, UncompilablePatternIsRecordedNotFailed) {
    json schema = R"({"type":"object","properties":{"spec":{"type":"object","properties":{
        "a":{"type":"string","pattern":"(?i)^abc$"},
        "b":{"type":"string","pattern":"^[a-z]+$"}}}}})"_json;
    json o = R"({"spec":{"a":"ABC","b":"Nope1"}})"_json;
    auto r = validateCustomResource(o, schema);
    ASSERT_EQ(r.errors.size(), 1u) << describe(r);
    EXPECT_EQ(r.errors[0].message,
              "spec.b: Invalid value: \"Nope1\": spec.b in body should match '^[a-z]+$'");
    EXPECT_EQ(r.uncheckedPatterns, std::vector<std::string>{"(?i)^abc$"});
}

}  // namespace
}  // namespace sluice::apilogic
