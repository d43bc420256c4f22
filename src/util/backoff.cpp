#include "sluice/util/backoff.h"

#include <cmath>

namespace sluice {

std::chrono::milliseconds ExponentialBackoff::delay(uint32_t attempt) const {
    double ms = static_cast<double>(base.count()) * std::pow(factor, static_cast<double>(attempt));
    if (!std::isfinite(ms) || ms > static_cast<double>(cap.count())) return cap;
    return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

}  // namespace sluice
