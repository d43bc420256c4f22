// kube-apiserver's update rules for built-in kinds with immutable fields, and the
// autoscaling/v1 Scale view of workloads.
#include <algorithm>
#include <cmath>
#include <map>

#include "apilogic/apilogic.h"

#include "sluice/util/base64.h"

namespace sluice::apilogic {

namespace {

const json kNull = nullptr;

const json& at(const json& obj, std::initializer_list<const char*> path) {
    const json* cur = &obj;
    for (const char* key : path) {
        if (!cur->is_object()) return kNull;
        auto it = cur->find(key);
        if (it == cur->end()) return kNull;
        cur = &*it;
    }
    return *cur;
}

std::string strAt(const json& obj, std::initializer_list<const char*> path,
                  const std::string& dflt = "") {
    const json& v = at(obj, path);
    return v.is_string() && !v.get_ref<const std::string&>().empty() ? v.get<std::string>() : dflt;
}

// apimachinery's semantic equality treats nil and empty slices and maps alike; JSON drops
// nulls the same way. Empty objects stay: an empty struct differs from a nil pointer.
json semantic(const json& v) {
    if (v.is_object()) {
        json out = json::object();
        for (const auto& [k, x] : v.items()) {
            if (x.is_null() || (x.is_array() && x.empty())) continue;
            out[k] = semantic(x);
        }
        return out;
    }
    if (v.is_array()) {
        json out = json::array();
        for (const auto& x : v) out.push_back(semantic(x));
        return out;
    }
    if (v.is_number_float()) {
        const double d = v.get<double>();
        if (std::abs(d) < 9.0e15 && std::trunc(d) == d) return static_cast<long long>(d);
    }
    return v;
}
bool semanticEqual(const json& a, const json& b) {
    return semantic(a) == semantic(b);
}

// Go's %q, close enough for ASCII values.
std::string goQuote(const std::string& s) {
    return json(s).dump();
}

std::string goStringMap(const json& m) {
    if (!m.is_object()) return "map[string]string(nil)";
    std::string out = "map[string]string{";
    bool first = true;
    for (const auto& [k, v] : m.items()) {  // nlohmann orders keys, as %#v does
        out += (first ? "" : ", ") + goQuote(k) + ":" +
               goQuote(v.is_string() ? v.get<std::string>() : v.dump());
        first = false;
    }
    return out + "}";
}

std::string goStringSlice(const json& a) {
    if (!a.is_array()) return "[]string(nil)";
    std::string out = "[]string{";
    for (size_t i = 0; i < a.size(); ++i)
        out += (i ? ", " : "") + goQuote(a[i].is_string() ? a[i].get<std::string>() : a[i].dump());
    return out + "}";
}

// field.Invalid's rendering of a value: strings quoted, numbers and booleans plain, a nil
// pointer as "null", structs as %#v (simplified to the type name and the JSON for large ones).
std::string renderValue(const json& v, const std::string& goType = "") {
    if (v.is_null()) return "\"null\"";
    if (v.is_string()) return goQuote(v.get<std::string>());
    if (v.is_number() || v.is_boolean()) return v.dump();
    return goType + v.dump();
}

FieldCause immutable(const std::string& field, const std::string& renderedValue) {
    return {"FieldValueInvalid", "Invalid value: " + renderedValue + ": field is immutable", field};
}

void checkImmutable(std::vector<FieldCause>& out, const std::string& field, const json& oldV,
                    const json& newV, const std::string& rendered) {
    if (!semanticEqual(oldV, newV)) out.push_back(immutable(field, rendered));
}

void checkSelector(std::vector<FieldCause>& out, const json& oldObj, const json& newObj) {
    const json& o = at(oldObj, {"spec", "selector"});
    const json& n = at(newObj, {"spec", "selector"});
    checkImmutable(out, "spec.selector", o, n, goLabelSelector(n));
}

void checkStatefulSet(std::vector<FieldCause>& out, const json& oldObj, const json& newObj) {
    // Only these spec fields may change; everything else (selector, serviceName,
    // volumeClaimTemplates, podManagementPolicy, ...) is fixed at creation.
    auto fixedPart = [](const json& obj) {
        json spec = at(obj, {"spec"}).is_object() ? obj["spec"] : json::object();
        for (const char* k :
             {"replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
              "persistentVolumeClaimRetentionPolicy", "minReadySeconds"})
            spec.erase(k);
        if (!spec.contains("podManagementPolicy")) spec["podManagementPolicy"] = "OrderedReady";
        return spec;
    };
    if (!semanticEqual(fixedPart(oldObj), fixedPart(newObj)))
        out.push_back({"FieldValueForbidden",
                       "Forbidden: updates to statefulset spec for fields other than 'replicas', "
                       "'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
                       "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                       "forbidden",
                       "spec"});
}

void checkJob(std::vector<FieldCause>& out, const json& oldObj, const json& newObj) {
    checkSelector(out, oldObj, newObj);
    json oldTemplate = at(oldObj, {"spec", "template"});
    const json& newTemplate = at(newObj, {"spec", "template"});
    // A suspended Job that never started may still change its scheduling directives (so a
    // queueing controller can place it).
    const bool suspended = at(oldObj, {"spec", "suspend"}) == true;
    const bool started = !at(oldObj, {"status", "startTime"}).is_null();
    if (suspended && !started && oldTemplate.is_object() && newTemplate.is_object()) {
        auto carry = [&](std::initializer_list<const char*> path) {
            const json& v = at(newTemplate, path);
            json* dst = &oldTemplate;
            std::vector<const char*> keys(path);
            for (size_t i = 0; i + 1 < keys.size(); ++i) dst = &(*dst)[keys[i]];
            if (v.is_null())
                dst->erase(keys.back());
            else
                (*dst)[keys.back()] = v;
        };
        carry({"metadata", "labels"});
        carry({"metadata", "annotations"});
        carry({"spec", "nodeSelector"});
        carry({"spec", "tolerations"});
        carry({"spec", "schedulingGates"});
        carry({"spec", "affinity"});
    }
    checkImmutable(out, "spec.template", oldTemplate, newTemplate,
                   renderValue(newTemplate, "core.PodTemplateSpec"));
    const std::string oldMode = strAt(oldObj, {"spec", "completionMode"}, "NonIndexed");
    const std::string newMode = strAt(newObj, {"spec", "completionMode"}, "NonIndexed");
    if (oldMode != newMode) out.push_back(immutable("spec.completionMode", goQuote(newMode)));
    const json& newPolicy = at(newObj, {"spec", "podFailurePolicy"});
    checkImmutable(out, "spec.podFailurePolicy", at(oldObj, {"spec", "podFailurePolicy"}),
                   newPolicy, renderValue(newPolicy, "batch.PodFailurePolicy"));
}

std::vector<std::string> stringList(const json& v) {
    std::vector<std::string> out;
    if (v.is_array())
        for (const auto& x : v)
            if (x.is_string()) out.push_back(x.get<std::string>());
    return out;
}

// spec.clusterIPs, or the single spec.clusterIP it defaults from (the server leaves
// clusterIPs unset when a manifest only names clusterIP).
std::vector<std::string> clusterIPsOf(const json& svc) {
    auto ips = stringList(at(svc, {"spec", "clusterIPs"}));
    const std::string ip = strAt(svc, {"spec", "clusterIP"});
    if (ips.empty() && !ip.empty()) ips.push_back(ip);
    return ips;
}

std::string goStrings(const std::vector<std::string>& v) {
    json a = json::array();
    for (const auto& s : v) a.push_back(s);
    return goStringSlice(a);
}

// validateUpgradeDowngradeClusterIPs: the primary address never changes once allocated; a
// secondary one may only be added or released.
void checkServiceClusterIPs(std::vector<FieldCause>& out, const json& oldObj, const json& newObj) {
    if (strAt(oldObj, {"spec", "type"}) == "ExternalName" ||
        strAt(newObj, {"spec", "type"}) == "ExternalName")
        return;
    if (strAt(oldObj, {"spec", "clusterIP"}) == "None" &&
        strAt(newObj, {"spec", "clusterIP"}) == "None")
        return;
    const auto oldIps = clusterIPsOf(oldObj);
    const auto newIps = clusterIPsOf(newObj);
    const std::string rendered = newIps.empty() ? "[]string(nil)" : goStrings(newIps);
    auto invalid = [&](const std::string& why) {
        out.push_back(
            {"FieldValueInvalid", "Invalid value: " + rendered + ": " + why, "spec.clusterIPs[0]"});
    };
    if (oldIps.size() == newIps.size()) {
        for (size_t i = 0; i < oldIps.size(); ++i)
            if (oldIps[i] != newIps[i])
                out.push_back({"FieldValueInvalid",
                               "Invalid value: " + rendered + ": may not change once set",
                               "spec.clusterIPs[" + std::to_string(i) + "]"});
    } else if (oldIps.size() > newIps.size()) {
        if (newIps.empty())
            invalid("primary clusterIP can not be unset");
        else if (newIps[0] != oldIps[0])
            invalid("may not change once set");
        if (newIps.size() == 1 && strAt(newObj, {"spec", "ipFamilyPolicy"}) != "SingleStack")
            invalid(
                "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary "
                "clusterIP");
    } else if (!oldIps.empty() && newIps[0] != oldIps[0]) {
        invalid("may not change once set");
    }
}

void checkImmutableData(std::vector<FieldCause>& out, const json& oldObj, const json& newObj,
                        bool secret) {
    if (at(oldObj, {"immutable"}) != true) return;
    const std::string msg = "Forbidden: field is immutable when `immutable` is set";
    if (at(newObj, {"immutable"}) != true) out.push_back({"FieldValueForbidden", msg, "immutable"});
    auto data = [&](const json& obj) {
        json d = at(obj, {"data"}).is_object() ? obj["data"] : json::object();
        // A Secret's stringData is written into data; compare what would be stored.
        if (secret && at(obj, {"stringData"}).is_object())
            for (const auto& [k, v] : obj["stringData"].items())
                d[k] = base64Encode(v.is_string() ? v.get<std::string>() : v.dump());
        return d;
    };
    if (!semanticEqual(data(oldObj), data(newObj)))
        out.push_back({"FieldValueForbidden", msg, "data"});
    if (!secret && !semanticEqual(at(oldObj, {"binaryData"}), at(newObj, {"binaryData"})))
        out.push_back({"FieldValueForbidden", msg, "binaryData"});
}

// Reads a simple ".a.b.c" path (the form CRD scale paths take).
const json* findPath(const json& obj, const std::string& path) {
    const json* cur = &obj;
    size_t i = path.empty() || path[0] != '.' ? 0 : 1;
    while (i < path.size()) {
        size_t dot = path.find('.', i);
        std::string key = path.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
        if (!cur->is_object() || !cur->contains(key)) return nullptr;
        cur = &(*cur)[key];
        if (dot == std::string::npos) break;
        i = dot + 1;
    }
    return cur;
}

}  // namespace

std::string formatLabelSelector(const json& selector) {
    if (!selector.is_object()) return "";
    // labels.Selector keeps requirements sorted by key, and In/NotIn values sorted.
    std::vector<std::pair<std::string, std::string>> parts;
    if (auto ml = selector.find("matchLabels"); ml != selector.end() && ml->is_object())
        for (const auto& [k, v] : ml->items())
            parts.emplace_back(k, k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
    if (auto me = selector.find("matchExpressions"); me != selector.end() && me->is_array()) {
        for (const auto& e : *me) {
            const std::string key = e.value("key", "");
            const std::string op = e.value("operator", "");
            auto values = stringList(e.value("values", json::array()));
            std::sort(values.begin(), values.end());
            std::string joined;
            for (const auto& v : values) joined += (joined.empty() ? "" : ",") + v;
            if (op == "In")
                parts.emplace_back(key, key + " in (" + joined + ")");
            else if (op == "NotIn")
                parts.emplace_back(key, key + " notin (" + joined + ")");
            else if (op == "Exists")
                parts.emplace_back(key, key);
            else if (op == "DoesNotExist")
                parts.emplace_back(key, "!" + key);
        }
    }
    std::stable_sort(parts.begin(), parts.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string out;
    for (const auto& [key, text] : parts) out += (out.empty() ? "" : ",") + text;
    return out;
}

std::string goLabelSelector(const json& selector) {
    if (!selector.is_object()) return "\"null\"";
    std::string out = "v1.LabelSelector{MatchLabels:" + goStringMap(at(selector, {"matchLabels"})) +
                      ", MatchExpressions:";
    const json& exprs = at(selector, {"matchExpressions"});
    if (!exprs.is_array()) {
        out += "[]v1.LabelSelectorRequirement(nil)";
    } else {
        out += "[]v1.LabelSelectorRequirement{";
        for (size_t i = 0; i < exprs.size(); ++i)
            out += std::string(i ? ", " : "") +
                   "v1.LabelSelectorRequirement{Key:" + goQuote(exprs[i].value("key", "")) +
                   ", Operator:" + goQuote(exprs[i].value("operator", "")) +
                   ", Values:" + goStringSlice(at(exprs[i], {"values"})) + "}";
        out += "}";
    }
    return out + "}";
}

void prepareBuiltinUpdate(const std::string& group, const std::string& kind, const json& oldObj,
                          json& newObj) {
    if (!(group.empty() && kind == "Service") || !newObj.is_object()) return;
    // The registry keeps allocated addresses an update leaves out (patchAllocatedValues), then
    // makes clusterIPs follow a changed clusterIP (NormalizeClusterIPs).
    if (strAt(oldObj, {"spec", "type"}) == "ExternalName" ||
        strAt(newObj, {"spec", "type"}) == "ExternalName")
        return;
    json& spec = newObj["spec"];
    if (!spec.is_object()) spec = json::object();
    const json& oldIp = at(oldObj, {"spec", "clusterIP"});
    const json& oldIps = at(oldObj, {"spec", "clusterIPs"});
    if (strAt(newObj, {"spec", "clusterIP"}).empty() && oldIp.is_string() &&
        !oldIp.get_ref<const std::string&>().empty())
        spec["clusterIP"] = oldIp;
    if (stringList(at(newObj, {"spec", "clusterIPs"})).empty() && !stringList(oldIps).empty())
        spec["clusterIPs"] = oldIps;
    const std::string newIp = strAt(newObj, {"spec", "clusterIP"});
    if (newIp != strAt(oldObj, {"spec", "clusterIP"}) &&
        stringList(spec.value("clusterIPs", json::array())) == stringList(oldIps)) {
        if (newIp.empty())
            spec.erase("clusterIPs");
        else
            spec["clusterIPs"] = json::array({newIp});
    }
}

std::vector<FieldCause> validateBuiltinUpdate(const std::string& group, const std::string& kind,
                                              const json& oldObj, const json& newObj) {
    std::vector<FieldCause> out;
    if (group == "apps" && (kind == "Deployment" || kind == "ReplicaSet" || kind == "DaemonSet"))
        checkSelector(out, oldObj, newObj);
    else if (group == "apps" && kind == "StatefulSet")
        checkStatefulSet(out, oldObj, newObj);
    else if (group == "batch" && kind == "Job")
        checkJob(out, oldObj, newObj);
    else if (group.empty() && kind == "Service")
        checkServiceClusterIPs(out, oldObj, newObj);
    else if (group.empty() && kind == "ConfigMap")
        checkImmutableData(out, oldObj, newObj, false);
    else if (group.empty() && kind == "Secret") {
        const std::string oldType = strAt(oldObj, {"type"}, "Opaque");
        const std::string newType = strAt(newObj, {"type"}, "Opaque");
        if (oldType != newType) out.push_back(immutable("type", goQuote(newType)));
        checkImmutableData(out, oldObj, newObj, true);
    }
    return out;
}

json scaleOf(const json& obj, const ScaleSubresource& sub) {
    const json* specReplicas = findPath(obj, sub.specReplicasPath);
    const json* statusReplicas = findPath(obj, sub.statusReplicasPath);
    std::string selector;
    if (!sub.labelSelectorPath.empty()) {
        if (const json* sel = findPath(obj, sub.labelSelectorPath)) {
            // Built-in workloads hold a LabelSelector; custom resources a selector string.
            selector = sel->is_string() ? sel->get<std::string>() : formatLabelSelector(*sel);
        }
    }
    json meta = json::object();
    for (const char* k : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"})
        if (obj.contains("metadata") && obj["metadata"].contains(k)) meta[k] = obj["metadata"][k];
    json status = {{"replicas", statusReplicas && statusReplicas->is_number_integer()
                                    ? statusReplicas->get<int64_t>()
                                    : 0}};
    if (!selector.empty()) status["selector"] = selector;
    return {{"kind", "Scale"},
            {"apiVersion", "autoscaling/v1"},
            {"metadata", meta},
            {"spec",
             {{"replicas", specReplicas && specReplicas->is_number_integer()
                               ? specReplicas->get<int64_t>()
                               : sub.defaultSpecReplicas}}},
            {"status", status}};
}

json withScaleReplicas(json obj, const ScaleSubresource& sub, int64_t replicas) {
    json* cur = &obj;
    const std::string& path = sub.specReplicasPath;
    size_t i = path.empty() || path[0] != '.' ? 0 : 1;
    while (true) {
        size_t dot = path.find('.', i);
        std::string key = path.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
        if (!cur->is_object()) *cur = json::object();
        if (dot == std::string::npos) {
            (*cur)[key] = replicas;
            break;
        }
        cur = &(*cur)[key];
        i = dot + 1;
    }
    return obj;
}

}  // namespace sluice::apilogic
