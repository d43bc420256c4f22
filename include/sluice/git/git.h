#pragma once
// Git sources of Applications (Argo CD's source.repoURL / targetRevision / path).
// GitSource is the seam controllers depend on; LibGit2Source is the real implementation.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::git {

struct Credentials {
    std::string username;       // HTTPS user; SSH user when the URL names none (default "git")
    std::string password;       // HTTPS password or token (a token alone is sent with user "git")
    std::string sshPrivateKey;  // PEM/OpenSSH private key text
    std::string sshKnownHosts;  // known_hosts file content used to verify SSH host keys
    // Only with empty sshKnownHosts: accept any SSH host key (Argo CD's insecureIgnoreHostKey).
    bool insecureIgnoreHostKey = false;
};

struct Repository {
    std::string url;  // https://, http://, ssh://, user@host:path (scp form) or file://
    Credentials credentials;
};

struct Revision {
    std::string sha;  // full 40-hex commit id
    std::string ref;  // what targetRevision matched: "refs/heads/x", "refs/tags/v1", or "" for SHA
};

struct File {
    std::string path;  // repository-relative, '/'-separated
    uint64_t size = 0;
};

class GitError : public std::runtime_error {
  public:
    enum class Kind {
        Auth,             // credentials missing or rejected
        HostKey,          // SSH host key unknown or mismatched
        Unreachable,      // host/repository could not be reached
        UnknownRevision,  // no branch, tag or commit matches
        InvalidPath,      // absolute path, escape via "..", or symlink leaving the path
        NotFound,         // path does not exist at the commit
        Other,
    };
    GitError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    Kind kind() const { return kind_; }

  private:
    Kind kind_;
};

class GitSource {
  public:
    virtual ~GitSource();
    // Fetches the repository and resolves targetRevision: a branch, a tag, a full or short
    // (>= 7 hex digits, unique) commit SHA, or "HEAD"/"" for the remote's default branch.
    virtual Revision resolve(const Repository& repo, const std::string& targetRevision) = 0;
    // Regular files under `path` at commit `sha` (recursively when `recurse`), sorted by path.
    // Throws GitError(InvalidPath) for unsafe paths, and for any symlink in the subtree (even
    // when not recursing) that resolves outside `path`. Links to files inside are listed under
    // their own path; links to directories are not descended.
    virtual std::vector<File> listFiles(const Repository& repo, const std::string& sha,
                                        const std::string& path, bool recurse) = 0;
    // Content of the file at `path` (symlinks inside the repository are followed).
    virtual std::string readFile(const Repository& repo, const std::string& sha,
                                 const std::string& path) = 0;
    // Contents of these files, in order, as readFile gives them; a source may read them in one
    // pass (this default calls readFile for each).
    virtual std::vector<std::string> readFiles(const Repository& repo, const std::string& sha,
                                               const std::vector<std::string>& paths);
};

// Clones each repository once (bare) into cacheDir/<hash of normalised URL> and fetches on each
// resolve(). Calls for one repository are serialised; different repositories run concurrently.
class LibGit2Source : public GitSource {
  public:
    explicit LibGit2Source(std::filesystem::path cacheDir);
    ~LibGit2Source() override;

    Revision resolve(const Repository& repo, const std::string& targetRevision) override;
    std::vector<File> listFiles(const Repository& repo, const std::string& sha,
                                const std::string& path, bool recurse) override;
    std::string readFile(const Repository& repo, const std::string& sha,
                         const std::string& path) override;
    // One repository open and one commit lookup for all the files.
    std::vector<std::string> readFiles(const Repository& repo, const std::string& sha,
                                       const std::vector<std::string>& paths) override;

    // Where the bare clone of `url` lives (exposed for tests and cache maintenance).
    std::filesystem::path repoDir(const std::string& url) const;

  private:
    std::filesystem::path cacheDir_;
};

// Removes the userinfo ("user:secret@") from URLs so messages never carry credentials.
std::string scrubUrl(const std::string& text);

// Normalises `path` relative to the repository root ("" for the root). Throws
// GitError(InvalidPath) for absolute paths and ".." escaping the root.
std::string normalisePath(const std::string& path);

}  // namespace sluice::git
