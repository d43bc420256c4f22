#pragma once
#include <spdlog/spdlog.h>

#include <string>

namespace sluice {

// Configures the default spdlog logger. format is "text" or "json"; level is an spdlog level
// name (trace, debug, info, warn, error). Throws std::invalid_argument on unknown values.
void setupLogging(const std::string& format, const std::string& level);

}  // namespace sluice
