#pragma once
// Files of sources on disk: git trees laid out once per (repository, commit) and shared while
// in use, Helm charts pulled once per (repository, chart, version), scratch directories.
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sluice/git/git.h"
#include "sluice/source/service.h"

namespace sluice::source {

// A commit's files on disk. Removed when the last user lets go.
struct Tree {
    std::filesystem::path path;
    ~Tree();
};

class TreeCache {
  public:
    TreeCache(git::GitSource& git, std::filesystem::path dir);
    // The tree of `sha`, laid out on first use; every Application at that commit shares it.
    std::shared_ptr<const Tree> acquire(const git::Repository& repo, const std::string& sha);

  private:
    git::GitSource& git_;
    std::filesystem::path dir_;
    std::mutex mu_;
    std::map<std::string, std::weak_ptr<const Tree>> trees_;
    std::map<std::string, std::shared_ptr<std::mutex>> building_;
};

class ChartCache {
  public:
    ChartCache(const Settings& settings, std::filesystem::path dir);
    // The version `constraint` selects ("" or "*" = the latest); exact versions are taken as
    // they are once pulled. Throws git::GitError when the repository cannot serve it.
    std::string resolve(const std::string& repoURL, const std::string& chart,
                        const std::string& constraint, const HelmCredentials& creds);
    // The directory holding the unpacked chart (dir/<chart name>), pulled on first use.
    std::filesystem::path pull(const std::string& repoURL, const std::string& chart,
                               const std::string& version, const HelmCredentials& creds);

  private:
    std::filesystem::path versionDir(const std::string& repoURL, const std::string& chart,
                                     const std::string& version) const;
    // Runs `helm pull` of `version` (exact or a constraint) into a new directory; returns it.
    std::filesystem::path pullInto(const std::string& repoURL, const std::string& chart,
                                   const std::string& version, const HelmCredentials& creds);

    const Settings& settings_;
    std::filesystem::path dir_;
    std::mutex mu_;
};

// A fresh private directory, removed with everything in it.
struct ScratchDir {
    explicit ScratchDir(const std::filesystem::path& parent);
    ~ScratchDir();
    std::filesystem::path path;
};

}  // namespace sluice::source
