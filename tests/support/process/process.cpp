#include "process/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tempdir/tempdir.h"

namespace sluice::testing {
namespace {

std::string makeTempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    return tmpl;
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

int decodeStatus(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env)
    : dir_(makeTempDir()) {
    std::string out = dir_ + "/stdout", err = dir_ + "/stderr", in = dir_ + "/stdin";
    std::ofstream(in).close();
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    // The environment is built before fork: the child may only make async-signal-safe calls.
    std::vector<std::string> envStrings;
    for (char** e = environ; *e; ++e) {
        std::string entry = *e;
        if (!env.count(entry.substr(0, entry.find('=')))) envStrings.push_back(entry);
    }
    for (auto& [k, v] : env) envStrings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : envStrings) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        // Child: only async-signal-safe calls from here on, then exec.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        int fdIn = open(in.c_str(), O_RDONLY);
        int fdOut = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fdErr = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fdIn, 0);
        dup2(fdOut, 1);
        dup2(fdErr, 2);
        execvpe(args[0], args.data(), envp.data());
        _exit(127);
    }
}

ChildProcess::~ChildProcess() {
    if (running()) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

void ChildProcess::signal(int sig) {
    if (!exitCode_) ::kill(pid_, sig);
}

bool ChildProcess::running() {
    if (exitCode_) return false;
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        exitCode_ = decodeStatus(status);
        return false;
    }
    return r == 0;
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (running()) {
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return exitCode_;
}

std::string ChildProcess::stdoutText() const {
    return readFile(dir_ + "/stdout");
}
std::string ChildProcess::stderrText() const {
    return readFile(dir_ + "/stderr");
}

bool ChildProcess::waitForOutput(const std::string& text, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (stderrText().find(text) != std::string::npos ||
            stdoutText().find(text) != std::string::npos)
            return true;
        if (!running() || std::chrono::steady_clock::now() >= deadline) {
            return stderrText().find(text) != std::string::npos ||
                   stdoutText().find(text) != std::string::npos;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

RunResult runProcess(std::vector<std::string> argv, std::map<std::string, std::string> env,
                     std::chrono::milliseconds timeout, const std::string& stdinText) {
    TempDir dir;
    if (!stdinText.empty()) {
        // Feed stdin from a file through the shell-free path: exec via /bin/sh only to redirect.
        dir.write("stdin", stdinText);
        std::string cmd = "exec";
        for (const auto& a : argv) {
            std::string quoted = "'";
            for (char c : a) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
            cmd += " " + quoted + "'";
        }
        cmd += " < '" + dir.file("stdin") + "'";
        argv = {"/bin/sh", "-c", cmd};
    }
    ChildProcess p(std::move(argv), std::move(env));
    RunResult r;
    auto code = p.wait(timeout);
    if (!code) {
        p.signal(SIGKILL);
        code = p.wait(std::chrono::seconds(5));
    }
    r.exitCode = code.value_or(-1);
    r.out = p.stdoutText();
    r.err = p.stderrText();
    return r;
}

}  // namespace sluice::testing

namespace sluice::testing {

int freeLoopbackPort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        close(fd);
        throw std::runtime_error("cannot bind a loopback port");
    }
    close(fd);
    return ntohs(addr.sin_port);
}

}  // namespace sluice::testing
