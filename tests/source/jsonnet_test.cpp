// Jsonnet files of directory sources (directory.jsonnet) evaluated with libjsonnet: variables,
// libraries, output shapes, errors, and imports confined to the source's tree.
#include <gtest/gtest.h>

#include <filesystem>

#include "../../src/source/renderers.h"
#include "process/process.h"
#include "sluice/source/source.h"
#include "tempdir/tempdir.h"

namespace sluice::source {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string cm(const std::string& name) {
    return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n";
}

// A repository tree at <tmp>/repo with the source at repo/app, rendered as a directory source.
class JsonnetTest : public ::testing::Test {
  protected:
    JsonnetTest() {
        source.path = "app";
        source.directory = true;
        source.jsonnet = appengine::JsonnetOptions{};
        context.appName = "guestbook";
        context.revision = "0123456789abcdef";
    }

    fs::path root() const { return tmp.path() / "repo"; }
    void write(const std::string& rel, const std::string& content) {
        tmp.write("repo/" + rel, content);
    }

    RenderInput input() const {
        return RenderInput{
            source,   SourceType::Directory, root(), root() / source.path, {}, context,
            settings, scratch.path()};
    }
    std::vector<render::Object> render(const std::string& file) {
        return renderJsonnetFile(input(), root() / file);
    }
    // The RenderError of rendering `file`, failing the test if there is none.
    render::RenderError errorOf(const std::string& file) {
        try {
            render(file);
        } catch (const render::RenderError& e) {
            return e;
        }
        ADD_FAILURE() << "expected a RenderError from " << file;
        return render::RenderError("<none>", 0, "");
    }

    testing::TempDir tmp;
    testing::TempDir scratch;
    appengine::Source source;
    RenderContext context;
    Settings settings;
};

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

std::vector<std::string> names(const std::vector<render::Object>& objs) {
    std::vector<std::string> out;
    for (const auto& o : objs) out.push_back(o.manifest["metadata"]["name"].get<std::string>());
    return out;
}

TEST_F(JsonnetTest, ExtVarsAsStringsAndCode) {
    write("app/main.jsonnet", R"({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: std.extVar('name') },
  data: { count: std.extVar('count') + 1, app: std.extVar('app'), raw: std.extVar('raw') },
})");
    source.jsonnet->extVars = {{"name", "settings", false},
                               {"count", "40 + 1", true},
                               {"app", "$ARGOCD_APP_NAME-${ARGOCD_APP_REVISION_SHORT}", false},
                               {"raw", "$$HOME $UNKNOWN.", false}};
    auto objs = render("app/main.jsonnet");
    ASSERT_EQ(objs.size(), 1u);
    EXPECT_EQ(objs[0].manifest["metadata"]["name"], "settings");
    EXPECT_EQ(objs[0].manifest["data"]["count"], 42);
    EXPECT_EQ(objs[0].manifest["data"]["app"], "guestbook-0123456")
        << "Argo CD's build environment";
    EXPECT_EQ(objs[0].manifest["data"]["raw"], "$HOME .") << "os.Expand: $$ is $, unknown is empty";
    EXPECT_EQ(objs[0].sourceFile, "app/main.jsonnet");
    EXPECT_EQ(objs[0].documentIndex, 0);
    EXPECT_EQ(objs[0].itemIndex, -1);
}

TEST_F(JsonnetTest, TopLevelArguments) {
    write("app/deploy.jsonnet", R"(function(replicas=1, name='web') {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: name },
  spec: { replicas: replicas },
})");
    auto defaults = render("app/deploy.jsonnet");
    ASSERT_EQ(defaults.size(), 1u);
    EXPECT_EQ(defaults[0].manifest["spec"]["replicas"], 1);
    source.jsonnet->tlas = {{"replicas", "2 * 3", true}, {"name", "api", false}};
    auto objs = render("app/deploy.jsonnet");
    ASSERT_EQ(objs.size(), 1u);
    EXPECT_EQ(objs[0].manifest["spec"]["replicas"], 6);
    EXPECT_EQ(objs[0].manifest["metadata"]["name"], "api");
}

TEST_F(JsonnetTest, LibsAndLocalImportsWithNestedArrays) {
    write("vendor/k.libsonnet",
          "{ cm(name):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name } } }");
    write("other/k.libsonnet", "{ cm(name):: error 'the earlier lib was used' }");
    write("app/names.libsonnet", "['a', 'b', 'c']");
    write("app/main.jsonnet", R"(local k = import 'k.libsonnet';
local n = import 'names.libsonnet';
[k.cm(n[0]), [k.cm(n[1]), [k.cm(n[2])]], []])");
    source.jsonnet->libs = {"other", "/vendor"};  // the later lib wins, as go-jsonnet's JPaths
    auto objs = render("app/main.jsonnet");
    EXPECT_EQ(names(objs), (std::vector<std::string>{"a", "b", "c"}));
    ASSERT_EQ(objs.size(), 3u);
    EXPECT_EQ(objs[2].documentIndex, 2);
}

TEST_F(JsonnetTest, ListsAreExpandedAndEmptyValuesGiveNothing) {
    write("app/list.jsonnet", R"({ apiVersion: 'v1', kind: 'ConfigMapList', items: [
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } },
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'y' } },
] })");
    auto objs = render("app/list.jsonnet");
    EXPECT_EQ(names(objs), (std::vector<std::string>{"x", "y"}));
    ASSERT_EQ(objs.size(), 2u);
    EXPECT_EQ(objs[1].itemIndex, 1);
    for (const char* empty : {"null", "[]", "{}", "[[], null]"}) {
        write("app/empty.jsonnet", empty);
        EXPECT_TRUE(render("app/empty.jsonnet").empty()) << empty;
    }
}

TEST_F(JsonnetTest, ErrorsNameTheFileAndLine) {
    write("app/static.jsonnet", "local x = 1;\n{\n  a: y,\n}\n");
    auto e = errorOf("app/static.jsonnet");
    EXPECT_EQ(e.file(), "app/static.jsonnet");
    EXPECT_EQ(e.line(), 3) << e.what();
    EXPECT_TRUE(contains(e.what(), "Unknown variable")) << e.what();
    EXPECT_FALSE(contains(e.what(), tmp.str())) << "no scratch paths in messages: " << e.what();

    write("app/runtime.jsonnet", "{\n  apiVersion: 'v1',\n  kind: error 'boom',\n}\n");
    auto r = errorOf("app/runtime.jsonnet");
    EXPECT_EQ(r.line(), 3) << r.what();
    EXPECT_TRUE(contains(r.what(), "boom")) << r.what();

    write("app/kinds.jsonnet", "[{ apiVersion: 'v1', metadata: { name: 'a' } }]");
    EXPECT_TRUE(contains(errorOf("app/kinds.jsonnet").what(), "element 0: missing kind"));
    write("app/scalar.jsonnet", "[[1]]");
    EXPECT_TRUE(contains(errorOf("app/scalar.jsonnet").what(), "expected a Kubernetes object"));
}

TEST_F(JsonnetTest, EvaluationIsBounded) {
    write("app/deep.jsonnet", "local f(n) = 1 + f(n + 1); f(0)");
    auto deep = errorOf("app/deep.jsonnet");
    EXPECT_TRUE(contains(deep.what(), "stack")) << deep.what();

    settings.maxOutputBytes = 4096;
    write("app/big.jsonnet",
          "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'b' }, data: { x: "
          "std.join('', std.makeArray(10000, function(i) 'x')) } }");
    EXPECT_TRUE(contains(errorOf("app/big.jsonnet").what(), "size limit"));
}

TEST_F(JsonnetTest, ImportsOutsideTheTreeAreRefused) {
    write("app/passwd.jsonnet", "importstr '../../etc/passwd'");
    auto up = errorOf("app/passwd.jsonnet");
    EXPECT_EQ(up.file(), "app/passwd.jsonnet");
    EXPECT_TRUE(contains(up.what(),
                         "import \"../../etc/passwd\": resolves outside the repository; refused"))
        << up.what();

    write("app/abs.jsonnet", "importstr '/etc/passwd'");
    EXPECT_TRUE(contains(errorOf("app/abs.jsonnet").what(), "refused"));

    // Through a symlink in the tree: refused although the link itself is inside.
    tmp.write("outside/secret.libsonnet",
              "{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' } }");
    fs::create_symlink(tmp.path() / "outside/secret.libsonnet", root() / "app/link.libsonnet");
    write("app/link.jsonnet", "import 'link.libsonnet'");
    auto link = errorOf("app/link.jsonnet");
    EXPECT_TRUE(contains(link.what(),
                         "import \"link.libsonnet\": resolves outside the repository; refused"))
        << link.what();
    // A symlink to a directory outside, used as the rendered file's own directory.
    fs::create_directory_symlink(tmp.path() / "outside", root() / "app/out");
    tmp.write("outside/x.jsonnet", "{}");
    EXPECT_TRUE(contains(errorOf("app/out/x.jsonnet").what(), "refused"));

    // Code given in extVars cannot read outside either.
    write("app/ext.jsonnet", "std.extVar('x')");
    source.jsonnet->extVars = {{"x", "importstr '/etc/hostname'", true}};
    EXPECT_TRUE(contains(errorOf("app/ext.jsonnet").what(), "refused"));

    source.jsonnet->extVars.clear();
    source.jsonnet->libs = {"../outside"};
    write("app/ok.jsonnet", "null");
    EXPECT_THROW(render("app/ok.jsonnet"), render::RenderError);
}

TEST_F(JsonnetTest, SymlinksInsideTheTreeAreFollowed) {
    write("lib/real.libsonnet",
          "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'in' } }");
    fs::create_directories(root() / "app");
    fs::create_symlink("../lib/real.libsonnet", root() / "app/alias.libsonnet");
    write("app/main.jsonnet", "import 'alias.libsonnet'");
    EXPECT_EQ(names(render("app/main.jsonnet")), (std::vector<std::string>{"in"}));
}

TEST_F(JsonnetTest, DirectorySourceWithYamlJsonnetIncludeAndExclude) {
    write("app/a.yaml", cm("a"));
    write("app/b-secret.yaml", cm("b-secret"));
    write("app/c.jsonnet", "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }");
    write("app/sub/d.yaml", cm("d"));
    write("app/sub/e.jsonnet",
          "[{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'e' } }]");
    write("app/sub/lib.libsonnet", "{}");
    write("app/.hidden/f.yaml", cm("f"));
    write("app/notes.txt", "not a manifest");
    using V = std::vector<std::string>;
    auto run = [&](bool recurse, const std::string& include, const std::string& exclude) {
        source.recurse = recurse;
        source.include = include;
        source.exclude = exclude;
        return names(renderDirectory(input()));
    };
    EXPECT_EQ(run(false, "", ""), (V{"a", "b-secret", "c"}));
    EXPECT_EQ(run(true, "", ""), (V{"a", "b-secret", "d", "c", "e"}));
    EXPECT_EQ(run(true, "", "*-secret.yaml"), (V{"a", "d", "c", "e"}));
    EXPECT_EQ(run(true, "*.jsonnet", ""), (V{"c", "e"}));
    EXPECT_EQ(run(true, "sub/*", "*.yaml"), (V{"e"}));
    EXPECT_EQ(run(true, "{a.yaml,sub/e.jsonnet}", ""), (V{"a", "e"}));
    auto objs = renderDirectory(input());
    ASSERT_EQ(objs.size(), 2u);
    EXPECT_EQ(objs[0].sourceFile, "app/a.yaml");
    EXPECT_EQ(objs[1].sourceFile, "app/sub/e.jsonnet");
}

}  // namespace
}  // namespace sluice::source
