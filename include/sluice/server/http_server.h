#pragma once
// The controller's own HTTP endpoints (probes, /metrics, the git webhook receiver) on
// cpprestsdk's listener. Routes are plain functions of a request, so each is testable without
// a socket; the server adds the listening, body-size limit and error handling.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sluice::server {

struct Request {
    std::string method;                          // "GET", "POST", ...
    std::string path;                            // without the query
    std::map<std::string, std::string> headers;  // keys lower-case
    std::string body;
};

struct Response {
    int status = 200;
    std::string contentType = "text/plain; charset=utf-8";
    std::string body;
};

using Handler = std::function<Response(const Request&)>;

struct Route {
    std::string method;  // "" = any method
    std::string path;
    Handler handler;
};

// ":8080" -> "0.0.0.0:8080", "localhost:9" stays; "0" or "" means disabled (returns "").
// Throws std::invalid_argument for anything without a port.
std::string normaliseListenAddress(const std::string& address);

class HttpServer {
  public:
    // `address` as normaliseListenAddress accepts it. Bodies over maxBodyBytes get 413 without
    // being read further.
    HttpServer(std::string address, std::vector<Route> routes, std::size_t maxBodyBytes = 1 << 20);
    ~HttpServer();  // stop()
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and serves; throws std::runtime_error naming the address when it cannot listen.
    void start();
    void stop();
    const std::string& address() const { return address_; }

    // Routing without a socket: 404 for an unknown path, 405 for a known path and another
    // method, 500 with the message when a handler throws.
    Response dispatch(const Request& request) const;

  private:
    struct Impl;
    std::string address_;
    std::vector<Route> routes_;
    std::size_t maxBodyBytes_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::server
