#pragma once
// The built-in renderers, one file each; builtinRenderers() in renderers.cpp is their one
// registration.
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "sluice/source/source.h"

namespace sluice::source {

std::unique_ptr<Renderer> makeDirectoryRenderer();
std::unique_ptr<Renderer> makeHelmRenderer();
std::unique_ptr<Renderer> makeKustomizeRenderer();
std::unique_ptr<Renderer> makePluginRenderer();

using RendererFactory = std::function<std::unique_ptr<Renderer>()>;
std::vector<std::pair<SourceType, RendererFactory>> builtinRenderers();

// Evaluates one .jsonnet file of a directory source (directory.jsonnet: extVars, tlas, libs;
// imports confined to the tree) into objects: its value is an object, an array of objects, or
// a List; nested arrays are flattened as Argo CD does.
std::vector<render::Object> renderJsonnetFile(const RenderInput& input,
                                              const std::filesystem::path& file);

// Shared by the renderers: runs a tool in the render's scratch HOME and turns a failure into a
// RenderError that names the tool and quotes its error.
std::string runRenderTool(const RenderInput& input, const std::string& toolPath,
                          std::vector<std::string> args, const std::filesystem::path& cwd,
                          const std::string& stdinText = "");

// The version line a tool prints (cached per path), for render cache keys.
std::string toolVersion(const std::string& toolPath, const std::vector<std::string>& args);

}  // namespace sluice::source
