#pragma once
// Shared by the install tests: the repository's paths, YAML documents and objects. File reading
// (readFile) and the real kubectl against the in-process Kubernetes API test server (KubectlTest)
// come from tests/support/testutil.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "process/process.h"
#include "sluice/util/yaml_json.h"
#include "tempdir/tempdir.h"
#include "testutil/kubectl_test.h"
#include "testutil/testutil.h"

namespace sluice::testing::install {

namespace fs = std::filesystem;
using nlohmann::json;

inline const fs::path kSource = fs::path(SLUICE_SOURCE_DIR);
inline const fs::path kCrdDir = kSource / "crds";
inline const fs::path kManifestDir = kSource / "manifests";
inline const fs::path kInstallYaml = kManifestDir / "install.yaml";
inline const fs::path kChartDir = kSource / "charts" / "sluice";

// The raw text of each document of a YAML stream, split at lines that are exactly "---".
inline std::vector<std::string> documentTexts(const std::string& text) {
    std::vector<std::string> docs(1);
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line == "---") {
            docs.emplace_back();
            continue;
        }
        docs.back() += line;
        if (!in.eof()) docs.back() += "\n";
    }
    return docs;
}

inline std::vector<json> installObjects() {
    return yamlDocumentsToJson(readFile(kInstallYaml));
}

// apiVersion/Kind/namespace/name.
inline std::string objectKey(const json& obj) {
    const json& md = obj.value("metadata", json::object());
    return obj.value("apiVersion", "") + "/" + obj.value("kind", "") + "/" +
           md.value("namespace", "") + "/" + md.value("name", "");
}

inline std::map<std::string, json> byKey(const std::vector<json>& objects) {
    std::map<std::string, json> out;
    for (const auto& o : objects) {
        auto key = objectKey(o);
        if (out.count(key)) throw std::runtime_error("duplicate object " + key);
        out[key] = o;
    }
    return out;
}

inline const json* findObject(const std::vector<json>& objects, const std::string& kind,
                              const std::string& name) {
    for (const auto& o : objects)
        if (o.value("kind", "") == kind && o["metadata"].value("name", "") == name) return &o;
    return nullptr;
}

// Pointers into a temporary would dangle.
const json* findObject(std::vector<json>&& objects, const std::string& kind,
                       const std::string& name) = delete;

inline std::vector<const json*> findKind(const std::vector<json>& objects,
                                         const std::string& kind) {
    std::vector<const json*> out;
    for (const auto& o : objects)
        if (o.value("kind", "") == kind) out.push_back(&o);
    return out;
}

// An overlay of manifests/ with the manifests/sharded Component, as docs/install.md shows, in
// `dir`; returns its directory. Its paths are relative: kustomize refuses absolute ones, and a
// Kustomization inside manifests/ could not use manifests/ as its base.
inline std::string writeShardedOverlay(const TempDir& dir) {
    fs::path overlay = fs::path(dir.file("sharded-overlay"));
    fs::create_directories(overlay);
    fs::path base = fs::relative(kManifestDir, overlay);
    dir.write("sharded-overlay/kustomization.yaml",
              "apiVersion: kustomize.config.k8s.io/v1beta1\n"
              "kind: Kustomization\n"
              "resources:\n"
              "  - " +
                  base.string() +
                  "\n"
                  "components:\n"
                  "  - " +
                  (base / "sharded").string() + "\n");
    return overlay.string();
}

// Flags the controller binary lists in --help.
inline std::set<std::string> controllerFlags() {
    auto r = runProcess({SLUICE_CONTROLLER_BINARY, "--help"});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    std::set<std::string> flags;
    std::regex flag("--([a-z][a-z0-9-]*)");
    std::string text = r.out + r.err;
    for (std::sregex_iterator it(text.begin(), text.end(), flag), end; it != end; ++it)
        flags.insert((*it)[1]);
    return flags;
}

}  // namespace sluice::testing::install
