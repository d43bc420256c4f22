#include "http/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <list>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

namespace sluice::testing {

// ---------------------------------------------------------------------------------------------
// HttpRequest accessors

std::string HttpRequest::header(const std::string& lowerName) const {
    auto it = headers.find(lowerName);
    return it == headers.end() ? std::string() : it->second;
}

std::string HttpRequest::queryParam(const std::string& name) const {
    auto it = query.find(name);
    return it == query.end() ? std::string() : it->second;
}

bool HttpRequest::hasQueryParam(const std::string& name) const {
    return query.find(name) != query.end();
}

namespace {

constexpr size_t kMaxHeaderBytes = size_t{1} << 20;
constexpr size_t kMaxBodyBytes = size_t{64} << 20;
constexpr size_t kMaxChunkLine = 4096;
constexpr size_t kReadBuffer = 16 * 1024;  // one TLS record
constexpr auto kLingerTime = std::chrono::milliseconds(1000);

std::string toLower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trimWs(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// RFC 9110 token characters (header names, methods).
bool isTokenChar(char c) {
    if (std::isalnum(static_cast<unsigned char>(c))) return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool isToken(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), isTokenChar);
}

// True if a comma-separated header value (Connection, Transfer-Encoding) lists token.
bool hasToken(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        size_t comma = value.find(',');
        if (iequals(trimWs(value.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

int hexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Invalid escapes are kept literally: clients that send a bare '%' get it back unchanged.
std::string percentDecode(std::string_view s, bool plusIsSpace) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%' && i + 2 < s.size()) {
            int hi = hexDigit(s[i + 1]);
            int lo = hexDigit(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        out.push_back(plusIsSpace && c == '+' ? ' ' : c);
    }
    return out;
}

void parseQuery(std::string_view q, std::multimap<std::string, std::string>& out) {
    while (!q.empty()) {
        size_t amp = q.find('&');
        std::string_view part = q.substr(0, amp);
        if (!part.empty()) {
            size_t eq = part.find('=');
            std::string key = percentDecode(part.substr(0, eq), true);
            std::string value = eq == std::string_view::npos
                                    ? std::string()
                                    : percentDecode(part.substr(eq + 1), true);
            out.emplace(std::move(key), std::move(value));
        }
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
    }
}

const char* reasonPhrase(int status) {
    switch (status) {
        case 100:
            return "Continue";
        case 101:
            return "Switching Protocols";
        case 200:
            return "OK";
        case 201:
            return "Created";
        case 202:
            return "Accepted";
        case 204:
            return "No Content";
        case 206:
            return "Partial Content";
        case 301:
            return "Moved Permanently";
        case 302:
            return "Found";
        case 304:
            return "Not Modified";
        case 307:
            return "Temporary Redirect";
        case 308:
            return "Permanent Redirect";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 406:
            return "Not Acceptable";
        case 408:
            return "Request Timeout";
        case 409:
            return "Conflict";
        case 410:
            return "Gone";
        case 411:
            return "Length Required";
        case 412:
            return "Precondition Failed";
        case 413:
            return "Content Too Large";
        case 415:
            return "Unsupported Media Type";
        case 417:
            return "Expectation Failed";
        case 422:
            return "Unprocessable Entity";
        case 429:
            return "Too Many Requests";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Status";
    }
}

// Statuses whose responses never carry a body (RFC 9110 section 6.4.1).
bool bodyForbidden(int status) {
    return status < 200 || status == 204 || status == 304;
}

std::string httpDate() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    // strftime's %a/%b follow LC_TIME; spell them out so a non-C locale cannot change them.
    static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7],
                  tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                  tm.tm_sec);
    return buf;
}

std::string opensslError(const std::string& what) {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return what;
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return what + ": " + buf;
}

// OpenSSL's socket BIO writes with write(), which raises SIGPIPE when the peer has gone.
// Ignore it process-wide, but only if nobody installed a handler of their own.
void ignoreSigpipe() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction old {};
        if (sigaction(SIGPIPE, nullptr, &old) != 0) return;
        if ((old.sa_flags & SA_SIGINFO) == 0 && old.sa_handler == SIG_DFL) {
            struct sigaction ign {};
            ign.sa_handler = SIG_IGN;
            sigemptyset(&ign.sa_mask);
            sigaction(SIGPIPE, &ign, nullptr);
        }
    });
}

// Go clients (kubectl) offer h2 first; this server only speaks HTTP/1.1.
int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
    static constexpr std::string_view kHttp11 = "http/1.1";
    unsigned int i = 0;
    while (i < inlen) {
        unsigned int len = in[i];
        if (i + 1 + len > inlen) break;
        if (std::string_view(reinterpret_cast<const char*>(in + i + 1), len) == kHttp11) {
            *out = in + i + 1;
            *outlen = static_cast<unsigned char>(len);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

std::vector<std::string> nameEntries(X509_NAME* name, int nid) {
    std::vector<std::string> out;
    for (int idx = X509_NAME_get_index_by_NID(name, nid, -1); idx >= 0;
         idx = X509_NAME_get_index_by_NID(name, nid, idx)) {
        X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, idx);
        unsigned char* utf8 = nullptr;
        int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
        if (len >= 0) out.emplace_back(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
        OPENSSL_free(utf8);
    }
    return out;
}

std::vector<X509*> readCertificates(const std::string& pem, const char* what) {
    std::vector<X509*> certs;
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    if (!bio) throw std::runtime_error(opensslError(what));
    while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) certs.push_back(x);
    BIO_free(bio);
    ERR_clear_error();  // the loop ends with a "no start line" error
    if (certs.empty()) throw std::runtime_error(std::string(what) + ": no PEM certificate");
    return certs;
}

SSL_CTX* makeServerContext(const HttpServerOptions& opts) {
    if (opts.certPem.empty() || opts.keyPem.empty())
        throw std::invalid_argument("HttpServer: tls needs certPem and keyPem");
    if (opts.requireClientCert && opts.clientCaPem.empty())
        throw std::invalid_argument("HttpServer: requireClientCert needs clientCaPem");
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) throw std::runtime_error(opensslError("SSL_CTX_new"));
    try {
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
        std::vector<X509*> chain = readCertificates(opts.certPem, "server certificate");
        int ok = SSL_CTX_use_certificate(ctx, chain[0]);
        X509_free(chain[0]);
        // add0 takes ownership of an intermediate only on success; free the rest ourselves.
        for (size_t i = 1; i < chain.size(); ++i) {
            if (ok && SSL_CTX_add0_chain_cert(ctx, chain[i])) continue;
            ok = 0;
            X509_free(chain[i]);
        }
        if (!ok) throw std::runtime_error(opensslError("server certificate"));

        BIO* bio = BIO_new_mem_buf(opts.keyPem.data(), static_cast<int>(opts.keyPem.size()));
        EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
        BIO_free(bio);
        ok = key && SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
        EVP_PKEY_free(key);
        if (!ok) throw std::runtime_error(opensslError("server private key"));

        SSL_CTX_set_alpn_select_cb(ctx, selectAlpn, nullptr);
        static const unsigned char kSessionContext[] = "sluice-testhttp";
        SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);

        if (!opts.clientCaPem.empty()) {
            std::vector<X509*> cas = readCertificates(opts.clientCaPem, "client CA");
            X509_STORE* store = SSL_CTX_get_cert_store(ctx);
            STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
            ok = names != nullptr;
            for (X509* ca : cas) {
                // The CA list tells clients which certificate to send; Go sends none otherwise.
                if (ok) ok = X509_STORE_add_cert(store, ca) == 1;
                if (ok) {
                    X509_NAME* dup = X509_NAME_dup(X509_get_subject_name(ca));
                    ok = dup && sk_X509_NAME_push(names, dup) > 0;
                    if (!ok) X509_NAME_free(dup);
                }
                X509_free(ca);
            }
            if (!ok) {
                sk_X509_NAME_pop_free(names, X509_NAME_free);
                throw std::runtime_error(opensslError("client CA"));
            }
            SSL_CTX_set_client_CA_list(ctx, names);
            int mode = SSL_VERIFY_PEER;
            if (opts.requireClientCert) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
            SSL_CTX_set_verify(ctx, mode, nullptr);
            SSL_CTX_set_verify_depth(ctx, 8);
        }
    } catch (...) {
        SSL_CTX_free(ctx);
        throw;
    }
    return ctx;
}

// One accepted socket. The connection thread owns ssl and the buffers; other threads only ever
// shutdown() the socket, under mu, so they cannot hit a closed (and maybe reused) descriptor.
struct Connection {
    int fd = -1;
    SSL* ssl = nullptr;
    std::thread thread;
    std::atomic<bool> finished{false};

    mutable std::mutex mu;  // guards the four flags below
    bool fdOpen = true;
    bool streaming = false;
    bool cut = false;
    bool stopping = false;

    std::atomic<bool> broken{false};  // a read or write failed: never reuse
    std::mutex writeMu;               // serialises writes if a handler shares its writer

    std::string in;  // received, unparsed bytes start at inPos
    size_t inPos = 0;
    std::string peerCn;
    std::vector<std::string> peerOrgs;  // every O=; HttpRequest carries the first

    // Reads what is available (blocking); 0 on EOF or error.
    size_t readSome(char* buf, size_t n) {
        for (int spins = 0; spins < 1000; ++spins) {
            if (ssl) {
                ERR_clear_error();
                int r = SSL_read(ssl, buf, static_cast<int>(std::min<size_t>(n, INT_MAX)));
                if (r > 0) return static_cast<size_t>(r);
                int e = SSL_get_error(ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
                ERR_clear_error();
                if (e != SSL_ERROR_ZERO_RETURN) broken = true;
                return 0;
            }
            ssize_t r = ::recv(fd, buf, n, 0);
            if (r > 0) return static_cast<size_t>(r);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) broken = true;
            return 0;
        }
        broken = true;
        return 0;
    }

    bool writeAll(const char* p, size_t n) {
        std::lock_guard<std::mutex> lock(writeMu);
        if (broken) return false;
        int spins = 0;
        while (n > 0) {
            size_t done = 0;
            if (ssl) {
                ERR_clear_error();
                int r = SSL_write(ssl, p, static_cast<int>(std::min<size_t>(n, INT_MAX)));
                if (r <= 0) {
                    int e = SSL_get_error(ssl, r);
                    if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && ++spins < 1000)
                        continue;
                    ERR_clear_error();
                    broken = true;
                    return false;
                }
                done = static_cast<size_t>(r);
            } else {
                ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) {
                    broken = true;
                    return false;
                }
                done = static_cast<size_t>(r);
            }
            p += done;
            n -= done;
        }
        return true;
    }
    bool writeAll(const std::string& s) { return writeAll(s.data(), s.size()); }

    // Appends more received bytes to `in`; false on EOF/error.
    bool fill() {
        char buf[kReadBuffer];
        size_t n = readSome(buf, sizeof buf);
        if (n == 0) return false;
        in.append(buf, n);
        return true;
    }
    size_t buffered() const { return in.size() - inPos; }
};

// Result of reading one request: a parsed request, the peer closing, or an error status.
constexpr int kRequestOk = 0;
constexpr int kConnectionClosed = -1;

// Reads one line (without CR LF) of at most maxLen bytes into line.
int readLine(Connection& c, std::string& line, size_t maxLen) {
    size_t scanned = c.inPos;
    for (;;) {
        size_t nl = c.in.find('\n', scanned);
        if (nl != std::string::npos) {
            size_t end = nl;
            if (end > c.inPos && c.in[end - 1] == '\r') --end;
            if (end - c.inPos > maxLen) return 400;
            line.assign(c.in, c.inPos, end - c.inPos);
            c.inPos = nl + 1;
            return kRequestOk;
        }
        if (c.buffered() > maxLen + 2) return 400;
        scanned = c.in.size();
        if (!c.fill()) return kConnectionClosed;
    }
}

int readChunkedBody(Connection& c, std::string& body) {
    std::string line;
    for (;;) {
        int r = readLine(c, line, kMaxChunkLine);
        if (r != kRequestOk) return r;
        std::string_view sizeText = trimWs(std::string_view(line).substr(0, line.find(';')));
        if (sizeText.empty() || sizeText.size() > 16) return 400;
        size_t size = 0;
        for (char ch : sizeText) {
            int d = hexDigit(ch);
            if (d < 0) return 400;
            size = size * 16 + static_cast<size_t>(d);
        }
        if (size == 0) break;
        if (size > kMaxBodyBytes || body.size() + size > kMaxBodyBytes) return 413;
        while (c.buffered() < size + 2)
            if (!c.fill()) return kConnectionClosed;
        body.append(c.in, c.inPos, size);
        c.inPos += size;
        if (c.in.compare(c.inPos, 2, "\r\n") != 0) return 400;
        c.inPos += 2;
    }
    // Trailer fields are read and dropped: nothing here needs them.
    size_t trailerBytes = 0;
    for (;;) {
        int r = readLine(c, line, kMaxHeaderBytes);
        if (r != kRequestOk) return r;
        if (line.empty()) return kRequestOk;
        trailerBytes += line.size();
        if (trailerBytes > kMaxHeaderBytes) return 431;
    }
}

struct ParsedRequest {
    HttpRequest req;
    bool http10 = false;
    bool keepAlive = true;
};

int readRequest(Connection& c, ParsedRequest& out) {
    c.in.erase(0, c.inPos);
    c.inPos = 0;

    // RFC 9112 2.2: ignore empty lines before a request line (some clients send a CRLF after
    // a body). Then wait for the blank line ending the header block.
    size_t headerEnd = std::string::npos;
    size_t scanFrom = 0;
    for (;;) {
        size_t skip = 0;
        while (skip < c.in.size() && (c.in[skip] == '\r' || c.in[skip] == '\n')) ++skip;
        if (skip > 0) {
            c.in.erase(0, skip);
            scanFrom = 0;
        }
        for (size_t pos = c.in.find('\n', scanFrom); pos != std::string::npos;
             pos = c.in.find('\n', pos + 1)) {
            size_t next = pos + 1;
            if (next < c.in.size() && c.in[next] == '\n') {
                headerEnd = next + 1;
                break;
            }
            if (next + 1 < c.in.size() && c.in[next] == '\r' && c.in[next + 1] == '\n') {
                headerEnd = next + 2;
                break;
            }
        }
        if (headerEnd != std::string::npos) break;
        if (c.in.size() > kMaxHeaderBytes) return 431;
        scanFrom = c.in.size() >= 3 ? c.in.size() - 3 : 0;
        if (!c.fill()) return kConnectionClosed;
    }
    if (headerEnd > kMaxHeaderBytes) return 431;

    std::string_view block(c.in.data(), headerEnd);
    c.inPos = headerEnd;
    auto nextLine = [&block]() {
        size_t nl = block.find('\n');
        std::string_view line = block.substr(0, nl);
        block.remove_prefix(nl == std::string_view::npos ? block.size() : nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        return line;
    };

    HttpRequest& req = out.req;
    std::string_view requestLine = nextLine();
    size_t sp1 = requestLine.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : requestLine.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return 400;
    std::string_view method = requestLine.substr(0, sp1);
    std::string_view target = requestLine.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = requestLine.substr(sp2 + 1);
    if (!isToken(method) || target.empty()) return 400;
    for (char ch : target)
        if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f) return 400;
    if (version == "HTTP/1.1") {
        out.http10 = false;
    } else if (version == "HTTP/1.0") {
        out.http10 = true;
    } else if (version.size() == 8 && version.substr(0, 5) == "HTTP/" &&
               std::isdigit(static_cast<unsigned char>(version[5])) && version[6] == '.' &&
               std::isdigit(static_cast<unsigned char>(version[7]))) {
        return 505;
    } else {
        return 400;
    }
    req.method.assign(method);
    req.target.assign(target);

    for (;;) {
        std::string_view line = nextLine();
        if (line.empty()) break;
        if (line.front() == ' ' || line.front() == '\t') return 400;  // obsolete line folding
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) return 400;
        std::string_view name = line.substr(0, colon);
        if (!isToken(name)) return 400;
        std::string_view value = trimWs(line.substr(colon + 1));
        for (char ch : value)
            if (ch == '\0' || ch == '\r' || ch == '\n') return 400;
        std::string key = toLower(name);
        auto [it, inserted] = req.headers.emplace(key, std::string(value));
        if (!inserted) {
            it->second += ", ";  // RFC 9110 5.3: repeated fields combine into a list
            it->second.append(value);
        }
    }

    // Split the target: origin-form, absolute-form (proxies) or "*" (OPTIONS).
    std::string_view pathAndQuery = target;
    if (target.front() != '/' && target != "*") {
        size_t scheme = target.find("://");
        if (scheme == std::string_view::npos) return 400;
        size_t slash = target.find('/', scheme + 3);
        pathAndQuery =
            slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    pathAndQuery = pathAndQuery.substr(0, pathAndQuery.find('#'));
    size_t qmark = pathAndQuery.find('?');
    req.path = percentDecode(pathAndQuery.substr(0, qmark), false);
    if (qmark != std::string_view::npos) parseQuery(pathAndQuery.substr(qmark + 1), req.query);

    std::string connection = req.header("connection");
    out.keepAlive =
        out.http10 ? hasToken(connection, "keep-alive") : !hasToken(connection, "close");

    // Body framing. Both headers at once is a request-smuggling pattern: refuse it.
    auto te = req.headers.find("transfer-encoding");
    auto cl = req.headers.find("content-length");
    bool chunked = false;
    size_t contentLength = 0;
    if (te != req.headers.end()) {
        if (cl != req.headers.end() || out.http10) return 400;
        std::string_view codings = te->second;
        size_t lastComma = codings.rfind(',');
        std::string_view last =
            trimWs(lastComma == std::string_view::npos ? codings : codings.substr(lastComma + 1));
        if (!iequals(last, "chunked")) return 501;
        if (!iequals(trimWs(codings), "chunked")) return 501;  // no gzip etc. underneath
        chunked = true;
    } else if (cl != req.headers.end()) {
        const std::string& v = cl->second;
        if (v.empty()) return 400;
        for (char ch : v) {
            if (!std::isdigit(static_cast<unsigned char>(ch))) return 400;
            // Saturate instead of overflowing: anything this big is refused anyway.
            if (contentLength <= kMaxBodyBytes)
                contentLength = contentLength * 10 + static_cast<size_t>(ch - '0');
        }
        if (contentLength > kMaxBodyBytes) return 413;
    }

    bool expectsBody = chunked || contentLength > 0;
    if (expectsBody && !out.http10 && iequals(req.header("expect"), "100-continue") &&
        c.buffered() == 0) {
        // The client waits for this before sending the body.
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        if (!c.writeAll(kContinue.data(), kContinue.size())) return kConnectionClosed;
    }

    if (chunked) return readChunkedBody(c, req.body);
    if (contentLength > 0) {
        c.in.reserve(c.inPos + contentLength);
        while (c.buffered() < contentLength)
            if (!c.fill()) return kConnectionClosed;
        req.body.assign(c.in, c.inPos, contentLength);
        c.inPos += contentLength;
    }
    return kRequestOk;
}

// The ResponseWriter handed to handlers; lives for one request on the connection thread.
class ConnectionWriter final : public ResponseWriter {
  public:
    ConnectionWriter(Connection& c, const ParsedRequest& p)
        : c_(c), keepAlive_(p.keepAlive), http10_(p.http10), head_(p.req.method == "HEAD") {}

    void respond(int status, const std::map<std::string, std::string>& headers,
                 const std::string& body) override {
        std::lock_guard<std::mutex> lock(mu_);
        respondLocked(status, headers, body);
    }

    void startStream(int status, const std::map<std::string, std::string>& headers) override {
        std::lock_guard<std::mutex> lock(mu_);
        if (state_ != State::kIdle) return;
        state_ = State::kStreaming;
        {
            // Flag first, so a closeStreams() after startStream() returns surely cuts us.
            std::lock_guard<std::mutex> cl(c_.mu);
            c_.streaming = true;
        }
        chunked_ = !http10_;  // HTTP/1.0 clients get a body delimited by closing instead
        if (!chunked_) keepAlive_ = false;
        c_.writeAll(buildHead(status, headers, true, 0));
    }

    bool writeChunk(const std::string& data) override {
        std::lock_guard<std::mutex> lock(mu_);
        if (state_ != State::kStreaming || !aliveNow()) return false;
        if (data.empty() || head_) return true;  // an empty chunk would end the stream
        if (!chunked_) return c_.writeAll(data);
        char size[32];
        int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
        std::string frame;
        frame.reserve(static_cast<size_t>(n) + data.size() + 2);
        frame.append(size, static_cast<size_t>(n)).append(data).append("\r\n");
        return c_.writeAll(frame);
    }

    bool alive() const override { return aliveNow(); }

    // The handler threw: answer 500 if nothing was sent, else cut the stream so the client
    // does not mistake a truncated body for a complete one.
    void handlerFailed(const std::string& what) {
        std::lock_guard<std::mutex> lock(mu_);
        if (state_ == State::kIdle) {
            respondLocked(500, {{"Content-Type", "text/plain"}}, "handler failed: " + what + "\n");
        } else if (state_ == State::kStreaming) {
            aborted_ = true;
        }
    }

    // Completes the response after the handler returned. True if the connection can carry
    // another request.
    bool finish() {
        std::lock_guard<std::mutex> lock(mu_);
        if (state_ == State::kIdle)
            respondLocked(500, {{"Content-Type", "text/plain"}}, "handler did not respond\n");
        if (state_ == State::kStreaming) {
            bool wasCut;
            {
                std::lock_guard<std::mutex> cl(c_.mu);
                wasCut = c_.cut || c_.stopping;
                c_.streaming = false;
            }
            if (wasCut || aborted_ || c_.broken) return false;
            if (chunked_ && !head_ && !c_.writeAll("0\r\n\r\n", 5)) return false;
        }
        std::lock_guard<std::mutex> cl(c_.mu);
        return keepAlive_ && !c_.broken && !c_.stopping;
    }

    bool closeAfter() const { return !keepAlive_; }

  private:
    enum class State { kIdle, kResponded, kStreaming };

    bool aliveNow() const {
        {
            std::lock_guard<std::mutex> lock(c_.mu);
            if (c_.cut || c_.stopping || !c_.fdOpen) return false;
        }
        if (c_.broken) return false;
        // A peer that closed its end shows up as RDHUP/HUP before any write fails.
        pollfd p{c_.fd, POLLIN | POLLRDHUP, 0};
        if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
            return false;
        return true;
    }

    void respondLocked(int status, const std::map<std::string, std::string>& headers,
                       const std::string& body) {
        if (state_ != State::kIdle) return;
        state_ = State::kResponded;
        if (status < 100 || status > 999) status = 500;
        bool sendBody = !head_ && !bodyForbidden(status);
        std::string out = buildHead(status, headers, false, body.size());
        if (sendBody) out += body;
        c_.writeAll(out);
    }

    std::string buildHead(int status, const std::map<std::string, std::string>& headers,
                          bool stream, size_t contentLength) {
        std::string out;
        out.reserve(256);
        out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ");
        out.append(reasonPhrase(status)).append("\r\n");
        bool hasDate = false;
        for (const auto& [name, value] : headers) {
            // Framing headers are ours to set; CR/LF would let a value inject headers.
            if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) continue;
            if (iequals(name, "connection")) {
                if (hasToken(value, "close")) keepAlive_ = false;
                continue;
            }
            if (!isToken(name) || value.find_first_of("\r\n") != std::string::npos) continue;
            if (iequals(name, "date")) hasDate = true;
            out.append(name).append(": ").append(value).append("\r\n");
        }
        if (!hasDate) out.append("Date: ").append(httpDate()).append("\r\n");
        if (stream) {
            if (chunked_) out.append("Transfer-Encoding: chunked\r\n");
        } else if (!bodyForbidden(status)) {
            out.append("Content-Length: ").append(std::to_string(contentLength)).append("\r\n");
        }
        if (!keepAlive_) {
            out.append("Connection: close\r\n");
        } else if (http10_) {
            out.append("Connection: keep-alive\r\n");
        }
        out.append("\r\n");
        return out;
    }

    Connection& c_;
    mutable std::mutex mu_;
    State state_ = State::kIdle;
    bool keepAlive_;
    bool http10_;
    bool head_;
    bool chunked_ = true;
    bool aborted_ = false;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// HttpServer

struct HttpServer::Impl {
    HttpServerOptions opts;
    HttpHandler handler;
    SSL_CTX* ctx = nullptr;
    int listenFd = -1;
    int wakeRead = -1;
    int wakeWrite = -1;
    std::atomic<int> boundPort{0};
    std::thread acceptThread;

    std::mutex stopMu;  // serialises start() and stop()
    bool started = false;
    bool stopped = false;

    std::mutex mu;  // guards conns and stopping
    bool stopping = false;
    std::list<std::shared_ptr<Connection>> conns;

    void bindAndListen();
    void acceptLoop();
    void reapFinished();
    void serve(Connection& c);
    void closeConnection(Connection& c, bool graceful);
    void releaseResources();
};

void HttpServer::Impl::bindAndListen() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string portText = std::to_string(opts.port);
    int rc = ::getaddrinfo(opts.host.empty() ? nullptr : opts.host.c_str(), portText.c_str(),
                           &hints, &res);
    if (rc != 0)
        throw std::runtime_error("HttpServer: cannot resolve " + opts.host + ": " +
                                 gai_strerror(rc));
    int lastErrno = 0;
    for (addrinfo* ai = res; ai && listenFd < 0; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                          ai->ai_protocol);
        if (fd < 0) {
            lastErrno = errno;
            continue;
        }
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0) {
            listenFd = fd;
        } else {
            lastErrno = errno;
            ::close(fd);
        }
    }
    ::freeaddrinfo(res);
    if (listenFd < 0)
        throw std::runtime_error("HttpServer: cannot listen on " + opts.host + ":" + portText +
                                 ": " + std::strerror(lastErrno));
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ::getsockname(listenFd, reinterpret_cast<sockaddr*>(&addr), &len);
    boundPort = addr.ss_family == AF_INET6
                    ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                    : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

void HttpServer::Impl::reapFinished() {
    std::list<std::shared_ptr<Connection>> done;
    {
        std::lock_guard<std::mutex> lock(mu);
        for (auto it = conns.begin(); it != conns.end();) {
            auto next = std::next(it);
            if ((*it)->finished) done.splice(done.end(), conns, it);
            it = next;
        }
    }
    for (auto& c : done) c->thread.join();
}

void HttpServer::Impl::acceptLoop() {
    for (;;) {
        pollfd fds[2] = {{listenFd, POLLIN, 0}, {wakeRead, POLLIN, 0}};
        int r = ::poll(fds, 2, -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[1].revents != 0) return;
        if ((fds[0].revents & POLLIN) == 0) continue;
        int fd = ::accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            // Out of descriptors or memory: back off instead of spinning.
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            continue;
        }
        int one = 1;
        // Small responses on keep-alive connections must not wait for delayed ACKs.
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        reapFinished();

        auto c = std::make_shared<Connection>();
        c->fd = fd;
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) {
            ::close(fd);
            return;
        }
        conns.push_back(c);
        try {
            c->thread = std::thread([this, c] {
                serve(*c);
                c->finished = true;
            });
        } catch (const std::system_error&) {
            conns.pop_back();
            ::close(fd);
        }
    }
}

void HttpServer::Impl::serve(Connection& c) {
    bool graceful = true;
    if (ctx) {
        c.ssl = SSL_new(ctx);
        ERR_clear_error();
        if (!c.ssl || SSL_set_fd(c.ssl, c.fd) != 1 || SSL_accept(c.ssl) != 1) {
            ERR_clear_error();
            closeConnection(c, false);
            return;
        }
        if (!opts.clientCaPem.empty()) {
            X509* peer = SSL_get1_peer_certificate(c.ssl);
            if (peer && SSL_get_verify_result(c.ssl) == X509_V_OK) {
                std::vector<std::string> cns =
                    nameEntries(X509_get_subject_name(peer), NID_commonName);
                if (!cns.empty()) c.peerCn = cns.front();
                c.peerOrgs = nameEntries(X509_get_subject_name(peer), NID_organizationName);
            }
            X509_free(peer);
        }
    }

    for (;;) {
        ParsedRequest parsed;
        int status = readRequest(c, parsed);
        if (status == kConnectionClosed) {
            graceful = false;
            break;
        }
        if (status != kRequestOk) {
            // The rest of the input cannot be framed any more: answer, then close.
            std::string body = std::string(reasonPhrase(status)) + "\n";
            std::string out =
                "HTTP/1.1 " + std::to_string(status) + " " + reasonPhrase(status) +
                "\r\nDate: " + httpDate() +
                "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\nConnection: close\r\n\r\n" + body;
            c.writeAll(out);
            break;
        }
        parsed.req.clientCertCommonName = c.peerCn;
        parsed.req.clientCertOrganization = c.peerOrgs.empty() ? "" : c.peerOrgs.front();

        ConnectionWriter writer(c, parsed);
        try {
            handler(parsed.req, writer);
        } catch (const std::exception& e) {
            writer.handlerFailed(e.what());
        } catch (...) {
            writer.handlerFailed("unknown exception");
        }
        if (!writer.finish()) {
            std::lock_guard<std::mutex> lock(c.mu);
            graceful = !c.cut && !c.stopping && !c.broken && writer.closeAfter();
            break;
        }
    }
    closeConnection(c, graceful);
}

// graceful: we chose to close after a complete response, so say goodbye properly and let the
// client read it; otherwise just drop the socket.
void HttpServer::Impl::closeConnection(Connection& c, bool graceful) {
    if (graceful && !c.broken) {
        if (c.ssl) {
            ERR_clear_error();
            SSL_shutdown(c.ssl);  // sends close_notify; we do not wait for the peer's
            ERR_clear_error();
        }
        // Closing with unread input would send RST, which can destroy the response still in
        // flight (e.g. a 413 before the body). Half-close and drain briefly first.
        ::shutdown(c.fd, SHUT_WR);
        auto deadline = std::chrono::steady_clock::now() + kLingerTime;
        char buf[kReadBuffer];
        size_t drained = 0;
        while (drained < kMaxBodyBytes) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            pollfd p{c.fd, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
            ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n <= 0) break;
            drained += static_cast<size_t>(n);
        }
    }
    {
        std::lock_guard<std::mutex> lock(c.mu);
        c.fdOpen = false;
        ::close(c.fd);
    }
    if (c.ssl) {
        SSL_free(c.ssl);
        c.ssl = nullptr;
    }
    ERR_clear_error();
}

void HttpServer::Impl::releaseResources() {
    if (listenFd >= 0) ::close(listenFd);
    if (wakeRead >= 0) ::close(wakeRead);
    if (wakeWrite >= 0) ::close(wakeWrite);
    listenFd = wakeRead = wakeWrite = -1;
    if (ctx) SSL_CTX_free(ctx);
    ctx = nullptr;
}

HttpServer::HttpServer(HttpServerOptions opts) : impl_(std::make_unique<Impl>()) {
    impl_->opts = std::move(opts);
}

HttpServer::~HttpServer() {
    stop();
}

void HttpServer::start(HttpHandler handler) {
    Impl& s = *impl_;
    std::lock_guard<std::mutex> lock(s.stopMu);
    if (s.started) throw std::logic_error("HttpServer::start called twice");
    if (!handler) throw std::invalid_argument("HttpServer::start needs a handler");
    ignoreSigpipe();
    try {
        if (s.opts.tls) s.ctx = makeServerContext(s.opts);
        s.bindAndListen();
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
            throw std::runtime_error(std::string("HttpServer: pipe: ") + std::strerror(errno));
        s.wakeRead = fds[0];
        s.wakeWrite = fds[1];
        s.handler = std::move(handler);
        s.acceptThread = std::thread([&s] { s.acceptLoop(); });
    } catch (...) {
        s.releaseResources();
        throw;
    }
    s.started = true;
}

void HttpServer::stop() {
    Impl& s = *impl_;
    std::lock_guard<std::mutex> lock(s.stopMu);
    if (!s.started || s.stopped) return;
    s.stopped = true;
    {
        std::lock_guard<std::mutex> l(s.mu);
        s.stopping = true;
    }
    char byte = 1;
    while (::write(s.wakeWrite, &byte, 1) < 0 && errno == EINTR) {
    }
    s.acceptThread.join();

    // The accept thread is gone, so the list cannot grow any more.
    std::list<std::shared_ptr<Connection>> conns;
    {
        std::lock_guard<std::mutex> l(s.mu);
        conns.swap(s.conns);
    }
    for (auto& c : conns) {
        std::lock_guard<std::mutex> cl(c->mu);
        c->stopping = true;
        if (c->fdOpen) ::shutdown(c->fd, SHUT_RDWR);
    }
    for (auto& c : conns) c->thread.join();
    s.releaseResources();
}

int HttpServer::port() const {
    return impl_->boundPort;
}

std::string HttpServer::url() const {
    const std::string& host =
        impl_->opts.host.empty() ? std::string("127.0.0.1") : impl_->opts.host;
    bool v6 = host.find(':') != std::string::npos;
    return std::string(impl_->opts.tls ? "https://" : "http://") + (v6 ? "[" : "") + host +
           (v6 ? "]" : "") + ":" + std::to_string(port());
}

void HttpServer::closeStreams() {
    Impl& s = *impl_;
    std::lock_guard<std::mutex> lock(s.mu);
    for (auto& c : s.conns) {
        std::lock_guard<std::mutex> cl(c->mu);
        if (!c->streaming || !c->fdOpen) continue;
        c->cut = true;
        ::shutdown(c->fd, SHUT_RDWR);
    }
}

}  // namespace sluice::testing
