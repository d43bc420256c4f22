// Paths, field sets and their fieldsV1 encoding; managedFields entries; conflict errors.
#include "sluice/fieldset/fieldset.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sluice::fieldset {

namespace {

json canonicalValue(const json& v) {
    if (v.is_number_float()) {
        double d = v.get<double>();
        // Integral floats name the same path as the integer (1.0 == 1 as a value).
        if (std::isfinite(d) && std::floor(d) == d &&
            std::fabs(d) < static_cast<double>(std::numeric_limits<int64_t>::max()))
            return json(static_cast<int64_t>(d));
        return v;
    }
    if (v.is_object()) {
        json out = json::object();
        for (auto it = v.begin(); it != v.end(); ++it) out[it.key()] = canonicalValue(it.value());
        return out;
    }
    if (v.is_array()) {
        json out = json::array();
        for (const auto& e : v) out.push_back(canonicalValue(e));
        return out;
    }
    return v;
}

bool hasFloat(const json& v) {
    if (v.is_number_float()) return true;
    if (v.is_structured())
        for (const auto& e : v)
            if (hasFloat(e)) return true;
    return false;
}

// fieldsV1 tree node: children by encoded element, plus whether the node itself is a member.
struct Node {
    std::map<std::string, Node> children;
    bool member = false;
};

json nodeToJson(const Node& n) {
    json out = json::object();
    // A member with children says so with "."; a member without children is just {}.
    if (n.member && !n.children.empty()) out["."] = json::object();
    for (const auto& [k, child] : n.children) out[k] = nodeToJson(child);
    return out;
}

void fromJsonNode(const json& j, Path& prefix, std::set<Path>& out) {
    if (!j.is_object()) return;
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == ".") {
            if (!prefix.empty()) out.insert(prefix);
            continue;
        }
        prefix.push_back(PathElement{it.key()});
        if (it.value().is_object() && it.value().empty()) {
            out.insert(prefix);
        } else {
            fromJsonNode(it.value(), prefix, out);
        }
        prefix.pop_back();
    }
}

bool startsWith(const Path& p, const Path& prefix) {
    return p.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), p.begin());
}

}  // namespace

std::string canonicalJson(const json& v) {
    // nlohmann's object type is a std::map, so dump() already sorts keys.
    return hasFloat(v) ? canonicalValue(v).dump() : v.dump();
}

std::string toString(const Path& p) {
    std::string out;
    for (const auto& e : p) {
        const std::string& s = e.encoded;
        if (s.rfind("f:", 0) == 0) {
            out.append(".").append(s, 2);
        } else if (s.rfind("k:", 0) == 0) {
            json key = json::parse(s.substr(2), nullptr, false);
            if (!key.is_object()) {
                out.append("[").append(s, 2).append("]");
                continue;
            }
            std::string inner;
            for (auto it = key.begin(); it != key.end(); ++it) {
                if (!inner.empty()) inner += ",";
                inner += it.key() + "=" + it.value().dump();
            }
            out.append("[").append(inner).append("]");
        } else if (s.rfind("v:", 0) == 0) {
            out.append("[=").append(s, 2).append("]");
        } else if (s.rfind("i:", 0) == 0) {
            out.append("[").append(s, 2).append("]");
        } else {
            out.append(".").append(s);
        }
    }
    return out.empty() ? "." : out;
}

void FieldSet::insert(const Path& p) {
    paths_.insert(p);
}

bool FieldSet::contains(const Path& p) const {
    return paths_.count(p) != 0;
}

FieldSet FieldSet::unionWith(const FieldSet& o) const {
    FieldSet out = *this;
    out.paths_.insert(o.paths_.begin(), o.paths_.end());
    return out;
}

FieldSet FieldSet::difference(const FieldSet& o) const {
    FieldSet out;
    std::set_difference(paths_.begin(), paths_.end(), o.paths_.begin(), o.paths_.end(),
                        std::inserter(out.paths_, out.paths_.end()));
    return out;
}

FieldSet FieldSet::intersection(const FieldSet& o) const {
    FieldSet out;
    std::set_intersection(paths_.begin(), paths_.end(), o.paths_.begin(), o.paths_.end(),
                          std::inserter(out.paths_, out.paths_.end()));
    return out;
}

FieldSet FieldSet::under(const Path& prefix) const {
    // Lexicographic order puts every extension of prefix right after it.
    FieldSet out;
    for (auto it = paths_.lower_bound(prefix); it != paths_.end() && startsWith(*it, prefix); ++it)
        out.paths_.insert(out.paths_.end(), *it);
    return out;
}

json FieldSet::toFieldsV1() const {
    Node root;
    for (const auto& p : paths_) {
        Node* n = &root;
        for (const auto& e : p) n = &n->children[e.encoded];
        n->member = true;
    }
    return nodeToJson(root);
}

FieldSet FieldSet::fromFieldsV1(const json& fieldsV1) {
    FieldSet out;
    Path prefix;
    fromJsonNode(fieldsV1, prefix, out.paths_);
    return out;
}

json ManagedFieldsEntry::toJson() const {
    json j = json::object();
    j["manager"] = manager;
    j["operation"] = operation;
    if (!apiVersion.empty()) j["apiVersion"] = apiVersion;
    if (!time.empty()) j["time"] = time;
    j["fieldsType"] = "FieldsV1";
    j["fieldsV1"] = fields.toFieldsV1();
    if (!subresource.empty()) j["subresource"] = subresource;
    return j;
}

ManagedFieldsEntry ManagedFieldsEntry::fromJson(const json& j) {
    ManagedFieldsEntry e;
    if (!j.is_object()) return e;
    auto str = [&](const char* k) {
        auto it = j.find(k);
        return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    e.manager = str("manager");
    e.operation = str("operation");
    e.apiVersion = str("apiVersion");
    e.time = str("time");
    e.subresource = str("subresource");
    if (auto it = j.find("fieldsV1"); it != j.end()) e.fields = FieldSet::fromFieldsV1(*it);
    return e;
}

std::vector<ManagedFieldsEntry> parseManagedFields(const json& obj) {
    std::vector<ManagedFieldsEntry> out;
    if (!obj.is_object()) return out;
    auto meta = obj.find("metadata");
    if (meta == obj.end() || !meta->is_object()) return out;
    auto mf = meta->find("managedFields");
    if (mf == meta->end()) return out;
    if (mf->is_string()) {
        // A watch cache's packed copy (cache::packManagedFields): the same array as JSON text.
        const json unpacked = json::parse(mf->get_ref<const std::string&>(), nullptr, false);
        if (unpacked.is_array())
            for (const auto& e : unpacked) out.push_back(ManagedFieldsEntry::fromJson(e));
        return out;
    }
    if (!mf->is_array()) return out;
    for (const auto& e : *mf) out.push_back(ManagedFieldsEntry::fromJson(e));
    return out;
}

namespace {

// kube-apiserver's spelling of a manager in conflict messages.
std::string describeManager(const Conflict& c) {
    std::string s = json(c.manager).dump();
    if (!c.subresource.empty()) s.append(" with subresource ").append(json(c.subresource).dump());
    if (c.operation == "Update" && !c.apiVersion.empty()) s.append(" using ").append(c.apiVersion);
    return s;
}

std::string conflictMessage(const std::vector<Conflict>& conflicts) {
    std::string n = std::to_string(conflicts.size());
    if (conflicts.size() == 1)
        return std::string("Apply failed with 1 conflict: conflict with ")
            .append(describeManager(conflicts[0]))
            .append(": ")
            .append(toString(conflicts[0].path));
    std::map<std::string, std::vector<const Conflict*>> byManager;
    for (const auto& c : conflicts) byManager[describeManager(c)].push_back(&c);
    std::string msg = std::string("Apply failed with ").append(n).append(" conflicts: ");
    bool first = true;
    for (const auto& [who, list] : byManager) {
        if (!first) msg += "\n";
        first = false;
        msg.append("conflicts with ").append(who).append(":");
        for (const auto* c : list) msg.append("\n- ").append(toString(c->path));
    }
    return msg;
}

}  // namespace

ApplyConflict::ApplyConflict(std::vector<Conflict> conflicts)
    : std::runtime_error(conflictMessage(conflicts)), conflicts_(std::move(conflicts)) {}

}  // namespace sluice::fieldset
