#pragma once
// In-memory GitSource for tests of code that uses one (controllers): the test makes commits and
// moves refs by hand, and can make every call for a repository fail.
#include <map>
#include <mutex>
#include <optional>

#include "sluice/git/git.h"

namespace sluice::git {

class FakeGitSource : public GitSource {
  public:
    // Records a commit of `files` (path -> content) in repository `url` and points `refs` at it
    // ("HEAD" is the default branch; branch and tag names as given to resolve()). Returns its
    // made-up 40-hex SHA.
    std::string commit(const std::string& url, const std::map<std::string, std::string>& files,
                       const std::vector<std::string>& refs = {"HEAD", "main"});
    void setRef(const std::string& url, const std::string& ref, const std::string& sha);
    // While set, every call for `url` throws this error.
    void setError(const std::string& url, std::optional<GitError> error);
    int resolveCalls(const std::string& url) const;

    Revision resolve(const Repository& repo, const std::string& targetRevision) override;
    std::vector<File> listFiles(const Repository& repo, const std::string& sha,
                                const std::string& path, bool recurse) override;
    std::string readFile(const Repository& repo, const std::string& sha,
                         const std::string& path) override;

  private:
    struct Repo {
        std::map<std::string, std::string> refs;
        std::map<std::string, std::map<std::string, std::string>> commits;
        std::optional<GitError> error;
        int resolveCalls = 0;
    };
    const std::map<std::string, std::string>& filesAt(const Repo& r, const std::string& url,
                                                      const std::string& sha) const;
    Repo& repoFor(const std::string& url);  // throws its error, if set

    mutable std::mutex mu_;
    std::map<std::string, Repo> repos_;
    int counter_ = 0;
};

}  // namespace sluice::git
