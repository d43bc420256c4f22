#include "sluice/leader/leader.h"

#include <unistd.h>

#include <random>

#include <spdlog/spdlog.h>

#include "sluice/kube/errors.h"

namespace sluice::leader {

using nlohmann::json;

namespace {

const kube::GroupVersionKind kLease{"coordination.k8s.io", "v1", "Lease"};

int seconds(std::chrono::milliseconds d) {
    return static_cast<int>(std::max<long long>(1, (d.count() + 999) / 1000));
}

}  // namespace

std::string formatMicroTime(std::chrono::system_clock::time_point t) {
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch());
    std::time_t secs = static_cast<std::time_t>(micros.count() / 1000000);
    long frac = static_cast<long>(micros.count() % 1000000);
    if (frac < 0) {
        frac += 1000000;
        --secs;
    }
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return buf;
}

LeaseRecord LeaseRecord::fromLease(const json& lease) {
    LeaseRecord r;
    const json spec = lease.value("spec", json::object());
    auto str = [&](const char* key) {
        auto it = spec.find(key);
        return it != spec.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    auto num = [&](const char* key) {
        auto it = spec.find(key);
        return it != spec.end() && it->is_number_integer() ? it->get<int>() : 0;
    };
    r.holderIdentity = str("holderIdentity");
    r.leaseDurationSeconds = num("leaseDurationSeconds");
    r.acquireTime = str("acquireTime");
    r.renewTime = str("renewTime");
    r.leaseTransitions = num("leaseTransitions");
    return r;
}

json LeaseRecord::toSpec() const {
    json spec = {{"holderIdentity", holderIdentity},
                 {"leaseDurationSeconds", leaseDurationSeconds},
                 {"leaseTransitions", leaseTransitions}};
    if (!acquireTime.empty()) spec["acquireTime"] = acquireTime;
    if (!renewTime.empty()) spec["renewTime"] = renewTime;
    return spec;
}

std::string defaultIdentity() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        std::snprintf(host, sizeof host, "sluice");
    std::random_device rd;
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "%08x", rd());
    return std::string(host) + "_" + suffix;
}

LeaderElector::LeaderElector(kube::KubeClient& client, Config config, Callbacks callbacks)
    : client_(client), config_(std::move(config)), callbacks_(std::move(callbacks)) {
    if (config_.identity.empty()) config_.identity = defaultIdentity();
    if (config_.renewDeadline >= config_.leaseDuration)
        throw std::invalid_argument("leader election: renewDeadline must be below leaseDuration");
    if (config_.retryPeriod >= config_.renewDeadline)
        throw std::invalid_argument("leader election: retryPeriod must be below renewDeadline");
}

LeaderElector::~LeaderElector() {
    stop();
}

const Clock& LeaderElector::clock() const {
    return config_.clock ? *config_.clock : SystemClock::instance();
}

std::string LeaderElector::currentHolder() const {
    std::lock_guard lock(mu_);
    return observed_.holderIdentity;
}

bool LeaderElector::tryAcquireOrRenew() {
    const auto now = clock().now();
    const std::string wall = formatMicroTime(clock().wallNow());
    LeaseRecord desired;
    desired.holderIdentity = config_.identity;
    desired.leaseDurationSeconds = seconds(config_.leaseDuration);
    desired.acquireTime = wall;
    desired.renewTime = wall;

    std::string previousHolder;
    auto observe = [&](const LeaseRecord& record, const std::string& rv) {
        std::lock_guard lock(mu_);
        previousHolder = observed_.holderIdentity;
        if (!haveObserved_ || !(record == observed_)) {
            observed_ = record;
            observedAt_ = now;
        }
        observedResourceVersion_ = rv;
        haveObserved_ = true;
    };
    auto announce = [&](const std::string& before) {
        std::string holder = currentHolder();
        if (holder != before && callbacks_.onNewLeader) callbacks_.onNewLeader(holder);
    };

    json lease;
    try {
        lease = client_.get(kLease, config_.leaseNamespace, config_.leaseName);
    } catch (const kube::ApiError& e) {
        if (!e.isNotFound()) {
            spdlog::warn("leader election: cannot read Lease {}/{}: {}", config_.leaseNamespace,
                         config_.leaseName, e.what());
            return false;
        }
        json obj = {
            {"apiVersion", "coordination.k8s.io/v1"},
            {"kind", "Lease"},
            {"metadata", {{"name", config_.leaseName}, {"namespace", config_.leaseNamespace}}},
            {"spec", desired.toSpec()}};
        try {
            auto created = client_.create(obj);
            observe(desired, kube::resourceVersionOf(created));
            announce(previousHolder);
            return true;
        } catch (const std::exception& ce) {
            spdlog::info("leader election: creating Lease {}/{}: {}", config_.leaseNamespace,
                         config_.leaseName, ce.what());
            return false;
        }
    } catch (const std::exception& e) {
        spdlog::warn("leader election: cannot read Lease {}/{}: {}", config_.leaseNamespace,
                     config_.leaseName, e.what());
        return false;
    }

    const LeaseRecord old = LeaseRecord::fromLease(lease);
    observe(old, kube::resourceVersionOf(lease));
    announce(previousHolder);
    Clock::TimePoint observedAt;
    {
        std::lock_guard lock(mu_);
        observedAt = observedAt_;
    }
    const bool heldByOther = !old.holderIdentity.empty() && old.holderIdentity != config_.identity;
    if (heldByOther && observedAt + std::chrono::seconds(old.leaseDurationSeconds) > now)
        return false;  // someone else holds a Lease that has not expired in our eyes

    if (old.holderIdentity == config_.identity) {
        desired.acquireTime = old.acquireTime;
        desired.leaseTransitions = old.leaseTransitions;
    } else {
        desired.leaseTransitions = old.leaseTransitions + 1;
    }
    json updated = lease;
    updated["spec"] = desired.toSpec();
    try {
        auto answer = client_.update(updated);  // carries the resourceVersion we read
        const std::string before = currentHolder();
        observe(desired, kube::resourceVersionOf(answer));
        announce(before);
        return true;
    } catch (const std::exception& e) {
        spdlog::info("leader election: {} Lease {}/{}: {}", heldByOther ? "taking" : "renewing",
                     config_.leaseNamespace, config_.leaseName, e.what());
        return false;
    }
}

void LeaderElector::release() {
    if (!leading_.exchange(false)) return;
    try {
        json lease = client_.get(kLease, config_.leaseNamespace, config_.leaseName);
        LeaseRecord record = LeaseRecord::fromLease(lease);
        if (record.holderIdentity != config_.identity) return;
        record.holderIdentity = "";
        record.leaseDurationSeconds = 1;
        record.renewTime = formatMicroTime(clock().wallNow());
        lease["spec"] = record.toSpec();
        client_.update(lease);
        spdlog::info("leader election: released Lease {}/{}", config_.leaseNamespace,
                     config_.leaseName);
    } catch (const std::exception& e) {
        spdlog::warn("leader election: releasing Lease {}/{}: {}", config_.leaseNamespace,
                     config_.leaseName, e.what());
    }
}

void LeaderElector::start() {
    if (thread_.joinable()) return;
    thread_ = std::thread([this, token = stop_.token()] { loop(token); });
}

void LeaderElector::stop() {
    stop_.requestStop();
    if (thread_.joinable()) thread_.join();
    release();
}

void LeaderElector::loop(StopToken stop) {
    std::mt19937 rng(std::random_device{}());
    // Candidates spread their attempts (client-go's jitter factor 1.2) so they do not collide.
    auto jittered = [&](std::chrono::milliseconds d) {
        std::uniform_real_distribution<double> extra(0, 0.2);
        return std::chrono::milliseconds(static_cast<long long>(d.count() * (1 + extra(rng))));
    };
    while (!stop.stopRequested()) {
        if (!leading_) {
            if (tryAcquireOrRenew()) {
                lastRenew_ = clock().now();
                leading_ = true;
                spdlog::info("leader election: {} is now the leader (Lease {}/{})",
                             config_.identity, config_.leaseNamespace, config_.leaseName);
                if (callbacks_.onStartedLeading) callbacks_.onStartedLeading();
            }
            stop.sleepFor(jittered(config_.retryPeriod));
            continue;
        }
        if (tryAcquireOrRenew()) {
            lastRenew_ = clock().now();
        } else {
            const std::string holder = currentHolder();
            const bool taken = !holder.empty() && holder != config_.identity;
            if (taken || clock().now() - lastRenew_ > config_.renewDeadline) {
                leading_ = false;
                spdlog::error("leader election: lost the Lease {}/{} ({})", config_.leaseNamespace,
                              config_.leaseName,
                              taken ? "now held by " + holder : "renew deadline passed");
                if (callbacks_.onStoppedLeading) callbacks_.onStoppedLeading();
            }
        }
        stop.sleepFor(config_.retryPeriod);
    }
}

}  // namespace sluice::leader
