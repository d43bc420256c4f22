#include "apiserver/continue_token.h"

#include <nlohmann/json.hpp>

#include <cstring>

namespace sluice::testing {

static const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64Encode(const std::string& in) {
    std::string out;
    size_t i = 0;
    while (i + 2 < in.size()) {
        uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
        out += kB64[(n >> 18) & 63];
        out += kB64[(n >> 12) & 63];
        out += kB64[(n >> 6) & 63];
        out += kB64[n & 63];
        i += 3;
    }
    if (i + 1 == in.size()) {
        uint32_t n = uint8_t(in[i]) << 16;
        out += kB64[(n >> 18) & 63];
        out += kB64[(n >> 12) & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
        out += kB64[(n >> 18) & 63];
        out += kB64[(n >> 12) & 63];
        out += kB64[(n >> 6) & 63];
        out += '=';
    }
    return out;
}

std::optional<std::string> base64Decode(const std::string& in) {
    std::string out;
    uint32_t buf = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '=') break;
        const char* p = std::strchr(kB64, c);
        if (!p || c == '\0') return std::nullopt;
        buf = (buf << 6) | uint32_t(p - kB64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += char((buf >> bits) & 0xff);
        }
    }
    return out;
}

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
