#include "sync_outcome.h"

#include <gtest/gtest.h>

namespace sluice::appcontroller::detail {
namespace {

using namespace std::chrono_literals;

appengine::RetryPolicy retries(int limit) {
    appengine::RetryPolicy p;
    p.limit = limit;
    p.duration = 5s;
    p.factor = 2;
    p.maxDuration = 3min;
    return p;
}

TEST(JudgeSync, SucceededFailedTerminatedInterrupted) {
    EXPECT_EQ(judgeSync({false, false, true, "", false, false, std::nullopt, 0}).message,
              "successfully synced (all tasks run)");
    EXPECT_EQ(judgeSync({false, false, true, "", false, true, std::nullopt, 0}).message,
              "successfully synced (dry run)");
    auto failed = judgeSync({false, false, false, "boom", false, false, std::nullopt, 0});
    EXPECT_EQ(failed.phase, "Failed");
    EXPECT_EQ(failed.message, "boom");
    EXPECT_EQ(judgeSync({false, false, false, "", false, false, std::nullopt, 0}).message,
              "sync failed");
    // A failure recorded while every step still reported success (a skipped resource).
    EXPECT_EQ(judgeSync({false, false, true, "owned", false, false, std::nullopt, 0}).phase,
              "Failed");
    auto terminated = judgeSync({true, false, false, "x", false, false, retries(5), 0});
    EXPECT_EQ(terminated.phase, "Failed");
    EXPECT_EQ(terminated.message, "Operation terminated");
    EXPECT_FALSE(terminated.retryScheduled);  // never retried
    auto interrupted = judgeSync({false, true, false, "", false, false, retries(5), 0});
    EXPECT_EQ(interrupted.phase, "Running");
    EXPECT_FALSE(interrupted.retryScheduled);
}

TEST(JudgeSync, RetriesWithBackoffUntilTheLimit) {
    auto first = judgeSync({false, false, false, "boom", false, false, retries(2), 0});
    EXPECT_TRUE(first.retryScheduled);
    EXPECT_EQ(first.phase, "Running");
    EXPECT_EQ(first.retryCount, 1);
    EXPECT_EQ(first.retryDelay, 5s);
    EXPECT_EQ(first.message, "retrying attempt #1 after 5s: boom");
    auto second = judgeSync({false, false, false, "boom", false, false, retries(2), 1});
    EXPECT_EQ(second.retryDelay, 10s);
    auto last = judgeSync({false, false, false, "boom", false, false, retries(2), 2});
    EXPECT_FALSE(last.retryScheduled);
    EXPECT_EQ(last.phase, "Failed");
    EXPECT_EQ(last.message, "boom (retried 2 times)");
    EXPECT_TRUE(
        judgeSync({false, false, false, "b", false, false, retries(-1), 50}).retryScheduled);
    // A timeout is terminal: no retry.
    EXPECT_FALSE(
        judgeSync({false, false, false, "timed out", true, false, retries(5), 0}).retryScheduled);
}

appengine::ResourceComparison resource(const std::string& name, bool desired,
                                       const std::string& ownedBy = "") {
    appengine::ResourceComparison r;
    r.key = {"", "ConfigMap", "ns", name};
    r.version = "v1";
    if (desired) r.desired = std::make_shared<const nlohmann::json>(nlohmann::json::object());
    r.ownedBy = ownedBy;
    return r;
}

std::vector<std::string> names(const std::vector<appengine::InventoryEntry>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back(e.name);
    return out;
}

TEST(InventoryAfterSync, SuccessKeepsTheDesiredAndWhatWasNotPruned) {
    appengine::CompareResult compared;
    compared.resources = {resource("a", true), resource("b", true, "other"),
                          resource("gone", false), resource("kept", false)};
    const std::vector<bool> applied{true, false, false, false}, pruned{false, false, true, false};
    EXPECT_EQ(names(inventoryAfterSync(compared, {}, applied, pruned, true)),
              (std::vector<std::string>{"a", "kept"}));
}

TEST(InventoryAfterSync, FailureKeepsWhatWasRecordedAndAppliedMinusThePruned) {
    appengine::CompareResult compared;
    compared.resources = {resource("new", true), resource("untouched", true),
                          resource("gone", false)};
    const std::vector<appengine::InventoryEntry> recorded = {
        inventoryEntryOf(compared.resources[1]),
        inventoryEntryOf(compared.resources[2]),
        {"", "v1", "Secret", "ns", "older"}};
    const std::vector<bool> applied{true, false, false}, pruned{false, false, true};
    EXPECT_EQ(names(inventoryAfterSync(compared, recorded, applied, pruned, false)),
              (std::vector<std::string>{"untouched", "older", "new"}));
}

}  // namespace
}  // namespace sluice::appcontroller::detail
