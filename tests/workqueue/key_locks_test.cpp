#include "sluice/workqueue/key_locks.h"

#include <gtest/gtest.h>

using sluice::workqueue::KeyLocks;

TEST(KeyLocks, OneMutexPerKey) {
    KeyLocks locks;
    auto a = locks.mutexFor("ns/a");
    EXPECT_EQ(locks.mutexFor("ns/a"), a);
    EXPECT_NE(locks.mutexFor("ns/b"), a);
}
