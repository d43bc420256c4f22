#pragma once
// Renders a directory source (Argo CD's source.path + source.directory.recurse) into Kubernetes
// objects. render() is pure: it works on (path, content) pairs, so it is testable without git.
#include <cstdint>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "sluice/git/git.h"

namespace sluice::render {

struct SourceFile {
    std::string path;  // repository-relative, '/'-separated
    std::string content;
};

struct Options {
    std::string path;      // source.path, repository-relative ("" or "." for the root)
    bool recurse = false;  // source.directory.recurse
    // source.directory.include / exclude: globs matched against a file's path relative to
    // `path` (Argo CD's: "*" also matches "/", "{a,b}" alternatives); "" = no filter.
    std::string include;
    std::string exclude;
    // renderRevision refuses, before reading them, files that add up to more than this.
    std::uint64_t maxBytes = 64u << 20;
};

// Argo CD's glob match for directory.include / exclude.
bool globMatch(const std::string& pattern, const std::string& text);

struct Object {
    nlohmann::json manifest;
    std::string sourceFile;  // repository-relative path of the file it came from
    int documentIndex = 0;   // 0-based position of its document in the file
    int itemIndex = -1;      // 0-based position in a List's items, -1 when not from a List
    int line = 0;            // 1-based line where its document starts (0 for JSON files)
};

// Whether obj carries a resource hook annotation (sluice.io/hook, argocd.argoproj.io/hook or
// helm.sh/hook): only hooks may have metadata.generateName without a name.
bool isHookObject(const nlohmann::json& obj);

// What went wrong and where. what() reads "file:line: message" (or "file: message").
class RenderError : public std::runtime_error {
  public:
    RenderError(std::string file, int line, const std::string& message);
    const std::string& file() const { return file_; }
    int line() const { return line_; }

  private:
    std::string file_;
    int line_;
};

// Whether render() reads this file: manifests (.yaml, .yml, .json) and the Kustomize/Helm
// markers it refuses, under options.path, not hidden, and not in a subdirectory unless recursing.
bool isRelevant(const std::string& path, const Options& options);

// Files are taken in path order (component-wise, like a directory walk); YAML streams give one
// object per non-empty document; List kinds are expanded. Any problem throws RenderError and
// nothing is returned. An empty result is not an error.
std::vector<Object> render(const std::vector<SourceFile>& files, const Options& options);

// Parses one YAML stream (a file's content or a tool's output) as render() parses a file named
// `fileName`: one object per non-empty document, Lists expanded, RenderError on problems.
std::vector<Object> renderStream(const std::string& text, const std::string& fileName);

// Lists the path at `sha`, reads the relevant files and renders them.
std::vector<Object> renderRevision(git::GitSource& source, const git::Repository& repo,
                                   const std::string& sha, const Options& options);

}  // namespace sluice::render
