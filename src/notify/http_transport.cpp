// The real Transport: one cpprestsdk request per call, with a hard deadline, an optional
// proxy, and https verified against the system's CAs (cpprestsdk's default on Linux).
#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>

#include <strings.h>

#include <future>
#include <vector>

#include "internal.h"

namespace sluice::notify {

namespace {

namespace http = web::http;
namespace client = web::http::client;

// Retry-After is either delay-seconds or an HTTP-date (RFC 9110 10.2.3).
std::chrono::milliseconds parseRetryAfter(const http::http_headers& headers) {
    auto it = headers.find("Retry-After");
    if (it == headers.end()) return std::chrono::milliseconds(0);
    const std::string value = utility::conversions::to_utf8string(it->second);
    try {
        std::size_t used = 0;
        long seconds = std::stol(value, &used);
        if (used == value.size() && seconds >= 0) return std::chrono::seconds(seconds);
    } catch (const std::exception&) {
    }
    auto when = utility::datetime::from_string(it->second, utility::datetime::RFC_1123);
    if (!when.is_initialized()) return std::chrono::milliseconds(0);
    auto now = utility::datetime::utc_now();
    if (when.to_interval() <= now.to_interval()) return std::chrono::milliseconds(0);
    // datetime intervals count 100 ns ticks.
    return std::chrono::milliseconds((when.to_interval() - now.to_interval()) / 10000);
}

// Sends with a deadline: cpprestsdk's own timeout is per socket operation, so the whole call
// is bounded here and cancelled when it overruns.
HttpAnswer perform(client::http_client& http, http::http_request& req,
                   std::chrono::milliseconds timeout) {
    pplx::cancellation_token_source cts;
    auto task = http.request(req, cts.get_token()).then([](http::http_response r) {
        return r.extract_utf8string(true).then([r](std::string body) {
            HttpAnswer answer;
            answer.status = static_cast<int>(r.status_code());
            answer.body = std::move(body);
            answer.retryAfter = parseRetryAfter(r.headers());
            return answer;
        });
    });
    auto done = std::make_shared<std::promise<void>>();
    auto finished = done->get_future();
    task.then([done](pplx::task<HttpAnswer>) { done->set_value(); });
    const bool timedOut = finished.wait_for(timeout) == std::future_status::timeout;
    if (timedOut) cts.cancel();
    finished.wait_for(std::chrono::seconds(5));  // cancelled: ends promptly
    HttpAnswer failed;
    if (timedOut) failed.error = "timed out after " + std::to_string(timeout.count()) + "ms";
    try {
        auto answer = task.get();
        return timedOut ? failed : answer;
    } catch (const std::exception& e) {
        // cpprestsdk's messages name the failure ("Failed to connect..."), not the URL.
        if (!timedOut) failed.error = e.what();
        return failed;
    }
}

web::uri parseUri(const std::string& text, const char* what) {
    try {
        return web::uri(utility::conversions::to_string_t(text));
    } catch (const std::exception&) {
        // web::uri's message quotes the URL, which may hold a secret.
        throw std::invalid_argument(std::string("invalid ") + what + " URL");
    }
}

// cpprestsdk ignores user info in a proxy URI: "http://user:pass@host:3128" becomes
// credentials (Basic) and a proxy without them.
web::web_proxy makeProxy(const std::string& proxy) {
    const web::uri uri = parseUri(proxy, "proxy");
    if (uri.user_info().empty()) return web::web_proxy(uri);
    web::uri_builder bare;
    bare.set_scheme(uri.scheme()).set_host(uri.host()).set_port(uri.port());
    web::web_proxy result(bare.to_uri());
    const auto info = web::uri::decode(uri.user_info());
    const auto colon = info.find(U(':'));
    result.set_credentials(web::credentials(
        info.substr(0, colon), colon == utility::string_t::npos ? U("") : info.substr(colon + 1)));
    return result;
}

class HttpTransport final : public Transport {
  public:
    HttpAnswer send(const HttpCall& call, const std::string& proxy,
                    std::chrono::milliseconds timeout) override {
        if (timeout <= std::chrono::milliseconds::zero()) timeout = std::chrono::seconds(10);
        try {
            const web::uri uri = parseUri(call.url, "destination");
            client::http_client_config cfg;
            // Only a backstop: perform() enforces the deadline.
            cfg.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(
                timeout * 2 + std::chrono::seconds(1)));
            if (!proxy.empty()) cfg.set_proxy(makeProxy(proxy));
            web::uri_builder root;
            root.set_scheme(uri.scheme()).set_host(uri.host()).set_port(uri.port());
            client::http_client http(root.to_uri(), cfg);

            http::http_request req(utility::conversions::to_string_t(call.method));
            web::uri_builder target;
            target.set_path(uri.path().empty() ? U("/") : uri.path());
            if (!uri.query().empty()) target.set_query(uri.query());
            req.set_request_uri(target.to_uri());
            req.headers().add(U("User-Agent"), U("sluice"));
            std::string contentType = "application/json";
            for (const auto& [name, value] : call.headers) {
                if (strcasecmp(name.c_str(), "Content-Type") == 0)
                    contentType = value;
                else
                    req.headers().add(utility::conversions::to_string_t(name),
                                      utility::conversions::to_string_t(value));
            }
            // As bytes: cpprest's std::string overload wraps a char buffer that it then uses
            // as a uint8_t one (undefined behaviour, reported by UBSan).
            std::vector<uint8_t> bytes(call.body.begin(), call.body.end());
            const auto size = bytes.size();
            req.set_body(concurrency::streams::bytestream::open_istream(std::move(bytes)), size,
                         utility::conversions::to_string_t(contentType));
            return perform(http, req, timeout);
        } catch (const std::exception& e) {
            HttpAnswer failed;
            failed.error = std::string("request failed: ") + e.what();
            return failed;
        }
    }
};

}  // namespace

std::unique_ptr<Transport> makeHttpTransport() {
    return std::make_unique<HttpTransport>();
}

}  // namespace sluice::notify
