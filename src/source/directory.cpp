// Directory sources read from a tree on disk: what the controller renders when the directory
// holds Jsonnet (plain YAML and JSON are read straight from git by render::renderRevision).
#include <fstream>

#include "renderers.h"

namespace sluice::source {
namespace {

namespace fs = std::filesystem;

bool isJsonnet(const fs::path& p) {
    return p.extension() == ".jsonnet";
}

bool hidden(const fs::path& rel) {
    for (const auto& part : rel)
        if (!part.empty() && part.string()[0] == '.' && part != "." && part != "..") return true;
    return false;
}

std::string slashPath(const fs::path& p) {
    return p.generic_string();
}

class DirectoryRenderer : public Renderer {
  public:
    std::vector<render::Object> render(const RenderInput& in) override {
        return renderDirectory(in);
    }
    std::string version(const Settings&) override { return "directory-1"; }
};

}  // namespace

std::vector<render::Object> renderDirectory(const RenderInput& in) {
    render::Options options;
    options.path = in.source.path;
    options.recurse = in.source.recurse;
    options.include = in.source.include;
    options.exclude = in.source.exclude;
    std::vector<render::SourceFile> files;
    std::vector<fs::path> jsonnetFiles;
    const fs::path dir = insideRoot(in.root, in.appDir, "path");
    auto visit = [&](const fs::directory_entry& e) {
        if (!e.is_regular_file()) return;
        const fs::path rel = fs::relative(e.path(), in.root);
        if (hidden(fs::relative(e.path(), dir))) return;
        if (isJsonnet(e.path())) {
            const std::string relToApp = slashPath(fs::relative(e.path(), dir));
            if (!in.source.include.empty() && !render::globMatch(in.source.include, relToApp))
                return;
            if (!in.source.exclude.empty() && render::globMatch(in.source.exclude, relToApp))
                return;
            jsonnetFiles.push_back(e.path());
            return;
        }
        if (!render::isRelevant(slashPath(rel), options)) return;
        insideRoot(in.root, e.path(), slashPath(rel));
        std::ifstream f(e.path(), std::ios::binary);
        files.push_back({slashPath(rel), std::string(std::istreambuf_iterator<char>(f), {})});
    };
    if (in.source.recurse) {
        for (const auto& e : fs::recursive_directory_iterator(dir)) visit(e);
    } else {
        for (const auto& e : fs::directory_iterator(dir)) visit(e);
    }
    std::vector<render::Object> out = render::render(files, options);
    std::sort(jsonnetFiles.begin(), jsonnetFiles.end());
    for (const auto& file : jsonnetFiles)
        for (auto& obj : renderJsonnetFile(in, file)) out.push_back(std::move(obj));
    return out;
}

std::unique_ptr<Renderer> makeDirectoryRenderer() {
    return std::make_unique<DirectoryRenderer>();
}

}  // namespace sluice::source
