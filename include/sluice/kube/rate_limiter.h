#pragma once
// Client-side request pacing and retry timing, shared by RestClient and its tests.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

namespace sluice::kube {

// Token bucket: up to `burst` requests at once, refilled at `qps` per second. qps <= 0 disables
// it. Thread-safe; waiting happens outside the lock, in reservation order.
class TokenBucket {
  public:
    using Clock = std::chrono::steady_clock;
    TokenBucket(double qps, int burst);

    bool enabled() const { return qps_ > 0; }
    // Takes one token; returns how long the caller must wait before using it (0 if none).
    Clock::duration reserve(Clock::time_point now);
    // reserve() then sleep; returns the time waited.
    Clock::duration acquire();

  private:
    double qps_;
    double burst_;
    std::mutex mu_;
    double tokens_;
    Clock::time_point last_;
};

// Requests in flight, adapted to the server as TCP adapts to a network (AIMD): the limit grows
// by one for every `limit` requests that completed, up to maxLimit, and halves when the server
// throttles (429: API Priority and Fairness found the priority level's queues full), at most
// once per `cooldown` so that one burst of 429s counts once. maxLimit <= 0: unbounded.
// Thread-safe; acquire() blocks while the limit is reached.
class AdaptiveConcurrency {
  public:
    using Clock = std::chrono::steady_clock;
    explicit AdaptiveConcurrency(int maxLimit,
                                 std::chrono::milliseconds cooldown = std::chrono::seconds(1));

    void acquire();
    // Ends a request acquired before; throttled = the server answered 429.
    void release(bool throttled, Clock::time_point now = Clock::now());
    int limit() const;
    int inFlight() const;

  private:
    const int max_;
    const std::chrono::milliseconds cooldown_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    int limit_;
    int successes_ = 0;  // completed since the limit last changed
    int inFlight_ = 0;
    std::optional<Clock::time_point> lastDecrease_;
};

// When and how long to wait before retrying a failed request.
struct RetryPolicy {
    int maxRetries = 5;
    std::chrono::milliseconds baseDelay{200};
    std::chrono::milliseconds maxDelay{10000};

    // Delay before retry number `attempt` (0-based). A server Retry-After is honoured (capped
    // at maxDelay); otherwise capped exponential backoff, scaled into [d/2, d] by jitter01
    // (a random number in [0,1)) so that many clients do not retry in lockstep.
    std::chrono::milliseconds delay(uint32_t attempt,
                                    std::optional<std::chrono::seconds> retryAfter,
                                    double jitter01) const;
};

// Whether an HTTP status is worth retrying. Non-idempotent requests (POST) are retried only when
// the server cannot have acted on them: 429, or 503 with Retry-After.
bool shouldRetryStatus(int code, bool idempotent, bool hasRetryAfter);

}  // namespace sluice::kube
