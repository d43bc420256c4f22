#pragma once
// How the Application controller turns an Application's source into objects to compare, as
// public functions so other tools (the kubectl plugin's `app diff`) resolve credentials and
// prepare manifests exactly as the controller does.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/app/plan.h"
#include "sluice/git/git.h"
#include "sluice/render/render.h"
#include "sluice/source/service.h"

namespace sluice::appcontroller {

// Labels that mark repository Secrets in the control namespace (Sluice's wins when both are
// set); the controller watches Secrets carrying either.
inline constexpr const char* kSecretTypeLabel = "sluice.io/secret-type";
inline constexpr const char* kArgoSecretTypeLabel = "argocd.argoproj.io/secret-type";

// The repository to fetch for repoURL with credentials taken from `secrets` (Argo CD's rules):
// a "repository" Secret whose normalised url equals repoURL's wins; otherwise the
// "repo-creds" Secret with the longest url that is a prefix of repoURL (at a path boundary).
// Secret data keys: url, username, password, sshPrivateKey, sshKnownHosts,
// insecureIgnoreHostKey. Secrets without the type label or without url are ignored.
git::Repository repositoryFromSecrets(
    const std::string& repoURL, const std::vector<std::shared_ptr<const nlohmann::json>>& secrets);

// Helm repository credentials for repoURL from the same Secrets (Argo CD's keys: username,
// password, tlsClientCertData, tlsClientCertKey, insecure, insecureOCIForceHttp, enableOCI).
source::HelmCredentials helmCredentialsFromSecrets(
    const std::string& repoURL, const std::vector<std::shared_ptr<const nlohmann::json>>& secrets);

// spec.source or spec.sources as Sluice records them in status (comparedTo, syncResult,
// history): every repoURL without its userinfo ("https://user:pass@host" -> "https://host"),
// so a password written into a URL never reaches the status.
nlohmann::json redactedSources(const nlohmann::json& sourceOrSources);

// Rendered manifests readied for compare and apply (app::prepareDesired with "file:line"
// sources), as the controller prepares them for an Application whose destination namespace is
// destinationNamespace and whose instance name is `instance` (app::instanceName()).
app::PreparedObjects prepareRendered(const std::vector<render::Object>& rendered,
                                     const std::string& destinationNamespace,
                                     const std::string& instance, const app::ScopeLookup& scope);

}  // namespace sluice::appcontroller
