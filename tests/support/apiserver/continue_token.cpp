#include "apiserver/continue_token.h"

#include <nlohmann/json.hpp>

#include "sluice/util/base64.h"

namespace sluice::testing {

std::string encodeContinueToken(uint64_t rv, const std::string& start) {
    nlohmann::json j = {{"v", "meta.k8s.io/v1"}, {"rv", rv}, {"start", start}};
    return base64Encode(j.dump());
}

std::optional<ContinueToken> decodeContinueToken(const std::string& token) {
    auto raw = base64Decode(token);
    if (!raw) return std::nullopt;
    auto j = nlohmann::json::parse(*raw, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("v", "") != "meta.k8s.io/v1" ||
        !j.contains("rv") || !j["rv"].is_number_unsigned() || !j.contains("start"))
        return std::nullopt;
    return ContinueToken{j["rv"].get<uint64_t>(), j["start"].get<std::string>()};
}

}  // namespace sluice::testing
