// SSH host key verification, tested at the known_hosts and callback level: no SSH server is
// available in the test environment, so the end-to-end SSH transport is not exercised here.
#include <gtest/gtest.h>

#include <git2/sys/credential.h>

#include "callbacks.h"
#include "sluice/git/known_hosts.h"
#include "sluice/util/base64.h"

namespace sluice::git {
namespace {

// Two ed25519 host keys made with ssh-keygen; the hashed lines are `ssh-keygen -H` of
// "git.example.com <key1>" and "[git.example.com]:2222 <key2>".
const std::string kKey1 = "AAAAC3NzaC1lZDI1NTE5AAAAIDzTfEUJUNPjS9CMCLj2v9xmfvKCPVje3EWLbvKeLEg3";
const std::string kKey2 = "AAAAC3NzaC1lZDI1NTE5AAAAIIfTV7FiwiA5q/iL/zyQxV8aEkXctkepbinq4kjddciY";
const std::string kHashed1 = "|1|C2zE2hkrGE1zyYdmt1Pt5M8m/n4=|QM6qOKpjBzz9YXYc8p88qDMC2JA=";
const std::string kHashed2 = "|1|qZKdmCjTD6kuuYY1xFwPr3w6hys=|6E6bKFNoRK6xwfSz7LTgI9e2Bo0=";

std::string blob(const std::string& b64) {
    return base64Decode(b64).value();
}

TEST(KnownHosts, PlainHostsAndPorts) {
    KnownHosts kh("# comment\n\ngit.example.com,10.0.0.1 ssh-ed25519 " + kKey1 +
                  " comment\n[git.example.com]:2222 ssh-ed25519 " + kKey2 + "\n");
    EXPECT_EQ(kh.check("git.example.com", 22, blob(kKey1)), HostKeyVerdict::Match);
    EXPECT_EQ(kh.check("10.0.0.1", 22, blob(kKey1)), HostKeyVerdict::Match);
    EXPECT_EQ(kh.check("git.example.com", 22, blob(kKey2)), HostKeyVerdict::Mismatch);
    EXPECT_EQ(kh.check("git.example.com", 2222, blob(kKey2)), HostKeyVerdict::Match);
    EXPECT_EQ(kh.check("git.example.com", 2222, blob(kKey1)), HostKeyVerdict::Mismatch);
    EXPECT_EQ(kh.check("other.example.com", 22, blob(kKey1)), HostKeyVerdict::Unknown);
}

TEST(KnownHosts, HashedHosts) {
    KnownHosts kh(kHashed1 + " ssh-ed25519 " + kKey1 + "\n" + kHashed2 + " ssh-ed25519 " + kKey2);
    EXPECT_EQ(kh.check("git.example.com", 22, blob(kKey1)), HostKeyVerdict::Match);
    EXPECT_EQ(kh.check("git.example.com", 2222, blob(kKey2)), HostKeyVerdict::Match);
    EXPECT_EQ(kh.check("git.example.org", 22, blob(kKey1)), HostKeyVerdict::Unknown);
}

TEST(KnownHosts, WildcardsNegationRevokedAndJunk) {
    KnownHosts kh("*.example.com,!evil.example.com ssh-ed25519 " + kKey1 +
                  "\n@revoked * ssh-ed25519 " + kKey2 +
                  "\n@cert-authority *.example.com ssh-ed25519 " + kKey2 +
                  "\nbroken-line-without-key\nhost ssh-ed25519 !!notbase64!!\n");
    EXPECT_EQ(kh.check("git.example.com", 22, blob(kKey1)), HostKeyVerdict::Match);
    EXPECT_EQ(kh.check("evil.example.com", 22, blob(kKey1)), HostKeyVerdict::Unknown);
    EXPECT_EQ(kh.check("git.example.com", 22, blob(kKey2)), HostKeyVerdict::Revoked);
    EXPECT_EQ(kh.check("host", 22, blob(kKey1)), HostKeyVerdict::Unknown);
    EXPECT_TRUE(KnownHosts("# only a comment\n").empty());
}

// Drives the certificate callback as libgit2's SSH transport would.
struct HostKeyCheck {
    // The callback records errors with git_error_set_str, which needs an initialised libgit2.
    HostKeyCheck() { git_libgit2_init(); }
    ~HostKeyCheck() { git_libgit2_shutdown(); }
    detail::CallbackState state;
    std::string key;
    int port = 22;
    bool raw = true;

    int operator()(const char* host) {
        git_cert_hostkey cert{};
        cert.parent.cert_type = GIT_CERT_HOSTKEY_LIBSSH2;
        if (raw) {
            cert.type = GIT_CERT_SSH_RAW;
            cert.raw_type = GIT_CERT_SSH_RAW_TYPE_KEY_ED25519;
            cert.hostkey = key.data();
            cert.hostkey_len = key.size();
        }
        state.sshPort = port;
        return detail::certificateCheckCallback(&cert.parent, 0, host, &state);
    }
};

TEST(CertificateCheck, AcceptsOnlyKnownKeys) {
    HostKeyCheck check;
    check.state.creds.sshKnownHosts = "git.example.com ssh-ed25519 " + kKey1 + "\n";
    check.key = blob(kKey1);
    EXPECT_EQ(check("git.example.com"), 0);
    EXPECT_TRUE(check.state.hostKeyError.empty());

    check.key = blob(kKey2);
    EXPECT_EQ(check("git.example.com"), GIT_ECERTIFICATE);
    EXPECT_NE(check.state.hostKeyError.find("does not match"), std::string::npos);

    check.state.hostKeyError.clear();
    check.key = blob(kKey1);
    EXPECT_EQ(check("unknown.example.com"), GIT_ECERTIFICATE);
    EXPECT_NE(check.state.hostKeyError.find("not in known_hosts"), std::string::npos);

    check.port = 2222;  // known on 22 only
    EXPECT_EQ(check("git.example.com"), GIT_ECERTIFICATE);

    check.port = 22;
    check.raw = false;
    EXPECT_EQ(check("git.example.com"), GIT_ECERTIFICATE);
}

TEST(CertificateCheck, InsecureOnlyWithEmptyKnownHosts) {
    HostKeyCheck check;
    check.key = blob(kKey1);
    EXPECT_EQ(check("git.example.com"), GIT_ECERTIFICATE)
        << "empty known_hosts alone is not enough";
    EXPECT_NE(check.state.hostKeyError.find("insecureIgnoreHostKey"), std::string::npos);

    check.state.creds.insecureIgnoreHostKey = true;
    EXPECT_EQ(check("git.example.com"), 0);

    // With known_hosts given, the insecure flag does not bypass the check.
    check.state.creds.sshKnownHosts = "git.example.com ssh-ed25519 " + kKey2 + "\n";
    EXPECT_EQ(check("git.example.com"), GIT_ECERTIFICATE);
}

TEST(CertificateCheck, TlsKeepsLibgit2Verdict) {
    detail::CallbackState state;
    git_cert_x509 cert{};
    cert.parent.cert_type = GIT_CERT_X509;
    EXPECT_EQ(detail::certificateCheckCallback(&cert.parent, 1, "host", &state), 0);
    EXPECT_EQ(detail::certificateCheckCallback(&cert.parent, 0, "host", &state), GIT_PASSTHROUGH);
}

TEST(CredentialCallback, GivesOnceThenReportsRejection) {
    git_libgit2_init();
    detail::CallbackState state;
    state.creds.password = "tok";
    git_credential* cred = nullptr;
    ASSERT_EQ(detail::credentialCallback(&cred, "https://h/r", nullptr,
                                         GIT_CREDENTIAL_USERPASS_PLAINTEXT, &state),
              0);
    ASSERT_NE(cred, nullptr);
    auto* up = reinterpret_cast<git_credential_userpass_plaintext*>(cred);
    EXPECT_STREQ(up->username, "git");
    EXPECT_STREQ(up->password, "tok");
    git_credential_free(cred);

    EXPECT_EQ(detail::credentialCallback(&cred, "https://h/r", nullptr,
                                         GIT_CREDENTIAL_USERPASS_PLAINTEXT, &state),
              GIT_EAUTH);
    EXPECT_TRUE(state.authRejected);
    git_libgit2_shutdown();
}

TEST(CredentialCallback, SshKeyAndUsername) {
    git_libgit2_init();
    detail::CallbackState state;
    state.creds.sshPrivateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\n...\n";
    git_credential* cred = nullptr;
    ASSERT_EQ(
        detail::credentialCallback(&cred, "ssh://h/r", nullptr, GIT_CREDENTIAL_USERNAME, &state),
        0);
    EXPECT_EQ(git_credential_get_username(cred), std::string("git"));
    git_credential_free(cred);
    ASSERT_EQ(
        detail::credentialCallback(&cred, "ssh://h/r", "deploy",
                                   GIT_CREDENTIAL_SSH_MEMORY | GIT_CREDENTIAL_SSH_KEY, &state),
        0);
    EXPECT_EQ(cred->credtype, GIT_CREDENTIAL_SSH_MEMORY);
    EXPECT_EQ(git_credential_get_username(cred), std::string("deploy"));
    git_credential_free(cred);

    detail::CallbackState empty;
    EXPECT_EQ(
        detail::credentialCallback(&cred, "ssh://h/r", nullptr, GIT_CREDENTIAL_SSH_KEY, &empty),
        GIT_EAUTH);
    EXPECT_TRUE(empty.authMissing);
    git_libgit2_shutdown();
}

}  // namespace
}  // namespace sluice::git
