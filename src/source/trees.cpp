#include "trees.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <atomic>
#include <fstream>

#include "sluice/source/exec.h"
#include "sluice/util/yaml_json.h"

namespace sluice::source {

namespace fs = std::filesystem;

namespace {

std::string uniqueSuffix() {
    static std::atomic<uint64_t> counter{0};
    return std::to_string(getpid()) + "-" + std::to_string(++counter);
}

void writeFile(const fs::path& path, const std::string& content) {
    fs::create_directories(path.parent_path());
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!f) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

Tree::~Tree() {
    std::error_code ec;
    fs::remove_all(path, ec);
}

TreeCache::TreeCache(git::GitSource& git, fs::path dir)
    : git_(git), dir_(dir / ("pid-" + uniqueSuffix())) {
    // Each cache lays out its own trees (two controllers may share a --render-dir); those of
    // processes that are gone are stale leftovers, removed here.
    std::error_code ec;
    fs::create_directories(dir, ec);
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("pid-", 0) != 0) continue;
        const pid_t pid = static_cast<pid_t>(std::atoi(name.c_str() + 4));
        if (pid <= 0 || (pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH))
            fs::remove_all(e.path(), ec);
    }
    fs::create_directories(dir_);
}

std::shared_ptr<const Tree> TreeCache::acquire(const git::Repository& repo,
                                               const std::string& sha) {
    const std::string key = digest(repo.url + "\n" + sha).substr(0, 32);
    std::shared_ptr<std::mutex> building;
    {
        std::lock_guard lock(mu_);
        if (auto tree = trees_[key].lock()) return tree;
        auto& b = building_[key];
        if (!b) b = std::make_shared<std::mutex>();
        building = b;
    }
    // One laying-out per tree; others wait for it and share the result.
    std::lock_guard buildLock(*building);
    {
        std::lock_guard lock(mu_);
        if (auto tree = trees_[key].lock()) return tree;
    }
    // Every file of the commit; listing the whole tree also refuses a repository whose
    // symlinks point outside it (Argo CD's check), and links to files become copies.
    auto files = git_.listFiles(repo, sha, "", true);
    std::vector<std::string> paths;
    paths.reserve(files.size());
    for (const auto& f : files) paths.push_back(f.path);
    std::vector<std::string> contents = git_.readFiles(repo, sha, paths);
    auto tree = std::make_shared<Tree>();
    tree->path = dir_ / (key + "-" + uniqueSuffix());
    fs::create_directories(tree->path);
    for (size_t i = 0; i < paths.size(); ++i) writeFile(tree->path / paths[i], contents[i]);
    std::lock_guard lock(mu_);
    trees_[key] = tree;
    for (auto it = trees_.begin(); it != trees_.end();)
        it = it->second.expired() && it->first != key ? trees_.erase(it) : std::next(it);
    return tree;
}

ChartCache::ChartCache(const Settings& settings, fs::path dir)
    : settings_(settings), dir_(std::move(dir)) {
    fs::create_directories(dir_);
}

fs::path ChartCache::versionDir(const std::string& repoURL, const std::string& chart,
                                const std::string& version) const {
    return dir_ / digest(repoURL + "\n" + chart).substr(0, 24) / version;
}

std::string ChartCache::resolve(const std::string& repoURL, const std::string& chart,
                                const std::string& constraint, const HelmCredentials& creds) {
    if (isExactVersion(constraint)) {
        pull(repoURL, chart, constraint, creds);
        return constraint;
    }
    const std::string wanted = constraint.empty() || constraint == "*" ? "" : constraint;
    fs::path dir = pullInto(repoURL, chart, wanted.empty() ? ">0.0.0-0" : wanted, creds);
    const std::string name = chart.substr(chart.rfind('/') + 1);
    std::string version;
    try {
        std::ifstream f(dir / name / "Chart.yaml");
        auto meta = yamlToJson(std::string(std::istreambuf_iterator<char>(f), {}));
        version = meta.value("version", "");
    } catch (const std::exception&) {
    }
    if (version.empty()) {
        fs::remove_all(dir);
        throw git::GitError(
            git::GitError::Kind::Other,
            "chart " + chart + " from " + git::scrubUrl(repoURL) + " has no version");
    }
    std::lock_guard lock(mu_);
    fs::path final = versionDir(repoURL, chart, version);
    if (!fs::exists(final)) {
        fs::create_directories(final.parent_path());
        fs::rename(dir, final);
    } else {
        fs::remove_all(dir);
    }
    return version;
}

fs::path ChartCache::pull(const std::string& repoURL, const std::string& chart,
                          const std::string& version, const HelmCredentials& creds) {
    fs::path final = versionDir(repoURL, chart, version);
    {
        std::lock_guard lock(mu_);
        if (fs::exists(final)) return final;
    }
    fs::path dir = pullInto(repoURL, chart, version, creds);
    std::lock_guard lock(mu_);
    if (!fs::exists(final)) {
        fs::create_directories(final.parent_path());
        fs::rename(dir, final);
    } else {
        fs::remove_all(dir);
    }
    return final;
}

fs::path ChartCache::pullInto(const std::string& repoURL, const std::string& chart,
                              const std::string& version, const HelmCredentials& creds) {
    ScratchDir scratch(dir_ / "tmp");
    fs::path out = dir_ / "tmp" / ("pull-" + uniqueSuffix());
    fs::create_directories(out);
    std::vector<std::string> argv = {settings_.helmPath, "pull"};
    if (isOciRepository(repoURL, creds.enableOCI)) {
        std::string base = repoURL.rfind("oci://", 0) == 0 ? repoURL.substr(6) : repoURL;
        while (!base.empty() && base.back() == '/') base.pop_back();
        argv.push_back("oci://" + base + "/" + chart);
        if (creds.plainHttp) argv.push_back("--plain-http");
    } else {
        argv.insert(argv.end(), {chart, "--repo", repoURL});
    }
    argv.insert(argv.end(), {"--version", version, "--untar", "--untardir", out.string()});
    if (!creds.username.empty()) argv.insert(argv.end(), {"--username", creds.username});
    if (!creds.password.empty()) argv.insert(argv.end(), {"--password", creds.password});
    if (!creds.tlsClientCertData.empty()) {
        writeFile(scratch.path / "cert.pem", creds.tlsClientCertData);
        writeFile(scratch.path / "key.pem", creds.tlsClientCertKey);
        argv.insert(argv.end(), {"--cert-file", (scratch.path / "cert.pem").string(), "--key-file",
                                 (scratch.path / "key.pem").string()});
    }
    if (creds.insecure) argv.push_back("--insecure-skip-tls-verify");
    if (creds.passCredentials) argv.push_back("--pass-credentials");
    ToolRun run;
    run.argv = argv;
    run.env = toolEnvironment(scratch.path / "home", settings_.helmPath);
    run.timeout = settings_.timeout;
    run.maxOutputBytes = settings_.maxOutputBytes;
    ToolResult result = runTool(run);
    if (result.exitCode != 0) {
        fs::remove_all(out);
        std::string err = result.err;
        while (!err.empty() && err.back() == '\n') err.pop_back();
        const bool missing = err.find("not found") != std::string::npos ||
                             err.find("no chart version") != std::string::npos;
        throw git::GitError(
            missing ? git::GitError::Kind::UnknownRevision : git::GitError::Kind::Unreachable,
            "helm pull " + chart + " " + version + " from " + git::scrubUrl(repoURL) + ": " +
                git::scrubUrl(err));
    }
    return out;
}

ScratchDir::ScratchDir(const fs::path& parent) {
    path = parent / ("s-" + uniqueSuffix());
    fs::create_directories(path);
}

ScratchDir::~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
}

}  // namespace sluice::source
