#include "sluice/kube/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sluice/kube/errors.h"
#include "sluice/util/base64.h"
#include "tempdir/tempdir.h"
#include "test_util.h"

namespace sluice::kube {
namespace {

using sluice::testing::TempDir;
using testutil::ScopedEnv;

const std::string kCa = "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n";
const std::string kCert = "-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n";
const std::string kKey = "-----BEGIN PRIVATE KEY-----\nS0VZ\n-----END PRIVATE KEY-----\n";

// Expects a ConfigError whose one-line message contains every fragment.
template <typename Fn>
std::string expectConfigError(Fn fn, std::initializer_list<std::string> fragments) {
    try {
        fn();
    } catch (const ConfigError& e) {
        std::string msg = e.what();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        for (const auto& f : fragments)
            EXPECT_NE(msg.find(f), std::string::npos) << msg << "\n  missing: " << f;
        return msg;
    }
    ADD_FAILURE() << "no ConfigError thrown";
    return {};
}

std::string tokenConfig(const std::string& server = "https://10.0.0.1:6443") {
    return "apiVersion: v1\nkind: Config\ncurrent-context: main\n"
           "clusters:\n- name: c1\n  cluster:\n    server: " +
           server + "\n    certificate-authority-data: " + base64Encode(kCa) +
           "\ncontexts:\n- name: main\n  context:\n    cluster: c1\n    user: u1\n"
           "    namespace: team-a\n- name: other\n  context:\n    cluster: c1\n    user: u2\n"
           "users:\n- name: u1\n  user:\n    token: abc123\n"
           "- name: u2\n  user:\n    username: admin\n    password: s3cret\n";
}

TEST(KubeconfigTest, TokenAndCaDataFromCurrentContext) {
    TempDir dir;
    auto path = dir.write("config", tokenConfig());
    auto cfg = loadKubeconfig(path);
    EXPECT_EQ(cfg.server, "https://10.0.0.1:6443");
    EXPECT_EQ(cfg.caPem, kCa);
    EXPECT_EQ(cfg.token, "abc123");
    EXPECT_TRUE(cfg.tokenFile.empty());
    EXPECT_EQ(cfg.defaultNamespace, "team-a");
    EXPECT_FALSE(cfg.insecureSkipTlsVerify);
    EXPECT_NE(cfg.source.find(path), std::string::npos);
    EXPECT_NE(cfg.source.find("main"), std::string::npos);
}

TEST(KubeconfigTest, ImpersonationAsAndAsGroups) {
    TempDir dir;
    std::string text = tokenConfig();
    text += "    as: system:serviceaccount:demo:deployer\n    as-groups: [ops]\n";
    auto cfg = loadKubeconfig(dir.write("config", text), "other");
    EXPECT_EQ(cfg.impersonateUser, "system:serviceaccount:demo:deployer");
    EXPECT_EQ(cfg.impersonateGroups, std::vector<std::string>{"ops"});
    EXPECT_TRUE(loadKubeconfig(dir.write("plain", tokenConfig())).impersonateUser.empty());
    expectConfigError(
        [&] { loadKubeconfig(dir.write("bad", tokenConfig() + "    as-groups: ops\n"), "other"); },
        {"users[1].user.as-groups", "not a list"});
}

TEST(KubeconfigTest, ExplicitContextAndBasicAuth) {
    TempDir dir;
    auto cfg = loadKubeconfig(dir.write("config", tokenConfig()), "other");
    EXPECT_EQ(cfg.username, "admin");
    EXPECT_EQ(cfg.password, "s3cret");
    EXPECT_TRUE(cfg.token.empty());
    EXPECT_EQ(cfg.defaultNamespace, "default");
}

TEST(KubeconfigTest, FilesRelativeToKubeconfigDirectory) {
    TempDir dir;
    dir.write("kube/pki/ca.crt", kCa);
    dir.write("kube/pki/client.crt", kCert);
    dir.write("kube/pki/client.key", kKey);
    dir.write("kube/token", "  file-token\n");
    auto path =
        dir.write("kube/config",
                  "current-context: x\n"
                  "clusters:\n- name: c\n  cluster:\n    server: https://h:1\n"
                  "    certificate-authority: pki/ca.crt\n    tls-server-name: api.internal\n"
                  "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                  "users:\n- name: u\n  user:\n    client-certificate: pki/client.crt\n"
                  "    client-key: " +
                      (dir.path() / "kube/pki/client.key").string() + "\n    tokenFile: token\n");
    auto cfg = loadKubeconfig(path);
    EXPECT_EQ(cfg.caPem, kCa);
    EXPECT_EQ(cfg.clientCertPem, kCert);
    EXPECT_EQ(cfg.clientKeyPem, kKey);
    EXPECT_EQ(cfg.tlsServerName, "api.internal");
    EXPECT_EQ(cfg.tokenFile, (dir.path() / "kube/token").string());
    EXPECT_EQ(TokenSource(cfg).token(), "file-token");
}

TEST(KubeconfigTest, ClientCertDataAndInsecure) {
    TempDir dir;
    auto path =
        dir.write("config",
                  "current-context: x\n"
                  "clusters:\n- name: c\n  cluster:\n    server: https://h:1/\n"
                  "    insecure-skip-tls-verify: true\n"
                  "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                  "users:\n- name: u\n  user:\n    client-certificate-data: " +
                      base64Encode(kCert) + "\n    client-key-data: " + base64Encode(kKey) + "\n");
    auto cfg = loadKubeconfig(path);
    EXPECT_EQ(cfg.server, "https://h:1");  // trailing slash dropped
    EXPECT_TRUE(cfg.insecureSkipTlsVerify);
    EXPECT_TRUE(cfg.caPem.empty());
    EXPECT_EQ(cfg.clientCertPem, kCert);
    EXPECT_EQ(cfg.clientKeyPem, kKey);
}

TEST(KubeconfigTest, ContextWithoutUserIsAnonymous) {
    TempDir dir;
    auto cfg = loadKubeconfig(dir.write(
        "config",
        "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:8080'}\n"
        "contexts:\n- name: x\n  context: {cluster: c}\n"));
    EXPECT_EQ(cfg.server, "http://127.0.0.1:8080");
    EXPECT_TRUE(cfg.token.empty());
    EXPECT_TRUE(cfg.clientCertPem.empty());
}

TEST(KubeconfigTest, KubeconfigListMergesFirstWins) {
    TempDir dir;
    // File a: current-context and user u (token from a); its context points at a cluster in b.
    dir.write("a/ca.crt", "not used");
    auto a = dir.write("a/config",
                       "current-context: ctx\n"
                       "contexts:\n- name: ctx\n  context: {cluster: shared, user: u}\n"
                       "users:\n- name: u\n  user: {token: from-a}\n");
    dir.write("b/ca.crt", kCa);
    auto b = dir.write("b/config",
                       "current-context: ignored\n"
                       "clusters:\n- name: shared\n  cluster:\n    server: https://b:443\n"
                       "    certificate-authority: ca.crt\n"
                       "contexts:\n- name: ctx\n  context: {cluster: nowhere, user: u}\n"
                       "users:\n- name: u\n  user: {token: from-b}\n");
    ScopedEnv env("KUBECONFIG", a + ":" + (dir.path() / "missing").string() + ":" + b);
    auto cfg = loadKubeconfig();
    EXPECT_EQ(cfg.token, "from-a");
    EXPECT_EQ(cfg.server, "https://b:443");
    EXPECT_EQ(cfg.caPem, kCa);  // relative to b's directory, where the cluster is defined
}

TEST(KubeconfigTest, KubeconfigListWithNoExistingFile) {
    TempDir dir;
    ScopedEnv env("KUBECONFIG", (dir.path() / "nope").string());
    expectConfigError([] { loadKubeconfig(); }, {"KUBECONFIG", "nope"});
}

TEST(KubeconfigTest, HomeKubeConfig) {
    TempDir dir;
    dir.write(".kube/config", tokenConfig("https://home:6443"));
    ScopedEnv kc("KUBECONFIG", std::nullopt);
    ScopedEnv home("HOME", dir.path().string());
    EXPECT_EQ(loadKubeconfig().server, "https://home:6443");
    EXPECT_EQ(loadDefaultConfig().server, "https://home:6443");
}

TEST(KubeconfigTest, MissingFile) {
    TempDir dir;
    auto path = (dir.path() / "absent").string();
    expectConfigError([&] { loadKubeconfig(path); }, {"kubeconfig " + path, "No such file"});
}

TEST(KubeconfigTest, InvalidYaml) {
    TempDir dir;
    auto path = dir.write("config", "clusters: [\n  - {name: x\n");
    expectConfigError([&] { loadKubeconfig(path); }, {"kubeconfig " + path, "line"});
}

TEST(KubeconfigTest, MissingContextClusterUser) {
    TempDir dir;
    auto path = dir.write("config",
                          "clusters:\n- name: c\n  cluster: {server: 'https://h:1'}\n"
                          "contexts:\n- name: no-cluster\n  context: {cluster: gone, user: u}\n"
                          "- name: no-user\n  context: {cluster: c, user: ghost}\n"
                          "users:\n- name: u\n  user: {token: t}\n");
    expectConfigError([&] { loadKubeconfig(path); }, {path, "current-context"});
    expectConfigError([&] { loadKubeconfig(path, "nope"); }, {path, "no context named \"nope\""});
    expectConfigError([&] { loadKubeconfig(path, "no-cluster"); },
                      {path, "contexts[0].context.cluster", "gone"});
    expectConfigError([&] { loadKubeconfig(path, "no-user"); },
                      {path, "contexts[1].context.user", "ghost"});
}

TEST(KubeconfigTest, BadBase64NamesFileAndField) {
    TempDir dir;
    auto path =
        dir.write("config",
                  "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://h:1'}\n"
                  "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                  "users:\n- name: u\n  user:\n    client-certificate-data: '%%%not-base64'\n"
                  "    client-key-data: " +
                      base64Encode(kKey) + "\n");
    auto msg = expectConfigError([&] { loadKubeconfig(path); }, {});
    EXPECT_EQ(msg,
              "kubeconfig " + path + ": users[0].user.client-certificate-data: invalid base64");
}

TEST(KubeconfigTest, CaDataThatIsNotPem) {
    TempDir dir;
    auto path =
        dir.write("config",
                  "current-context: x\nclusters:\n- name: c\n  cluster:\n    server: https://h:1\n"
                  "    certificate-authority-data: " +
                      base64Encode("hello") + "\ncontexts:\n- name: x\n  context: {cluster: c}\n");
    expectConfigError([&] { loadKubeconfig(path); },
                      {path, "clusters[0].cluster.certificate-authority-data", "not PEM"});
}

TEST(KubeconfigTest, UnreadableCertificateFile) {
    TempDir dir;
    auto path =
        dir.write("config",
                  "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://h:1'}\n"
                  "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                  "users:\n- name: u\n  user:\n    client-certificate: certs/missing.crt\n"
                  "    client-key: certs/missing.key\n");
    expectConfigError([&] { loadKubeconfig(path); },
                      {"kubeconfig " + path, "users[0].user.client-certificate",
                       (dir.path() / "certs/missing.crt").string()});
}

TEST(KubeconfigTest, CertificateWithoutKey) {
    TempDir dir;
    auto path =
        dir.write("config",
                  "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://h:1'}\n"
                  "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                  "users:\n- name: u\n  user:\n    client-certificate-data: " +
                      base64Encode(kCert) + "\n");
    expectConfigError([&] { loadKubeconfig(path); }, {path, "users[0].user.client-key", "missing"});
}

// exec plugins are supported (KubeconfigExecTest), but like kubectl need an apiVersion.
TEST(KubeconfigTest, AuthProviderUnsupportedExecNeedsApiVersion) {
    TempDir dir;
    std::string common =
        "clusters:\n- name: c\n  cluster: {server: 'https://h:1'}\n"
        "contexts:\n- name: e\n  context: {cluster: c, user: e}\n"
        "- name: a\n  context: {cluster: c, user: a}\n";
    auto path =
        dir.write("config", common +
                                "users:\n- name: e\n  user:\n    exec:\n      command: aws\n"
                                "- name: a\n  user:\n    auth-provider: {name: gcp}\n");
    expectConfigError([&] { loadKubeconfig(path, "e"); },
                      {path, "users[0].user.exec.apiVersion", "missing"});
    expectConfigError([&] { loadKubeconfig(path, "a"); },
                      {path, "users[1].user.auth-provider", "not supported"});
}

TEST(KubeconfigTest, MissingServerAndBadTypes) {
    TempDir dir;
    auto path = dir.write(
        "config",
        "clusters:\n- name: c\n  cluster: {}\n- name: d\n  cluster: {server: 'https://h:1', "
        "insecure-skip-tls-verify: 'maybe'}\n"
        "contexts:\n- name: x\n  context: {cluster: c}\n- name: why\n  context: {cluster: d}\n");
    expectConfigError([&] { loadKubeconfig(path, "x"); },
                      {path, "clusters[0].cluster.server", "missing"});
    expectConfigError([&] { loadKubeconfig(path, "why"); },
                      {path, "clusters[1].cluster.insecure-skip-tls-verify", "not a boolean"});
}

TEST(KubeconfigTest, UnreadableTokenFile) {
    TempDir dir;
    auto path =
        dir.write("config",
                  "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://h:1'}\n"
                  "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                  "users:\n- name: u\n  user: {tokenFile: gone}\n");
    expectConfigError([&] { loadKubeconfig(path); }, {path, "users[0].user.tokenFile"});
}

class InClusterTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_.write("sa/token", "sa-token-1\n");
        dir_.write("sa/ca.crt", kCa);
        dir_.write("sa/namespace", "sluice-system");
    }
    std::filesystem::path sa() const { return dir_.path() / "sa"; }
    TempDir dir_;
};

TEST_F(InClusterTest, ReadsServiceAccount) {
    ScopedEnv h("KUBERNETES_SERVICE_HOST", "10.96.0.1");
    ScopedEnv p("KUBERNETES_SERVICE_PORT", "443");
    auto cfg = loadInCluster(sa());
    EXPECT_EQ(cfg.server, "https://10.96.0.1:443");
    EXPECT_EQ(cfg.caPem, kCa);
    EXPECT_TRUE(cfg.token.empty());  // a file, so rotation is followed
    EXPECT_EQ(cfg.tokenFile, (sa() / "token").string());
    EXPECT_EQ(cfg.defaultNamespace, "sluice-system");
    EXPECT_EQ(TokenSource(cfg).token(), "sa-token-1");
}

TEST_F(InClusterTest, Ipv6HostIsBracketed) {
    ScopedEnv h("KUBERNETES_SERVICE_HOST", "fd00::1");
    ScopedEnv p("KUBERNETES_SERVICE_PORT", "6443");
    EXPECT_EQ(loadInCluster(sa()).server, "https://[fd00::1]:6443");
}

TEST_F(InClusterTest, Errors) {
    {
        ScopedEnv h("KUBERNETES_SERVICE_HOST", std::nullopt);
        ScopedEnv p("KUBERNETES_SERVICE_PORT", "443");
        expectConfigError([&] { loadInCluster(sa()); }, {"KUBERNETES_SERVICE_HOST"});
    }
    ScopedEnv h("KUBERNETES_SERVICE_HOST", "10.96.0.1");
    ScopedEnv p("KUBERNETES_SERVICE_PORT", "443");
    std::filesystem::remove(sa() / "ca.crt");
    expectConfigError([&] { loadInCluster(sa()); }, {(sa() / "ca.crt").string()});
    std::filesystem::remove(sa() / "token");
    expectConfigError([&] { loadInCluster(sa()); }, {(sa() / "token").string()});
}

TEST_F(InClusterTest, DefaultConfigFallsBackToInClusterThenFails) {
    TempDir home;
    ScopedEnv kc("KUBECONFIG", std::nullopt);
    ScopedEnv hm("HOME", home.path().string());
    ScopedEnv h("KUBERNETES_SERVICE_HOST", std::nullopt);
    // The default service-account directory does not exist here, and the env is unset.
    expectConfigError([] { loadDefaultConfig(); },
                      {"no kubeconfig found", "KUBERNETES_SERVICE_HOST"});
    auto path = dir_.write("explicit", tokenConfig("https://explicit:1"));
    EXPECT_EQ(loadDefaultConfig(path).server, "https://explicit:1");
}

TEST(TokenSourceTest, FixedTokenWins) {
    ClusterConfig cfg;
    cfg.token = "fixed";
    cfg.tokenFile = "/nonexistent";
    EXPECT_EQ(TokenSource(cfg).token(), "fixed");
    EXPECT_EQ(TokenSource(ClusterConfig{}).token(), "");
}

TEST(TokenSourceTest, FollowsRotation) {
    TempDir dir;
    auto path = dir.write("token", "one\n");
    ClusterConfig cfg;
    cfg.tokenFile = path;
    TokenSource ts(cfg);
    EXPECT_EQ(ts.token(), "one");
    // Same mtime: the file is not re-read (content changes alone are not looked at).
    auto t0 = std::filesystem::last_write_time(path);
    dir.write("token", "two\n");
    std::filesystem::last_write_time(path, t0);
    EXPECT_EQ(ts.token(), "one");
    // New mtime, as when the kubelet swaps the token in.
    std::filesystem::last_write_time(path, t0 + std::chrono::seconds(5));
    EXPECT_EQ(ts.token(), "two");
    // The file vanishing for a moment keeps the last good token.
    std::filesystem::remove(path);
    EXPECT_EQ(ts.token(), "two");
    dir.write("token", "three");
    std::filesystem::last_write_time(path, t0 + std::chrono::seconds(10));
    EXPECT_EQ(ts.token(), "three");
}

// ---- exec credential plugins ------------------------------------------------------------

std::string execConfig(const std::string& execYaml) {
    return "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://h:1'}\n"
           "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
           "users:\n- name: u\n  user:\n    exec:\n" +
           execYaml;
}

TEST(KubeconfigExecTest, AllFieldsParsed) {
    TempDir dir;
    auto path =
        dir.write("kube/config", execConfig("      apiVersion: client.authentication.k8s.io/v1\n"
                                            "      command: aws\n"
                                            "      args: [eks, get-token, --cluster-name, prod]\n"
                                            "      env:\n      - {name: AWS_PROFILE, value: prod}\n"
                                            "      - {name: EMPTY}\n"
                                            "      installHint: install the aws CLI\n"
                                            "      provideClusterInfo: true\n"
                                            "      interactiveMode: Never\n"));
    auto cfg = loadKubeconfig(path);
    EXPECT_TRUE(cfg.token.empty());
    ASSERT_TRUE(cfg.exec.enabled());
    EXPECT_EQ(cfg.exec.command, "aws");  // a bare name: looked up in $PATH when run
    EXPECT_EQ(cfg.exec.args,
              (std::vector<std::string>{"eks", "get-token", "--cluster-name", "prod"}));
    ASSERT_EQ(cfg.exec.env.size(), 2u);
    EXPECT_EQ(cfg.exec.env[0].name, "AWS_PROFILE");
    EXPECT_EQ(cfg.exec.env[0].value, "prod");
    EXPECT_EQ(cfg.exec.env[1].name, "EMPTY");
    EXPECT_EQ(cfg.exec.env[1].value, "");
    EXPECT_EQ(cfg.exec.apiVersion, "client.authentication.k8s.io/v1");
    EXPECT_EQ(cfg.exec.installHint, "install the aws CLI");
    EXPECT_TRUE(cfg.exec.provideClusterInfo);
    EXPECT_EQ(cfg.exec.interactiveMode, "Never");
    EXPECT_EQ(cfg.exec.timeout, std::chrono::seconds(30));
}

TEST(KubeconfigExecTest, RelativeCommandWithSlashIsRelativeToKubeconfig) {
    TempDir dir;
    auto path = dir.write("kube/config",
                          execConfig("      apiVersion: client.authentication.k8s.io/v1beta1\n"
                                     "      command: ./bin/plugin\n"));
    EXPECT_EQ(loadKubeconfig(path).exec.command, (dir.path() / "kube/bin/plugin").string());
    path = dir.write("kube/config",
                     execConfig("      apiVersion: client.authentication.k8s.io/v1beta1\n"
                                "      command: ../tools/plugin\n"));
    EXPECT_EQ(loadKubeconfig(path).exec.command, (dir.path() / "tools/plugin").string());
    path = dir.write("kube/config",
                     execConfig("      apiVersion: client.authentication.k8s.io/v1beta1\n"
                                "      command: /usr/local/bin/plugin\n"));
    EXPECT_EQ(loadKubeconfig(path).exec.command, "/usr/local/bin/plugin");
}

TEST(KubeconfigExecTest, Errors) {
    TempDir dir;
    const std::string v1 = "      apiVersion: client.authentication.k8s.io/v1\n";
    struct Case {
        std::string yaml;
        std::string field;
        std::string what;
    };
    std::vector<Case> cases = {
        {v1, "users[0].user.exec.command", "missing"},
        {"      command: p\n", "users[0].user.exec.apiVersion", "missing"},
        {"      command: p\n      apiVersion: client.authentication.k8s.io/v1alpha1\n",
         "users[0].user.exec.apiVersion", "v1alpha1"},
        {v1 + "      command: p\n      args: oops\n", "users[0].user.exec.args", "not a list"},
        {v1 + "      command: p\n      args: [a, {b: c}]\n", "users[0].user.exec.args[1]",
         "not a string"},
        {v1 + "      command: p\n      env: {A: b}\n", "users[0].user.exec.env", "not a list"},
        {v1 + "      command: p\n      env: [{value: b}]\n", "users[0].user.exec.env[0].name",
         "missing"},
        {v1 + "      command: p\n      env: [{name: A, value: [1]}]\n",
         "users[0].user.exec.env[0].value", "not a string"},
        {v1 + "      command: p\n      interactiveMode: Sometimes\n",
         "users[0].user.exec.interactiveMode", "Sometimes"},
        {v1 + "      command: p\n      provideClusterInfo: yes please\n",
         "users[0].user.exec.provideClusterInfo", "not a boolean"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.yaml);
        auto path = dir.write("config", execConfig(c.yaml));
        expectConfigError([&] { loadKubeconfig(path); }, {path, c.field, c.what});
    }
}

TEST(ArgoExecProviderTest, Converted) {
    auto j = nlohmann::json::parse(R"({
        "command": "argocd-k8s-auth",
        "args": ["aws", "--cluster-name", "prod"],
        "env": {"AWS_REGION": "eu-west-1", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r"},
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "installHint": "see the docs",
        "somethingNew": 1})");
    auto e = execConfigFromArgo(j);
    EXPECT_EQ(e.command, "argocd-k8s-auth");
    EXPECT_EQ(e.args, (std::vector<std::string>{"aws", "--cluster-name", "prod"}));
    ASSERT_EQ(e.env.size(), 2u);
    EXPECT_EQ(e.env[0].name, "AWS_REGION");
    EXPECT_EQ(e.env[0].value, "eu-west-1");
    EXPECT_EQ(e.env[1].name, "AWS_ROLE_ARN");
    EXPECT_EQ(e.apiVersion, "client.authentication.k8s.io/v1beta1");
    EXPECT_EQ(e.installHint, "see the docs");
    EXPECT_FALSE(e.provideClusterInfo);

    // Only the command is required; apiVersion "" means v1beta1; v1 is accepted too.
    auto minimal = execConfigFromArgo({{"command", "/bin/plugin"}, {"env", nullptr}});
    EXPECT_EQ(minimal.command, "/bin/plugin");
    EXPECT_TRUE(minimal.args.empty());
    EXPECT_TRUE(minimal.env.empty());
    EXPECT_EQ(minimal.apiVersion, "");
    EXPECT_EQ(
        execConfigFromArgo({{"command", "p"}, {"apiVersion", "client.authentication.k8s.io/v1"}})
            .apiVersion,
        "client.authentication.k8s.io/v1");
}

TEST(ArgoExecProviderTest, WrongTypes) {
    using nlohmann::json;
    struct Case {
        json j;
        std::string fragment;
    };
    std::vector<Case> cases = {
        {json::array(), "execProviderConfig: not an object"},
        {json::object(), "execProviderConfig.command: missing"},
        {{{"command", 1}}, "execProviderConfig.command: not a string"},
        {{{"command", "p"}, {"args", "a b"}}, "execProviderConfig.args: not a list"},
        {{{"command", "p"}, {"args", json::array({"a", 2})}},
         "execProviderConfig.args[1]: not a string"},
        {{{"command", "p"}, {"env", json::array({{{"name", "A"}, {"value", "b"}}})}},
         "execProviderConfig.env: not a map"},
        {{{"command", "p"}, {"env", {{"A", 1}}}}, "execProviderConfig.env.A: not a string"},
        {{{"command", "p"}, {"apiVersion", "v1"}}, "execProviderConfig.apiVersion"},
        {{{"command", "p"}, {"installHint", false}}, "execProviderConfig.installHint"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.j.dump());
        expectConfigError([&] { execConfigFromArgo(c.j); }, {c.fragment});
    }
}

}  // namespace
}  // namespace sluice::kube
