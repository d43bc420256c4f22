#pragma once
// Opaque list continuation tokens, shaped like kube-apiserver's: base64 of
// {"v":"meta.k8s.io/v1","rv":<list revision>,"start":"<next key>"}.
#include <cstdint>
#include <optional>
#include <string>

namespace sluice::testing {

struct ContinueToken {
    uint64_t rv;
    std::string start;
};
std::string encodeContinueToken(uint64_t rv, const std::string& start);
std::optional<ContinueToken> decodeContinueToken(const std::string& token);

}  // namespace sluice::testing
