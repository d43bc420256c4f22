// Git push webhooks: signatures, tokens and payloads of each provider.
#include "sluice/gitwebhook/webhook.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace sluice::gitwebhook {
namespace {

using Headers = std::map<std::string, std::string>;

Secrets secrets() {
    Secrets s;
    s.github = "gh-secret";
    s.gitlab = "gl-token";
    s.bitbucket = "bb-secret";
    s.gitea = "gt-secret";
    return s;
}

const std::string kGithubPush = R"({
  "ref": "refs/heads/main",
  "repository": {
    "html_url": "https://github.com/acme/deploy",
    "clone_url": "https://github.com/acme/deploy.git",
    "ssh_url": "git@github.com:acme/deploy.git"
  }
})";

TEST(Hmac, KnownVectors) {
    // RFC 4231, test case 2.
    EXPECT_EQ(hmacSha256Hex("Jefe", "what do ya want for nothing?"),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    // GitHub's documented example for X-Hub-Signature-256.
    EXPECT_EQ(hmacSha256Hex("It's a Secret to Everybody", "Hello, World!"),
              "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
    EXPECT_TRUE(constantTimeEquals("abc", "abc"));
    EXPECT_FALSE(constantTimeEquals("abc", "abd"));
    EXPECT_FALSE(constantTimeEquals("abc", "abcd"));
}

TEST(GitHub, SignedPushIsAccepted) {
    Headers h = {{"x-github-event", "push"},
                 {"content-type", "application/json"},
                 {"x-hub-signature-256", "sha256=" + hmacSha256Hex("gh-secret", kGithubPush)}};
    Result r = handle(h, kGithubPush, secrets());
    ASSERT_EQ(r.status, 200) << r.message;
    ASSERT_TRUE(r.push);
    EXPECT_EQ(r.push->provider, "github");
    EXPECT_EQ(r.push->refs, std::vector<std::string>{"main"});
    EXPECT_EQ(r.push->repoUrls, (std::vector<std::string>{"https://github.com/acme/deploy",
                                                          "https://github.com/acme/deploy.git",
                                                          "git@github.com:acme/deploy.git"}));
}

TEST(GitHub, UpperCaseHexIsTheSameSignature) {
    std::string sig = hmacSha256Hex("gh-secret", kGithubPush);
    for (auto& c : sig) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    Result r = handle({{"content-type", "application/json"},
                       {"x-github-event", "push"},
                       {"x-hub-signature-256", "sha256=" + sig}},
                      kGithubPush, secrets());
    EXPECT_EQ(r.status, 200) << r.message;
}

TEST(GitHub, BadMissingOrUnconfiguredSignatureIs401) {
    Headers wrongKey = {{"x-github-event", "push"},
                        {"x-hub-signature-256", "sha256=" + hmacSha256Hex("other", kGithubPush)}};
    EXPECT_EQ(handle(wrongKey, kGithubPush, secrets()).status, 401);
    // The body was changed after signing.
    Headers tampered = {{"x-github-event", "push"},
                        {"x-hub-signature-256", "sha256=" + hmacSha256Hex("gh-secret", "{}")}};
    EXPECT_EQ(handle(tampered, kGithubPush, secrets()).status, 401);
    // SHA-1 style or bare hex is not the SHA-256 header GitHub sends.
    Headers bare = {{"x-github-event", "push"},
                    {"x-hub-signature-256", hmacSha256Hex("gh-secret", kGithubPush)}};
    EXPECT_EQ(handle(bare, kGithubPush, secrets()).status, 401);
    Result missing = handle({{"content-type", "application/json"}, {"x-github-event", "push"}},
                            kGithubPush, secrets());
    EXPECT_EQ(missing.status, 401);
    EXPECT_NE(missing.message.find("X-Hub-Signature-256"), std::string::npos);
    Headers good = {{"x-github-event", "push"},
                    {"x-hub-signature-256", "sha256=" + hmacSha256Hex("", kGithubPush)}};
    Result unconfigured = handle(good, kGithubPush, Secrets{});
    EXPECT_EQ(unconfigured.status, 401);
    EXPECT_NE(unconfigured.message.find("webhook.github.secret"), std::string::npos);
}

TEST(GitHub, PingIsVerifiedButNotAPush) {
    std::string ping = R"({"zen":"Keep it simple."})";
    Result r = handle({{"content-type", "application/json"},
                       {"x-github-event", "ping"},
                       {"x-hub-signature-256", "sha256=" + hmacSha256Hex("gh-secret", ping)}},
                      ping, secrets());
    EXPECT_EQ(r.status, 200);
    EXPECT_FALSE(r.push);
}

TEST(GitHub, FormEncodedPayload) {
    std::string body =
        "payload=%7B%22ref%22%3A%22refs%2Ftags%2Fv1.2%22%2C%22repository%22%3A%7B"
        "%22clone_url%22%3A%22https%3A%2F%2Fgithub.com%2Facme%2Fdeploy.git%22%7D%7D";
    Result r = handle({{"x-github-event", "push"},
                       {"content-type", "application/x-www-form-urlencoded"},
                       {"x-hub-signature-256", "sha256=" + hmacSha256Hex("gh-secret", body)}},
                      body, secrets());
    ASSERT_TRUE(r.push) << r.message;
    EXPECT_EQ(r.push->refs, std::vector<std::string>{"v1.2"});
    EXPECT_EQ(r.push->repoUrls, std::vector<std::string>{"https://github.com/acme/deploy.git"});
}

TEST(GitHub, BrokenJsonIs400AfterTheSignatureCheck) {
    std::string body = "{not json";
    Result r = handle({{"content-type", "application/json"},
                       {"x-github-event", "push"},
                       {"x-hub-signature-256", "sha256=" + hmacSha256Hex("gh-secret", body)}},
                      body, secrets());
    EXPECT_EQ(r.status, 400);
}

TEST(GitLab, TokenIsCompared) {
    std::string body = R"({"ref":"refs/heads/release","project":{
        "git_http_url":"https://gitlab.com/acme/deploy.git",
        "git_ssh_url":"git@gitlab.com:acme/deploy.git",
        "web_url":"https://gitlab.com/acme/deploy"}})";
    Result ok = handle({{"content-type", "application/json"},
                        {"x-gitlab-event", "Push Hook"},
                        {"x-gitlab-token", "gl-token"}},
                       body, secrets());
    ASSERT_TRUE(ok.push) << ok.message;
    EXPECT_EQ(ok.push->refs, std::vector<std::string>{"release"});
    EXPECT_EQ(ok.push->repoUrls.size(), 3u);
    EXPECT_EQ(handle({{"content-type", "application/json"},
                      {"x-gitlab-event", "Push Hook"},
                      {"x-gitlab-token", "nope"}},
                     body, secrets())
                  .status,
              401);
    EXPECT_EQ(handle({{"content-type", "application/json"}, {"x-gitlab-event", "Push Hook"}}, body,
                     secrets())
                  .status,
              401);
    Result tag = handle({{"content-type", "application/json"},
                         {"x-gitlab-event", "Tag Push Hook"},
                         {"x-gitlab-token", "gl-token"}},
                        R"({"ref":"refs/tags/v2","project":{"web_url":"https://gitlab.com/a/b"}})",
                        secrets());
    ASSERT_TRUE(tag.push);
    EXPECT_EQ(tag.push->refs, std::vector<std::string>{"v2"});
}

TEST(Bitbucket, CloudAndServerPushes) {
    std::string cloud = R"({"repository":{"full_name":"acme/deploy",
        "links":{"html":{"href":"https://bitbucket.org/acme/deploy"}}},
        "push":{"changes":[{"new":{"type":"branch","name":"main"}},{"new":null}]}})";
    Result c = handle({{"content-type", "application/json"},
                       {"x-event-key", "repo:push"},
                       {"x-hub-signature", "sha256=" + hmacSha256Hex("bb-secret", cloud)}},
                      cloud, secrets());
    ASSERT_TRUE(c.push) << c.message;
    EXPECT_EQ(c.push->refs, std::vector<std::string>{"main"});
    EXPECT_EQ(c.push->repoUrls, std::vector<std::string>{"https://bitbucket.org/acme/deploy"});

    std::string server = R"({"repository":{"links":{"clone":[
        {"href":"ssh://git@bitbucket.example.com:7999/acme/deploy.git","name":"ssh"},
        {"href":"https://bitbucket.example.com/scm/acme/deploy.git","name":"http"}]}},
        "changes":[{"ref":{"id":"refs/heads/dev","displayId":"dev","type":"BRANCH"}}]})";
    Result s = handle({{"content-type", "application/json"},
                       {"x-event-key", "repo:refs_changed"},
                       {"x-hub-signature", "sha256=" + hmacSha256Hex("bb-secret", server)}},
                      server, secrets());
    ASSERT_TRUE(s.push) << s.message;
    EXPECT_EQ(s.push->refs, std::vector<std::string>{"dev"});
    EXPECT_EQ(s.push->repoUrls.size(), 2u);
    EXPECT_EQ(handle({{"content-type", "application/json"},
                      {"x-event-key", "repo:push"},
                      {"x-hub-signature", "sha256=00"}},
                     cloud, secrets())
                  .status,
              401);
}

TEST(Gitea, BareHexSignatureAndGiteaHeadersWinOverGitHubOnes) {
    std::string body = R"({"ref":"refs/heads/main","repository":{
        "clone_url":"https://gitea.example.com/acme/deploy.git",
        "ssh_url":"git@gitea.example.com:acme/deploy.git"}})";
    // Gitea also sends X-GitHub-Event; its own headers decide.
    Result r = handle({{"content-type", "application/json"},
                       {"x-gitea-event", "push"},
                       {"x-github-event", "push"},
                       {"x-gitea-signature", hmacSha256Hex("gt-secret", body)}},
                      body, secrets());
    ASSERT_TRUE(r.push) << r.message;
    EXPECT_EQ(r.push->provider, "gitea");
    EXPECT_EQ(r.push->repoUrls.size(), 2u);
    EXPECT_EQ(handle({{"content-type", "application/json"},
                      {"x-gogs-event", "push"},
                      {"x-gogs-signature", "abc"}},
                     body, secrets())
                  .status,
              401);
}

TEST(Handle, ABodyWithoutContentTypeIs400WithAClearMessage) {
    const std::string sig = "sha256=" + hmacSha256Hex("gh-secret", kGithubPush);
    Result r =
        handle({{"x-github-event", "push"}, {"x-hub-signature-256", sig}}, kGithubPush, secrets());
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.message.find("no Content-Type"), std::string::npos) << r.message;
}

TEST(Handle, UnknownSenderIs400) {
    Result r = handle({{"content-type", "application/json"}}, "{}", secrets());
    EXPECT_EQ(r.status, 400);
    EXPECT_FALSE(r.push);
}

TEST(Secrets, ReadFromSecretDataWithArgoCdKeys) {
    auto s = Secrets::fromSecretData({{"webhook.github.secret", "a"},
                                      {"webhook.gitlab.secret", "b"},
                                      {"webhook.bitbucket.secret", "c"},
                                      {"webhook.gogs.secret", "d"}});
    EXPECT_EQ(s.github, "a");
    EXPECT_EQ(s.gitlab, "b");
    EXPECT_EQ(s.bitbucket, "c");
    EXPECT_EQ(s.gitea, "d");
}

}  // namespace
}  // namespace sluice::gitwebhook
