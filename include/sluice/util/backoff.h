#pragma once
#include <chrono>
#include <cstdint>

namespace sluice {

// Capped exponential backoff: base * factor^attempt, never above cap. attempt counts from 0.
struct ExponentialBackoff {
    std::chrono::milliseconds base{200};
    double factor = 2.0;
    std::chrono::milliseconds cap{30000};

    std::chrono::milliseconds delay(uint32_t attempt) const;
};

}  // namespace sluice
