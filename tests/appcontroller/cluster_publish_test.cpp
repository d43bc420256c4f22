#include <gtest/gtest.h>

#include "clusters.h"

namespace sluice::appcontroller {
namespace {

using namespace std::chrono_literals;

PublishedClusters published(const std::string& state, int cached, Clock::TimePoint at) {
    PublishedClusters p;
    p.data = {{"in-cluster", state + "/" + std::to_string(cached)}};
    p.states = {{"in-cluster", state}};
    p.at = at;
    return p;
}

TEST(PublishClusters, StatesAtOnceCountsAloneAtMostOnceAMinute) {
    const Clock::TimePoint t0{std::chrono::hours(1)};
    const PublishedClusters last = published("Successful", 10, t0);
    EXPECT_TRUE(shouldPublishClusters(PublishedClusters{}, last)) << "the first write";
    EXPECT_FALSE(shouldPublishClusters(last, published("Successful", 10, t0 + 10s)))
        << "nothing changed";
    EXPECT_TRUE(shouldPublishClusters(last, published("Failed", 10, t0 + 10s)))
        << "a state changed";
    EXPECT_TRUE(shouldPublishClusters(last, published("Failed", 11, t0 + 2s)));
    EXPECT_FALSE(shouldPublishClusters(last, published("Successful", 11, t0 + 10s)))
        << "its own ConfigMap, cached after the first write";
    EXPECT_FALSE(shouldPublishClusters(last, published("Successful", 11, t0 + 59s)));
    EXPECT_TRUE(shouldPublishClusters(last, published("Successful", 11, t0 + 60s)));
}

}  // namespace
}  // namespace sluice::appcontroller
