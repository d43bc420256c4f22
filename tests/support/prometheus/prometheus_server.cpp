#include "prometheus/prometheus_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "process/process.h"
#include "tempdir/tempdir.h"

namespace sluice::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string quoted(const std::string& s) {
    return nlohmann::json(s).dump();  // a JSON string is a valid YAML double-quoted scalar
}

// Waits for the socket to become readable/writable within the deadline.
bool waitFd(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, events, 0};
        int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r > 0) return true;
        if (r < 0 && errno != EINTR) return false;
    }
}

}  // namespace

std::string findPrometheusBinary() {
    if (const char* env = std::getenv("SLUICE_PROMETHEUS"); env && *env)
        return ::access(env, X_OK) == 0 ? env : "";
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (dir.empty()) continue;
        std::string candidate = dir + "/prometheus";
        if (::access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate))
            return candidate;
    }
    return "";
}

std::string prometheusMissingMessage() {
    return "the prometheus binary is not installed: this test needs a real Prometheus server. "
           "Install the Debian package (`apt-get install prometheus`, or run "
           "scripts/install-deps.sh), or point SLUICE_PROMETHEUS at a prometheus binary.";
}

PrometheusServer::PrometheusServer(PrometheusOptions options)
    : options_(std::move(options)), dir_(std::make_unique<TempDir>()) {}

PrometheusServer::~PrometheusServer() {
    stop();
}

std::string PrometheusServer::url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
}

std::string PrometheusServer::config() const {
    auto interval = std::to_string(options_.scrapeInterval.count()) + "ms";
    std::ostringstream y;
    y << "global:\n"
      << "  scrape_interval: " << interval << "\n"
      << "  scrape_timeout: " << interval << "\n"
      << "  evaluation_interval: " << interval << "\n"
      << "scrape_configs:\n";
    std::map<std::string, std::vector<const ScrapeTarget*>> jobs;
    for (const auto& t : options_.targets) jobs[t.job].push_back(&t);
    for (const auto& [job, targets] : jobs) {
        y << "  - job_name: " << quoted(job) << "\n"
          << "    metrics_path: " << quoted(targets.front()->metricsPath) << "\n"
          << "    static_configs:\n";
        for (const ScrapeTarget* t : targets) {
            y << "      - targets: [" << quoted(t->address) << "]\n";
            if (!t->labels.empty()) {
                y << "        labels:\n";
                for (const auto& [k, v] : t->labels)
                    y << "          " << k << ": " << quoted(v) << "\n";
            }
        }
    }
    return y.str();
}

void PrometheusServer::start() {
    if (process_ && process_->running()) return;
    std::string binary = findPrometheusBinary();
    if (binary.empty()) throw std::runtime_error(prometheusMissingMessage());
    dir_->write("prometheus.yml", config());
    std::filesystem::create_directories(dir_->file("data"));

    bool restart = port_ != 0;
    // The free port is picked before Prometheus binds it; another process may take it in
    // between, so a fresh start retries with a new port.
    for (int attempt = 0;; ++attempt) {
        if (!restart) port_ = freeLoopbackPort();
        process_ = std::make_unique<ChildProcess>(std::vector<std::string>{
            binary,
            "--config.file=" + dir_->file("prometheus.yml"),
            "--storage.tsdb.path=" + dir_->file("data"),
            "--storage.tsdb.retention.time=1d",
            "--web.listen-address=127.0.0.1:" + std::to_string(port_),
            "--log.level=info",
        });
        auto deadline = Clock::now() + options_.readyTimeout;
        bool ready = false;
        while (Clock::now() < deadline) {
            if (!process_->running()) break;
            auto r = localHttpGet(port_, "/-/ready", std::chrono::seconds(2));
            if (r && r->status == 200) {
                ready = true;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        if (ready) return;
        std::string log = process_->stderrText();
        bool exited = !process_->running();
        process_.reset();  // kills it if still running
        lastLog_ = log;
        if (exited && !restart && attempt < 3 &&
            log.find("address already in use") != std::string::npos)
            continue;
        throw std::runtime_error(std::string("prometheus ") +
                                 (exited ? "exited during start-up" : "not ready in time") +
                                 " on port " + std::to_string(port_) + "; its log:\n" + log);
    }
}

void PrometheusServer::stop() {
    if (!process_) return;
    if (process_->running()) {
        process_->signal(SIGTERM);
        if (!process_->wait(std::chrono::seconds(10))) process_->signal(SIGKILL);
        process_->wait(std::chrono::seconds(10));
    }
    lastLog_ = process_->stderrText();
    process_.reset();
}

bool PrometheusServer::running() {
    return process_ && process_->running();
}

std::string PrometheusServer::log() const {
    return process_ ? process_->stderrText() : lastLog_;
}

bool PrometheusServer::waitForSeries(const std::string& promql, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        auto r = localHttpGet(port_, "/api/v1/query?query=" + urlEncode(promql));
        if (r && r->status == 200) {
            auto doc = nlohmann::json::parse(r->body, nullptr, false);
            if (!doc.is_discarded() && doc.value("status", "") == "success") {
                const auto& data = doc["data"];
                if (data.value("resultType", "") == "scalar") return true;
                if (data.contains("result") && data["result"].is_array() && !data["result"].empty())
                    return true;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

bool PrometheusServer::waitForTargetsUp(std::chrono::milliseconds timeout) {
    return waitForSeries("count(up == 1) >= " + std::to_string(options_.targets.size()), timeout);
}

std::optional<LocalHttpResponse> localHttpGet(int port, const std::string& target,
                                              std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::nullopt;
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        if (errno != EINPROGRESS || !waitFd(fd, POLLOUT, deadline)) return std::nullopt;
        int err = 0;
        socklen_t len = sizeof(err);
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
            return std::nullopt;
    }
    std::string request = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1:" + std::to_string(port) +
                          "\r\nConnection: close\r\n\r\n";
    size_t sent = 0;
    while (sent < request.size()) {
        if (!waitFd(fd, POLLOUT, deadline)) return std::nullopt;
        ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) return std::nullopt;
        if (n > 0) sent += static_cast<size_t>(n);
    }
    std::string raw;
    char buf[16384];
    for (;;) {
        if (!waitFd(fd, POLLIN, deadline)) return std::nullopt;
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            return std::nullopt;
        }
        raw.append(buf, static_cast<size_t>(n));
    }
    // "HTTP/1.x NNN reason\r\n...headers...\r\n\r\nbody"
    size_t sp = raw.find(' ');
    size_t headerEnd = raw.find("\r\n\r\n");
    if (raw.rfind("HTTP/", 0) != 0 || sp == std::string::npos || headerEnd == std::string::npos)
        return std::nullopt;
    LocalHttpResponse out;
    out.status = std::atoi(raw.c_str() + sp + 1);
    out.body = raw.substr(headerEnd + 4);
    return out;
}

std::string urlEncode(const std::string& value) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : value) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

}  // namespace sluice::testing
