#pragma once
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

namespace sluice::kube {

// A response from the API server that carried an error; built from the metav1.Status body
// when there is one.
class ApiError : public std::runtime_error {
  public:
    ApiError(int code, std::string reason, std::string message, nlohmann::json details = {},
             std::optional<std::chrono::seconds> retryAfter = std::nullopt);

    // Parses a Status body (or anything else) returned with HTTP status httpCode.
    static ApiError fromResponse(int httpCode, const std::string& body,
                                 std::optional<std::chrono::seconds> retryAfter = std::nullopt);
    // A Status object carried by a watch ERROR event.
    static ApiError fromStatus(const nlohmann::json& status);

    int code() const { return code_; }
    const std::string& reason() const { return reason_; }  // e.g. "NotFound", "Conflict"
    const std::string& message() const { return message_; }
    const nlohmann::json& details() const { return details_; }
    std::optional<std::chrono::seconds> retryAfter() const { return retryAfter_; }

    bool isNotFound() const { return code_ == 404; }
    bool isAlreadyExists() const { return code_ == 409 && reason_ == "AlreadyExists"; }
    bool isConflict() const { return code_ == 409 && reason_ != "AlreadyExists"; }
    bool isGone() const { return code_ == 410 || reason_ == "Expired" || reason_ == "Gone"; }
    bool isInvalid() const { return code_ == 422; }
    bool isUnauthorized() const { return code_ == 401; }
    bool isForbidden() const { return code_ == 403; }
    bool isTooManyRequests() const { return code_ == 429; }
    bool isServerError() const { return code_ >= 500; }
    // Worth retrying as is: 429, 5xx (except 501), and server timeouts.
    bool isRetriable() const;

  private:
    int code_;
    std::string reason_;
    std::string message_;
    nlohmann::json details_;
    std::optional<std::chrono::seconds> retryAfter_;
};

// The request never got an HTTP response: connection refused, TLS failure, timeout.
class TransportError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Bad or missing client configuration (kubeconfig, in-cluster files).
class ConfigError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

}  // namespace sluice::kube
