#include "sluice/render/render.h"

#include <gtest/gtest.h>

#include "testutil/hostile.h"

#include <chrono>

#include "sluice/git/fake_source.h"
#include "tempdir/tempdir.h"
#include "test_repo.h"

namespace sluice::render {
namespace {

using nlohmann::json;

std::string cm(const std::string& name) {
    return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n";
}

// Options for a path alone (no include / exclude filter).
Options opts(const std::string& path, bool recurse, const std::string& include = "",
             const std::string& exclude = "") {
    Options o;
    o.path = path;
    o.recurse = recurse;
    o.include = include;
    o.exclude = exclude;
    return o;
}

std::vector<std::string> names(const std::vector<Object>& objs) {
    std::vector<std::string> out;
    for (const auto& o : objs) out.push_back(o.manifest["metadata"]["name"].get<std::string>());
    return out;
}

// The RenderError thrown by render(), failing the test if none is.
RenderError errorOf(const std::vector<SourceFile>& files, const Options& opts) {
    try {
        render(files, opts);
    } catch (const RenderError& e) {
        return e;
    }
    ADD_FAILURE() << "expected a RenderError";
    return RenderError("<none>", 0, "");
}

TEST(Render, MultiDocumentYamlWithPositions) {
    std::vector<SourceFile> files = {
        {"app/all.yaml", "# leading comment\n---\n" + cm("a") +
                             "---\n---\n# just a comment\n---\n" + cm("b") + "...\n"},
    };
    auto objs = render(files, opts("app", false));
    ASSERT_EQ(names(objs), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(objs[0].sourceFile, "app/all.yaml");
    EXPECT_EQ(objs[0].documentIndex, 0);
    EXPECT_EQ(objs[0].line, 3);
    EXPECT_EQ(objs[1].documentIndex, 3) << "explicit empty documents keep their position";
    EXPECT_EQ(objs[1].line, 11);
    EXPECT_EQ(objs[1].itemIndex, -1);
}

TEST(Render, KubernetesTypingOfScalars) {
    auto objs = render({{"a.yaml", cm("x") + "data:\n  on: yes\n  q: \"yes\"\n  n: 010\n"}}, {});
    ASSERT_EQ(objs.size(), 1u);
    EXPECT_EQ(objs[0].manifest["data"]["on"], json(true));
    EXPECT_EQ(objs[0].manifest["data"]["q"], json("yes"));
}

TEST(Render, BlockScalarsAreNotSplit) {
    std::string text = cm("a") + "data:\n  script: |\n    echo ---\n    --- not a marker\n";
    auto objs = render({{"a.yml", text}}, {});
    ASSERT_EQ(objs.size(), 1u);
    EXPECT_EQ(objs[0].manifest["data"]["script"], "echo ---\n--- not a marker\n");
}

TEST(Render, ListsAreExpanded) {
    std::string list =
        "apiVersion: v1\nkind: List\nitems:\n- " +
        std::string("apiVersion: v1\n  kind: Service\n") +
        "  metadata: {name: s1}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s2}\n";
    std::string cmList =
        R"({"apiVersion":"v1","kind":"ConfigMapList","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"}}]})";
    auto objs = render({{"l.yaml", list}, {"m.json", cmList}}, {});
    ASSERT_EQ(names(objs), (std::vector<std::string>{"s1", "s2", "j"}));
    EXPECT_EQ(objs[1].itemIndex, 1);
    EXPECT_EQ(objs[2].itemIndex, 0);
    EXPECT_EQ(objs[2].sourceFile, "m.json");
    // A kind merely ending in "List" without items is an ordinary object.
    auto plain =
        render({{"p.yaml", "apiVersion: x/v1\nkind: AllowList\nmetadata: {name: p}\n"}}, {});
    EXPECT_EQ(names(plain), (std::vector<std::string>{"p"}));
}

TEST(Render, JsonFiles) {
    auto objs =
        render({{"d/x.JSON", R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}})"}},
               opts("d", false));
    ASSERT_EQ(objs.size(), 1u);
    EXPECT_EQ(objs[0].manifest["kind"], "Secret");
    auto e = errorOf({{"d/bad.json", "{\n  \"a\": 1,\n  oops\n}"}}, opts("d", false));
    EXPECT_EQ(e.file(), "d/bad.json");
    EXPECT_EQ(e.line(), 3);
    EXPECT_EQ(std::string(e.what()).rfind("d/bad.json:3: invalid JSON", 0), 0u) << e.what();
}

TEST(Render, SortedByPathRecursionAndHiddenFiles) {
    std::vector<SourceFile> files = {
        {"env/prod/z.yaml", cm("z")},
        {"env/prod/sub/deeper/d.yaml", cm("d")},
        {"env/prod/a.yml", cm("a")},
        {"env/prod/sub/s.json",
         R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"s"}})"},
        {"env/prod/.hidden.yaml", cm("hidden")},
        {"env/prod/.git-crypt/k.yaml", cm("hidden-dir")},
        {"env/prod/README.md", "# not a manifest"},
        {"env/prod/sub.yaml", cm("sub-file")},
        {"env/prodx/other.yaml", cm("other")},
        {"env/staging/x.yaml", cm("staging")},
    };
    EXPECT_EQ(names(render(files, opts("env/prod", false))),
              (std::vector<std::string>{"a", "sub-file", "z"}));
    EXPECT_EQ(names(render(files, opts("./env/prod/", true))),
              (std::vector<std::string>{"a", "d", "s", "sub-file", "z"}))
        << "a directory's files come before names sorting after it (walk order)";
    EXPECT_TRUE(render(files, opts("", false)).empty());
    EXPECT_TRUE(render({}, opts("anything", true)).empty()) << "empty is not an error";
    EXPECT_TRUE(isRelevant("env/prod/a.yml", opts("env/prod", false)));
    EXPECT_FALSE(isRelevant("env/prod/sub/s.json", opts("env/prod", false)));
    EXPECT_FALSE(isRelevant("env/prod/.hidden.yaml", opts("env/prod", true)));
    EXPECT_FALSE(isRelevant("env/prod/README.md", opts("env/prod", true)));
    EXPECT_TRUE(isRelevant("env/prod/kustomization.yaml", opts("env/prod", false)));
}

TEST(Render, ParseErrorNamesFileAndLineAndFailsEverything) {
    std::vector<SourceFile> files = {
        {"environments/prod/a.yaml", cm("fine")},
        {"environments/prod/app.yaml",
         cm("x") + "---\n" + cm("y") + "data:\n  k: [unclosed\n  j: 1\n"},
    };
    auto e = errorOf(files, opts("environments/prod", false));
    EXPECT_EQ(e.file(), "environments/prod/app.yaml");
    EXPECT_GE(e.line(), 10);
    EXPECT_LE(e.line(), 12);
    std::string expectedPrefix = "environments/prod/app.yaml:" + std::to_string(e.line()) + ": ";
    EXPECT_EQ(std::string(e.what()).rfind(expectedPrefix, 0), 0u) << e.what();

    auto dup = errorOf({{"d.yaml", cm("a") + "---\n" + cm("b") + "data: {}\ndata: {}\n"}}, {});
    EXPECT_EQ(dup.line(), 11) << dup.what();
    EXPECT_NE(std::string(dup.what()).find("duplicate key"), std::string::npos);
}

TEST(Render, ObjectsNeedApiVersionKindAndName) {
    struct Case {
        std::string doc, missing;
    };
    for (const auto& c : std::vector<Case>{
             {"kind: ConfigMap\nmetadata: {name: a}\n", "apiVersion"},
             {"apiVersion: v1\nmetadata: {name: a}\n", "kind"},
             {"apiVersion: v1\nkind: ConfigMap\n", "metadata.name"},
             {"apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}\n", "metadata.name"},
             {"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"\"}\n", "metadata.name"},
         }) {
        auto e = errorOf({{"app/x.yaml", cm("ok") + "---\n" + c.doc}}, opts("app", false));
        EXPECT_EQ(std::string(e.what()), "app/x.yaml:6: document 2: missing " + c.missing) << c.doc;
    }
    // A resource hook may have only generateName (a sync names it).
    EXPECT_NO_THROW(render({{"app/hook.yaml",
                             "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: "
                             "smoke-\n  annotations: {argocd.argoproj.io/hook: PostSync}\n"}},
                           opts("app", false)));
    auto scalar = errorOf({{"s.yaml", "just a string\n"}}, {});
    EXPECT_NE(std::string(scalar.what()).find("document 1: expected a Kubernetes object"),
              std::string::npos)
        << scalar.what();
    auto item = errorOf({{"l.yaml", "apiVersion: v1\nkind: List\nitems:\n- kind: X\n"}}, {});
    EXPECT_NE(std::string(item.what()).find("document 1: item 0: missing apiVersion"),
              std::string::npos)
        << item.what();
}

// A 51.8 MB manifest was sent to the API server six times; it is refused before it is read.
TEST(RenderRevision, FilesAboveTheSizeLimitAreRefusedBeforeReading) {
    git::FakeGitSource fake;
    const std::string url = "https://example.com/big.git";
    std::string big(3u << 20, 'x');
    const std::string sha = fake.commit(url, {{"app/big.yaml", "data: " + big + "\n"}});
    Options o = opts("app", false);
    o.maxBytes = 1u << 20;
    git::Repository repo{url, {}};
    try {
        renderRevision(fake, repo, sha, o);
        FAIL() << "rendered 3 MiB with a 1 MiB limit";
    } catch (const RenderError& e) {
        EXPECT_EQ(e.file(), "app/big.yaml");
        EXPECT_NE(std::string(e.what()).find("more than 1 MiB"), std::string::npos) << e.what();
    }
}

TEST(Render, KustomizeAndHelmFilesAreRefusedInADirectorySource) {
    for (const char* marker : {"kustomization.yaml", "kustomization.yml", "Kustomization"}) {
        auto e = errorOf({{"app/a.yaml", cm("a")}, {std::string("app/") + marker, "resources: []"}},
                         opts("app", false));
        EXPECT_NE(std::string(e.what()).find("built with Kustomize"), std::string::npos)
            << e.what();
        EXPECT_EQ(e.file(), std::string("app/") + marker);
    }
    auto helm = errorOf({{"chart/Chart.yaml", "name: x\n"}, {"chart/templates/a.yaml", "{{ x }}"}},
                        opts("chart", false));
    EXPECT_NE(std::string(helm.what()).find("rendered with Helm"), std::string::npos);
    // Found in a subdirectory only when recursing into it.
    std::vector<SourceFile> nested = {{"app/a.yaml", cm("a")}, {"app/sub/kustomization.yaml", ""}};
    EXPECT_EQ(render(nested, opts("app", false)).size(), 1u);
    EXPECT_THROW(render(nested, opts("app", true)), RenderError);
}

TEST(Render, InvalidPathOption) {
    EXPECT_THROW(render({}, opts("../x", false)), RenderError);
    EXPECT_THROW(render({}, opts("/abs", false)), RenderError);
}

TEST(RenderRevision, FromARealRepository) {
    testing::TempDir tmp;
    testing::TestRepo upstream(tmp.path() / "upstream");
    upstream.write("apps/guestbook/svc.yaml", cm("svc"));
    upstream.write("apps/guestbook/deploy.yaml", cm("deploy") + "---\n" + cm("deploy-2"));
    upstream.write("apps/guestbook/nested/extra.json",
                   R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"extra"}})");
    upstream.write("apps/guestbook/notes.txt", "ignored");
    upstream.write("apps/guestbook/big.bin", std::string(1000, '\0'));
    upstream.write("apps/other/x.yaml", cm("other"));
    std::string sha = upstream.commit("guestbook");

    git::LibGit2Source source(tmp.path() / "cache");
    git::Repository repo{upstream.url(), {}};
    ASSERT_EQ(source.resolve(repo, "main").sha, sha);
    EXPECT_EQ(names(renderRevision(source, repo, sha, opts("apps/guestbook", false))),
              (std::vector<std::string>{"deploy", "deploy-2", "svc"}));
    auto all = renderRevision(source, repo, sha, opts("apps/guestbook", true));
    EXPECT_EQ(names(all), (std::vector<std::string>{"deploy", "deploy-2", "extra", "svc"}));
    EXPECT_EQ(all[2].sourceFile, "apps/guestbook/nested/extra.json");

    upstream.write("apps/guestbook/broken.yaml", "a: [\n");
    std::string broken = upstream.commit("broken");
    source.resolve(repo, "main");
    try {
        renderRevision(source, repo, broken, opts("apps/guestbook", false));
        ADD_FAILURE() << "expected a RenderError";
    } catch (const RenderError& e) {
        EXPECT_EQ(e.file(), "apps/guestbook/broken.yaml");
    }
}

TEST(RenderRevision, WithTheFakeSource) {
    git::FakeGitSource fake;
    git::Repository repo{"https://example.invalid/repo.git", {}};
    std::string sha = fake.commit(repo.url, {{"app/b.yaml", cm("b")},
                                             {"app/a/x.yaml", cm("x")},
                                             {"app/a.yaml", cm("a")},
                                             {"app/notes.md", "no"}});
    EXPECT_EQ(fake.resolve(repo, "main").sha, sha);
    EXPECT_EQ(fake.resolve(repo, "").sha, sha);
    EXPECT_EQ(fake.resolve(repo, sha.substr(0, 8)).sha, sha);
    EXPECT_EQ(fake.resolveCalls(repo.url), 3);
    EXPECT_EQ(names(renderRevision(fake, repo, sha, opts("app", true))),
              (std::vector<std::string>{"x", "a", "b"}));
    EXPECT_THROW(fake.resolve(repo, "nope"), git::GitError);
    fake.setError(repo.url, git::GitError(git::GitError::Kind::Auth, "denied"));
    try {
        fake.resolve(repo, "main");
        ADD_FAILURE() << "expected the injected error";
    } catch (const git::GitError& e) {
        EXPECT_EQ(e.kind(), git::GitError::Kind::Auth);
    }
    fake.setError(repo.url, std::nullopt);
    EXPECT_EQ(fake.listFiles(repo, sha, "app", false).size(), 3u);
    EXPECT_THROW(fake.listFiles(repo, sha, "missing", false), git::GitError);
    EXPECT_THROW(fake.listFiles(repo, sha, "../app", false), git::GitError);
}

TEST(Glob, ArgoCdSemantics) {
    EXPECT_TRUE(globMatch("*.yaml", "a.yaml"));
    EXPECT_TRUE(globMatch("*.yaml", "sub/dir/a.yaml")) << "no separators: * crosses /";
    EXPECT_FALSE(globMatch("*.yaml", "a.yml"));
    EXPECT_TRUE(globMatch("{a.yaml,b.yml}", "b.yml"));
    EXPECT_FALSE(globMatch("{a.yaml,b.yml}", "c.yaml"));
    EXPECT_TRUE(globMatch("{config/*,*.json}", "config/x/y.yaml")) << "wildcards in alternatives";
    EXPECT_TRUE(globMatch("{a,{b,c}d}.yaml", "cd.yaml")) << "nested alternatives";
    EXPECT_TRUE(globMatch("x{,-dev}.yaml", "x.yaml")) << "an empty alternative";
    EXPECT_TRUE(globMatch("config/*", "config/a.yaml"));
    EXPECT_FALSE(globMatch("config/*", "other/config/a.yaml"));
    EXPECT_TRUE(globMatch("?.yaml", "a.yaml"));
    EXPECT_FALSE(globMatch("?.yaml", "ab.yaml"));
    EXPECT_TRUE(globMatch("\xC3\xA9?.yaml", "\xC3\xA9\xE2\x82\xAC.yaml")) << "? is one code point";
    EXPECT_TRUE(globMatch("**", "a/b/c"));
    EXPECT_TRUE(globMatch("a,b}", "a,b}")) << "',' and '}' are plain outside a group";
    EXPECT_FALSE(globMatch("", "a")) << "an empty pattern matches only the empty path";
}

TEST(Glob, ClassesAndEscapes) {
    EXPECT_TRUE(globMatch("[abc].yaml", "b.yaml"));
    EXPECT_FALSE(globMatch("[abc].yaml", "d.yaml"));
    EXPECT_TRUE(globMatch("[a-c]x", "bx"));
    EXPECT_FALSE(globMatch("[a-c]x", "dx"));
    EXPECT_TRUE(globMatch("[!a]x", "bx"));
    EXPECT_FALSE(globMatch("[!a]x", "ax"));
    EXPECT_TRUE(globMatch("[!a-c]x", "dx"));
    EXPECT_FALSE(globMatch("[!a-c]x", "cx"));
    EXPECT_TRUE(globMatch("[-!]", "-"));
    EXPECT_TRUE(globMatch("[\\]]", "]"));
    EXPECT_TRUE(globMatch("\\*.yaml", "*.yaml"));
    EXPECT_FALSE(globMatch("\\*.yaml", "a.yaml"));
    EXPECT_TRUE(globMatch("a\\{b\\}", "a{b}"));
    EXPECT_TRUE(globMatch("{a\\,b,c}", "a,b"));
    EXPECT_TRUE(globMatch("\\?", "?"));
    EXPECT_FALSE(globMatch("\\?", "x"));
    // What gobwas cannot compile matches nothing (Argo CD logs it and takes no file).
    for (const char* bad : {"[abc", "{a,b", "a\\", "[a-zA-Z]", "[a-", "\xFF*"}) {
        EXPECT_FALSE(globMatch(bad, "a")) << bad;
        EXPECT_FALSE(globMatch(bad, bad)) << bad;
    }
}

TEST(Glob, PathologicalPatternsFinishFast) {
    const auto start = std::chrono::steady_clock::now();
    const std::string as(5000, 'a');
    EXPECT_FALSE(globMatch("*a*a*a*a*a*a*a*a*a*a*a*a*b", as));
    EXPECT_TRUE(globMatch("*a*a*a*a*a*a*a*a*a*a*a*a*a", as));
    EXPECT_FALSE(globMatch("{*a,*a*}{*a,a*}{*a,*a}*a*a*a*a*b", as));
    std::string many;
    for (int i = 0; i < 20; ++i) many += "{a,b}";  // 2^20 expansions: refused
    EXPECT_FALSE(globMatch(many, std::string(20, 'a')));
    EXPECT_TRUE(globMatch("{a,b}{a,b}{a,b}{a,b}{a,b}", "abbab"));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(Render, IncludeAndExclude) {
    std::vector<SourceFile> files = {{"app/a.yaml", cm("a")},
                                     {"app/b.yml", cm("b")},
                                     {"app/c.json", R"({"apiVersion":"v1","kind":"ConfigMap",)"
                                                    R"("metadata":{"name":"c"}})"},
                                     {"app/db-secret.yaml", cm("secret")},
                                     {"app/config/d.yaml", cm("d")},
                                     {"app/config/deep/e.yaml", cm("e")}};
    auto run = [&](const std::string& include, const std::string& exclude) {
        Options o{"app", true, include, exclude};
        return names(render(files, o));
    };
    using V = std::vector<std::string>;
    EXPECT_EQ(run("", ""), (V{"a", "b", "c", "d", "e", "secret"}));
    EXPECT_EQ(run("*.yaml", ""), (V{"a", "d", "e", "secret"}));
    EXPECT_EQ(run("{a.yaml,b.yml}", ""), (V{"a", "b"}));
    EXPECT_EQ(run("config/*", ""), (V{"d", "e"}));
    EXPECT_EQ(run("", "*-secret.yaml"), (V{"a", "b", "c", "d", "e"}));
    EXPECT_EQ(run("*.yaml", "{*-secret.yaml,config/deep/*}"), (V{"a", "d"}));
    EXPECT_EQ(run("[ab].y*", ""), (V{"a", "b"}));
    EXPECT_TRUE(run("[broken", "").empty());
    // Matched against the path relative to the source path, and a filter alone does not make
    // a subdirectory's file count without recurse.
    Options flat{"app", false, "config/*", ""};
    EXPECT_TRUE(render(files, flat).empty());
    EXPECT_TRUE(isRelevant("app/config/d.yaml", opts("app", true, "config/*", "")));
    EXPECT_FALSE(isRelevant("app/a.yaml", opts("app", true, "config/*", "")));
    // An excluded marker file is not read, so it is not refused either.
    files.push_back({"app/kustomization.yaml", "resources: []"});
    EXPECT_THROW(render(files, opts("app", false, "", "")), RenderError);
    EXPECT_EQ(run("", "kustomization.yaml").size(), 6u);
}

TEST(RenderRevision, IncludeAndExcludeWithTheFakeSource) {
    git::FakeGitSource fake;
    git::Repository repo{"https://example.invalid/repo.git", {}};
    std::string sha = fake.commit(
        repo.url,
        {{"app/a.yaml", cm("a")}, {"app/a-secret.yaml", cm("s")}, {"app/sub/b.yaml", cm("b")}});
    EXPECT_EQ(names(renderRevision(fake, repo, sha, opts("app", true, "", "*-secret.yaml"))),
              (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(names(renderRevision(fake, repo, sha, opts("app", true, "sub/*", ""))),
              (std::vector<std::string>{"b"}));
}

std::string aliasBomb() {
    return sluice::testing::yamlAliasBomb();
}

TEST(Render, AliasBombIsRefusedNamingTheFile) {
    auto e =
        errorOf({{"app/ok.yaml", cm("ok")}, {"app/bomb.yaml", cm("x") + "---\n" + aliasBomb()}},
                opts("app", false));
    EXPECT_EQ(e.file(), "app/bomb.yaml");
    EXPECT_EQ(e.line(), 5);  // the "---" that opens the bomb's document
    EXPECT_EQ(std::string(e.what()),
              "app/bomb.yaml:5: invalid YAML: YAML alias expansion exceeds 10000 nodes (an alias "
              "bomb?)");
}

// Each document stays within the alias allowance; an Application's manifests together do not,
// whether in one file or several.
TEST(Render, AliasExpansionIsBoundedOverAllDocuments) {
    std::string doc = cm("d") + "spec:\n  a: &a [";
    for (int i = 0; i < 100; ++i) doc += i ? ", x" : "x";
    doc += "]\n  b: [";
    for (int i = 0; i < 60; ++i) doc += i ? ", *a" : "*a";  // 6060 nodes
    doc += "]\n";
    ASSERT_EQ(render({{"one.yaml", doc}}, {}).size(), 1u);

    auto inOneFile = errorOf({{"two.yaml", doc + "---\n" + doc}}, {});
    EXPECT_EQ(inOneFile.file(), "two.yaml");
    EXPECT_EQ(inOneFile.line(), 8);
    EXPECT_NE(std::string(inOneFile.what()).find("alias expansion exceeds"), std::string::npos)
        << inOneFile.what();

    auto inTwoFiles = errorOf({{"a.yaml", doc}, {"b.yaml", doc}}, {});
    EXPECT_EQ(inTwoFiles.file(), "b.yaml");
}

}  // namespace
}  // namespace sluice::render
