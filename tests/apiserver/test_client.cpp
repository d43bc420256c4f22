#include "test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace sluice::testing {

class Connection {
  public:
    Connection(const std::string& host, int port, bool tls, const std::string& caPem,
               const std::string& certPem = "", const std::string& keyPem = "") {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(fd_);
            fd_ = -1;
            return;
        }
        if (!tls) return;
        ctx_ = SSL_CTX_new(TLS_client_method());
        BIO* bio = BIO_new_mem_buf(caPem.data(), static_cast<int>(caPem.size()));
        X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
        BIO_free(bio);
        if (ca) {
            X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), ca);
            X509_free(ca);
        }
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
        if (!certPem.empty()) {
            BIO* cb = BIO_new_mem_buf(certPem.data(), static_cast<int>(certPem.size()));
            X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
            BIO_free(cb);
            BIO* kb = BIO_new_mem_buf(keyPem.data(), static_cast<int>(keyPem.size()));
            EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
            BIO_free(kb);
            if (cert) SSL_CTX_use_certificate(ctx_, cert);
            if (key) SSL_CTX_use_PrivateKey(ctx_, key);
            X509_free(cert);
            EVP_PKEY_free(key);
        }
        ssl_ = SSL_new(ctx_);
        SSL_set_fd(ssl_, fd_);
        if (SSL_connect(ssl_) != 1) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    ~Connection() {
        if (ssl_) SSL_free(ssl_);
        if (ctx_) SSL_CTX_free(ctx_);
        if (fd_ >= 0) ::close(fd_);
    }
    bool ok() const { return fd_ >= 0; }
    bool writeAll(const std::string& s) {
        size_t off = 0;
        while (off < s.size()) {
            int n =
                ssl_ ? SSL_write(ssl_, s.data() + off, static_cast<int>(s.size() - off))
                     : static_cast<int>(::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL));
            if (n <= 0) return false;
            off += static_cast<size_t>(n);
        }
        return true;
    }
    // Appends what arrives within timeout. -1: closed/error, 0: timeout, >0 bytes.
    int readSome(std::string& out, std::chrono::milliseconds timeout) {
        if (!(ssl_ && SSL_pending(ssl_) > 0)) {
            pollfd p{fd_, POLLIN, 0};
            int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
            if (r == 0) return 0;
            if (r < 0) return -1;
        }
        char buf[16384];
        int n = ssl_ ? SSL_read(ssl_, buf, sizeof buf)
                     : static_cast<int>(::recv(fd_, buf, sizeof buf, 0));
        if (n <= 0) return -1;
        out.append(buf, static_cast<size_t>(n));
        return n;
    }

  private:
    int fd_ = -1;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
};

namespace {

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Parses the head in buf (up to CRLFCRLF); removes it from buf.
bool parseHead(std::string& buf, ClientResponse& r) {
    size_t end = buf.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    std::string head = buf.substr(0, end);
    buf.erase(0, end + 4);
    size_t lineEnd = head.find("\r\n");
    std::string status = head.substr(0, lineEnd);
    r.status = std::stoi(status.substr(status.find(' ') + 1, 3));
    size_t pos = lineEnd == std::string::npos ? head.size() : lineEnd + 2;
    while (pos < head.size()) {
        size_t e = head.find("\r\n", pos);
        if (e == std::string::npos) e = head.size();
        std::string line = head.substr(pos, e - pos);
        size_t colon = line.find(':');
        if (colon != std::string::npos) {
            std::string v = line.substr(colon + 1);
            v.erase(0, v.find_first_not_of(' '));
            r.headers[lower(line.substr(0, colon))] = v;
        }
        pos = e + 2;
    }
    return true;
}

// De-chunks what is complete in raw into out. Returns true when the last chunk was seen.
bool dechunk(std::string& raw, std::string& out) {
    while (true) {
        size_t e = raw.find("\r\n");
        if (e == std::string::npos) return false;
        size_t size = std::stoul(raw.substr(0, e), nullptr, 16);
        if (size == 0) return true;
        if (raw.size() < e + 2 + size + 2) return false;
        out += raw.substr(e + 2, size);
        raw.erase(0, e + 2 + size + 2);
    }
}

}  // namespace

TestClient::TestClient(const ApiServer& server, std::string token)
    : host_("127.0.0.1"),
      port_(server.port()),
      tls_(!server.caPem().empty()),
      caPem_(server.caPem()),
      token_(std::move(token)) {}

static std::string buildRequest(const std::string& method, const std::string& target,
                                const std::string& body, const std::string& contentType,
                                const std::map<std::string, std::string>& headers,
                                const std::string& token) {
    std::string req =
        method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    bool hasUa = false, hasAccept = false;
    for (const auto& [k, v] : headers) {
        req += k + ": " + v + "\r\n";
        hasUa |= lower(k) == "user-agent";
        hasAccept |= lower(k) == "accept";
    }
    if (!hasUa) req += "User-Agent: apiserver-test/1.0\r\n";
    if (!hasAccept) req += "Accept: application/json\r\n";
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
        req += "Content-Type: " + contentType +
               "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    return req + "\r\n" + body;
}

ClientResponse TestClient::request(const std::string& method, const std::string& target,
                                   const std::string& body, const std::string& contentType,
                                   std::map<std::string, std::string> headers) {
    ClientResponse r;
    Connection c(host_, port_, tls_, caPem_, certPem_, keyPem_);
    if (!c.ok() || !c.writeAll(buildRequest(method, target, body, contentType, headers, token_)))
        return r;
    std::string buf;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    bool headDone = false;
    while (std::chrono::steady_clock::now() < deadline) {
        int n = c.readSome(buf, std::chrono::milliseconds(200));
        if (!headDone && parseHead(buf, r)) headDone = true;
        if (headDone) {
            if (lower(r.header("transfer-encoding")) == "chunked") {
                std::string raw = buf, out;
                if (dechunk(raw, out)) {
                    r.body = out;
                    return r;
                }
            } else if (!r.header("content-length").empty()) {
                size_t len = std::stoul(r.header("content-length"));
                if (buf.size() >= len) {
                    r.body = buf.substr(0, len);
                    return r;
                }
            }
        }
        if (n < 0) break;
    }
    if (headDone && r.header("content-length").empty() &&
        lower(r.header("transfer-encoding")) != "chunked") {
        r.body = buf;  // delimited by close
        return r;
    }
    r.status = 0;  // incomplete: cut connection
    return r;
}

TestClient::Stream::~Stream() = default;

std::unique_ptr<TestClient::Stream> TestClient::stream(const std::string& target,
                                                       std::map<std::string, std::string> headers) {
    auto s = std::unique_ptr<Stream>(new Stream());
    s->conn_ = std::make_unique<Connection>(host_, port_, tls_, caPem_, certPem_, keyPem_);
    if (!s->conn_->ok() ||
        !s->conn_->writeAll(buildRequest("GET", target, "", "", headers, token_))) {
        s->ended_ = true;
        return s;
    }
    ClientResponse head;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        int n = s->conn_->readSome(s->buf_, std::chrono::milliseconds(100));
        if (parseHead(s->buf_, head)) {
            s->status = head.status;
            if (lower(head.header("transfer-encoding")) != "chunked") {
                s->lines_ = s->buf_;  // plain response (an error Status)
                s->buf_.clear();
                s->ended_ = true;
            }
            return s;
        }
        if (n < 0) break;
    }
    s->ended_ = true;
    return s;
}

std::optional<nlohmann::json> TestClient::Stream::next(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (!buf_.empty() && !cleanEnd_ && dechunk(buf_, lines_)) {
            cleanEnd_ = true;
            ended_ = true;
        }
        size_t nl = lines_.find('\n');
        if (nl != std::string::npos) {
            std::string line = lines_.substr(0, nl);
            lines_.erase(0, nl + 1);
            return nlohmann::json::parse(line, nullptr, false);
        }
        if (ended_) return std::nullopt;
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return std::nullopt;
        int n = conn_->readSome(
            buf_, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
        if (n < 0) ended_ = true;
    }
}

}  // namespace sluice::testing
