// Server-side printing (meta.k8s.io/v1 Table) as kube-apiserver's printers and the CRD table
// convertor produce it, plus the JSONPath subset printer columns use.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "apilogic/apilogic.h"

namespace sluice::apilogic {

// ---------------------------------------------------------------------------------------------
// Time.

std::optional<long long> parseRfc3339(const std::string& s) {
    int y, mo, d, h, mi, sec;
    char sep;
    int consumed = 0;
    if (std::sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &sec,
                    &consumed) != 7)
        return std::nullopt;
    if (sep != 'T' && sep != 't' && sep != ' ') return std::nullopt;
    size_t pos = static_cast<size_t>(consumed);
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) ++pos;
    }
    long long offset = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos + 6 == s.size() && (s[pos] == '+' || s[pos] == '-')) {
        int oh, om;
        if (std::sscanf(s.c_str() + pos + 1, "%2d:%2d", &oh, &om) != 2) return std::nullopt;
        offset = (oh * 3600LL + om * 60LL) * (s[pos] == '-' ? -1 : 1);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return static_cast<long long>(timegm(&tm)) - offset;
}

// k8s.io/apimachinery/pkg/util/duration.HumanDuration, which kubectl's AGE uses.
std::string humanDuration(long long seconds) {
    auto str = [](long long v, const char* unit) { return std::to_string(v) + unit; };
    if (seconds < -1) return "<invalid>";
    if (seconds < 0) return "0s";
    if (seconds < 60 * 2) return str(seconds, "s");
    long long minutes = seconds / 60;
    if (minutes < 10) {
        long long s = seconds % 60;
        return s == 0 ? str(minutes, "m") : str(minutes, "m") + str(s, "s");
    }
    if (minutes < 60 * 3) return str(minutes, "m");
    long long hours = seconds / 3600;
    if (hours < 8) {
        long long m = minutes % 60;
        return m == 0 ? str(hours, "h") : str(hours, "h") + str(m, "m");
    }
    if (hours < 48) return str(hours, "h");
    if (hours < 24 * 8) {
        long long h = hours % 24;
        return h == 0 ? str(hours / 24, "d") : str(hours / 24, "d") + str(h, "h");
    }
    if (hours < 24 * 365 * 2) return str(hours / 24, "d");
    if (hours < 24 * 365 * 8) {
        long long dy = (hours / 24) % 365;
        return dy == 0 ? str(hours / 24 / 365, "y") : str(hours / 24 / 365, "y") + str(dy, "d");
    }
    return str(hours / 24 / 365, "y");
}

std::string formatAge(const std::string& timestampRfc3339, const std::string& nowRfc3339) {
    auto ts = parseRfc3339(timestampRfc3339);
    auto now = parseRfc3339(nowRfc3339);
    if (!ts || !now) return "<unknown>";
    return humanDuration(*now - *ts);
}

// ---------------------------------------------------------------------------------------------
// JSONPath.

namespace {

struct Step {
    enum class Kind { Field, Index, All, Filter, Recursive } kind;
    std::string name;
    long long idx = 0;
    // Filter: @-relative path, operator ("" = existence), literal.
    std::vector<Step> sub;
    std::string op;
    json literal;
};

class PathParser {
  public:
    explicit PathParser(std::string s) : s_(std::move(s)) {}

    std::vector<Step> parse() {
        std::vector<Step> steps;
        while (pos_ < s_.size()) {
            char c = s_[pos_];
            if (c == '@' || c == '$') {
                ++pos_;
            } else if (c == '.') {
                ++pos_;
                if (pos_ < s_.size() && s_[pos_] == '.') {
                    ++pos_;
                    steps.push_back({Step::Kind::Recursive, "", 0, {}, "", nullptr});
                }
                std::string name = readName();
                if (name == "*")
                    steps.push_back({Step::Kind::All, "", 0, {}, "", nullptr});
                else if (!name.empty())
                    steps.push_back({Step::Kind::Field, name, 0, {}, "", nullptr});
            } else if (c == '[') {
                steps.push_back(readBracket());
            } else if (std::isspace(static_cast<unsigned char>(c))) {
                ++pos_;
            } else {
                // A leading bare name ("metadata.name") is accepted like kubectl does.
                std::string name = readName();
                if (name.empty())
                    throw std::invalid_argument("unexpected character in JSONPath: " + s_);
                steps.push_back({Step::Kind::Field, name, 0, {}, "", nullptr});
            }
        }
        return steps;
    }

  private:
    std::string s_;
    size_t pos_ = 0;

    std::string readName() {
        std::string name;
        while (pos_ < s_.size()) {
            char c = s_[pos_];
            if (c == '\\' &&
                pos_ + 1 < s_.size()) {  // kubectl's escaped dot: .metadata.labels.a\.b
                name += s_[pos_ + 1];
                pos_ += 2;
                continue;
            }
            if (c == '.' || c == '[' || c == '=' || c == '!' || c == '<' || c == '>' || c == ')' ||
                std::isspace(static_cast<unsigned char>(c)))
                break;
            name += c;
            ++pos_;
        }
        return name;
    }

    std::string readQuoted() {
        char q = s_[pos_++];
        std::string out;
        while (pos_ < s_.size() && s_[pos_] != q) {
            if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
            out += s_[pos_++];
        }
        if (pos_ >= s_.size())
            throw std::invalid_argument("unterminated string in JSONPath: " + s_);
        ++pos_;
        return out;
    }

    void expect(char c) {
        if (pos_ >= s_.size() || s_[pos_] != c)
            throw std::invalid_argument(std::string("expected '") + c + "' in JSONPath: " + s_);
        ++pos_;
    }

    void skipSpace() {
        while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    }

    json readLiteral() {
        skipSpace();
        if (pos_ < s_.size() && (s_[pos_] == '"' || s_[pos_] == '\'')) return readQuoted();
        std::string tok;
        while (pos_ < s_.size() && s_[pos_] != ')' &&
               !std::isspace(static_cast<unsigned char>(s_[pos_])))
            tok += s_[pos_++];
        if (tok == "true") return true;
        if (tok == "false") return false;
        if (tok == "null") return nullptr;
        try {
            return json::parse(tok);
        } catch (const json::exception&) {
            return tok;
        }
    }

    Step readBracket() {
        expect('[');
        skipSpace();
        Step st{Step::Kind::Index, "", 0, {}, "", nullptr};
        if (pos_ < s_.size() && (s_[pos_] == '\'' || s_[pos_] == '"')) {
            st.kind = Step::Kind::Field;
            st.name = readQuoted();
        } else if (pos_ < s_.size() && s_[pos_] == '*') {
            ++pos_;
            st.kind = Step::Kind::All;
        } else if (pos_ < s_.size() && s_[pos_] == '?') {
            ++pos_;
            skipSpace();
            expect('(');
            skipSpace();
            size_t start = pos_;
            while (pos_ < s_.size() && std::string("=!<>)").find(s_[pos_]) == std::string::npos)
                ++pos_;
            std::string lhs = s_.substr(start, pos_ - start);
            while (!lhs.empty() && std::isspace(static_cast<unsigned char>(lhs.back())))
                lhs.pop_back();
            st.kind = Step::Kind::Filter;
            st.sub = PathParser(lhs).parse();
            if (pos_ < s_.size() && s_[pos_] != ')') {
                std::string op;
                while (pos_ < s_.size() && std::string("=!<>").find(s_[pos_]) != std::string::npos)
                    op += s_[pos_++];
                if (op != "==" && op != "!=" && op != "<" && op != ">" && op != "<=" && op != ">=")
                    throw std::invalid_argument("unsupported filter operator in JSONPath: " + s_);
                st.op = op;
                st.literal = readLiteral();
            }
            skipSpace();
            expect(')');
        } else {
            size_t start = pos_;
            while (pos_ < s_.size() && s_[pos_] != ']') ++pos_;
            std::string num = s_.substr(start, pos_ - start);
            try {
                size_t used = 0;
                st.idx = std::stoll(num, &used);
                if (used != num.size()) throw std::invalid_argument(num);
            } catch (const std::exception&) {
                throw std::invalid_argument("unsupported subscript in JSONPath: " + s_);
            }
        }
        skipSpace();
        expect(']');
        return st;
    }
};

std::vector<json> evalSteps(const std::vector<json>& start, const std::vector<Step>& steps);

bool compareLiteral(const json& v, const std::string& op, const json& lit) {
    if (op == "==")
        return v == lit ||
               (v.is_number() && lit.is_number() && v.get<double>() == lit.get<double>());
    if (op == "!=") return !compareLiteral(v, "==", lit);
    if (v.is_number() && lit.is_number()) {
        double a = v.get<double>(), b = lit.get<double>();
        if (op == "<") return a < b;
        if (op == ">") return a > b;
        if (op == "<=") return a <= b;
        return a >= b;
    }
    if (v.is_string() && lit.is_string()) {
        int c = v.get<std::string>().compare(lit.get<std::string>());
        if (op == "<") return c < 0;
        if (op == ">") return c > 0;
        if (op == "<=") return c <= 0;
        return c >= 0;
    }
    return false;
}

void collectRecursive(const json& v, std::vector<json>& out) {
    out.push_back(v);
    if (v.is_object() || v.is_array())
        for (const auto& c : v) collectRecursive(c, out);
}

std::vector<json> evalSteps(const std::vector<json>& start, const std::vector<Step>& steps) {
    std::vector<json> cur = start;
    for (const auto& st : steps) {
        std::vector<json> next;
        for (const auto& v : cur) {
            switch (st.kind) {
                case Step::Kind::Field:
                    if (v.is_object()) {
                        auto it = v.find(st.name);
                        if (it != v.end()) next.push_back(*it);
                    }
                    break;
                case Step::Kind::Index:
                    if (v.is_array()) {
                        long long n = static_cast<long long>(v.size());
                        long long i = st.idx < 0 ? n + st.idx : st.idx;
                        if (i >= 0 && i < n) next.push_back(v[static_cast<size_t>(i)]);
                    }
                    break;
                case Step::Kind::All:
                    if (v.is_array() || v.is_object())
                        for (const auto& c : v) next.push_back(c);
                    break;
                case Step::Kind::Recursive:
                    collectRecursive(v, next);
                    break;
                case Step::Kind::Filter: {
                    std::vector<json> items;
                    if (v.is_array())
                        items.assign(v.begin(), v.end());
                    else
                        items.push_back(v);
                    for (const auto& item : items) {
                        auto found = evalSteps({item}, st.sub);
                        bool keep = false;
                        if (st.op.empty()) {
                            keep = !found.empty();
                        } else {
                            for (const auto& f : found)
                                keep = keep || compareLiteral(f, st.op, st.literal);
                        }
                        if (keep) next.push_back(item);
                    }
                    break;
                }
            }
        }
        cur = std::move(next);
    }
    return cur;
}

}  // namespace

std::vector<json> evalJsonPath(const json& obj, const std::string& path) {
    std::string p = path;
    auto trim = [](std::string& s) {
        while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(0, 1);
        while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    };
    trim(p);
    if (p.size() >= 2 && p.front() == '{' && p.back() == '}') {
        p = p.substr(1, p.size() - 2);
        trim(p);
    }
    if (p.empty() || p == "." || p == "$" || p == "@") return {obj};
    return evalSteps({obj}, PathParser(p).parse());
}

// ---------------------------------------------------------------------------------------------
// Tables.

namespace {

const char* kNameDescription =
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const char* kAgeDescription =
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations. Clients "
    "may not set this value. It is represented in RFC3339 form and is in UTC.";

json column(const std::string& name, const std::string& type, const std::string& description,
            int priority = 0, const std::string& format = "") {
    return {{"name", name},
            {"type", type},
            {"format", format},
            {"description", description},
            {"priority", priority}};
}
json nameColumn() {
    return column("Name", "string", kNameDescription, 0, "name");
}
json ageColumn() {
    return column("Age", "string", kAgeDescription);
}

using CellFn = std::function<json(const json& obj)>;
struct Printer {
    std::vector<json> columns;
    std::vector<CellFn> cells;
};

std::string str(const json& obj, const std::string& path, const std::string& dflt = "") {
    auto r = evalJsonPath(obj, path);
    if (r.empty() || r[0].is_null()) return dflt;
    return r[0].is_string() ? r[0].get<std::string>() : r[0].dump();
}
long long num(const json& obj, const std::string& path, long long dflt = 0) {
    auto r = evalJsonPath(obj, path);
    if (r.empty() || !r[0].is_number()) return dflt;
    return r[0].get<long long>();
}
std::string joinStrings(const std::vector<std::string>& v, const std::string& sep = ",") {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
    return out;
}
std::string orNone(const std::string& s) {
    return s.empty() ? "<none>" : s;
}

// metav1.FormatLabelSelector: "app=web,tier in (a,b)"; "<none>" when empty.
std::string labelSelector(const json& sel) {
    return orNone(formatLabelSelector(sel));
}
std::string mapSelector(const json& sel) {
    if (!sel.is_object() || sel.empty()) return "<none>";
    std::vector<std::string> parts;
    for (const auto& [k, v] : sel.items())
        parts.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
    return joinStrings(parts);
}
std::string containerField(const json& obj, const std::string& podSpecPath,
                           const std::string& field) {
    std::vector<std::string> out;
    for (const auto& c : evalJsonPath(obj, podSpecPath + ".containers[*]"))
        out.push_back(c.value(field, ""));
    return orNone(joinStrings(out));
}

std::string podStatus(const json& pod) {
    const json status = pod.value("status", json::object());
    std::string reason = status.value("phase", "");
    if (status.contains("reason") && status["reason"].is_string())
        reason = status["reason"].get<std::string>();
    bool initializing = false;
    if (status.contains("initContainerStatuses")) {
        size_t total = pod.contains("spec") && pod["spec"].contains("initContainers")
                           ? pod["spec"]["initContainers"].size()
                           : 0;
        size_t i = 0;
        for (const auto& cs : status["initContainerStatuses"]) {
            const json st = cs.value("state", json::object());
            if (st.contains("terminated") && st["terminated"].value("exitCode", 0) == 0) {
                ++i;
                continue;
            }
            initializing = true;
            if (st.contains("terminated")) {
                std::string r = st["terminated"].value("reason", "");
                reason =
                    "Init:" +
                    (r.empty() ? "ExitCode:" + std::to_string(st["terminated"].value("exitCode", 0))
                               : r);
            } else if (st.contains("waiting") && !st["waiting"].value("reason", "").empty() &&
                       st["waiting"].value("reason", "") != "PodInitializing") {
                reason = "Init:" + st["waiting"].value("reason", "");
            } else {
                reason = "Init:" + std::to_string(i) + "/" + std::to_string(total);
            }
            break;
        }
    }
    if (!initializing && status.contains("containerStatuses")) {
        bool hasRunning = false;
        for (auto it = status["containerStatuses"].rbegin();
             it != status["containerStatuses"].rend(); ++it) {
            const json st = it->value("state", json::object());
            if (st.contains("waiting") && !st["waiting"].value("reason", "").empty()) {
                reason = st["waiting"].value("reason", "");
            } else if (st.contains("terminated")) {
                std::string r = st["terminated"].value("reason", "");
                reason = r.empty()
                             ? "ExitCode:" + std::to_string(st["terminated"].value("exitCode", 0))
                             : r;
            } else if (st.contains("running") && it->value("ready", false)) {
                hasRunning = true;
            }
        }
        if (reason == "Completed" && hasRunning) reason = "Running";
    }
    if (pod.contains("metadata") && pod["metadata"].contains("deletionTimestamp"))
        reason = "Terminating";
    return reason;
}

Printer builtinPrinter(const std::string& kind) {
    Printer p;
    auto add = [&](json col, CellFn fn) {
        p.columns.push_back(std::move(col));
        p.cells.push_back(std::move(fn));
    };
    auto name = [](const json& o) { return json(str(o, ".metadata.name")); };
    if (kind == "Event") {
        // Events print without a leading Name column, as kube-apiserver does.
        add(column("Last Seen", "string", "Time when last this event was observed."), nullptr);
        add(column("Type", "string",
                   "Type of this event (Normal, Warning), new types could be added in the future."),
            [](const json& o) { return json(str(o, ".type")); });
        add(column("Reason", "string", "Reason why the action was taken. It is human-readable."),
            [](const json& o) { return json(str(o, ".reason")); });
        add(column("Object", "string", "The object that this event is about."), [](const json& o) {
            std::string k = str(o, ".involvedObject.kind");
            std::transform(k.begin(), k.end(), k.begin(),
                           [](unsigned char c) { return std::tolower(c); });
            return json(k + "/" + str(o, ".involvedObject.name"));
        });
        add(column("Subobject", "string",
                   "The subobject (e.g. a container) that this event is about.", 1),
            [](const json& o) { return json(str(o, ".involvedObject.fieldPath")); });
        add(column("Source", "string", "The component reporting this event.", 1),
            [](const json& o) {
                std::string c = str(o, ".source.component", str(o, ".reportingComponent"));
                std::string h = str(o, ".source.host");
                return json(h.empty() ? c : c + ", " + h);
            });
        add(column("Message", "string",
                   "A human-readable description of the status of this operation."),
            [](const json& o) { return json(str(o, ".message")); });
        add(column("First Seen", "string", "The time at which the event was first recorded.", 1),
            nullptr);
        add(column("Count", "string", "The number of times this event has occurred.", 1),
            [](const json& o) { return json(std::to_string(num(o, ".count", 1))); });
        add(column("Name", "string", kNameDescription, 1), name);
        return p;
    }
    p.columns.push_back(nameColumn());
    p.cells.push_back(name);
    if (kind == "Pod") {
        add(column("Ready", "string",
                   "The aggregate readiness state of this pod for accepting traffic."),
            [](const json& o) {
                size_t total = evalJsonPath(o, ".spec.containers[*]").size();
                size_t ready = 0;
                for (const auto& cs : evalJsonPath(o, ".status.containerStatuses[*]"))
                    ready += cs.value("ready", false) ? 1 : 0;
                return json(std::to_string(ready) + "/" + std::to_string(total));
            });
        add(column("Status", "string", "The aggregate status of the containers in this pod."),
            [](const json& o) { return json(podStatus(o)); });
        add(column("Restarts", "string",
                   "The number of times the containers in this pod have been restarted and when "
                   "the last container in this pod has restarted."),
            [](const json& o) {
                long long r = 0;
                for (const auto& cs : evalJsonPath(o, ".status.containerStatuses[*]"))
                    r += cs.value("restartCount", 0LL);
                return json(std::to_string(r));
            });
        add(ageColumn(), nullptr);
        add(column("IP", "string",
                   "IP address allocated to the pod. Routable at least within the cluster. Empty "
                   "if not yet allocated.",
                   1),
            [](const json& o) { return json(orNone(str(o, ".status.podIP"))); });
        add(column("Node", "string",
                   "NodeName is a request to schedule this pod onto a specific node.", 1),
            [](const json& o) { return json(orNone(str(o, ".spec.nodeName"))); });
        add(column("Nominated Node", "string",
                   "nominatedNodeName is set only when this pod preempts other pods on the node.",
                   1),
            [](const json& o) { return json(orNone(str(o, ".status.nominatedNodeName"))); });
        add(column("Readiness Gates", "string",
                   "If specified, all readiness gates will be evaluated for pod readiness.", 1),
            [](const json& o) {
                size_t total = evalJsonPath(o, ".spec.readinessGates[*]").size();
                if (total == 0) return json("<none>");
                size_t ok = 0;
                for (const auto& g : evalJsonPath(o, ".spec.readinessGates[*]")) {
                    std::string t = g.value("conditionType", "");
                    for (const auto& c : evalJsonPath(o, ".status.conditions[*]"))
                        if (c.value("type", "") == t && c.value("status", "") == "True") ++ok;
                }
                return json(std::to_string(ok) + "/" + std::to_string(total));
            });
    } else if (kind == "Deployment") {
        add(column("Ready", "string", "Number of the pod with ready state"), [](const json& o) {
            return json(std::to_string(num(o, ".status.readyReplicas")) + "/" +
                        std::to_string(num(o, ".spec.replicas", 1)));
        });
        add(column("Up-to-date", "string",
                   "Total number of non-terminated pods targeted by this deployment that have the "
                   "desired template spec."),
            [](const json& o) { return json(num(o, ".status.updatedReplicas")); });
        add(column("Available", "string",
                   "Total number of available pods (ready for at least minReadySeconds) targeted "
                   "by this deployment."),
            [](const json& o) { return json(num(o, ".status.availableReplicas")); });
        add(ageColumn(), nullptr);
        add(column("Containers", "string", "Names of each container in the template.", 1),
            [](const json& o) { return json(containerField(o, ".spec.template.spec", "name")); });
        add(column("Images", "string", "Images referenced by each container in the template.", 1),
            [](const json& o) { return json(containerField(o, ".spec.template.spec", "image")); });
        add(column("Selector", "string",
                   "Label selector for pods. Existing ReplicaSets whose pods are selected by this "
                   "will be the ones affected by this deployment.",
                   1),
            [](const json& o) {
                return json(labelSelector(o.contains("spec") ? o["spec"].value("selector", json())
                                                             : json()));
            });
    } else if (kind == "ReplicaSet") {
        add(column("Desired", "integer", "Replicas is the number of desired replicas."),
            [](const json& o) { return json(num(o, ".spec.replicas", 1)); });
        add(column("Current", "integer",
                   "Replicas is the most recently observed number of replicas."),
            [](const json& o) { return json(num(o, ".status.replicas")); });
        add(column("Ready", "integer", "The number of ready replicas for this replica set."),
            [](const json& o) { return json(num(o, ".status.readyReplicas")); });
        add(ageColumn(), nullptr);
        add(column("Containers", "string", "Names of each container in the template.", 1),
            [](const json& o) { return json(containerField(o, ".spec.template.spec", "name")); });
        add(column("Images", "string", "Images referenced by each container in the template.", 1),
            [](const json& o) { return json(containerField(o, ".spec.template.spec", "image")); });
        add(column("Selector", "string",
                   "Selector is a label query over pods that should match the replica count.", 1),
            [](const json& o) {
                return json(labelSelector(o.contains("spec") ? o["spec"].value("selector", json())
                                                             : json()));
            });
    } else if (kind == "StatefulSet") {
        add(column("Ready", "string", "Number of the pod with ready state"), [](const json& o) {
            return json(std::to_string(num(o, ".status.readyReplicas")) + "/" +
                        std::to_string(num(o, ".spec.replicas", 1)));
        });
        add(ageColumn(), nullptr);
        add(column("Containers", "string", "Names of each container in the template.", 1),
            [](const json& o) { return json(containerField(o, ".spec.template.spec", "name")); });
        add(column("Images", "string", "Images referenced by each container in the template.", 1),
            [](const json& o) { return json(containerField(o, ".spec.template.spec", "image")); });
    } else if (kind == "Job") {
        add(column("Status", "string", "Status of the job."), [](const json& o) {
            std::string s = "Running";
            for (const auto& c : evalJsonPath(o, ".status.conditions[*]")) {
                if (c.value("status", "") != "True") continue;
                std::string t = c.value("type", "");
                if (t == "Complete")
                    s = "Complete";
                else if (t == "Failed")
                    s = "Failed";
                else if (t == "Suspended")
                    s = "Suspended";
                else if (t == "FailureTarget" && s == "Running")
                    s = "FailureTarget";
                else if (t == "SuccessCriteriaMet" && s == "Running")
                    s = "SuccessCriteriaMet";
            }
            if (o.contains("metadata") && o["metadata"].contains("deletionTimestamp"))
                s = "Terminating";
            return json(s);
        });
        add(column("Completions", "string",
                   "The desired number of successfully finished pods the job should be run with."),
            [](const json& o) {
                long long succeeded = num(o, ".status.succeeded");
                auto c = evalJsonPath(o, ".spec.completions");
                if (!c.empty() && c[0].is_number())
                    return json(std::to_string(succeeded) + "/" +
                                std::to_string(c[0].get<long long>()));
                long long parallelism = num(o, ".spec.parallelism", 1);
                if (parallelism > 1)
                    return json(std::to_string(succeeded) + "/1 of " + std::to_string(parallelism));
                return json(std::to_string(succeeded) + "/1");
            });
        add(column("Duration", "string", "Time required to complete the job."), nullptr);
        add(ageColumn(), nullptr);
        add(column("Containers", "string", "Names of each container in the template.", 1),
            [](const json& o) { return json(containerField(o, ".spec.template.spec", "name")); });
        add(column("Images", "string", "Images referenced by each container in the template.", 1),
            [](const json& o) { return json(containerField(o, ".spec.template.spec", "image")); });
        add(column("Selector", "string", "A label query over pods that should match the pod count.",
                   1),
            [](const json& o) {
                return json(labelSelector(o.contains("spec") ? o["spec"].value("selector", json())
                                                             : json()));
            });
    } else if (kind == "Service") {
        add(column("Type", "string", "type determines how the Service is exposed."),
            [](const json& o) { return json(str(o, ".spec.type", "ClusterIP")); });
        add(column("Cluster-IP", "string",
                   "clusterIP is the IP address of the service and is usually assigned randomly."),
            [](const json& o) { return json(orNone(str(o, ".spec.clusterIP"))); });
        add(column("External-IP", "string",
                   "externalIPs is a list of IP addresses for which nodes in the cluster will also "
                   "accept traffic for this service."),
            [](const json& o) {
                std::string type = str(o, ".spec.type", "ClusterIP");
                std::vector<std::string> ips;
                for (const auto& ip : evalJsonPath(o, ".spec.externalIPs[*]"))
                    ips.push_back(ip.get<std::string>());
                if (type == "ExternalName") return json(str(o, ".spec.externalName"));
                if (type == "LoadBalancer") {
                    std::vector<std::string> lb;
                    for (const auto& ing : evalJsonPath(o, ".status.loadBalancer.ingress[*]")) {
                        if (ing.contains("ip"))
                            lb.push_back(ing["ip"].get<std::string>());
                        else if (ing.contains("hostname"))
                            lb.push_back(ing["hostname"].get<std::string>());
                    }
                    lb.insert(lb.end(), ips.begin(), ips.end());
                    return json(lb.empty() ? "<pending>" : joinStrings(lb));
                }
                return json(orNone(joinStrings(ips)));
            });
        add(column("Port(s)", "string", "The list of ports that are exposed by this service."),
            [](const json& o) {
                std::vector<std::string> ports;
                for (const auto& pt : evalJsonPath(o, ".spec.ports[*]")) {
                    std::string s = std::to_string(pt.value("port", 0));
                    if (pt.contains("nodePort") && pt["nodePort"].is_number() &&
                        pt["nodePort"].get<long long>() > 0)
                        s += ":" + std::to_string(pt["nodePort"].get<long long>());
                    ports.push_back(s + "/" + pt.value("protocol", "TCP"));
                }
                return json(orNone(joinStrings(ports)));
            });
        add(ageColumn(), nullptr);
        add(column(
                "Selector", "string",
                "Route service traffic to pods with label keys and values matching this selector.",
                1),
            [](const json& o) {
                return json(
                    mapSelector(o.contains("spec") ? o["spec"].value("selector", json()) : json()));
            });
    } else if (kind == "Namespace") {
        add(column("Status", "string", "The status of the namespace"),
            [](const json& o) { return json(str(o, ".status.phase", "Active")); });
        add(ageColumn(), nullptr);
    } else if (kind == "ConfigMap") {
        add(column("Data", "string", "Data contains the configuration data."), [](const json& o) {
            size_t n = 0;
            for (const char* f : {"data", "binaryData"})
                if (o.contains(f) && o[f].is_object()) n += o[f].size();
            return json(n);
        });
        add(ageColumn(), nullptr);
    } else if (kind == "Secret") {
        add(column("Type", "string", "The type of the secret"),
            [](const json& o) { return json(str(o, ".type", "Opaque")); });
        add(column("Data", "string", "The number of entries in the secret"), [](const json& o) {
            size_t n = 0;
            for (const char* f : {"data", "stringData"})
                if (o.contains(f) && o[f].is_object()) n += o[f].size();
            return json(n);
        });
        add(ageColumn(), nullptr);
    } else if (kind == "Lease") {
        add(column("Holder", "string", "The holder of the lease"),
            [](const json& o) { return json(str(o, ".spec.holderIdentity")); });
        add(ageColumn(), nullptr);
    } else if (kind == "CustomResourceDefinition") {
        // The default table convertor: creation time as a timestamp, not an age.
        add(column("Created At", "date", kAgeDescription),
            [](const json& o) { return json(str(o, ".metadata.creationTimestamp")); });
    } else {
        add(ageColumn(), nullptr);
    }
    return p;
}

// One cell of a CRD printer column, as apiextensions' table convertor renders it: the first
// JSONPath result, strings printed, other types kept typed, dates turned into ages.
json crdCell(const json& obj, const json& col, const std::string& now) {
    std::vector<json> results;
    try {
        results = evalJsonPath(obj, col.value("jsonPath", ""));
    } catch (const std::invalid_argument&) {
        return nullptr;
    }
    if (results.empty() || results[0].is_null()) return nullptr;
    const json& v = results[0];
    std::string type = col.value("type", "string");
    if (type == "string") return v.is_string() ? v : json(v.dump());
    if (type == "integer") return v.is_number_integer() || v.is_number_unsigned() ? v : json();
    if (type == "number") return v.is_number() ? v : json();
    if (type == "boolean") return v.is_boolean() ? v : json();
    if (type == "date") {
        if (!v.is_string() || !parseRfc3339(v.get<std::string>())) return nullptr;
        return formatAge(v.get<std::string>(), now);
    }
    return v;
}

json rowObject(const json& obj, const std::string& includeObject) {
    if (includeObject == "Object") return obj;
    json md = obj.value("metadata", json::object());
    return {{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", md}};
}

std::string jobDuration(const json& o, const std::string& now) {
    std::string start = str(o, ".status.startTime");
    if (start.empty()) return "";
    std::string end = str(o, ".status.completionTime");
    auto s = parseRfc3339(start);
    auto e = parseRfc3339(end.empty() ? now : end);
    if (!s || !e) return "";
    return humanDuration(*e - *s);
}

}  // namespace

json buildTable(const std::vector<json>& objects, const json& printerColumns,
                const std::string& includeObject, const std::string& nowRfc3339,
                const std::string& listResourceVersion, const std::string& continueToken,
                const std::string& kind) {
    json table = {
        {"kind", "Table"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", json::object()}};
    if (!listResourceVersion.empty()) table["metadata"]["resourceVersion"] = listResourceVersion;
    if (!continueToken.empty()) table["metadata"]["continue"] = continueToken;

    bool custom = printerColumns.is_array() && !printerColumns.empty();
    Printer printer;
    if (custom) {
        printer.columns.push_back(nameColumn());
        for (const auto& c : printerColumns)
            printer.columns.push_back(column(c.value("name", ""), c.value("type", "string"),
                                             c.value("description", ""), c.value("priority", 0),
                                             c.value("format", "")));
    } else {
        printer = builtinPrinter(kind);
    }
    table["columnDefinitions"] = printer.columns;

    json rows = json::array();
    for (const auto& obj : objects) {
        json cells = json::array();
        if (custom) {
            cells.push_back(str(obj, ".metadata.name"));
            for (const auto& c : printerColumns) cells.push_back(crdCell(obj, c, nowRfc3339));
        } else {
            for (size_t i = 0; i < printer.columns.size(); ++i) {
                const std::string colName = printer.columns[i]["name"].get<std::string>();
                if (printer.cells[i]) {
                    cells.push_back(printer.cells[i](obj));
                } else if (colName == "Age") {
                    cells.push_back(formatAge(str(obj, ".metadata.creationTimestamp"), nowRfc3339));
                } else if (colName == "Duration") {
                    cells.push_back(jobDuration(obj, nowRfc3339));
                } else if (colName == "Last Seen") {
                    std::string t =
                        str(obj, ".lastTimestamp",
                            str(obj, ".eventTime", str(obj, ".metadata.creationTimestamp")));
                    cells.push_back(formatAge(t, nowRfc3339));
                } else {  // First Seen
                    std::string t =
                        str(obj, ".firstTimestamp",
                            str(obj, ".eventTime", str(obj, ".metadata.creationTimestamp")));
                    cells.push_back(formatAge(t, nowRfc3339));
                }
            }
        }
        json row = {{"cells", std::move(cells)}};
        if (includeObject != "None") row["object"] = rowObject(obj, includeObject);
        rows.push_back(std::move(row));
    }
    table["rows"] = std::move(rows);
    return table;
}

json buildTable(const std::vector<json>& objects, const json& printerColumns,
                const std::string& includeObject, const std::string& nowRfc3339,
                const std::string& listResourceVersion, const std::string& continueToken) {
    std::string kind = objects.empty() ? "" : objects.front().value("kind", "");
    return buildTable(objects, printerColumns, includeObject, nowRfc3339, listResourceVersion,
                      continueToken, kind);
}

}  // namespace sluice::apilogic
