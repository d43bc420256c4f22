#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <thread>

#include "git_http_server.h"
#include "sluice/git/git.h"
#include "tempdir/tempdir.h"
#include "test_repo.h"

namespace sluice::git {
namespace {

namespace fs = std::filesystem;
using testing::GitHttpServer;
using testing::TempDir;
using testing::TestRepo;

std::vector<std::string> paths(const std::vector<File>& files) {
    std::vector<std::string> out;
    for (const auto& f : files) out.push_back(f.path);
    return out;
}

// Runs `fn` and returns the GitError it throws (failing the test if it throws nothing).
template <typename Fn>
GitError errorOf(Fn fn) {
    try {
        fn();
    } catch (const GitError& e) {
        return e;
    }
    ADD_FAILURE() << "expected a GitError";
    return GitError(GitError::Kind::Other, "<none>");
}

class GitSourceTest : public ::testing::Test {
  protected:
    TempDir tmp;
    TestRepo upstream{tmp.path() / "upstream"};
    LibGit2Source source{tmp.path() / "cache"};
    Repository repo() const { return Repository{upstream.url(), {}}; }
};

TEST_F(GitSourceTest, ResolvesBranchTagShaShortShaAndHead) {
    upstream.write("app/cm.yaml", "v1");
    std::string first = upstream.commit("first");
    upstream.git("tag v1.0.0");
    upstream.git("tag -a v1.0.1 -m annotated");
    upstream.write("app/cm.yaml", "v2");
    std::string second = upstream.commit("second");
    upstream.git("checkout -q -b feature");
    upstream.write("app/cm.yaml", "v3");
    std::string third = upstream.commit("third");
    upstream.git("checkout -q main");

    EXPECT_EQ(source.resolve(repo(), "main").sha, second);
    EXPECT_EQ(source.resolve(repo(), "main").ref, "refs/heads/main");
    EXPECT_EQ(source.resolve(repo(), "refs/heads/feature").sha, third);
    EXPECT_EQ(source.resolve(repo(), "feature").sha, third);
    EXPECT_EQ(source.resolve(repo(), "v1.0.0").sha, first);
    EXPECT_EQ(source.resolve(repo(), "v1.0.0").ref, "refs/tags/v1.0.0");
    EXPECT_EQ(source.resolve(repo(), "v1.0.1").sha, first) << "annotated tag peels to commit";
    EXPECT_EQ(source.resolve(repo(), "refs/tags/v1.0.1").sha, first);
    EXPECT_EQ(source.resolve(repo(), "HEAD").sha, second);
    EXPECT_EQ(source.resolve(repo(), "").sha, second);
    EXPECT_EQ(source.resolve(repo(), first).sha, first);
    EXPECT_EQ(source.resolve(repo(), first).ref, "");
    EXPECT_EQ(source.resolve(repo(), third.substr(0, 7)).sha, third);
    std::string upper = first;
    std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
    EXPECT_EQ(source.resolve(repo(), upper).sha, first);
}

TEST_F(GitSourceTest, HeadFollowsTheRemoteDefaultBranch) {
    upstream.commit("on main");
    upstream.git("checkout -q -b trunk");
    std::string trunk = upstream.commit("on trunk");
    // The upstream's HEAD now points at trunk: that is its default branch.
    EXPECT_EQ(source.resolve(repo(), "HEAD").sha, trunk);
}

TEST_F(GitSourceTest, EmptyRepositoryHasNoRevisions) {
    auto e = errorOf([&] { source.resolve(repo(), "HEAD"); });
    EXPECT_EQ(e.kind(), GitError::Kind::UnknownRevision) << e.what();
    EXPECT_EQ(errorOf([&] { source.resolve(repo(), "main"); }).kind(),
              GitError::Kind::UnknownRevision);
}

TEST_F(GitSourceTest, DetachedRemoteHeadIsFetched) {
    upstream.commit("on main");
    upstream.git("checkout -q --detach");
    std::string detached = upstream.commit("only reachable from HEAD");
    EXPECT_EQ(source.resolve(repo(), "HEAD").sha, detached);
}

TEST_F(GitSourceTest, ReadingACommitMissingFromTheCacheFetchesIt) {
    upstream.write("a.yaml", "a");
    std::string sha = upstream.commit("one");
    // As after a restart with an empty cache: no resolve() first.
    EXPECT_EQ(paths(source.listFiles(repo(), sha, "", false)),
              (std::vector<std::string>{"a.yaml"}));
    LibGit2Source fresh(tmp.path() / "cache2");
    EXPECT_EQ(fresh.readFile(repo(), sha, "a.yaml"), "a");
    EXPECT_EQ(errorOf([&] { fresh.readFile(repo(), "abc", "a.yaml"); }).kind(),
              GitError::Kind::UnknownRevision);
}

TEST_F(GitSourceTest, ShortShaNeedsSevenDigits) {
    std::string sha = upstream.commit("only");
    auto e = errorOf([&] { source.resolve(repo(), sha.substr(0, 6)); });
    EXPECT_EQ(e.kind(), GitError::Kind::UnknownRevision);
}

TEST_F(GitSourceTest, FetchPicksUpNewCommitsAndDeletedBranches) {
    upstream.write("a.yaml", "1");
    std::string c1 = upstream.commit("one");
    upstream.git("branch doomed");
    EXPECT_EQ(source.resolve(repo(), "main").sha, c1);
    EXPECT_EQ(source.resolve(repo(), "doomed").sha, c1);
    EXPECT_TRUE(fs::exists(source.repoDir(upstream.url()) / "HEAD")) << "bare clone in cache";

    upstream.write("a.yaml", "2");
    std::string c2 = upstream.commit("two");
    upstream.git("branch -D doomed");
    EXPECT_EQ(source.resolve(repo(), "main").sha, c2);
    EXPECT_EQ(source.readFile(repo(), c2, "a.yaml"), "2");
    EXPECT_EQ(source.readFile(repo(), c1, "a.yaml"), "1");
    auto e = errorOf([&] { source.resolve(repo(), "doomed"); });
    EXPECT_EQ(e.kind(), GitError::Kind::UnknownRevision) << "deleted branches are pruned";
}

TEST_F(GitSourceTest, MovedTagIsFollowed) {
    std::string c1 = upstream.commit("one");
    upstream.git("tag stable");
    EXPECT_EQ(source.resolve(repo(), "stable").sha, c1);
    std::string c2 = upstream.commit("two");
    upstream.git("tag -f stable");
    EXPECT_EQ(source.resolve(repo(), "stable").sha, c2);
}

TEST_F(GitSourceTest, UnknownRevisionIsTypedAndNamesIt) {
    upstream.commit("one");
    auto e = errorOf([&] { source.resolve(repo(), "no-such-branch"); });
    EXPECT_EQ(e.kind(), GitError::Kind::UnknownRevision);
    EXPECT_NE(std::string(e.what()).find("no-such-branch"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);

    e = errorOf([&] { source.resolve(repo(), std::string(40, 'a')); });
    EXPECT_EQ(e.kind(), GitError::Kind::UnknownRevision);
    e = errorOf([&] { source.listFiles(repo(), std::string(40, 'b'), "", false); });
    EXPECT_EQ(e.kind(), GitError::Kind::UnknownRevision);
}

TEST_F(GitSourceTest, KnownFullShaResolvesWithoutTheNetwork) {
    std::string sha = upstream.commit("one");
    source.resolve(repo(), "main");
    fs::rename(upstream.dir(), tmp.path() / "gone");
    EXPECT_EQ(source.resolve(repo(), sha).sha, sha);
    EXPECT_EQ(errorOf([&] { source.resolve(repo(), "main"); }).kind(), GitError::Kind::Unreachable);
}

TEST_F(GitSourceTest, CacheSurvivesANewInstanceAndReclonesWhenDamaged) {
    std::string sha = upstream.commit("one");
    source.resolve(repo(), "main");
    fs::path dir = source.repoDir(upstream.url());
    EXPECT_EQ(dir, source.repoDir(upstream.url() + ".git/"));

    LibGit2Source again(tmp.path() / "cache");
    EXPECT_EQ(again.listFiles(repo(), sha, "", true).size(), 0u);

    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream(dir / "HEAD") << "garbage";
    EXPECT_EQ(again.resolve(repo(), "main").sha, sha);
}

TEST_F(GitSourceTest, ListsFilesSortedWithAndWithoutRecursion) {
    upstream.write("env/prod/b.yaml", "b");
    upstream.write("env/prod/a.yaml", "a");
    upstream.write("env/prod/sub/c.yaml", "cc");
    upstream.write("env/prod.yaml", "x");
    upstream.write("env/prod/.hidden/d.yaml", "d");
    upstream.write("other/e.yaml", "e");
    std::string sha = upstream.commit("files");

    EXPECT_EQ(paths(source.listFiles(repo(), sha, "env/prod", false)),
              (std::vector<std::string>{"env/prod/a.yaml", "env/prod/b.yaml"}));
    auto all = source.listFiles(repo(), sha, "./env//prod/", true);
    EXPECT_EQ(paths(all), (std::vector<std::string>{"env/prod/.hidden/d.yaml", "env/prod/a.yaml",
                                                    "env/prod/b.yaml", "env/prod/sub/c.yaml"}));
    EXPECT_EQ(all[3].size, 2u);
    EXPECT_EQ(paths(source.listFiles(repo(), sha, "env", true)).front(), "env/prod/.hidden/d.yaml")
        << "component-wise order puts env/prod/... before env/prod.yaml";
    EXPECT_EQ(source.listFiles(repo(), sha, "", false).size(), 0u);
    EXPECT_EQ(source.listFiles(repo(), sha, "other/../env/prod", false).size(), 2u);

    EXPECT_EQ(errorOf([&] { source.listFiles(repo(), sha, "missing", false); }).kind(),
              GitError::Kind::NotFound);
    EXPECT_EQ(errorOf([&] { source.listFiles(repo(), sha, "other/e.yaml", false); }).kind(),
              GitError::Kind::NotFound);
    EXPECT_EQ(errorOf([&] { source.readFile(repo(), sha, "env"); }).kind(),
              GitError::Kind::NotFound);
}

TEST_F(GitSourceTest, RefusesPathsEscapingTheRepository) {
    upstream.write("app/a.yaml", "a");
    std::string sha = upstream.commit("files");
    for (const char* bad : {"../app", "app/../../etc", "/etc", "/app"}) {
        auto e = errorOf([&] { source.listFiles(repo(), sha, bad, false); });
        EXPECT_EQ(e.kind(), GitError::Kind::InvalidPath) << bad;
        EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
    EXPECT_EQ(errorOf([&] { source.readFile(repo(), sha, "../upstream/app/a.yaml"); }).kind(),
              GitError::Kind::InvalidPath);
    EXPECT_EQ(errorOf([&] { source.readFile(repo(), sha, "/etc/passwd"); }).kind(),
              GitError::Kind::InvalidPath);
}

TEST_F(GitSourceTest, RefusesSymlinksLeavingTheRepository) {
    upstream.write("app/a.yaml", "a");
    upstream.symlink("app/passwd.yaml", "../../../../../../etc/passwd");
    std::string escape = upstream.commit("escape");
    auto e = errorOf([&] { source.listFiles(repo(), escape, "app", false); });
    EXPECT_EQ(e.kind(), GitError::Kind::InvalidPath);
    EXPECT_NE(std::string(e.what()).find("app/passwd.yaml"), std::string::npos) << e.what();
    EXPECT_EQ(errorOf([&] { source.readFile(repo(), escape, "app/passwd.yaml"); }).kind(),
              GitError::Kind::InvalidPath);

    upstream.remove("app/passwd.yaml");
    upstream.symlink("app/abs.yaml", "/etc/passwd");
    std::string absolute = upstream.commit("absolute");
    EXPECT_EQ(errorOf([&] { source.listFiles(repo(), absolute, "app", false); }).kind(),
              GitError::Kind::InvalidPath);

    // Even when not recursing, a link deep in the subtree is refused.
    upstream.remove("app/abs.yaml");
    upstream.symlink("app/deep/x.yaml", "../../../outside");
    std::string deep = upstream.commit("deep");
    EXPECT_EQ(errorOf([&] { source.listFiles(repo(), deep, "app", false); }).kind(),
              GitError::Kind::InvalidPath);
}

TEST_F(GitSourceTest, RefusesSymlinksResolvingOutsideTheSourcePath) {
    upstream.write("base/common.yaml", "common");
    upstream.write("app/a.yaml", "a");
    upstream.symlink("app/common.yaml", "../base/common.yaml");
    std::string sha = upstream.commit("shared");
    auto e = errorOf([&] { source.listFiles(repo(), sha, "app", true); });
    EXPECT_EQ(e.kind(), GitError::Kind::InvalidPath);
    EXPECT_NE(std::string(e.what()).find("outside the source path app"), std::string::npos)
        << e.what();
    // From the repository root, the same link stays inside the path.
    EXPECT_EQ(paths(source.listFiles(repo(), sha, "", true)),
              (std::vector<std::string>{"app/a.yaml", "app/common.yaml", "base/common.yaml"}));
    // A chain that leaves and re-enters through another link is judged by where it ends.
    upstream.symlink("base/back.yaml", "../app/a.yaml");
    upstream.symlink("app/loop.yaml", "../base/back.yaml");
    upstream.remove("app/common.yaml");
    std::string chain = upstream.commit("chain");
    EXPECT_EQ(paths(source.listFiles(repo(), chain, "app", false)),
              (std::vector<std::string>{"app/a.yaml", "app/loop.yaml"}));
}

TEST_F(GitSourceTest, FollowsSymlinksInsideThePath) {
    upstream.write("app/real/a.yaml", "real");
    upstream.symlink("app/link.yaml", "real/a.yaml");
    upstream.symlink("app/dirlink", "real");
    upstream.symlink("app/dangling.yaml", "nowhere.yaml");
    upstream.symlink("app/self", ".");  // a cycle, not descended
    std::string sha = upstream.commit("links");
    EXPECT_EQ(paths(source.listFiles(repo(), sha, "app", true)),
              (std::vector<std::string>{"app/link.yaml", "app/real/a.yaml"}));
    EXPECT_EQ(source.readFile(repo(), sha, "app/link.yaml"), "real");
    EXPECT_EQ(source.readFile(repo(), sha, "app/dirlink/a.yaml"), "real");
    EXPECT_EQ(paths(source.listFiles(repo(), sha, "app/dirlink", false)),
              (std::vector<std::string>{"app/dirlink/a.yaml"}));
    upstream.symlink("app/loop1", "loop2");
    upstream.symlink("app/loop2", "loop1");
    std::string loops = upstream.commit("loops");
    EXPECT_EQ(errorOf([&] { source.readFile(repo(), loops, "app/loop1"); }).kind(),
              GitError::Kind::InvalidPath);
}

TEST_F(GitSourceTest, ReadFilesReadsManyInOnePassAsReadFileDoes) {
    for (int i = 0; i < 50; ++i)
        upstream.write("app/many/cm-" + std::to_string(i) + ".yaml", "n" + std::to_string(i));
    upstream.write("app/real/a.yaml", "real");
    upstream.symlink("app/link.yaml", "real/a.yaml");
    std::string sha = upstream.commit("many");
    std::vector<std::string> wanted = {"app/link.yaml", "app/real/a.yaml", "./app//many/cm-7.yaml"};
    for (int i = 0; i < 50; ++i) wanted.push_back("app/many/cm-" + std::to_string(i) + ".yaml");
    auto contents = source.readFiles(repo(), sha, wanted);
    ASSERT_EQ(contents.size(), wanted.size());
    for (std::size_t i = 0; i < wanted.size(); ++i)
        EXPECT_EQ(contents[i], source.readFile(repo(), sha, wanted[i])) << wanted[i];
    EXPECT_EQ(contents[0], "real");
    EXPECT_EQ(contents[2], "n7");
    EXPECT_TRUE(source.readFiles(repo(), sha, {}).empty());
    // One missing file fails the whole read, naming it.
    auto e = errorOf([&] { source.readFiles(repo(), sha, {"app/real/a.yaml", "app/gone.yaml"}); });
    EXPECT_EQ(e.kind(), GitError::Kind::NotFound);
    EXPECT_NE(std::string(e.what()).find("app/gone.yaml"), std::string::npos) << e.what();
    EXPECT_EQ(
        errorOf([&] { source.readFiles(repo(), sha, {"../upstream/app/real/a.yaml"}); }).kind(),
        GitError::Kind::InvalidPath);
}

TEST_F(GitSourceTest, MissingRepositoryIsUnreachable) {
    Repository missing{"file://" + (tmp.path() / "nope").string(), {}};
    auto e = errorOf([&] { source.resolve(missing, "main"); });
    EXPECT_EQ(e.kind(), GitError::Kind::Unreachable) << e.what();
}

TEST_F(GitSourceTest, ConcurrentCallsOnOneAndOnSeveralRepositories) {
    std::string sha = upstream.commit("one");
    TestRepo other(tmp.path() / "other");
    std::string otherSha = other.commit("other");
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; ++i) {
        threads.emplace_back([&, i] {
            try {
                if (i % 2 == 0) {
                    if (source.resolve(repo(), "main").sha == sha) ++ok;
                } else {
                    if (source.resolve(Repository{other.url(), {}}, "main").sha == otherSha) ++ok;
                }
            } catch (const std::exception&) {
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok.load(), 6);
}

std::size_t openFileDescriptors() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

// Handles stay open between calls (their parsed trees are reused), but only a few of them: each
// open repository keeps its pack files open.
TEST_F(GitSourceTest, OnlyAFewRepositoriesStayOpenAndAClosedOneOpensAgain) {
    upstream.write("app/cm.yaml", "v1");
    std::string sha = upstream.commit("one");
    const std::size_t before = openFileDescriptors();
    constexpr int kCaches = 40;
    for (int i = 0; i < kCaches; ++i) {
        LibGit2Source cache(tmp.path() / ("cache-" + std::to_string(i)));
        ASSERT_EQ(cache.resolve(repo(), "main").sha, sha);
        ASSERT_EQ(cache.readFile(repo(), sha, "app/cm.yaml"), "v1");
    }
    const std::size_t grown = openFileDescriptors() - before;
    EXPECT_LT(grown, 30u) << "open repositories are not bounded";

    LibGit2Source first(tmp.path() / "cache-0");  // its handle was closed long ago
    EXPECT_EQ(paths(first.listFiles(repo(), sha, "app", false)),
              std::vector<std::string>{"app/cm.yaml"});
}

// ---- HTTP through git http-backend -------------------------------------------------------

class HttpGitTest : public ::testing::Test {
  protected:
    TempDir tmp;
    TestRepo upstream{tmp.path() / "root" / "repo"};
    LibGit2Source source{tmp.path() / "cache"};
};

TEST_F(HttpGitTest, AnonymousClone) {
    upstream.write("app/a.yaml", "a");
    std::string sha = upstream.commit("one");
    GitHttpServer server(tmp.path() / "root");
    Repository repo{server.url("repo"), {}};
    EXPECT_EQ(source.resolve(repo, "main").sha, sha);
    EXPECT_EQ(source.readFile(repo, sha, "app/a.yaml"), "a");
    std::string sha2 = upstream.commit("two");
    EXPECT_EQ(source.resolve(repo, "HEAD").sha, sha2);
}

TEST_F(HttpGitTest, TokenIsSentAsPasswordWithUserGit) {
    std::string sha = upstream.commit("one");
    const std::string token = "ghp_s3cretT0kenValue";
    GitHttpServer server(tmp.path() / "root", "git", token);
    Repository repo{server.url("repo"), {}};
    repo.credentials.password = token;
    EXPECT_EQ(source.resolve(repo, "main").sha, sha);
    auto auths = server.authorizations();
    std::string expected = "Basic " + testing::base64Encode("git:" + token);
    EXPECT_NE(std::find(auths.begin(), auths.end(), expected), auths.end());
}

TEST_F(HttpGitTest, UsernameAndPassword) {
    std::string sha = upstream.commit("one");
    GitHttpServer server(tmp.path() / "root", "alice", "pa55word!");
    Repository repo{server.url("repo"), {"alice", "pa55word!", "", "", false}};
    EXPECT_EQ(source.resolve(repo, "main").sha, sha);
}

TEST_F(HttpGitTest, WrongPasswordIsAnAuthErrorThatDoesNotLeakIt) {
    upstream.commit("one");
    GitHttpServer server(tmp.path() / "root", "alice", "right-password");
    Repository repo{server.url("repo"), {"alice", "Wr0ngSecretValue", "", "", false}};
    auto e = errorOf([&] { source.resolve(repo, "main"); });
    EXPECT_EQ(e.kind(), GitError::Kind::Auth) << e.what();
    std::string msg = e.what();
    EXPECT_EQ(msg.find("Wr0ngSecretValue"), std::string::npos) << msg;
    EXPECT_NE(msg.find("authentication failed"), std::string::npos) << msg;
    EXPECT_NE(msg.find(server.url("repo")), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
    EXPECT_LT(server.requests(), 10) << "gave up instead of retrying the same credentials";

    auto none = errorOf([&] { source.resolve(Repository{server.url("repo"), {}}, "main"); });
    EXPECT_EQ(none.kind(), GitError::Kind::Auth) << none.what();
}

TEST_F(HttpGitTest, CredentialsInTheUrlAreUsedButNeverShown) {
    std::string sha = upstream.commit("one");
    GitHttpServer server(tmp.path() / "root", "bob", "UrlSecret123");
    std::string base = server.url("repo");
    std::string withCreds = "http://bob:UrlSecret123@" + base.substr(7);
    EXPECT_EQ(source.resolve(Repository{withCreds, {}}, "main").sha, sha);
    EXPECT_EQ(source.repoDir(withCreds), source.repoDir(base));
    // The cached clone must not keep the secret on disk either.
    std::ifstream config(source.repoDir(base) / "config");
    std::string text((std::istreambuf_iterator<char>(config)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text.find("UrlSecret123"), std::string::npos);

    std::string wrong = "http://bob:BadUrlSecret99@" + base.substr(7);
    auto e = errorOf([&] { source.resolve(Repository{wrong, {}}, "main"); });
    EXPECT_EQ(e.kind(), GitError::Kind::Auth);
    EXPECT_EQ(std::string(e.what()).find("BadUrlSecret99"), std::string::npos) << e.what();
}

TEST_F(HttpGitTest, ClosedPortIsUnreachable) {
    int port;
    {
        GitHttpServer server(tmp.path() / "root");
        port = server.port();
    }  // closed: nothing listens on the port any more
    Repository repo{"http://user:Secret9999@127.0.0.1:" + std::to_string(port) + "/repo", {}};
    auto e = errorOf([&] { source.resolve(repo, "main"); });
    EXPECT_EQ(e.kind(), GitError::Kind::Unreachable) << e.what();
    EXPECT_EQ(std::string(e.what()).find("Secret9999"), std::string::npos) << e.what();
}

TEST_F(HttpGitTest, MissingRepositoryOnTheServerIsUnreachable) {
    upstream.commit("one");
    GitHttpServer server(tmp.path() / "root");
    auto e = errorOf([&] { source.resolve(Repository{server.url("nope"), {}}, "main"); });
    EXPECT_EQ(e.kind(), GitError::Kind::Unreachable) << e.what();
}

TEST(ScrubUrl, RemovesUserinfo) {
    EXPECT_EQ(scrubUrl("fetch https://u:p4ss@host/x.git failed"),
              "fetch https://host/x.git failed");
    EXPECT_EQ(scrubUrl("ssh://git@host:22/x"), "ssh://host:22/x");
    EXPECT_EQ(scrubUrl("https://host/x"), "https://host/x");
    EXPECT_EQ(scrubUrl("https://u:p@ss@host/x and http://t@h"), "https://host/x and http://h");
    EXPECT_EQ(scrubUrl("a@b://x@y"), "a@b://y");
    EXPECT_EQ(scrubUrl("mail a@b, no url"), "mail a@b, no url");
}

TEST(NormalisePath, Cases) {
    EXPECT_EQ(normalisePath(""), "");
    EXPECT_EQ(normalisePath("."), "");
    EXPECT_EQ(normalisePath("./a//b/"), "a/b");
    EXPECT_EQ(normalisePath("a/../b"), "b");
    EXPECT_THROW(normalisePath(".."), GitError);
    EXPECT_THROW(normalisePath("a/../../b"), GitError);
    EXPECT_THROW(normalisePath("/a"), GitError);
}

}  // namespace
}  // namespace sluice::git
