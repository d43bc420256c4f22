#pragma once
// YAML <-> JSON conversion with Kubernetes' typing rules (sigs.k8s.io/yaml resolves plain
// scalars as YAML 1.1: yes/no/on/off are booleans, quoted scalars stay strings).
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice {

struct YamlError : std::runtime_error {
    YamlError(const std::string& msg, int line) : std::runtime_error(msg), line(line) {}
    int line;  // 1-based, 0 when unknown
};

// Parses one YAML (or JSON) document. Throws YamlError.
nlohmann::json yamlToJson(const std::string& text);

// Parses a multi-document stream; empty documents are skipped. Throws YamlError.
std::vector<nlohmann::json> yamlDocumentsToJson(const std::string& text);

// Emits block-style YAML, keys in the json's order.
std::string jsonToYaml(const nlohmann::json& value);

}  // namespace sluice
