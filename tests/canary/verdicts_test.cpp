// The engine's judgement of metric results against their threshold ranges.
#include "verdicts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

namespace sluice::canary::detail {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

MetricSpec metric(const std::string& name, std::optional<double> min, std::optional<double> max) {
    MetricSpec m;
    m.name = name;
    m.thresholdRange.min = min;
    m.thresholdRange.max = max;
    return m;
}

TEST(JudgeMetrics, ValuesInsideTheirRangesPass) {
    MetricVerdicts verdicts =
        judgeMetrics({metric("success", 99, std::nullopt), metric("latency", std::nullopt, 500),
                      metric("band", 1, 2)},
                     {{"success", MetricResult::measured(99)},
                      {"latency", MetricResult::measured(500)},
                      {"band", MetricResult::measured(1.5)}});
    EXPECT_THAT(verdicts.failures, IsEmpty());
    EXPECT_THAT(verdicts.missing, IsEmpty());
}

TEST(JudgeMetrics, ValuesOutsideFailInMetricOrder) {
    MetricVerdicts verdicts = judgeMetrics(
        {metric("success", 99, std::nullopt), metric("latency", std::nullopt, 500)},
        {{"latency", MetricResult::measured(512.25)}, {"success", MetricResult::measured(97)}});
    EXPECT_THAT(verdicts.failures, ElementsAre("success 97 < 99", "latency 512.25 > 500"));
    EXPECT_THAT(verdicts.missing, IsEmpty());
}

TEST(JudgeMetrics, MissingValuesAreNeitherPassNorFailure) {
    MetricVerdicts verdicts =
        judgeMetrics({metric("a", 1, std::nullopt), metric("b", 1, std::nullopt),
                      metric("c", 1, std::nullopt), metric("d", 1, std::nullopt)},
                     {{"a", MetricResult::noData("empty vector")},
                      {"b", MetricResult::queryError("timeout")},
                      {"c", MetricResult::measured(std::nan(""))},
                      {"d", MetricResult::measured(0.5)}});
    EXPECT_THAT(verdicts.missing, ElementsAre("a: no data (empty vector)",
                                              "b: query error (timeout)", "c: value is NaN"));
    EXPECT_THAT(verdicts.failures, ElementsAre("d 0.5 < 1"));
}

}  // namespace
}  // namespace sluice::canary::detail
