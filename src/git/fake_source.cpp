#include "sluice/git/fake_source.h"

#include <algorithm>
#include <cstdio>

namespace sluice::git {

std::string FakeGitSource::commit(const std::string& url,
                                  const std::map<std::string, std::string>& files,
                                  const std::vector<std::string>& refs) {
    std::lock_guard lock(mu_);
    char sha[41];
    std::snprintf(sha, sizeof sha, "%040x", ++counter_);
    Repo& r = repos_[url];
    r.commits[sha] = {};
    for (const auto& [path, content] : files) r.commits[sha][normalisePath(path)] = content;
    for (const auto& ref : refs) r.refs[ref] = sha;
    return sha;
}

void FakeGitSource::setRef(const std::string& url, const std::string& ref, const std::string& sha) {
    std::lock_guard lock(mu_);
    repos_[url].refs[ref] = sha;
}

void FakeGitSource::setError(const std::string& url, std::optional<GitError> error) {
    std::lock_guard lock(mu_);
    repos_[url].error = std::move(error);
}

int FakeGitSource::resolveCalls(const std::string& url) const {
    std::lock_guard lock(mu_);
    auto it = repos_.find(url);
    return it == repos_.end() ? 0 : it->second.resolveCalls;
}

FakeGitSource::Repo& FakeGitSource::repoFor(const std::string& url) {
    auto it = repos_.find(url);
    if (it == repos_.end())
        throw GitError(GitError::Kind::Unreachable, "fetch " + url + ": repository unreachable");
    if (it->second.error) throw *it->second.error;
    return it->second;
}

Revision FakeGitSource::resolve(const Repository& repo, const std::string& targetRevision) {
    std::lock_guard lock(mu_);
    auto it = repos_.find(repo.url);
    if (it != repos_.end()) ++it->second.resolveCalls;
    Repo& r = repoFor(repo.url);
    std::string rev = targetRevision.empty() ? "HEAD" : targetRevision;
    if (auto ref = r.refs.find(rev); ref != r.refs.end()) return Revision{ref->second, rev};
    if (rev.size() >= 7) {
        for (const auto& [sha, files] : r.commits)
            if (sha.compare(0, rev.size(), rev) == 0) return Revision{sha, ""};
    }
    throw GitError(GitError::Kind::UnknownRevision,
                   "revision " + rev + " not found in " + repo.url);
}

const std::map<std::string, std::string>& FakeGitSource::filesAt(const Repo& r,
                                                                 const std::string& url,
                                                                 const std::string& sha) const {
    auto c = r.commits.find(sha);
    if (c == r.commits.end())
        throw GitError(GitError::Kind::UnknownRevision, "commit " + sha + " not found in " + url);
    return c->second;
}

std::vector<File> FakeGitSource::listFiles(const Repository& repo, const std::string& sha,
                                           const std::string& path, bool recurse) {
    std::string base = normalisePath(path);
    std::lock_guard lock(mu_);
    const auto& files = filesAt(repoFor(repo.url), repo.url, sha);
    std::string prefix = base.empty() ? "" : base + "/";
    std::vector<File> out;
    bool dirExists = base.empty();
    for (const auto& [p, content] : files) {
        if (p.compare(0, prefix.size(), prefix) != 0) continue;
        dirExists = true;
        if (!recurse && p.find('/', prefix.size()) != std::string::npos) continue;
        out.push_back(File{p, content.size()});
    }
    if (!dirExists) throw GitError(GitError::Kind::NotFound, "path " + base + " does not exist");
    // Same order as LibGit2Source: component-wise, so "a/b.yaml" comes before "a.yaml".
    auto parts = [](const std::string& p) {
        std::vector<std::string> v;
        size_t start = 0;
        for (size_t slash; (slash = p.find('/', start)) != std::string::npos; start = slash + 1)
            v.push_back(p.substr(start, slash - start));
        v.push_back(p.substr(start));
        return v;
    };
    std::sort(out.begin(), out.end(),
              [&](const File& a, const File& b) { return parts(a.path) < parts(b.path); });
    return out;
}

std::string FakeGitSource::readFile(const Repository& repo, const std::string& sha,
                                    const std::string& path) {
    std::string p = normalisePath(path);
    std::lock_guard lock(mu_);
    const auto& files = filesAt(repoFor(repo.url), repo.url, sha);
    auto it = files.find(p);
    if (it == files.end())
        throw GitError(GitError::Kind::NotFound, "file " + p + " does not exist");
    return it->second;
}

}  // namespace sluice::git
