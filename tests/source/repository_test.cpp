// Repositories of Application sources: URL normalisation (the key for credentials, caches and
// webhook refreshes), repository Secrets in Argo CD's format read for git and for Helm (HTTP and
// OCI) repositories, and the redaction of credentials written into a repoURL.
#include <gtest/gtest.h>

#include "git_http_server.h"
#include "sluice/source/repository.h"

namespace sluice::source {
namespace {

using nlohmann::json;

TEST(NormaliseRepoUrl, SpellingsOfOneRepositoryAgree) {
    EXPECT_EQ(normaliseRepoUrl("https://GitHub.com/org/repo.git"), "github.com/org/repo");
    EXPECT_EQ(normaliseRepoUrl("git@github.com:org/repo"), "github.com/org/repo");
    EXPECT_EQ(normaliseRepoUrl("ssh://git@github.com/org/repo"), "github.com/org/repo");
    EXPECT_EQ(normaliseRepoUrl("ssh://git@github.com:22/org/repo.git"), "github.com/org/repo");
    EXPECT_EQ(normaliseRepoUrl("https://user:token@github.com:443/org/repo/"),
              "github.com/org/repo");
}

TEST(NormaliseRepoUrl, KeepsWhatDistinguishesRepositories) {
    EXPECT_EQ(normaliseRepoUrl("http://127.0.0.1:8080/repo.git"), "127.0.0.1:8080/repo");
    EXPECT_NE(normaliseRepoUrl("https://github.com/Org/Repo"),
              normaliseRepoUrl("https://github.com/org/repo"))
        << "paths are case-sensitive";
    EXPECT_EQ(normaliseRepoUrl("file:///tmp/Repos/app.git"), "/tmp/Repos/app");
    EXPECT_NE(normaliseRepoUrl("https://github.com/org/repo"),
              normaliseRepoUrl("https://gitlab.com/org/repo"));
}

std::shared_ptr<const json> secret(const std::string& type,
                                   const std::map<std::string, std::string>& data) {
    json d = json::object();
    for (const auto& [k, v] : data) d[k] = testing::base64Encode(v);
    return std::make_shared<const json>(
        json{{"metadata", {{"labels", {{kArgoSecretTypeLabel, type}}}}}, {"data", d}});
}

TEST(HelmCredentials, FromArgoCdHelmRepositorySecrets) {
    std::vector<std::shared_ptr<const json>> secrets = {
        secret("repository", {{"type", "helm"},
                              {"name", "charts"},
                              {"url", "https://charts.example.com"},
                              {"username", "u"},
                              {"password", "p"},
                              {"tlsClientCertData", "CERT"},
                              {"tlsClientCertKey", "KEY"},
                              {"passCredentials", "true"}}),
        secret("repo-creds", {{"type", "helm"},
                              {"url", "registry.example.com/charts"},
                              {"username", "oci"},
                              {"password", "secret"},
                              {"enableOCI", "true"},
                              {"insecureOCIForceHttp", "true"}})};
    auto http = helmCredentialsFromSecrets("https://charts.example.com", secrets);
    EXPECT_EQ(http.username, "u");
    EXPECT_EQ(http.password, "p");
    EXPECT_EQ(http.tlsClientCertData, "CERT");
    EXPECT_EQ(http.tlsClientCertKey, "KEY");
    EXPECT_TRUE(http.passCredentials);
    EXPECT_FALSE(http.enableOCI);
    auto oci = helmCredentialsFromSecrets("registry.example.com/charts/team", secrets);
    EXPECT_EQ(oci.username, "oci");
    EXPECT_TRUE(oci.enableOCI);
    EXPECT_TRUE(oci.plainHttp);
    auto none = helmCredentialsFromSecrets("https://other.example.com", secrets);
    EXPECT_TRUE(none.username.empty());
}

TEST(RepositoryFromSecrets, ExactRepositoryThenLongestPrefixAtAPathBoundary) {
    std::vector<std::shared_ptr<const json>> secrets = {
        secret("repo-creds", {{"url", "https://git.example.com/org"}, {"username", "org"}}),
        secret("repo-creds", {{"url", "https://git.example.com/org/team"}, {"username", "team"}}),
        secret("repository",
               {{"url", "https://GIT.example.com/org/team/app.git"}, {"username", "app"}}),
        secret("repository", {{"username", "no-url"}})};
    auto exact = repositoryFromSecrets("https://git.example.com/org/team/app", secrets);
    EXPECT_EQ(exact.url, "https://git.example.com/org/team/app");
    EXPECT_EQ(exact.credentials.username, "app");
    EXPECT_EQ(repositoryFromSecrets("https://git.example.com/org/team/other", secrets)
                  .credentials.username,
              "team");
    EXPECT_EQ(
        repositoryFromSecrets("https://git.example.com/org/teams", secrets).credentials.username,
        "org")
        << "a prefix counts at a path boundary only";
    EXPECT_TRUE(repositoryFromSecrets("https://elsewhere.example.com/org", secrets)
                    .credentials.username.empty());
}

TEST(RepositoryFromSecrets, SluiceLabelAndSshKeys) {
    json data = {{"url", testing::base64Encode("git@git.example.com:org/app")},
                 {"sshPrivateKey", testing::base64Encode("KEY")},
                 {"insecureIgnoreHostKey", testing::base64Encode("true")}};
    auto s = std::make_shared<const json>(
        json{{"metadata", {{"labels", {{kSecretTypeLabel, "repository"}}}}}, {"data", data}});
    auto repo = repositoryFromSecrets("ssh://git@git.example.com/org/app.git", {s});
    EXPECT_EQ(repo.credentials.sshPrivateKey, "KEY");
    EXPECT_TRUE(repo.credentials.insecureIgnoreHostKey);
}

TEST(RedactedSources, DropUserinfoFromEveryRepoUrl) {
    json one = {{"repoURL", "https://alice:s3cret@git.example.com/r.git"}, {"path", "app"}};
    EXPECT_EQ(redactedSources(one)["repoURL"], "https://git.example.com/r.git");
    EXPECT_EQ(redactedSources(one)["path"], "app");
    json many = json::array({one, {{"repoURL", "https://charts.example.com"}, {"chart", "x"}}});
    json r = redactedSources(many);
    EXPECT_EQ(r[0]["repoURL"], "https://git.example.com/r.git");
    EXPECT_EQ(r[1]["repoURL"], "https://charts.example.com");
    EXPECT_EQ(redactedSources(json()), json());
}

}  // namespace
}  // namespace sluice::source
