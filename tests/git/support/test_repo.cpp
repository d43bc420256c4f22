#include "test_repo.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace sluice::testing {

namespace fs = std::filesystem;

std::string sh(const fs::path& cwd, const std::string& command) {
    // Identity and defaults come from the command line only, never from ~/.gitconfig.
    std::string full = "cd '" + cwd.string() +
                       "' && GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 "
                       "GIT_TERMINAL_PROMPT=0 " +
                       command + " 2>&1";
    FILE* p = popen(full.c_str(), "r");
    if (!p) throw std::runtime_error("popen failed");
    std::string out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    int status = pclose(p);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error("command failed: " + command + "\n" + out);
    return out;
}

TestRepo::TestRepo(fs::path dir) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    sh(dir_, "git -c init.defaultBranch=main init -q .");
    git("config user.name 'Sluice Test'");
    git("config user.email test@sluice.invalid");
    git("config core.symlinks true");
}

void TestRepo::write(const std::string& relPath, const std::string& content) {
    fs::path p = dir_ / relPath;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
}

void TestRepo::symlink(const std::string& relPath, const std::string& target) {
    fs::path p = dir_ / relPath;
    fs::create_directories(p.parent_path());
    fs::create_symlink(target, p);
}

void TestRepo::remove(const std::string& relPath) {
    fs::remove_all(dir_ / relPath);
}

std::string TestRepo::commit(const std::string& message) {
    git("add -A");
    git("commit -q --allow-empty -m '" + message + "'");
    std::string sha = git("rev-parse HEAD");
    while (!sha.empty() && (sha.back() == '\n' || sha.back() == '\r')) sha.pop_back();
    return sha;
}

std::string TestRepo::git(const std::string& args) {
    return sh(dir_, "git " + args);
}

}  // namespace sluice::testing
