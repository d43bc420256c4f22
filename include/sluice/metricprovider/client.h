#pragma once
// Prometheus HTTP API client: instant queries (GET <address>/api/v1/query) with a per-request
// timeout, bearer or basic auth and optional TLS verification skip, as Flagger's prometheus
// provider. cpprestsdk stays inside client.cpp.
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "sluice/metricprovider/provider.h"

namespace sluice::metricprovider {

struct Credentials {
    std::string bearerToken;  // sent as "Authorization: Bearer ..." when set
    std::string username;     // else basic auth when username or password is set
    std::string password;
};

struct CredentialsResult {
    Credentials credentials;
    std::string error;  // empty on success
    bool ok() const { return error.empty(); }
};
// From the decoded data of a MetricTemplate provider's secretRef, with Flagger's keys: `token`
// (bearer) wins; otherwise both `username` and `password` are required.
CredentialsResult credentialsFromSecretData(const std::map<std::string, std::string>& data);

struct ClientOptions {
    // "http(s)://host:port" with an optional path prefix ("http://host/prometheus").
    std::string address;
    std::chrono::milliseconds timeout{5000};  // whole request; Flagger's default is 5 s
    bool insecureSkipVerify = false;
    Credentials credentials;
};

// Turns one HTTP response of /api/v1/query into a MetricResult (no I/O; exposed for tests).
// vector: the first series' value (Flagger's provider keeps the last one; either way the order
// is Prometheus', so queries should aggregate to one series); scalar: its value; an empty
// vector, NaN or +/-Inf: NoData; matrix/string results, `"status":"error"` bodies (errorType:
// error), other HTTP errors and unreadable bodies: QueryError.
canaryengine::MetricResult interpretQueryResponse(int httpStatus, const std::string& body);

struct HealthStatus {
    bool ok = false;
    std::string message;  // why not, when !ok
};

class PrometheusClient : public MetricProvider {
  public:
    // Throws std::invalid_argument when the address is not an http(s) URL.
    explicit PrometheusClient(ClientOptions options);
    ~PrometheusClient() override;
    PrometheusClient(const PrometheusClient&) = delete;
    PrometheusClient& operator=(const PrometheusClient&) = delete;

    // Whitespace outside string literals is collapsed first (templates are multi-line), then
    // the query is URL-encoded. Safe to call from several threads.
    canaryengine::MetricResult query(const std::string& promql) override;

    // Runs `vector(1)` and expects 1, as Flagger's check of a MetricTemplate provider: proves
    // address, auth and the query API in one request.
    HealthStatus health();

    const ClientOptions& options() const { return options_; }

  private:
    struct Impl;
    ClientOptions options_;
    std::unique_ptr<Impl> impl_;
};

// Collapses each run of whitespace outside "...", '...' and `...` literals to one space and
// trims both ends.
std::string collapseWhitespace(const std::string& promql);

}  // namespace sluice::metricprovider
