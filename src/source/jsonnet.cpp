// The .jsonnet files of a directory source (Argo CD's directory.jsonnet), evaluated in-process
// by libjsonnet with every import confined to the source's tree.

// Debian's header declares the C API without extern "C".
extern "C" {
#include <libjsonnet.h>
}

#include <cctype>
#include <cstring>
#include <fstream>
#include <map>

#include "renderers.h"

namespace sluice::source {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Deep enough for real libraries (kube-libsonnet, grafonnet), shallow enough that runaway
// recursion ends as an error rather than exhausting the thread's stack.
constexpr unsigned kMaxJsonnetStack = 500;
// Stack trace lines kept in an error: the message ends up in the Application's status.
constexpr unsigned kMaxJsonnetTrace = 10;

// Argo CD's build environment, substituted into extVar and TLA values.
std::map<std::string, std::string> buildEnv(const RenderInput& in) {
    const RenderContext& c = in.context;
    std::string apiVersions;
    for (const auto& v : c.apiVersions)
        apiVersions.append(apiVersions.empty() ? "" : ",").append(v);
    return {{"ARGOCD_APP_NAME", c.appName},
            {"ARGOCD_APP_NAMESPACE", c.destinationNamespace},
            {"ARGOCD_APP_REVISION", c.revision},
            {"ARGOCD_APP_REVISION_SHORT", c.revision.substr(0, 7)},
            {"ARGOCD_APP_REVISION_SHORT_8", c.revision.substr(0, 8)},
            {"ARGOCD_APP_SOURCE_PATH", in.source.path},
            {"ARGOCD_APP_SOURCE_REPO_URL", in.source.repoURL},
            {"ARGOCD_APP_SOURCE_TARGET_REVISION", in.source.targetRevision},
            {"KUBE_VERSION", c.kubeVersion},
            {"KUBE_API_VERSIONS", apiVersions}};
}

bool shellSpecial(char c) {
    return std::strchr("*#$@!?-0123456789", c) != nullptr && c != 0;
}
bool shellNameChar(char c) {
    return c == '_' || std::isalnum(static_cast<unsigned char>(c));
}

// Go's os.Expand name scanning after a '$': the name and how many characters it spans.
std::pair<std::string, std::size_t> shellName(const std::string& s, std::size_t i) {
    if (s[i] == '{') {
        if (i + 2 < s.size() && shellSpecial(s[i + 1]) && s[i + 2] == '}')
            return {s.substr(i + 1, 1), 3};
        for (std::size_t j = i + 1; j < s.size(); ++j)
            if (s[j] == '}') return {s.substr(i + 1, j - i - 1), j - i + 1};  // "${}": "", 2
        return {"", 1};  // bad syntax: "${" is eaten
    }
    if (shellSpecial(s[i])) return {s.substr(i, 1), 1};
    std::size_t j = i;
    while (j < s.size() && shellNameChar(s[j])) ++j;
    return {s.substr(i, j - i), j - i};
}

// Argo CD's Env.Envsubst: unknown names expand to "", "$$" to "$".
std::string envsubst(const std::string& s, const std::map<std::string, std::string>& env) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '$' || i + 1 == s.size()) {
            out += s[i];
            continue;
        }
        auto [name, width] = shellName(s, i + 1);
        if (name.empty() && width == 0) {
            out += '$';
            continue;
        }
        if (name == "$") {
            out += '$';
        } else if (auto it = env.find(name); it != env.end()) {
            out += it->second;
        }
        i += width;
    }
    return out;
}

// What the import callback needs; libjsonnet hands it back as a void*.
struct ImportContext {
    JsonnetVm* vm = nullptr;
    fs::path root;               // canonical
    fs::path mainDir;            // for imports from extVar / TLA code, which have no file
    std::vector<fs::path> libs;  // canonical, searched last first as go-jsonnet's JPaths
    std::size_t budget = 0;      // bytes of source still allowed to be read
};

std::string relativeName(const fs::path& root, const fs::path& path) {
    return path.lexically_relative(root).generic_string();
}

std::string readBounded(ImportContext& c, const fs::path& path) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec) throw std::runtime_error("cannot read " + relativeName(c.root, path));
    if (size > c.budget)
        throw std::runtime_error("reading " + relativeName(c.root, path) +
                                 " exceeds the render size limit");
    c.budget -= size;
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

// The file an import names: next to the importing file, then in the libs; anything that
// resolves outside the tree (absolute paths, "..", symlinks) is refused, found or not.
std::pair<fs::path, std::string> resolveImport(ImportContext& c, const std::string& base,
                                               const std::string& rel) {
    const fs::path relPath(rel);
    std::vector<fs::path> candidates;
    if (relPath.is_absolute()) {
        candidates.push_back(relPath);
    } else {
        candidates.push_back((base.empty() ? c.mainDir : fs::path(base)) / relPath);
        for (auto it = c.libs.rbegin(); it != c.libs.rend(); ++it)
            candidates.push_back(*it / relPath);
    }
    for (const auto& candidate : candidates) {
        fs::path real;
        try {
            real = insideRoot(c.root, candidate, "import");
        } catch (const render::RenderError&) {
            // libjsonnet prefixes the import's name: "couldn't open import \"x\": ".
            throw std::runtime_error("resolves outside the repository; refused");
        }
        if (fs::is_regular_file(real)) return {real, readBounded(c, real)};
    }
    throw std::runtime_error("not found next to the importing file nor in the libs");
}

char* vmString(JsonnetVm* vm, const std::string& s) {
    char* buf = jsonnet_realloc(vm, nullptr, s.size() + 1);
    std::memcpy(buf, s.c_str(), s.size() + 1);
    return buf;
}

// Replaces libjsonnet's own resolver, which would read any file on the machine.
char* importCallback(void* ctx, const char* base, const char* rel, char** foundHere, int* success) {
    auto* c = static_cast<ImportContext*>(ctx);
    *success = 0;
    try {
        auto [path, content] = resolveImport(*c, base ? base : "", rel ? rel : "");
        *foundHere = vmString(c->vm, path.string());
        *success = 1;
        return vmString(c->vm, content);
    } catch (const std::exception& e) {
        return vmString(c->vm, e.what());
    }
}

class Vm {
  public:
    Vm() : vm_(jsonnet_make()) {}
    ~Vm() { jsonnet_destroy(vm_); }
    Vm(const Vm&) = delete;
    Vm& operator=(const Vm&) = delete;
    JsonnetVm* get() const { return vm_; }

  private:
    JsonnetVm* vm_;
};

void configure(const RenderInput& in, JsonnetVm* vm, ImportContext& ctx) {
    jsonnet_max_stack(vm, kMaxJsonnetStack);
    jsonnet_max_trace(vm, kMaxJsonnetTrace);
    jsonnet_import_callback(vm, importCallback, &ctx);
    if (!in.source.jsonnet) return;
    const auto env = buildEnv(in);
    for (const auto& v : in.source.jsonnet->extVars) {
        const std::string value = envsubst(v.value, env);
        (v.code ? jsonnet_ext_code : jsonnet_ext_var)(vm, v.name.c_str(), value.c_str());
    }
    for (const auto& v : in.source.jsonnet->tlas) {
        const std::string value = envsubst(v.value, env);
        (v.code ? jsonnet_tla_code : jsonnet_tla_var)(vm, v.name.c_str(), value.c_str());
    }
    for (const auto& lib : in.source.jsonnet->libs) {
        // Relative to the repository root even when written with a leading "/", as Argo CD's
        // filepath.Join does.
        const std::string relLib = lib.substr(std::min(lib.find_first_not_of('/'), lib.size()));
        try {
            ctx.libs.push_back(insideRoot(in.root, in.root / relLib, "jsonnet lib"));
        } catch (const render::RenderError&) {
            throw render::RenderError("directory.jsonnet.libs", 0,
                                      "\"" + lib + "\" resolves outside the repository; refused");
        }
    }
}

// The first line libjsonnet's message gives for `file` ("file:3:5-9" or "file:(3:5)-(4:1)").
int errorLine(const std::string& message, const std::string& file) {
    const std::string key = file + ":";
    for (auto pos = message.find(key); pos != std::string::npos; pos = message.find(key, pos + 1)) {
        std::size_t i = pos + key.size();
        if (i < message.size() && message[i] == '(') ++i;
        int line = 0;
        while (i < message.size() && std::isdigit(static_cast<unsigned char>(message[i])) &&
               line < 1000000)
            line = line * 10 + (message[i++] - '0');
        if (line > 0) return line;
    }
    return 0;
}

// libjsonnet's message without the tree's location (a scratch path means nothing to a user).
std::string cleanMessage(std::string message, const fs::path& root) {
    const std::string prefix = root.string() + "/";
    for (auto pos = message.find(prefix); pos != std::string::npos; pos = message.find(prefix, pos))
        message.erase(pos, prefix.size());
    while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back())))
        message.pop_back();
    return message;
}

std::vector<json> flatten(json value) {
    std::vector<json> out;
    if (!value.is_array()) {
        out.push_back(std::move(value));
        return out;
    }
    // Iterative: a deeply nested array must not exhaust the stack.
    std::vector<std::pair<json*, std::size_t>> stack{{&value, 0}};
    while (!stack.empty()) {
        auto& [array, index] = stack.back();
        if (index == array->size()) {
            stack.pop_back();
            continue;
        }
        json& element = (*array)[index++];
        if (element.is_array()) {
            stack.emplace_back(&element, 0);
        } else {
            out.push_back(std::move(element));
        }
    }
    return out;
}

bool isList(const json& v) {
    auto kind = v.find("kind");
    auto items = v.find("items");
    if (kind == v.end() || !kind->is_string() || items == v.end() || !items->is_array())
        return false;
    const auto& k = kind->get_ref<const std::string&>();
    return k.size() >= 4 && k.compare(k.size() - 4, 4, "List") == 0;
}

void checkObject(const json& v, const std::string& file, const std::string& where) {
    auto fail = [&](const std::string& msg) { throw render::RenderError(file, 0, where + msg); };
    if (!v.is_object()) fail("expected a Kubernetes object, got " + std::string(v.type_name()));
    auto nonEmpty = [](const json& o, const char* key) {
        auto it = o.find(key);
        return it != o.end() && it->is_string() && !it->get_ref<const std::string&>().empty();
    };
    if (!nonEmpty(v, "apiVersion")) fail("missing apiVersion");
    if (!nonEmpty(v, "kind")) fail("missing kind");
    auto md = v.find("metadata");
    // generateName alone names resource hooks only: a sync names them when it creates them.
    if (md == v.end() || !md->is_object() ||
        (!nonEmpty(*md, "name") && !(nonEmpty(*md, "generateName") && render::isHookObject(v))))
        fail("missing metadata.name");
}

std::vector<render::Object> toObjects(json value, const std::string& file) {
    std::vector<render::Object> out;
    if (value.is_null() || (value.is_object() && value.empty())) return out;
    const bool many = value.is_array();
    int index = 0;
    for (auto& v : flatten(std::move(value))) {
        const std::string where = many ? "element " + std::to_string(index) + ": " : "";
        if (v.is_object() && isList(v)) {
            int i = 0;
            for (auto& item : v["items"]) {
                checkObject(item, file, where + "item " + std::to_string(i) + ": ");
                out.push_back(render::Object{std::move(item), file, index, i++, 0});
            }
        } else if (!v.is_null()) {
            checkObject(v, file, where);
            out.push_back(render::Object{std::move(v), file, index, -1, 0});
        }
        ++index;
    }
    return out;
}

}  // namespace

std::vector<render::Object> renderJsonnetFile(const RenderInput& input, const fs::path& file) {
    const std::string rel = file.lexically_relative(input.root).generic_string();
    ImportContext ctx;
    ctx.root = fs::weakly_canonical(input.root);
    ctx.budget = input.settings.maxOutputBytes;
    fs::path main;
    std::string source;
    try {
        main = insideRoot(input.root, file, rel);
        ctx.mainDir = main.parent_path();
        source = readBounded(ctx, main);
    } catch (const render::RenderError&) {
        throw render::RenderError(rel, 0, "resolves outside the repository; refused");
    } catch (const std::runtime_error& e) {
        throw render::RenderError(rel, 0, e.what());
    }
    Vm vm;
    ctx.vm = vm.get();
    configure(input, vm.get(), ctx);
    int error = 0;
    char* result = jsonnet_evaluate_snippet(vm.get(), main.c_str(), source.c_str(), &error);
    std::string text(result);
    jsonnet_realloc(vm.get(), result, 0);
    if (error)
        throw render::RenderError(rel, errorLine(text, main.string()),
                                  cleanMessage(text, ctx.root));
    if (text.size() > input.settings.maxOutputBytes)
        throw render::RenderError(rel, 0,
                                  "the evaluated value exceeds the render size limit of " +
                                      std::to_string(input.settings.maxOutputBytes) + " bytes");
    json value;
    try {
        value = json::parse(text);
    } catch (const json::exception& e) {
        throw render::RenderError(rel, 0, std::string("invalid jsonnet output: ") + e.what());
    }
    return toObjects(std::move(value), rel);
}

}  // namespace sluice::source
