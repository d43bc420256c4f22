#pragma once
// YAML <-> JSON conversion with Kubernetes' typing rules (sigs.k8s.io/yaml resolves plain
// scalars as YAML 1.1: yes/no/on/off are booleans, quoted scalars stay strings).
#include <cstddef>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice {

struct YamlError : std::runtime_error {
    YamlError(const std::string& msg, int line) : std::runtime_error(msg), line(line) {}
    int line;  // 1-based, 0 when unknown
};

// Bounds on what parsing may produce. Aliases let a few hundred bytes stand for billions of
// nodes (the "billion laughs"), so sizes are counted as aliases are expanded, before copying.
// A node is any YAML node: scalar, null, list, map or map key. Bytes are an estimate of the
// memory the JSON takes (64 per node, measured on nlohmann::json, plus the scalars' text).
struct YamlLimits {
    // Per document, alias copies included.
    std::size_t maxNodes = 1'000'000;
    std::size_t maxBytes = 128u << 20;
    // Nesting of lists and maps, alias expansions included. Under yaml-cpp's own recursion
    // guard (499 levels, which take 128 to 256 KB of stack) so that this check fires first,
    // and far above real manifests (deep CRD schemas reach about 60).
    std::size_t maxDepth = 256;
    // Alias expansion (and the copies kept for anchors) may produce up to aliasRatio times
    // what the text itself produced, or aliasNodes / aliasBytes if that is more. Go's yaml.v3
    // bounds the share of aliased nodes in a similar way.
    std::size_t aliasRatio = 10;
    std::size_t aliasNodes = 10'000;
    std::size_t aliasBytes = 8u << 20;
    // The same totals over all documents of a stream (alias rule included), so that many
    // documents cannot together take what one may not.
    std::size_t maxStreamNodes = 10'000'000;
    std::size_t maxStreamBytes = 512u << 20;
};

// What has been produced so far.
struct YamlTotals {
    std::size_t nodes = 0;
    std::size_t bytes = 0;
    std::size_t aliasNodes = 0;  // nodes produced by expanding aliases
    std::size_t aliasBytes = 0;  // bytes of alias expansions and of the copies kept for anchors
};

// The running totals of one stream. yamlDocumentsToJson keeps its own; a caller that splits a
// stream into documents itself (render, to keep line numbers) passes one to each yamlToJson.
struct YamlBudget {
    YamlLimits limits;
    YamlTotals spent;
};

// Parses one YAML (or JSON) document; only the first document of a stream is read. Throws
// YamlError, also when a limit is exceeded (the line is then where the document starts).
nlohmann::json yamlToJson(const std::string& text, const YamlLimits& limits = {});
nlohmann::json yamlToJson(const std::string& text, YamlBudget& stream);

// Parses a multi-document stream; empty documents are skipped. Limits apply to each document
// and, through the stream limits, to all of them. Throws YamlError.
std::vector<nlohmann::json> yamlDocumentsToJson(const std::string& text,
                                                const YamlLimits& limits = {});

// Emits block-style YAML, keys in the json's order.
std::string jsonToYaml(const nlohmann::json& value);

}  // namespace sluice
