#pragma once
// Time behind an interface so engines and queues can be driven by tests.
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace sluice {

class Clock {
  public:
    using TimePoint = std::chrono::steady_clock::time_point;
    virtual ~Clock() = default;
    virtual TimePoint now() const = 0;
    // Wall-clock time, for timestamps written into objects (RFC 3339).
    virtual std::chrono::system_clock::time_point wallNow() const = 0;
};

class SystemClock final : public Clock {
  public:
    TimePoint now() const override { return std::chrono::steady_clock::now(); }
    std::chrono::system_clock::time_point wallNow() const override {
        return std::chrono::system_clock::now();
    }
    static SystemClock& instance();
};

// A clock that only moves when told to. Thread-safe.
class FakeClock final : public Clock {
  public:
    FakeClock();
    TimePoint now() const override;
    std::chrono::system_clock::time_point wallNow() const override;
    void advance(std::chrono::nanoseconds d);

  private:
    mutable std::mutex mu_;
    TimePoint now_;
    std::chrono::system_clock::time_point wall_;
};

// RFC 3339 timestamp in UTC with second precision, as Kubernetes writes them.
std::string formatRfc3339(std::chrono::system_clock::time_point t);

}  // namespace sluice
