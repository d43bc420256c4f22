#include "sluice/util/stop.h"

#include <gtest/gtest.h>

#include <thread>

TEST(Stop, CallbackRunsOnceOnStopAndAtOnceWhenLate) {
    sluice::StopSource src;
    int calls = 0;
    {
        sluice::StopCallback cb(src.token(), [&] { ++calls; });
        src.requestStop();
        src.requestStop();
    }
    EXPECT_EQ(calls, 1);
    sluice::StopCallback late(src.token(), [&] { ++calls; });
    EXPECT_EQ(calls, 2);
}

TEST(Stop, UnregisteredCallbackDoesNotRun) {
    sluice::StopSource src;
    int calls = 0;
    {
        sluice::StopCallback cb(src.token(), [&] { ++calls; });
    }
    src.requestStop();
    EXPECT_EQ(calls, 0);
}

TEST(Stop, SleepIsWokenByStop) {
    sluice::StopSource src;
    std::thread t([&] { src.requestStop(); });
    EXPECT_FALSE(src.token().sleepFor(std::chrono::minutes(5)));
    t.join();
    EXPECT_TRUE(sluice::StopToken().sleepFor(std::chrono::milliseconds(1)));
}
