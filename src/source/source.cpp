#include "sluice/source/source.h"

#include <mutex>

#include "renderers.h"

namespace sluice::source {

namespace fs = std::filesystem;

Renderer::~Renderer() = default;

const char* typeName(SourceType type) {
    switch (type) {
        case SourceType::Helm:
            return "Helm";
        case SourceType::Kustomize:
            return "Kustomize";
        case SourceType::Plugin:
            return "Plugin";
        case SourceType::Directory:
            break;
    }
    return "Directory";
}

std::string helmKubeVersion(const std::string& gitVersion) {
    std::string v = gitVersion;
    if (!v.empty() && v[0] == 'v') v.erase(0, 1);
    return v.substr(0, v.find_first_of("-+"));
}

std::optional<SourceType> explicitType(const appengine::Source& source) {
    if (source.isHelmRepository() || source.helm) return SourceType::Helm;
    if (source.kustomize) return SourceType::Kustomize;
    if (source.plugin) return SourceType::Plugin;
    if (source.directory) return SourceType::Directory;
    return std::nullopt;
}

SourceType detectType(const appengine::Source& source, const std::vector<std::string>& fileNames) {
    if (auto type = explicitType(source)) return *type;
    bool chart = false;
    for (const auto& name : fileNames) {
        if (name == "kustomization.yaml" || name == "kustomization.yml" || name == "Kustomization")
            return SourceType::Kustomize;  // Argo CD checks Kustomize first
        if (name == "Chart.yaml") chart = true;
    }
    return chart ? SourceType::Helm : SourceType::Directory;
}

namespace {

struct Registry {
    std::mutex mu;
    std::map<SourceType, std::unique_ptr<Renderer>> renderers;
    bool builtins = false;
};

Registry& registry() {
    static Registry r;
    return r;
}

}  // namespace

void registerRenderer(SourceType type, std::unique_ptr<Renderer> renderer) {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    r.renderers[type] = std::move(renderer);
}

Renderer& rendererFor(SourceType type) {
    Registry& r = registry();
    {
        std::lock_guard lock(r.mu);
        if (!r.builtins) {
            r.builtins = true;
            // The one registration of each built-in source type.
            for (auto& [t, make] : builtinRenderers())
                if (!r.renderers.count(t)) r.renderers[t] = make();
        }
        auto it = r.renderers.find(type);
        if (it != r.renderers.end()) return *it->second;
    }
    throw render::RenderError(typeName(type), 0,
                              std::string("no renderer for ") + typeName(type) + " sources");
}

fs::path insideRoot(const fs::path& root, const fs::path& path, const std::string& what) {
    std::error_code ec;
    const fs::path base = fs::weakly_canonical(root, ec);
    const fs::path full = fs::weakly_canonical(path.is_absolute() ? path : root / path, ec);
    if (ec) throw render::RenderError(what, 0, "cannot resolve " + path.string());
    auto b = base.begin();
    auto f = full.begin();
    for (; b != base.end(); ++b, ++f)
        if (f == full.end() || *b != *f)
            throw render::RenderError(
                what, 0, what + " " + path.string() + " resolves outside the repository; refused");
    return full;
}

std::vector<render::Object> parseToolOutput(const std::string& text, const std::string& toolName) {
    // Documents are split here so that each is attributed to Helm's "# Source:" file.
    std::vector<render::Object> out;
    size_t pos = 0;
    int index = 0;
    while (pos < text.size()) {
        size_t next = text.find("\n---", pos);
        while (next != std::string::npos && next + 4 < text.size() && text[next + 4] != '\n' &&
               text[next + 4] != ' ' && text[next + 4] != '\r')
            next = text.find("\n---", next + 4);
        const size_t end = next == std::string::npos ? text.size() : next + 1;
        const std::string doc = text.substr(pos, end - pos);
        pos = end;
        std::string file = toolName;
        if (auto src = doc.find("# Source: "); src != std::string::npos) {
            auto eol = doc.find('\n', src);
            file = doc.substr(src + 10, (eol == std::string::npos ? doc.size() : eol) - src - 10);
        }
        for (auto& obj : render::renderStream(doc, file)) {
            obj.documentIndex = index;
            obj.line = 0;  // lines of a generated stream mean nothing to the user
            out.push_back(std::move(obj));
        }
        ++index;
    }
    return out;
}

}  // namespace sluice::source
