#include "sluice/source/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sluice/render/render.h"

namespace sluice::source {
namespace {

using Clock = std::chrono::steady_clock;

std::string baseName(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

struct Pipe {
    int fd[2] = {-1, -1};
    Pipe() {
        if (pipe2(fd, O_CLOEXEC) != 0)
            throw std::runtime_error("pipe: " + std::string(strerror(errno)));
    }
    ~Pipe() {
        closeEnd(0);
        closeEnd(1);
    }
    void closeEnd(int i) {
        if (fd[i] >= 0) close(fd[i]);
        fd[i] = -1;
    }
};

// Spawns argv in its own process group with the three pipes as stdio.
pid_t spawn(const ToolRun& run, const std::string& exe, Pipe& in, Pipe& out, Pipe& err) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in.fd[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err.fd[1], 2);
    if (!run.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, run.cwd.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0);  // a timeout kills the tool's children too
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> argv;
    for (const auto& a : run.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<std::string> envStrings;
    for (const auto& [k, v] : run.env) envStrings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : envStrings) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, exe.c_str(), &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        throw render::RenderError(baseName(run.argv[0]), 0,
                                  "cannot run " + exe + ": " + strerror(rc));
    return pid;
}

int waitExit(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

}  // namespace

std::string findExecutable(const std::string& name) {
    if (name.empty()) return {};
    if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
    const char* path = getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    while (start <= dirs.size()) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos) end = dirs.size();
        std::string candidate = dirs.substr(start, end - start) + "/" + name;
        if (end > start && access(candidate.c_str(), X_OK) == 0) return candidate;
        start = end + 1;
    }
    return {};
}

std::map<std::string, std::string> toolEnvironment(const std::filesystem::path& home,
                                                   const std::string& toolPath) {
    std::string path = "/usr/local/bin:/usr/bin:/bin";
    auto slash = toolPath.rfind('/');
    if (slash != std::string::npos) path = toolPath.substr(0, slash) + ":" + path;
    const std::string h = home.string();
    return {{"PATH", path},
            {"HOME", h},
            {"XDG_CONFIG_HOME", h + "/.config"},
            {"XDG_CACHE_HOME", h + "/.cache"},
            {"XDG_DATA_HOME", h + "/.local/share"},
            {"HELM_CONFIG_HOME", h + "/.config/helm"},
            {"HELM_CACHE_HOME", h + "/.cache/helm"},
            {"HELM_DATA_HOME", h + "/.local/share/helm"},
            // No cluster is ever contacted by a render.
            {"KUBECONFIG", "/dev/null"},
            {"LANG", "C.UTF-8"}};
}

ToolResult runTool(const ToolRun& run) {
    if (run.argv.empty()) throw std::invalid_argument("runTool: empty argv");
    const std::string tool = baseName(run.argv[0]);
    const std::string exe = findExecutable(run.argv[0]);
    if (exe.empty()) throw render::RenderError(tool, 0, tool + " not found at " + run.argv[0]);
    Pipe in, out, err;
    pid_t pid = spawn(run, exe, in, out, err);
    in.closeEnd(0);
    out.closeEnd(1);
    err.closeEnd(1);
    fcntl(in.fd[1], F_SETFL, O_NONBLOCK);
    if (run.stdinText.empty()) in.closeEnd(1);

    ToolResult result;
    size_t written = 0;
    const auto deadline = Clock::now() + run.timeout;
    std::string failure;
    char buf[65536];
    while (out.fd[0] >= 0 || err.fd[0] >= 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            failure = "timed out after " +
                      std::to_string(run.timeout.count() / 1000.0).substr(0, 5) + " s";
            break;
        }
        pollfd fds[3] = {{out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}, {in.fd[1], POLLOUT, 0}};
        int n = poll(fds, 3, static_cast<int>(std::min<long long>(left.count(), 1000)));
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            Pipe& p = i == 0 ? out : err;
            if (p.fd[0] < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t got = read(p.fd[0], buf, sizeof buf);
            if (got <= 0) {
                if (got < 0 && errno == EINTR) continue;
                p.closeEnd(0);
                continue;
            }
            (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(got));
        }
        if (result.out.size() + result.err.size() > run.maxOutputBytes) {
            failure = "wrote more than " + std::to_string(run.maxOutputBytes >> 20) + " MiB";
            break;
        }
        if (in.fd[1] >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w =
                write(in.fd[1], run.stdinText.data() + written, run.stdinText.size() - written);
            if (w > 0) written += static_cast<size_t>(w);
            if (w < 0 && errno != EAGAIN && errno != EINTR) written = run.stdinText.size();
            if (written >= run.stdinText.size()) in.closeEnd(1);
        }
    }
    if (!failure.empty()) {
        kill(-pid, SIGKILL);
        waitExit(pid);
        throw render::RenderError(tool, 0, tool + " " + failure);
    }
    result.exitCode = waitExit(pid);
    return result;
}

}  // namespace sluice::source
