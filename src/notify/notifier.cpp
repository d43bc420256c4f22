// The delivery threads: a bounded queue ordered by when each message is next due, so a message
// waiting to be retried never holds up the ones behind it, served by a small pool of workers.
// A destination (receiver host and proxy) has at most one call in flight: a worker takes the
// earliest due message whose destination is idle, so a receiver that hangs occupies one worker
// and its own messages wait, never the other destinations' ones.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "internal.h"
#include "sluice/telemetry/registry.h"

namespace sluice::notify {

namespace {

using SteadyClock = std::chrono::steady_clock;

// The canonical name of a service or alias, for metric labels; "unknown" keeps names taken
// from user input out of the label values.
std::string canonicalName(const Service* service) {
    for (const auto& [name, s] : builtinServices())
        if (s.get() == service) return name;
    return "unknown";
}

struct Pending {
    Destination to;
    std::string key;      // the destination: receiver host and proxy
    std::string service;  // canonical name
    const Service* renderer = nullptr;
    HttpCall call;
    int attempts = 0;
};

enum class Result { Delivered, Failed, Dropped, Invalid };
const char* toString(Result r) {
    switch (r) {
        case Result::Delivered:
            return "delivered";
        case Result::Failed:
            return "failed";
        case Result::Dropped:
            return "dropped";
        case Result::Invalid:
            return "invalid";
    }
    return "failed";
}

}  // namespace

struct Notifier::Impl {
    NotifierOptions options;
    std::unique_ptr<Transport> transport;
    telemetry::CounterFamily* total = nullptr;
    telemetry::GaugeFamily* queueLength = nullptr;

    mutable std::mutex mu;
    std::condition_variable work;  // the workers: a message was queued, a destination freed, stop
    std::condition_variable idle;  // drain(): a worker finished a message
    std::multimap<SteadyClock::time_point, Pending> queue;  // by next attempt; FIFO when equal
    std::set<std::string> busy;                             // destinations with a call in flight
    std::map<std::string, std::size_t> perDestination;      // queued + in flight, by destination
    std::size_t inFlight = 0;
    bool stopping = false;
    Stats stats;
    std::vector<std::thread> workers;

    // Callers hold mu.
    void count(const std::string& service, Result result) {
        switch (result) {
            case Result::Delivered:
                ++stats.delivered;
                break;
            case Result::Failed:
                ++stats.failed;
                break;
            case Result::Dropped:
                ++stats.dropped;
                break;
            case Result::Invalid:
                ++stats.invalid;
                break;
        }
        if (total) total->inc({service, toString(result)});
    }
    void updateGauge() {
        if (queueLength) queueLength->set(static_cast<double>(queue.size() + inFlight));
    }

    std::chrono::milliseconds backoff(int attempts) const {
        auto delay = options.initialBackoff;
        for (int i = 1; i < attempts && delay < options.maxBackoff; ++i) delay *= 2;
        return std::min(delay, options.maxBackoff);
    }

    // One attempt, outside the lock. Returns the delay before the next attempt, or nullopt
    // when the message is done (delivered or failed for good; `delivered` tells which).
    std::optional<std::chrono::milliseconds> attempt(Pending& p, bool& delivered) {
        HttpAnswer answer;
        try {
            answer = transport->send(p.call, p.to.proxy, options.timeout);
        } catch (const std::exception& e) {
            answer = HttpAnswer{};
            answer.error = e.what();
        }
        auto failure = p.renderer->failure(answer);
        delivered = !failure;
        if (delivered) {
            spdlog::debug("notification delivered to {}", p.to.label());
            return std::nullopt;
        }
        const bool retryable = answer.status == 0 || answer.status == 429 || answer.status >= 500;
        if (retryable && p.attempts < options.maxAttempts) {
            // Retry-After is honoured up to maxBackoff, so one receiver cannot park a message
            // (and its place in the queue) for hours.
            auto delay = answer.retryAfter > std::chrono::milliseconds::zero()
                             ? std::min(answer.retryAfter, options.maxBackoff)
                             : backoff(p.attempts);
            spdlog::debug("notification to {} failed ({}), attempt {} of {}, retrying in {}ms",
                          p.to.label(), *failure, p.attempts, options.maxAttempts, delay.count());
            return delay;
        }
        spdlog::warn("notification to {} failed after {} attempt(s): {}", p.to.label(), p.attempts,
                     *failure);
        return std::nullopt;
    }

    // A message is done (delivered, failed, dropped): its destination's share is freed.
    void release(const std::string& key) {
        auto it = perDestination.find(key);
        if (it != perDestination.end() && --it->second == 0) perDestination.erase(it);
    }

    // The earliest due message whose destination is idle, or queue.end() with `wake` set to
    // when the next one is due (max() when none is waiting for an idle destination).
    std::multimap<SteadyClock::time_point, Pending>::iterator next(SteadyClock::time_point& wake) {
        const auto now = SteadyClock::now();
        wake = SteadyClock::time_point::max();
        for (auto it = queue.begin(); it != queue.end(); ++it) {
            if (busy.count(it->second.key)) continue;
            if (it->first <= now) return it;
            wake = it->first;  // the queue is sorted: the first idle one is the earliest
            break;
        }
        return queue.end();
    }

    void run() {
        std::unique_lock lock(mu);
        while (!stopping) {
            SteadyClock::time_point wake;
            auto it = next(wake);
            if (it == queue.end()) {
                if (wake == SteadyClock::time_point::max())
                    work.wait(lock);
                else
                    work.wait_until(lock, wake);
                continue;
            }
            auto node = queue.extract(it);
            Pending& p = node.mapped();
            busy.insert(p.key);
            ++inFlight;
            ++p.attempts;
            ++stats.attempts;
            lock.unlock();
            bool delivered = false;
            auto retryIn = attempt(p, delivered);
            lock.lock();
            --inFlight;
            busy.erase(p.key);
            if (retryIn && !stopping) {
                node.key() = SteadyClock::now() + *retryIn;
                queue.insert(std::move(node));
            } else if (retryIn) {
                count(p.service, Result::Dropped);
                release(p.key);
            } else {
                count(p.service, delivered ? Result::Delivered : Result::Failed);
                release(p.key);
            }
            updateGauge();
            idle.notify_all();
            // The destination is idle again: a worker may take its next message.
            work.notify_all();
        }
    }
};

Notifier::Notifier(NotifierOptions options, std::unique_ptr<Transport> transport,
                   telemetry::Registry* metrics)
    : impl_(std::make_unique<Impl>()) {
    impl_->options = options;
    impl_->options.maxAttempts = std::max(1, options.maxAttempts);
    impl_->transport = std::move(transport);
    if (metrics) {
        impl_->total =
            &metrics->counter("sluice_notifications_total", "Notifications by service and result.",
                              {"service", "result"});
        impl_->queueLength = &metrics->gauge(
            "sluice_notification_queue_length",
            "Notifications waiting to be delivered, retries and the one being sent included.");
        impl_->queueLength->set(0);
        // Every series from the start, so rates and alerts see 0 rather than no data.
        for (const auto& service : serviceNames())
            for (Result r : {Result::Delivered, Result::Failed, Result::Dropped, Result::Invalid})
                impl_->total->inc({service, toString(r)}, 0);
    }
    const std::size_t workers = std::max<std::size_t>(1, options.workers);
    for (std::size_t i = 0; i < workers; ++i)
        impl_->workers.emplace_back([impl = impl_.get()] { impl->run(); });
}

Notifier::~Notifier() {
    {
        std::lock_guard lock(impl_->mu);
        impl_->stopping = true;
    }
    impl_->work.notify_all();
    // Waits for the calls in flight (each bounded by options.timeout); nothing else sleeps.
    for (auto& worker : impl_->workers) worker.join();
    std::lock_guard lock(impl_->mu);
    for (const auto& [due, p] : impl_->queue) impl_->count(p.service, Result::Dropped);
    impl_->queue.clear();
    impl_->perDestination.clear();
    impl_->updateGauge();
}

bool Notifier::send(Destination to, Message message) {
    const Service* renderer = findService(to.service);
    const std::string service = canonicalName(renderer);
    Pending p;
    try {
        if (!renderer) throw std::invalid_argument("unknown service \"" + to.service + "\"");
        p.call = renderer->render(to, message);
        if (!to.proxy.empty() && detail::hostOf(to.proxy).empty())
            throw std::invalid_argument("proxy is not an http(s) URL");
    } catch (const std::exception& e) {
        // Render errors name what is missing, never the address or token.
        spdlog::warn("notification to {} not sent: {}", to.label(), e.what());
        std::lock_guard lock(impl_->mu);
        impl_->count(service, Result::Invalid);
        return false;
    }
    p.renderer = renderer;
    p.service = service;
    p.key = detail::hostOf(p.call.url) + " via " + to.proxy;
    p.to = std::move(to);
    std::lock_guard lock(impl_->mu);
    const auto mine = impl_->perDestination.find(p.key);
    const std::size_t queued = mine == impl_->perDestination.end() ? 0 : mine->second;
    if (impl_->stopping || impl_->queue.size() >= impl_->options.queueCapacity ||
        queued >= std::max<std::size_t>(1, impl_->options.destinationCapacity)) {
        spdlog::warn("notification to {} dropped: the queue is full ({} messages, {} for {})",
                     p.to.label(), impl_->queue.size(), queued, p.to.label());
        impl_->count(service, Result::Dropped);
        return false;
    }
    ++impl_->perDestination[p.key];
    impl_->queue.emplace(SteadyClock::now(), std::move(p));
    impl_->updateGauge();
    impl_->work.notify_one();
    return true;
}

bool Notifier::drain(std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->mu);
    return impl_->idle.wait_for(lock, timeout,
                                [&] { return impl_->queue.empty() && impl_->inFlight == 0; });
}

Notifier::Stats Notifier::stats() const {
    std::lock_guard lock(impl_->mu);
    return impl_->stats;
}

}  // namespace sluice::notify
