// Repository Secrets in Argo CD's format, read for git and for Helm (HTTP and OCI) repositories,
// and the redaction of credentials written into a repoURL.
#include <gtest/gtest.h>

#include "git_http_server.h"
#include "sluice/appcontroller/source.h"

namespace sluice::appcontroller {
namespace {

using nlohmann::json;

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
}  // namespace sluice::appcontroller
