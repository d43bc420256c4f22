#include "sluice/server/http_server.h"

// spdlog (fmt) before cpprest: cpprest defines a macro U that breaks fmt's templates.
#include <spdlog/spdlog.h>

#include <cpprest/http_listener.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

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

// Handlers run on the server's own threads, not on cpprest's: a handler may block on API
// calls (the webhook receiver does) whose responses need cpprest's I/O threads, and with a
// small pool blocked handlers would leave none to complete them.
struct HttpServer::Impl {
    static constexpr std::size_t kHandlerThreads = 4;
    static constexpr std::size_t kMaxQueued = 256;  // beyond that: 503 at once

    std::unique_ptr<http_listener> listener;
    std::mutex mu;
    std::condition_variable wake;
    std::deque<std::function<void()>> jobs;
    bool stopping = false;
    std::vector<std::thread> handlers;

    void startHandlers() {
        stopping = false;
        for (std::size_t i = 0; i < kHandlerThreads; ++i) handlers.emplace_back([this] { run(); });
    }
    // Runs what is queued, then joins.
    void stopHandlers() {
        {
            std::lock_guard<std::mutex> lock(mu);
            stopping = true;
        }
        wake.notify_all();
        for (auto& t : handlers) t.join();
        handlers.clear();
    }
    bool post(std::function<void()> job) {
        {
            std::lock_guard<std::mutex> lock(mu);
            if (stopping || jobs.size() >= kMaxQueued) return false;
            jobs.push_back(std::move(job));
        }
        wake.notify_one();
        return true;
    }
    void run() {
        for (;;) {
            std::unique_lock<std::mutex> lock(mu);
            wake.wait(lock, [&] { return stopping || !jobs.empty(); });
            if (jobs.empty()) return;
            auto job = std::move(jobs.front());
            jobs.pop_front();
            lock.unlock();
            try {
                job();
            } catch (const std::exception& e) {  // e.g. replying on a closed connection
                spdlog::debug("HTTP handler: {}", e.what());
            }
        }
    }
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
    impl_->startHandlers();
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
                if (!impl_->post([this, request, reply]() mutable { reply(dispatch(request)); }))
                    reply({503, "text/plain; charset=utf-8", "busy, try again\n"});
            });
    });
    try {
        listener->open().wait();
    } catch (const std::exception& e) {
        impl_->stopHandlers();
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
    impl_->stopHandlers();
}

}  // namespace sluice::server
