#include "sluice/render/render.h"

#include <gtest/gtest.h>

#include "sluice/git/fake_source.h"
#include "test_repo.h"

namespace sluice::render {
namespace {

using nlohmann::json;

std::string cm(const std::string& name) {
    return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n";
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
    auto objs = render(files, {"app", false});
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
               {"d", false});
    ASSERT_EQ(objs.size(), 1u);
    EXPECT_EQ(objs[0].manifest["kind"], "Secret");
    auto e = errorOf({{"d/bad.json", "{\n  \"a\": 1,\n  oops\n}"}}, {"d", false});
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
    EXPECT_EQ(names(render(files, {"env/prod", false})),
              (std::vector<std::string>{"a", "sub-file", "z"}));
    EXPECT_EQ(names(render(files, {"./env/prod/", true})),
              (std::vector<std::string>{"a", "d", "s", "sub-file", "z"}))
        << "a directory's files come before names sorting after it (walk order)";
    EXPECT_TRUE(render(files, {"", false}).empty());
    EXPECT_TRUE(render({}, {"anything", true}).empty()) << "empty is not an error";
    EXPECT_TRUE(isRelevant("env/prod/a.yml", {"env/prod", false}));
    EXPECT_FALSE(isRelevant("env/prod/sub/s.json", {"env/prod", false}));
    EXPECT_FALSE(isRelevant("env/prod/.hidden.yaml", {"env/prod", true}));
    EXPECT_FALSE(isRelevant("env/prod/README.md", {"env/prod", true}));
    EXPECT_TRUE(isRelevant("env/prod/kustomization.yaml", {"env/prod", false}));
}

TEST(Render, ParseErrorNamesFileAndLineAndFailsEverything) {
    std::vector<SourceFile> files = {
        {"environments/prod/a.yaml", cm("fine")},
        {"environments/prod/app.yaml",
         cm("x") + "---\n" + cm("y") + "data:\n  k: [unclosed\n  j: 1\n"},
    };
    auto e = errorOf(files, {"environments/prod", false});
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
        auto e = errorOf({{"app/x.yaml", cm("ok") + "---\n" + c.doc}}, {"app", false});
        EXPECT_EQ(std::string(e.what()), "app/x.yaml:6: document 2: missing " + c.missing) << c.doc;
    }
    auto scalar = errorOf({{"s.yaml", "just a string\n"}}, {});
    EXPECT_NE(std::string(scalar.what()).find("document 1: expected a Kubernetes object"),
              std::string::npos)
        << scalar.what();
    auto item = errorOf({{"l.yaml", "apiVersion: v1\nkind: List\nitems:\n- kind: X\n"}}, {});
    EXPECT_NE(std::string(item.what()).find("document 1: item 0: missing apiVersion"),
              std::string::npos)
        << item.what();
}

TEST(Render, KustomizeAndHelmAreRefused) {
    for (const char* marker : {"kustomization.yaml", "kustomization.yml", "Kustomization"}) {
        auto e = errorOf({{"app/a.yaml", cm("a")}, {std::string("app/") + marker, "resources: []"}},
                         {"app", false});
        EXPECT_NE(std::string(e.what()).find("Kustomize sources are not supported"),
                  std::string::npos)
            << e.what();
        EXPECT_EQ(e.file(), std::string("app/") + marker);
    }
    auto helm = errorOf({{"chart/Chart.yaml", "name: x\n"}, {"chart/templates/a.yaml", "{{ x }}"}},
                        {"chart", false});
    EXPECT_NE(std::string(helm.what()).find("Helm charts are not supported"), std::string::npos);
    // Found in a subdirectory only when recursing into it.
    std::vector<SourceFile> nested = {{"app/a.yaml", cm("a")}, {"app/sub/kustomization.yaml", ""}};
    EXPECT_EQ(render(nested, {"app", false}).size(), 1u);
    EXPECT_THROW(render(nested, {"app", true}), RenderError);
}

TEST(Render, InvalidPathOption) {
    EXPECT_THROW(render({}, {"../x", false}), RenderError);
    EXPECT_THROW(render({}, {"/abs", false}), RenderError);
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
    EXPECT_EQ(names(renderRevision(source, repo, sha, {"apps/guestbook", false})),
              (std::vector<std::string>{"deploy", "deploy-2", "svc"}));
    auto all = renderRevision(source, repo, sha, {"apps/guestbook", true});
    EXPECT_EQ(names(all), (std::vector<std::string>{"deploy", "deploy-2", "extra", "svc"}));
    EXPECT_EQ(all[2].sourceFile, "apps/guestbook/nested/extra.json");

    upstream.write("apps/guestbook/broken.yaml", "a: [\n");
    std::string broken = upstream.commit("broken");
    source.resolve(repo, "main");
    try {
        renderRevision(source, repo, broken, {"apps/guestbook", false});
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
    EXPECT_EQ(names(renderRevision(fake, repo, sha, {"app", true})),
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

}  // namespace
}  // namespace sluice::render
