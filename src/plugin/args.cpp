#include "args.h"

#include <functional>
#include <map>
#include <optional>

#include "sluice/appengine/spec.h"

namespace sluice::plugin {

namespace {

struct Flag {
    std::string name;  // long name
    char shorthand;    // 0 = none
    bool takesValue;
    bool global;
    std::function<void(Invocation&, const std::string&)> set;
};

bool parseBool(const std::string& flag, const std::string& v) {
    if (v == "true" || v == "1" || v == "t" || v == "T" || v == "TRUE" || v == "True") return true;
    if (v == "false" || v == "0" || v == "f" || v == "F" || v == "FALSE" || v == "False")
        return false;
    throw UsageError("invalid argument \"" + v + "\" for \"--" + flag + "\": not a boolean");
}

const std::vector<Flag>& flags() {
    static const std::vector<Flag> kFlags = {
        {"namespace", 'n', true, true, [](Invocation& i, const std::string& v) { i.ns = v; }},
        {"all-namespaces", 'A', false, true,
         [](Invocation& i, const std::string& v) {
             i.allNamespaces = parseBool("all-namespaces", v);
         }},
        {"kubeconfig", 0, true, true,
         [](Invocation& i, const std::string& v) { i.kubeconfig = v; }},
        {"context", 0, true, true, [](Invocation& i, const std::string& v) { i.context = v; }},
        {"output", 'o', true, true, [](Invocation& i, const std::string& v) { i.output = v; }},
        {"control-namespace", 0, true, true,
         [](Invocation& i, const std::string& v) { i.controlNamespace = v; }},
        {"repo-cache-dir", 0, true, true,
         [](Invocation& i, const std::string& v) { i.repoCacheDir = v; }},
        {"color", 0, true, true,
         [](Invocation& i, const std::string& v) {
             if (v != "auto" && v != "always" && v != "never")
                 throw UsageError("invalid argument \"" + v +
                                  "\" for \"--color\": must be auto, always or never");
             i.color = v;
         }},
        {"help", 'h', false, true,
         [](Invocation& i, const std::string& v) { i.help = parseBool("help", v); }},
        {"revision", 0, true, false, [](Invocation& i, const std::string& v) { i.revision = v; }},
        {"prune", 0, false, false,
         [](Invocation& i, const std::string& v) { i.prune = parseBool("prune", v); }},
        {"dry-run", 0, false, false,
         [](Invocation& i, const std::string& v) { i.dryRun = parseBool("dry-run", v); }},
        {"sync-option", 0, true, false,
         [](Invocation& i, const std::string& v) { i.syncOptions.push_back(v); }},
        {"wait", 0, false, false,
         [](Invocation& i, const std::string& v) { i.wait = parseBool("wait", v); }},
        {"timeout", 0, true, false,
         [](Invocation& i, const std::string& v) {
             auto d = appengine::parseDuration(v);
             if (!d || d->count() <= 0)
                 throw UsageError("invalid argument \"" + v +
                                  "\" for \"--timeout\": expected a duration such as 90s or 5m");
             i.timeout = *d;
         }},
        {"hard", 0, false, false,
         [](Invocation& i, const std::string& v) { i.hard = parseBool("hard", v); }},
        {"refresh", 0, false, false,
         [](Invocation& i, const std::string& v) { i.refresh = parseBool("refresh", v); }},
    };
    return kFlags;
}

const Flag* findLong(const std::string& name) {
    for (const auto& f : flags())
        if (f.name == name) return &f;
    return nullptr;
}

const Flag* findShort(char c) {
    for (const auto& f : flags())
        if (f.shorthand == c) return &f;
    return nullptr;
}

}  // namespace

Invocation parseArgs(const std::vector<std::string>& args) {
    Invocation inv;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--") {
            for (++i; i < args.size(); ++i) inv.words.push_back(args[i]);
            break;
        }
        if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
            std::string name = a.substr(2);
            std::optional<std::string> value;
            if (auto eq = name.find('='); eq != std::string::npos) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
            }
            const Flag* f = findLong(name);
            if (!f) throw UsageError("unknown flag: --" + name);
            if (f->takesValue && !value) {
                if (i + 1 >= args.size()) throw UsageError("flag needs an argument: --" + name);
                value = args[++i];
            }
            f->set(inv, value.value_or("true"));
            inv.given.insert(f->name);
            continue;
        }
        if (a.size() > 1 && a[0] == '-' && a[1] != '-') {
            // Shorthands: "-A", "-n ns", "-nns", "-n=ns", "-ojson"; booleans combine ("-Ah").
            for (std::size_t j = 1; j < a.size(); ++j) {
                const Flag* f = findShort(a[j]);
                if (!f)
                    throw UsageError(std::string("unknown shorthand flag: '") + a[j] + "' in " + a);
                inv.given.insert(f->name);
                if (!f->takesValue) {
                    f->set(inv, "true");
                    continue;
                }
                std::string value = a.substr(j + 1);
                if (!value.empty() && value[0] == '=') value = value.substr(1);
                if (value.empty() && j + 1 == a.size()) {
                    if (i + 1 >= args.size())
                        throw UsageError(std::string("flag needs an argument: '") + a[j] + "' in " +
                                         a);
                    value = args[++i];
                }
                f->set(inv, value);
                break;
            }
            continue;
        }
        inv.words.push_back(a);
    }
    if (inv.allNamespaces && inv.given.count("namespace"))
        throw UsageError("--namespace and --all-namespaces cannot be used together");
    return inv;
}

void checkFlags(const Invocation& inv, const std::string& command,
                const std::set<std::string>& allowed) {
    for (const auto& name : inv.given) {
        const Flag* f = findLong(name);
        if (f && f->global) continue;
        if (!allowed.count(name))
            throw UsageError("unknown flag: --" + name + " (not accepted by \"" + command + "\")");
    }
}

void checkOutput(const Invocation& inv, const std::string& command,
                 const std::set<std::string>& allowed) {
    if (inv.output.empty() || allowed.count(inv.output)) return;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    if (allowed.empty()) throw UsageError("\"" + command + "\" does not accept --output");
    throw UsageError("unable to match a printer suitable for the output format \"" + inv.output +
                     "\" (\"" + command + "\" accepts: " + list + ")");
}

}  // namespace sluice::plugin
