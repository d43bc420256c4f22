#include "apiserver/flow_control.h"

namespace sluice::testing {

FlowControl::Seat::~Seat() {
    if (!owner_ || owner_->seats_ <= 0) return;
    {
        std::lock_guard lock(owner_->mu_);
        --owner_->busy_;
    }
    owner_->cv_.notify_one();
}

std::optional<FlowControl::Seat> FlowControl::admit() {
    if (seats_ <= 0) return Seat(this);
    std::unique_lock lock(mu_);
    if (busy_ >= seats_) {
        if (queued_ >= queueLength_) return std::nullopt;
        ++queued_;
        cv_.wait(lock, [&] { return busy_ < seats_; });
        --queued_;
    }
    ++busy_;
    return Seat(this);
}

const std::map<std::string, std::string>& FlowControl::headers() {
    // Fixed UIDs: the test server has one FlowSchema and one priority level.
    static const std::map<std::string, std::string> kHeaders = {
        {"X-Kubernetes-PF-FlowSchema-UID", "7f0e3c52-5a4c-4f31-9f39-6a1b3c0d2e11"},
        {"X-Kubernetes-PF-PriorityLevel-UID", "2b9d6a10-8c1e-4e0f-b3a7-5d4c2f1e0a99"}};
    return kHeaders;
}

std::map<std::string, std::string> ApfHeaderWriter::with(
    std::map<std::string, std::string> headers) {
    for (const auto& [k, v] : FlowControl::headers()) headers.emplace(k, v);
    return headers;
}

void ApfHeaderWriter::respond(int status, const std::map<std::string, std::string>& headers,
                              const std::string& body) {
    inner_.respond(status, with(headers), body);
}

void ApfHeaderWriter::startStream(int status, const std::map<std::string, std::string>& headers) {
    inner_.startStream(status, with(headers));
}

}  // namespace sluice::testing
