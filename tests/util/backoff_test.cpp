#include "sluice/util/backoff.h"

#include <gtest/gtest.h>

using namespace std::chrono_literals;

TEST(Backoff, GrowsExponentiallyAndCaps) {
    sluice::ExponentialBackoff b{100ms, 2.0, 1000ms};
    EXPECT_EQ(b.delay(0), 100ms);
    EXPECT_EQ(b.delay(1), 200ms);
    EXPECT_EQ(b.delay(3), 800ms);
    EXPECT_EQ(b.delay(4), 1000ms);
    EXPECT_EQ(b.delay(1000), 1000ms);
}
