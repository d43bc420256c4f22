#include "sluice/util/clock.h"

#include <ctime>

namespace sluice {

SystemClock& SystemClock::instance() {
    static SystemClock clock;
    return clock;
}

FakeClock::FakeClock()
    : now_(std::chrono::steady_clock::time_point{} + std::chrono::hours(1000)),
      wall_(std::chrono::sys_days{std::chrono::year{2026} / 1 / 1}) {}

Clock::TimePoint FakeClock::now() const {
    std::lock_guard lock(mu_);
    return now_;
}

std::chrono::system_clock::time_point FakeClock::wallNow() const {
    std::lock_guard lock(mu_);
    return wall_;
}

void FakeClock::advance(std::chrono::nanoseconds d) {
    std::lock_guard lock(mu_);
    now_ += d;
    wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
}

std::string formatRfc3339(std::chrono::system_clock::time_point t) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace sluice
