#pragma once
// A cooperative cancellation flag shared between an owner (StopSource) and the code it
// wants to interrupt (StopToken). Callbacks let blocking I/O (a streaming watch, a sleep)
// be woken instead of polled.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace sluice {

namespace detail {
struct StopState {
    std::atomic<bool> stopped{false};
    std::mutex mu;
    std::condition_variable cv;
    std::map<int, std::function<void()>> callbacks;
    int nextId = 0;
};
}  // namespace detail

class StopToken {
  public:
    StopToken() = default;  // a token that never stops
    explicit StopToken(std::shared_ptr<detail::StopState> s) : state_(std::move(s)) {}

    bool stopRequested() const { return state_ && state_->stopped.load(); }

    // Runs fn on stop (at once if already stopped). Returns an id for unregisterCallback.
    int registerCallback(std::function<void()> fn) const;
    void unregisterCallback(int id) const;

    // Sleeps up to d; returns false if woken by a stop request.
    bool sleepFor(std::chrono::milliseconds d) const;

  private:
    std::shared_ptr<detail::StopState> state_;
};

// RAII registration of a stop callback.
class StopCallback {
  public:
    StopCallback(const StopToken& t, std::function<void()> fn)
        : token_(t), id_(t.registerCallback(std::move(fn))) {}
    ~StopCallback() { token_.unregisterCallback(id_); }
    StopCallback(const StopCallback&) = delete;
    StopCallback& operator=(const StopCallback&) = delete;

  private:
    StopToken token_;
    int id_;
};

class StopSource {
  public:
    StopSource() : state_(std::make_shared<detail::StopState>()) {}
    StopToken token() const { return StopToken(state_); }
    bool stopRequested() const { return state_->stopped.load(); }
    void requestStop();

  private:
    std::shared_ptr<detail::StopState> state_;
};

}  // namespace sluice
