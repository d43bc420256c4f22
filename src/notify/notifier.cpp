// The delivery thread: a bounded queue ordered by when each message is next due, so a message
// waiting to be retried never holds up the ones behind it.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

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
    std::condition_variable work;  // the worker: a message was queued, or stop
    std::condition_variable idle;  // drain(): the worker finished a message
    std::multimap<SteadyClock::time_point, Pending> queue;  // by next attempt; FIFO when equal
    bool inFlight = false;
    bool stopping = false;
    Stats stats;
    std::thread worker;

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
        if (queueLength) queueLength->set(static_cast<double>(queue.size() + (inFlight ? 1 : 0)));
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

    void run() {
        std::unique_lock lock(mu);
        while (!stopping) {
            if (queue.empty()) {
                work.wait(lock);
                continue;
            }
            const auto due = queue.begin()->first;
            if (due > SteadyClock::now()) {
                work.wait_until(lock, due);
                continue;
            }
            auto node = queue.extract(queue.begin());
            Pending& p = node.mapped();
            inFlight = true;
            ++p.attempts;
            ++stats.attempts;
            lock.unlock();
            bool delivered = false;
            auto retryIn = attempt(p, delivered);
            lock.lock();
            inFlight = false;
            if (retryIn) {
                node.key() = SteadyClock::now() + *retryIn;
                queue.insert(std::move(node));
            } else {
                count(p.service, delivered ? Result::Delivered : Result::Failed);
            }
            updateGauge();
            idle.notify_all();
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
    impl_->worker = std::thread([impl = impl_.get()] { impl->run(); });
}

Notifier::~Notifier() {
    {
        std::lock_guard lock(impl_->mu);
        impl_->stopping = true;
    }
    impl_->work.notify_all();
    // Waits for a call in flight (bounded by options.timeout); nothing else sleeps.
    impl_->worker.join();
    std::lock_guard lock(impl_->mu);
    for (const auto& [due, p] : impl_->queue) impl_->count(p.service, Result::Dropped);
    impl_->queue.clear();
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
    p.to = std::move(to);
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping || impl_->queue.size() >= impl_->options.queueCapacity) {
        spdlog::warn("notification to {} dropped: the queue is full ({} messages)", p.to.label(),
                     impl_->queue.size());
        impl_->count(service, Result::Dropped);
        return false;
    }
    impl_->queue.emplace(SteadyClock::now(), std::move(p));
    impl_->updateGauge();
    impl_->work.notify_one();
    return true;
}

bool Notifier::drain(std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->mu);
    return impl_->idle.wait_for(lock, timeout,
                                [&] { return impl_->queue.empty() && !impl_->inFlight; });
}

Notifier::Stats Notifier::stats() const {
    std::lock_guard lock(impl_->mu);
    return impl_->stats;
}

}  // namespace sluice::notify
