// Parsing of the Application resource. Every problem becomes one message naming the field, so
// a user sees all mistakes in one InvalidSpecError condition instead of fixing them one by one.
#include "sluice/appengine/spec.h"

#include "sluice/util/json_reader.h"
#include "spec_checks.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <string_view>

namespace sluice::appengine {

using nlohmann::json;

namespace {

using detail::escapesRepository;
using detail::isDnsLabel;
using Reader = util::JsonReader;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// Parses the "Name=value" list. `at` is the list's field path, used in messages.
SyncOptions parseSyncOptionsAt(const std::vector<std::string>& options, const std::string& at,
                               std::vector<std::string>& errors) {
    SyncOptions out;
    for (size_t i = 0; i < options.size(); ++i) {
        const std::string& option = options[i];
        const std::string where = at + "[" + std::to_string(i) + "]: ";
        auto eq = option.find('=');
        if (eq == std::string::npos) {
            errors.push_back(where + "expected Name=value, got \"" + option + "\"");
            continue;
        }
        const std::string name = option.substr(0, eq);
        const std::string value = option.substr(eq + 1);
        const std::string lowered = lower(value);
        std::optional<bool> flag;
        if (lowered == "true") flag = true;
        if (lowered == "false") flag = false;

        if (name == "PrunePropagationPolicy") {
            if (lowered == "foreground" || lowered == "background" || lowered == "orphan") {
                out.prunePropagationPolicy = lowered;
            } else {
                errors.push_back(where +
                                 "PrunePropagationPolicy must be foreground, background "
                                 "or orphan, got \"" +
                                 value + "\"");
            }
            continue;
        }
        bool* target = nullptr;
        if (name == "Validate") target = &out.validate;
        if (name == "CreateNamespace") target = &out.createNamespace;
        if (name == "PruneLast") target = &out.pruneLast;
        if (name == "ApplyOutOfSyncOnly") target = &out.applyOutOfSyncOnly;
        if (name == "ServerSideApply") target = &out.serverSideApply;
        if (name == "RespectIgnoreDifferences") target = &out.respectIgnoreDifferences;
        if (name == "Replace") target = &out.replace;
        // Argo CD options accepted so migrated Applications stay valid, without effect:
        // Sluice never fails on shared resources (it skips them with a SharedResourceWarning),
        // dry-runs every object it can, and has no client-side apply to migrate from.
        static const std::set<std::string> kAcceptedWithoutEffect = {
            "FailOnSharedResource", "SkipDryRunOnMissingResource", "ClientSideApplyMigration"};
        bool ignored = kAcceptedWithoutEffect.count(name) != 0;
        if (target == nullptr && !ignored) {
            errors.push_back(where + "unknown option \"" + option + "\"");
            continue;
        }
        if (!flag) {
            errors.push_back(where + name + " must be true or false, got \"" + value + "\"");
            continue;
        }
        if (target != nullptr) *target = *flag;
    }
    return out;
}

std::optional<std::chrono::milliseconds> readDuration(const Reader& r, std::string_view key) {
    const json* value = r.field(key);
    if (value == nullptr) return std::nullopt;
    std::optional<std::chrono::milliseconds> parsed;
    if (value->is_string()) {
        parsed = parseDuration(value->get<std::string>());
    } else if (value->is_number() && value->get<double>() >= 0 && value->get<double>() < 1e12) {
        parsed = std::chrono::milliseconds(static_cast<long long>(value->get<double>() * 1000));
    }
    if (!parsed)
        r.error(key, "invalid duration " + value->dump() + " (e.g. \"5s\", \"3m\", \"1h\")");
    return parsed;
}

RetryPolicy parseRetry(const json& retry, const std::string& at, std::vector<std::string>& errors) {
    RetryPolicy out;
    Reader r(retry, at, errors);
    r.rejectUnknown({"limit", "backoff"});
    if (auto limit = r.integer("limit")) out.limit = static_cast<int>(*limit);
    if (const json* backoff = r.object("backoff")) {
        Reader b(*backoff, at + ".backoff", errors);
        b.rejectUnknown({"duration", "factor", "maxDuration"});
        if (auto d = readDuration(b, "duration")) out.duration = *d;
        if (auto d = readDuration(b, "maxDuration")) out.maxDuration = *d;
        if (auto f = b.number("factor")) {
            if (*f < 1) {
                b.error("factor", "must be at least 1");
            } else {
                out.factor = *f;
            }
        }
    }
    return out;
}

Destination parseDestination(const json& destination, std::vector<std::string>& errors) {
    Destination out;
    Reader r(destination, "spec.destination", errors);
    r.rejectUnknown({"server", "name", "namespace"});
    if (auto server = r.string("server")) out.server = *server;
    if (auto name = r.string("name")) out.name = *name;
    if (auto ns = r.string("namespace")) {
        if (!ns->empty() && !isDnsLabel(*ns)) {
            r.error("namespace", "\"" + *ns + "\" is not a valid namespace name");
        } else {
            out.namespace_ = *ns;
        }
    }
    std::string server = out.server;
    while (server.size() > 1 && server.back() == '/') server.pop_back();
    if (!out.server.empty() && !out.name.empty()) {
        errors.push_back("spec.destination: set either server or name, not both");
    } else if (out.server.empty() && out.name.empty()) {
        errors.push_back("spec.destination: server or name required");
    }
    if (!out.server.empty()) out.server = server;
    return out;
}

SyncPolicy parseSyncPolicy(const json& policy, std::vector<std::string>& errors) {
    SyncPolicy out;
    Reader r(policy, "spec.syncPolicy", errors);
    r.rejectUnsupported("managedNamespaceMetadata",
                        "namespaces are created without extra metadata");
    r.rejectUnknown({"automated", "syncOptions", "retry", "managedNamespaceMetadata",
                     "rollbackOnPostSyncFailure"});
    if (auto v = r.boolean("rollbackOnPostSyncFailure")) out.rollbackOnPostSyncFailure = *v;
    // `automated: {}` (or even `automated:` with no value, which YAML makes null) turns
    // auto-sync on in Argo CD, so presence is what counts.
    auto automated = policy.find("automated");
    if (automated != policy.end()) {
        if (automated->is_null()) {
            out.automated = true;
        } else if (!automated->is_object()) {
            r.error("automated", "must be an object");
        } else {
            out.automated = true;
            Reader a(*automated, "spec.syncPolicy.automated", errors);
            a.rejectUnknown({"prune", "selfHeal", "allowEmpty", "enabled"});
            if (auto v = a.boolean("prune")) out.prune = *v;
            if (auto v = a.boolean("selfHeal")) out.selfHeal = *v;
            if (auto v = a.boolean("allowEmpty")) out.allowEmpty = *v;
            // Argo CD 2.14+: automated.enabled=false keeps the settings but pauses auto-sync.
            if (auto v = a.boolean("enabled")) out.automated = *v;
        }
    }
    out.rawOptions = r.strings("syncOptions");
    out.options = parseSyncOptionsAt(out.rawOptions, "spec.syncPolicy.syncOptions", errors);
    if (const json* retry = r.object("retry"))
        out.retry = parseRetry(*retry, "spec.syncPolicy.retry", errors);
    return out;
}

diff::IgnoreRule parseIgnoreRule(const json& rule, const std::string& at,
                                 std::vector<std::string>& errors) {
    diff::IgnoreRule out;
    Reader r(rule, at, errors);
    r.rejectUnsupported("jqPathExpressions", "use jsonPointers or managedFieldsManagers");
    r.rejectUnknown({"group", "kind", "name", "namespace", "jsonPointers", "jqPathExpressions",
                     "managedFieldsManagers"});
    if (auto v = r.string("group")) out.group = *v;
    if (auto v = r.string("kind")) out.kind = *v;
    if (out.kind.empty() && r.field("kind") == nullptr) r.error("kind", "required");
    if (auto v = r.string("name")) out.name = *v;
    if (auto v = r.string("namespace")) out.ns = *v;
    out.jsonPointers = r.strings("jsonPointers");
    for (size_t i = 0; i < out.jsonPointers.size(); ++i) {
        try {
            json::json_pointer pointer(out.jsonPointers[i]);
            if (pointer.empty()) throw std::invalid_argument("empty");
        } catch (const std::exception&) {
            errors.push_back(at + ".jsonPointers[" + std::to_string(i) +
                             "]: invalid JSON pointer \"" + out.jsonPointers[i] +
                             "\" (e.g. \"/spec/replicas\")");
        }
    }
    out.managedFieldsManagers = r.strings("managedFieldsManagers");
    if (out.jsonPointers.empty() && out.managedFieldsManagers.empty() &&
        r.field("jqPathExpressions") == nullptr)
        errors.push_back(at + ": jsonPointers or managedFieldsManagers required");
    return out;
}

Operation parseOperation(const json& op, std::vector<std::string>& errors) {
    Operation out;
    out.raw = op;
    Reader r(op, "operation", errors);
    r.rejectUnknown({"sync", "initiatedBy", "retry", "info"});
    if (const json* sync = r.object("sync")) {
        Reader s(*sync, "operation.sync", errors);
        s.rejectUnsupported("resources", "selective sync; every resource is synced");
        // source (the app's source, echoed by the Argo CD CLI) and syncStrategy (hook/apply)
        // are accepted; Sluice always server-side applies the Application's own source.
        s.rejectUnknown({"revision", "prune", "dryRun", "syncOptions", "resources", "source",
                         "sources", "revisions", "syncStrategy", "manifests"});
        s.rejectUnsupported("manifests", "manifests always come from the source");
        if (auto v = s.string("revision")) out.revision = *v;
        out.revisions = s.strings("revisions");
        if (auto v = s.boolean("prune")) out.prune = *v;
        if (auto v = s.boolean("dryRun")) out.dryRun = *v;
        out.syncOptions = s.strings("syncOptions");
        parseSyncOptionsAt(out.syncOptions, "operation.sync.syncOptions", errors);
        if (const json* strategy = s.object("syncStrategy")) {
            for (const char* kind : {"apply", "hook"}) {
                auto it = strategy->find(kind);
                if (it != strategy->end() && it->is_object() && it->value("force", false))
                    errors.push_back(std::string("operation.sync.syncStrategy.") + kind +
                                     ".force: not supported (objects are never force-replaced)");
            }
        }
    } else if (r.field("sync") == nullptr) {
        r.error("sync", "required");
    }
    if (const json* by = r.object("initiatedBy")) {
        Reader b(*by, "operation.initiatedBy", errors);
        b.rejectUnknown({"username", "automated"});
        if (auto v = b.string("username")) out.initiatedBy = *v;
        if (auto v = b.boolean("automated")) out.automated = *v;
    }
    if (const json* retry = r.object("retry"))
        out.retry = parseRetry(*retry, "operation.retry", errors);
    return out;
}

}  // namespace

SyncOptions SyncOptions::parse(const std::vector<std::string>& options,
                               std::vector<std::string>& errors) {
    return parseSyncOptionsAt(options, "syncPolicy.syncOptions", errors);
}

std::chrono::milliseconds RetryPolicy::delayFor(int attempt) const {
    // Computed in double so large attempts saturate at maxDuration instead of overflowing.
    double ms = static_cast<double>(duration.count()) * std::pow(factor, std::max(attempt, 1) - 1);
    double cap = static_cast<double>(maxDuration.count());
    if (!(ms < cap)) ms = cap;
    return std::chrono::milliseconds(static_cast<long long>(ms));
}

std::optional<std::chrono::milliseconds> parseDuration(const std::string& text) {
    if (text.empty()) return std::nullopt;
    auto isNumberChar = [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
    };
    // A bare number is seconds (Argo CD's backoff fields accept "5" as 5s).
    if (std::all_of(text.begin(), text.end(), isNumberChar)) {
        if (std::count(text.begin(), text.end(), '.') > 1 || text == ".") return std::nullopt;
        double seconds = std::stod(text);
        if (seconds > 1e12) return std::nullopt;
        return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
    }
    // Go's time.ParseDuration: a sequence of <decimal><unit>.
    double total = 0;
    size_t i = 0;
    while (i < text.size()) {
        size_t start = i;
        while (i < text.size() && isNumberChar(text[i])) ++i;
        std::string number = text.substr(start, i - start);
        if (number.empty() || number == "." || std::count(number.begin(), number.end(), '.') > 1)
            return std::nullopt;
        size_t unitStart = i;
        while (i < text.size() && !isNumberChar(text[i])) ++i;
        std::string unit = text.substr(unitStart, i - unitStart);
        double scale = 0;
        if (unit == "ns") scale = 1e-6;
        if (unit == "us" || unit == "\xC2\xB5s") scale = 1e-3;
        if (unit == "ms") scale = 1;
        if (unit == "s") scale = 1000;
        if (unit == "m") scale = 60000;
        if (unit == "h") scale = 3600000;
        if (scale == 0) return std::nullopt;
        total += std::stod(number) * scale;
        if (total > 1e15) return std::nullopt;  // beyond any sensible backoff; avoids overflow
    }
    return std::chrono::milliseconds(static_cast<long long>(total));
}

ParseResult parseApplication(const json& app) {
    ParseResult result;
    auto& errors = result.errors;
    if (!app.is_object()) {
        errors.push_back("Application: must be an object");
        return result;
    }
    auto specIt = app.find("spec");
    if (specIt == app.end() || specIt->is_null()) {
        errors.push_back("spec: required");
    } else if (!specIt->is_object()) {
        errors.push_back("spec: must be an object");
    } else {
        const json& spec = *specIt;
        ApplicationSpec& out = result.spec;
        Reader r(spec, "spec", errors);
        r.rejectUnsupported("sourceHydrator", "use spec.source");
        // info: free-form name/value pairs Argo CD only displays; accepted and unused.
        r.rejectUnknown({"project", "source", "destination", "syncPolicy", "ignoreDifferences",
                         "revisionHistoryLimit", "info", "sources", "sourceHydrator"});
        if (auto project = r.string("project")) {
            if (project->empty()) {
                r.error("project", "must not be empty");
            } else {
                out.project = *project;
            }
        }
        if (const json* source = r.object("source")) {
            out.source = parseSource(*source, "spec.source", errors);
            out.sources = {out.source};
        }
        if (const json* sources = r.array("sources"); sources && !sources->empty()) {
            // Argo CD: with sources set, source is ignored.
            out.multiSource = true;
            out.sources.clear();
            for (size_t i = 0; i < sources->size(); ++i) {
                const std::string at = "spec.sources[" + std::to_string(i) + "]";
                if (!(*sources)[i].is_object()) {
                    errors.push_back(at + ": must be an object");
                    continue;
                }
                out.sources.push_back(parseSource((*sources)[i], at, errors));
            }
            if (!out.sources.empty()) out.source = out.sources.front();
            std::set<std::string> refs;
            for (size_t i = 0; i < out.sources.size(); ++i)
                if (!out.sources[i].ref.empty() && !refs.insert(out.sources[i].ref).second)
                    errors.push_back("spec.sources[" + std::to_string(i) + "].ref: \"" +
                                     out.sources[i].ref + "\" is used by another source");
        }
        if (r.field("source") == nullptr && r.field("sources") == nullptr)
            r.error("source", "required");
        if (const json* destination = r.object("destination")) {
            out.destination = parseDestination(*destination, errors);
        } else if (r.field("destination") == nullptr) {
            r.error("destination", "required");
        }
        if (const json* policy = r.object("syncPolicy"))
            out.syncPolicy = parseSyncPolicy(*policy, errors);
        if (const json* rules = r.array("ignoreDifferences")) {
            for (size_t i = 0; i < rules->size(); ++i) {
                const std::string at = "spec.ignoreDifferences[" + std::to_string(i) + "]";
                if (!(*rules)[i].is_object()) {
                    errors.push_back(at + ": must be an object");
                    continue;
                }
                out.ignoreDifferences.push_back(parseIgnoreRule((*rules)[i], at, errors));
            }
        }
        if (auto limit = r.integer("revisionHistoryLimit")) {
            if (*limit < 0) {
                r.error("revisionHistoryLimit", "must not be negative");
            } else {
                out.revisionHistoryLimit = static_cast<int>(std::min<long long>(*limit, 1 << 20));
            }
        }
    }
    auto opIt = app.find("operation");
    if (opIt != app.end() && !opIt->is_null()) {
        if (!opIt->is_object()) {
            errors.push_back("operation: must be an object");
        } else {
            result.operation = parseOperation(*opIt, errors);
        }
    }
    return result;
}

}  // namespace sluice::appengine
