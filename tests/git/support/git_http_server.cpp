#include "git_http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "test_repo.h"

extern char** environ;

#include "sluice/util/base64.h"

namespace sluice::testing {
namespace {

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

bool sendAll(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

// Buffered reads from a socket with a receive timeout already set.
class Reader {
  public:
    explicit Reader(int fd) : fd_(fd) {}
    bool fill() {
        char buf[8192];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return false;
        data_.append(buf, static_cast<size_t>(n));
        return true;
    }
    bool line(std::string& out) {  // one CRLF-terminated line, without the CRLF
        size_t pos;
        while ((pos = data_.find("\r\n")) == std::string::npos)
            if (!fill()) return false;
        out = data_.substr(0, pos);
        data_.erase(0, pos + 2);
        return true;
    }
    bool bytes(size_t n, std::string& out) {
        while (data_.size() < n)
            if (!fill()) return false;
        out.append(data_, 0, n);
        data_.erase(0, n);
        return true;
    }

  private:
    int fd_;
    std::string data_;
};

std::string backendPath() {
    std::string exec = sh("/", "git --exec-path");
    while (!exec.empty() && (exec.back() == '\n' || exec.back() == '\r')) exec.pop_back();
    return exec + "/git-http-backend";
}

struct CgiResult {
    int status = 200;
    std::string statusText = "OK";
    std::vector<std::string> headers;
    std::string body;
};

CgiResult runCgi(const std::vector<std::string>& env, const std::string& body) {
    // The request body goes through a temporary file, so the child never blocks on a pipe
    // we are not reading yet.
    FILE* in = tmpfile();
    if (!in) throw std::runtime_error("tmpfile failed");
    fwrite(body.data(), 1, body.size(), in);
    fflush(in);
    rewind(in);
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");

    static const std::string backend = backendPath();
    std::vector<char*> envp;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    char* argv[] = {const_cast<char*>(backend.c_str()), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fileno(in), 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    // Its complaints (e.g. "Not a git repository") show up as HTTP statuses anyway.
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, backend.c_str(), &fa, nullptr, argv, envp.data());
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    fclose(in);
    if (rc != 0) {
        close(out[0]);
        throw std::runtime_error("cannot start git-http-backend");
    }
    std::string raw;
    char buf[8192];
    ssize_t n;
    while ((n = read(out[0], buf, sizeof buf)) > 0) raw.append(buf, static_cast<size_t>(n));
    close(out[0]);
    int status;
    waitpid(pid, &status, 0);

    CgiResult r;
    size_t sep = raw.find("\r\n\r\n");
    size_t sepLen = 4;
    if (sep == std::string::npos) {
        sep = raw.find("\n\n");
        sepLen = 2;
    }
    if (sep == std::string::npos) {
        r.status = 500;
        r.statusText = "Internal Server Error";
        return r;
    }
    std::istringstream hs(raw.substr(0, sep));
    std::string h;
    while (std::getline(hs, h)) {
        if (!h.empty() && h.back() == '\r') h.pop_back();
        if (h.empty()) continue;
        if (lower(h.substr(0, 7)) == "status:") {
            std::istringstream st(h.substr(7));
            st >> r.status;
            std::getline(st >> std::ws, r.statusText);
        } else {
            r.headers.push_back(h);
        }
    }
    r.body = raw.substr(sep + sepLen);
    return r;
}

}  // namespace

GitHttpServer::GitHttpServer(std::filesystem::path projectRoot, std::string user,
                             std::string password)
    : root_(std::move(projectRoot)), user_(std::move(user)), password_(std::move(password)) {
    listenFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listenFd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;  // the kernel picks a free port
    socklen_t len = sizeof addr;
    if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listenFd_, 16) != 0 ||
        ::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        throw std::runtime_error("cannot listen on 127.0.0.1");
    port_ = ntohs(addr.sin_port);
    if (pipe2(stopPipe_, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    thread_ = std::thread([this] { serve(); });
}

GitHttpServer::~GitHttpServer() {
    if (write(stopPipe_[1], "x", 1) != 1) {
        // The serving thread also stops on its poll timeout.
    }
    if (thread_.joinable()) thread_.join();
    close(listenFd_);
    close(stopPipe_[0]);
    close(stopPipe_[1]);
}

std::string GitHttpServer::url(const std::string& repoName) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + repoName;
}

std::vector<std::string> GitHttpServer::authorizations() const {
    std::lock_guard lock(mu_);
    return authorizations_;
}

int GitHttpServer::requests() const {
    std::lock_guard lock(mu_);
    return requests_;
}

void GitHttpServer::serve() {
    for (;;) {
        pollfd fds[2] = {{listenFd_, POLLIN, 0}, {stopPipe_[0], POLLIN, 0}};
        if (::poll(fds, 2, 60'000) <= 0) return;  // idle for a minute: a test went wrong
        if (fds[1].revents) return;
        int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        timeval tv{10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        try {
            handle(fd);
        } catch (const std::exception&) {
            // A malformed request or a failed CGI run: drop the connection, keep serving.
        }
        close(fd);
    }
}

void GitHttpServer::handle(int fd) {
    Reader in(fd);
    std::string requestLine, line;
    if (!in.line(requestLine)) return;
    std::istringstream rl(requestLine);
    std::string method, target, version;
    rl >> method >> target >> version;

    std::vector<std::pair<std::string, std::string>> headers;
    while (in.line(line) && !line.empty()) {
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        headers.emplace_back(lower(line.substr(0, colon)), value);
    }
    auto header = [&](const std::string& name) {
        for (const auto& [k, v] : headers)
            if (k == name) return v;
        return std::string();
    };

    std::string body;
    if (lower(header("transfer-encoding")) == "chunked") {
        for (;;) {
            if (!in.line(line)) return;
            size_t size = std::stoul(line, nullptr, 16);
            if (size == 0) {
                while (in.line(line) && !line.empty()) {
                }
                break;
            }
            if (!in.bytes(size, body) || !in.line(line)) return;
        }
    } else if (!header("content-length").empty()) {
        if (!in.bytes(std::stoul(header("content-length")), body)) return;
    }

    std::string auth = header("authorization");
    {
        std::lock_guard lock(mu_);
        authorizations_.push_back(auth);
        ++requests_;
    }
    if (!user_.empty() && auth != "Basic " + base64Encode(user_ + ":" + password_)) {
        sendAll(fd,
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n"
                "Content-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }

    auto q = target.find('?');
    std::vector<std::string> env = {
        "GIT_PROJECT_ROOT=" + root_.string(),
        "GIT_HTTP_EXPORT_ALL=1",
        "GIT_CONFIG_GLOBAL=/dev/null",
        "GIT_CONFIG_NOSYSTEM=1",
        "PATH_INFO=" + target.substr(0, q),
        "QUERY_STRING=" + (q == std::string::npos ? "" : target.substr(q + 1)),
        "REQUEST_METHOD=" + method,
        "CONTENT_TYPE=" + header("content-type"),
        "CONTENT_LENGTH=" + std::to_string(body.size()),
        "REMOTE_USER=" + user_,
        "REMOTE_ADDR=127.0.0.1",
        "SERVER_PROTOCOL=HTTP/1.1",
        "GATEWAY_INTERFACE=CGI/1.1",
        "HTTP_CONTENT_ENCODING=" + header("content-encoding"),
        "HTTP_GIT_PROTOCOL=" + header("git-protocol"),
    };
    if (const char* path = std::getenv("PATH")) env.push_back(std::string("PATH=") + path);
    CgiResult r = runCgi(env, body);
    std::string resp = "HTTP/1.1 " + std::to_string(r.status) + " " + r.statusText + "\r\n";
    for (const auto& h : r.headers) resp += h + "\r\n";
    resp += "Content-Length: " + std::to_string(r.body.size()) + "\r\nConnection: close\r\n\r\n";
    resp += r.body;
    sendAll(fd, resp);
}

}  // namespace sluice::testing
