#include "sluice/util/strings.h"

#include <gtest/gtest.h>

TEST(Join, PutsTheSeparatorBetweenParts) {
    EXPECT_EQ(sluice::join({}, "; "), "");
    EXPECT_EQ(sluice::join({"a"}, "; "), "a");
    EXPECT_EQ(sluice::join({"a", "b", "c"}, ", "), "a, b, c");
}

TEST(Join, EmptyLeadingPartsLeaveNoSeparator) {
    EXPECT_EQ(sluice::join({"", "a"}, ","), "a");
    EXPECT_EQ(sluice::join({"a", "", "b"}, ","), "a,,b");
    EXPECT_EQ(sluice::join({"a", ""}, ","), "a,");
}
