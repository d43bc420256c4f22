#pragma once
// OpenSSH known_hosts matching, used to verify SSH host keys of Git servers.
#include <string>
#include <vector>

namespace sluice::git {

enum class HostKeyVerdict {
    Match,     // a line for the host carries this key
    Mismatch,  // lines for the host exist, none with this key
    Unknown,   // no line names the host
    Revoked,   // an @revoked line carries this key
};

class KnownHosts {
  public:
    // Parses known_hosts content: plain, wildcard, negated and hashed (|1|) host patterns,
    // "[host]:port" entries and @revoked markers. Malformed lines and @cert-authority lines
    // are ignored (certificates are not supported).
    explicit KnownHosts(const std::string& content);

    // keyBlob is the SSH wire-format public key (the base64-decoded key field).
    HostKeyVerdict check(const std::string& host, int port, const std::string& keyBlob) const;
    bool empty() const { return entries_.empty(); }

  private:
    struct Entry {
        std::vector<std::string> patterns;
        std::string keyBlob;
        bool revoked = false;
    };
    static bool hostMatches(const Entry& e, const std::string& name);
    std::vector<Entry> entries_;
};

}  // namespace sluice::git
