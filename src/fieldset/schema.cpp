// Merge strategy per path: built-in kinds (from the upstream Go types' list markers) and CRD
// OpenAPI schemas (x-kubernetes-* extensions).
#include "sluice/fieldset/fieldset.h"

#include <map>
#include <memory>
#include <mutex>

namespace sluice::fieldset {

namespace {

std::string join(const std::string& prefix, const std::string& name) {
    return prefix.empty() ? name : prefix + "." + name;
}

ListType mapList(std::vector<std::string> keys, std::map<std::string, json> defaults = {}) {
    ListType t;
    t.kind = ListType::Kind::Map;
    t.keys = std::move(keys);
    t.keyDefaults = std::move(defaults);
    return t;
}

ListType setList() {
    ListType t;
    t.kind = ListType::Kind::Set;
    return t;
}

const std::map<std::string, json> kTcpDefault{{"protocol", "TCP"}};

void addObjectMeta(Schema& s, const std::string& meta) {
    s.setList(join(meta, "finalizers"), setList());
    s.setList(join(meta, "ownerReferences"), mapList({"uid"}));
}

// metav1.LabelSelector is +structType=atomic.
void addLabelSelector(Schema& s, const std::string& path) {
    s.setAtomicMap(path);
}

void addContainer(Schema& s, const std::string& c) {
    s.setList(join(c, "ports"), mapList({"containerPort", "protocol"}, kTcpDefault));
    s.setList(join(c, "env"), mapList({"name"}));
    for (const char* ref : {"fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"})
        s.setAtomicMap(c + ".env[].valueFrom." + ref);
    s.setList(join(c, "volumeMounts"), mapList({"mountPath"}));
    s.setList(join(c, "volumeDevices"), mapList({"devicePath"}));
    s.setList(join(c, "resizePolicy"), ListType{});
}

void addPodSpec(Schema& s, const std::string& spec) {
    for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
        s.setList(join(spec, list), mapList({"name"}));
        addContainer(s, join(spec, list) + "[]");
    }
    s.setList(join(spec, "volumes"), mapList({"name"}));
    s.setList(join(spec, "imagePullSecrets"), mapList({"name"}));
    s.setList(join(spec, "hostAliases"), mapList({"ip"}));
    s.setList(join(spec, "topologySpreadConstraints"),
              mapList({"topologyKey", "whenUnsatisfiable"}));
    addLabelSelector(s, join(spec, "topologySpreadConstraints") + "[].labelSelector");
    s.setList(join(spec, "schedulingGates"), mapList({"name"}));
    s.setList(join(spec, "resourceClaims"), mapList({"name"}));
    s.setAtomicMap(join(spec, "nodeSelector"));
}

void addPodTemplate(Schema& s, const std::string& tmpl) {
    addObjectMeta(s, join(tmpl, "metadata"));
    addPodSpec(s, join(tmpl, "spec"));
}

void addConditions(Schema& s) {
    s.setList("status.conditions", mapList({"type"}));
}

void walkOpenApi(Schema& s, const json& node, const std::string& path) {
    if (!node.is_object()) return;
    if (node.value("x-kubernetes-map-type", "") == "atomic") s.setAtomicMap(path);
    if (auto items = node.find("items"); items != node.end() && items->is_object()) {
        std::string listType = node.value("x-kubernetes-list-type", "atomic");
        if (listType == "map") {
            ListType t;
            t.kind = ListType::Kind::Map;
            if (auto keys = node.find("x-kubernetes-list-map-keys");
                keys != node.end() && keys->is_array())
                for (const auto& k : *keys)
                    if (k.is_string()) t.keys.push_back(k.get<std::string>());
            if (auto props = items->find("properties"); props != items->end() && props->is_object())
                for (const auto& k : t.keys)
                    if (auto p = props->find(k); p != props->end() && p->is_object())
                        if (auto d = p->find("default"); d != p->end()) t.keyDefaults[k] = *d;
            s.setList(path, std::move(t));
        } else if (listType == "set") {
            s.setList(path, setList());
        }
        walkOpenApi(s, *items, path + "[]");
    }
    if (auto props = node.find("properties"); props != node.end() && props->is_object())
        for (auto it = props->begin(); it != props->end(); ++it)
            walkOpenApi(s, it.value(), join(path, it.key()));
    if (auto add = node.find("additionalProperties"); add != node.end() && add->is_object()) {
        s.setDynamicMap(path);
        walkOpenApi(s, *add, join(path, "*"));
    }
}

}  // namespace

void Schema::setList(const std::string& path, ListType type) {
    lists_[path] = std::move(type);
}

void Schema::setAtomicMap(const std::string& path) {
    atomicMaps_.insert(path);
}

void Schema::setDynamicMap(const std::string& path) {
    dynamicMaps_.insert(path);
}

bool Schema::isDynamicMap(const std::string& path) const {
    return dynamicMaps_.count(path) != 0;
}

std::string Schema::canonicalPath(const std::string& path) const {
    // Map keys below an additionalProperties map are data: spell them "*". Keys containing
    // '.' cannot be told apart here; the walkers build canonical paths directly instead.
    std::string out;
    size_t start = 0;
    bool dynamicParent = false;
    while (start <= path.size()) {
        size_t dot = path.find('.', start);
        std::string seg =
            path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (dynamicParent) {
            size_t br = seg.find('[');
            seg = br == std::string::npos ? std::string("*") : std::string("*").append(seg, br);
        }
        out = join(out, seg);
        dynamicParent = dynamicMaps_.count(out) != 0;
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return out;
}

std::optional<ListType> Schema::listAt(const std::string& path) const {
    auto it = lists_.find(path);
    if (it == lists_.end() && !dynamicMaps_.empty()) it = lists_.find(canonicalPath(path));
    if (it == lists_.end()) return std::nullopt;
    return it->second;
}

bool Schema::isAtomicMap(const std::string& path) const {
    if (atomicMaps_.count(path)) return true;
    return !dynamicMaps_.empty() && atomicMaps_.count(canonicalPath(path));
}

namespace {

Schema builtInSchema(const std::string& group, const std::string& kind);

}  // namespace

const Schema& Schema::forKind(const std::string& apiVersion, const std::string& kind) {
    auto slash = apiVersion.find('/');
    std::string group = slash == std::string::npos ? "" : apiVersion.substr(0, slash);
    static std::mutex mu;
    static std::map<std::pair<std::string, std::string>, std::unique_ptr<const Schema>> built;
    std::lock_guard lock(mu);
    auto& slot = built[{group, kind}];
    if (!slot) slot = std::make_unique<const Schema>(builtInSchema(group, kind));
    return *slot;
}

namespace {

Schema builtInSchema(const std::string& group, const std::string& kind) {
    Schema s;
    addObjectMeta(s, "metadata");

    if (group.empty()) {
        if (kind == "Pod") {
            addPodSpec(s, "spec");
            addConditions(s);
        } else if (kind == "PodTemplate") {
            addPodTemplate(s, "template");
        } else if (kind == "ReplicationController") {
            s.setAtomicMap("spec.selector");
            addPodTemplate(s, "spec.template");
            addConditions(s);
        } else if (kind == "Service") {
            s.setList("spec.ports", mapList({"port", "protocol"}, kTcpDefault));
            s.setAtomicMap("spec.selector");
            addConditions(s);
        } else if (kind == "Namespace" || kind == "Node" || kind == "PersistentVolumeClaim") {
            addConditions(s);
            if (kind == "PersistentVolumeClaim") addLabelSelector(s, "spec.selector");
        }
    } else if (group == "apps") {
        if (kind == "Deployment" || kind == "ReplicaSet" || kind == "StatefulSet" ||
            kind == "DaemonSet") {
            addLabelSelector(s, "spec.selector");
            addPodTemplate(s, "spec.template");
            addConditions(s);
        }
    } else if (group == "batch") {
        if (kind == "Job") {
            addLabelSelector(s, "spec.selector");
            addPodTemplate(s, "spec.template");
            // JobStatus.conditions is +listType=atomic upstream.
        } else if (kind == "CronJob") {
            addObjectMeta(s, "spec.jobTemplate.metadata");
            addLabelSelector(s, "spec.jobTemplate.spec.selector");
            addPodTemplate(s, "spec.jobTemplate.spec.template");
        }
    } else if (group == "networking.k8s.io") {
        if (kind == "NetworkPolicy") {
            addLabelSelector(s, "spec.podSelector");
            for (const char* dir : {"ingress", "egress"})
                for (const char* peer : {"from", "to"})
                    for (const char* sel : {"podSelector", "namespaceSelector"})
                        addLabelSelector(s,
                                         std::string("spec.") + dir + "[]." + peer + "[]." + sel);
        }
    } else if (group == "autoscaling") {
        if (kind == "HorizontalPodAutoscaler") addConditions(s);
    } else if (group == "policy") {
        if (kind == "PodDisruptionBudget") {
            addLabelSelector(s, "spec.selector");
            addConditions(s);
        }
    }
    return s;
}

}  // namespace

Schema Schema::fromOpenApi(const json& openApiV3Schema) {
    Schema s;
    walkOpenApi(s, openApiV3Schema, "");
    // kube-apiserver always uses ObjectMeta's own schema for metadata.
    addObjectMeta(s, "metadata");
    return s;
}

}  // namespace sluice::fieldset
