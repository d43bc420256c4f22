#include "callbacks.h"

#include "sluice/git/known_hosts.h"

namespace sluice::git::detail {
namespace {

void setError(const std::string& msg) {
    git_error_set_str(GIT_ERROR_CALLBACK, msg.c_str());
}

}  // namespace

int credentialCallback(git_credential** out, const char* /*url*/, const char* usernameFromUrl,
                       unsigned int allowedTypes, void* payload) {
    auto* st = static_cast<CallbackState*>(payload);
    const Credentials& c = st->creds;
    std::string user = usernameFromUrl && *usernameFromUrl ? usernameFromUrl : c.username;
    if (user.empty()) user = "git";  // token-only HTTPS auth and SSH both accept "git"

    // SSH asks for the user name alone first; that is not an attempt to authenticate.
    if (allowedTypes & GIT_CREDENTIAL_USERNAME)
        return git_credential_username_new(out, user.c_str());

    // libgit2 asks again only when the server refused what we gave: stop instead of looping.
    if (st->credentialCalls++ > 0) {
        st->authRejected = true;
        setError("authentication failed: credentials rejected");
        return GIT_EAUTH;
    }
    if (!c.sshPrivateKey.empty() && (allowedTypes & GIT_CREDENTIAL_SSH_MEMORY)) {
        return git_credential_ssh_key_memory_new(out, user.c_str(), nullptr,
                                                 c.sshPrivateKey.c_str(), nullptr);
    }
    if (!c.password.empty() && (allowedTypes & GIT_CREDENTIAL_USERPASS_PLAINTEXT)) {
        return git_credential_userpass_plaintext_new(out, user.c_str(), c.password.c_str());
    }
    st->authMissing = true;
    setError("authentication required but no usable credentials were given");
    return GIT_EAUTH;
}

int certificateCheckCallback(git_cert* cert, int valid, const char* host, void* payload) {
    auto* st = static_cast<CallbackState*>(payload);
    if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) {
        // TLS: keep libgit2's own verification against the system trust store.
        return valid ? 0 : GIT_PASSTHROUGH;
    }
    const auto* hk = reinterpret_cast<const git_cert_hostkey*>(cert);
    const Credentials& c = st->creds;
    std::string name = host ? host : "";
    auto refuse = [&](const std::string& why) {
        st->hostKeyError = "SSH host key verification failed for " + name + ": " + why;
        setError(st->hostKeyError);
        return GIT_ECERTIFICATE;
    };
    KnownHosts known(c.sshKnownHosts);
    if (known.empty()) {
        if (c.insecureIgnoreHostKey) return 0;
        return refuse("no known_hosts given (set insecureIgnoreHostKey to skip verification)");
    }
    if (!(hk->type & GIT_CERT_SSH_RAW) || hk->hostkey == nullptr) {
        return refuse("the server's raw host key is not available");
    }
    std::string blob(hk->hostkey, hk->hostkey_len);
    switch (known.check(name, st->sshPort, blob)) {
        case HostKeyVerdict::Match:
            return 0;
        case HostKeyVerdict::Mismatch:
            return refuse("host key does not match known_hosts (possible man-in-the-middle)");
        case HostKeyVerdict::Revoked:
            return refuse("host key is marked @revoked in known_hosts");
        case HostKeyVerdict::Unknown:
            break;
    }
    return refuse("host is not in known_hosts");
}

}  // namespace sluice::git::detail
