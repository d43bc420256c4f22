#include "sluice/util/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <stdexcept>

namespace sluice {

void setupLogging(const std::string& format, const std::string& level) {
    auto lvl = spdlog::level::from_str(level);
    if (lvl == spdlog::level::off && level != "off") {
        throw std::invalid_argument("unknown log level '" + level + "'");
    }
    auto logger = spdlog::stderr_color_mt("sluice");
    if (format == "json") {
        // One JSON object per line; %v is the message, escaped by the caller's fmt args.
        logger->set_pattern(
            R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"%n","thread":%t,"msg":"%v"})",
            spdlog::pattern_time_type::utc);
    } else if (format == "text") {
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
    } else {
        throw std::invalid_argument("unknown log format '" + format + "' (want json or text)");
    }
    logger->set_level(lvl);
    spdlog::set_default_logger(logger);
}

}  // namespace sluice
