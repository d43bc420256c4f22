#include "format.h"

#include <gtest/gtest.h>

namespace sluice::plugin {
namespace {

using namespace std::chrono_literals;
using std::chrono::hours;
using std::chrono::milliseconds;

std::string hd(milliseconds d) {
    return humanDuration(d);
}

// The cases of kubectl's HumanDuration (k8s.io/apimachinery/pkg/util/duration).
TEST(PluginFormat, HumanDurationLikeKubectl) {
    EXPECT_EQ(hd(-3s), "<invalid>");
    EXPECT_EQ(hd(-1500ms), "0s");
    EXPECT_EQ(hd(0s), "0s");
    EXPECT_EQ(hd(999ms), "0s");
    EXPECT_EQ(hd(45s), "45s");
    EXPECT_EQ(hd(119s), "119s");
    EXPECT_EQ(hd(120s), "2m");
    EXPECT_EQ(hd(150s), "2m30s");
    EXPECT_EQ(hd(9min + 59s), "9m59s");
    EXPECT_EQ(hd(10min + 30s), "10m");
    EXPECT_EQ(hd(179min), "179m");
    EXPECT_EQ(hd(3h), "3h");
    EXPECT_EQ(hd(3h + 5min + 20s), "3h5m");
    EXPECT_EQ(hd(8h + 30min), "8h");
    EXPECT_EQ(hd(47h), "47h");
    EXPECT_EQ(hd(48h), "2d");
    EXPECT_EQ(hd(53h), "2d5h");
    EXPECT_EQ(hd(hours(24 * 8)), "8d");
    EXPECT_EQ(hd(hours(24 * 729)), "729d");
    EXPECT_EQ(hd(hours(24 * 730)), "2y");
    EXPECT_EQ(hd(hours(24 * 740)), "2y10d");
    EXPECT_EQ(hd(hours(24 * 365 * 8 + 24 * 5)), "8y");
}

TEST(PluginFormat, AgeOfTimestamps) {
    auto now = std::chrono::sys_days{std::chrono::year{2026} / 12 / 4} + 12h;
    EXPECT_EQ(age("2026-12-04T11:55:00Z", now), "5m");
    EXPECT_EQ(age("2026-12-04T09:00:00Z", now), "3h");
    EXPECT_EQ(age("2026-12-02T12:00:00Z", now), "2d");
    EXPECT_EQ(age("", now), "<unknown>");
    EXPECT_EQ(age("yesterday", now), "<unknown>");
    EXPECT_EQ(formatRfc3339(now + 1500ms), "2026-12-04T12:00:01Z");
}

TEST(PluginFormat, TablesAsKubectlPrintsThem) {
    Table t({"name", "Sync Status", "age"});
    t.addRow({"guestbook", "Synced", "5m"});
    t.addRow({"a", "", "3h"});
    // Columns: widest cell + 3, at least 6; the last column is not padded; no trailing blanks.
    EXPECT_EQ(t.str(),
              "NAME        SYNC STATUS   AGE\n"
              "guestbook   Synced        5m\n"
              "a                         3h\n");
    Table narrow({"ID", "DATE"});
    narrow.addRow({"0", "2026-12-04T12:00:00Z"});
    EXPECT_EQ(narrow.str(), "ID    DATE\n0     2026-12-04T12:00:00Z\n");
}

TEST(PluginFormat, JsonYamlAndRevisions) {
    json v = {{"b", 1}, {"a", {{"c", "x"}}}};
    EXPECT_EQ(toJsonText(v), "{\n    \"a\": {\n        \"c\": \"x\"\n    },\n    \"b\": 1\n}\n");
    EXPECT_EQ(toYamlText(v), "a:\n  c: x\nb: 1\n");
    EXPECT_EQ(shortRevision("0123456789abcdef0123456789abcdef01234567"), "0123456");
    EXPECT_EQ(shortRevision("main"), "main");
    EXPECT_EQ(textAt(v, "/a/c"), "x");
    EXPECT_EQ(textAt(v, "/b"), "1");
    EXPECT_EQ(textAt(v, "/nope"), "");
}

}  // namespace
}  // namespace sluice::plugin
