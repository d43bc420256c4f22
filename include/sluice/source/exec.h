#pragma once
// Runs a rendering tool (helm, kustomize, a plugin's command) as Argo CD's repo server does:
// a scratch HOME, a minimal environment, a time limit and an output limit.
#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace sluice::source {

struct ToolRun {
    std::vector<std::string> argv;  // argv[0]: a path, or a name looked up in PATH
    std::filesystem::path cwd;
    // The whole environment of the tool (nothing is inherited from the controller).
    std::map<std::string, std::string> env;
    std::string stdinText;
    std::chrono::milliseconds timeout{90000};
    std::size_t maxOutputBytes = 64u << 20;
};

struct ToolResult {
    int exitCode = -1;
    std::string out;
    std::string err;
};

// Runs the tool to completion. Throws render::RenderError (file = the tool's name) when it
// cannot be started ("helm not found at /x/helm"), runs past its timeout (its process group is
// killed) or writes more than maxOutputBytes. A non-zero exit is returned, not thrown.
ToolResult runTool(const ToolRun& run);

// The environment tools get: PATH (the tool's own directory first), HOME and the XDG/Helm
// directories under `home`, and nothing of the controller's (no service-account token, no
// KUBERNETES_* variables).
std::map<std::string, std::string> toolEnvironment(const std::filesystem::path& home,
                                                   const std::string& toolPath);

// argv[0] as found: itself when it holds a '/', else the first executable match in PATH; ""
// when there is none.
std::string findExecutable(const std::string& name);

}  // namespace sluice::source
