#pragma once
// A small HTTP/1.1 server (plain or TLS, optional client-certificate verification) for the
// Kubernetes API test server. Hand-written on sockets + OpenSSL rather than cpprestsdk's
// listener because tests need control the listener does not give: chunked streams that can
// be cut on demand, slow responses, and client-certificate identity.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace sluice::testing {

struct HttpRequest {
    std::string method;  // "GET", "POST", ...
    std::string target;  // raw request target, e.g. "/api/v1/pods?watch=1"
    std::string path;    // percent-decoded path without query
    std::multimap<std::string, std::string> query;  // percent-decoded
    std::map<std::string, std::string> headers;     // keys lower-cased
    std::string body;                               // de-chunked if sent chunked
    std::string clientCertCommonName;               // CN of a verified client certificate, else ""
    std::string clientCertOrganization;             // O of a verified client certificate, else ""

    std::string header(const std::string& lowerName) const;
    std::string queryParam(const std::string& name) const;  // first value or ""
    bool hasQueryParam(const std::string& name) const;
};

// One response. Either respond() once, or startStream() then writeChunk()* (chunked encoding).
class ResponseWriter {
  public:
    virtual ~ResponseWriter() = default;
    virtual void respond(int status, const std::map<std::string, std::string>& headers,
                         const std::string& body) = 0;
    virtual void startStream(int status, const std::map<std::string, std::string>& headers) = 0;
    // Sends one chunk now. Returns false once the client has gone or the stream was cut.
    virtual bool writeChunk(const std::string& data) = 0;
    // True while the connection is open and not cut by closeStreams().
    virtual bool alive() const = 0;
};

struct HttpServerOptions {
    std::string host = "127.0.0.1";
    int port = 0;  // 0 = pick a free port
    bool tls = false;
    std::string certPem;  // server certificate chain (PEM), required with tls
    std::string keyPem;
    std::string clientCaPem;  // if set, client certificates signed by it are verified
    bool requireClientCert = false;
};

using HttpHandler = std::function<void(const HttpRequest&, ResponseWriter&)>;

class HttpServer {
  public:
    explicit HttpServer(HttpServerOptions opts);
    ~HttpServer();  // stops
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and starts accepting; one thread per connection, keep-alive supported.
    void start(HttpHandler handler);
    void stop();  // closes the listener and every connection, joins threads
    int port() const;
    std::string url() const;  // "https://127.0.0.1:PORT" or "http://..."

    // Cuts every open streaming response (watch) at once: the client sees the connection end
    // without the final zero-length chunk, as when a load balancer drops it.
    void closeStreams();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::testing
