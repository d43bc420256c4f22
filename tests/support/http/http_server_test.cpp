// Exercises HttpServer over real loopback sockets with small hand-written clients, so every
// byte on the wire is under the test's control (framing, cut streams, half-sent requests).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "http/certs.h"
#include "http/http_server.h"
#include "tempdir/tempdir.h"
#include "testutil/tools.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Test client

struct ClientTls {
    std::string caPem;
    std::string certPem;  // client certificate for mTLS, optional
    std::string keyPem;
    std::string alpn;  // wire format, e.g. "\x02h2\x08http/1.1"
};

X509* readCert(const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    return x;
}

EVP_PKEY* readKey(const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    return k;
}

struct Response {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-cased names
    std::string body;
    bool chunked = false;
};

class Client {
  public:
    // Connects to 127.0.0.1:port; with tls, handshakes and verifies the server as 127.0.0.1.
    explicit Client(int port, const ClientTls* tls = nullptr) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        timeval tv{10, 0};  // a broken server fails the test instead of hanging it
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
        connected_ = true;
        if (!tls) return;

        ctx_ = SSL_CTX_new(TLS_client_method());
        X509* ca = readCert(tls->caPem);
        X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), ca);
        X509_free(ca);
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
        if (!tls->certPem.empty()) {
            X509* cert = readCert(tls->certPem);
            EVP_PKEY* key = readKey(tls->keyPem);
            SSL_CTX_use_certificate(ctx_, cert);
            SSL_CTX_use_PrivateKey(ctx_, key);
            X509_free(cert);
            EVP_PKEY_free(key);
        }
        if (!tls->alpn.empty())
            SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(tls->alpn.data()),
                                    static_cast<unsigned>(tls->alpn.size()));
        ssl_ = SSL_new(ctx_);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
        SSL_set_fd(ssl_, fd_);
        handshakeOk_ = SSL_connect(ssl_) == 1;
        ERR_clear_error();
        if (!handshakeOk_) connected_ = false;
    }
    ~Client() {
        if (ssl_) SSL_free(ssl_);
        if (ctx_) SSL_CTX_free(ctx_);
        if (fd_ >= 0) ::close(fd_);
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    bool connected() const { return connected_; }
    std::string alpnSelected() const {
        const unsigned char* p = nullptr;
        unsigned len = 0;
        SSL_get0_alpn_selected(ssl_, &p, &len);
        return std::string(reinterpret_cast<const char*>(p), len);
    }

    bool send(const std::string& data) {
        size_t off = 0;
        while (off < data.size()) {
            long n;
            if (ssl_) {
                n = SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off));
                ERR_clear_error();
            } else {
                n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
            }
            if (n <= 0) return false;
            off += static_cast<size_t>(n);
        }
        return true;
    }

    // Reads a whole response (Content-Length, chunked, or until close).
    std::optional<Response> read(bool headRequest = false) {
        Response r;
        if (!readHead(r)) return std::nullopt;
        if (headRequest || r.status == 204 || r.status == 304 || r.status < 200) return r;
        if (r.chunked) {
            for (;;) {
                std::optional<std::string> chunk = readChunk();
                if (!chunk) return std::nullopt;
                if (chunk->empty()) break;
                r.body += *chunk;
            }
        } else if (r.headers.count("content-length")) {
            size_t n = std::stoul(r.headers["content-length"]);
            if (!readN(n, r.body)) return std::nullopt;
        } else {
            while (fill()) {
            }
            r.body = buf_;
            buf_.clear();
        }
        return r;
    }

    bool readHead(Response& r) {
        std::string line;
        if (!readLine(line)) return false;
        if (line.compare(0, 9, "HTTP/1.1 ") != 0 || line.size() < 12) return false;
        r.status = std::stoi(line.substr(9, 3));
        for (;;) {
            if (!readLine(line)) return false;
            if (line.empty()) break;
            size_t colon = line.find(':');
            std::string name = line.substr(0, colon);
            for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            size_t v = line.find_first_not_of(' ', colon + 1);
            r.headers[name] = v == std::string::npos ? "" : line.substr(v);
        }
        r.chunked = r.headers["transfer-encoding"] == "chunked";
        return true;
    }

    // One chunk of a chunked body; "" for the terminating chunk, nullopt if the connection
    // ended (or broke) first.
    std::optional<std::string> readChunk() {
        std::string line;
        if (!readLine(line)) return std::nullopt;
        size_t size = std::stoul(line, nullptr, 16);
        std::string data;
        if (size == 0) {
            if (!readLine(line)) return std::nullopt;  // end of (empty) trailer
            return data;
        }
        if (!readN(size + 2, data)) return std::nullopt;
        data.resize(size);
        return data;
    }

    // True once the server closed the connection (EOF or reset) with nothing more to read.
    bool closedByPeer() { return buf_.empty() && !fill(); }

  private:
    bool fill() {
        char tmp[16384];
        long n;
        if (ssl_) {
            n = SSL_read(ssl_, tmp, sizeof tmp);
            ERR_clear_error();
        } else {
            n = ::recv(fd_, tmp, sizeof tmp, 0);
        }
        if (n <= 0) return false;
        buf_.append(tmp, static_cast<size_t>(n));
        return true;
    }
    bool readLine(std::string& line) {
        for (;;) {
            size_t nl = buf_.find("\r\n");
            if (nl != std::string::npos) {
                line = buf_.substr(0, nl);
                buf_.erase(0, nl + 2);
                return true;
            }
            if (!fill()) return false;
        }
    }
    bool readN(size_t n, std::string& out) {
        while (buf_.size() < n)
            if (!fill()) return false;
        out = buf_.substr(0, n);
        buf_.erase(0, n);
        return true;
    }

    int fd_ = -1;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    bool connected_ = false;
    bool handshakeOk_ = false;
    std::string buf_;
};

std::string get(const std::string& target, const std::string& extra = "") {
    return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n";
}

// Waits up to timeout for pred to become true.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5000ms) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(5ms);
    }
    return pred();
}

// A one-shot flag a test thread and a handler thread can wait on.
class Latch {
  public:
    void open() {
        std::lock_guard<std::mutex> lock(mu_);
        open_ = true;
        cv_.notify_all();
    }
    bool wait(std::chrono::milliseconds timeout = 5000ms) {
        std::unique_lock<std::mutex> lock(mu_);
        return cv_.wait_for(lock, timeout, [this] { return open_; });
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool open_ = false;
};

// Handler that echoes what it parsed, so tests can check the request side over the wire.
void echoHandler(const HttpRequest& req, ResponseWriter& w) {
    std::string q;
    for (const auto& [k, v] : req.query) q += "[" + k + "=" + v + "]";
    w.respond(200,
              {{"Content-Type", "text/plain"},
               {"X-Method", req.method},
               {"X-Path", req.path},
               {"X-Query", q},
               {"X-CN", req.clientCertCommonName},
               {"X-O", req.clientCertOrganization}},
              req.body);
}

struct Pki {
    KeyPair ca = generateCa("sluice-test-ca");
    KeyPair server = issueCertificate(ca, "apiserver", {"127.0.0.1", "localhost", "::1"}, false);
    KeyPair client = issueCertificate(ca, "alice", {}, true, "system:masters");
    KeyPair otherCa = generateCa("other-ca");
    KeyPair strangerClient = issueCertificate(otherCa, "mallory", {}, true, "system:masters");
};

const Pki& pki() {
    static const Pki p;
    return p;
}

HttpServerOptions tlsOptions(bool clientCa, bool require) {
    HttpServerOptions o;
    o.tls = true;
    o.certPem = pki().server.certPem;
    o.keyPem = pki().server.keyPem;
    if (clientCa) o.clientCaPem = pki().ca.certPem;
    o.requireClientCert = require;
    return o;
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP

TEST(HttpServerTest, PlainRequestResponseAndDecoding) {
    HttpServer server({});
    server.start(echoHandler);
    EXPECT_EQ(server.url(), "http://127.0.0.1:" + std::to_string(server.port()));

    Client c(server.port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(
        c.send(get("/api/v1/namespaces/a%2Db/pods?labelSelector=app%3Dweb+x&watch=1&w%20x=")));
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->headers["x-method"], "GET");
    EXPECT_EQ(r->headers["x-path"], "/api/v1/namespaces/a-b/pods");
    EXPECT_EQ(r->headers["x-query"], "[labelSelector=app=web x][w x=][watch=1]");
    EXPECT_FALSE(r->headers["date"].empty());
    EXPECT_EQ(r->headers["content-length"], "0");
}

TEST(HttpServerTest, RequestAccessors) {
    HttpRequest req;
    req.headers["content-type"] = "application/json";
    req.query.emplace("watch", "1");
    req.query.emplace("watch", "2");
    EXPECT_EQ(req.header("content-type"), "application/json");
    EXPECT_EQ(req.header("accept"), "");
    EXPECT_EQ(req.queryParam("watch"), "1");
    EXPECT_TRUE(req.hasQueryParam("watch"));
    EXPECT_FALSE(req.hasQueryParam("limit"));
    EXPECT_EQ(req.queryParam("limit"), "");
}

TEST(HttpServerTest, HeadersLowerCasedAndKeepAlive) {
    std::mutex mu;
    std::vector<std::map<std::string, std::string>> seen;
    HttpServer server({});
    server.start([&](const HttpRequest& req, ResponseWriter& w) {
        {
            std::lock_guard<std::mutex> lock(mu);
            seen.push_back(req.headers);
        }
        w.respond(200, {}, req.method + " " + req.target);
    });
    Client c(server.port());
    ASSERT_TRUE(c.send(get("/one", "X-Custom-Header: Value\r\n")));
    auto r1 = c.read();
    ASSERT_TRUE(r1);
    EXPECT_EQ(r1->body, "GET /one");
    EXPECT_EQ(r1->headers.count("connection"), 0u);
    // Same socket, second request: keep-alive works.
    ASSERT_TRUE(c.send("DELETE /two?x=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    auto r2 = c.read();
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->body, "DELETE /two?x=1");
    EXPECT_EQ(r2->headers["connection"], "close");
    EXPECT_TRUE(c.closedByPeer());
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0]["x-custom-header"], "Value");
    EXPECT_EQ(seen[0]["host"], "127.0.0.1");
}

TEST(HttpServerTest, PipelinedRequests) {
    HttpServer server({});
    server.start(echoHandler);
    Client c(server.port());
    ASSERT_TRUE(c.send("POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" + get("/b")));
    auto r1 = c.read();
    auto r2 = c.read();
    ASSERT_TRUE(r1 && r2);
    EXPECT_EQ(r1->body, "abc");
    EXPECT_EQ(r2->headers["x-path"], "/b");
}

TEST(HttpServerTest, ChunkedRequestBody) {
    HttpServer server({});
    server.start(echoHandler);
    Client c(server.port());
    ASSERT_TRUE(
        c.send("PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n"
               "7;ext=1\r\n, world\r\n"
               "0\r\nX-Trailer: t\r\n\r\n"));
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello, world");
    // The connection is still usable afterwards.
    ASSERT_TRUE(c.send(get("/after")));
    auto r2 = c.read();
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->headers["x-path"], "/after");
}

TEST(HttpServerTest, LargeBodySentSlowly) {
    HttpServer server({});
    server.start(echoHandler);
    Client c(server.port());
    std::string body(3 * 1024 * 1024 + 17, 'x');
    for (size_t i = 0; i < body.size(); i += 4099) body[i] = static_cast<char>('a' + i % 26);
    ASSERT_TRUE(c.send("POST /big HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\n\r\n" + body.substr(0, 100)));
    std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(c.send(body.substr(100)));
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body.size(), body.size());
    EXPECT_TRUE(r->body == body);
}

TEST(HttpServerTest, ExpectContinue) {
    HttpServer server({});
    server.start(echoHandler);
    Client c(server.port());
    ASSERT_TRUE(
        c.send("POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
    Response interim;
    ASSERT_TRUE(c.readHead(interim));
    EXPECT_EQ(interim.status, 100);
    ASSERT_TRUE(c.send("data"));
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "data");
}

TEST(HttpServerTest, MalformedRequestsGet400AndClose) {
    HttpServer server({});
    std::atomic<int> calls{0};
    server.start([&](const HttpRequest&, ResponseWriter& w) {
        ++calls;
        w.respond(200, {}, "");
    });
    const std::vector<std::string> bad = {
        "NONSENSE\r\n\r\n",
        "GET /x\r\n\r\n",
        "GET /x HTTP/1.1\r\nNo colon here\r\n\r\n",
        "GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n",
        "GET /x HTTP/1.1\r\n folded: v\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX",
        "GET relative HTTP/1.1\r\n\r\n",
    };
    for (const std::string& req : bad) {
        Client c(server.port());
        ASSERT_TRUE(c.send(req));
        auto r = c.read();
        ASSERT_TRUE(r) << req;
        EXPECT_EQ(r->status, 400) << req;
        EXPECT_EQ(r->headers["connection"], "close") << req;
        EXPECT_TRUE(c.closedByPeer()) << req;
    }
    Client v(server.port());
    ASSERT_TRUE(v.send("GET / HTTP/2.0\r\n\r\n"));
    auto r = v.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 505);
    EXPECT_EQ(calls, 0);
}

TEST(HttpServerTest, SizeLimits) {
    HttpServer server({});
    server.start(echoHandler);
    {
        Client c(server.port());
        ASSERT_TRUE(c.send("POST /x HTTP/1.1\r\nContent-Length: 67108865\r\n\r\nsome"));
        auto r = c.read();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 413);
        EXPECT_TRUE(c.closedByPeer());
    }
    {
        Client c(server.port());
        ASSERT_TRUE(c.send("POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"));
        auto r = c.read();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 413);
    }
    {
        Client c(server.port());
        ASSERT_TRUE(c.send("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4000001\r\n"));
        auto r = c.read();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 413);
    }
    {
        Client c(server.port());
        std::string big = "GET /x HTTP/1.1\r\nX-Big: " + std::string((1 << 20) + 10, 'a');
        c.send(big);  // the server may answer and close before it has read everything
        auto r = c.read();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 431);
    }
    // The server keeps serving after refusing those.
    Client ok(server.port());
    ASSERT_TRUE(ok.send(get("/fine")));
    ASSERT_TRUE(ok.read());
}

TEST(HttpServerTest, HandlerWithoutResponseOrThrowingGets500) {
    HttpServer server({});
    server.start([](const HttpRequest& req, ResponseWriter&) {
        if (req.path == "/throw") throw std::runtime_error("boom");
    });
    Client c(server.port());
    ASSERT_TRUE(c.send(get("/silent")));
    auto r1 = c.read();
    ASSERT_TRUE(r1);
    EXPECT_EQ(r1->status, 500);
    ASSERT_TRUE(c.send(get("/throw")));
    auto r2 = c.read();
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->status, 500);
    EXPECT_NE(r2->body.find("boom"), std::string::npos);
}

TEST(HttpServerTest, HeadAndNoContent) {
    HttpServer server({});
    server.start([](const HttpRequest& req, ResponseWriter& w) {
        if (req.path == "/204")
            w.respond(204, {}, "");
        else
            w.respond(200, {{"Content-Type", "text/plain"}}, "twelve bytes");
    });
    Client c(server.port());
    ASSERT_TRUE(c.send("HEAD /x HTTP/1.1\r\n\r\n"));
    auto r = c.read(true);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->headers["content-length"], "12");
    ASSERT_TRUE(c.send(get("/204")));
    auto r2 = c.read();
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->status, 204);
    EXPECT_EQ(r2->headers.count("content-length"), 0u);
    ASSERT_TRUE(c.send(get("/x")));
    auto r3 = c.read();
    ASSERT_TRUE(r3);
    EXPECT_EQ(r3->body, "twelve bytes");
}

TEST(HttpServerTest, Http10ClosesUnlessKeepAlive) {
    HttpServer server({});
    server.start(echoHandler);
    Client c(server.port());
    ASSERT_TRUE(c.send("GET /old HTTP/1.0\r\n\r\n"));
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->headers["connection"], "close");
    EXPECT_TRUE(c.closedByPeer());
}

// ---------------------------------------------------------------------------------------------
// Streaming

TEST(HttpServerTest, StreamIsReadIncrementally) {
    Latch firstRead;
    std::atomic<bool> secondWritten{false};
    HttpServer server({});
    server.start([&](const HttpRequest& req, ResponseWriter& w) {
        if (req.path != "/watch") return w.respond(200, {}, "plain");
        w.startStream(200, {{"Content-Type", "application/json"}});
        EXPECT_TRUE(w.writeChunk("{\"first\":1}\n"));
        EXPECT_TRUE(w.writeChunk(""));  // no-op, must not end the stream
        // The client must get the first event before the second one even exists.
        EXPECT_TRUE(firstRead.wait());
        EXPECT_TRUE(w.alive());
        EXPECT_TRUE(w.writeChunk("{\"second\":2}\n"));
        secondWritten = true;
    });
    Client c(server.port());
    ASSERT_TRUE(c.send(get("/watch?watch=1")));
    Response head;
    ASSERT_TRUE(c.readHead(head));
    EXPECT_EQ(head.status, 200);
    EXPECT_TRUE(head.chunked);
    EXPECT_EQ(head.headers.count("content-length"), 0u);
    EXPECT_EQ(c.readChunk(), std::optional<std::string>("{\"first\":1}\n"));
    EXPECT_FALSE(secondWritten);
    firstRead.open();
    EXPECT_EQ(c.readChunk(), std::optional<std::string>("{\"second\":2}\n"));
    EXPECT_EQ(c.readChunk(), std::optional<std::string>(""));  // clean end
    // The connection survives a completed stream.
    ASSERT_TRUE(c.send(get("/plain")));
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "plain");
}

// A handler that streams ticks until the stream is gone; records how it ended.
struct Ticker {
    std::atomic<int> running{0};
    std::atomic<int> ended{0};
    std::atomic<bool> sawDead{false};
    void operator()(const HttpRequest&, ResponseWriter& w) {
        ++running;
        w.startStream(200, {{"Content-Type", "application/json"}});
        while (w.writeChunk("{\"type\":\"tick\"}\n")) std::this_thread::sleep_for(10ms);
        if (!w.alive()) sawDead = true;
        ++ended;
        --running;
    }
};

TEST(HttpServerTest, CloseStreamsCutsOnlyStreams) {
    Ticker ticker;
    HttpServer server({});
    server.start([&](const HttpRequest& req, ResponseWriter& w) {
        if (req.path == "/watch") return ticker(req, w);
        w.respond(200, {}, "ok");
    });
    Client idle(server.port());
    ASSERT_TRUE(idle.send(get("/list")));
    ASSERT_TRUE(idle.read());

    Client watch(server.port());
    ASSERT_TRUE(watch.send(get("/watch")));
    Response head;
    ASSERT_TRUE(watch.readHead(head));
    ASSERT_TRUE(watch.readChunk());

    server.closeStreams();
    // The client sees the connection end without the terminating zero chunk.
    for (;;) {
        std::optional<std::string> chunk = watch.readChunk();
        ASSERT_NE(chunk, std::optional<std::string>("")) << "stream ended cleanly, not cut";
        if (!chunk) break;
    }
    EXPECT_TRUE(eventually([&] { return ticker.ended == 1; }));
    EXPECT_TRUE(ticker.sawDead);

    // Non-streaming keep-alive connections are untouched, and new streams work again.
    ASSERT_TRUE(idle.send(get("/again")));
    auto r = idle.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "ok");
    Client watch2(server.port());
    ASSERT_TRUE(watch2.send(get("/watch")));
    ASSERT_TRUE(watch2.readHead(head));
    EXPECT_TRUE(watch2.readChunk());
}

TEST(HttpServerTest, ClientVanishingMidStreamEndsHandler) {
    Ticker ticker;
    HttpServer server({});
    server.start(std::ref(ticker));
    {
        Client c(server.port());
        ASSERT_TRUE(c.send(get("/watch")));
        Response head;
        ASSERT_TRUE(c.readHead(head));
        ASSERT_TRUE(c.readChunk());
    }  // closes with unread data: the server gets a reset
    EXPECT_TRUE(eventually([&] { return ticker.ended == 1; }));
}

TEST(HttpServerTest, AliveNoticesClientGoneWithoutWriting) {
    std::atomic<bool> noticed{false};
    HttpServer server({});
    server.start([&](const HttpRequest&, ResponseWriter& w) {
        w.startStream(200, {});
        // Like a watch with no events: only alive() tells the handler the client left.
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (w.alive() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(10ms);
        noticed = !w.alive();
    });
    {
        Client c(server.port());
        ASSERT_TRUE(c.send(get("/watch")));
        Response head;
        ASSERT_TRUE(c.readHead(head));
    }
    EXPECT_TRUE(eventually([&] { return noticed.load(); }));
}

TEST(HttpServerTest, ClientVanishingMidRequest) {
    std::atomic<int> calls{0};
    HttpServer server({});
    server.start([&](const HttpRequest&, ResponseWriter& w) {
        ++calls;
        w.respond(200, {}, "ok");
    });
    {
        Client c(server.port());
        ASSERT_TRUE(c.send("POST /x HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly part"));
    }
    {
        Client c(server.port());
        ASSERT_TRUE(c.send("GET /x HTTP/1.1\r\nHost: h"));
    }
    Client c(server.port());
    ASSERT_TRUE(c.send(get("/y")));
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "ok");
    EXPECT_EQ(calls, 1);
}

TEST(HttpServerTest, StopIsPromptWithIdleAndStreamingConnections) {
    Ticker ticker;
    std::atomic<bool> waiterDone{false};
    auto server = std::make_unique<HttpServer>(HttpServerOptions{});
    server->start([&](const HttpRequest& req, ResponseWriter& w) {
        if (req.path == "/watch") return ticker(req, w);
        if (req.path == "/quiet-watch") {
            w.startStream(200, {});
            while (w.alive()) std::this_thread::sleep_for(10ms);
            waiterDone = true;
            return;
        }
        w.respond(200, {}, "ok");
    });
    Client idle(server->port());
    ASSERT_TRUE(idle.send(get("/x")));
    ASSERT_TRUE(idle.read());
    Client watch(server->port());
    ASSERT_TRUE(watch.send(get("/watch")));
    Response head;
    ASSERT_TRUE(watch.readHead(head));
    Client quiet(server->port());
    ASSERT_TRUE(quiet.send(get("/quiet-watch")));
    ASSERT_TRUE(quiet.readHead(head));
    Client halfSent(server->port());
    ASSERT_TRUE(halfSent.send("GET /x HTTP/1.1\r\n"));
    Client silent(server->port());  // connected, never sends anything
    ASSERT_TRUE(eventually([&] { return ticker.running == 1; }));

    auto start = std::chrono::steady_clock::now();
    server->stop();
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_LT(took, 1s);
    EXPECT_EQ(ticker.ended, 1);
    EXPECT_TRUE(waiterDone);
    EXPECT_TRUE(idle.closedByPeer());
    server->stop();  // second call is a no-op
    int port = server->port();
    server.reset();     // and so is the destructor's
    Client late(port);  // nothing listens any more
    EXPECT_FALSE(late.connected());
}

TEST(HttpServerTest, StopWithoutStartAndDestructorStops) {
    { HttpServer never({}); }
    HttpServer s({});
    s.stop();
    auto server = std::make_unique<HttpServer>(HttpServerOptions{});
    server->start(echoHandler);
    Client c(server->port());
    ASSERT_TRUE(c.send(get("/x")));
    ASSERT_TRUE(c.read());
    server.reset();
    EXPECT_TRUE(c.closedByPeer());
}

TEST(HttpServerTest, StartFailuresThrow) {
    HttpServer a({});
    a.start(echoHandler);
    HttpServerOptions taken;
    taken.port = a.port();
    HttpServer b(taken);
    EXPECT_THROW(b.start(echoHandler), std::runtime_error);
    EXPECT_THROW(a.start(echoHandler), std::logic_error);
    HttpServerOptions badTls;
    badTls.tls = true;
    badTls.certPem = "not a cert";
    badTls.keyPem = "not a key";
    HttpServer c(badTls);
    EXPECT_THROW(c.start(echoHandler), std::exception);
}

TEST(HttpServerTest, ManyConcurrentKeepAliveClients) {
    std::atomic<int> calls{0};
    HttpServer server({});
    server.start([&](const HttpRequest& req, ResponseWriter& w) {
        ++calls;
        w.respond(200, {{"Content-Type", "application/json"}}, "{\"path\":\"" + req.path + "\"}");
    });
    constexpr int kClients = 16;
    constexpr int kRequests = 50;
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kClients; ++i) {
        threads.emplace_back([&, i] {
            Client c(server.port());
            for (int j = 0; j < kRequests; ++j) {
                std::string path = "/c" + std::to_string(i) + "/r" + std::to_string(j);
                if (!c.send(get(path))) return;
                auto r = c.read();
                if (r && r->body == "{\"path\":\"" + path + "\"}") ++good;
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(good, kClients * kRequests);
    EXPECT_EQ(calls, kClients * kRequests);
}

// ---------------------------------------------------------------------------------------------
// TLS

TEST(HttpServerTest, TlsRequestAndAlpnPrefersHttp11) {
    HttpServer server(tlsOptions(false, false));
    server.start(echoHandler);
    EXPECT_EQ(server.url(), "https://127.0.0.1:" + std::to_string(server.port()));
    ClientTls tls{pki().ca.certPem, "", "", std::string("\x02h2\x08http/1.1", 12)};
    Client c(server.port(), &tls);
    ASSERT_TRUE(c.connected());
    EXPECT_EQ(c.alpnSelected(), "http/1.1");
    ASSERT_TRUE(c.send(get("/secure?a=b")));
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->headers["x-path"], "/secure");
    EXPECT_EQ(r->headers["x-cn"], "");
    ASSERT_TRUE(
        c.send("POST /2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"));
    auto r2 = c.read();
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->body, "ok");

    // A client offering only h2 gets no ALPN answer rather than h2.
    ClientTls h2only{pki().ca.certPem, "", "", std::string("\x02h2", 3)};
    Client c2(server.port(), &h2only);
    ASSERT_TRUE(c2.connected());
    EXPECT_EQ(c2.alpnSelected(), "");
}

TEST(HttpServerTest, TlsStreamCutAndStop) {
    Ticker ticker;
    HttpServer server(tlsOptions(false, false));
    server.start(std::ref(ticker));
    ClientTls tls{pki().ca.certPem, "", "", ""};
    Client c(server.port(), &tls);
    ASSERT_TRUE(c.send(get("/watch")));
    Response head;
    ASSERT_TRUE(c.readHead(head));
    ASSERT_TRUE(c.readChunk());
    server.closeStreams();
    for (;;) {
        std::optional<std::string> chunk = c.readChunk();
        ASSERT_NE(chunk, std::optional<std::string>(""));
        if (!chunk) break;
    }
    EXPECT_TRUE(eventually([&] { return ticker.ended == 1; }));

    Client c2(server.port(), &tls);
    ASSERT_TRUE(c2.send(get("/watch")));
    ASSERT_TRUE(c2.readHead(head));
    Client handshakeOnly(server.port(), &tls);
    auto start = std::chrono::steady_clock::now();
    server.stop();
    EXPECT_LT(std::chrono::steady_clock::now() - start,
              5s);  // generous for loaded CI; a hang would be much longer
    EXPECT_EQ(ticker.ended, 2);
}

TEST(HttpServerTest, MutualTlsReportsIdentity) {
    HttpServer server(tlsOptions(true, true));
    server.start(echoHandler);
    ClientTls tls{pki().ca.certPem, pki().client.certPem, pki().client.keyPem, ""};
    Client c(server.port(), &tls);
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send(get("/whoami")));
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->headers["x-cn"], "alice");
    EXPECT_EQ(r->headers["x-o"], "system:masters");
}

// With TLS 1.3 the client may finish its handshake before the server rejects its
// certificate, so "rejected" means: no response ever arrives.
bool rejected(int port, const ClientTls& tls) {
    Client c(port, &tls);
    if (!c.connected()) return true;
    if (!c.send(get("/whoami"))) return true;
    return !c.read().has_value();
}

TEST(HttpServerTest, MutualTlsRejectsMissingOrForeignCertificate) {
    std::atomic<int> calls{0};
    HttpServer server(tlsOptions(true, true));
    server.start([&](const HttpRequest& req, ResponseWriter& w) {
        ++calls;
        echoHandler(req, w);
    });
    EXPECT_TRUE(rejected(server.port(), ClientTls{pki().ca.certPem, "", "", ""}));
    EXPECT_TRUE(rejected(server.port(), ClientTls{pki().ca.certPem, pki().strangerClient.certPem,
                                                  pki().strangerClient.keyPem, ""}));
    EXPECT_EQ(calls, 0);
}

TEST(HttpServerTest, OptionalClientCertificate) {
    HttpServer server(tlsOptions(true, false));
    server.start(echoHandler);
    ClientTls anonymous{pki().ca.certPem, "", "", ""};
    Client a(server.port(), &anonymous);
    ASSERT_TRUE(a.send(get("/anon")));
    auto ra = a.read();
    ASSERT_TRUE(ra);
    EXPECT_EQ(ra->headers["x-cn"], "");
    ClientTls withCert{pki().ca.certPem, pki().client.certPem, pki().client.keyPem, ""};
    Client b(server.port(), &withCert);
    ASSERT_TRUE(b.send(get("/me")));
    auto rb = b.read();
    ASSERT_TRUE(rb);
    EXPECT_EQ(rb->headers["x-cn"], "alice");
    // A certificate from a foreign CA is refused even when certificates are optional.
    EXPECT_TRUE(rejected(server.port(), ClientTls{pki().ca.certPem, pki().strangerClient.certPem,
                                                  pki().strangerClient.keyPem, ""}));
}

TEST(HttpServerTest, TlsNotSpokenToPlainClient) {
    HttpServer server(tlsOptions(false, false));
    server.start(echoHandler);
    Client plain(server.port());
    ASSERT_TRUE(plain.send(get("/x")));
    EXPECT_FALSE(plain.read());
    // The server is still fine afterwards.
    ClientTls tls{pki().ca.certPem, "", "", ""};
    Client c(server.port(), &tls);
    ASSERT_TRUE(c.send(get("/x")));
    EXPECT_TRUE(c.read());
}

// ---------------------------------------------------------------------------------------------
// Certificates

X509* certOf(const KeyPair& kp) {
    return readCert(kp.certPem);
}

TEST(CertsTest, ChainVerifiesWithExtensions) {
    const Pki& p = pki();
    X509* ca = certOf(p.ca);
    X509* server = certOf(p.server);
    X509* client = certOf(p.client);
    ASSERT_TRUE(ca && server && client);
    EXPECT_EQ(X509_check_ca(ca), 1);
    EXPECT_EQ(X509_check_ca(server), 0);

    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    for (X509* leaf : {server, client}) {
        X509_STORE_CTX* ctx = X509_STORE_CTX_new();
        X509_STORE_CTX_init(ctx, store, leaf, nullptr);
        X509_STORE_CTX_set_purpose(
            ctx, leaf == server ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT);
        EXPECT_EQ(X509_verify_cert(ctx), 1)
            << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
        X509_STORE_CTX_free(ctx);
    }
    X509_STORE_free(store);

    EXPECT_EQ(X509_check_ip_asc(server, "127.0.0.1", 0), 1);
    EXPECT_EQ(X509_check_ip_asc(server, "::1", 0), 1);
    EXPECT_EQ(X509_check_host(server, "localhost", 0, 0, nullptr), 1);
    EXPECT_NE(X509_check_host(server, "example.com", 0, 0, nullptr), 1);
    EXPECT_TRUE(X509_get_extended_key_usage(server) & XKU_SSL_SERVER);
    EXPECT_TRUE(X509_get_extended_key_usage(client) & XKU_SSL_CLIENT);
    EXPECT_NE(X509_get0_subject_key_id(server), nullptr);
    EXPECT_NE(X509_get0_authority_key_id(server), nullptr);
    EXPECT_EQ(
        ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(server), X509_get0_subject_key_id(ca)), 0);

    // Valid now, from about an hour ago, for about a year.
    int days = 0, secs = 0;
    ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(server), nullptr), 1);
    EXPECT_EQ(days, 0);
    EXPECT_NEAR(secs, 3600, 120);
    ASSERT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(server)), 1);
    EXPECT_NEAR(days, 365, 1);

    X509_free(ca);
    X509_free(server);
    X509_free(client);
    EXPECT_NE(p.server.keyPem.find("BEGIN PRIVATE KEY"), std::string::npos);
    EXPECT_NE(generateCa("x").certPem, generateCa("x").certPem);  // fresh key and serial
}

TEST(CertsTest, RejectsBadInput) {
    EXPECT_THROW(issueCertificate(KeyPair{"junk", "junk"}, "x", {}, false), std::runtime_error);
    EXPECT_THROW(issueCertificate(pki().ca, "x", {"a,b"}, false), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Real-world clients, when installed: OpenSSL's s_client and kubectl (Go's TLS stack).

bool onPath(const std::string& tool) {
    return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

std::string run(const std::string& cmd) {
    std::string out;
    FILE* f = ::popen(cmd.c_str(), "r");
    if (!f) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    ::pclose(f);
    return out;
}

TEST(HttpServerToolsTest, OpensslSClientNegotiatesHttp11) {
    if (!onPath("openssl")) GTEST_SKIP() << "openssl CLI not installed";
    HttpServer server(tlsOptions(false, false));
    server.start(echoHandler);
    TempDir dir;
    std::string ca = dir.write("ca.pem", pki().ca.certPem);
    std::string out =
        run("printf 'GET /s HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' | "
            "timeout 20 openssl s_client -connect 127.0.0.1:" +
            std::to_string(server.port()) + " -alpn h2,http/1.1 -CAfile " + ca +
            " -verify_ip 127.0.0.1 -verify_return_error -ign_eof 2>&1");
    EXPECT_NE(out.find("ALPN protocol: http/1.1"), std::string::npos) << out;
    EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Path: /s"), std::string::npos) << out;
}

TEST(HttpServerToolsTest, KubectlReachesHandlerWithClientCertificate) {
    if (!isExecutable(kubectlPath())) GTEST_SKIP() << "no kubectl at " << kubectlPath();
    std::mutex mu;
    std::string seenPath, seenCn, seenO;
    HttpServer server(tlsOptions(true, true));
    server.start([&](const HttpRequest& req, ResponseWriter& w) {
        {
            std::lock_guard<std::mutex> lock(mu);
            seenPath = req.path;
            seenCn = req.clientCertCommonName;
            seenO = req.clientCertOrganization;
        }
        w.respond(200, {{"Content-Type", "application/json"}}, "{\"hello\":\"kubectl\"}");
    });
    TempDir dir;
    std::string ca = dir.write("ca.pem", pki().ca.certPem);
    std::string cert = dir.write("client.pem", pki().client.certPem);
    std::string key = dir.write("client-key.pem", pki().client.keyPem);
    std::string kubeconfig = dir.write("kubeconfig", "");
    std::string out =
        run("KUBECONFIG=" + kubeconfig + " timeout 60 '" + kubectlPath() + "' --server " +
            server.url() + " --certificate-authority " + ca + " --client-certificate " + cert +
            " --client-key " + key + " --request-timeout 20s get --raw /foo 2>&1");
    EXPECT_NE(out.find("{\"hello\":\"kubectl\"}"), std::string::npos) << out;
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(seenPath, "/foo");
    EXPECT_EQ(seenCn, "alice");
    EXPECT_EQ(seenO, "system:masters");
}

}  // namespace
}  // namespace sluice::testing
