#include "exec_credential.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <vector>

#include "sluice/kube/errors.h"
#include "sluice/util/base64.h"

extern char** environ;

namespace sluice::kube {

using nlohmann::json;

namespace detail {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxStdout = 1 << 20;   // an ExecCredential is a few KiB at most
constexpr size_t kMaxStderr = 64 << 10;  // only its last line is reported

// Closes on destruction; -1 = none.
struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    void reset() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

// Reaps the child on every way out; kills its process group first unless it was reaped.
struct Child {
    pid_t pid = -1;
    bool reaped = false;
    int status = 0;
    ~Child() {
        if (pid > 0 && !reaped) {
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            wait();
        }
    }
    void wait() {
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        reaped = true;
    }
    // True once it has exited.
    bool tryWait() {
        pid_t r;
        while ((r = ::waitpid(pid, &status, WNOHANG)) < 0 && errno == EINTR) {
        }
        if (r == pid || r < 0) reaped = true;
        return reaped;
    }
};

std::string lastLine(const std::string& text) {
    size_t end = text.find_last_not_of(" \t\r\n");
    if (end == std::string::npos) return {};
    size_t begin = text.find_last_of('\n', end);
    begin = begin == std::string::npos ? 0 : begin + 1;
    return text.substr(begin, end - begin + 1);
}

bool isExecutableFile(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           ::access(path.c_str(), X_OK) == 0;
}

// As Go's exec.LookPath: a name with a slash is used as is, a bare one is searched in $PATH.
std::optional<std::string> lookPath(const std::string& command) {
    if (command.find('/') != std::string::npos) return command;
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "";
    size_t pos = 0;
    while (pos <= dirs.size()) {
        size_t colon = dirs.find(':', pos);
        if (colon == std::string::npos) colon = dirs.size();
        std::string dir = dirs.substr(pos, colon - pos);
        if (dir.empty()) dir = ".";
        std::string candidate = dir + "/" + command;
        if (isExecutableFile(candidate)) return candidate;
        pos = colon + 1;
    }
    return std::nullopt;
}

}  // namespace

bool isSupportedExecApiVersion(const std::string& apiVersion) {
    return apiVersion.empty() || apiVersion == kExecApiV1 || apiVersion == kExecApiV1beta1;
}

std::string effectiveExecApiVersion(const std::string& apiVersion) {
    return apiVersion.empty() ? std::string(kExecApiV1beta1) : apiVersion;
}

std::optional<std::chrono::system_clock::time_point> parseRfc3339(const std::string& s) {
    using namespace std::chrono;
    auto digits = [&](size_t pos, size_t n, int& out) {
        if (pos + n > s.size()) return false;
        out = 0;
        for (size_t i = pos; i < pos + n; ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
            out = out * 10 + (s[i] - '0');
        }
        return true;
    };
    int Y, M, D, h, m, sec;
    if (!digits(0, 4, Y) || s.size() < 20 || s[4] != '-' || !digits(5, 2, M) || s[7] != '-' ||
        !digits(8, 2, D) || (s[10] != 'T' && s[10] != 't') || !digits(11, 2, h) || s[13] != ':' ||
        !digits(14, 2, m) || s[16] != ':' || !digits(17, 2, sec))
        return std::nullopt;
    year_month_day ymd{year{Y}, month{static_cast<unsigned>(M)}, day{static_cast<unsigned>(D)}};
    if (!ymd.ok() || h > 23 || m > 59 || sec > 60) return std::nullopt;
    size_t pos = 19;
    nanoseconds frac{0};
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        size_t start = pos;
        int64_t scale = 100000000;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            frac += nanoseconds((s[pos] - '0') * scale);
            scale /= 10;
            ++pos;
        }
        if (pos == start) return std::nullopt;
    }
    minutes offset{0};
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        int oh, om;
        if (!digits(pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
            !digits(pos + 4, 2, om) || oh > 23 || om > 59)
            return std::nullopt;
        offset = hours(oh) + minutes(om);
        if (s[pos] == '-') offset = -offset;
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;
    // In seconds first: system_clock (nanoseconds) ends in 2262, a plugin may say 9999.
    sys_seconds secs = sys_days(ymd) + hours(h) + minutes(m) + seconds(sec) - offset;
    constexpr auto kMax = system_clock::time_point::max();
    constexpr auto kMin = system_clock::time_point::min();
    if (secs >= floor<seconds>(kMax) - seconds(1)) return kMax;
    if (secs <= ceil<seconds>(kMin) + seconds(1)) return kMin;
    return time_point_cast<system_clock::duration>(secs) +
           duration_cast<system_clock::duration>(frac);
}

std::string execInfo(const ExecConfig& exec, const ClusterConfig& cluster) {
    json spec = {{"interactive", false}};
    if (exec.provideClusterInfo) {
        json c = {{"server", cluster.server}};
        if (!cluster.tlsServerName.empty()) c["tls-server-name"] = cluster.tlsServerName;
        if (cluster.insecureSkipTlsVerify) c["insecure-skip-tls-verify"] = true;
        if (!cluster.caPem.empty()) c["certificate-authority-data"] = base64Encode(cluster.caPem);
        spec["cluster"] = std::move(c);
    }
    json info = {{"apiVersion", effectiveExecApiVersion(exec.apiVersion)},
                 {"kind", "ExecCredential"},
                 {"spec", std::move(spec)}};
    return info.dump();
}

ExecCredentialResult runExecPlugin(const ExecConfig& exec, const ClusterConfig& cluster) {
    const std::string who = "exec credential plugin \"" + exec.command + "\": ";
    auto fail = [&](const std::string& msg) -> void { throw TransportError(who + msg); };
    if (exec.command.empty()) fail("no command");
    const std::string apiVersion = effectiveExecApiVersion(exec.apiVersion);
    if (!isSupportedExecApiVersion(apiVersion))
        fail("unsupported apiVersion \"" + apiVersion + "\" (want " + kExecApiV1 + " or " +
             kExecApiV1beta1 + ")");
    auto timeout = exec.timeout.count() > 0 ? exec.timeout : std::chrono::milliseconds(30000);

    auto path = lookPath(exec.command);
    std::string hint = exec.installHint.empty() ? "" : " (" + exec.installHint + ")";
    if (!path) fail("executable not found in $PATH" + hint);

    // Everything the child needs is built before spawning.
    std::vector<std::string> argStrings;
    argStrings.push_back(exec.command);
    argStrings.insert(argStrings.end(), exec.args.begin(), exec.args.end());
    std::set<std::string> overridden{"KUBERNETES_EXEC_INFO"};
    for (const auto& e : exec.env) overridden.insert(e.name);
    std::vector<std::string> envStrings;
    for (char** e = environ; e && *e; ++e) {
        std::string entry = *e;
        if (!overridden.count(entry.substr(0, entry.find('=')))) envStrings.push_back(entry);
    }
    for (const auto& e : exec.env) envStrings.push_back(e.name + "=" + e.value);
    envStrings.push_back("KUBERNETES_EXEC_INFO=" + execInfo(exec, cluster));
    std::vector<char*> argv, envp;
    for (auto& a : argStrings) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : envStrings) envp.push_back(e.data());
    envp.push_back(nullptr);

    int outFds[2], errFds[2];
    if (::pipe2(outFds, O_CLOEXEC) != 0) fail(std::string("pipe: ") + std::strerror(errno));
    Fd outRead(outFds[0]), outWrite(outFds[1]);
    if (::pipe2(errFds, O_CLOEXEC) != 0) fail(std::string("pipe: ") + std::strerror(errno));
    Fd errRead(errFds[0]), errWrite(errFds[1]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, outWrite.fd, 1);
    posix_spawn_file_actions_adddup2(&actions, errWrite.fd, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Its own process group, so that a timeout kills whatever it started too (a script's
    // children would otherwise keep the pipes open). Signal mask and dispositions as for a
    // fresh process.
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) sigaddset(&defaults, sig);
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    Child child;
    int rc = ::posix_spawn(&child.pid, path->c_str(), &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        child.pid = -1;
        if (rc == ENOENT) fail("executable " + *path + " not found" + hint);
        fail("cannot run " + *path + ": " + std::strerror(rc));
    }
    outWrite.reset();
    errWrite.reset();

    const auto deadline = Clock::now() + timeout;
    auto remainingMs = [&] {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        return std::max<int64_t>(0, left.count() + 1);
    };
    auto timedOut = [&] {
        fail("timed out after " + std::to_string(timeout.count()) + "ms (killed)");
    };
    std::string out, err;
    bool outTooLarge = false;
    char buf[16384];
    while (outRead.fd >= 0 || errRead.fd >= 0) {
        pollfd fds[2];
        nfds_t n = 0;
        if (outRead.fd >= 0) fds[n++] = {outRead.fd, POLLIN, 0};
        if (errRead.fd >= 0) fds[n++] = {errRead.fd, POLLIN, 0};
        int ready = ::poll(fds, n, static_cast<int>(std::min<int64_t>(remainingMs(), 1000)));
        if (ready < 0 && errno != EINTR) fail(std::string("poll: ") + std::strerror(errno));
        if (Clock::now() >= deadline) timedOut();  // ~Child kills and reaps it
        if (ready <= 0) continue;
        for (nfds_t i = 0; i < n; ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            Fd& fd = fds[i].fd == outRead.fd ? outRead : errRead;
            ssize_t got = ::read(fd.fd, buf, sizeof buf);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) {
                fd.reset();
                continue;
            }
            if (&fd == &outRead) {
                if (out.size() + got > kMaxStdout)
                    outTooLarge = true;
                else
                    out.append(buf, got);
            } else {
                err.append(buf, got);
                if (err.size() > kMaxStderr) err.erase(0, err.size() - kMaxStderr);
            }
        }
    }
    while (!child.tryWait()) {
        if (Clock::now() >= deadline) timedOut();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }

    int status = child.status;
    std::string errLine = lastLine(err);
    if (WIFSIGNALED(status))
        fail("killed by signal " + std::to_string(WTERMSIG(status)) +
             (errLine.empty() ? "" : ": " + errLine));
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        fail("exit status " + std::to_string(WEXITSTATUS(status)) +
             (errLine.empty() ? "" : ": " + errLine));
    if (outTooLarge) fail("printed more than " + std::to_string(kMaxStdout) + " bytes");

    // The output holds the credential: no part of it goes into a message.
    json cred = json::parse(out, nullptr, false);
    if (cred.is_discarded())
        fail("printed invalid JSON (" + std::to_string(out.size()) +
             " bytes on stdout), want an ExecCredential");
    if (!cred.is_object()) fail("printed JSON that is not an object, want an ExecCredential");
    auto strField = [](const json& obj, const char* key) -> std::string {
        auto it = obj.find(key);
        return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    std::string gotKind = strField(cred, "kind");
    if (gotKind != "ExecCredential") fail("printed kind \"" + gotKind + "\", want ExecCredential");
    std::string gotVersion = strField(cred, "apiVersion");
    if (gotVersion != apiVersion)
        fail("printed apiVersion \"" + gotVersion + "\", want \"" + apiVersion + "\"");
    auto status_ = cred.find("status");
    if (status_ == cred.end() || !status_->is_object())
        fail("printed an ExecCredential without status");
    ExecCredentialResult result;
    result.token = strField(*status_, "token");
    if (result.token.empty()) {
        if (!strField(*status_, "clientCertificateData").empty() ||
            !strField(*status_, "clientKeyData").empty())
            fail(
                "returned a client certificate (status.clientCertificateData/clientKeyData); "
                "client certificates from exec plugins are not supported, only status.token");
        fail("printed an ExecCredential without status.token");
    }
    auto exp = status_->find("expirationTimestamp");
    if (exp != status_->end() && !exp->is_null()) {
        std::optional<std::chrono::system_clock::time_point> t;
        if (exp->is_string()) t = parseRfc3339(exp->get<std::string>());
        if (!t) fail("status.expirationTimestamp is not an RFC 3339 time");
        result.expiry = t;
    }
    return result;
}

}  // namespace detail

ExecConfig execConfigFromArgo(const json& j) {
    auto fail = [](const std::string& field, const std::string& msg) {
        throw ConfigError("execProviderConfig" + field + ": " + msg);
    };
    if (!j.is_object()) fail("", "not an object");
    auto str = [&](const char* key) -> std::string {
        auto it = j.find(key);
        if (it == j.end() || it->is_null()) return {};
        if (!it->is_string()) fail(std::string(".") + key, "not a string");
        return it->get<std::string>();
    };
    ExecConfig e;
    e.command = str("command");
    if (e.command.empty()) fail(".command", "missing");
    if (auto it = j.find("args"); it != j.end() && !it->is_null()) {
        if (!it->is_array()) fail(".args", "not a list");
        for (size_t i = 0; i < it->size(); ++i) {
            if (!(*it)[i].is_string()) fail(".args[" + std::to_string(i) + "]", "not a string");
            e.args.push_back((*it)[i].get<std::string>());
        }
    }
    if (auto it = j.find("env"); it != j.end() && !it->is_null()) {
        if (!it->is_object()) fail(".env", "not a map of names to values");
        for (const auto& [name, value] : it->items()) {
            if (!value.is_string()) fail(".env." + name, "not a string");
            if (name.empty() || name.find('=') != std::string::npos)
                fail(".env", "invalid variable name \"" + name + "\"");
            e.env.push_back({name, value.get<std::string>()});
        }
    }
    e.apiVersion = str("apiVersion");
    if (!detail::isSupportedExecApiVersion(e.apiVersion))
        fail(".apiVersion", "\"" + e.apiVersion + "\" is not " + detail::kExecApiV1 + " or " +
                                detail::kExecApiV1beta1);
    e.installHint = str("installHint");
    // Argo CD runs the plugin without a terminal, as Never.
    e.interactiveMode = "Never";
    return e;
}

}  // namespace sluice::kube
