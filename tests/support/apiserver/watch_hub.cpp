#include "apiserver/watch_hub.h"

namespace sluice::testing {

bool Watcher::selects(const nlohmann::json& obj) const {
    if (!ns.empty() && obj["metadata"].value("namespace", "") != ns) return false;
    return labels.matches(obj) && fields.matches(obj);
}

void Watcher::push(WatchEvent ev) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (closed_) return;
        queue_.push_back(std::move(ev));
    }
    cv_.notify_one();
}

bool Watcher::next(std::deque<WatchEvent>& out, std::chrono::steady_clock::time_point until) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait_until(lk, until, [&] { return closed_ || !queue_.empty(); });
    while (!queue_.empty()) {
        out.push_back(std::move(queue_.front()));
        queue_.pop_front();
    }
    return !(closed_ && out.empty());
}

void Watcher::close() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        closed_ = true;
    }
    cv_.notify_all();
}

bool Watcher::closed() const {
    std::lock_guard<std::mutex> lk(mu_);
    return closed_;
}

}  // namespace sluice::testing
