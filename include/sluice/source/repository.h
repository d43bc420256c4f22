#pragma once
// The repositories an Application's sources name: their URLs compared and shown, and the
// credentials repository Secrets (Argo CD's format) hold for them. Used by the controller and
// by `kubectl sluice` alike.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/git/git.h"

namespace sluice::source {

// "https://GitHub.com/org/repo.git", "git@github.com:org/repo", "ssh://git@github.com/org/repo"
// -> "github.com/org/repo" (lower-case host, no scheme, user, port 22/443, or ".git").
std::string normaliseRepoUrl(const std::string& url);

// spec.source or spec.sources as Sluice records them in status (comparedTo, syncResult,
// history): every repoURL without its userinfo ("https://user:pass@host" -> "https://host"),
// so a password written into a URL never reaches the status.
nlohmann::json redactedSources(const nlohmann::json& sourceOrSources);

// Labels that mark repository Secrets in the control namespace (Sluice's wins when both are
// set); the controller watches Secrets carrying either.
inline constexpr const char* kSecretTypeLabel = "sluice.io/secret-type";
inline constexpr const char* kArgoSecretTypeLabel = "argocd.argoproj.io/secret-type";

// Credentials of a Helm (HTTP or OCI) repository, from a repository Secret of type helm.
struct HelmCredentials {
    std::string username;
    std::string password;
    std::string tlsClientCertData;  // PEM
    std::string tlsClientCertKey;   // PEM
    bool insecure = false;          // skip TLS verification
    bool plainHttp = false;         // OCI over HTTP (Argo CD's insecureOCIForceHttp)
    bool passCredentials = false;
    bool enableOCI = false;  // a repository Secret said the URL is an OCI registry
};

// The repository to fetch for repoURL with credentials taken from `secrets` (Argo CD's rules):
// a "repository" Secret whose normalised url equals repoURL's wins; otherwise the
// "repo-creds" Secret with the longest url that is a prefix of repoURL (at a path boundary).
// Secret data keys: url, username, password, sshPrivateKey, sshKnownHosts,
// insecureIgnoreHostKey. Secrets without the type label or without url are ignored.
git::Repository repositoryFromSecrets(
    const std::string& repoURL, const std::vector<std::shared_ptr<const nlohmann::json>>& secrets);

// Helm repository credentials for repoURL from the same Secrets (Argo CD's keys: username,
// password, tlsClientCertData, tlsClientCertKey, insecure, insecureOCIForceHttp, enableOCI).
HelmCredentials helmCredentialsFromSecrets(
    const std::string& repoURL, const std::vector<std::shared_ptr<const nlohmann::json>>& secrets);

}  // namespace sluice::source
