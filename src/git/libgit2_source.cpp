#include <git2.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "callbacks.h"
#include "sluice/git/git.h"
#include "sluice/util/strings.h"

namespace sluice::git {

GitSource::~GitSource() = default;

std::vector<std::string> GitSource::readFiles(const Repository& repo, const std::string& sha,
                                              const std::vector<std::string>& paths) {
    std::vector<std::string> out;
    out.reserve(paths.size());
    for (const auto& p : paths) out.push_back(readFile(repo, sha, p));
    return out;
}

namespace {

void ensureLibgit2() {
    // Never shut down: other threads may still use libgit2 while the process exits.
    static const int initialised = [] {
        int n = git_libgit2_init();
        // Handles stay open (OpenRepositories), so their object caches last between refreshes:
        // keep directory trees of up to about 20,000 entries there (by default only trees under
        // 4 KiB are kept), and bound what all caches hold together (256 MiB by default).
        git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE, std::size_t{1} << 20);
        git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, static_cast<ssize_t>(32) << 20);
        return n;
    }();
    (void)initialised;
}

template <typename T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const { Free(p); }
};
template <typename T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, Deleter<T, Free>>;
using RepoPtr = Owned<git_repository, git_repository_free>;
using RemotePtr = Owned<git_remote, git_remote_free>;
using CommitPtr = Owned<git_commit, git_commit_free>;
using TreePtr = Owned<git_tree, git_tree_free>;
using EntryPtr = Owned<git_tree_entry, git_tree_entry_free>;
using BlobPtr = Owned<git_blob, git_blob_free>;
using ObjectPtr = Owned<git_object, git_object_free>;
using RefPtr = Owned<git_reference, git_reference_free>;

std::string oneLine(std::string s) {
    std::replace(s.begin(), s.end(), '\n', ' ');
    std::replace(s.begin(), s.end(), '\r', ' ');
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

std::string lastError() {
    const git_error* e = git_error_last();
    return e && e->message ? oneLine(e->message) : "unknown libgit2 error";
}

struct ParsedUrl {
    std::string cleanUrl;  // what libgit2 is given: no password, and no user for http(s)
    std::string cacheKey;  // normalised: no userinfo, lower-case scheme/host, no ".git" or '/'
    std::string user, password;
    int port = 22;
};

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

ParsedUrl parseUrl(const std::string& url) {
    ParsedUrl p;
    std::string key;
    auto schemeEnd = url.find("://");
    if (schemeEnd != std::string::npos) {
        std::string scheme = lower(url.substr(0, schemeEnd));
        size_t authStart = schemeEnd + 3;
        size_t pathStart = url.find('/', authStart);
        if (pathStart == std::string::npos) pathStart = url.size();
        std::string authority = url.substr(authStart, pathStart - authStart);
        std::string path = url.substr(pathStart);
        auto at = authority.rfind('@');
        std::string userinfo;
        if (at != std::string::npos) {
            userinfo = authority.substr(0, at);
            authority = authority.substr(at + 1);
            auto colon = userinfo.find(':');
            p.user = percentDecode(userinfo.substr(0, colon));
            if (colon != std::string::npos) p.password = percentDecode(userinfo.substr(colon + 1));
        }
        // authority is host[:port]; IPv6 literals are bracketed.
        auto portColon = authority.rfind(':');
        if (portColon != std::string::npos && authority.find(']', portColon) == std::string::npos) {
            try {
                p.port = std::stoi(authority.substr(portColon + 1));
            } catch (const std::exception&) {
                p.port = 22;
            }
        }
        bool ssh = scheme == "ssh" || scheme == "git+ssh" || scheme == "ssh+git";
        std::string keepUser =
            ssh && !userinfo.empty() ? userinfo.substr(0, userinfo.find(':')) + "@" : "";
        p.cleanUrl = scheme + "://" + keepUser + authority + path;
        key = scheme + "://" + lower(authority) + path;
    } else {
        // scp-like "user@host:path" or a local path; neither carries a password.
        p.cleanUrl = url;
        auto colon = url.find(':');
        auto slash = url.find('/');
        if (colon != std::string::npos && (slash == std::string::npos || colon < slash)) {
            auto at = url.find('@');
            std::string host = url.substr(0, colon);
            if (at != std::string::npos && at < colon) {
                p.user = url.substr(0, at);
                host = url.substr(at + 1, colon - at - 1);
            }
            key = "ssh://" + lower(host) + "/" + url.substr(colon + 1);
        } else {
            key = url;
        }
    }
    while (!key.empty() && key.back() == '/') key.pop_back();
    if (key.size() > 4 && key.compare(key.size() - 4, 4, ".git") == 0) key.resize(key.size() - 4);
    p.cacheKey = key;
    return p;
}

struct Op {
    ParsedUrl url;
    detail::CallbackState state;
    std::string scrubbedUrl;
};

Op makeOp(const Repository& repo) {
    Op op;
    op.url = parseUrl(repo.url);
    op.state.creds = repo.credentials;
    if (op.state.creds.username.empty()) op.state.creds.username = op.url.user;
    if (op.state.creds.password.empty()) op.state.creds.password = op.url.password;
    op.state.sshPort = op.url.port;
    op.scrubbedUrl = scrubUrl(repo.url);
    return op;
}

// Message safe to show: no userinfo and no occurrence of the secret itself.
std::string safe(const Op& op, std::string msg) {
    msg = scrubUrl(oneLine(msg));
    const std::string& secret = op.state.creds.password;
    if (secret.size() >= 4) {
        for (size_t pos; (pos = msg.find(secret)) != std::string::npos;)
            msg.replace(pos, secret.size(), "***");
    }
    return msg;
}

[[noreturn]] void throwFetchError(const Op& op, int rc) {
    const git_error* e = git_error_last();
    int klass = e ? e->klass : GIT_ERROR_NONE;
    std::string detailMsg = lastError();
    std::string prefix = "fetch " + op.scrubbedUrl + ": ";
    if (!op.state.hostKeyError.empty())
        throw GitError(GitError::Kind::HostKey, safe(op, prefix + op.state.hostKeyError));
    if (op.state.authRejected)
        throw GitError(GitError::Kind::Auth,
                       safe(op, prefix + "authentication failed: credentials rejected"));
    if (op.state.authMissing)
        throw GitError(GitError::Kind::Auth,
                       safe(op, prefix + "authentication required but no credentials given"));
    if (rc == GIT_EAUTH)
        throw GitError(GitError::Kind::Auth,
                       safe(op, prefix + "authentication failed: " + detailMsg));
    if (rc == GIT_ECERTIFICATE)
        throw GitError(GitError::Kind::HostKey, safe(op, prefix + detailMsg));
    switch (klass) {
        case GIT_ERROR_NET:
        case GIT_ERROR_HTTP:
        case GIT_ERROR_SSH:
        case GIT_ERROR_SSL:
        case GIT_ERROR_OS:
        case GIT_ERROR_REPOSITORY:
            throw GitError(GitError::Kind::Unreachable,
                           safe(op, prefix + "repository unreachable: " + detailMsg));
        default:
            throw GitError(GitError::Kind::Other, safe(op, prefix + detailMsg));
    }
}

class RepoHandle {
  public:
    explicit RepoHandle(const std::filesystem::path& dir) {
        git_repository* r = nullptr;
        if (git_repository_open_bare(&r, dir.c_str()) != 0) {
            // Missing or damaged cache: start over with an empty bare repository.
            std::error_code ec;
            std::filesystem::remove_all(dir, ec);
            std::filesystem::create_directories(dir.parent_path(), ec);
            if (git_repository_init(&r, dir.c_str(), /*is_bare=*/1) != 0)
                throw GitError(GitError::Kind::Other,
                               "cannot create git cache " + dir.string() + ": " + lastError());
        }
        repo_.reset(r);
    }
    git_repository* get() const { return repo_.get(); }

    void fetch(Op& op) {
        // No insteadOf rewriting: the URL is the Application's, not the machine's config's (and
        // libgit2 1.5 leaks pcre2 match data while globbing the config for insteadOf keys).
        git_remote_create_options createOpts = GIT_REMOTE_CREATE_OPTIONS_INIT;
        createOpts.repository = repo_.get();
        createOpts.flags =
            GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
        git_remote* raw = nullptr;
        if (git_remote_create_with_opts(&raw, op.url.cleanUrl.c_str(), &createOpts) != 0)
            throw GitError(
                GitError::Kind::Other,
                safe(op, "invalid repository URL " + op.scrubbedUrl + ": " + lastError()));
        RemotePtr remote(raw);
        git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
        opts.callbacks.credentials = detail::credentialCallback;
        opts.callbacks.certificate_check = detail::certificateCheckCallback;
        opts.callbacks.payload = &op.state;
        opts.prune = GIT_FETCH_PRUNE;
        opts.update_fetchhead = 0;
        opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;  // the tags refspec brings them all
        // HEAD is stored as a direct ref so "HEAD"/"" resolve to the remote default branch.
        const char* specs[] = {"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*",
                               "+HEAD:refs/remotes/origin/HEAD"};
        git_strarray refspecs{const_cast<char**>(specs), 3};
        op.state.credentialCalls = 0;
        int rc = git_remote_fetch(remote.get(), &refspecs, &opts, "sluice fetch");
        if (rc != 0) throwFetchError(op, rc);
    }

    // Commit for a full SHA, or null if the object is not in the cache.
    CommitPtr commit(const std::string& sha) const {
        git_oid oid;
        if (sha.size() != GIT_OID_HEXSZ || git_oid_fromstr(&oid, sha.c_str()) != 0) return nullptr;
        git_commit* c = nullptr;
        if (git_commit_lookup(&c, repo_.get(), &oid) != 0) return nullptr;
        return CommitPtr(c);
    }

    // Peels a reference (annotated tags included) to its commit id, or "" when absent.
    std::string peelRef(const std::string& name) const {
        git_reference* raw = nullptr;
        if (git_reference_lookup(&raw, repo_.get(), name.c_str()) != 0) return "";
        RefPtr ref(raw);
        git_object* obj = nullptr;
        if (git_reference_peel(&obj, ref.get(), GIT_OBJECT_COMMIT) != 0) return "";
        ObjectPtr o(obj);
        return git_oid_tostr_s(git_object_id(o.get()));
    }

    std::string commitByPrefix(const Op& op, const std::string& prefix) const {
        git_oid oid;
        if (git_oid_fromstrn(&oid, prefix.c_str(), prefix.size()) != 0) return "";
        git_object* obj = nullptr;
        int rc = git_object_lookup_prefix(&obj, repo_.get(), &oid, prefix.size(), GIT_OBJECT_ANY);
        if (rc == GIT_EAMBIGUOUS)
            throw GitError(
                GitError::Kind::UnknownRevision,
                "revision " + prefix + " is ambiguous in " + op.scrubbedUrl + ": give more digits");
        if (rc != 0) return "";
        ObjectPtr o(obj);
        git_object* peeled = nullptr;
        if (git_object_peel(&peeled, o.get(), GIT_OBJECT_COMMIT) != 0) return "";
        ObjectPtr p(peeled);
        return git_oid_tostr_s(git_object_id(p.get()));
    }

  private:
    RepoPtr repo_;
};

// One open repository per cache directory for the whole process, so that several
// LibGit2Source instances sharing a cache also serialise. Opening reads the config, the refs and
// the pack indexes again, and the trees parsed at one refresh stay in the handle's object cache
// for the next, so the handle is kept open between calls. At most kOpenLimit stay open (tests
// make a cache per test); a handle is reopened when the directory was replaced under it, and
// dropped after any error.
class OpenRepositories {
  public:
    static OpenRepositories& instance() {
        static OpenRepositories* registry = new OpenRepositories();  // outlives every thread
        return *registry;
    }

    // The directory's handle, opened (or reopened) for a caller that holds lock(dir).
    struct Entry {
        std::mutex mu;
        std::unique_ptr<RepoHandle> handle;
        std::string headId;  // inode, size and mtime of HEAD when opened
        std::uint64_t lastUse = 0;
    };

    Entry& entry(const std::string& dir) {
        std::lock_guard lock(mu_);
        auto& e = entries_[dir];
        if (!e) e = std::make_unique<Entry>();
        return *e;
    }

    // Called with e.mu held.
    RepoHandle& open(Entry& e, const std::filesystem::path& dir) {
        std::string id = headId(dir);
        if (!e.handle || id.empty() || id != e.headId) {
            e.handle.reset();
            e.handle = std::make_unique<RepoHandle>(dir);
            e.headId = headId(dir);
            closeLeastRecentlyUsed(e);
        }
        std::lock_guard lock(mu_);
        e.lastUse = ++clock_;
        return *e.handle;
    }

  private:
    static constexpr std::size_t kOpenLimit = 16;

    static std::string headId(const std::filesystem::path& dir) {
        struct stat st {};
        if (::stat((dir / "HEAD").c_str(), &st) != 0) return "";
        return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
               std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    }

    void closeLeastRecentlyUsed(const Entry& keep) {
        std::lock_guard lock(mu_);
        std::size_t open = 0;
        Entry* oldest = nullptr;
        for (auto& [dir, e] : entries_) {
            if (!e->handle) continue;
            ++open;
            if (e.get() != &keep && (!oldest || e->lastUse < oldest->lastUse)) oldest = e.get();
        }
        if (open <= kOpenLimit || !oldest) return;
        std::unique_lock busy(oldest->mu, std::try_to_lock);  // in use: close it another time
        if (busy.owns_lock()) oldest->handle.reset();
    }

    std::mutex mu_;
    std::map<std::string, std::unique_ptr<Entry>> entries_;
    std::uint64_t clock_ = 0;
};

// Runs fn(handle) with the directory's lock held; a failure closes the handle, so that the next
// call starts from what is on disk.
template <class F>
auto withRepository(const std::filesystem::path& dir, F&& fn) {
    auto& registry = OpenRepositories::instance();
    auto& entry = registry.entry(dir.string());
    std::lock_guard lock(entry.mu);
    try {
        return fn(registry.open(entry, dir));
    } catch (...) {
        entry.handle.reset();
        throw;
    }
}

bool isHex(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c));
    });
}

// ---- Reading trees -------------------------------------------------------------------

std::vector<std::string> splitPath(const std::string& p) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : p) {
        if (c == '/') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

std::string joinPath(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
    return out;
}

bool isUnder(const std::vector<std::string>& path, const std::vector<std::string>& base) {
    return path.size() >= base.size() && std::equal(base.begin(), base.end(), path.begin());
}

struct Resolved {
    std::vector<std::string> path;                  // physical location, symlinks resolved
    git_filemode_t mode = GIT_FILEMODE_UNREADABLE;  // GIT_FILEMODE_TREE for the root
    git_oid oid{};
    bool found = false;
};

class TreeReader {
  public:
    TreeReader(git_repository* repo, git_commit* commit) : repo_(repo) {
        git_tree* t = nullptr;
        if (git_commit_tree(&t, commit) != 0)
            throw GitError(GitError::Kind::Other, "cannot read tree: " + lastError());
        root_.reset(t);
    }

    // Resolves `parts` from the root, following symlinks (chains included) as long as they
    // stay inside the repository. `followLast` false leaves a final symlink unresolved.
    Resolved resolve(std::vector<std::string> parts, const std::string& shown,
                     bool followLast = true) const {
        Resolved r;
        r.mode = GIT_FILEMODE_TREE;
        r.oid = *git_tree_id(root_.get());
        int hops = 0;
        size_t i = 0;
        while (i < parts.size()) {
            const std::string& comp = parts[i];
            if (comp == ".") {
                ++i;
                continue;
            }
            if (comp == "..") {
                if (r.path.empty())
                    throw GitError(GitError::Kind::InvalidPath,
                                   "path " + shown + " resolves outside the repository");
                r.path.pop_back();
                r.mode = GIT_FILEMODE_TREE;
                ++i;
                continue;
            }
            if (r.mode != GIT_FILEMODE_TREE) return Resolved{};  // walking through a file
            std::vector<std::string> next = r.path;
            next.push_back(comp);
            EntryPtr entry = entryAt(next);
            if (!entry) return Resolved{};
            git_filemode_t mode = git_tree_entry_filemode(entry.get());
            bool last = i + 1 == parts.size();
            if (mode == GIT_FILEMODE_LINK && (!last || followLast)) {
                if (++hops > 40)
                    throw GitError(GitError::Kind::InvalidPath,
                                   "too many levels of symbolic links in " + shown);
                std::string target = blobContent(*git_tree_entry_id(entry.get()));
                if (!target.empty() && target[0] == '/')
                    throw GitError(GitError::Kind::InvalidPath,
                                   "symlink " + joinPath(next) + " -> " + target +
                                       " points outside the repository");
                // Replace the link by its target, relative to the link's directory.
                std::vector<std::string> rest = splitPath(target);
                rest.insert(rest.end(), parts.begin() + static_cast<long>(i) + 1, parts.end());
                parts = std::move(rest);
                i = 0;
                r.mode = GIT_FILEMODE_TREE;
                continue;
            }
            r.path = std::move(next);
            r.mode = mode;
            r.oid = *git_tree_entry_id(entry.get());
            ++i;
        }
        r.found = true;
        return r;
    }

    std::string blobContent(const git_oid& oid) const {
        git_blob* b = nullptr;
        if (git_blob_lookup(&b, repo_, &oid) != 0)
            throw GitError(GitError::Kind::Other, "cannot read blob: " + lastError());
        BlobPtr blob(b);
        return std::string(static_cast<const char*>(git_blob_rawcontent(b)),
                           static_cast<size_t>(git_blob_rawsize(b)));
    }

    // From the object header: the blob itself is read later, if at all.
    uint64_t blobSize(const git_oid& oid) const {
        git_odb* odb = nullptr;
        if (git_repository_odb(&odb, repo_) != 0) return 0;
        size_t size = 0;
        git_object_t type = GIT_OBJECT_INVALID;
        const int rc = git_odb_read_header(&size, &type, odb, &oid);
        git_odb_free(odb);
        return rc == 0 ? static_cast<uint64_t>(size) : 0;
    }

    // Walks the tree at `base` (physical) and reports files under `shownBase` (what the caller
    // asked for). Every symlink in the subtree must resolve inside `base`.
    void list(const std::vector<std::string>& base, const std::vector<std::string>& rel,
              const std::string& shownBase, bool recurse, std::vector<File>& out) const {
        std::vector<std::string> dirPath = base;
        dirPath.insert(dirPath.end(), rel.begin(), rel.end());
        TreePtr tree = treeAt(dirPath);
        size_t n = git_tree_entrycount(tree.get());
        for (size_t k = 0; k < n; ++k) {
            const git_tree_entry* e = git_tree_entry_byindex(tree.get(), k);
            std::vector<std::string> childRel = rel;
            childRel.push_back(git_tree_entry_name(e));
            std::string shown = joinPath(childRel);
            if (!shownBase.empty()) shown = shownBase + "/" + shown;
            git_filemode_t mode = git_tree_entry_filemode(e);
            if (mode == GIT_FILEMODE_TREE) {
                // Symlinks are checked in the whole subtree, so descend either way.
                std::vector<File> sub;
                list(base, childRel, shownBase, true, sub);
                if (recurse) out.insert(out.end(), sub.begin(), sub.end());
            } else if (mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE) {
                out.push_back(File{shown, blobSize(*git_tree_entry_id(e))});
            } else if (mode == GIT_FILEMODE_LINK) {
                std::vector<std::string> phys = base;
                phys.insert(phys.end(), childRel.begin(), childRel.end());
                std::string target = blobContent(*git_tree_entry_id(e));
                auto refuse = [&](const std::string& why) {
                    return GitError(GitError::Kind::InvalidPath,
                                    "symlink " + shown + " -> " + target + " " + why);
                };
                Resolved r;
                try {
                    r = resolve(phys, shown);
                } catch (const GitError& err) {
                    std::string why = err.what();
                    throw refuse(why.find("outside the repository") != std::string::npos
                                     ? "points outside the repository"
                                     : "is refused: " + why);
                }
                if (!r.found) {
                    // Dangling: judge the target lexically, then ignore it like a missing file.
                    std::vector<std::string> lex(phys.begin(), phys.end() - 1);
                    for (const auto& c : splitPath(target)) {
                        if (c == "..") {
                            if (lex.empty()) throw refuse("points outside the repository");
                            lex.pop_back();
                        } else if (c != ".") {
                            lex.push_back(c);
                        }
                    }
                    if (!isUnder(lex, base))
                        throw refuse("points outside the source path " +
                                     (shownBase.empty() ? "/" : shownBase));
                    continue;
                }
                if (!isUnder(r.path, base))
                    throw refuse("resolves to " + (r.path.empty() ? "/" : joinPath(r.path)) +
                                 ", outside the source path " +
                                 (shownBase.empty() ? "/" : shownBase));
                // Links to files inside the path read as that file; links to directories are
                // not descended (as a filesystem walk would not), which also rules out cycles.
                if (r.mode == GIT_FILEMODE_BLOB || r.mode == GIT_FILEMODE_BLOB_EXECUTABLE)
                    out.push_back(File{shown, blobSize(r.oid)});
            }
            // GIT_FILEMODE_COMMIT (submodules) are not fetched and are skipped.
        }
    }

    TreePtr treeAt(const std::vector<std::string>& path) const {
        git_tree* t = nullptr;
        if (path.empty()) {
            git_tree_dup(&t, root_.get());
            return TreePtr(t);
        }
        EntryPtr e = entryAt(path);
        if (!e || git_tree_entry_filemode(e.get()) != GIT_FILEMODE_TREE ||
            git_tree_lookup(&t, repo_, git_tree_entry_id(e.get())) != 0)
            throw GitError(GitError::Kind::NotFound, joinPath(path) + " is not a directory");
        return TreePtr(t);
    }

  private:
    EntryPtr entryAt(const std::vector<std::string>& path) const {
        if (path.empty()) return nullptr;
        const git_tree* dir = directory(path, path.size() - 1);
        if (!dir) return nullptr;
        const git_tree_entry* found = git_tree_entry_byname(dir, path.back().c_str());
        git_tree_entry* e = nullptr;
        if (!found || git_tree_entry_dup(&e, found) != 0) return nullptr;
        return EntryPtr(e);
    }

    // The tree of the first `depth` components of path, looked up once per reader: reading a
    // thousand files of one directory must not read (and hash) that directory's tree a
    // thousand times, as a lookup from the root per file would.
    const git_tree* directory(const std::vector<std::string>& path, size_t depth) const {
        if (depth == 0) return root_.get();
        std::string key;
        for (size_t i = 0; i < depth; ++i) key.append(path[i]).push_back('/');
        if (auto it = trees_.find(key); it != trees_.end()) return it->second.get();
        const git_tree* parent = directory(path, depth - 1);
        if (!parent) return nullptr;
        const git_tree_entry* e = git_tree_entry_byname(parent, path[depth - 1].c_str());
        git_tree* t = nullptr;
        if (!e || git_tree_entry_filemode(e) != GIT_FILEMODE_TREE ||
            git_tree_lookup(&t, repo_, git_tree_entry_id(e)) != 0)
            return nullptr;
        return trees_.emplace(std::move(key), TreePtr(t)).first->second.get();
    }

    git_repository* repo_;
    TreePtr root_;
    mutable std::map<std::string, TreePtr> trees_;  // directory path + "/" -> its tree
};

bool pathLess(const File& a, const File& b) {
    // Component-wise, like a directory walk: "a/b.yaml" sorts before "a.yaml".
    return splitPath(a.path) < splitPath(b.path);
}

}  // namespace

std::string scrubUrl(const std::string& text) {
    // Drops everything up to the last '@' of each URL's authority, so that a password with an
    // unencoded '@' goes too. (No std::regex: GCC 12 warns inside it under the sanitizers.)
    std::string out;
    size_t pos = 0;
    for (size_t sep; (sep = text.find("://", pos)) != std::string::npos;) {
        size_t authStart = sep + 3;
        size_t authEnd = authStart;
        while (authEnd < text.size() && text[authEnd] != '/' &&
               !std::isspace(static_cast<unsigned char>(text[authEnd])))
            ++authEnd;
        size_t at = text.rfind('@', authEnd == 0 ? 0 : authEnd - 1);
        out.append(text, pos, authStart - pos);
        pos = at != std::string::npos && at >= authStart && at < authEnd ? at + 1 : authStart;
    }
    out.append(text, pos, std::string::npos);
    return out;
}

std::string normalisePath(const std::string& path) {
    if (!path.empty() && path[0] == '/')
        throw GitError(GitError::Kind::InvalidPath,
                       "path " + path + " is absolute; it must be relative to the repository root");
    std::vector<std::string> out;
    for (const auto& c : splitPath(path)) {
        if (c == ".") continue;
        if (c == "..") {
            if (out.empty())
                throw GitError(GitError::Kind::InvalidPath,
                               "path " + path + " escapes the repository root");
            out.pop_back();
            continue;
        }
        out.push_back(c);
    }
    return joinPath(out);
}

LibGit2Source::LibGit2Source(std::filesystem::path cacheDir) : cacheDir_(std::move(cacheDir)) {
    ensureLibgit2();
}

LibGit2Source::~LibGit2Source() = default;

std::filesystem::path LibGit2Source::repoDir(const std::string& url) const {
    ensureLibgit2();
    std::string key = parseUrl(url).cacheKey;
    git_oid oid;
    git_odb_hash(&oid, key.data(), key.size(), GIT_OBJECT_BLOB);
    return cacheDir_ / git_oid_tostr_s(&oid);
}

namespace {

Revision resolveIn(RepoHandle& h, Op& op, const std::string& rev) {
    // A full SHA already in the cache names immutable content: no need to go to the network.
    if (rev.size() == GIT_OID_HEXSZ && isHex(rev) && h.commit(lower(rev)))
        return Revision{lower(rev), ""};

    h.fetch(op);
    auto found = [](std::string sha, std::string ref) {
        return Revision{std::move(sha), std::move(ref)};
    };
    if (rev.empty() || rev == "HEAD") {
        std::string sha = h.peelRef("refs/remotes/origin/HEAD");
        if (sha.empty())
            throw GitError(GitError::Kind::UnknownRevision,
                           "repository " + op.scrubbedUrl + " has no default branch (empty?)");
        return found(sha, "HEAD");
    }
    if (rev.rfind("refs/heads/", 0) == 0) {
        std::string sha = h.peelRef("refs/remotes/origin/" + rev.substr(11));
        if (!sha.empty()) return found(sha, rev);
    } else if (rev.rfind("refs/tags/", 0) == 0) {
        std::string sha = h.peelRef(rev);
        if (!sha.empty()) return found(sha, rev);
    } else if (git_reference_is_valid_name(("refs/heads/" + rev).c_str())) {
        std::string sha = h.peelRef("refs/remotes/origin/" + rev);
        if (!sha.empty()) return found(sha, "refs/heads/" + rev);
        sha = h.peelRef("refs/tags/" + rev);
        if (!sha.empty()) return found(sha, "refs/tags/" + rev);
    }
    if (isHex(rev) && rev.size() == GIT_OID_HEXSZ) {
        if (h.commit(lower(rev))) return found(lower(rev), "");
    } else if (isHex(rev) && rev.size() >= 7) {
        std::string sha = h.commitByPrefix(op, lower(rev));
        if (!sha.empty()) return found(sha, "");
    }
    throw GitError(GitError::Kind::UnknownRevision, "revision " + rev + " not found in " +
                                                        op.scrubbedUrl +
                                                        " (no branch, tag or commit of that name)");
}

}  // namespace

Revision LibGit2Source::resolve(const Repository& repo, const std::string& targetRevision) {
    Op op = makeOp(repo);
    return withRepository(repoDir(repo.url),
                          [&](RepoHandle& h) { return resolveIn(h, op, targetRevision); });
}

namespace {

// Opens the cache and finds the commit, fetching once if it is not there yet (e.g. after a
// restart with an empty cache).
CommitPtr commitFor(RepoHandle& h, Op& op, const std::string& sha) {
    if (sha.size() != GIT_OID_HEXSZ || !isHex(sha))
        throw GitError(GitError::Kind::UnknownRevision,
                       "commit " + sha + " is not a full 40-digit SHA");
    CommitPtr c = h.commit(lower(sha));
    if (c) return c;
    h.fetch(op);
    c = h.commit(lower(sha));
    if (!c)
        throw GitError(GitError::Kind::UnknownRevision,
                       "commit " + sha + " not found in " + op.scrubbedUrl);
    return c;
}

// Runs fn with a reader of the commit's tree, holding the repository's lock throughout.
template <class F>
auto withTree(const LibGit2Source& source, const Repository& repo, const std::string& sha, F&& fn) {
    Op op = makeOp(repo);
    return withRepository(source.repoDir(repo.url), [&](RepoHandle& h) {
        CommitPtr commit = commitFor(h, op, sha);
        TreeReader reader(h.get(), commit.get());
        return fn(reader);
    });
}

}  // namespace

std::vector<File> LibGit2Source::listFiles(const Repository& repo, const std::string& sha,
                                           const std::string& path, bool recurse) {
    std::string norm = normalisePath(path);
    return withTree(*this, repo, sha, [&](TreeReader& reader) {
        std::string shown = norm.empty() ? "/" : norm;
        Resolved base = reader.resolve(splitPath(norm), shown);
        if (!base.found)
            throw GitError(GitError::Kind::NotFound,
                           "path " + shown + " does not exist at commit " + sha.substr(0, 12));
        if (base.mode != GIT_FILEMODE_TREE)
            throw GitError(GitError::Kind::NotFound, "path " + shown + " is not a directory");
        std::vector<File> files;
        reader.list(base.path, {}, norm, recurse, files);
        std::sort(files.begin(), files.end(), pathLess);
        return files;
    });
}

namespace {

std::string readResolved(const TreeReader& reader, const std::string& sha,
                         const std::string& path) {
    std::string norm = normalisePath(path);
    Resolved r = reader.resolve(splitPath(norm), norm);
    if (!r.found)
        throw GitError(GitError::Kind::NotFound,
                       "file " + norm + " does not exist at commit " + sha.substr(0, 12));
    if (r.mode != GIT_FILEMODE_BLOB && r.mode != GIT_FILEMODE_BLOB_EXECUTABLE)
        throw GitError(GitError::Kind::NotFound, norm + " is not a regular file");
    return reader.blobContent(r.oid);
}

}  // namespace

std::string LibGit2Source::readFile(const Repository& repo, const std::string& sha,
                                    const std::string& path) {
    return withTree(*this, repo, sha,
                    [&](TreeReader& reader) { return readResolved(reader, sha, path); });
}

std::vector<std::string> LibGit2Source::readFiles(const Repository& repo, const std::string& sha,
                                                  const std::vector<std::string>& paths) {
    return withTree(*this, repo, sha, [&](TreeReader& reader) {
        std::vector<std::string> out;
        out.reserve(paths.size());
        for (const auto& p : paths) out.push_back(readResolved(reader, sha, p));
        return out;
    });
}

}  // namespace sluice::git
