#pragma once
// libgit2 transport callbacks (credentials, SSH host key check). Internal to sluice_git; the
// tests include it to drive the host key check without an SSH server.
#include <git2.h>

#include <string>

#include "sluice/git/git.h"

namespace sluice::git::detail {

// Per-operation state handed to libgit2 as the callbacks' payload.
struct CallbackState {
    Credentials creds;  // already merged with userinfo from the URL
    int sshPort = 22;
    int credentialCalls = 0;
    bool authRejected = false;  // asked again after we gave credentials
    bool authMissing = false;   // asked, but nothing to give
    std::string hostKeyError;   // set when the host key check refused the server
};

int credentialCallback(git_credential** out, const char* url, const char* usernameFromUrl,
                       unsigned int allowedTypes, void* payload);

// Accepts only SSH host keys present in creds.sshKnownHosts (for `host` at sshPort); with empty
// known_hosts only when insecureIgnoreHostKey. Non-SSH certificates keep libgit2's verdict.
int certificateCheckCallback(git_cert* cert, int valid, const char* host, void* payload);

}  // namespace sluice::git::detail
