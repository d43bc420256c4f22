#include "renderers.h"

#include <mutex>

#include "sluice/source/exec.h"

namespace sluice::source {

std::vector<std::pair<SourceType, RendererFactory>> builtinRenderers() {
    return {{SourceType::Directory, makeDirectoryRenderer},
            {SourceType::Helm, makeHelmRenderer},
            {SourceType::Kustomize, makeKustomizeRenderer},
            {SourceType::Plugin, makePluginRenderer}};
}

namespace {

// The first line of a tool's complaint that says what is wrong (helm prints "Error: ...").
std::string errorSummary(const std::string& err) {
    std::string text = err;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.size() > 4096) text = text.substr(text.size() - 4096);
    return text;
}

}  // namespace

std::string runRenderTool(const RenderInput& input, const std::string& toolPath,
                          std::vector<std::string> args, const std::filesystem::path& cwd,
                          const std::string& stdinText) {
    std::filesystem::path home = input.scratch / "home";
    std::filesystem::create_directories(home);
    ToolRun run;
    run.argv = std::move(args);
    run.argv.insert(run.argv.begin(), toolPath);
    run.cwd = cwd;
    run.stdinText = stdinText;
    run.env = toolEnvironment(home, toolPath);
    run.timeout = input.settings.timeout;
    run.maxOutputBytes = input.settings.maxOutputBytes;
    ToolResult result = runTool(run);
    if (result.exitCode != 0) {
        std::string shown = run.argv[1];
        std::string tool = toolPath.substr(toolPath.rfind('/') + 1);
        throw render::RenderError(tool + " " + shown, 0,
                                  "exit code " + std::to_string(result.exitCode) + ": " +
                                      errorSummary(result.err.empty() ? result.out : result.err));
    }
    return std::move(result.out);
}

std::string toolVersion(const std::string& toolPath, const std::vector<std::string>& args) {
    static std::mutex mu;
    static std::map<std::string, std::string> versions;
    std::lock_guard lock(mu);
    const std::string key = toolPath + "\n" + (args.empty() ? "" : args[0]);
    if (auto it = versions.find(key); it != versions.end()) return it->second;
    ToolRun run;
    run.argv = args;
    run.argv.insert(run.argv.begin(), toolPath);
    run.env = toolEnvironment(std::filesystem::temp_directory_path(), toolPath);
    run.timeout = std::chrono::seconds(20);
    std::string version;
    try {
        ToolResult r = runTool(run);
        if (r.exitCode == 0) version = r.out.substr(0, r.out.find('\n'));
    } catch (const std::exception&) {
        return "unknown";  // not cached: the tool may be installed later
    }
    versions[key] = version;
    return version;
}

}  // namespace sluice::source
