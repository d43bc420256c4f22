#include "apiserver/selectors.h"

#include <algorithm>
#include <map>

#include "apiserver/status_errors.h"

namespace sluice::testing {

using nlohmann::json;

namespace {

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    size_t e = s.find_last_not_of(" \t");
    return s.substr(b, e - b + 1);
}

// Splits on commas that are not inside parentheses.
std::vector<std::string> splitTop(const std::string& s) {
    std::vector<std::string> out;
    int depth = 0;
    std::string cur;
    for (char c : s) {
        if (c == '(') ++depth;
        if (c == ')') --depth;
        if (c == ',' && depth == 0) {
            out.push_back(trim(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!trim(cur).empty() || !out.empty()) out.push_back(trim(cur));
    return out;
}

std::string labelOf(const json& obj, const std::string& key, bool& present) {
    present = false;
    if (!obj.contains("metadata") || !obj["metadata"].contains("labels")) return "";
    const json& labels = obj["metadata"]["labels"];
    auto it = labels.find(key);
    if (it == labels.end() || !it->is_string()) return "";
    present = true;
    return it->get<std::string>();
}

[[noreturn]] void badSelector(const std::string& text) {
    errors::badRequest("unable to parse requirement: found '" + text +
                       "', expected: valid selector");
}

}  // namespace

LabelSelector LabelSelector::parse(const std::string& text) {
    LabelSelector sel;
    for (const std::string& part : splitTop(text)) {
        if (part.empty()) badSelector(text);
        Req r;
        size_t sp;
        if (part[0] == '!') {
            r.key = trim(part.substr(1));
            r.op = Op::NotExists;
        } else if ((sp = part.find(" notin ")) != std::string::npos ||
                   (sp = part.find(" in ")) != std::string::npos) {
            bool notin = part.compare(sp, 7, " notin ") == 0;
            r.key = trim(part.substr(0, sp));
            r.op = notin ? Op::NotIn : Op::In;
            std::string rest = trim(part.substr(sp + (notin ? 7 : 4)));
            if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')') badSelector(text);
            std::string inner = rest.substr(1, rest.size() - 2);
            size_t start = 0;
            while (true) {
                size_t c = inner.find(',', start);
                r.values.push_back(trim(inner.substr(start, c - start)));
                if (c == std::string::npos) break;
                start = c + 1;
            }
        } else if ((sp = part.find("!=")) != std::string::npos) {
            r.key = trim(part.substr(0, sp));
            r.op = Op::NotEq;
            r.values = {trim(part.substr(sp + 2))};
        } else if ((sp = part.find("==")) != std::string::npos) {
            r.key = trim(part.substr(0, sp));
            r.op = Op::Eq;
            r.values = {trim(part.substr(sp + 2))};
        } else if ((sp = part.find('=')) != std::string::npos) {
            r.key = trim(part.substr(0, sp));
            r.op = Op::Eq;
            r.values = {trim(part.substr(sp + 1))};
        } else {
            r.key = part;
            r.op = Op::Exists;
        }
        if (r.key.empty() || r.key.find_first_of(" ()=!") != std::string::npos) badSelector(text);
        sel.reqs_.push_back(std::move(r));
    }
    return sel;
}

bool LabelSelector::matches(const json& obj) const {
    for (const auto& r : reqs_) {
        bool present;
        std::string v = labelOf(obj, r.key, present);
        bool in = std::find(r.values.begin(), r.values.end(), v) != r.values.end();
        switch (r.op) {
            case Op::Eq:
            case Op::In:
                if (!present || !in) return false;
                break;
            case Op::NotEq:
            case Op::NotIn:
                if (present && in) return false;
                break;
            case Op::Exists:
                if (!present) return false;
                break;
            case Op::NotExists:
                if (present) return false;
                break;
        }
    }
    return true;
}

namespace {

// The field labels kube-apiserver accepts per kind (its field label conversion functions), and
// the object path each one reads; metadata.name and metadata.namespace work for every kind.
const std::map<std::string, std::map<std::string, std::string>>& kindFieldLabels() {
    static const std::map<std::string, std::map<std::string, std::string>> labels = {
        {"Pod",
         {{"status.phase", "status.phase"},
          {"spec.nodeName", "spec.nodeName"},
          {"spec.restartPolicy", "spec.restartPolicy"},
          {"spec.schedulerName", "spec.schedulerName"},
          {"spec.serviceAccountName", "spec.serviceAccountName"},
          {"status.podIP", "status.podIP"},
          {"status.nominatedNodeName", "status.nominatedNodeName"}}},
        {"Event",
         {{"involvedObject.kind", "involvedObject.kind"},
          {"involvedObject.namespace", "involvedObject.namespace"},
          {"involvedObject.name", "involvedObject.name"},
          {"involvedObject.uid", "involvedObject.uid"},
          {"involvedObject.apiVersion", "involvedObject.apiVersion"},
          {"involvedObject.resourceVersion", "involvedObject.resourceVersion"},
          {"involvedObject.fieldPath", "involvedObject.fieldPath"},
          {"reason", "reason"},
          {"reportingComponent", "reportingComponent"},
          {"source", "source.component"},
          {"type", "type"}}},
        {"Secret", {{"type", "type"}}},
        {"Namespace", {{"status.phase", "status.phase"}}},
        {"ReplicaSet", {{"status.replicas", "status.replicas"}}},
        {"Job", {{"status.successful", "status.successful"}}},
    };
    return labels;
}

// The dotted path a field label reads, or "" when the kind does not support it.
std::string fieldPath(const std::string& kind, const std::string& field) {
    if (field == "metadata.name" || field == "metadata.namespace") return field;
    auto k = kindFieldLabels().find(kind);
    if (k == kindFieldLabels().end()) return "";
    auto f = k->second.find(field);
    return f == k->second.end() ? "" : f->second;
}

}  // namespace

FieldSelector FieldSelector::parse(const std::string& text, const std::string& kind) {
    FieldSelector sel;
    for (const std::string& part : splitTop(text)) {
        Req r;
        size_t sp;
        if ((sp = part.find("!=")) != std::string::npos) {
            r.field = trim(part.substr(0, sp));
            r.equal = false;
            r.value = trim(part.substr(sp + 2));
        } else if ((sp = part.find("==")) != std::string::npos) {
            r.field = trim(part.substr(0, sp));
            r.equal = true;
            r.value = trim(part.substr(sp + 2));
        } else if ((sp = part.find('=')) != std::string::npos) {
            r.field = trim(part.substr(0, sp));
            r.equal = true;
            r.value = trim(part.substr(sp + 1));
        } else {
            errors::badRequest("invalid selector: '" + text + "'; can't understand '" + part + "'");
        }
        r.path = fieldPath(kind, r.field);
        if (r.path.empty()) errors::badRequest("field label not supported: " + r.field);
        sel.reqs_.push_back(std::move(r));
    }
    return sel;
}

bool FieldSelector::matches(const json& obj) const {
    for (const auto& r : reqs_) {
        // Absent fields compare as "" (and numbers by their decimal text), as the API server's
        // field sets do.
        const json* at = &obj;
        size_t start = 0;
        while (at && start <= r.path.size()) {
            size_t dot = r.path.find('.', start);
            std::string key =
                r.path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
            at = at->is_object() && at->contains(key) ? &(*at)[key] : nullptr;
            if (dot == std::string::npos) break;
            start = dot + 1;
        }
        std::string v;
        if (at && at->is_string())
            v = at->get<std::string>();
        else if (at && at->is_number())
            v = at->dump();
        if ((v == r.value) != r.equal) return false;
    }
    return true;
}

}  // namespace sluice::testing
