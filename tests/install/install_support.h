#pragma once
// Shared by the install tests: the repository's paths, file reading, YAML documents and
// objects, and the real kubectl against the in-process Kubernetes API test server.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "apiserver/api_server.h"
#include "process/process.h"
#include "sluice/util/yaml_json.h"

namespace sluice::testing::install {

namespace fs = std::filesystem;
using nlohmann::json;

inline const fs::path kSource = fs::path(SLUICE_SOURCE_DIR);
inline const fs::path kCrdDir = kSource / "crds";
inline const fs::path kManifestDir = kSource / "manifests";
inline const fs::path kInstallYaml = kManifestDir / "install.yaml";
inline const fs::path kChartDir = kSource / "charts" / "sluice";

inline std::string readText(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

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
    return yamlDocumentsToJson(readText(kInstallYaml));
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

// The real kubectl against a fresh in-process API server; skips the test without kubectl.
class KubectlTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (std::system("command -v kubectl >/dev/null 2>&1") != 0)
            GTEST_SKIP() << "kubectl is not on PATH";
        ApiServerOptions opts;
        opts.simulateWorkloads = false;
        server = std::make_unique<ApiServer>(opts);
        server->start();
        kubeconfig = server->writeKubeconfig(dir.file("kubeconfig"));
        fs::create_directories(dir.file("cache"));
    }
    void TearDown() override {
        if (server) server->stop();
    }

    RunResult kubectl(std::vector<std::string> args, const std::string& stdinText = "") {
        std::vector<std::string> argv = {"kubectl", "--cache-dir=" + dir.file("cache")};
        argv.insert(argv.end(), args.begin(), args.end());
        // HOME and KUBECONFIG point at the temp dir: no user configuration is read or written.
        return runProcess(argv, {{"HOME", dir.path()}, {"KUBECONFIG", kubeconfig}},
                          std::chrono::seconds(60), stdinText);
    }

    void createNamespace(const std::string& name) {
        server->create(
            {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}});
    }

    TempDir dir;
    std::unique_ptr<ApiServer> server;
    std::string kubeconfig;
};

}  // namespace sluice::testing::install
