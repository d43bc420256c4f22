#include "sluice/kube/config.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include "exec_credential.h"
#include "sluice/kube/errors.h"
#include "sluice/util/base64.h"
#include "sluice/util/yaml_json.h"

namespace sluice::kube {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::optional<std::string> readFile(const fs::path& path, std::string* err) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (err) *err = std::strerror(errno);
        return std::nullopt;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) {
        if (err) *err = "read error";
        return std::nullopt;
    }
    return ss.str();
}

std::string trim(std::string s) {
    const char* ws = " \t\r\n";
    auto b = s.find_first_not_of(ws);
    if (b == std::string::npos) return {};
    auto e = s.find_last_not_of(ws);
    return s.substr(b, e - b + 1);
}

bool looksLikePem(const std::string& s) {
    return s.find("-----BEGIN ") != std::string::npos;
}

std::string homeDir() {
    if (const char* h = std::getenv("HOME"); h && *h) return h;
    if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_dir) return pw->pw_dir;
    return {};
}

// One kubeconfig file as parsed.
struct KubeFile {
    std::string path;
    json doc;
};

// A named entry (cluster, user or context) and where it was defined, for messages and for
// resolving relative paths.
struct Entry {
    const KubeFile* file = nullptr;
    std::string field;  // e.g. "users[0]"
    json body;          // the inner object (entry.cluster / entry.user / entry.context)
};

[[noreturn]] void fail(const std::string& file, const std::string& field, const std::string& msg) {
    throw ConfigError("kubeconfig " + file + ": " + field + ": " + msg);
}

class FieldReader {
  public:
    FieldReader(const Entry& e, std::string inner) : e_(e), prefix_(e.field + "." + inner) {}

    std::string field(const std::string& key) const { return prefix_ + "." + key; }
    const std::string& file() const { return e_.file->path; }
    bool has(const std::string& key) const {
        return e_.body.is_object() && e_.body.contains(key) && !e_.body[key].is_null();
    }
    std::string str(const std::string& key) const {
        if (!has(key)) return {};
        const json& v = e_.body[key];
        if (!v.is_string()) fail(file(), field(key), "not a string");
        return v.get<std::string>();
    }
    bool boolean(const std::string& key) const {
        if (!has(key)) return false;
        const json& v = e_.body[key];
        if (!v.is_boolean()) fail(file(), field(key), "not a boolean");
        return v.get<bool>();
    }
    // Relative paths are relative to the kubeconfig that defined the entry.
    fs::path resolve(const std::string& p) const {
        fs::path path(p);
        if (path.is_relative()) path = fs::path(file()).parent_path() / path;
        return path.lexically_normal();
    }
    std::string readPathField(const std::string& key) const {
        auto path = resolve(str(key));
        std::string err;
        auto content = readFile(path, &err);
        if (!content) fail(file(), field(key), "cannot read " + path.string() + ": " + err);
        return *content;
    }
    std::string base64Field(const std::string& key, bool pem) const {
        // Line breaks and spaces are ignored, as Go's decoder does for kubeconfig []byte
        // fields; nothing but whitespace is invalid.
        auto decoded = base64Decode(str(key), Base64Whitespace::Skip);
        if (!decoded || decoded->empty()) fail(file(), field(key), "invalid base64");
        if (pem && !looksLikePem(*decoded)) fail(file(), field(key), "not PEM data");
        return *decoded;
    }
    // "*-data" (base64) wins over the file field, as in kubectl.
    std::string pemFrom(const std::string& dataKey, const std::string& fileKey) const {
        if (!str(dataKey).empty()) return base64Field(dataKey, true);
        if (!str(fileKey).empty()) {
            auto pem = readPathField(fileKey);
            if (!looksLikePem(pem))
                fail(file(), field(fileKey), resolve(str(fileKey)).string() + " is not PEM data");
            return pem;
        }
        return {};
    }

  private:
    const Entry& e_;
    std::string prefix_;
};

// Collects name -> entry from every file; the first file defining a name wins (kubectl).
void collect(const KubeFile& f, const char* listKey, const char* innerKey,
             std::map<std::string, Entry>& out) {
    if (!f.doc.is_object() || !f.doc.contains(listKey) || f.doc[listKey].is_null()) return;
    const json& list = f.doc[listKey];
    if (!list.is_array()) fail(f.path, listKey, "not a list");
    for (size_t i = 0; i < list.size(); ++i) {
        std::string field = std::string(listKey) + "[" + std::to_string(i) + "]";
        const json& item = list[i];
        if (!item.is_object()) fail(f.path, field, "not a mapping");
        auto name = item.find("name");
        if (name == item.end() || !name->is_string() || name->get<std::string>().empty())
            fail(f.path, field + ".name", "missing");
        if (out.count(*name)) continue;
        json body = item.contains(innerKey) ? item[innerKey] : json::object();
        if (body.is_null()) body = json::object();
        if (!body.is_object()) fail(f.path, field + "." + innerKey, "not a mapping");
        out.emplace(name->get<std::string>(), Entry{&f, field, std::move(body)});
    }
}

KubeFile parseFile(const std::string& path) {
    std::string err;
    auto text = readFile(path, &err);
    if (!text) throw ConfigError("kubeconfig " + path + ": cannot read file: " + err);
    KubeFile f;
    f.path = path;
    try {
        f.doc = yamlToJson(*text);
    } catch (const YamlError& e) {
        throw ConfigError("kubeconfig " + path + ": line " + std::to_string(e.line) +
                          ": invalid YAML: " + e.what());
    }
    if (f.doc.is_null()) f.doc = json::object();
    if (!f.doc.is_object()) throw ConfigError("kubeconfig " + path + ": not a YAML mapping");
    return f;
}

// users[].user.exec, as client-go reads it.
ExecConfig readExec(const Entry& user) {
    const std::string& file = user.file->path;
    const std::string prefix = user.field + ".user.exec";
    const json& body = user.body["exec"];
    if (!body.is_object()) fail(file, prefix, "not a mapping");
    Entry execEntry{user.file, user.field, body};
    FieldReader x(execEntry, "user.exec");
    ExecConfig e;
    e.command = x.str("command");
    if (e.command.empty()) fail(file, x.field("command"), "missing");
    // kubectl: a relative path with a slash is relative to the kubeconfig; a bare name is
    // looked up in $PATH when the plugin runs.
    if (e.command.find('/') != std::string::npos) e.command = x.resolve(e.command).string();
    if (x.has("args")) {
        const json& args = body["args"];
        if (!args.is_array()) fail(file, x.field("args"), "not a list");
        for (size_t i = 0; i < args.size(); ++i) {
            if (!args[i].is_string())
                fail(file, x.field("args") + "[" + std::to_string(i) + "]", "not a string");
            e.args.push_back(args[i].get<std::string>());
        }
    }
    if (x.has("env")) {
        const json& env = body["env"];
        if (!env.is_array()) fail(file, x.field("env"), "not a list");
        for (size_t i = 0; i < env.size(); ++i) {
            std::string field = x.field("env") + "[" + std::to_string(i) + "]";
            const json& item = env[i];
            if (!item.is_object()) fail(file, field, "not a mapping");
            auto name = item.find("name");
            if (name == item.end() || !name->is_string() || name->get<std::string>().empty() ||
                name->get<std::string>().find('=') != std::string::npos)
                fail(file, field + ".name", "missing or invalid");
            auto value = item.find("value");
            std::string v;
            if (value != item.end() && !value->is_null()) {
                if (!value->is_string()) fail(file, field + ".value", "not a string");
                v = value->get<std::string>();
            }
            e.env.push_back({name->get<std::string>(), std::move(v)});
        }
    }
    // kubectl refuses an exec entry without apiVersion.
    e.apiVersion = x.str("apiVersion");
    if (e.apiVersion.empty()) fail(file, x.field("apiVersion"), "missing");
    if (!detail::isSupportedExecApiVersion(e.apiVersion))
        fail(file, x.field("apiVersion"),
             "\"" + e.apiVersion + "\" is not " + detail::kExecApiV1 + " or " +
                 detail::kExecApiV1beta1);
    e.installHint = x.str("installHint");
    e.provideClusterInfo = x.boolean("provideClusterInfo");
    // Checked as kubectl does, but the plugin always runs without a terminal (see ExecConfig).
    e.interactiveMode = x.str("interactiveMode");
    if (!e.interactiveMode.empty() && e.interactiveMode != "Never" &&
        e.interactiveMode != "IfAvailable" && e.interactiveMode != "Always")
        fail(file, x.field("interactiveMode"),
             "\"" + e.interactiveMode + "\" is not Never, IfAvailable or Always");
    return e;
}

ClusterConfig buildConfig(const std::vector<KubeFile>& files, const std::string& wantContext) {
    std::map<std::string, Entry> clusters, users, contexts;
    for (const auto& f : files) {
        collect(f, "clusters", "cluster", clusters);
        collect(f, "users", "user", users);
        collect(f, "contexts", "context", contexts);
    }
    const std::string& firstFile = files.front().path;

    std::string ctxName = wantContext;
    if (ctxName.empty()) {
        for (const auto& f : files) {
            auto it = f.doc.find("current-context");
            if (it != f.doc.end() && it->is_string() && !it->get<std::string>().empty()) {
                ctxName = *it;
                break;
            }
        }
        if (ctxName.empty()) fail(firstFile, "current-context", "not set and no context was given");
    }
    auto ctxIt = contexts.find(ctxName);
    if (ctxIt == contexts.end())
        fail(firstFile, "contexts", "no context named \"" + ctxName + "\"");
    const Entry& ctx = ctxIt->second;
    FieldReader c(ctx, "context");

    ClusterConfig cfg;
    cfg.source = "kubeconfig " + ctx.file->path + " context " + ctxName;
    if (auto ns = c.str("namespace"); !ns.empty()) cfg.defaultNamespace = ns;

    // Cluster.
    std::string clusterName = c.str("cluster");
    if (clusterName.empty()) fail(c.file(), c.field("cluster"), "missing");
    auto clIt = clusters.find(clusterName);
    if (clIt == clusters.end())
        fail(c.file(), c.field("cluster"), "no cluster named \"" + clusterName + "\"");
    FieldReader cl(clIt->second, "cluster");
    cfg.server = cl.str("server");
    if (cfg.server.empty()) fail(cl.file(), cl.field("server"), "missing");
    if (cfg.server.rfind("https://", 0) != 0 && cfg.server.rfind("http://", 0) != 0)
        fail(cl.file(), cl.field("server"), "not an http(s) URL: " + cfg.server);
    while (cfg.server.size() > 1 && cfg.server.back() == '/') cfg.server.pop_back();
    cfg.caPem = cl.pemFrom("certificate-authority-data", "certificate-authority");
    cfg.insecureSkipTlsVerify = cl.boolean("insecure-skip-tls-verify");
    if (cfg.insecureSkipTlsVerify && !cfg.caPem.empty())
        fail(cl.file(), cl.field("insecure-skip-tls-verify"),
             "not allowed together with a certificate authority");
    cfg.tlsServerName = cl.str("tls-server-name");

    // User (a context without one means anonymous access).
    std::string userName = c.str("user");
    if (!userName.empty()) {
        auto uIt = users.find(userName);
        if (uIt == users.end())
            fail(c.file(), c.field("user"), "no user named \"" + userName + "\"");
        FieldReader u(uIt->second, "user");
        if (u.has("exec")) cfg.exec = readExec(uIt->second);
        if (u.has("auth-provider"))
            fail(u.file(), u.field("auth-provider"),
                 "auth-provider plugins are not supported; use a token, tokenFile or client "
                 "certificate");
        cfg.token = trim(u.str("token"));
        if (!u.str("tokenFile").empty()) {
            auto path = u.resolve(u.str("tokenFile"));
            std::string err;
            if (!readFile(path, &err))
                fail(u.file(), u.field("tokenFile"), "cannot read " + path.string() + ": " + err);
            cfg.tokenFile = path.string();
        }
        cfg.clientCertPem = u.pemFrom("client-certificate-data", "client-certificate");
        cfg.clientKeyPem = u.pemFrom("client-key-data", "client-key");
        if (!cfg.clientCertPem.empty() && cfg.clientKeyPem.empty())
            fail(u.file(), u.field("client-key"), "missing (a client certificate needs its key)");
        if (cfg.clientCertPem.empty() && !cfg.clientKeyPem.empty())
            fail(u.file(), u.field("client-certificate"),
                 "missing (a client key needs its certificate)");
        cfg.username = u.str("username");
        cfg.password = u.str("password");
        cfg.impersonateUser = u.str("as");
        const json& body = uIt->second.body;
        if (auto g = body.find("as-groups"); g != body.end() && !g->is_null()) {
            if (!g->is_array()) fail(u.file(), u.field("as-groups"), "not a list");
            for (const json& group : *g) {
                if (!group.is_string()) fail(u.file(), u.field("as-groups"), "not a string list");
                cfg.impersonateGroups.push_back(group.get<std::string>());
            }
        }
    }
    return cfg;
}

}  // namespace

ClusterConfig loadKubeconfig(const std::string& path, const std::string& context) {
    std::vector<KubeFile> files;
    if (!path.empty()) {
        files.push_back(parseFile(path));
    } else if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
        // kubectl skips list entries that do not exist, but not ones it cannot read or parse.
        std::vector<std::string> seen;
        std::stringstream ss(env);
        std::string item;
        while (std::getline(ss, item, ':')) {
            if (item.empty() || std::find(seen.begin(), seen.end(), item) != seen.end()) continue;
            seen.push_back(item);
            std::error_code ec;
            if (!fs::exists(item, ec)) continue;
            files.push_back(parseFile(item));
        }
        if (files.empty())
            throw ConfigError(std::string("kubeconfig $KUBECONFIG=") + env +
                              ": none of the listed files exists");
    } else {
        std::string home = homeDir();
        if (home.empty()) throw ConfigError("kubeconfig: $HOME is not set and no path was given");
        files.push_back(parseFile((fs::path(home) / ".kube" / "config").string()));
    }
    return buildConfig(files, context);
}

ClusterConfig loadInCluster(const fs::path& saDir) {
    const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
    const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port)
        throw ConfigError(
            "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set "
            "(not running in a Pod?)");
    std::string h = host;
    if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";  // IPv6

    ClusterConfig cfg;
    cfg.server = "https://" + h + ":" + port;
    auto tokenPath = saDir / "token";
    std::string err;
    if (!readFile(tokenPath, &err))
        throw ConfigError("in-cluster config: cannot read token " + tokenPath.string() + ": " +
                          err);
    // Kept as a file so the kubelet's token rotation is followed.
    cfg.tokenFile = tokenPath.string();
    auto caPath = saDir / "ca.crt";
    auto ca = readFile(caPath, &err);
    if (!ca) throw ConfigError("in-cluster config: cannot read " + caPath.string() + ": " + err);
    if (!looksLikePem(*ca))
        throw ConfigError("in-cluster config: " + caPath.string() + " is not PEM");
    cfg.caPem = *ca;
    if (auto ns = readFile(saDir / "namespace", nullptr); ns && !trim(*ns).empty())
        cfg.defaultNamespace = trim(*ns);
    cfg.source = "in-cluster " + saDir.string();
    return cfg;
}

ClusterConfig loadDefaultConfig(const std::string& kubeconfigPath, const std::string& context) {
    if (!kubeconfigPath.empty()) return loadKubeconfig(kubeconfigPath, context);
    if (const char* env = std::getenv("KUBECONFIG"); env && *env)
        return loadKubeconfig("", context);
    std::string home = homeDir();
    std::error_code ec;
    if (!home.empty() && fs::exists(fs::path(home) / ".kube" / "config", ec))
        return loadKubeconfig("", context);
    try {
        return loadInCluster();
    } catch (const ConfigError& e) {
        throw ConfigError(std::string("no kubeconfig found ($KUBECONFIG unset, no ~/.kube/config) "
                                      "and ") +
                          e.what());
    }
}

TokenSource::TokenSource(ClusterConfig cfg)
    : fixed_(std::move(cfg.token)), file_(std::move(cfg.tokenFile)) {
    usesExec_ = fixed_.empty() && file_.empty() && cfg.exec.enabled();
    if (usesExec_) {
        exec_ = cfg.exec;
        // What provideClusterInfo may pass on; no credentials.
        cluster_.server = cfg.server;
        cluster_.caPem = cfg.caPem;
        cluster_.tlsServerName = cfg.tlsServerName;
        cluster_.insecureSkipTlsVerify = cfg.insecureSkipTlsVerify;
    }
}

std::string TokenSource::token() {
    if (usesExec_) {
        // Held while the plugin runs: concurrent requests wait for its one answer.
        std::lock_guard lock(mu_);
        if (cached_.empty() || (expiry_ && std::chrono::system_clock::now() >= *expiry_)) {
            cached_.clear();
            expiry_.reset();
            auto cred = detail::runExecPlugin(exec_, cluster_);
            cached_ = std::move(cred.token);
            expiry_ = cred.expiry;
        }
        return cached_;
    }
    if (!fixed_.empty() || file_.empty()) return fixed_;
    std::lock_guard lock(mu_);
    std::error_code ec;
    auto mtime = fs::last_write_time(file_, ec);  // follows the kubelet's ..data symlink
    // During a rotation the file can briefly vanish: keep the last good token meanwhile.
    if (ec) return cached_;
    if (mtime != mtime_ || cached_.empty()) {
        if (auto content = readFile(file_, nullptr)) {
            cached_ = trim(*content);
            mtime_ = mtime;
        }
    }
    return cached_;
}

bool TokenSource::invalidate(const std::string& rejected) {
    if (!usesExec_) return false;
    std::lock_guard lock(mu_);
    if (cached_ == rejected) {
        cached_.clear();
        expiry_.reset();
    }
    return true;
}

}  // namespace sluice::kube
