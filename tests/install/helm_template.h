#pragma once
// Renders a Helm chart's templates without Helm, for the subset of Go's text/template and
// Sprig that charts/sluice uses (see the comment at the top of its templates/_helpers.tpl):
//   fields .Values.x.y, .Release.*, .Chart.*, "." and "$" (with fields), .Files.Get "path";
//   actions define, include, template, if/else/end, with/else/end, range/else/end over lists
//   and maps, comments, "{{-" / "-}}" trimming;
//   functions toYaml, nindent, indent, quote, default, not, and, or, eq, ne, lt, le, gt, ge, int.
// Anything outside it (variables, else-if, other functions) is an error, never a guess. Values
// behave as in Helm: numbers read from YAML are float64, so `gt .Values.replicas 1` is the same
// "incompatible types for comparison" error it is in Go.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::testing::helm {

struct TemplateError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Deep merge as Helm merges --set/-f values into values.yaml: maps merge key by key, anything
// else in `override` replaces.
nlohmann::json mergeValues(nlohmann::json base, const nlohmann::json& override);

// Numbers become float64 as Helm's values are (YAML -> JSON -> Go interface{}).
nlohmann::json helmValues(const nlohmann::json& yamlValues);

struct Release {
    std::string name = "sluice";
    std::string ns = "sluice";
};

class Engine {
  public:
    // Parses every file of the chart's templates/ directory (named templates from all of
    // them), Chart.yaml and values.yaml; `overrides` are merged into values.yaml.
    Engine(const std::filesystem::path& chartDir, const nlohmann::json& overrides = nullptr,
           Release release = {});
    // From template texts (file name -> text), for the renderer's own tests.
    Engine(std::map<std::string, std::string> templates, nlohmann::json values,
           nlohmann::json chart = nlohmann::json::object(), Release release = {},
           std::map<std::string, std::string> files = {});
    ~Engine();

    // Renders one template file with the root context.
    std::string render(const std::string& file) const;
    // Every file of templates/ that produces manifests (not _*.tpl, not NOTES.txt), by name.
    std::map<std::string, std::string> renderManifests() const;
    // The documents of renderManifests() parsed to JSON (empty documents dropped).
    std::vector<nlohmann::json> renderObjects() const;

    const nlohmann::json& values() const;

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::testing::helm
