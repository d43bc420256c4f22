// Application controller against the test API server and real git repositories: repository
// credentials from Secrets over HTTP Basic auth, paths escaping the repository, and a git server
// that goes away.
#include <algorithm>
#include <fstream>

#include "app_fixture.h"
#include "git_http_server.h"
#include "testutil/hostile.h"

namespace sluice::apptest {
namespace {

using testing::GitHttpServer;

// "Synced [ComparisonError]": an Application's sync status and condition types, for logs.
std::string statusSummary(const json& app) {
    json st = app.value("status", json::object());
    std::string out = st.value("sync", json::object()).value("status", "-") + " [";
    for (const auto& c : st.value("conditions", json::array())) out += c.value("type", "") + " ";
    return out + "]";
}

class AppSource : public AppIntegration {
  protected:
    // Everything a user can read about the app: its status and every Event in the cluster.
    std::string visibleText(const std::string& app) {
        std::string out = appStatus(app).dump();
        for (const auto& e : server_.list("v1", "Event")) out += e.dump();
        return out;
    }
    bool comparisonError(const std::string& app, const std::string& contains) {
        auto c = condition(appStatus(app), "ComparisonError");
        if (!c) return false;
        std::string msg = c->value("message", "");
        std::transform(msg.begin(), msg.end(), msg.begin(),
                       [](unsigned char ch) { return std::tolower(ch); });
        return msg.find(contains) != std::string::npos;
    }
    std::string syncStatus(const std::string& app) {
        return appStatus(app).value("sync", json::object()).value("status", "");
    }
};

TEST_F(AppSource, CredentialsFromARepositorySecretAreUsed) {
    const std::string password = "Pa55-Sluice-Secret";
    repo_->write("app/config.yaml", configMapYaml("settings", {{"k", "1"}}));
    std::string sha = repo_->commit("one");
    GitHttpServer http(tmp_.path() / "root", "alice", password);
    createRepoSecret("private-repo", http.url("repo"), "alice", password);
    startController();
    createApp(application("private", http.url("repo"), "app"));
    ASSERT_TRUE(waitSynced("private", sha)) << describe("private");
    EXPECT_EQ(configMapValue("settings", "k"), "1");
    auto auths = http.authorizations();
    std::string expected = "Basic " + testing::base64Encode("alice:" + password);
    EXPECT_NE(std::find(auths.begin(), auths.end(), expected), auths.end());
    EXPECT_EQ(visibleText("private").find(password), std::string::npos);
}

// A password written into repoURL works, but never reaches status (comparedTo, syncResult,
// history) or Events.
TEST_F(AppSource, CredentialsInRepoUrlNeverReachTheStatus) {
    const std::string password = "In-Url-Secret-42";
    repo_->write("app/config.yaml", configMapYaml("settings", {{"k", "1"}}));
    std::string sha = repo_->commit("one");
    GitHttpServer http(tmp_.path() / "root", "alice", password);
    std::string url = http.url("repo");
    url.insert(url.find("://") + 3, "alice:" + password + "@");
    startController();
    createApp(application("inurl", url, "app"));
    ASSERT_TRUE(waitSynced("inurl", sha)) << describe("inurl");
    json st = appStatus("inurl");
    EXPECT_EQ(st.dump().find(password), std::string::npos) << st.dump(2);
    EXPECT_EQ(visibleText("inurl").find(password), std::string::npos);
    EXPECT_EQ(st["sync"]["comparedTo"]["source"]["repoURL"], http.url("repo"));
    // The redacted source in the status still counts as the source synced: no sync loop.
    const int syncs = static_cast<int>(st.value("history", json::array()).size());
    ASSERT_TRUE(reconcileAgain("inurl"));
    ASSERT_TRUE(reconcileAgain("inurl"));
    EXPECT_EQ(appStatus("inurl").value("history", json::array()).size(),
              static_cast<size_t>(syncs));
}

// Conditions describe the present: a SyncError from before does not stay next to a
// ComparisonError once the source no longer renders.
TEST_F(AppSource, AnEarlierSyncErrorGoesWhenTheSourceStopsRendering) {
    repo_->write("app/a.yaml", configMapYaml("a", {{"k", "1"}}));
    std::string sha1 = repo_->commit("one");
    startController();
    createApp(application("stale", repo_->url(), "app"));
    ASSERT_TRUE(waitSynced("stale", sha1)) << describe("stale");
    repo_->remove("app/a.yaml");
    repo_->write("app/README.md", "nothing here\n");
    repo_->commit("empty");  // allowEmpty is off: a SyncError
    controller_->refresh(kControlNs, "stale");
    ASSERT_TRUE(eventually([&] { return condition(appStatus("stale"), "SyncError").has_value(); }))
        << describe("stale");
    repo_->write("app/broken.yaml", "a: [unclosed\n");
    repo_->commit("broken");
    controller_->refresh(kControlNs, "stale");
    ASSERT_TRUE(eventually([&] { return comparisonError("stale", "broken.yaml"); }))
        << describe("stale");
    EXPECT_FALSE(condition(appStatus("stale"), "SyncError").has_value()) << describe("stale");
}

// A token alone (sent as the password of user "git"), from a repo-creds Secret whose url is a
// prefix of the repository URL (Argo CD's credential template).
TEST_F(AppSource, TokenFromACredentialTemplateSecretIsUsed) {
    const std::string token = "ghp_IntegrationT0ken";
    repo_->write("app/config.yaml", configMapYaml("settings", {{"k", "1"}}));
    std::string sha = repo_->commit("one");
    GitHttpServer http(tmp_.path() / "root", "git", token);
    const std::string url = http.url("repo");
    createRepoSecret("all-of-the-server", url.substr(0, url.rfind('/') + 1), "", token,
                     "repo-creds");
    startController();
    createApp(application("templated", url, "app"));
    ASSERT_TRUE(waitSynced("templated", sha)) << describe("templated");
    EXPECT_EQ(configMapValue("settings", "k"), "1");
    EXPECT_EQ(visibleText("templated").find(token), std::string::npos);
}

TEST_F(AppSource, WrongPasswordIsAComparisonErrorThatNeverShowsThePassword) {
    const std::string right = "Right-Pa55word-1";
    const std::string wrong = "Wr0ng-Pa55word-2";
    repo_->write("app/config.yaml", configMapYaml("settings", {{"k", "1"}}));
    std::string sha = repo_->commit("one");
    GitHttpServer http(tmp_.path() / "root", "alice", right);
    createRepoSecret("private-repo", http.url("repo"), "alice", wrong);
    startController();
    createApp(application("locked", http.url("repo"), "app"));

    ASSERT_TRUE(eventually([&] { return comparisonError("locked", "authentication"); }))
        << describe("locked");
    // Rejected because the Secret's password is wrong, not because none was sent.
    auto auths = http.authorizations();
    EXPECT_NE(
        std::find(auths.begin(), auths.end(), "Basic " + testing::base64Encode("alice:" + wrong)),
        auths.end())
        << "the repository Secret's credentials were never offered";
    EXPECT_EQ(syncStatus("locked"), "Unknown") << describe("locked");
    EXPECT_TRUE(server_.list("v1", "ConfigMap", kDestNs).empty()) << "nothing may be applied";
    EXPECT_TRUE(eventually([&] { return hasEvent("locked", "ComparisonError"); }))
        << describe("locked");
    std::string text = visibleText("locked");
    EXPECT_EQ(text.find(wrong), std::string::npos) << text;
    EXPECT_EQ(text.find(right), std::string::npos) << text;

    // Fixing the Secret and asking for a refresh recovers.
    user_->patch({"", "v1", "Secret"}, kControlNs, "private-repo", kube::PatchType::Merge,
                 json{{"data", {{"password", testing::base64Encode(right)}}}}.dump());
    ASSERT_TRUE(eventually([&] {
        controller_->refresh(kControlNs, "locked");
        return appStatus("locked").value("sync", json::object()).value("revision", "") == sha;
    })) << describe("locked");
    ASSERT_TRUE(waitSynced("locked", sha)) << describe("locked");
    EXPECT_FALSE(condition(appStatus("locked"), "ComparisonError")) << describe("locked");
}

TEST_F(AppSource, PathOutsideTheRepositoryIsAnInvalidSpec) {
    repo_->write("config.yaml", configMapYaml("root-level", {{"k", "1"}}));
    repo_->commit("one");
    startController();
    createApp(application("dotdot", repo_->url(), "../outside"));
    createApp(application("absolute", repo_->url(), "/etc"));
    for (const char* name : {"dotdot", "absolute"}) {
        ASSERT_TRUE(eventually([&] {
            auto c = condition(appStatus(name), "InvalidSpecError");
            return c && c->value("message", "").find("path") != std::string::npos;
        })) << describe(name);
        EXPECT_NE(syncStatus(name), "Synced") << describe(name);
    }
    EXPECT_TRUE(server_.list("v1", "ConfigMap", kDestNs).empty());
}

// A 573-byte alias bomb (issue: the controller grew to 14 GB and died): refused while parsing,
// as a ComparisonError naming the file, and the controller goes on with other Applications.
TEST_F(AppSource, AYamlAliasBombIsAComparisonErrorNamingTheFile) {
    const std::string bomb = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n" +
                             testing::yamlAliasBomb("  ");
    repo_->write("bomb/bomb.yaml", bomb);
    repo_->write("fine/config.yaml", configMapYaml("fine", {{"k", "1"}}));
    const std::string sha = repo_->commit("a bomb and a fine app");
    startController();
    createApp(application("bombed", repo_->url(), "bomb"));
    createApp(application("fine", repo_->url(), "fine"));
    ASSERT_TRUE(eventually([&] {
        auto c = condition(appStatus("bombed"), "ComparisonError");
        return c && c->value("message", "").find("bomb/bomb.yaml") != std::string::npos &&
               c->value("message", "").find("alias") != std::string::npos;
    })) << describe("bombed");
    EXPECT_TRUE(waitSynced("fine", sha)) << describe("fine");
    EXPECT_FALSE(configMap("bomb"));
}

TEST_F(AppSource, SymlinkLeavingTheRepositoryIsAComparisonError) {
    // A manifest next to the repository, reachable only through the link.
    std::ofstream(tmp_.path() / "root" / "outside.yaml")
        << configMapYaml("leaked", {{"k", "secret"}});
    repo_->write("app/config.yaml", configMapYaml("settings", {{"k", "1"}}));
    repo_->symlink("app/leak.yaml", "../../outside.yaml");
    repo_->commit("escaping link");
    startController();
    createApp(application("linked", repo_->url(), "app"));
    ASSERT_TRUE(eventually([&] {
        return condition(appStatus("linked"), "ComparisonError").has_value();
    })) << describe("linked");
    EXPECT_EQ(syncStatus("linked"), "Unknown") << describe("linked");
    ASSERT_TRUE(reconcileAgain("linked"));
    // Nothing from a revision that does not render completely.
    EXPECT_FALSE(configMap("settings"));
    EXPECT_FALSE(configMap("leaked"));
}

TEST_F(AppSource, UnreachableGitLeavesExistingObjectsUntouched) {
    repo_->write("app/config.yaml", configMapYaml("settings", {{"k", "1"}}));
    std::string sha = repo_->commit("one");
    auto http = std::make_unique<GitHttpServer>(tmp_.path() / "root");
    std::string url = http->url("repo");
    startController();
    createApp(application("remote", url, "app"));
    ASSERT_TRUE(waitSynced("remote", sha)) << describe("remote");
    std::string rv = (*configMap("settings"))["metadata"]["resourceVersion"];

    ChangeLog& apps = watchChanges(kApplication, kControlNs);
    http.reset();  // nothing listens on the port any more
    repo_->write("app/config.yaml", configMapYaml("settings", {{"k", "2"}}));
    repo_->commit("two");
    controller_->refresh(kControlNs, "remote");
    ASSERT_TRUE(eventually([&] {
        return condition(appStatus("remote"), "ComparisonError").has_value();
    })) << describe("remote")
        << apps.dump(statusSummary);
    EXPECT_EQ(syncStatus("remote"), "Unknown") << describe("remote");
    // The error stays while git stays unreachable (a later reconcile must not fall back to the
    // last good revision and report Synced).
    ASSERT_TRUE(reconcileAgain("remote"));
    EXPECT_TRUE(condition(appStatus("remote"), "ComparisonError"))
        << describe("remote") << apps.dump(statusSummary);
    EXPECT_EQ(syncStatus("remote"), "Unknown") << apps.dump(statusSummary);
    EXPECT_TRUE(eventually([&] { return hasEvent("remote", "ComparisonError"); }))
        << describe("remote");
    auto cm = configMap("settings");
    ASSERT_TRUE(cm) << "a git failure must not prune anything";
    EXPECT_EQ((*cm)["metadata"]["resourceVersion"], rv);
    EXPECT_EQ((*cm)["data"]["k"], "1");
    EXPECT_EQ(appStatus("remote")["history"].size(), 1u);
}

}  // namespace
}  // namespace sluice::apptest
