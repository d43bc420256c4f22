// Config management plugins (Argo CD's ConfigManagementPlugin, "CMP v2"). Argo CD runs them in
// repo-server sidecars; Sluice has no sidecars, so the controller runs the plugin's commands
// itself, each in a private copy of the tree, with Argo CD's build environment and nothing of
// the controller's own environment.
#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string_view>

#include "renderers.h"
#include "sluice/source/exec.h"
#include "sluice/util/yaml_json.h"

namespace sluice::source {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using EnvList = std::vector<std::pair<std::string, std::string>>;

// ---- ConfigManagementPlugin documents ----------------------------------------------------

struct DefinitionError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

[[noreturn]] void invalid(const std::string& field, const std::string& message) {
    throw DefinitionError(field + ": " + message);
}

std::string fieldPath(const std::string& at, const std::string& key) {
    return at.empty() ? key : at + "." + key;
}

// obj[key] when present and not null; a missing object reads as null.
const json* fieldOf(const json& obj, const char* key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string stringAt(const json& obj, const char* key, const std::string& at) {
    const json* v = fieldOf(obj, key);
    if (!v) return "";
    if (!v->is_string())
        invalid(fieldPath(at, key),
                v->is_number() ? "must be a string (quote it in YAML)" : "must be a string");
    return v->get<std::string>();
}

const json& objectAt(const json& obj, const char* key, const std::string& at) {
    static const json kNull;
    const json* v = fieldOf(obj, key);
    if (!v) return kNull;
    if (!v->is_object()) invalid(fieldPath(at, key), "must be an object");
    return *v;
}

void checkBool(const json& obj, const char* key, const std::string& at) {
    const json* v = fieldOf(obj, key);
    if (v && !v->is_boolean()) invalid(fieldPath(at, key), "must be true or false");
}

std::vector<std::string> stringsAt(const json& obj, const char* key, const std::string& at) {
    std::vector<std::string> out;
    const json* v = fieldOf(obj, key);
    if (!v) return out;
    if (!v->is_array()) invalid(fieldPath(at, key), "must be a list of strings");
    for (const auto& item : *v) {
        if (!item.is_string()) invalid(fieldPath(at, key), "must be a list of strings");
        out.push_back(item.get<std::string>());
    }
    return out;
}

// A {command, args} block as one argv. Without a command Argo CD skips the step (args alone
// do nothing), so the argv is then empty.
std::vector<std::string> commandAt(const json& block, const std::string& at) {
    std::vector<std::string> argv = stringsAt(block, "command", at);
    if (argv.empty()) return argv;
    for (auto& arg : stringsAt(block, "args", at)) argv.push_back(std::move(arg));
    return argv;
}

// Fields Sluice does not use are still checked, so that a typo in them is not silent.
void checkUnusedFields(const json& spec) {
    const json& parameters = objectAt(spec, "parameters", "spec");
    if (const json* s = fieldOf(parameters, "static"); s && !s->is_array())
        invalid("spec.parameters.static", "must be a list");
    commandAt(objectAt(parameters, "dynamic", "spec.parameters"), "spec.parameters.dynamic");
    for (const char* flag : {"preserveFileMode", "lockRepo", "provideGitCreds"})
        checkBool(spec, flag, "spec");
}

// Argo CD's checks (ValidatePluginConfig): a kind, a name and a generate command.
PluginDefinition parseDefinition(const json& doc) {
    if (!doc.is_object()) invalid("document", "must be a ConfigManagementPlugin object");
    const std::string kind = stringAt(doc, "kind", "");
    if (kind != "ConfigManagementPlugin")
        invalid("kind", "must be ConfigManagementPlugin, not \"" + kind + "\"");
    const std::string apiVersion = stringAt(doc, "apiVersion", "");
    if (!apiVersion.empty() && apiVersion != "argoproj.io/v1alpha1")
        invalid("apiVersion", "must be argoproj.io/v1alpha1, not \"" + apiVersion + "\"");
    PluginDefinition def;
    def.name = stringAt(objectAt(doc, "metadata", ""), "name", "metadata");
    if (def.name.empty()) invalid("metadata.name", "is required");
    const json& spec = objectAt(doc, "spec", "");
    def.version = stringAt(spec, "version", "spec");
    def.init = commandAt(objectAt(spec, "init", "spec"), "spec.init");
    def.generate = commandAt(objectAt(spec, "generate", "spec"), "spec.generate");
    if (def.generate.empty()) invalid("spec.generate.command", "is required");
    const json& discover = objectAt(spec, "discover", "spec");
    def.discoverFileName = stringAt(discover, "fileName", "spec.discover");
    const json& find = objectAt(discover, "find", "spec.discover");
    def.discoverFindGlob = stringAt(find, "glob", "spec.discover.find");
    def.discoverFind = commandAt(find, "spec.discover.find");
    checkUnusedFields(spec);
    return def;
}

// ---- discovery ---------------------------------------------------------------------------

// How a discover pattern is read: discover.fileName with Go's filepath.Glob ('*', '?', '[...]'
// within one path element), discover.find.glob with go-zglob (only '*' is special, and a
// "**" element matches any number of directories).
enum class GlobKind { Go, Zglob };

bool starMatch(const char* pat, const char* s) {
    for (; *pat; ++pat, ++s) {
        if (*pat == '*') {
            for (const char* rest = s;; ++rest) {
                if (starMatch(pat + 1, rest)) return true;
                if (!*rest) return false;
            }
        }
        if (*s != *pat) return false;
    }
    return !*s;
}

bool elementMatch(const std::string& pat, const std::string& name, GlobKind kind) {
    // No FNM_PERIOD: Go's patterns match leading dots like any other character.
    if (kind == GlobKind::Go) return fnmatch(pat.c_str(), name.c_str(), 0) == 0;
    return starMatch(pat.c_str(), name.c_str());
}

bool isPattern(const std::string& element, GlobKind kind) {
    return element.find_first_of(kind == GlobKind::Go ? "*?[\\" : "*") != std::string::npos;
}

bool elementsMatch(const std::vector<std::string>& pat, size_t i,
                   const std::vector<std::string>& path, size_t j, GlobKind kind) {
    if (i == pat.size()) return j == path.size();
    if (kind == GlobKind::Zglob && pat[i] == "**" && i + 1 < pat.size()) {
        for (size_t k = j; k <= path.size(); ++k)
            if (elementsMatch(pat, i + 1, path, k, kind)) return true;
        return false;
    }
    return j < path.size() && elementMatch(pat[i], path[j], kind) &&
           elementsMatch(pat, i + 1, path, j + 1, kind);
}

// Whether anything under the walk's base matches the pattern's elements `rest`.
bool walkMatches(const fs::path& base, const std::vector<std::string>& rest, GlobKind kind) {
    bool anyDepth = false;
    for (const auto& e : rest) anyDepth = anyDepth || (kind == GlobKind::Zglob && e == "**");
    std::error_code ec;
    fs::recursive_directory_iterator it(base, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        std::vector<std::string> rel;
        for (const auto& part : it->path().lexically_relative(base)) rel.push_back(part.string());
        // zglob never reports symlinks.
        std::error_code linkEc;
        const bool link = it->is_symlink(linkEc);
        if ((kind == GlobKind::Go || !link) && elementsMatch(rest, 0, rel, 0, kind)) return true;
        if (!anyDepth && static_cast<size_t>(it.depth()) + 1 >= rest.size())
            it.disable_recursion_pending();
    }
    return false;
}

// Argo CD joins the pattern to the app directory (filepath.Join, which also resolves ".."),
// then globs the file system. Matches outside the tree do not count.
bool globMatchesTree(const fs::path& root, const fs::path& appDir, const std::string& pattern,
                     GlobKind kind) {
    const fs::path full = (appDir / fs::path(pattern).relative_path()).lexically_normal();
    fs::path base;
    std::vector<std::string> rest;
    for (const auto& part : full) {
        const std::string element = part.string();
        if (element.empty()) continue;  // a trailing '/'
        if (rest.empty() && !isPattern(element, kind))
            base /= part;
        else
            rest.push_back(element);
    }
    fs::path top = root.lexically_normal();
    if (!top.has_filename()) top = top.parent_path();  // a trailing '/'
    const fs::path inTree = base.lexically_relative(top);
    if (inTree.empty() || *inTree.begin() == "..") return false;
    std::error_code ec;
    if (rest.empty()) return fs::exists(fs::symlink_status(base, ec));
    return fs::is_directory(base, ec) && walkMatches(base, rest, kind);
}

bool hasDiscovery(const PluginDefinition& def) {
    return !def.discoverFileName.empty() || !def.discoverFindGlob.empty() ||
           !def.discoverFind.empty();
}

// ---- environment -------------------------------------------------------------------------

bool isShellSpecial(char c) {
    return std::string_view("*#$@!?-").find(c) != std::string_view::npos ||
           std::isdigit(static_cast<unsigned char>(c));
}

// The variable name after a '$' and how many characters it takes (Go's os.Expand rules); an
// empty name with a width is bad syntax, which is dropped.
std::pair<std::string, size_t> shellName(std::string_view s) {
    if (s[0] == '{') {
        if (s.size() > 2 && isShellSpecial(s[1]) && s[2] == '}')
            return {std::string(s.substr(1, 1)), 3};
        for (size_t i = 1; i < s.size(); ++i)
            if (s[i] == '}') return {i == 1 ? "" : std::string(s.substr(1, i - 1)), i + 1};
        return {"", 1};
    }
    if (isShellSpecial(s[0])) return {std::string(s.substr(0, 1)), 1};
    size_t i = 0;
    while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
    return {std::string(s.substr(0, i)), i};
}

// Argo CD expands $VAR and ${VAR} in the Application's plugin env values against the build
// environment ("$$" is a literal '$'; unknown names expand to nothing).
std::string envsubst(const std::string& value, const std::map<std::string, std::string>& vars) {
    std::string out;
    for (size_t j = 0; j < value.size(); ++j) {
        if (value[j] != '$' || j + 1 == value.size()) {
            out += value[j];
            continue;
        }
        auto [name, width] = shellName(std::string_view(value).substr(j + 1));
        if (name == "$") {
            out += '$';
        } else if (!name.empty()) {
            auto it = vars.find(name);
            if (it != vars.end()) out += it->second;
        } else if (width == 0) {
            out += '$';
        }
        j += width;
    }
    return out;
}

std::string envName(const std::string& name) {
    std::string out;
    for (char c : name) {
        const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        out += (std::isalnum(static_cast<unsigned char>(u)) && !(u & 0x80)) ? u : '_';
    }
    return out;
}

std::string scalarText(const json& v) {
    return v.is_string() ? v.get<std::string>() : v.dump();
}

// spec.source.plugin.parameters as Argo CD passes them: the JSON list, and PARAM_<NAME> for a
// string, PARAM_<NAME>_<i> for an array, PARAM_<NAME>_<KEY> for a map.
void addParameters(const json& parameters, EnvList& env) {
    env.emplace_back("ARGOCD_APP_PARAMETERS", parameters.is_array() ? parameters.dump() : "[]");
    if (!parameters.is_array()) return;
    for (const auto& p : parameters) {
        if (!p.is_object()) continue;
        const std::string base = "PARAM_" + envName(p.value("name", ""));
        if (const json* s = fieldOf(p, "string")) env.emplace_back(base, scalarText(*s));
        if (const json* m = fieldOf(p, "map"); m && m->is_object())
            for (const auto& [key, value] : m->items())
                env.emplace_back(base + "_" + envName(key), scalarText(value));
        if (const json* a = fieldOf(p, "array"); a && a->is_array())
            for (size_t i = 0; i < a->size(); ++i)
                env.emplace_back(base + "_" + std::to_string(i), scalarText((*a)[i]));
    }
}

std::string joined(const std::vector<std::string>& items, const std::string& sep) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : sep) + item;
    return out;
}

// Argo CD's variables for a plugin: the build environment (newEnv plus KUBE_*), the
// Application's env prefixed with ARGOCD_ENV_ (so it cannot set PATH and the like), and the
// parameters.
EnvList pluginVariables(const RenderInput& in) {
    const RenderContext& ctx = in.context;
    std::string kubeVersion = ctx.kubeVersion;  // Argo CD's text.SemVer: '+' removed
    kubeVersion.erase(std::remove(kubeVersion.begin(), kubeVersion.end(), '+'), kubeVersion.end());
    // ARGOCD_APP_NAMESPACE is the destination namespace in Argo CD (ManifestRequest.Namespace).
    EnvList env = {{"ARGOCD_APP_NAME", ctx.appName},
                   {"ARGOCD_APP_NAMESPACE", ctx.destinationNamespace},
                   {"ARGOCD_APP_REVISION", ctx.revision},
                   {"ARGOCD_APP_REVISION_SHORT", ctx.revision.substr(0, 7)},
                   {"ARGOCD_APP_REVISION_SHORT_8", ctx.revision.substr(0, 8)},
                   {"ARGOCD_APP_SOURCE_REPO_URL", in.source.repoURL},
                   {"ARGOCD_APP_SOURCE_PATH", in.source.path},
                   {"ARGOCD_APP_SOURCE_TARGET_REVISION", in.source.targetRevision},
                   {"KUBE_VERSION", kubeVersion},
                   {"KUBE_API_VERSIONS", joined(ctx.apiVersions, ",")}};
    if (!in.source.plugin) return env;
    const std::map<std::string, std::string> build(env.begin(), env.end());
    for (const auto& [name, value] : in.source.plugin->env)
        env.emplace_back("ARGOCD_ENV_" + name, envsubst(value, build));
    addParameters(in.source.plugin->parameters, env);
    return env;
}

// ---- running -----------------------------------------------------------------------------

// A private copy of the whole tree (Argo CD sends the whole repository to the plugin), with
// the app directory in it. Real copies, not hard links: trees are shared by every
// Application at a commit, and a plugin that rewrites a file in place must not change them.
fs::path privateCopy(const RenderInput& in, const std::string& name) {
    const fs::path copy = in.scratch / name;
    fs::copy(in.root, copy, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    return (copy / fs::relative(in.appDir, in.root)).lexically_normal();
}

std::string lastPart(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.size() > 4096) text = "..." + text.substr(text.size() - 4096);
    return text;
}

// Runs one of the plugin's commands in `cwd`. Throws RenderError naming the plugin and step
// when it fails to run or exits non-zero, quoting what it wrote to stderr.
std::string runStep(const RenderInput& in, const PluginDefinition& def, const std::string& step,
                    std::vector<std::string> argv, const fs::path& cwd, const EnvList& vars) {
    const std::string where = "plugin " + def.fullName();
    // As Go's exec.Cmd does, a relative command with a '/' is relative to the directory.
    if (argv[0].find('/') != std::string::npos && argv[0][0] != '/')
        argv[0] = (cwd / argv[0]).string();
    fs::create_directories(in.scratch / "home");
    ToolRun run;
    run.env = toolEnvironment(in.scratch / "home", argv[0]);
    for (const auto& [name, value] : vars)
        if (!value.empty()) run.env[name] = value;  // Argo CD passes no empty variables
    run.argv = std::move(argv);
    run.cwd = cwd;
    run.timeout = in.settings.timeout;
    run.maxOutputBytes = in.settings.maxOutputBytes;
    ToolResult result;
    try {
        result = runTool(run);
    } catch (const render::RenderError& e) {
        std::string message = e.what();
        if (message.rfind(e.file() + ": ", 0) == 0) message.erase(0, e.file().size() + 2);
        throw render::RenderError(where, 0, step + ": " + message);
    }
    if (result.exitCode != 0)
        throw render::RenderError(
            where, 0,
            step + " failed (exit code " + std::to_string(result.exitCode) +
                "): " + lastPart(result.err.empty() ? result.out : result.err));
    return std::move(result.out);
}

// Decides whether plugins' discover rules match, making the copy find commands run in (they
// may write) on first need.
struct Discovery {
    const RenderInput& in;
    const EnvList& vars;
    fs::path findDir;

    // Argo CD's order: fileName, else find.glob, else find.command; only the first is used.
    bool matches(const PluginDefinition& def) {
        if (!def.discoverFileName.empty())
            return globMatchesTree(in.root, in.appDir, def.discoverFileName, GlobKind::Go);
        if (!def.discoverFindGlob.empty())
            return globMatchesTree(in.root, in.appDir, def.discoverFindGlob, GlobKind::Zglob);
        if (def.discoverFind.empty()) return false;
        if (findDir.empty()) findDir = privateCopy(in, "discover");
        std::string out;
        try {
            out = runStep(in, def, "discover.find", def.discoverFind, findDir, vars);
        } catch (const render::RenderError&) {
            return false;  // a failing find command does not claim the source
        }
        if (!out.empty() && out.back() == '\n') out.pop_back();
        return !out.empty();
    }
};

std::string definedNames(const std::vector<PluginDefinition>& defs) {
    std::vector<std::string> names;
    for (const auto& d : defs) names.push_back(d.fullName());
    return names.empty() ? "none is defined" : "defined: " + joined(names, ", ");
}

// The named plugin (which, as in Argo CD, must also match its discover rule when it has one),
// or the first whose discover rule matches.
const PluginDefinition& choosePlugin(const std::vector<PluginDefinition>& defs,
                                     const RenderInput& in, const EnvList& vars) {
    Discovery discovery{in, vars, {}};
    const std::string& name = in.source.plugin ? in.source.plugin->name : std::string();
    if (!name.empty()) {
        for (const auto& def : defs) {
            if (def.fullName() != name) continue;
            if (hasDiscovery(def) && !discovery.matches(def))
                throw render::RenderError("plugin " + name, 0,
                                          "the plugin's discover rule does not match " +
                                              (in.source.path.empty() ? "." : in.source.path));
            return def;
        }
        throw render::RenderError("plugin " + name, 0,
                                  "no plugin named \"" + name +
                                      "\" is defined (ConfigManagementPlugins of the plugin "
                                      "ConfigMap; " +
                                      definedNames(defs) + ")");
    }
    for (const auto& def : defs)
        if (hasDiscovery(def) && discovery.matches(def)) return def;
    throw render::RenderError(
        in.source.path.empty() ? "." : in.source.path, 0,
        "no plugin's discover rule matches this source (" + definedNames(defs) + ")");
}

// The end of the JSON value starting at `i` ('{' or '['), or npos when it is not closed.
size_t jsonValueEnd(const std::string& text, size_t i) {
    int depth = 0;
    bool inString = false;
    for (; i < text.size(); ++i) {
        const char c = text[i];
        if (inString) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                inString = false;
        } else if (c == '"') {
            inString = true;
        } else if (c == '{' || c == '[') {
            ++depth;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return std::string::npos;
}

// Concatenated JSON objects (`jq -c '.items[]'`), which Argo CD's YAML-or-JSON decoder reads
// one after another, as a YAML stream; nullopt when the output is not such a sequence.
std::optional<std::string> jsonSequence(const std::string& out) {
    const char* const kSpace = " \t\r\n";
    size_t i = out.find_first_not_of(kSpace);
    std::string stream;
    int count = 0;
    while (i != std::string::npos) {
        if (out[i] != '{' && out[i] != '[') return std::nullopt;
        const size_t end = jsonValueEnd(out, i);
        if (end == std::string::npos) return std::nullopt;
        stream += (count++ ? "---\n" : "") + out.substr(i, end - i) + "\n";
        i = out.find_first_not_of(kSpace, end);
    }
    if (count < 2) return std::nullopt;
    return stream;
}

std::uint64_t fnv1a(const std::string& text) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
    return h;
}

class PluginRenderer : public Renderer {
  public:
    std::vector<render::Object> render(const RenderInput& in) override {
        const std::vector<PluginDefinition> defs =
            in.settings.plugins ? in.settings.plugins() : std::vector<PluginDefinition>{};
        const std::string shownPath = in.source.path.empty() ? "." : in.source.path;
        if (!fs::is_directory(in.appDir))
            throw render::RenderError(shownPath, 0, "the source path is not a directory");
        const EnvList vars = pluginVariables(in);
        const PluginDefinition& def = choosePlugin(defs, in, vars);
        const fs::path cwd = privateCopy(in, "tree");
        if (!def.init.empty()) runStep(in, def, "init", def.init, cwd, vars);
        const std::string out = runStep(in, def, "generate", def.generate, cwd, vars);
        const std::string tool = "plugin " + def.fullName();
        if (auto sequence = jsonSequence(out)) return parseToolOutput(*sequence, tool);
        return parseToolOutput(out, tool);
    }

    // The definitions count: editing a plugin renders its sources anew.
    std::string version(const Settings& settings) override {
        json defs = json::array();
        try {
            if (settings.plugins)
                for (const auto& d : settings.plugins())
                    defs.push_back({d.name, d.version, d.init, d.generate, d.discoverFileName,
                                    d.discoverFind, d.discoverFindGlob});
        } catch (const std::exception&) {
            // Rendering reports the problem; the key only has to be stable.
        }
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx",
                      static_cast<unsigned long long>(fnv1a(defs.dump())));
        return std::string("plugin-1:") + hex;
    }
};

}  // namespace

std::vector<PluginDefinition> parsePluginConfigMap(const json& configMap,
                                                   std::vector<std::string>& errors) {
    std::vector<PluginDefinition> out;
    const json* data = fieldOf(configMap, "data");
    if (!data) return out;
    if (!data->is_object()) {
        errors.push_back("data: must be a map of ConfigManagementPlugin documents");
        return out;
    }
    std::map<std::string, std::string> keyOf;  // full name -> the key defining it
    for (const auto& [key, value] : data->items()) {
        const std::string at = "data[\"" + key + "\"]";
        try {
            if (!value.is_string()) invalid("value", "must be a YAML document");
            PluginDefinition def = parseDefinition(yamlToJson(value.get<std::string>()));
            auto [it, fresh] = keyOf.emplace(def.fullName(), key);
            if (!fresh)
                invalid("metadata.name", "plugin " + def.fullName() + " is already defined by " +
                                             "data[\"" + it->second + "\"]");
            out.push_back(std::move(def));
        } catch (const YamlError& e) {
            const std::string line = e.line > 0 ? "line " + std::to_string(e.line) + ": " : "";
            errors.push_back(at + ": " + line + "invalid YAML: " + e.what());
        } catch (const DefinitionError& e) {
            errors.push_back(at + ": " + e.what());
        }
    }
    return out;
}

std::unique_ptr<Renderer> makePluginRenderer() {
    return std::make_unique<PluginRenderer>();
}

}  // namespace sluice::source
