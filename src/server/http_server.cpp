#include "sluice/server/http_server.h"

// spdlog (fmt) before cpprest: cpprest defines a macro U that breaks fmt's templates.
#include <spdlog/spdlog.h>

#include <cpprest/http_listener.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace sluice::server {

namespace http = web::http;
using web::http::experimental::listener::http_listener;

std::string normaliseListenAddress(const std::string& address) {
    if (address.empty() || address == "0") return "";
    auto colon = address.rfind(':');
    if (colon == std::string::npos || colon + 1 == address.size())
        throw std::invalid_argument("listen address '" + address + "' has no port (e.g. :8080)");
    const std::string port = address.substr(colon + 1);
    if (!std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }) ||
        std::stoi(port) < 1 || std::stoi(port) > 65535)
        throw std::invalid_argument("listen address '" + address + "': bad port '" + port + "'");
    std::string host = address.substr(0, colon);
    if (host.empty()) host = "0.0.0.0";
    return host + ":" + port;
}

struct HttpServer::Impl {
    std::unique_ptr<http_listener> listener;
};

HttpServer::HttpServer(std::string address, std::vector<Route> routes, std::size_t maxBodyBytes)
    : address_(normaliseListenAddress(address)),
      routes_(std::move(routes)),
      maxBodyBytes_(maxBodyBytes),
      impl_(std::make_unique<Impl>()) {
    if (address_.empty()) throw std::invalid_argument("HttpServer: no listen address");
}

HttpServer::~HttpServer() {
    stop();
}

Response HttpServer::dispatch(const Request& request) const {
    bool pathKnown = false;
    for (const auto& r : routes_) {
        if (r.path != request.path) continue;
        pathKnown = true;
        if (!r.method.empty() && r.method != request.method) continue;
        try {
            return r.handler(request);
        } catch (const std::exception& e) {
            spdlog::error("{} {}: {}", request.method, request.path, e.what());
            return {500, "text/plain; charset=utf-8", std::string("internal error: ") + e.what()};
        }
    }
    if (pathKnown) return {405, "text/plain; charset=utf-8", "method not allowed\n"};
    return {404, "text/plain; charset=utf-8", "not found\n"};
}

void HttpServer::start() {
    if (impl_->listener) return;
    auto listener = std::make_unique<http_listener>("http://" + address_);
    listener->support([this](http::http_request req) {
        auto reply = [req](const Response& r) mutable {
            http::http_response resp(static_cast<http::status_code>(r.status));
            // As bytes: cpprest's std::string overload wraps a char buffer that it then uses
            // as a uint8_t one (undefined behaviour, reported by UBSan).
            std::vector<uint8_t> bytes(r.body.begin(), r.body.end());
            auto size = bytes.size();
            resp.set_body(concurrency::streams::bytestream::open_istream(std::move(bytes)), size,
                          r.contentType);
            req.reply(resp).then([](pplx::task<void> t) {
                try {
                    t.get();
                } catch (const std::exception&) {  // the client went away; nothing to do
                }
            });
        };
        if (req.headers().content_length() > maxBodyBytes_) {
            reply({413, "text/plain; charset=utf-8",
                   "request body over " + std::to_string(maxBodyBytes_) + " bytes\n"});
            return;
        }
        Request request;
        request.method = req.method();
        request.path = http::uri::decode(req.relative_uri().path());
        for (const auto& [name, value] : req.headers()) {
            std::string key = name;
            for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            request.headers[key] = value;
        }
        req.extract_vector().then(
            [this, request, reply](pplx::task<std::vector<unsigned char>> t) mutable {
                try {
                    auto bytes = t.get();
                    if (bytes.size() > maxBodyBytes_) {
                        reply({413, "text/plain; charset=utf-8",
                               "request body over " + std::to_string(maxBodyBytes_) + " bytes\n"});
                        return;
                    }
                    request.body.assign(bytes.begin(), bytes.end());
                } catch (const std::exception& e) {
                    reply({400, "text/plain; charset=utf-8",
                           std::string("cannot read body: ") + e.what()});
                    return;
                }
                reply(dispatch(request));
            });
    });
    try {
        listener->open().wait();
    } catch (const std::exception& e) {
        throw std::runtime_error("cannot listen on " + address_ + ": " + e.what());
    }
    impl_->listener = std::move(listener);
}

void HttpServer::stop() {
    if (!impl_ || !impl_->listener) return;
    try {
        impl_->listener->close().wait();
    } catch (const std::exception& e) {
        spdlog::warn("closing {}: {}", address_, e.what());
    }
    impl_->listener.reset();
}

}  // namespace sluice::server
