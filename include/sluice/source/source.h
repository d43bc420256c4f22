#pragma once
// Application sources: what kind a source is (Argo CD's rules), and the Renderer interface that
// each kind (directory, Helm, Kustomize, plugin) implements with the real tools.
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/appengine/spec.h"
#include "sluice/git/git.h"
#include "sluice/render/render.h"

namespace sluice::source {

// The API server stores no object above 1.5 MiB; Sluice refuses one before sending it.
inline constexpr std::size_t kMaxObjectBytes = 1536u * 1024u;

// Argo CD's ApplicationSourceType values, shown in status.sourceType.
enum class SourceType { Directory, Helm, Kustomize, Plugin };
const char* typeName(SourceType type);

// The type an explicit block names (helm, kustomize, directory, plugin; a chart is Helm).
std::optional<SourceType> explicitType(const appengine::Source& source);
// Argo CD's discovery when no block is given, from the file names directly in the source path:
// a kustomization file means Kustomize, Chart.yaml Helm, anything else a directory.
SourceType detectType(const appengine::Source& source, const std::vector<std::string>& fileNames);

// A config management plugin, in the shape of Argo CD's ConfigManagementPlugin spec.
struct PluginDefinition {
    std::string name;
    std::string version;  // the plugin is named "<name>-<version>" when set, as in Argo CD
    std::vector<std::string> init;          // init.command + init.args, run first (may be empty)
    std::vector<std::string> generate;      // generate.command + generate.args: prints manifests
    std::string discoverFileName;           // discover.fileName glob
    std::vector<std::string> discoverFind;  // discover.find.command + args: non-empty output
    std::string discoverFindGlob;           // discover.find.glob
    std::string fullName() const { return version.empty() ? name : name + "-" + version; }
};

// The plugins of a ConfigMap whose data holds one ConfigManagementPlugin YAML document per
// key. A broken document is reported in `errors` (naming its key) and skipped; the others load.
std::vector<PluginDefinition> parsePluginConfigMap(const nlohmann::json& configMap,
                                                   std::vector<std::string>& errors);

// How the tools are found and bounded (controller flags).
struct Settings {
    std::string helmPath = "helm";
    std::string kustomizePath;  // standalone kustomize; "" = `kubectl kustomize`
    std::string kubectlPath = "kubectl";
    // Extra `kustomize build` options (Argo CD's kustomize.buildOptions), e.g. --enable-helm.
    std::vector<std::string> kustomizeBuildOptions;
    bool allowRemoteBases = false;       // kustomize resources from URLs
    bool allowRemoteValueFiles = false;  // helm valueFiles given as http(s) URLs
    std::chrono::milliseconds timeout{90000};
    std::size_t maxOutputBytes = 64u << 20;  // of one tool run and of one render
    std::filesystem::path workDir;           // trees, charts and scratch space
    // Config management plugins an administrator defined (ConfigMap in the control namespace);
    // read at each render of a plugin source.
    std::function<std::vector<PluginDefinition>()> plugins;
};

// What the destination and the Application add to a render.
struct RenderContext {
    std::string appName;
    std::string appNamespace;              // where the Application lives
    std::string destinationNamespace;      // spec.destination.namespace
    std::string revision;                  // the source's resolved revision (ARGOCD_APP_REVISION)
    std::string kubeVersion;               // the destination's version ("" = the tool's default)
    std::vector<std::string> apiVersions;  // the destination's group/versions ("" = default)
};

// A server's gitVersion as Helm's --kube-version takes it: "v1.32.3-gke.1" -> "1.32.3".
std::string helmKubeVersion(const std::string& gitVersion);

// One render of one source.
struct RenderInput {
    const appengine::Source& source;
    SourceType type;
    std::filesystem::path root;    // the source's files on disk: a git tree or an unpacked chart
    std::filesystem::path appDir;  // root / path (the chart's directory for a chart source)
    // Roots of the other sources' trees by ref name ("$values/..." value files).
    std::map<std::string, std::filesystem::path> refs;
    const RenderContext& context;
    const Settings& settings;
    std::filesystem::path scratch;  // a private, writable, empty directory; removed afterwards
    // Username and password for a Helm repository a chart's dependencies name ("" when none).
    std::function<std::pair<std::string, std::string>(const std::string& url)> repositoryLogin =
        nullptr;
};

class Renderer {
  public:
    virtual ~Renderer();
    // The source's objects, or RenderError naming the tool, file and line of the problem.
    virtual std::vector<render::Object> render(const RenderInput& input) = 0;
    // What distinguishes this renderer's output for the same input (a tool version), part of
    // the render cache key.
    virtual std::string version(const Settings& settings) = 0;
};

// The renderer of each type; built-in ones are registered on first use.
Renderer& rendererFor(SourceType type);
void registerRenderer(SourceType type, std::unique_ptr<Renderer> renderer);

// Refuses `path` unless it stays inside `root` once symlinks and ".." are resolved (value
// files, kustomize resources, jsonnet imports: CVE-2022-24348 and friends). `what` names the
// field in the message. Returns the canonical path.
std::filesystem::path insideRoot(const std::filesystem::path& root,
                                 const std::filesystem::path& path, const std::string& what);

// Reads the source path's files on disk as a directory source (recurse, include, exclude),
// with .jsonnet files evaluated (directory.jsonnet).
std::vector<render::Object> renderDirectory(const RenderInput& input);

// Parses a tool's YAML output into objects. Helm's "# Source: chart/templates/x.yaml" comments
// name the file of each object; otherwise objects are named `toolName`.
std::vector<render::Object> parseToolOutput(const std::string& text, const std::string& toolName);

}  // namespace sluice::source
