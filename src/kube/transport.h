#pragma once
// HTTP(S) transport for RestClient, over cpprestsdk. Kept behind this header so that only
// transport.cpp pays for cpprest/boost headers.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "sluice/kube/client.h"
#include "sluice/kube/config.h"
#include "sluice/util/stop.h"

namespace sluice::kube::detail {

struct HttpCall {
    std::string method;  // GET, POST, PUT, PATCH, DELETE
    std::string target;  // path + query, already percent-encoded
    std::string body;
    std::string contentType;  // for a body
    std::string verb;         // for stats: get, list, create, ...
    bool idempotent = true;   // false: retried only when the server cannot have acted
    std::string accept = "";  // "" = application/json
};

struct HttpResponse {
    int code = 0;
    std::string body;
    std::optional<std::chrono::seconds> retryAfter;
};

class Transport {
  public:
    explicit Transport(const ClusterConfig& cfg);  // throws ConfigError for bad URL / PEM
    ~Transport();

    // Sends with rate limiting, a timeout and retries; returns the final HTTP answer (any code).
    // Throws TransportError when no answer could be had.
    HttpResponse call(const HttpCall& call);

    // Streams a response line by line as it arrives (watch). Returns nullopt once the stream
    // ended cleanly, onLine returned false or stop fired; returns the answer when the server
    // replied with a non-2xx code. Throws TransportError when the connection fails or stays
    // silent for idleTimeout. Not retried.
    std::optional<HttpResponse> stream(const HttpCall& call, std::chrono::milliseconds idleTimeout,
                                       const std::function<bool(std::string& line)>& onLine,
                                       const StopToken& stop);

    RequestStats stats() const;
    void setObserver(RequestObserver observer);
    std::string url(const std::string& target) const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::kube::detail
