#include "sluice/runtime/shard.h"

#include "sluice/runtime/ownership.h"

#include <cctype>

namespace sluice::runtime {

namespace {

// FNV-1a over the bytes, then a 64-bit finaliser (splitmix64) so that keys differing in their
// last character still spread over every shard.
uint64_t weight(std::string_view key, int shard) {
    uint64_t h = 14695981039346656037ull;
    auto mix = [&](unsigned char c) {
        h ^= c;
        h *= 1099511628211ull;
    };
    for (char c : key) mix(static_cast<unsigned char>(c));
    mix('#');
    for (char c : std::to_string(shard)) mix(static_cast<unsigned char>(c));
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

}  // namespace

int shardOf(std::string_view key, int count) {
    if (count <= 1) return 0;
    int best = 0;
    uint64_t bestWeight = weight(key, 0);
    for (int s = 1; s < count; ++s)
        if (const uint64_t w = weight(key, s); w > bestWeight) {
            best = s;
            bestWeight = w;
        }
    return best;
}

std::string ownerOfSlot(int slot, const std::vector<std::string>& members) {
    std::string best;
    uint64_t bestWeight = 0;
    for (const auto& member : members)
        if (const uint64_t w = weight(member, slot); best.empty() || w > bestWeight) {
            best = member;
            bestWeight = w;
        }
    return best;
}

std::optional<int> ordinalOf(const std::string& podName) {
    const auto dash = podName.rfind('-');
    if (dash == std::string::npos || dash + 1 == podName.size() || podName.size() - dash > 6)
        return std::nullopt;
    int n = 0;
    for (std::size_t i = dash + 1; i < podName.size(); ++i) {
        if (!std::isdigit(static_cast<unsigned char>(podName[i]))) return std::nullopt;
        n = n * 10 + (podName[i] - '0');
    }
    return n;
}

}  // namespace sluice::runtime
