// Config management plugins: the ConfigMap of ConfigManagementPlugin documents, choosing a
// plugin by name or discovery, and running it (`sh -c` commands) as Argo CD does.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "process/process.h"
#include "sluice/source/source.h"
#include "tempdir/tempdir.h"

namespace sluice::source {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using sluice::testing::TempDir;

PluginDefinition shPlugin(const std::string& name, const std::string& script) {
    PluginDefinition def;
    def.name = name;
    def.generate = {"sh", "-c", script};
    return def;
}

// A script printing a ConfigMap named `name` (shell-expanded) whose data `lines` print.
std::string configMapScript(const std::string& name, const std::string& lines) {
    return "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: %s\\ndata:\\n' \"" +
           name + "\"\n" + lines;
}

std::string readFile(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

class PluginRender : public ::testing::Test {
  protected:
    void SetUp() override {
        repo.write("app/manifest.yaml", "kind: Placeholder\n");
        source.path = "app";
        source.repoURL = "https://git.example/repo.git";
        source.targetRevision = "main";
        source.plugin = appengine::PluginSource{};
        ctx.appName = "guestbook";
        ctx.appNamespace = "sluice";
        ctx.destinationNamespace = "web";
        ctx.revision = "0123456789abcdef0123456789abcdef01234567";
        ctx.kubeVersion = "1.29.3";
        ctx.apiVersions = {"apps/v1", "v1"};
        settings.timeout = std::chrono::seconds(20);
        settings.plugins = [this] { return defs; };
    }

    std::vector<render::Object> render() {
        const fs::path scratch = scratchRoot.path() / std::to_string(renders++);
        fs::create_directories(scratch);
        RenderInput in{source, SourceType::Plugin, repo.path(), repo.path() / source.path, {},
                       ctx,    settings,           scratch};
        return rendererFor(SourceType::Plugin).render(in);
    }

    // The message of the RenderError render() throws.
    std::string renderError() {
        try {
            render();
        } catch (const render::RenderError& e) {
            return e.what();
        }
        ADD_FAILURE() << "expected a RenderError";
        return "";
    }

    TempDir repo;
    TempDir scratchRoot;
    int renders = 0;
    appengine::Source source;
    RenderContext ctx;
    Settings settings;
    std::vector<PluginDefinition> defs;
};

TEST(PluginConfigMap, LoadsGoodDocumentsAndReportsBrokenOnes) {
    json cm = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "plugins"}}}};
    cm["data"]["a.yaml"] = R"(apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata:
  name: tanka
spec:
  version: v1.0
  init:
    command: [sh]
    args: [-c, "jb install"]
  generate:
    command: [sh, -c]
    args: ["tk show --dangerous-allow-redirect ."]
  discover:
    fileName: "./jsonnetfile.json"
  parameters:
    static: [{name: env, string: dev}]
  preserveFileMode: false
  lockRepo: false
)";
    cm["data"]["b.yaml"] = R"(apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata: {name: finder}
spec:
  generate: {command: [cat, all.yaml]}
  discover:
    find:
      command: [sh, -c, "find . -name env.yaml"]
      glob: "**/env.yaml"
)";
    cm["data"]["broken.yaml"] = "kind: ConfigManagementPlugin\nmetadata: [unclosed\n";
    cm["data"]["no-generate.yaml"] =
        "kind: ConfigManagementPlugin\nmetadata: {name: x}\nspec:\n  init: {command: [cat]}\n";
    std::vector<std::string> errors;
    auto defs = parsePluginConfigMap(cm, errors);

    ASSERT_EQ(defs.size(), 2u);
    EXPECT_EQ(defs[0].fullName(), "tanka-v1.0");
    EXPECT_EQ(defs[0].init, (std::vector<std::string>{"sh", "-c", "jb install"}));
    EXPECT_EQ(defs[0].generate,
              (std::vector<std::string>{"sh", "-c", "tk show --dangerous-allow-redirect ."}));
    EXPECT_EQ(defs[0].discoverFileName, "./jsonnetfile.json");
    EXPECT_EQ(defs[1].fullName(), "finder");
    EXPECT_TRUE(defs[1].init.empty());
    EXPECT_EQ(defs[1].generate, (std::vector<std::string>{"cat", "all.yaml"}));
    EXPECT_EQ(defs[1].discoverFind,
              (std::vector<std::string>{"sh", "-c", "find . -name env.yaml"}));
    EXPECT_EQ(defs[1].discoverFindGlob, "**/env.yaml");
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_NE(errors[0].find("broken.yaml"), std::string::npos) << errors[0];
    EXPECT_NE(errors[1].find("no-generate.yaml"), std::string::npos) << errors[1];
    EXPECT_NE(errors[1].find("spec.generate.command"), std::string::npos) << errors[1];
}

TEST(PluginConfigMap, RejectsWrongKindDuplicatesAndBadFields) {
    json cm;
    const std::string gen = "\nspec: {generate: {command: [cat]}}\n";
    cm["data"]["1"] = "kind: ConfigManagementPlugin\nmetadata: {name: p}" + gen;
    cm["data"]["2"] = "kind: ConfigManagementPlugin\nmetadata: {name: p}" + gen;
    cm["data"]["3"] = "kind: ConfigMap\nmetadata: {name: q}" + gen;
    cm["data"]["4"] =
        "kind: ConfigManagementPlugin\nmetadata: {name: r}\nspec: {version: 1.0, generate: "
        "{command: [cat]}}\n";
    cm["data"]["5"] =
        "kind: ConfigManagementPlugin\nmetadata: {name: s}\nspec: {generate: "
        "{command: cat}}\n";
    std::vector<std::string> errors;
    auto defs = parsePluginConfigMap(cm, errors);
    ASSERT_EQ(defs.size(), 1u);
    EXPECT_EQ(defs[0].name, "p");
    ASSERT_EQ(errors.size(), 4u);
    EXPECT_NE(errors[0].find("already defined by data[\"1\"]"), std::string::npos) << errors[0];
    EXPECT_NE(errors[1].find("kind"), std::string::npos) << errors[1];
    EXPECT_NE(errors[2].find("spec.version"), std::string::npos) << errors[2];
    EXPECT_NE(errors[3].find("spec.generate.command"), std::string::npos) << errors[3];

    errors.clear();
    EXPECT_TRUE(parsePluginConfigMap(json::object(), errors).empty());
    EXPECT_TRUE(errors.empty());
}

TEST_F(PluginRender, NamedPluginSeesBuildEnvironmentEnvAndParameters) {
    defs.push_back(shPlugin("other", "exit 1"));
    defs.push_back(shPlugin("maker", configMapScript("$ARGOCD_APP_NAME", R"(
for v in ARGOCD_APP_NAMESPACE ARGOCD_APP_REVISION_SHORT ARGOCD_APP_SOURCE_PATH \
         ARGOCD_APP_SOURCE_REPO_URL ARGOCD_APP_SOURCE_TARGET_REVISION KUBE_VERSION \
         KUBE_API_VERSIONS ARGOCD_ENV_FOO ARGOCD_ENV_REV PARAM_X PARAM_LIST_0 PARAM_LIST_1 \
         PARAM_IMAGE_TAGS_IMAGE_TAG ARGOCD_APP_PARAMETERS; do
  eval "val=\${$v-unset}"
  printf '  %s: %s\n' "$v" "'$val'"
done)")));
    defs.back().version = "v2";
    source.plugin->name = "maker-v2";
    source.plugin->env = {{"FOO", "bar"}, {"REV", "rev-$ARGOCD_APP_REVISION_SHORT-$$x-$NOPE."}};
    source.plugin->parameters = json::parse(
        R"([{"name": "x", "string": "hello"}, {"name": "list", "array": ["a", "b"]},
            {"name": "image-tags", "map": {"image.tag": "v1"}}])");

    auto objs = render();
    ASSERT_EQ(objs.size(), 1u);
    const json& m = objs[0].manifest;
    EXPECT_EQ(m["metadata"]["name"], "guestbook");
    const json& d = m["data"];
    EXPECT_EQ(d["ARGOCD_APP_NAMESPACE"], "web");
    EXPECT_EQ(d["ARGOCD_APP_REVISION_SHORT"], "0123456");
    EXPECT_EQ(d["ARGOCD_APP_SOURCE_PATH"], "app");
    EXPECT_EQ(d["ARGOCD_APP_SOURCE_REPO_URL"], "https://git.example/repo.git");
    EXPECT_EQ(d["ARGOCD_APP_SOURCE_TARGET_REVISION"], "main");
    EXPECT_EQ(d["KUBE_VERSION"], "1.29.3");
    EXPECT_EQ(d["KUBE_API_VERSIONS"], "apps/v1,v1");
    EXPECT_EQ(d["ARGOCD_ENV_FOO"], "bar");
    EXPECT_EQ(d["ARGOCD_ENV_REV"], "rev-0123456-$x-.");
    EXPECT_EQ(d["PARAM_X"], "hello");
    EXPECT_EQ(d["PARAM_LIST_0"], "a");
    EXPECT_EQ(d["PARAM_LIST_1"], "b");
    EXPECT_EQ(d["PARAM_IMAGE_TAGS_IMAGE_TAG"], "v1");
    EXPECT_EQ(json::parse(d["ARGOCD_APP_PARAMETERS"].get<std::string>()),
              source.plugin->parameters);
    EXPECT_EQ(objs[0].sourceFile, "plugin maker-v2");
}

TEST_F(PluginRender, ControllerEnvironmentIsNotVisible) {
    ::setenv("KUBERNETES_SERVICE_HOST", "x", 1);
    ::setenv("SLUICE_SECRET_FOR_TEST", "y", 1);
    defs.push_back(shPlugin("env", configMapScript("env", R"(
printf '  host: "%s"\n  secret: "%s"\n  home: "%s"\n' "${KUBERNETES_SERVICE_HOST-unset}" \
  "${SLUICE_SECRET_FOR_TEST-unset}" "$HOME")")));
    source.plugin->name = "env";
    auto objs = render();
    ::unsetenv("SLUICE_SECRET_FOR_TEST");
    ASSERT_EQ(objs.size(), 1u);
    EXPECT_EQ(objs[0].manifest["data"]["host"], "unset");
    EXPECT_EQ(objs[0].manifest["data"]["secret"], "unset");
    EXPECT_EQ(objs[0].manifest["data"]["home"].get<std::string>().rfind(scratchRoot.str(), 0), 0u);
}

TEST_F(PluginRender, UnknownNameIsAnError) {
    defs.push_back(shPlugin("a", "true"));
    source.plugin->name = "b";
    const std::string err = renderError();
    EXPECT_NE(err.find("no plugin named \"b\" is defined"), std::string::npos) << err;
    EXPECT_NE(err.find("defined: a"), std::string::npos) << err;
    settings.plugins = nullptr;
    EXPECT_NE(renderError().find("none is defined"), std::string::npos);
}

TEST_F(PluginRender, DiscoveryByFileName) {
    repo.write("app/subdir/settings.yaml", "x: 1\n");
    defs.push_back(shPlugin("jsonnet", configMapScript("from-jsonnet", "")));
    defs.back().discoverFileName = "*.jsonnet";
    defs.push_back(shPlugin("undiscoverable", configMapScript("from-named-only", "")));
    defs.push_back(shPlugin("settings", configMapScript("from-settings", "")));
    defs.back().discoverFileName = "./subdir/s*.yaml";
    auto objs = render();
    ASSERT_EQ(objs.size(), 1u);
    EXPECT_EQ(objs[0].manifest["metadata"]["name"], "from-settings");

    // A named plugin with a discover rule is used only where the rule matches (Argo CD).
    source.plugin->name = "jsonnet";
    EXPECT_NE(renderError().find("discover rule does not match"), std::string::npos);

    fs::remove_all(repo.path() / "app/subdir");
    source.plugin->name = "";
    const std::string err = renderError();
    EXPECT_NE(err.find("no plugin's discover rule matches"), std::string::npos) << err;
}

TEST_F(PluginRender, DiscoveryByFindGlobAndFindCommand) {
    repo.write("app/deep/er/env.yaml", "x: 1\n");
    repo.write("outside/marker", "x\n");
    // Outside the tree (through the temporary directory holding it) nothing matches.
    defs.push_back(shPlugin("escape", configMapScript("escaped", "")));
    defs.back().discoverFindGlob = "../../*/outside/marker";
    defs.push_back(shPlugin("glob", configMapScript("by-glob", "")));
    defs.back().discoverFindGlob = "**/env.yaml";
    auto objs = render();
    ASSERT_EQ(objs.size(), 1u);
    EXPECT_EQ(objs[0].manifest["metadata"]["name"], "by-glob");
    defs[0].discoverFindGlob = "../outside/*";  // elsewhere in the tree counts, as in Argo CD
    objs = render();
    ASSERT_EQ(objs.size(), 1u);
    EXPECT_EQ(objs[0].manifest["metadata"]["name"], "escaped");

    defs.clear();
    defs.push_back(shPlugin("silent", configMapScript("silent", "")));
    defs.back().discoverFind = {"sh", "-c", "echo; touch written-by-find"};
    defs.push_back(shPlugin("failing", configMapScript("failing", "")));
    defs.back().discoverFind = {"sh", "-c", "echo yes; exit 1"};
    defs.push_back(shPlugin("finder", configMapScript("by-find", "")));
    defs.back().discoverFind = {"sh", "-c", "find . -name env.yaml"};
    objs = render();
    ASSERT_EQ(objs.size(), 1u);
    EXPECT_EQ(objs[0].manifest["metadata"]["name"], "by-find");
    EXPECT_FALSE(fs::exists(repo.path() / "app/written-by-find"));
}

TEST_F(PluginRender, InitRunsBeforeGenerateInTheAppDirectory) {
    PluginDefinition def = shPlugin("two-step", "cat generated.yaml");
    def.init = {"sh", "-c",
                "test -f manifest.yaml && printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n"
                "  name: from-init\\n' > generated.yaml"};
    defs.push_back(def);
    source.plugin->name = "two-step";
    auto objs = render();
    ASSERT_EQ(objs.size(), 1u);
    EXPECT_EQ(objs[0].manifest["metadata"]["name"], "from-init");
    EXPECT_FALSE(fs::exists(repo.path() / "app/generated.yaml"));
}

TEST_F(PluginRender, RelativeCommandIsInTheAppDirectory) {
    repo.write("app/gen.sh", "#!/bin/sh\n" + configMapScript("from-script", ""));
    fs::permissions(repo.path() / "app/gen.sh", fs::perms::owner_exec, fs::perm_options::add);
    PluginDefinition def;
    def.name = "script";
    def.generate = {"./gen.sh"};
    defs.push_back(def);
    source.plugin->name = "script";
    auto objs = render();
    ASSERT_EQ(objs.size(), 1u);
    EXPECT_EQ(objs[0].manifest["metadata"]["name"], "from-script");
}

TEST_F(PluginRender, FailingGenerateQuotesStderr) {
    defs.push_back(shPlugin("bad", "echo partial; echo 'kustomize: something broke' >&2; exit 3"));
    source.plugin->name = "bad";
    const std::string err = renderError();
    EXPECT_NE(err.find("plugin bad"), std::string::npos) << err;
    EXPECT_NE(err.find("generate failed (exit code 3)"), std::string::npos) << err;
    EXPECT_NE(err.find("kustomize: something broke"), std::string::npos) << err;

    defs[0].init = {"sh", "-c", "echo init-broke >&2; false"};
    const std::string initErr = renderError();
    EXPECT_NE(initErr.find("init failed"), std::string::npos) << initErr;
    EXPECT_NE(initErr.find("init-broke"), std::string::npos) << initErr;
}

TEST_F(PluginRender, WritesStayInThePrivateCopy) {
    repo.write("app/shared.txt", "original\n");
    repo.write("lib/base.txt", "base\n");
    defs.push_back(shPlugin("writer", R"(
echo overwritten > shared.txt
echo appended >> ../lib/base.txt
mkdir -p out && echo new > out/new.txt
rm manifest.yaml
cat ../lib/base.txt >&2
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: wrote\n')"));
    source.plugin->name = "writer";
    auto objs = render();
    ASSERT_EQ(objs.size(), 1u);
    const fs::path root = repo.path();
    EXPECT_EQ(readFile(root / "app/shared.txt"), "original\n");
    EXPECT_EQ(readFile(root / "lib/base.txt"), "base\n");
    EXPECT_TRUE(fs::exists(root / "app/manifest.yaml"));
    EXPECT_FALSE(fs::exists(root / "app/out"));
}

TEST_F(PluginRender, TimeoutKillsThePlugin) {
    settings.timeout = std::chrono::milliseconds(500);
    defs.push_back(shPlugin("slow", "sleep 5"));
    source.plugin->name = "slow";
    const auto start = std::chrono::steady_clock::now();
    const std::string err = renderError();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
    EXPECT_NE(err.find("timed out"), std::string::npos) << err;
    EXPECT_NE(err.find("plugin slow"), std::string::npos) << err;
}

TEST_F(PluginRender, ConcatenatedJsonObjects) {
    defs.push_back(shPlugin("jq-like", R"(
echo '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}'
echo '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b","annotations":{"x":"} ]"}}}')"));
    source.plugin->name = "jq-like";
    auto objs = render();
    ASSERT_EQ(objs.size(), 2u);
    EXPECT_EQ(objs[0].manifest["metadata"]["name"], "a");
    EXPECT_EQ(objs[1].manifest["metadata"]["name"], "b");
}

TEST_F(PluginRender, VersionFollowsTheDefinitions) {
    Renderer& r = rendererFor(SourceType::Plugin);
    defs.push_back(shPlugin("p", "true"));
    const std::string before = r.version(settings);
    EXPECT_EQ(before.rfind("plugin-1", 0), 0u);
    EXPECT_EQ(r.version(settings), before);
    defs[0].generate.back() = "false";
    EXPECT_NE(r.version(settings), before);
}

}  // namespace
}  // namespace sluice::source
