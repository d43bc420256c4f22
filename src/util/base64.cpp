#include "sluice/util/base64.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstddef>

namespace sluice {
namespace {

// EVP_*Block take an int length: larger inputs go in chunks of whole groups.
constexpr std::size_t kChunkGroups = 1 << 20;

bool inAlphabet(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

bool isSpace(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

}  // namespace

std::string base64Encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    for (std::size_t at = 0; at < bytes.size(); at += 3 * kChunkGroups) {
        const std::size_t n = std::min(bytes.size() - at, 3 * kChunkGroups);
        std::string chunk((n + 2) / 3 * 4 + 1, '\0');  // + the NUL EVP_EncodeBlock writes
        const int written = EVP_EncodeBlock(
            reinterpret_cast<unsigned char*>(chunk.data()),
            reinterpret_cast<const unsigned char*>(bytes.data() + at), static_cast<int>(n));
        out.append(chunk.data(), static_cast<std::size_t>(written));
    }
    return out;
}

std::optional<std::string> base64Decode(std::string_view text, Base64Whitespace whitespace) {
    std::string clean;
    clean.reserve(text.size());
    for (char c : text) {
        if (isSpace(c)) {
            if (whitespace == Base64Whitespace::Reject) return std::nullopt;
            continue;
        }
        clean.push_back(c);
    }
    if (clean.size() % 4 != 0) return std::nullopt;
    std::size_t padding = 0;
    if (!clean.empty() && clean.back() == '=') padding = clean[clean.size() - 2] == '=' ? 2 : 1;
    // EVP_DecodeBlock also takes '=' inside the data (as zero bits) and trims whitespace and
    // control characters at either end: only the alphabet is let through to it.
    if (!std::all_of(clean.begin(), clean.end() - static_cast<std::ptrdiff_t>(padding), inAlphabet))
        return std::nullopt;

    std::string out;
    out.reserve(clean.size() / 4 * 3);
    for (std::size_t at = 0; at < clean.size(); at += 4 * kChunkGroups) {
        const std::size_t n = std::min(clean.size() - at, 4 * kChunkGroups);
        std::string chunk(n / 4 * 3, '\0');
        const int decoded = EVP_DecodeBlock(
            reinterpret_cast<unsigned char*>(chunk.data()),
            reinterpret_cast<const unsigned char*>(clean.data() + at), static_cast<int>(n));
        if (decoded < 0) return std::nullopt;
        out.append(chunk.data(), static_cast<std::size_t>(decoded));
    }
    // EVP_DecodeBlock decodes each '=' of the padding as a zero byte and counts it.
    out.resize(out.size() - padding);
    return out;
}

}  // namespace sluice
