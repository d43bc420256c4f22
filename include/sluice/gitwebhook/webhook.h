#pragma once
// Git push webhooks (GitHub, GitLab, Bitbucket Cloud and Server, Gitea/Gogs/Forgejo): verify
// the request against the provider's shared secret and read which repository and ref were
// pushed. Pure: the HTTP server hands in headers and body and carries out the result.
//
// Every request must prove the secret: a provider with no secret configured is refused, so an
// open endpoint cannot be used to make Sluice fetch at will.
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::gitwebhook {

// Shared secrets, as the keys of the webhook Secret (Argo CD's names in argocd-secret).
struct Secrets {
    std::string github;     // webhook.github.secret: X-Hub-Signature-256 HMAC
    std::string gitlab;     // webhook.gitlab.secret: X-Gitlab-Token, compared as is
    std::string bitbucket;  // webhook.bitbucket.secret: X-Hub-Signature HMAC (Cloud and Server)
    std::string gitea;      // webhook.gitea.secret: X-Gitea-Signature / X-Gogs-Signature HMAC

    // From a Secret's data (base64-decoded values by key).
    static Secrets fromSecretData(const std::map<std::string, std::string>& data);
};

struct Push {
    std::string provider;               // "github", "gitlab", "bitbucket", "gitea"
    std::vector<std::string> repoUrls;  // every URL form the payload gives (https, ssh, web)
    // Short names of the pushed refs: "main" for refs/heads/main, "v1.2" for refs/tags/v1.2.
    std::vector<std::string> refs;
};

struct Result {
    int status = 200;     // HTTP status to answer with
    std::string message;  // body text / log line
    std::string provider;
    std::optional<Push> push;  // set for a verified push event
    bool unauthorized() const { return status == 401; }
};

// `headers` keys must be lower-case. Outcomes:
//   200 + push       a verified push
//   200 (no push)    a verified event that is not a push (ping, tag deletion...): nothing to do
//   400              unknown provider or a payload that does not parse
//   401              missing or wrong signature/token, or no secret configured for the provider
Result handle(const std::map<std::string, std::string>& headers, const std::string& body,
              const Secrets& secrets);

// Lower-case hex HMAC-SHA256 of `data` with `key` (OpenSSL).
std::string hmacSha256Hex(const std::string& key, const std::string& data);
// Compares in time independent of where the strings differ (CRYPTO_memcmp).
bool constantTimeEquals(const std::string& a, const std::string& b);

}  // namespace sluice::gitwebhook
