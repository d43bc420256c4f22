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

namespace sluice {
namespace {

TEST(PercentDecode, DecodesEscapesAndLeavesTheRest) {
    EXPECT_EQ(percentDecode("p%40ss%2Fw%3Ad"), "p@ss/w:d");
    EXPECT_EQ(percentDecode("%7e%7E"), "~~");  // either case of hex digits
    EXPECT_EQ(percentDecode("100%"), "100%");  // a lone '%' stays
    EXPECT_EQ(percentDecode("%zz%4"), "%zz%4");
    EXPECT_EQ(percentDecode("a+b"), "a+b");
    EXPECT_EQ(percentDecode("a+b%2B", /*plusIsSpace=*/true), "a b+");
    EXPECT_EQ(percentDecode(""), "");
}

}  // namespace
}  // namespace sluice
