// Helm charts rendered with `helm template`, with the arguments Argo CD passes.
#include <fstream>
#include <set>

#include "renderers.h"
#include "sluice/source/exec.h"
#include "sluice/util/yaml_json.h"

namespace sluice::source {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool isUrl(const std::string& s) {
    return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0;
}

// A value or file parameter path: "$ref/x" in the ref source's tree, otherwise relative to the
// chart. Always inside the tree it names.
fs::path resolveFile(const RenderInput& in, const std::string& path, const std::string& what) {
    if (!path.empty() && path[0] == '$') {
        auto slash = path.find('/');
        const std::string ref = path.substr(1, slash == std::string::npos ? path.npos : slash - 1);
        auto it = in.refs.find(ref);
        if (it == in.refs.end())
            throw render::RenderError(what, 0,
                                      what + " " + path + ": no source has ref \"" + ref + "\"");
        const std::string rest = slash == std::string::npos ? "" : path.substr(slash + 1);
        return insideRoot(it->second, it->second / rest, what);
    }
    return insideRoot(in.root, in.appDir / path, what);
}

std::string readText(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

void writeText(const fs::path& p, const std::string& text) {
    std::ofstream f(p, std::ios::binary);
    f << text;
}

// Inline values: values (text) then valuesObject, merged as Argo CD merges them (the object
// wins), written to a file for --values.
std::optional<fs::path> inlineValues(const RenderInput& in, const appengine::HelmSource& helm) {
    json merged = json::object();
    if (!helm.values.empty()) {
        try {
            json parsed = yamlToJson(helm.values);
            if (parsed.is_object()) merged = std::move(parsed);
        } catch (const YamlError& e) {
            throw render::RenderError("helm.values", e.line,
                                      std::string("invalid YAML: ") + e.what());
        }
    }
    if (helm.valuesObject.is_object()) merged.merge_patch(helm.valuesObject);
    if (merged.empty()) return std::nullopt;
    fs::path file = in.scratch / "inline-values.yaml";
    writeText(file, merged.dump());  // JSON is YAML
    return file;
}

// `helm dependency build` needs each HTTP repository its Chart.yaml names to be added first
// (Argo CD adds them the same way); OCI and file:// dependencies need nothing.
std::vector<std::string> dependencyRepositories(const fs::path& chartDir) {
    std::vector<std::string> repos;
    try {
        json chart = yamlToJson(readText(chartDir / "Chart.yaml"));
        for (const auto& dep : chart.value("dependencies", json::array()))
            if (dep.is_object() && isUrl(dep.value("repository", "")))
                repos.push_back(dep["repository"].get<std::string>());
    } catch (const std::exception&) {
        // helm reports a broken Chart.yaml better than we would.
    }
    return repos;
}

bool dependenciesMissing(const fs::path& chartDir) {
    json chart;
    try {
        chart = yamlToJson(readText(chartDir / "Chart.yaml"));
    } catch (const std::exception&) {
        return false;
    }
    auto deps = chart.value("dependencies", json::array());
    if (!deps.is_array() || deps.empty()) return false;
    for (const auto& dep : deps) {
        if (!dep.is_object()) continue;
        const std::string name = dep.value("name", "");
        const std::string repo = dep.value("repository", "");
        if (repo.rfind("file://", 0) == 0 && fs::exists(chartDir / "charts" / name)) continue;
        bool found = fs::exists(chartDir / "charts" / name);
        if (!found && fs::is_directory(chartDir / "charts"))
            for (const auto& e : fs::directory_iterator(chartDir / "charts"))
                if (e.path().filename().string().rfind(name + "-", 0) == 0) found = true;
        if (!found) return true;
    }
    return false;
}

// A private, writable copy of the tree for tools that write into the chart, such as `helm
// dependency build` (a real copy: a tool that rewrote a hard-linked file in place would change
// the tree every Application at this commit shares).
fs::path writableCopy(const RenderInput& in) {
    fs::path copy = in.scratch / "tree";
    fs::copy(in.root, copy, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    return copy / fs::relative(in.appDir, in.root);
}

fs::path buildDependencies(const RenderInput& in) {
    fs::path chartDir = writableCopy(in);
    const std::string& helm = in.settings.helmPath;
    int n = 0;
    for (const auto& repo : dependencyRepositories(chartDir)) {
        std::vector<std::string> args = {"repo", "add", "dep-" + std::to_string(n++), repo};
        auto [user, password] =
            in.repositoryLogin ? in.repositoryLogin(repo) : std::pair<std::string, std::string>{};
        // The password goes on stdin: a command line is visible to every process.
        if (!user.empty()) args.insert(args.end(), {"--username", user, "--password-stdin"});
        runRenderTool(in, helm, std::move(args), chartDir, user.empty() ? "" : password);
    }
    runRenderTool(in, helm, {"dependency", "build", "--skip-refresh"}, chartDir);
    return chartDir;
}

std::vector<std::string> templateArgs(const RenderInput& in, const appengine::HelmSource& helm) {
    const RenderContext& ctx = in.context;
    std::vector<std::string> args = {"template", ".", "--name-template",
                                     helm.releaseName.empty() ? ctx.appName : helm.releaseName};
    const std::string ns = helm.namespace_.empty() ? ctx.destinationNamespace : helm.namespace_;
    if (!ns.empty()) args.insert(args.end(), {"--namespace", ns});
    const std::string kubeVersion = helm.kubeVersion.empty() ? ctx.kubeVersion : helm.kubeVersion;
    if (!kubeVersion.empty()) args.insert(args.end(), {"--kube-version", kubeVersion});
    for (const auto& v : helm.apiVersions.empty() ? ctx.apiVersions : helm.apiVersions)
        args.insert(args.end(), {"--api-versions", v});
    for (const auto& file : helm.valueFiles) {
        if (isUrl(file)) {
            if (!in.settings.allowRemoteValueFiles)
                throw render::RenderError(
                    "helm.valueFiles", 0,
                    "remote value file " + file + " refused (the controller does not allow them)");
            args.insert(args.end(), {"--values", file});
            continue;
        }
        fs::path p = resolveFile(in, file, "helm.valueFiles");
        if (!fs::exists(p)) {
            if (helm.ignoreMissingValueFiles) continue;
            throw render::RenderError(file, 0, "value file " + file + " does not exist");
        }
        args.insert(args.end(), {"--values", p.string()});
    }
    if (auto inline_ = inlineValues(in, helm))
        args.insert(args.end(), {"--values", inline_->string()});
    for (const auto& p : helm.parameters)
        args.insert(args.end(), {p.forceString ? "--set-string" : "--set", p.name + "=" + p.value});
    for (const auto& p : helm.fileParameters)
        args.insert(
            args.end(),
            {"--set-file", p.name + "=" + resolveFile(in, p.path, "helm.fileParameters").string()});
    args.push_back(helm.skipCrds ? "--skip-crds" : "--include-crds");
    if (helm.skipSchemaValidation) args.push_back("--skip-schema-validation");
    return args;
}

class HelmRenderer : public Renderer {
  public:
    std::vector<render::Object> render(const RenderInput& in) override {
        static const appengine::HelmSource kDefaults;
        const appengine::HelmSource& helm = in.source.helm ? *in.source.helm : kDefaults;
        if (!fs::exists(in.appDir / "Chart.yaml"))
            throw render::RenderError(in.source.path.empty() ? "." : in.source.path, 0,
                                      "not a Helm chart (no Chart.yaml)");
        fs::path chartDir = dependenciesMissing(in.appDir) ? buildDependencies(in) : in.appDir;
        std::vector<std::string> args = templateArgs(in, helm);
        std::string out = runRenderTool(in, in.settings.helmPath, std::move(args), chartDir);
        std::vector<render::Object> objects = parseToolOutput(out, "helm template");
        // Argo CD ignores Helm test hooks; the others become resource hooks in the sync
        // (appengine/hooks.h maps their phases, weights and delete policies).
        std::erase_if(objects, [](const render::Object& o) {
            static const json::json_pointer hook("/metadata/annotations/helm.sh~1hook");
            return o.manifest.contains(hook) && o.manifest.at(hook).is_string() &&
                   o.manifest.at(hook).get<std::string>().find("test") != std::string::npos;
        });
        return objects;
    }

    std::string version(const Settings& settings) override {
        return toolVersion(settings.helmPath, {"version", "--short"});
    }
};

}  // namespace

std::unique_ptr<Renderer> makeHelmRenderer() {
    return std::make_unique<HelmRenderer>();
}

}  // namespace sluice::source
