#pragma once
// A minimal HTTP/1.1 client (plain or TLS via OpenSSL) for the API server tests: one
// connection per request, chunked bodies decoded, and a line reader for watch streams.
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "apiserver/api_server.h"

namespace sluice::testing {

struct ClientResponse {
    int status = 0;  // 0 = connection failed or cut before a complete response
    std::map<std::string, std::string> headers;  // lower-case keys
    std::string body;
    nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
    std::string header(const std::string& k) const {
        auto it = headers.find(k);
        return it == headers.end() ? "" : it->second;
    }
};

class Connection;

class TestClient {
  public:
    explicit TestClient(const ApiServer& server) : TestClient(server, server.token()) {}
    TestClient(const ApiServer& server, std::string token);

    // Presents this client certificate in the TLS handshake (mTLS).
    void setClientCertificate(std::string certPem, std::string keyPem) {
        certPem_ = std::move(certPem);
        keyPem_ = std::move(keyPem);
    }

    ClientResponse request(const std::string& method, const std::string& target,
                           const std::string& body = "",
                           const std::string& contentType = "application/json",
                           std::map<std::string, std::string> headers = {});
    ClientResponse get(const std::string& t) { return request("GET", t); }
    ClientResponse post(const std::string& t, const nlohmann::json& b) {
        return request("POST", t, b.dump());
    }
    ClientResponse put(const std::string& t, const nlohmann::json& b) {
        return request("PUT", t, b.dump());
    }
    ClientResponse del(const std::string& t, const nlohmann::json& b = nullptr) {
        return request("DELETE", t, b.is_null() ? "" : b.dump());
    }
    ClientResponse mergePatch(const std::string& t, const nlohmann::json& b) {
        return request("PATCH", t, b.dump(), "application/merge-patch+json");
    }
    ClientResponse apply(const std::string& t, const std::string& yaml) {
        return request("PATCH", t, yaml, "application/apply-patch+yaml");
    }

    // A watch (or any streamed response): next() returns one decoded JSON line.
    class Stream {
      public:
        ~Stream();
        int status = 0;
        std::optional<nlohmann::json> next(std::chrono::milliseconds timeout);
        bool ended() const { return ended_; }        // stream finished or connection closed
        bool cleanEnd() const { return cleanEnd_; }  // ended with the final zero-length chunk

      private:
        friend class TestClient;
        std::unique_ptr<Connection> conn_;
        std::string buf_;    // raw bytes not yet de-chunked
        std::string lines_;  // de-chunked payload
        bool ended_ = false;
        bool cleanEnd_ = false;
    };
    std::unique_ptr<Stream> stream(const std::string& target,
                                   std::map<std::string, std::string> headers = {});

  private:
    std::string host_;
    int port_;
    bool tls_;
    std::string caPem_;
    std::string token_;
    std::string certPem_, keyPem_;
};

}  // namespace sluice::testing
