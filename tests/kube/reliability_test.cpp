// Rate limiter and retry timing, plus RestClient behaviour that needs no API server.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "process/process.h"
#include "sluice/kube/client.h"
#include "sluice/kube/rate_limiter.h"
#include "sluice/util/backoff.h"

namespace sluice::kube {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(TokenBucketTest, BurstThenPaced) {
    TokenBucket tb(10.0, 3);
    auto t0 = Clock::now();
    EXPECT_EQ(tb.reserve(t0), Clock::duration::zero());
    EXPECT_EQ(tb.reserve(t0), Clock::duration::zero());
    EXPECT_EQ(tb.reserve(t0), Clock::duration::zero());
    // The burst is spent: the next requests queue at 100ms intervals.
    auto w1 = tb.reserve(t0);
    auto w2 = tb.reserve(t0);
    EXPECT_NEAR(std::chrono::duration<double>(w1).count(), 0.1, 1e-6);
    EXPECT_NEAR(std::chrono::duration<double>(w2).count(), 0.2, 1e-6);
    // Refill over time, never above burst.
    auto later = t0 + 10s;
    for (int i = 0; i < 3; ++i) EXPECT_EQ(tb.reserve(later), Clock::duration::zero());
    EXPECT_GT(tb.reserve(later), Clock::duration::zero());
}

TEST(TokenBucketTest, DisabledAndMinimumBurst) {
    TokenBucket off(0, 1);
    EXPECT_FALSE(off.enabled());
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(off.acquire(), Clock::duration::zero());
    TokenBucket neg(-1, 0);
    EXPECT_FALSE(neg.enabled());
    TokenBucket zeroBurst(100, 0);  // burst < 1 behaves as 1
    EXPECT_EQ(zeroBurst.reserve(Clock::now()), Clock::duration::zero());
}

TEST(TokenBucketTest, ConcurrentAcquirePacesTotal) {
    TokenBucket tb(50.0, 5);
    std::vector<std::thread> threads;
    auto start = Clock::now();
    std::atomic<int> waited{0};
    for (int t = 0; t < 5; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 5; ++i)
                if (tb.acquire() > Clock::duration::zero()) ++waited;
        });
    for (auto& t : threads) t.join();
    // 25 tokens, 5 free, 20 at 50/s = 400ms.
    auto elapsed = Clock::now() - start;
    EXPECT_GE(elapsed, 380ms);
    EXPECT_LT(elapsed, 2s);
    EXPECT_EQ(waited.load(), 20);
}

TEST(AdaptiveConcurrencyTest, HalvesOncePerBurstOf429sAndGrowsBackAdditively) {
    using namespace std::chrono_literals;
    AdaptiveConcurrency limit(64, 1s);
    EXPECT_EQ(limit.limit(), 64);
    const auto t0 = AdaptiveConcurrency::Clock::now();
    for (int i = 0; i < 10; ++i) limit.acquire();
    // Ten 429s within the cooldown: one burst, one halving.
    for (int i = 0; i < 10; ++i) limit.release(true, t0 + 10ms * i);
    EXPECT_EQ(limit.limit(), 32);
    EXPECT_EQ(limit.inFlight(), 0);
    // Another burst after the cooldown halves again, down to 1 at least.
    limit.acquire();
    limit.release(true, t0 + 2s);
    EXPECT_EQ(limit.limit(), 16);
    for (int i = 0; i < 10; ++i) {
        limit.acquire();
        limit.release(true, t0 + 3s + 1s * i);
    }
    EXPECT_EQ(limit.limit(), 1);
    // About `limit` successes raise it by one: from 1 to 8 takes 1+2+...+7 = 28.
    for (int i = 0; i < 28; ++i) {
        limit.acquire();
        limit.release(false);
    }
    EXPECT_EQ(limit.limit(), 8);
    // It never grows past the maximum.
    for (int i = 0; i < 10000; ++i) {
        limit.acquire();
        limit.release(false);
    }
    EXPECT_EQ(limit.limit(), 64);
}

TEST(AdaptiveConcurrencyTest, AcquireWaitsForAFreeSlotAndZeroIsUnbounded) {
    using namespace std::chrono_literals;
    AdaptiveConcurrency one(1);
    one.acquire();
    std::atomic<bool> second{false};
    std::thread t([&] {
        one.acquire();
        second = true;
        one.release(false);
    });
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(second);
    one.release(false);
    t.join();
    EXPECT_TRUE(second);

    AdaptiveConcurrency unbounded(0);
    for (int i = 0; i < 1000; ++i) unbounded.acquire();
    EXPECT_EQ(unbounded.inFlight(), 1000);
    unbounded.release(true);
    EXPECT_EQ(unbounded.limit(), 0);
}

TEST(RetryPolicyTest, BackoffWithJitterIsCapped) {
    RetryPolicy p{5, 100ms, 1000ms};
    EXPECT_EQ(p.delay(0, std::nullopt, 0.999999), 99ms);
    EXPECT_EQ(p.delay(0, std::nullopt, 0.0), 50ms);
    EXPECT_EQ(p.delay(1, std::nullopt, 0.0), 100ms);
    EXPECT_EQ(p.delay(2, std::nullopt, 0.0), 200ms);
    for (uint32_t a = 0; a < 40; ++a) {
        for (double j : {0.0, 0.5, 0.99}) {
            auto d = p.delay(a, std::nullopt, j);
            EXPECT_LE(d, 1000ms);
            EXPECT_GE(d, 1ms);
        }
    }
    EXPECT_GE(p.delay(10, std::nullopt, 0.0), 500ms);
}

TEST(RetryPolicyTest, RetryAfterHonouredAndCapped) {
    RetryPolicy p{5, 100ms, 5000ms};
    EXPECT_EQ(p.delay(0, 2s, 0.3), 2000ms);
    EXPECT_EQ(p.delay(3, 60s, 0.3), 5000ms);
    EXPECT_EQ(p.delay(0, 0s, 0.0), 50ms);  // Retry-After: 0 falls back to backoff
}

TEST(RetryPolicyTest, WhichStatusesRetry) {
    EXPECT_TRUE(shouldRetryStatus(429, true, false));
    EXPECT_TRUE(shouldRetryStatus(429, false, false));
    EXPECT_TRUE(shouldRetryStatus(500, true, false));
    EXPECT_TRUE(shouldRetryStatus(502, true, false));
    EXPECT_TRUE(shouldRetryStatus(503, true, false));
    EXPECT_FALSE(shouldRetryStatus(501, true, false));
    EXPECT_FALSE(shouldRetryStatus(500, false, false));  // a POST may have been applied
    EXPECT_FALSE(shouldRetryStatus(503, false, false));
    EXPECT_TRUE(shouldRetryStatus(503, false, true));
    EXPECT_FALSE(shouldRetryStatus(200, true, false));
    EXPECT_FALSE(shouldRetryStatus(404, true, false));
    EXPECT_FALSE(shouldRetryStatus(409, true, false));
}

TEST(BackoffTest, ExponentialCapped) {
    ExponentialBackoff b{10ms, 2.0, 100ms};
    EXPECT_EQ(b.delay(0), 10ms);
    EXPECT_EQ(b.delay(3), 80ms);
    EXPECT_EQ(b.delay(4), 100ms);
    EXPECT_EQ(b.delay(1000), 100ms);
}

TEST(RestClientOfflineTest, ConnectionRefusedIsRetriedThenTransportError) {
    ClusterConfig cfg;
    cfg.server = "http://127.0.0.1:" + std::to_string(sluice::testing::freeLoopbackPort());
    cfg.maxRetries = 2;
    cfg.retryBaseDelay = 10ms;
    cfg.retryMaxDelay = 20ms;
    RestClient client(cfg);
    std::vector<int> codes;
    client.setRequestObserver([&](const std::string& verb, int code, std::chrono::nanoseconds) {
        EXPECT_EQ(verb, "get");
        codes.push_back(code);
    });
    try {
        client.getPath("/version");
        FAIL() << "expected TransportError";
    } catch (const TransportError& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find(cfg.server + "/version"), std::string::npos) << msg;
        EXPECT_NE(msg.find("2 retries"), std::string::npos) << msg;
    }
    EXPECT_EQ(codes, (std::vector<int>{0, 0, 0}));
    EXPECT_EQ(client.stats().requests, 3u);
    EXPECT_EQ(client.stats().retries, 2u);
    // Creates are retried too: a refused connection cannot have reached the server.
    Object cm = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "x"}}}};
    EXPECT_THROW(client.create(cm), TransportError);
}

TEST(RestClientOfflineTest, BadConfigurationIsConfigError) {
    ClusterConfig cfg;
    cfg.server = "ftp://example";
    EXPECT_THROW(RestClient{cfg}, ConfigError);
    cfg.server = "https://127.0.0.1:1";
    cfg.caPem = "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n";
    EXPECT_THROW(RestClient{cfg}, ConfigError);
    cfg.caPem.clear();
    cfg.clientCertPem = "garbage";
    cfg.clientKeyPem = "garbage";
    EXPECT_THROW(RestClient{cfg}, ConfigError);
}

TEST(RestClientOfflineTest, RateLimiterCountsWaits) {
    ClusterConfig cfg;
    cfg.server = "http://127.0.0.1:" + std::to_string(sluice::testing::freeLoopbackPort());
    cfg.maxRetries = 0;
    cfg.qps = 20;
    cfg.burst = 1;
    RestClient client(cfg);
    auto start = Clock::now();
    for (int i = 0; i < 4; ++i) EXPECT_THROW(client.getPath("/healthz"), TransportError);
    EXPECT_GE(Clock::now() - start, 140ms);
    EXPECT_EQ(client.stats().throttledWaits, 3u);
    EXPECT_EQ(client.stats().requests, 4u);
}

}  // namespace
}  // namespace sluice::kube
