#include "transport.h"

#include "sluice/kube/fence.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <cpprest/http_client.h>
#include <atomic>
#include <boost/asio/ssl.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "sluice/kube/errors.h"
#include "sluice/kube/rate_limiter.h"
#include "sluice/util/base64.h"

namespace sluice::kube::detail {

namespace http = web::http;
namespace client = web::http::client;
using Clock = std::chrono::steady_clock;

namespace {

// Fails early, with a ConfigError, on PEM that OpenSSL would reject later inside cpprest's
// connection setup (where the error would surface as an obscure transport failure).
void validatePem(const ClusterConfig& cfg) {
    auto bio = [](const std::string& pem) {
        return std::unique_ptr<BIO, decltype(&BIO_free)>(
            BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
    };
    auto fail = [&](const std::string& what) { throw ConfigError(cfg.source + ": " + what); };
    if (!cfg.caPem.empty()) {
        auto b = bio(cfg.caPem);
        X509* cert = PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr);
        if (!cert) fail("certificate authority: no PEM certificate found");
        X509_free(cert);
    }
    if (!cfg.clientCertPem.empty() || !cfg.clientKeyPem.empty()) {
        auto cb = bio(cfg.clientCertPem);
        std::unique_ptr<X509, decltype(&X509_free)> cert(
            PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr), &X509_free);
        if (!cert) fail("client certificate: no PEM certificate found");
        auto kb = bio(cfg.clientKeyPem);
        std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
            PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
        if (!key) fail("client key: no PEM private key found");
        if (X509_check_private_key(cert.get(), key.get()) != 1)
            fail("client certificate and client key do not match");
    }
    ERR_clear_error();
}

std::optional<std::chrono::seconds> parseRetryAfter(const http::http_response& r) {
    auto it = r.headers().find("Retry-After");
    if (it == r.headers().end()) return std::nullopt;
    try {
        size_t used = 0;
        long v = std::stol(it->second, &used);
        if (used == it->second.size() && v >= 0) return std::chrono::seconds(v);
    } catch (const std::exception&) {
    }
    return std::nullopt;  // HTTP-date form: fall back to our own backoff
}

// How far a failed request got, which decides whether it may be retried.
enum class Failure {
    NotSent,    // never reached the server (connect/resolve failed): always safe to retry
    MaybeSent,  // the server may have acted: retry only idempotent requests
    Permanent,  // TLS handshake/verification and the like: retrying will not help
};

Failure classify(const http::http_exception& e) {
    std::string msg = e.what();
    if (msg.find("SSL handshake") != std::string::npos) return Failure::Permanent;
    if (msg.rfind("Failed to connect", 0) == 0 || msg.rfind("Error resolving", 0) == 0 ||
        msg.rfind("Failed to resolve", 0) == 0)
        return Failure::NotSent;
    return Failure::MaybeSent;
}

bool timedOut(const http::http_exception& e) {
    return e.error_code().value() == static_cast<int>(std::errc::timed_out);
}

double jitter() {
    thread_local std::mt19937 rng(std::random_device{}());
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

struct Transport::Impl {
    ClusterConfig cfg;
    web::uri base;
    client::http_client_config baseConfig;
    // One client for all ordinary requests: cpprest's asio client keeps an unbounded pool of
    // keep-alive connections and sends concurrent requests on separate connections, so it does
    // not serialise callers (guarantee_order is off).
    std::unique_ptr<client::http_client> http;
    TokenSource tokens;
    TokenBucket limiter;
    RetryPolicy retry;
    std::string basicAuth;

    std::atomic<uint64_t> requests{0}, retries{0}, throttled{0}, serverThrottled{0};
    // Requests in flight, at most cfg.maxInFlight and fewer while the server throttles.
    AdaptiveConcurrency inFlight;
    std::atomic<bool> apfSeen{false};
    mutable std::mutex observerMu;
    RequestObserver observer;

    explicit Impl(const ClusterConfig& c)
        : cfg(c),
          base(parseBase(c)),
          tokens(c),
          limiter(c.qps, c.burst),
          retry{c.maxRetries, c.retryBaseDelay, c.retryMaxDelay},
          inFlight(c.maxInFlight) {
        validatePem(cfg);
        if (cfg.impersonateGroups.size() > 1)
            throw ConfigError(cfg.source + ": at most one impersonated group is supported, got " +
                              std::to_string(cfg.impersonateGroups.size()));
        if (!cfg.impersonateGroups.empty() && cfg.impersonateUser.empty())
            throw ConfigError(cfg.source + ": an impersonated group needs an impersonated user");
        if (!cfg.username.empty() || !cfg.password.empty())
            basicAuth = "Basic " + base64Encode(cfg.username + ":" + cfg.password);
        // Only a backstop for ordinary requests (see send()); watches set their own.
        baseConfig.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(
            requestTimeout() * 2 + std::chrono::seconds(5)));
        baseConfig.set_validate_certificates(!cfg.insecureSkipTlsVerify);
        std::string caPem = cfg.caPem, certPem = cfg.clientCertPem, keyPem = cfg.clientKeyPem;
        if (!caPem.empty() || !certPem.empty()) {
            baseConfig.set_ssl_context_callback([caPem, certPem,
                                                 keyPem](boost::asio::ssl::context& ctx) {
                if (!caPem.empty()) {
                    // Trust only the configured CA, not the system store cpprest loaded.
                    SSL_CTX_set_cert_store(ctx.native_handle(), X509_STORE_new());
                    ctx.add_certificate_authority(boost::asio::buffer(caPem.data(), caPem.size()));
                }
                if (!certPem.empty()) {
                    ctx.use_certificate_chain(boost::asio::buffer(certPem.data(), certPem.size()));
                    ctx.use_private_key(boost::asio::buffer(keyPem.data(), keyPem.size()),
                                        boost::asio::ssl::context::pem);
                }
            });
        }
        http = std::make_unique<client::http_client>(base, baseConfig);
    }

    static web::uri parseBase(const ClusterConfig& c) {
        if (c.server.rfind("https://", 0) != 0 && c.server.rfind("http://", 0) != 0)
            throw ConfigError(c.source + ": server \"" + c.server + "\" is not an http(s) URL");
        try {
            return web::uri(c.server);
        } catch (const std::exception& e) {
            throw ConfigError(c.source + ": server \"" + c.server + "\": " + e.what());
        }
    }

    std::string url(const std::string& target) const { return cfg.server + target; }

    // token: from tokens.token(), read per request so that a rotated service-account token or
    // a refreshed exec plugin token is picked up.
    http::http_request build(const HttpCall& c, const std::string& token) {
        http::http_request req(c.method);
        req.set_request_uri(web::uri(c.target));
        auto& h = req.headers();
        h.add("Accept", c.accept.empty() ? std::string("application/json") : c.accept);
        h.add("User-Agent", cfg.userAgent);
        if (!token.empty())
            h.add("Authorization", "Bearer " + token);
        else if (!basicAuth.empty())
            h.add("Authorization", basicAuth);
        if (!cfg.impersonateUser.empty()) h.add("Impersonate-User", cfg.impersonateUser);
        for (const std::string& g : cfg.impersonateGroups) h.add("Impersonate-Group", g);
        // cpprest takes the TLS name (SNI and certificate check) from the Host header.
        if (!cfg.tlsServerName.empty()) h.add("Host", cfg.tlsServerName);
        if (!c.body.empty() || c.method == "POST" || c.method == "PUT" || c.method == "PATCH") {
            // As bytes: cpprest's std::string overload wraps a char buffer that it then uses
            // as a uint8_t one (undefined behaviour, reported by UBSan).
            std::vector<uint8_t> bytes(c.body.begin(), c.body.end());
            auto size = bytes.size();
            req.set_body(concurrency::streams::bytestream::open_istream(std::move(bytes)), size,
                         c.contentType.empty() ? "application/json" : c.contentType);
        }
        return req;
    }

    std::chrono::milliseconds requestTimeout() const {
        return cfg.requestTimeout.count() > 0 ? cfg.requestTimeout
                                              : std::chrono::milliseconds(30000);
    }
    std::string timeoutMessage() const {
        return "timed out after " + std::to_string(requestTimeout().count()) + "ms";
    }

    // One attempt, headers and body, within requestTimeout. The deadline is enforced here by
    // cancellation rather than by cpprest's own timer: when that timer closes a reused TLS
    // connection, cpprest may take it for a keep-alive connection the server closed and
    // silently re-send the request (unsafe for POST). It checks cancellation before re-sending.
    HttpResponse send(const HttpCall& c, const std::string& token, bool* timedOut) {
        pplx::cancellation_token_source cts;
        auto task =
            http->request(build(c, token), cts.get_token()).then([this](http::http_response r) {
                noteApf(r);
                return r.extract_utf8string(true).then([r](std::string body) {
                    HttpResponse out;
                    out.code = r.status_code();
                    out.retryAfter = parseRetryAfter(r);
                    out.body = std::move(body);
                    return out;
                });
            });
        auto done = std::make_shared<std::promise<void>>();
        auto finished = done->get_future();
        task.then([done](pplx::task<HttpResponse>) { done->set_value(); });
        if (finished.wait_for(requestTimeout()) == std::future_status::timeout) {
            *timedOut = true;
            cts.cancel();
        }
        return task.get();
    }

    // Holds one request slot for its lifetime; throttled() before it ends reports a 429.
    struct Slot {
        Impl& m;
        bool serverThrottled = false;
        explicit Slot(Impl& impl) : m(impl) { m.inFlight.acquire(); }
        ~Slot() { m.inFlight.release(serverThrottled); }
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;
    };

    // kube-apiserver names the FlowSchema and priority level that judged every request it
    // classified (X-Kubernetes-PF-FlowSchema-UID, -PriorityLevel-UID).
    void noteApf(const http::http_response& r) {
        if (apfSeen.load(std::memory_order_relaxed)) return;
        if (r.headers().has("X-Kubernetes-PF-FlowSchema-UID") ||
            r.headers().has("X-Kubernetes-PF-PriorityLevel-UID")) {
            apfSeen = true;
            if (cfg.qpsOnlyWithoutApf && limiter.enabled())
                spdlog::info("kube: {} runs API Priority and Fairness: client-side rate limit off",
                             cfg.server);
        }
    }

    void pace() {
        if (cfg.qpsOnlyWithoutApf && apfSeen.load(std::memory_order_relaxed)) return;
        auto waited = limiter.acquire();
        if (waited > Clock::duration::zero()) ++throttled;
    }

    void observe(const std::string& verb, int code, Clock::duration latency) {
        ++requests;
        RequestObserver obs;
        {
            std::lock_guard lock(observerMu);
            obs = observer;
        }
        if (!obs) return;
        try {
            obs(verb, code, std::chrono::duration_cast<std::chrono::nanoseconds>(latency));
        } catch (const std::exception& e) {
            spdlog::warn("kube: request observer threw: {}", e.what());
        }
    }

    std::string describe(const http::http_exception& e, std::chrono::milliseconds timeout) const {
        if (timedOut(e))
            return "timed out after " + std::to_string(timeout.count()) + "ms (" + e.what() + ")";
        return std::string(e.what()) + " (" + e.error_code().message() + ")";
    }
};

Transport::Transport(const ClusterConfig& cfg) : impl_(std::make_unique<Impl>(cfg)) {}
Transport::~Transport() = default;

std::string Transport::url(const std::string& target) const {
    return impl_->url(target);
}

RequestStats Transport::stats() const {
    RequestStats st;
    st.requests = impl_->requests.load();
    st.retries = impl_->retries.load();
    st.throttledWaits = impl_->throttled.load();
    st.serverThrottled = impl_->serverThrottled.load();
    st.concurrencyLimit = impl_->inFlight.limit();
    st.apf = impl_->apfSeen.load();
    return st;
}

void Transport::setObserver(RequestObserver observer) {
    std::lock_guard lock(impl_->observerMu);
    impl_->observer = std::move(observer);
}

HttpResponse Transport::call(const HttpCall& c) {
    Impl& m = *impl_;
    bool authRetried = false;
    for (uint32_t attempt = 0;;) {
        // Fenced writes are checked at each attempt: a retry may come after the Lease expired.
        if (c.method != "GET") checkFence(c.method + " " + m.url(c.target));
        m.pace();
        // May run an exec credential plugin; its TransportError (naming the command) is
        // passed on as is.
        const std::string token = m.tokens.token();
        auto start = Clock::now();
        HttpResponse resp;
        std::optional<Failure> failure;
        std::string cause;
        bool timedOut = false;
        try {
            Impl::Slot slot(m);
            resp = m.send(c, token, &timedOut);
            slot.serverThrottled = resp.code == 429;
        } catch (const http::http_exception& e) {
            failure = timedOut ? Failure::MaybeSent : classify(e);
            cause = timedOut ? m.timeoutMessage() : m.describe(e, m.requestTimeout());
        } catch (const std::exception& e) {
            failure = timedOut ? Failure::MaybeSent : Failure::Permanent;
            cause = timedOut ? m.timeoutMessage() : e.what();
        }
        m.observe(c.verb, failure ? 0 : resp.code, Clock::now() - start);
        if (!failure && resp.code == 429) ++m.serverThrottled;
        // A 401 to an exec plugin's token (expired or revoked before its expirationTimestamp):
        // the plugin runs again and the request is sent once more with the new token. The
        // server authenticates before acting, so this is safe for any request. (client-go only
        // refreshes for the next request.) Not counted as a retry.
        if (!failure && resp.code == 401 && !authRetried && m.tokens.invalidate(token)) {
            authRetried = true;
            spdlog::debug("kube: {} {} got 401: asking the exec credential plugin for a new token",
                          c.method, m.url(c.target));
            continue;
        }

        bool retriable;
        if (!failure) {
            retriable = shouldRetryStatus(resp.code, c.idempotent, resp.retryAfter.has_value());
        } else {
            retriable =
                *failure == Failure::NotSent || (*failure == Failure::MaybeSent && c.idempotent);
        }
        if (retriable && static_cast<int>(attempt) < m.retry.maxRetries) {
            auto delay = m.retry.delay(attempt, failure ? std::nullopt : resp.retryAfter, jitter());
            spdlog::debug("kube: {} {} failed ({}), retry {}/{} in {}ms", c.method, m.url(c.target),
                          failure ? cause : "HTTP " + std::to_string(resp.code), attempt + 1,
                          m.retry.maxRetries, delay.count());
            ++m.retries;
            std::this_thread::sleep_for(delay);
            ++attempt;
            continue;
        }
        if (failure) {
            std::string msg = c.method + " " + m.url(c.target) + ": " + cause;
            if (attempt > 0) msg += " (after " + std::to_string(attempt) + " retries)";
            throw TransportError(msg);
        }
        return resp;
    }
}

std::optional<HttpResponse> Transport::stream(const HttpCall& c,
                                              std::chrono::milliseconds idleTimeout,
                                              const std::function<bool(std::string&)>& onLine,
                                              const StopToken& stop) {
    Impl& m = *impl_;
    if (stop.stopRequested()) return std::nullopt;
    m.pace();
    // A client of its own: cpprest's timeout is per client and restarts whenever data arrives,
    // which makes it the watch's inactivity bound.
    client::http_client_config cfg = m.baseConfig;
    cfg.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(idleTimeout));
    client::http_client hc(m.base, cfg);

    // Cancelling closes the socket, which wakes a read blocked on the body. Captured by value:
    // the stop callback may still run (on another thread) just after we return.
    pplx::cancellation_token_source cts;
    StopCallback onStop(stop, [cts]() mutable { cts.cancel(); });
    struct CancelOnExit {
        pplx::cancellation_token_source cts;
        ~CancelOnExit() { cts.cancel(); }  // never leave a stream running after returning
    } cancelOnExit{cts};

    std::string where = "watch " + m.url(c.target);
    http::http_response resp;
    for (bool authRetried = false;;) {
        const std::string token = m.tokens.token();
        auto start = Clock::now();
        try {
            resp = hc.request(m.build(c, token), cts.get_token()).get();
        } catch (const std::exception& e) {
            m.observe(c.verb, 0, Clock::now() - start);
            if (stop.stopRequested()) return std::nullopt;
            auto* he = dynamic_cast<const http::http_exception*>(&e);
            throw TransportError(where + ": " + (he ? m.describe(*he, idleTimeout) : e.what()));
        }
        m.observe(c.verb, resp.status_code(), Clock::now() - start);
        m.noteApf(resp);
        // As in call(): one more try with a fresh exec plugin token after a 401.
        if (resp.status_code() == 401 && !authRetried && m.tokens.invalidate(token)) {
            authRetried = true;
            try {
                resp.content_ready().wait();  // let the connection be reused
            } catch (const std::exception&) {
            }
            if (stop.stopRequested()) return std::nullopt;
            continue;
        }
        break;
    }
    if (resp.status_code() < 200 || resp.status_code() >= 300) {
        HttpResponse out;
        out.code = resp.status_code();
        out.retryAfter = parseRetryAfter(resp);
        try {
            out.body = resp.extract_utf8string(true).get();
        } catch (const std::exception&) {
            // The status code alone still makes a useful ApiError.
        }
        return out;
    }

    auto sb = resp.body().streambuf();
    std::vector<uint8_t> buf(64 * 1024);
    std::string pending;
    using traits = concurrency::streams::streambuf<uint8_t>::traits;
    // Appends whatever has arrived, blocking for at least one byte; false at a clean end.
    auto readSome = [&]() -> bool {
        try {
            size_t avail = sb.in_avail();
            if (avail == 0) {
                auto ch = sb.bumpc().get();
                if (ch == traits::eof()) return false;
                pending.push_back(static_cast<char>(ch));
                avail = sb.in_avail();
            }
            if (avail > 0) {
                size_t n = sb.getn(buf.data(), std::min(avail, buf.size())).get();
                pending.append(reinterpret_cast<const char*>(buf.data()), n);
            }
            return true;
        } catch (const http::http_exception& e) {
            if (stop.stopRequested()) return false;
            throw TransportError(where + ": stream broken: " + m.describe(e, idleTimeout));
        } catch (const std::exception& e) {
            if (stop.stopRequested()) return false;
            throw TransportError(where + ": stream broken: " + e.what());
        }
    };
    // Delivers complete lines; false when the consumer asked to stop.
    auto deliver = [&](bool atEnd) -> bool {
        size_t pos = 0, nl;
        while ((nl = pending.find('\n', pos)) != std::string::npos ||
               (atEnd && pos < pending.size())) {
            if (nl == std::string::npos) nl = pending.size();
            std::string line = pending.substr(pos, nl - pos);
            pos = nl + 1;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.empty()) continue;
            if (stop.stopRequested() || !onLine(line)) return false;
        }
        pending.erase(0, std::min(pos, pending.size()));
        return true;
    };
    while (readSome()) {
        if (!deliver(false)) return std::nullopt;
    }
    if (!stop.stopRequested()) deliver(true);
    return std::nullopt;
}

}  // namespace sluice::kube::detail
