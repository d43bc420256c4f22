#pragma once
// Test helpers: Git repositories built with the git CLI, isolated from the user's and the
// system's Git configuration. Scratch directories: TempDir (tempdir/tempdir.h).
#include <filesystem>
#include <string>

namespace sluice::testing {

// Runs `command` with /bin/sh in `cwd`, global/system git config disabled; returns stdout.
// Throws std::runtime_error (with the output) when it exits non-zero.
std::string sh(const std::filesystem::path& cwd, const std::string& command);

// A non-bare repository on branch "main" with a fixed committer identity.
class TestRepo {
  public:
    explicit TestRepo(std::filesystem::path dir);
    const std::filesystem::path& dir() const { return dir_; }
    std::string url() const { return "file://" + dir_.string(); }

    void write(const std::string& relPath, const std::string& content);
    void symlink(const std::string& relPath, const std::string& target);
    void remove(const std::string& relPath);
    // Stages everything and commits; returns the new commit's full SHA.
    std::string commit(const std::string& message);
    std::string git(const std::string& args);  // "git <args>" in the repository

  private:
    std::filesystem::path dir_;
};

}  // namespace sluice::testing
