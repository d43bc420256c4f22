// Webhook calls over HTTP (Flagger's semantics) and the real metric provider factory.
#include <spdlog/spdlog.h>

#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>
#include <future>
#include <vector>

#include "sluice/canarycontroller/controller.h"

namespace sluice::canarycontroller {

namespace http = web::http;
namespace client = web::http::client;

struct HttpWebhookCaller::Impl {};

HttpWebhookCaller::HttpWebhookCaller() : impl_(std::make_unique<Impl>()) {}
HttpWebhookCaller::~HttpWebhookCaller() = default;

canaryengine::WebhookResult HttpWebhookCaller::call(const WebhookRequest& request) {
    using canaryengine::WebhookOutcome;
    auto failed = [&](std::string message) {
        return canaryengine::WebhookResult{WebhookOutcome::Failed, std::move(message)};
    };
    if (request.url.rfind("http://", 0) != 0 && request.url.rfind("https://", 0) != 0)
        return failed(std::string("url \"") + request.url + "\" is not an http(s) URL");
    const auto timeout = request.timeout > std::chrono::milliseconds::zero()
                             ? request.timeout
                             : std::chrono::milliseconds(10000);
    try {
        web::uri uri(request.url);
        client::http_client_config cfg;
        // Only a backstop: the deadline is enforced below.
        cfg.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(
            timeout * 2 + std::chrono::seconds(1)));
        web::uri_builder root;
        root.set_scheme(uri.scheme()).set_host(uri.host()).set_port(uri.port());
        client::http_client http(root.to_uri(), cfg);

        http::http_request req(http::methods::POST);
        web::uri_builder target;
        target.set_path(uri.path().empty() ? "/" : uri.path());
        if (!uri.query().empty()) target.set_query(uri.query());
        req.set_request_uri(target.to_uri());
        req.headers().add("User-Agent", "sluice");
        // As bytes: cpprest's std::string overload wraps a char buffer that it then uses as a
        // uint8_t one (undefined behaviour, reported by UBSan).
        const std::string body = request.payload.dump();
        std::vector<uint8_t> bytes(body.begin(), body.end());
        const auto size = bytes.size();
        req.set_body(concurrency::streams::bytestream::open_istream(std::move(bytes)), size,
                     "application/json");

        pplx::cancellation_token_source cts;
        auto task = http.request(req, cts.get_token()).then([](http::http_response r) {
            return r.extract_utf8string(true).then([r](std::string body) {
                return std::make_pair(static_cast<int>(r.status_code()), std::move(body));
            });
        });
        auto done = std::make_shared<std::promise<void>>();
        auto finished = done->get_future();
        task.then([done](pplx::task<std::pair<int, std::string>>) { done->set_value(); });
        const bool timedOut = finished.wait_for(timeout) == std::future_status::timeout;
        if (timedOut) cts.cancel();
        finished.wait_for(std::chrono::seconds(5));  // cancelled: ends promptly
        std::string timeoutText = "timed out after ";
        timeoutText += std::to_string(timeout.count()) + "ms";
        try {
            auto [status, body] = task.get();
            if (timedOut) return failed(timeoutText);
            std::string message = "status ";
            message += std::to_string(status);
            if (status > 202) {
                if (body.size() > 200) body = body.substr(0, 200) + "...";
                if (!body.empty()) message += ": " + body;
                return failed(message);
            }
            return canaryengine::WebhookResult{WebhookOutcome::Succeeded, message};
        } catch (const std::exception& e) {
            if (timedOut) return failed(timeoutText);
            return failed(e.what());
        }
    } catch (const std::exception& e) {
        return failed(e.what());
    }
}

MetricProviderFactory prometheusProviderFactory() {
    return [](const metricprovider::ClientOptions& options)
               -> std::shared_ptr<metricprovider::MetricProvider> {
        return std::make_shared<metricprovider::PrometheusClient>(options);
    };
}

}  // namespace sluice::canarycontroller
