#include "sluice/workqueue/gate.h"

#include <gtest/gtest.h>

using sluice::workqueue::Gate;
using sluice::workqueue::WorkQueue;

TEST(Gate, AddsToTheQueueUntilClosed) {
    WorkQueue queue;
    Gate gate(queue);
    gate.add("ns/a");
    EXPECT_EQ(queue.len(), 1u);
    gate.close();
    gate.add("ns/b");
    gate.close();
    EXPECT_EQ(queue.len(), 1u);
    EXPECT_EQ(queue.get(), "ns/a");
}
