#include "sluice/source/repository.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "sluice/util/base64.h"

namespace sluice::source {

using nlohmann::json;

std::string normaliseRepoUrl(const std::string& url) {
    std::string rest = url;
    while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.back()))) rest.pop_back();
    std::string scheme;
    if (auto pos = rest.find("://"); pos != std::string::npos) {
        scheme = rest.substr(0, pos);
        std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        rest = rest.substr(pos + 3);
    } else if (auto colon = rest.find(':'); colon != std::string::npos && rest.find('/') > colon) {
        // scp form "user@host:path": the colon separates host and path.
        rest = rest.substr(0, colon) + "/" + rest.substr(colon + 1);
        scheme = "ssh";
    }
    if (scheme == "file") {
        // Local paths keep their case; only the trailing ".git" and slashes are noise.
    } else {
        auto slash = rest.find('/');
        std::string authority = rest.substr(0, slash);
        std::string path = slash == std::string::npos ? "" : rest.substr(slash);
        if (auto at = authority.rfind('@'); at != std::string::npos)
            authority = authority.substr(at + 1);
        std::transform(authority.begin(), authority.end(), authority.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        if (auto colon = authority.rfind(':'); colon != std::string::npos) {
            std::string port = authority.substr(colon + 1);
            bool isDefault = port == "22" || port == "443" || (scheme == "http" && port == "80");
            if (isDefault || port.empty()) authority = authority.substr(0, colon);
        }
        rest = authority + path;
    }
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    if (rest.size() > 4 && rest.compare(rest.size() - 4, 4, ".git") == 0)
        rest.resize(rest.size() - 4);
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    return rest;
}

json redactedSources(const json& sourceOrSources) {
    if (sourceOrSources.is_array()) {
        json out = json::array();
        for (const auto& s : sourceOrSources) out.push_back(redactedSources(s));
        return out;
    }
    json out = sourceOrSources;
    if (out.is_object() && out.contains("repoURL") && out["repoURL"].is_string())
        out["repoURL"] = git::scrubUrl(out["repoURL"].get<std::string>());
    return out;
}

namespace {

std::string secretString(const json& secret, const char* key) {
    auto data = secret.find("data");
    if (data == secret.end() || !data->is_object()) return {};
    auto it = data->find(key);
    if (it == data->end() || !it->is_string()) return {};
    // Secret data as the API server writes it: standard base64 with padding (line breaks, which
    // it never writes, are tolerated).
    return base64Decode(it->get<std::string>(), Base64Whitespace::Skip).value_or("");
}

std::string label(const json& obj, const char* key) {
    auto md = obj.find("metadata");
    if (md == obj.end() || !md->is_object()) return {};
    auto labels = md->find("labels");
    if (labels == md->end() || !labels->is_object()) return {};
    auto it = labels->find(key);
    return it != labels->end() && it->is_string() ? it->get<std::string>() : std::string();
}

git::Credentials credentialsOf(const json& secret) {
    git::Credentials c;
    c.username = secretString(secret, "username");
    c.password = secretString(secret, "password");
    c.sshPrivateKey = secretString(secret, "sshPrivateKey");
    c.sshKnownHosts = secretString(secret, "sshKnownHosts");
    c.insecureIgnoreHostKey = secretString(secret, "insecureIgnoreHostKey") == "true";
    return c;
}

bool isPrefixAtBoundary(const std::string& text, const std::string& prefix) {
    if (prefix.empty() || text.compare(0, prefix.size(), prefix) != 0) return false;
    return text.size() == prefix.size() || prefix.back() == '/' || text[prefix.size()] == '/';
}

// The Secret with credentials for repoURL (see repositoryFromSecrets), or null.
std::shared_ptr<const json> secretFor(const std::string& repoURL,
                                      const std::vector<std::shared_ptr<const json>>& secrets) {
    const std::string norm = normaliseRepoUrl(repoURL);
    std::shared_ptr<const json> exact;
    std::shared_ptr<const json> prefix;
    std::size_t prefixLength = 0;
    for (const auto& secret : secrets) {
        if (!secret) continue;
        std::string type = label(*secret, kSecretTypeLabel);
        if (type.empty()) type = label(*secret, kArgoSecretTypeLabel);
        const std::string url = secretString(*secret, "url");
        if (url.empty()) continue;
        if (type == "repository" && normaliseRepoUrl(url) == norm && !exact) {
            exact = secret;
        } else if (type == "repo-creds") {
            const std::string credsNorm = normaliseRepoUrl(url);
            bool matches = isPrefixAtBoundary(repoURL, url) || isPrefixAtBoundary(norm, credsNorm);
            std::size_t length = std::max(url.size(), credsNorm.size());
            if (matches && length > prefixLength) {
                prefix = secret;
                prefixLength = length;
            }
        }
    }
    return exact ? exact : prefix;
}

}  // namespace

git::Repository repositoryFromSecrets(const std::string& repoURL,
                                      const std::vector<std::shared_ptr<const json>>& secrets) {
    git::Repository repo;
    repo.url = repoURL;
    if (auto secret = secretFor(repoURL, secrets)) repo.credentials = credentialsOf(*secret);
    return repo;
}

HelmCredentials helmCredentialsFromSecrets(
    const std::string& repoURL, const std::vector<std::shared_ptr<const json>>& secrets) {
    HelmCredentials c;
    auto secret = secretFor(repoURL, secrets);
    if (!secret) return c;
    c.username = secretString(*secret, "username");
    c.password = secretString(*secret, "password");
    c.tlsClientCertData = secretString(*secret, "tlsClientCertData");
    c.tlsClientCertKey = secretString(*secret, "tlsClientCertKey");
    c.insecure = secretString(*secret, "insecure") == "true";
    c.plainHttp = secretString(*secret, "insecureOCIForceHttp") == "true";
    c.enableOCI = secretString(*secret, "enableOCI") == "true";
    c.passCredentials = secretString(*secret, "passCredentials") == "true";
    return c;
}

}  // namespace sluice::source
