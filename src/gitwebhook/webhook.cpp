#include "sluice/gitwebhook/webhook.h"

#include "sluice/util/strings.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

namespace sluice::gitwebhook {

using nlohmann::json;

namespace {

std::string header(const std::map<std::string, std::string>& headers, const std::string& name) {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
}

bool has(const std::map<std::string, std::string>& headers, const std::string& name) {
    return headers.count(name) > 0;
}

Result refuse(int status, std::string provider, std::string message) {
    Result r;
    r.status = status;
    r.provider = std::move(provider);
    r.message = std::move(message);
    return r;
}

// "refs/heads/main" -> "main", "refs/tags/v1" -> "v1"; anything else as given.
std::string shortRef(const std::string& ref) {
    for (const char* prefix : {"refs/heads/", "refs/tags/"}) {
        std::string p = prefix;
        if (ref.rfind(p, 0) == 0) return ref.substr(p.size());
    }
    return ref;
}

// GitHub and Gitea may post application/x-www-form-urlencoded with the JSON in `payload`.
json parsePayload(const std::map<std::string, std::string>& headers, const std::string& body) {
    std::string text = body;
    const std::string type = header(headers, "content-type");
    if (type.empty())
        throw std::invalid_argument(
            "the request has no Content-Type: send application/json, or "
            "application/x-www-form-urlencoded with the JSON in payload=");
    if (type.rfind("application/x-www-form-urlencoded", 0) == 0) {
        text.clear();
        size_t pos = 0;
        while (pos <= body.size()) {
            size_t amp = body.find('&', pos);
            std::string pair =
                body.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
            if (pair.rfind("payload=", 0) == 0)
                text = percentDecode(pair.substr(8), /*plusIsSpace=*/true);
            if (amp == std::string::npos) break;
            pos = amp + 1;
        }
    }
    return json::parse(text);  // throws json::parse_error
}

void addUrl(std::vector<std::string>& urls, const json& value) {
    if (value.is_string() && !value.get<std::string>().empty()) {
        auto url = value.get<std::string>();
        if (std::find(urls.begin(), urls.end(), url) == urls.end()) urls.push_back(url);
    }
}

const json& at(const json& j, const char* pointer) {
    static const json null;
    auto ptr = json::json_pointer(pointer);
    return j.contains(ptr) ? j.at(ptr) : null;
}

// "sha256=<hex>" (GitHub, Bitbucket) or bare hex (Gitea) against the body's HMAC.
bool signatureMatches(const std::string& given, const std::string& secret, const std::string& body,
                      bool prefixed) {
    std::string hex = given;
    if (prefixed) {
        if (hex.rfind("sha256=", 0) != 0) return false;
        hex = hex.substr(7);
    }
    for (auto& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return constantTimeEquals(hex, hmacSha256Hex(secret, body));
}

Result github(const std::map<std::string, std::string>& headers, const std::string& body,
              const Secrets& secrets) {
    if (secrets.github.empty())
        return refuse(401, "github",
                      "no GitHub webhook secret is configured (webhook.github.secret)");
    const std::string sig = header(headers, "x-hub-signature-256");
    if (sig.empty()) return refuse(401, "github", "missing X-Hub-Signature-256");
    if (!signatureMatches(sig, secrets.github, body, true))
        return refuse(401, "github", "X-Hub-Signature-256 does not match the payload");
    const std::string event = header(headers, "x-github-event");
    if (event != "push") return refuse(200, "github", "ignored GitHub event '" + event + "'");
    json p = parsePayload(headers, body);
    Push push{"github", {}, {}};
    for (const char* f : {"/repository/html_url", "/repository/clone_url", "/repository/ssh_url",
                          "/repository/git_url", "/repository/url"})
        addUrl(push.repoUrls, at(p, f));
    if (at(p, "/ref").is_string()) push.refs.push_back(shortRef(p["ref"]));
    Result r = refuse(200, "github", "push");
    r.push = std::move(push);
    return r;
}

Result gitlab(const std::map<std::string, std::string>& headers, const std::string& body,
              const Secrets& secrets) {
    if (secrets.gitlab.empty())
        return refuse(401, "gitlab",
                      "no GitLab webhook secret is configured (webhook.gitlab.secret)");
    if (!has(headers, "x-gitlab-token")) return refuse(401, "gitlab", "missing X-Gitlab-Token");
    if (!constantTimeEquals(header(headers, "x-gitlab-token"), secrets.gitlab))
        return refuse(401, "gitlab", "X-Gitlab-Token does not match");
    const std::string event = header(headers, "x-gitlab-event");
    if (event != "Push Hook" && event != "Tag Push Hook")
        return refuse(200, "gitlab", "ignored GitLab event '" + event + "'");
    json p = json::parse(body);
    Push push{"gitlab", {}, {}};
    for (const char* f :
         {"/project/git_http_url", "/project/git_ssh_url", "/project/web_url",
          "/repository/git_http_url", "/repository/git_ssh_url", "/repository/homepage"})
        addUrl(push.repoUrls, at(p, f));
    if (at(p, "/ref").is_string()) push.refs.push_back(shortRef(p["ref"]));
    Result r = refuse(200, "gitlab", "push");
    r.push = std::move(push);
    return r;
}

Result bitbucket(const std::map<std::string, std::string>& headers, const std::string& body,
                 const Secrets& secrets) {
    if (secrets.bitbucket.empty())
        return refuse(401, "bitbucket",
                      "no Bitbucket webhook secret is configured (webhook.bitbucket.secret)");
    const std::string sig = header(headers, "x-hub-signature");
    if (sig.empty()) return refuse(401, "bitbucket", "missing X-Hub-Signature");
    if (!signatureMatches(sig, secrets.bitbucket, body, true))
        return refuse(401, "bitbucket", "X-Hub-Signature does not match the payload");
    const std::string event = header(headers, "x-event-key");
    json p;
    Push push{"bitbucket", {}, {}};
    if (event == "repo:push") {  // Bitbucket Cloud
        p = json::parse(body);
        addUrl(push.repoUrls, at(p, "/repository/links/html/href"));
        if (at(p, "/repository/full_name").is_string())
            addUrl(push.repoUrls,
                   "https://bitbucket.org/" + p["repository"]["full_name"].get<std::string>());
        for (const auto& change :
             at(p, "/push/changes").is_array() ? p["push"]["changes"] : json::array()) {
            const json& name = at(change, "/new/name");
            if (name.is_string()) push.refs.push_back(name);
        }
    } else if (event == "repo:refs_changed") {  // Bitbucket Server / Data Center
        p = json::parse(body);
        const json& clones = at(p, "/repository/links/clone");
        if (clones.is_array())
            for (const auto& c : clones) addUrl(push.repoUrls, at(c, "/href"));
        const json& changes = at(p, "/changes");
        if (changes.is_array())
            for (const auto& change : changes) {
                const json& id = at(change, "/ref/displayId");
                if (id.is_string()) push.refs.push_back(id);
            }
    } else {
        return refuse(200, "bitbucket", "ignored Bitbucket event '" + event + "'");
    }
    Result r = refuse(200, "bitbucket", "push");
    r.push = std::move(push);
    return r;
}

Result gitea(const std::map<std::string, std::string>& headers, const std::string& body,
             const Secrets& secrets) {
    if (secrets.gitea.empty())
        return refuse(401, "gitea", "no Gitea webhook secret is configured (webhook.gitea.secret)");
    std::string sig;
    for (const char* h : {"x-gitea-signature", "x-forgejo-signature", "x-gogs-signature"})
        if (sig.empty()) sig = header(headers, h);
    if (sig.empty()) return refuse(401, "gitea", "missing X-Gitea-Signature");
    if (!signatureMatches(sig, secrets.gitea, body, false))
        return refuse(401, "gitea", "X-Gitea-Signature does not match the payload");
    std::string event;
    for (const char* h : {"x-gitea-event", "x-forgejo-event", "x-gogs-event"})
        if (event.empty()) event = header(headers, h);
    if (event != "push") return refuse(200, "gitea", "ignored Gitea event '" + event + "'");
    json p = parsePayload(headers, body);
    Push push{"gitea", {}, {}};
    for (const char* f : {"/repository/html_url", "/repository/clone_url", "/repository/ssh_url"})
        addUrl(push.repoUrls, at(p, f));
    if (at(p, "/ref").is_string()) push.refs.push_back(shortRef(p["ref"]));
    Result r = refuse(200, "gitea", "push");
    r.push = std::move(push);
    return r;
}

}  // namespace

Secrets Secrets::fromSecretData(const std::map<std::string, std::string>& data) {
    auto get = [&](const char* key) {
        auto it = data.find(key);
        return it == data.end() ? std::string() : it->second;
    };
    Secrets s;
    s.github = get("webhook.github.secret");
    s.gitlab = get("webhook.gitlab.secret");
    s.bitbucket = get("webhook.bitbucket.secret");
    s.gitea = get("webhook.gitea.secret");
    if (s.gitea.empty()) s.gitea = get("webhook.gogs.secret");  // Argo CD's name
    return s;
}

Result handle(const std::map<std::string, std::string>& headers, const std::string& body,
              const Secrets& secrets) {
    try {
        // Gitea and Gogs also send X-GitHub-Event for compatibility: look at theirs first.
        if (has(headers, "x-gitea-event") || has(headers, "x-gogs-event") ||
            has(headers, "x-forgejo-event"))
            return gitea(headers, body, secrets);
        if (has(headers, "x-github-event")) return github(headers, body, secrets);
        if (has(headers, "x-gitlab-event")) return gitlab(headers, body, secrets);
        if (has(headers, "x-event-key")) return bitbucket(headers, body, secrets);
    } catch (const json::exception& e) {
        return refuse(400, "", std::string("payload is not valid JSON: ") + e.what());
    } catch (const std::invalid_argument& e) {
        return refuse(400, "", e.what());
    }
    return refuse(400, "",
                  "unknown webhook: expected a GitHub, GitLab, Bitbucket or Gitea push event");
}

std::string hmacSha256Hex(const std::string& key, const std::string& data) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
    static const char* digits = "0123456789abcdef";
    std::string hex;
    hex.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        hex += digits[mac[i] >> 4];
        hex += digits[mac[i] & 0xf];
    }
    return hex;
}

bool constantTimeEquals(const std::string& a, const std::string& b) {
    // The length is not secret (a hex digest's is fixed); the content is compared in full.
    if (a.size() != b.size()) return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace sluice::gitwebhook
