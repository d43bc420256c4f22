#include "unified_diff.h"

#include <gtest/gtest.h>

#include <random>

namespace sluice::plugin {
namespace {

std::string lines(int from, int to) {  // "lineN\n" for N in [from, to]
    std::string s;
    for (int i = from; i <= to; ++i) s += "line" + std::to_string(i) + "\n";
    return s;
}

// Length of the longest common subsequence, by dynamic programming.
std::size_t lcs(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    std::vector<std::vector<std::size_t>> t(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 1; i <= a.size(); ++i)
        for (std::size_t j = 1; j <= b.size(); ++j)
            t[i][j] =
                a[i - 1] == b[j - 1] ? t[i - 1][j - 1] + 1 : std::max(t[i - 1][j], t[i][j - 1]);
    return t[a.size()][b.size()];
}

TEST(UnifiedDiff, SameTextsGiveNothing) {
    EXPECT_EQ(unifiedDiff("", ""), "");
    EXPECT_EQ(unifiedDiff(lines(1, 5), lines(1, 5)), "");
}

TEST(UnifiedDiff, OneChangeWithThreeLinesOfContext) {
    std::string a = lines(1, 10);
    std::string b = a;
    b.replace(b.find("line5\n"), 6, "LINE5\n");
    UnifiedOptions o;
    o.oldLabel = "live/x";
    o.newLabel = "desired/x";
    EXPECT_EQ(unifiedDiff(a, b, o),
              "--- live/x\n"
              "+++ desired/x\n"
              "@@ -2,7 +2,7 @@\n"
              " line2\n"
              " line3\n"
              " line4\n"
              "-line5\n"
              "+LINE5\n"
              " line6\n"
              " line7\n"
              " line8\n");
}

TEST(UnifiedDiff, InsertionsAndDeletionsAtTheEdges) {
    EXPECT_EQ(unifiedDiff("", "a\nb\n"), "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+a\n+b\n");
    EXPECT_EQ(unifiedDiff("a\nb\n", ""), "--- a\n+++ b\n@@ -1,2 +0,0 @@\n-a\n-b\n");
    EXPECT_EQ(unifiedDiff("a\n", "a\nb\n"), "--- a\n+++ b\n@@ -1 +1,2 @@\n a\n+b\n");
    EXPECT_EQ(unifiedDiff("b\n", "a\nb\n"), "--- a\n+++ b\n@@ -1 +1,2 @@\n+a\n b\n");
}

TEST(UnifiedDiff, DistantChangesMakeTwoHunksNearOnesOne) {
    std::string a = lines(1, 20);
    std::string far = a;
    far.replace(far.find("line2\n"), 6, "");
    far.replace(far.find("line19\n"), 7, "");
    std::string out = unifiedDiff(a, far);
    EXPECT_EQ(out,
              "--- a\n+++ b\n"
              "@@ -1,5 +1,4 @@\n line1\n-line2\n line3\n line4\n line5\n"
              "@@ -16,5 +15,4 @@\n line16\n line17\n line18\n-line19\n line20\n");
    // Six equal lines between two changes (2 x context) still make one hunk.
    std::string near = a;
    near.replace(near.find("line5\n"), 6, "five\n");
    near.replace(near.find("line12\n"), 7, "twelve\n");
    out = unifiedDiff(a, near);
    EXPECT_NE(out.find("@@ -2,14 +2,14 @@\n"), std::string::npos) << out;
    std::size_t hunks = 0;
    for (std::size_t p = out.find("\n@@ "); p != std::string::npos; p = out.find("\n@@ ", p + 1))
        ++hunks;
    EXPECT_EQ(hunks, 1u) << out;
}

TEST(UnifiedDiff, Colour) {
    UnifiedOptions o;
    o.color = true;
    EXPECT_EQ(unifiedDiff("a\n", "b\n", o),
              "\033[1m--- a\033[0m\n\033[1m+++ b\033[0m\n\033[36m@@ -1 +1 @@\033[0m\n"
              "\033[31m-a\033[0m\n\033[32m+b\033[0m\n");
}

// The edit script rebuilds b from a and is as short as possible (edits = |a| + |b| - 2 LCS).
TEST(UnifiedDiff, EditScriptsAreShortestOnRandomInputs) {
    std::mt19937 rng(42);
    for (int round = 0; round < 400; ++round) {
        std::uniform_int_distribution<int> len(0, 25), sym(0, 4);
        std::vector<std::string> a(len(rng)), b(len(rng));
        for (auto& s : a) s = std::string(1, static_cast<char>('a' + sym(rng)));
        for (auto& s : b) s = std::string(1, static_cast<char>('a' + sym(rng)));
        auto script = diffLines(a, b);
        std::vector<std::string> rebuilt;
        std::size_t edits = 0, oldPos = 0;
        for (const auto& e : script) {
            switch (e.op) {
                case EditOp::Equal:
                    ASSERT_EQ(e.oldLine, oldPos);
                    ASSERT_EQ(a[e.oldLine], b[e.newLine]);
                    rebuilt.push_back(a[e.oldLine]);
                    ++oldPos;
                    break;
                case EditOp::Delete:
                    ASSERT_EQ(e.oldLine, oldPos);
                    ++oldPos;
                    ++edits;
                    break;
                case EditOp::Insert:
                    ASSERT_EQ(e.newLine, rebuilt.size());
                    rebuilt.push_back(b[e.newLine]);
                    ++edits;
                    break;
            }
        }
        ASSERT_EQ(oldPos, a.size());
        ASSERT_EQ(rebuilt, b);
        ASSERT_EQ(edits, a.size() + b.size() - 2 * lcs(a, b)) << "round " << round;
    }
}

TEST(UnifiedDiff, SplitLines) {
    EXPECT_EQ(splitLines(""), std::vector<std::string>{});
    EXPECT_EQ(splitLines("a\nb\n"), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(splitLines("a\n\nb"), (std::vector<std::string>{"a", "", "b"}));
}

}  // namespace
}  // namespace sluice::plugin
