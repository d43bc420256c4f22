#include "sluice/git/known_hosts.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <sstream>
#include <utility>

#include "sluice/util/base64.h"

namespace sluice::git {
namespace {

std::vector<std::string> splitOn(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

// Glob with '*' and '?', as OpenSSH's match_pattern.
bool globMatch(const char* p, const char* s) {
    for (;; ++p, ++s) {
        if (*p == '\0') return *s == '\0';
        if (*p == '*') {
            for (const char* t = s;; ++t) {
                if (globMatch(p + 1, t)) return true;
                if (*t == '\0') return false;
            }
        }
        if (*s == '\0') return false;
        if (*p != '?' && *p != *s) return false;
    }
}

bool hashedMatch(const std::string& pattern, const std::string& name) {
    // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
    auto parts = splitOn(pattern, '|');
    if (parts.size() != 4 || parts[1] != "1") return false;
    const auto salt = base64Decode(parts[2]);
    const auto want = base64Decode(parts[3]);
    if (!salt || !want) return false;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdLen = 0;
    if (!HMAC(EVP_sha1(), salt->data(), static_cast<int>(salt->size()),
              reinterpret_cast<const unsigned char*>(name.data()), name.size(), md, &mdLen))
        return false;
    return want->size() == mdLen &&
           want->compare(0, mdLen, reinterpret_cast<char*>(md), mdLen) == 0;
}

}  // namespace

KnownHosts::KnownHosts(const std::string& content) {
    std::istringstream in(content);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string first;
        if (!(fields >> first) || first[0] == '#') continue;
        Entry e;
        if (first[0] == '@') {
            if (first != "@revoked") continue;  // @cert-authority: certificates unsupported
            e.revoked = true;
            if (!(fields >> first)) continue;
        }
        std::string keyType, key;
        if (!(fields >> keyType >> key)) continue;
        auto keyBlob = base64Decode(key);
        if (!keyBlob) continue;
        e.keyBlob = std::move(*keyBlob);
        e.patterns = splitOn(first, ',');
        entries_.push_back(std::move(e));
    }
}

bool KnownHosts::hostMatches(const Entry& e, const std::string& name) {
    bool matched = false;
    for (const auto& p : e.patterns) {
        if (p.empty()) continue;
        if (p[0] == '!') {
            if (globMatch(p.c_str() + 1, name.c_str())) return false;  // negation wins
        } else if (p[0] == '|') {
            matched = matched || hashedMatch(p, name);
        } else {
            matched = matched || globMatch(p.c_str(), name.c_str());
        }
    }
    return matched;
}

HostKeyVerdict KnownHosts::check(const std::string& host, int port,
                                 const std::string& keyBlob) const {
    // OpenSSH writes non-default ports as "[host]:port".
    std::string name = port == 22 || port <= 0 ? host : "[" + host + "]:" + std::to_string(port);
    bool known = false, match = false;
    for (const auto& e : entries_) {
        if (!hostMatches(e, name)) continue;
        if (e.revoked) {
            if (e.keyBlob == keyBlob) return HostKeyVerdict::Revoked;
            continue;
        }
        known = true;
        match = match || e.keyBlob == keyBlob;
    }
    if (match) return HostKeyVerdict::Match;
    return known ? HostKeyVerdict::Mismatch : HostKeyVerdict::Unknown;
}

}  // namespace sluice::git
