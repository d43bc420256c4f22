// Kustomize overlays built with `kustomize build` (or `kubectl kustomize`). Argo CD's kustomize
// options are applied as its `kustomize edit` commands would, to a private copy of the
// kustomization; the shared tree is never written.
#include <fstream>
#include <set>

#include "renderers.h"
#include "sluice/util/yaml_json.h"

namespace sluice::source {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* const kKustomizationNames[] = {"kustomization.yaml", "kustomization.yml",
                                           "Kustomization"};

std::optional<fs::path> kustomizationIn(const fs::path& dir) {
    for (const char* name : kKustomizationNames)
        if (fs::is_regular_file(dir / name)) return dir / name;
    return std::nullopt;
}

json readKustomization(const fs::path& file) {
    std::ifstream f(file, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(f)), {});
    try {
        json k = yamlToJson(text);
        return k.is_object() ? k : json::object();
    } catch (const YamlError& e) {
        throw render::RenderError(file.filename().string(), e.line,
                                  std::string("invalid YAML: ") + e.what());
    }
}

bool isRemote(const std::string& entry) {
    return entry.find("://") != std::string::npos || entry.rfind("github.com/", 0) == 0 ||
           entry.rfind("git@", 0) == 0 || entry.rfind("git::", 0) == 0 ||
           entry.find("?ref=") != std::string::npos || entry.find(".git//") != std::string::npos;
}

// Walks the kustomizations the build will read, refusing remote bases (unless allowed) and
// local ones outside the repository.
void checkReferences(const fs::path& root, const fs::path& dir, const Settings& settings,
                     std::set<fs::path>& seen) {
    if (!seen.insert(dir).second || seen.size() > 1000) return;
    auto file = kustomizationIn(dir);
    if (!file) return;
    const json k = readKustomization(*file);
    const std::string shown = fs::relative(*file, root).string();
    for (const char* field : {"resources", "bases", "components"}) {
        auto list = k.value(field, json::array());
        if (!list.is_array()) continue;
        for (const auto& item : list) {
            if (!item.is_string()) continue;
            const std::string entry = item.get<std::string>();
            if (isRemote(entry)) {
                if (settings.allowRemoteBases) continue;
                throw render::RenderError(shown, 0,
                                          std::string(field) + " entry " + entry +
                                              " is a remote base; refused (the controller does "
                                              "not allow remote kustomize bases)");
            }
            fs::path target = insideRoot(root, dir / entry, shown + " " + field);
            if (fs::is_directory(target)) checkReferences(root, target, settings, seen);
        }
    }
}

// Argo CD's image forms: "name=newName:tag", "name=newName@digest", "name:tag", "name@digest",
// "name=newName".
json parseImage(const std::string& spec) {
    json image = json::object();
    std::string rest = spec;
    auto eq = spec.find('=');
    if (eq != std::string::npos) {
        image["name"] = spec.substr(0, eq);
        rest = spec.substr(eq + 1);
    }
    std::string ref = rest;
    if (auto at = rest.find('@'); at != std::string::npos) {
        ref = rest.substr(0, at);
        image["digest"] = rest.substr(at + 1);
    } else if (auto colon = rest.rfind(':');
               colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
        ref = rest.substr(0, colon);
        image["newTag"] = rest.substr(colon + 1);
    }
    if (eq == std::string::npos) {
        image["name"] = ref;
    } else if (ref != image["name"]) {
        image["newName"] = ref;
    }
    return image;
}

// Replaces the entry with the same `key` value in list `field`, or appends it.
void upsert(json& k, const char* field, const json& item, const char* key) {
    json& list = k[field];
    if (!list.is_array()) list = json::array();
    for (auto& existing : list)
        if (existing.is_object() && existing.value(key, "") == item.value(key, "")) {
            existing = item;
            return;
        }
    list.push_back(item);
}

std::string envsubst(std::string text, const RenderContext& ctx) {
    const std::map<std::string, std::string> vars = {
        {"ARGOCD_APP_NAME", ctx.appName},
        {"ARGOCD_APP_NAMESPACE", ctx.destinationNamespace},
        {"ARGOCD_APP_REVISION", ctx.revision}};
    for (const auto& [name, value] : vars)
        for (const std::string& pattern : {"${" + name + "}", "$" + name}) {
            size_t pos = 0;
            while ((pos = text.find(pattern, pos)) != std::string::npos) {
                text.replace(pos, pattern.size(), value);
                pos += value.size();
            }
        }
    return text;
}

void addMap(json& k, const char* field, const std::map<std::string, std::string>& values,
            bool force, const std::string& file) {
    json& map = k[field];
    if (!map.is_object()) map = json::object();
    for (const auto& [key, value] : values) {
        // `kustomize edit add` refuses to overwrite unless forced; so does Argo CD.
        if (map.contains(key) && !force)
            throw render::RenderError(
                file, 0,
                std::string(field) + " " + key + " is already set in the kustomization (set force" +
                    (std::string(field) == "commonLabels" ? "CommonLabels" : "CommonAnnotations") +
                    " to override)");
        map[key] = value;
    }
}

void applyOptions(json& k, const appengine::KustomizeSource& o, const RenderInput& in,
                  const std::string& file) {
    if (!o.namePrefix.empty()) k["namePrefix"] = o.namePrefix;
    if (!o.nameSuffix.empty()) k["nameSuffix"] = o.nameSuffix;
    if (!o.namespace_.empty()) k["namespace"] = o.namespace_;
    for (const auto& image : o.images) upsert(k, "images", parseImage(image), "name");
    for (const auto& r : o.replicas)
        upsert(k, "replicas", {{"name", r.name}, {"count", r.count}}, "name");
    if (!o.commonLabels.empty()) {
        if (o.labelWithoutSelector) {
            json pairs(o.commonLabels);
            if (!k["labels"].is_array()) k["labels"] = json::array();
            k["labels"].push_back({{"pairs", pairs}, {"includeSelectors", false}});
        } else {
            addMap(k, "commonLabels", o.commonLabels, o.forceCommonLabels, file);
        }
    }
    if (!o.commonAnnotations.empty()) {
        std::map<std::string, std::string> values = o.commonAnnotations;
        if (o.commonAnnotationsEnvsubst)
            for (auto& [key, value] : values) value = envsubst(value, in.context);
        addMap(k, "commonAnnotations", values, o.forceCommonAnnotations, file);
    }
    for (const auto& c : o.components) {
        fs::path target = insideRoot(in.root, in.appDir / c, "kustomize.components");
        if (!fs::exists(target)) {
            if (o.ignoreMissingComponents) continue;
            throw render::RenderError("kustomize.components", 0,
                                      "component " + c + " does not exist");
        }
        if (!k["components"].is_array()) k["components"] = json::array();
        k["components"].push_back(c);
    }
    for (const auto& p : o.patches) {
        if (!k["patches"].is_array()) k["patches"] = json::array();
        k["patches"].push_back(p);
    }
}

// Argo CD hands the destination's version to the charts a kustomization inflates.
void applyHelmVersions(json& k, const appengine::KustomizeSource* o, const RenderContext& ctx) {
    if (!k.contains("helmCharts") || !k["helmCharts"].is_array()) return;
    std::string kubeVersion = o && !o->kubeVersion.empty() ? o->kubeVersion : ctx.kubeVersion;
    auto apiVersions = o && !o->apiVersions.empty() ? o->apiVersions : ctx.apiVersions;
    for (auto& chart : k["helmCharts"]) {
        if (!chart.is_object()) continue;
        if (!kubeVersion.empty() && !chart.contains("kubeVersion"))
            chart["kubeVersion"] = kubeVersion;
        if (!apiVersions.empty() && !chart.contains("apiVersions"))
            chart["apiVersions"] = apiVersions;
    }
}

fs::path editedCopy(const RenderInput& in, const fs::path& kustomization) {
    fs::path copy = in.scratch / "tree";
    fs::copy(in.root, copy, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    fs::path dir = copy / fs::relative(in.appDir, in.root);
    fs::path file = dir / kustomization.filename();
    json k = readKustomization(file);
    const std::string shown = fs::relative(kustomization, in.root).string();
    if (in.source.kustomize) applyOptions(k, *in.source.kustomize, in, shown);
    applyHelmVersions(k, in.source.kustomize ? &*in.source.kustomize : nullptr, in.context);
    std::ofstream(file, std::ios::binary) << k.dump(2);
    return dir;
}

class KustomizeRenderer : public Renderer {
  public:
    std::vector<render::Object> render(const RenderInput& in) override {
        auto kustomization = kustomizationIn(in.appDir);
        if (!kustomization)
            throw render::RenderError(in.source.path.empty() ? "." : in.source.path, 0,
                                      "no kustomization.yaml in the source path");
        std::set<fs::path> seen;
        checkReferences(fs::weakly_canonical(in.root), fs::weakly_canonical(in.appDir), in.settings,
                        seen);
        const bool edit = (in.source.kustomize && in.source.kustomize->modifiesKustomization()) ||
                          readKustomization(*kustomization).contains("helmCharts");
        fs::path dir = edit ? editedCopy(in, *kustomization) : in.appDir;
        std::vector<std::string> args;
        std::string tool = in.settings.kustomizePath;
        if (tool.empty()) {
            tool = in.settings.kubectlPath;
            args = {"kustomize", dir.string()};
        } else {
            args = {"build", dir.string()};
        }
        for (const auto& opt : in.settings.kustomizeBuildOptions) args.push_back(opt);
        if (edit && hasEnableHelm(in.settings))
            args.insert(args.end(), {"--helm-command", in.settings.helmPath});
        std::string out = runRenderTool(in, tool, std::move(args), dir);
        return parseToolOutput(out, "kustomize build");
    }

    std::string version(const Settings& settings) override {
        if (!settings.kustomizePath.empty())
            return toolVersion(settings.kustomizePath, {"version"});
        return toolVersion(settings.kubectlPath, {"version", "--client"});
    }

  private:
    static bool hasEnableHelm(const Settings& s) {
        for (const auto& o : s.kustomizeBuildOptions)
            if (o == "--enable-helm") return true;
        return false;
    }
};

}  // namespace

std::unique_ptr<Renderer> makeKustomizeRenderer() {
    return std::make_unique<KustomizeRenderer>();
}

}  // namespace sluice::source
