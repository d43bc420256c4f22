#include "sluice/kube/rate_limiter.h"

#include <algorithm>
#include <thread>

#include "sluice/util/backoff.h"

namespace sluice::kube {

TokenBucket::TokenBucket(double qps, int burst)
    : qps_(qps), burst_(std::max(1, burst)), tokens_(burst_), last_(Clock::now()) {}

TokenBucket::Clock::duration TokenBucket::reserve(Clock::time_point now) {
    if (!enabled()) return Clock::duration::zero();
    std::lock_guard lock(mu_);
    if (now > last_) {
        double elapsed = std::chrono::duration<double>(now - last_).count();
        tokens_ = std::min(burst_, tokens_ + elapsed * qps_);
        last_ = now;
    }
    // Going negative reserves a future token, so concurrent callers queue up in order instead
    // of all waking at once when one token arrives.
    tokens_ -= 1.0;
    if (tokens_ >= 0) return Clock::duration::zero();
    auto wait = std::chrono::duration<double>(-tokens_ / qps_);
    return std::chrono::duration_cast<Clock::duration>(wait);
}

TokenBucket::Clock::duration TokenBucket::acquire() {
    auto wait = reserve(Clock::now());
    if (wait > Clock::duration::zero()) std::this_thread::sleep_for(wait);
    return wait;
}

AdaptiveConcurrency::AdaptiveConcurrency(int maxLimit, std::chrono::milliseconds cooldown)
    : max_(maxLimit), cooldown_(cooldown), limit_(std::max(1, maxLimit)) {}

void AdaptiveConcurrency::acquire() {
    std::unique_lock lock(mu_);
    if (max_ > 0) cv_.wait(lock, [&] { return inFlight_ < limit_; });
    ++inFlight_;
}

void AdaptiveConcurrency::release(bool throttled, Clock::time_point now) {
    bool grew = false;
    {
        std::lock_guard lock(mu_);
        --inFlight_;
        if (max_ <= 0) return;
        if (throttled) {
            if (!lastDecrease_ || now - *lastDecrease_ >= cooldown_) {
                limit_ = std::max(1, limit_ / 2);
                successes_ = 0;
                lastDecrease_ = now;
            }
        } else if (limit_ < max_ && ++successes_ >= limit_) {
            ++limit_;
            successes_ = 0;
            grew = true;
        }
    }
    // One waiter per slot that opened: waking them all would only put them back to sleep.
    cv_.notify_one();
    if (grew) cv_.notify_one();
}

int AdaptiveConcurrency::limit() const {
    std::lock_guard lock(mu_);
    return max_ > 0 ? limit_ : 0;
}

int AdaptiveConcurrency::inFlight() const {
    std::lock_guard lock(mu_);
    return inFlight_;
}

std::chrono::milliseconds RetryPolicy::delay(uint32_t attempt,
                                             std::optional<std::chrono::seconds> retryAfter,
                                             double jitter01) const {
    if (retryAfter && retryAfter->count() > 0) {
        return std::min<std::chrono::milliseconds>(*retryAfter, maxDelay);
    }
    ExponentialBackoff backoff{baseDelay, 2.0, maxDelay};
    auto d = backoff.delay(attempt);
    jitter01 = std::clamp(jitter01, 0.0, 1.0);
    auto jittered = static_cast<int64_t>(static_cast<double>(d.count()) * (0.5 + 0.5 * jitter01));
    return std::chrono::milliseconds(std::max<int64_t>(jittered, 1));
}

bool shouldRetryStatus(int code, bool idempotent, bool hasRetryAfter) {
    if (code == 429) return true;
    if (code == 503 && hasRetryAfter) return true;
    if (code >= 500 && code != 501) return idempotent;
    return false;
}

}  // namespace sluice::kube
