#include "sluice/metricprovider/client.h"

#include <spdlog/spdlog.h>

#include <cpprest/http_client.h>
#include <future>
#include <stdexcept>

#include "sluice/util/base64.h"

namespace sluice::metricprovider {

namespace http = web::http;
namespace client = web::http::client;
using canaryengine::MetricResult;

struct PrometheusClient::Impl {
    std::string address;   // as configured, for messages
    std::string basePath;  // path prefix without a trailing '/'
    std::string authorization;
    std::chrono::milliseconds timeout;
    std::unique_ptr<client::http_client> http;

    MetricResult get(const std::string& promql) {
        std::string target =
            basePath + "/api/v1/query?query=" + web::uri::encode_data_string(promql);
        http::http_request req(http::methods::GET);
        req.set_request_uri(web::uri(target));
        req.headers().add("Accept", "application/json");
        req.headers().add("User-Agent", "sluice");
        if (!authorization.empty()) req.headers().add("Authorization", authorization);

        // The deadline covers headers and body; cancelling closes the socket, so the task ends
        // promptly afterwards and nothing outlives this call.
        pplx::cancellation_token_source cts;
        auto task = http->request(req, cts.get_token()).then([](http::http_response r) {
            return r.extract_utf8string(true).then([r](std::string body) {
                return std::make_pair(static_cast<int>(r.status_code()), std::move(body));
            });
        });
        auto done = std::make_shared<std::promise<void>>();
        auto finished = done->get_future();
        task.then([done](pplx::task<std::pair<int, std::string>>) { done->set_value(); });
        bool timedOut = finished.wait_for(timeout) == std::future_status::timeout;
        if (timedOut) cts.cancel();
        std::string where = "GET " + address + "/api/v1/query";
        try {
            auto [status, body] = task.get();
            if (timedOut)  // finished just as the deadline passed: still too late
                return MetricResult::queryError(where + ": timed out after " +
                                                std::to_string(timeout.count()) + "ms");
            return interpretQueryResponse(status, body);
        } catch (const std::exception& e) {
            if (timedOut)
                return MetricResult::queryError(where + ": timed out after " +
                                                std::to_string(timeout.count()) + "ms");
            auto* he = dynamic_cast<const http::http_exception*>(&e);
            std::string detail = e.what();
            if (he && he->error_code()) detail += " (" + he->error_code().message() + ")";
            return MetricResult::queryError(where + ": " + detail);
        }
    }
};

PrometheusClient::PrometheusClient(ClientOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
    const std::string& a = options_.address;
    if (a.rfind("http://", 0) != 0 && a.rfind("https://", 0) != 0)
        throw std::invalid_argument("Prometheus address \"" + a + "\" is not an http(s) URL");
    web::uri uri;
    try {
        uri = web::uri(a);
    } catch (const std::exception& e) {
        throw std::invalid_argument("Prometheus address \"" + a + "\": " + e.what());
    }
    if (uri.host().empty())
        throw std::invalid_argument("Prometheus address \"" + a + "\" has no host");
    if (options_.timeout <= std::chrono::milliseconds::zero())
        throw std::invalid_argument("Prometheus timeout must be positive");

    Impl& m = *impl_;
    m.address = a;
    while (!m.address.empty() && m.address.back() == '/') m.address.pop_back();
    m.basePath = uri.path();
    while (!m.basePath.empty() && m.basePath.back() == '/') m.basePath.pop_back();
    m.timeout = options_.timeout;
    const Credentials& c = options_.credentials;
    if (!c.bearerToken.empty()) {
        m.authorization = "Bearer " + c.bearerToken;
    } else if (!c.username.empty() || !c.password.empty()) {
        m.authorization = "Basic " + base64Encode(c.username + ":" + c.password);
    }

    client::http_client_config cfg;
    // Only a backstop: get() enforces the deadline itself.
    cfg.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(options_.timeout * 2 +
                                                                          std::chrono::seconds(1)));
    cfg.set_validate_certificates(!options_.insecureSkipVerify);
    web::uri_builder root;
    root.set_scheme(uri.scheme()).set_host(uri.host()).set_port(uri.port());
    m.http = std::make_unique<client::http_client>(root.to_uri(), cfg);
}

PrometheusClient::~PrometheusClient() = default;

MetricResult PrometheusClient::query(const std::string& promql) {
    std::string q = collapseWhitespace(promql);
    if (q.empty()) return MetricResult::queryError("empty query");
    MetricResult r = impl_->get(q);
    if (r.kind != MetricResult::Kind::Value)
        spdlog::debug("prometheus: {} -> {}: {}", q,
                      r.kind == MetricResult::Kind::NoData ? "no data" : "error", r.reason);
    return r;
}

HealthStatus PrometheusClient::health() {
    MetricResult r = impl_->get("vector(1)");
    if (r.hasValue() && r.value == 1) return {true, ""};
    if (r.hasValue())
        return {false, "vector(1) returned " + std::to_string(r.value) + " instead of 1"};
    return {false, r.reason};
}

}  // namespace sluice::metricprovider
