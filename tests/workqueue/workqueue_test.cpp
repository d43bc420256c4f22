#include "sluice/workqueue/workqueue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sluice::FakeClock;
using sluice::workqueue::Options;
using sluice::workqueue::WorkQueue;

namespace {

// Polls cond until it holds or the deadline passes; returns its last value.
template <class F>
bool eventually(F cond, std::chrono::milliseconds timeout = 5s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) return cond();
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

Options fakeOptions(FakeClock& clock) {
    Options o;
    o.clock = &clock;
    o.pollInterval = 2ms;
    o.backoff = {10ms, 2.0, 80ms};
    return o;
}

}  // namespace

TEST(WorkQueue, DeduplicatesQueuedKeys) {
    WorkQueue q;
    q.add("a");
    q.add("b");
    q.add("a");
    EXPECT_EQ(q.len(), 2u);
    EXPECT_EQ(q.get(), "a");
    EXPECT_EQ(q.get(), "b");
    EXPECT_EQ(q.len(), 0u);
    EXPECT_EQ(q.stats().adds, 2u);
}

TEST(WorkQueue, KeyAddedWhileProcessingIsRequeuedOnceAfterDone) {
    WorkQueue q;
    q.add("a");
    ASSERT_EQ(q.get(), "a");
    q.add("a");
    q.add("a");
    // Not handed out while in flight...
    EXPECT_EQ(q.len(), 0u);
    EXPECT_EQ(q.stats().inFlight, 1u);
    q.done("a");
    // ...but queued exactly once afterwards.
    EXPECT_EQ(q.len(), 1u);
    EXPECT_EQ(q.get(), "a");
    q.done("a");
    EXPECT_EQ(q.len(), 0u);
}

TEST(WorkQueue, GetBlocksUntilAdd) {
    WorkQueue q;
    auto f = std::async(std::launch::async, [&] { return q.get(); });
    EXPECT_EQ(f.wait_for(20ms), std::future_status::timeout);
    q.add("x");
    ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(f.get(), "x");
}

TEST(WorkQueue, AddAfterBecomesReadyWhenFakeClockPassesDueTime) {
    FakeClock clock;
    WorkQueue q(fakeOptions(clock));
    q.addAfter("a", 10s);
    q.addAfter("b", 0s);  // no delay = add
    EXPECT_EQ(q.len(), 1u);
    EXPECT_EQ(q.get(), "b");
    EXPECT_EQ(q.stats().delayed, 1u);

    auto f = std::async(std::launch::async, [&] { return q.get(); });
    clock.advance(9s);
    EXPECT_EQ(f.wait_for(50ms), std::future_status::timeout);
    auto t0 = std::chrono::steady_clock::now();
    clock.advance(1s);
    ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
    // The waiting worker re-reads the fake clock every pollInterval.
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
    EXPECT_EQ(f.get(), "a");
}

TEST(WorkQueue, AddAfterKeepsEarliestDueTime) {
    FakeClock clock;
    WorkQueue q(fakeOptions(clock));
    q.addAfter("a", 5s);
    q.addAfter("a", 1s);
    q.addAfter("a", 10s);
    clock.advance(1s);
    EXPECT_EQ(q.len(), 1u);
    EXPECT_EQ(q.get(), "a");
    q.done("a");
    clock.advance(10s);
    EXPECT_EQ(q.len(), 0u) << "the later duplicates must have been merged";
}

TEST(WorkQueue, RateLimitedBackoffGrowsCapsAndForgetResets) {
    FakeClock clock;
    WorkQueue q(fakeOptions(clock));
    // base 10ms, factor 2, cap 80ms.
    const std::vector<std::chrono::milliseconds> expected = {10ms, 20ms, 40ms, 80ms, 80ms};
    for (std::size_t i = 0; i < expected.size(); ++i) {
        q.addRateLimited("k");
        EXPECT_EQ(q.numRequeues("k"), static_cast<int>(i + 1));
        clock.advance(expected[i] - 1ms);
        EXPECT_EQ(q.len(), 0u) << "attempt " << i << " ready too early";
        clock.advance(1ms);
        EXPECT_EQ(q.len(), 1u) << "attempt " << i << " not ready at its due time";
        ASSERT_EQ(q.get(), "k");
        q.done("k");
    }
    EXPECT_EQ(q.stats().retries, expected.size());
    q.forget("k");
    EXPECT_EQ(q.numRequeues("k"), 0);
    q.addRateLimited("k");
    clock.advance(10ms);
    EXPECT_EQ(q.len(), 1u) << "after forget the delay restarts at base";
}

TEST(WorkQueue, ShutdownWakesWaitersDropsKeysAndDoesNotWaitForInFlight) {
    WorkQueue q;
    q.add("a");
    q.add("b");
    ASSERT_EQ(q.get(), "a");  // in flight, never done before shutdown
    auto waiter = std::async(std::launch::async, [&] {
        q.get();  // takes "b"
        return q.get();
    });
    ASSERT_TRUE(eventually([&] { return q.stats().inFlight == 2; }));
    q.addAfter("c", 1h);
    q.shutdown();
    ASSERT_EQ(waiter.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(waiter.get(), std::nullopt);
    EXPECT_TRUE(q.shuttingDown());
    q.add("d");
    EXPECT_EQ(q.len(), 0u);
    EXPECT_EQ(q.get(), std::nullopt);
    q.done("a");
    q.done("b");
}

TEST(WorkQueue, ShutdownAndDrainFinishesQueuedAndInFlightKeys) {
    WorkQueue q;
    std::mutex mu;
    std::vector<std::string> processed;
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::atomic<int> started{0};
    q.run(2, [&](const std::string& key) {
        ++started;
        released.wait();
        std::lock_guard lock(mu);
        processed.push_back(key);
        return true;
    });
    for (const char* k : {"a", "b", "c", "d"}) q.add(k);
    ASSERT_TRUE(eventually([&] { return started.load() == 2; }));

    auto drained = std::async(std::launch::async, [&] { q.shutdownAndDrain(); });
    EXPECT_EQ(drained.wait_for(50ms), std::future_status::timeout)
        << "drain must wait for in-flight keys";
    q.add("e");  // refused while draining
    release.set_value();
    ASSERT_EQ(drained.wait_for(5s), std::future_status::ready);
    std::lock_guard lock(mu);
    std::sort(processed.begin(), processed.end());
    EXPECT_EQ(processed, (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(WorkQueue, WorkersRunConcurrently) {
    WorkQueue q;
    constexpr int kWorkers = 4;
    std::atomic<int> inside{0};
    std::atomic<int> maxInside{0};
    q.run(kWorkers, [&](const std::string&) {
        int now = ++inside;
        int prev = maxInside.load();
        while (now > prev && !maxInside.compare_exchange_weak(prev, now)) {
        }
        // Hold the worker until all of them are inside at once (or give up).
        eventually([&] { return maxInside.load() == kWorkers; }, 5s);
        --inside;
        return true;
    });
    for (int i = 0; i < kWorkers; ++i) q.add(std::to_string(i));
    EXPECT_TRUE(eventually([&] { return maxInside.load() == kWorkers; }));
    q.shutdown();
}

TEST(WorkQueue, FailedKeysAreRetriedWithBackoffThenForgotten) {
    Options o;
    o.backoff = {1ms, 2.0, 4ms};
    WorkQueue q(o);
    std::atomic<int> calls{0};
    q.run(1, [&](const std::string&) { return ++calls >= 3; });
    q.add("k");
    ASSERT_TRUE(eventually([&] { return calls.load() == 3 && q.stats().inFlight == 0; }));
    EXPECT_EQ(q.numRequeues("k"), 0);
    EXPECT_EQ(q.stats().retries, 2u);
    q.shutdown();
    EXPECT_EQ(calls.load(), 3);
}

TEST(WorkQueue, ThrowingWorkerIsRateLimitedAndSurvives) {
    Options o;
    o.backoff = {1ms, 2.0, 2ms};
    WorkQueue q(o);
    std::atomic<int> calls{0};
    q.run(1, [&](const std::string&) -> bool {
        if (++calls == 1) throw std::runtime_error("boom");
        return true;
    });
    q.add("k");
    EXPECT_TRUE(eventually([&] { return calls.load() == 2; }));
    q.shutdown();
}

TEST(WorkQueue, StressManyKeysNoLostAddsNoConcurrentProcessingOfAKey) {
    Options o;
    o.backoff = {1ms, 2.0, 2ms};
    WorkQueue q(o);
    constexpr int kKeys = 500;
    constexpr int kProducers = 4;
    constexpr int kRounds = 20;
    struct PerKey {
        std::atomic<int> added{0};  // generation of the latest add
        std::atomic<int> seen{0};   // highest generation a processing started after
        std::atomic<int> active{0};
        std::atomic<int> calls{0};
    };
    std::vector<PerKey> keys(kKeys);
    std::atomic<bool> overlap{false};
    q.run(8, [&](const std::string& key) {
        auto& k = keys[std::stoi(key)];
        if (++k.active != 1) overlap = true;
        int gen = k.added.load();
        int prev = k.seen.load();
        while (gen > prev && !k.seen.compare_exchange_weak(prev, gen)) {
        }
        bool ok = (++k.calls % 7) != 0;  // some failures exercise addRateLimited
        --k.active;
        return ok;
    });
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p) {
        producers.emplace_back([&, p] {
            for (int r = 0; r < kRounds; ++r) {
                for (int i = p; i < kKeys; i += kProducers) {
                    ++keys[i].added;
                    q.add(std::to_string(i));
                }
            }
        });
    }
    for (auto& t : producers) t.join();
    ASSERT_TRUE(eventually(
        [&] {
            auto s = q.stats();
            return s.depth == 0 && s.inFlight == 0 && s.delayed == 0;
        },
        20s));
    q.shutdown();
    EXPECT_FALSE(overlap.load());
    for (int i = 0; i < kKeys; ++i) {
        EXPECT_EQ(keys[i].seen.load(), keys[i].added.load()) << "key " << i << " lost an add";
    }
    auto s = q.stats();
    EXPECT_LE(s.adds, static_cast<uint64_t>(kKeys * kRounds) + s.retries);
}
