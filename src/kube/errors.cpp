#include "sluice/kube/errors.h"

namespace sluice::kube {

namespace {

// The reason Kubernetes would give for a bare HTTP status (apimachinery's reasonForError).
std::string reasonForCode(int code) {
    switch (code) {
        case 400:
            return "BadRequest";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "NotFound";
        case 405:
            return "MethodNotAllowed";
        case 406:
            return "NotAcceptable";
        case 409:
            return "Conflict";
        case 410:
            return "Gone";
        case 413:
            return "RequestEntityTooLarge";
        case 415:
            return "UnsupportedMediaType";
        case 422:
            return "Invalid";
        case 429:
            return "TooManyRequests";
        case 500:
            return "InternalError";
        case 503:
            return "ServiceUnavailable";
        case 504:
            return "Timeout";
        default:
            return code >= 500 ? "InternalError" : "Unknown";
    }
}

// First bytes of a body, on one line, for messages about non-Status answers.
std::string excerpt(const std::string& body) {
    constexpr size_t kMax = 256;
    std::string out;
    for (size_t i = 0; i < body.size() && i < kMax; ++i) {
        unsigned char c = static_cast<unsigned char>(body[i]);
        out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
    }
    if (body.size() > kMax) out += "...";
    return out;
}

std::string whatOf(int code, const std::string& reason, const std::string& message) {
    return reason + " (" + std::to_string(code) + "): " + message;
}

std::optional<std::chrono::seconds> retryAfterFromDetails(const nlohmann::json& details) {
    if (details.is_object()) {
        auto it = details.find("retryAfterSeconds");
        if (it != details.end() && it->is_number_integer() && it->get<int64_t>() > 0)
            return std::chrono::seconds(it->get<int64_t>());
    }
    return std::nullopt;
}

}  // namespace

ApiError::ApiError(int code, std::string reason, std::string message, nlohmann::json details,
                   std::optional<std::chrono::seconds> retryAfter)
    : std::runtime_error(whatOf(code, reason, message)),
      code_(code),
      reason_(std::move(reason)),
      message_(std::move(message)),
      details_(std::move(details)),
      retryAfter_(retryAfter) {}

ApiError ApiError::fromResponse(int httpCode, const std::string& body,
                                std::optional<std::chrono::seconds> retryAfter) {
    auto status = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (status.is_object() && status.value("kind", "") == "Status") {
        std::string reason = status.value("reason", "");
        if (reason.empty()) reason = reasonForCode(httpCode);
        std::string message = status.value("message", "");
        if (message.empty()) message = "HTTP " + std::to_string(httpCode);
        nlohmann::json details = status.contains("details") ? status["details"] : nlohmann::json{};
        if (!retryAfter) retryAfter = retryAfterFromDetails(details);
        return ApiError(httpCode, std::move(reason), std::move(message), std::move(details),
                        retryAfter);
    }
    std::string message = "HTTP " + std::to_string(httpCode);
    if (!body.empty()) message += ": " + excerpt(body);
    return ApiError(httpCode, reasonForCode(httpCode), std::move(message), {}, retryAfter);
}

ApiError ApiError::fromStatus(const nlohmann::json& status) {
    if (!status.is_object()) {
        return ApiError(500, "InternalError",
                        "watch error event without a Status: " + excerpt(status.dump()));
    }
    int code = 500;
    if (auto it = status.find("code"); it != status.end() && it->is_number_integer())
        code = it->get<int>();
    std::string reason = status.value("reason", "");
    if (reason.empty()) reason = reasonForCode(code);
    std::string message = status.value("message", "");
    if (message.empty()) message = "watch error " + std::to_string(code);
    nlohmann::json details = status.contains("details") ? status["details"] : nlohmann::json{};
    auto retryAfter = retryAfterFromDetails(details);
    return ApiError(code, std::move(reason), std::move(message), std::move(details), retryAfter);
}

bool ApiError::isRetriable() const {
    if (code_ == 429) return true;
    if (code_ >= 500 && code_ != 501) return true;
    return reason_ == "ServerTimeout" || reason_ == "Timeout";
}

}  // namespace sluice::kube
