#include "sluice/util/logging.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <nlohmann/json.hpp>

#include <sstream>

TEST(Logging, JsonFormatEscapesMessagesIntoValidJson) {
    sluice::setupLogging("text", "info");
    std::ostringstream out;
    auto logger = spdlog::default_logger();
    logger->sinks().push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
    sluice::setupLogging("json", "info");  // formats every sink of the logger, ours included
    spdlog::info("applied \"{}\" with tab\there and \\ slash", "web");
    spdlog::debug("not shown at info");
    logger->sinks().pop_back();
    std::string line = out.str();
    ASSERT_FALSE(line.empty());
    auto j = nlohmann::json::parse(line.substr(0, line.find('\n')));
    EXPECT_EQ(j["msg"], "applied \"web\" with tab\there and \\ slash");
    EXPECT_EQ(j["level"], "info");
    EXPECT_EQ(line.find("not shown"), std::string::npos);
}

TEST(Logging, RejectsUnknownSettings) {
    EXPECT_THROW(sluice::setupLogging("xml", "info"), std::invalid_argument);
    EXPECT_THROW(sluice::setupLogging("text", "loud"), std::invalid_argument);
}
