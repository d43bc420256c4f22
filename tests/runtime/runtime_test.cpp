#include "sluice/runtime/runtime.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <thread>

namespace sluice::runtime {
namespace {

using namespace std::chrono_literals;

TEST(ResourceVersionReached, ComparesNumbersAsNumbersAndOtherwiseOnlyEquality) {
    EXPECT_TRUE(resourceVersionReached("10", "9"));
    EXPECT_TRUE(resourceVersionReached("10", "10"));
    EXPECT_FALSE(resourceVersionReached("9", "10"));
    EXPECT_TRUE(resourceVersionReached("anything", ""));
    EXPECT_FALSE(resourceVersionReached("", "5"));
    EXPECT_TRUE(resourceVersionReached("abc", "abc"));
    EXPECT_FALSE(resourceVersionReached("abd", "abc"));
    EXPECT_FALSE(resourceVersionReached("12", "abc"));
    // Beyond 64 bits a number is opaque: only equality counts.
    EXPECT_FALSE(resourceVersionReached("99999999999999999999999", "2"));
}

struct Writes {
    std::string status;
    int count = 0;
};

TEST(PendingWrites, OverlaysUntilTheCacheReachesTheWrittenVersion) {
    PendingWrites<Writes> pending;
    EXPECT_FALSE(pending.unseen("ns/a", "1"));
    pending.record("ns/a", "5", [](Writes& w) {
        w.status = "Running";
        ++w.count;
    });
    pending.record("ns/a", "7", [](Writes& w) { ++w.count; });
    auto unseen = pending.unseen("ns/a", "6");
    ASSERT_TRUE(unseen);
    EXPECT_EQ(unseen->first, "7");
    EXPECT_EQ(unseen->second.status, "Running");
    EXPECT_EQ(unseen->second.count, 2);
    EXPECT_FALSE(pending.unseen("ns/b", "1"));  // keys are separate
    // The cache shows version 7: everything recorded is visible and forgotten.
    EXPECT_FALSE(pending.unseen("ns/a", "7"));
    EXPECT_FALSE(pending.unseen("ns/a", "6"));
}

TEST(PendingWrites, IgnoresAnswersWithoutVersionOrOlderThanKept) {
    PendingWrites<Writes> pending;
    pending.record("k", "", [](Writes& w) { w.status = "no version"; });
    EXPECT_FALSE(pending.unseen("k", "0"));
    pending.record("k", "9", [](Writes& w) { w.status = "new"; });
    pending.record("k", "8", [](Writes& w) { w.status = "old"; });
    auto unseen = pending.unseen("k", "1");
    ASSERT_TRUE(unseen);
    EXPECT_EQ(unseen->first, "9");
    EXPECT_EQ(unseen->second.status, "new");
    pending.forget("k");
    EXPECT_FALSE(pending.unseen("k", "1"));
}

TEST(Observer, CallsTheFunctionLastSet) {
    Observer<int> observer;
    observer.notify(1);  // nothing set: no call
    int seen = 0;
    observer.set([&](const int& v) { seen += v; });
    observer.notify(2);
    observer.set([&](const int& v) { seen += 10 * v; });
    observer.notify(3);
    EXPECT_EQ(seen, 32);
}

workqueue::Options fastQueue() {
    workqueue::Options o;
    o.backoff = ExponentialBackoff{1ms, 2.0, 10ms};
    return o;
}

// Waits (bounded) until pred() holds.
template <class Pred>
bool eventually(Pred pred) {
    for (int i = 0; i < 500; ++i) {
        if (pred()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return pred();
}

TEST(Runtime, WorkersReconcileKeysAddedThroughTheGate) {
    Runtime runtime(fastQueue(), 2);
    std::mutex mu;
    std::map<std::string, int> calls;
    runtime.start([&](const std::string& key) {
        std::lock_guard lock(mu);
        ++calls[key];
        return Result{};
    });
    runtime.gate()->add("ns/a");
    runtime.add("ns/b");
    EXPECT_TRUE(eventually([&] {
        std::lock_guard lock(mu);
        return calls["ns/a"] == 1 && calls["ns/b"] == 1;
    }));
    std::this_thread::sleep_for(50ms);  // no requeue was asked for
    std::lock_guard lock(mu);
    EXPECT_EQ(calls["ns/a"], 1);
}

TEST(Runtime, RequeuesAfterTheDelayAndRetriesFailuresWithBackoff) {
    Runtime runtime(fastQueue(), 1);
    std::atomic<int> requeued{0}, failed{0};
    runtime.start([&](const std::string& key) {
        Result r;
        if (key == "requeue" && ++requeued < 3) r.requeueAfter = 5ms;
        if (key == "fail" && ++failed < 3) r.backoff = true;
        return r;
    });
    runtime.add("requeue");
    runtime.add("fail");
    EXPECT_TRUE(eventually([&] { return requeued == 3 && failed == 3; }));
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(requeued, 3);
    EXPECT_EQ(failed, 3);
}

TEST(Runtime, RunNowNeverOverlapsAWorkerOnTheSameKey) {
    Runtime runtime(fastQueue(), 2);
    std::atomic<int> inside{0}, maxInside{0}, runs{0};
    auto reconcile = [&](const std::string&) {
        int now = ++inside;
        int prev = maxInside.load();
        while (now > prev && !maxInside.compare_exchange_weak(prev, now)) {
        }
        std::this_thread::sleep_for(2ms);
        --inside;
        ++runs;
        return Result{};
    };
    runtime.start(reconcile);
    std::thread caller([&] {
        for (int i = 0; i < 20; ++i) runtime.runNow("ns/a", reconcile);
    });
    for (int i = 0; i < 20; ++i) {
        runtime.add("ns/a");
        std::this_thread::sleep_for(1ms);
    }
    caller.join();
    EXPECT_TRUE(eventually([&] { return runtime.queueDepth() == 0; }));
    runtime.stop();
    EXPECT_GE(runs.load(), 21);
    EXPECT_EQ(maxInside.load(), 1);
}

TEST(Runtime, StopClosesTheGateSignalsStopAndCannotRestart) {
    Runtime runtime(fastQueue(), 1);
    std::atomic<int> calls{0};
    const StopToken token = runtime.stopToken();
    EXPECT_FALSE(token.stopRequested());
    runtime.stop();
    runtime.stop();  // idempotent
    EXPECT_TRUE(runtime.stopped());
    EXPECT_TRUE(token.stopRequested());
    runtime.start([&](const std::string&) {
        ++calls;
        return Result{};
    });
    runtime.add("ns/a");
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(calls, 0);
    EXPECT_EQ(runtime.queueDepth(), 0u);
}

TEST(Runtime, StopLetsTheRunningReconcileFinish) {
    Runtime runtime(fastQueue(), 1);
    std::atomic<bool> entered{false}, finished{false};
    runtime.start([&](const std::string&) {
        entered = true;
        const StopToken token = runtime.stopToken();
        while (!token.stopRequested()) std::this_thread::sleep_for(1ms);
        finished = true;
        return Result{};
    });
    runtime.add("ns/a");
    ASSERT_TRUE(eventually([&] { return entered.load(); }));
    runtime.stop();  // joins the worker, which saw the stop request
    EXPECT_TRUE(finished);
}

}  // namespace
}  // namespace sluice::runtime
