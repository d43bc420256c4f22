#include "sluice/leader/sharding.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "sluice/cache/informer.h"
#include "sluice/kube/errors.h"
#include "sluice/kube/fence.h"
#include "sluice/leader/leader.h"
#include "sluice/runtime/runtime.h"
#include "sluice/runtime/shard.h"
#include "sluice/util/stop.h"

namespace sluice::leader {

using nlohmann::json;
using namespace std::chrono;

namespace {

const kube::GroupVersionKind kLease{"coordination.k8s.io", "v1", "Lease"};

int wholeSeconds(milliseconds d) {
    return static_cast<int>(std::max<long long>(1, (d.count() + 999) / 1000));
}

// A Lease as last seen, and since when it has not changed (this process's clock).
struct Seen {
    LeaseRecord record;
    std::string resourceVersion;
    std::string role;
    Clock::TimePoint since{};
    json object;
};

struct SlotState {
    bool held = false;
    bool draining = false;
    int inflight = 0;
    uint64_t generation = 0;  // bumped at each acquisition: a claim of an earlier one is fenced
};

}  // namespace

std::string leaseNameSuffix(const std::string& identity) {
    std::string out;
    for (char c : identity) {
        const auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u))
            out += static_cast<char>(std::tolower(u));
        else if (!out.empty() && out.back() != '-')
            out += '-';
        if (out.size() == 40) break;
    }
    while (!out.empty() && out.back() == '-') out.pop_back();
    return out.empty() ? "replica" : out;
}

struct ShardCoordinator::Impl : std::enable_shared_from_this<Impl> {
    kube::KubeClient& client;
    ShardingConfig cfg;
    std::string memberName;
    std::unique_ptr<cache::Informer> informer;

    mutable std::mutex mu;
    std::condition_variable wakeCv;
    bool woken = false;
    std::map<std::string, Seen> seen;  // by Lease name
    // Our own last write of each Lease until the watch shows it (the cache lags behind the
    // answer; reading the older state there would make a slot just taken look taken away).
    struct Written {
        json object;
        Clock::TimePoint at;
    };
    std::map<std::string, Written> written;
    json member;  // our membership Lease as last written
    Clock::TimePoint lastRenew{};
    bool renewed = false;
    std::vector<SlotState> slots;
    std::vector<std::string> live;
    std::vector<KeysGained> onGained;  // one per controller
    StopSource stopSource;
    std::thread thread;
    bool stopped = false;

    Impl(kube::KubeClient& c, ShardingConfig config) : client(c), cfg(std::move(config)) {
        if (cfg.identity.empty()) cfg.identity = defaultIdentity();
        if (cfg.slots < 1) throw std::invalid_argument("sharding: at least one slot");
        if (cfg.renewDeadline >= cfg.leaseDuration)
            throw std::invalid_argument("sharding: renewDeadline must be below leaseDuration");
        if (cfg.retryPeriod >= cfg.renewDeadline)
            throw std::invalid_argument("sharding: retryPeriod must be below renewDeadline");
        memberName = cfg.group + "-member-" + leaseNameSuffix(cfg.identity);
        slots.resize(static_cast<std::size_t>(cfg.slots));
    }

    const Clock& clock() const { return cfg.clock ? *cfg.clock : SystemClock::instance(); }
    std::string slotName(int slot) const { return cfg.group + "-slot-" + std::to_string(slot); }

    // Writes are allowed while the membership was renewed within the renew deadline.
    bool writableLocked(Clock::TimePoint now) const {
        return renewed && now - lastRenew < cfg.renewDeadline;
    }

    void wake() {
        {
            std::lock_guard lock(mu);
            woken = true;
        }
        wakeCv.notify_all();
    }

    json leaseObject(const std::string& name, const std::string& role,
                     const LeaseRecord& record) const {
        return {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata",
                 {{"name", name},
                  {"namespace", cfg.leaseNamespace},
                  {"labels", {{kShardingLabel, cfg.group}, {kShardingRoleLabel, role}}}}},
                {"spec", record.toSpec()}};
    }

    LeaseRecord ownRecord(const std::string& acquireTime = "") const {
        LeaseRecord r;
        r.holderIdentity = cfg.identity;
        r.leaseDurationSeconds = wholeSeconds(cfg.leaseDuration);
        const std::string wall = formatMicroTime(clock().wallNow());
        r.acquireTime = acquireTime.empty() ? wall : acquireTime;
        r.renewTime = wall;
        return r;
    }

    // --- what the watch shows -------------------------------------------------------------

    void remember(const json& answer, Clock::TimePoint now) {
        std::lock_guard lock(mu);
        written[answer.value("/metadata/name"_json_pointer, "")] = Written{answer, now};
    }

    // The Leases the informer holds, with our own writes it does not show yet in their place
    // (for at most a lease duration: a Lease deleted since is not brought back for long).
    std::map<std::string, json> current(Clock::TimePoint now) {
        std::map<std::string, json> out;
        for (const auto& obj : informer->store().list())
            out[obj->value("/metadata/name"_json_pointer, "")] = *obj;
        std::lock_guard lock(mu);
        for (auto it = written.begin(); it != written.end();) {
            auto cached = out.find(it->first);
            const bool shown =
                cached != out.end() &&
                runtime::resourceVersionReached(kube::resourceVersionOf(cached->second),
                                                kube::resourceVersionOf(it->second.object));
            if (shown || now - it->second.at > cfg.leaseDuration) {
                it = written.erase(it);
                continue;
            }
            out[it->first] = it->second.object;
            ++it;
        }
        return out;
    }

    // Takes in the Leases seen; a Lease whose resourceVersion changed is seen as changed now.
    void observe(Clock::TimePoint now) {
        std::map<std::string, Seen> next;
        for (auto& [name, obj] : current(now)) {
            const std::string rv = kube::resourceVersionOf(obj);
            Seen s;
            s.record = LeaseRecord::fromLease(obj);
            s.resourceVersion = rv;
            s.role = obj.value("/metadata/labels"_json_pointer, json::object())
                         .value(kShardingRoleLabel, "");
            s.object = std::move(obj);
            std::lock_guard lock(mu);
            auto old = seen.find(name);
            s.since =
                old != seen.end() && old->second.resourceVersion == rv ? old->second.since : now;
            next.emplace(name, std::move(s));
        }
        std::lock_guard lock(mu);
        seen = std::move(next);
    }

    // Whether the member with this identity renewed its membership within its lease duration,
    // as this process saw it. Caller holds mu.
    bool liveLocked(const std::string& identity, Clock::TimePoint now) const {
        if (identity == cfg.identity) return writableLocked(now);
        for (const auto& [name, s] : seen)
            if (s.role == "member" && s.record.holderIdentity == identity)
                return now - s.since < seconds(std::max(1, s.record.leaseDurationSeconds));
        return false;
    }

    std::vector<std::string> liveMembersLocked(Clock::TimePoint now) const {
        std::set<std::string> out;
        for (const auto& [name, s] : seen)
            if (s.role == "member" && !s.record.holderIdentity.empty() &&
                liveLocked(s.record.holderIdentity, now))
                out.insert(s.record.holderIdentity);
        if (writableLocked(now)) out.insert(cfg.identity);
        return {out.begin(), out.end()};
    }

    // --- membership --------------------------------------------------------------------------

    void renewMembership(Clock::TimePoint now) {
        {
            std::lock_guard lock(mu);
            if (renewed && now - lastRenew < cfg.retryPeriod && !member.is_null()) return;
        }
        json next;
        {
            std::lock_guard lock(mu);
            next = member.is_null() ? leaseObject(memberName, "member", ownRecord()) : member;
        }
        const std::string acquired = LeaseRecord::fromLease(next).acquireTime;
        next["spec"] = ownRecord(acquired).toSpec();
        try {
            json written = next.contains("/metadata/resourceVersion"_json_pointer)
                               ? client.update(next)
                               : client.create(next);
            std::lock_guard lock(mu);
            member = std::move(written);
            lastRenew = now;
            renewed = true;
        } catch (const kube::ApiError& e) {
            // Deleted by another replica after it expired, or changed under us: start over
            // from the server's copy next time.
            spdlog::warn("sharding: renewing membership Lease {}/{}: {}", cfg.leaseNamespace,
                         memberName, e.what());
            refetchMember();
        } catch (const std::exception& e) {
            spdlog::warn("sharding: renewing membership Lease {}/{}: {}", cfg.leaseNamespace,
                         memberName, e.what());
        }
    }

    void refetchMember() {
        json fresh;
        try {
            fresh = client.get(kLease, cfg.leaseNamespace, memberName);
        } catch (const std::exception&) {
            fresh = json();  // gone (or unreadable): create it again
        }
        std::lock_guard lock(mu);
        member = std::move(fresh);
    }

    // Deletes membership Leases not renewed for four lease durations (replicas that died), so
    // what they published with an owner reference to them is garbage-collected.
    void collectDeadMembers(Clock::TimePoint now) {
        std::vector<std::pair<std::string, std::string>> dead;
        {
            std::lock_guard lock(mu);
            for (const auto& [name, s] : seen)
                if (s.role == "member" && name != memberName &&
                    now - s.since > 4 * seconds(std::max(1, s.record.leaseDurationSeconds)))
                    dead.emplace_back(name, s.resourceVersion);
        }
        for (const auto& [name, rv] : dead) {
            kube::DeleteOptions opts;
            opts.preconditionResourceVersion = rv;
            try {
                client.remove(kLease, cfg.leaseNamespace, name, opts);
                spdlog::info("sharding: deleted the membership Lease {} of a replica gone", name);
            } catch (const std::exception& e) {
                spdlog::debug("sharding: deleting membership Lease {}: {}", name, e.what());
            }
        }
    }

    // --- slots -------------------------------------------------------------------------------

    // Whether `holder` still renews its membership, judged on a fresh read of its Lease: the
    // watch may be behind, and taking a live member's slot would let two replicas write.
    bool holderAliveNow(const std::string& holder, Clock::TimePoint now) {
        std::string name, rv;
        {
            std::lock_guard lock(mu);
            if (!liveLocked(holder, now)) {
                for (const auto& [n, s] : seen)
                    if (s.role == "member" && s.record.holderIdentity == holder) {
                        name = n;
                        rv = s.resourceVersion;
                    }
            } else {
                return true;
            }
        }
        if (name.empty()) return false;  // no membership Lease at all
        try {
            json fresh = client.get(kLease, cfg.leaseNamespace, name);
            return kube::resourceVersionOf(fresh) != rv;  // renewed since we last saw it
        } catch (const kube::ApiError& e) {
            return !e.isNotFound();
        } catch (const std::exception&) {
            return true;  // cannot tell: do not take
        }
    }

    // Takes slot `slot` when its Lease is free, ours, or held by a member that is gone.
    bool acquire(int slot, Clock::TimePoint now) {
        const std::string name = slotName(slot);
        std::optional<Seen> current;
        {
            std::lock_guard lock(mu);
            if (auto it = seen.find(name); it != seen.end()) current = it->second;
        }
        try {
            if (!current) {
                remember(client.create(leaseObject(name, "slot", ownRecord())), now);
            } else {
                const std::string holder = current->record.holderIdentity;
                if (!holder.empty() && holder != cfg.identity && holderAliveNow(holder, now))
                    return false;  // it hands the slot over when it sees it is not its own
                LeaseRecord record = ownRecord();
                record.leaseTransitions =
                    current->record.leaseTransitions + (holder == cfg.identity ? 0 : 1);
                json next = current->object;
                next["spec"] = record.toSpec();
                // Fails on a conflict: someone else moved first.
                remember(client.update(next), now);
                if (!holder.empty() && holder != cfg.identity)
                    spdlog::info("sharding: took slot {} from {}, which is gone", slot, holder);
            }
        } catch (const std::exception& e) {
            spdlog::debug("sharding: taking slot {}: {}", slot, e.what());
            return false;
        }
        std::lock_guard lock(mu);
        SlotState& s = slots[static_cast<std::size_t>(slot)];
        s.held = true;
        s.draining = false;
        ++s.generation;
        spdlog::info("sharding: acquired slot {}", slot);
        return true;
    }

    // Hands slot `slot` back (holder "") once no claim on it is in flight.
    void release(int slot) {
        const std::string name = slotName(slot);
        json next;
        {
            std::lock_guard lock(mu);
            SlotState& s = slots[static_cast<std::size_t>(slot)];
            s.draining = true;
            if (s.inflight > 0) return;
            auto it = seen.find(name);
            if (it == seen.end() || it->second.record.holderIdentity != cfg.identity) {
                s.held = false;
                return;
            }
            next = it->second.object;
            s.held = false;  // no claim from here on, whatever the write's fate
        }
        LeaseRecord record = LeaseRecord::fromLease(next);
        record.holderIdentity = "";
        record.renewTime = formatMicroTime(clock().wallNow());
        next["spec"] = record.toSpec();
        try {
            remember(client.update(next), clock().now());
            spdlog::info("sharding: released slot {}", slot);
        } catch (const std::exception& e) {
            // Still ours on the server: the next step sees it and hands it back again.
            spdlog::debug("sharding: releasing slot {}: {}", slot, e.what());
        }
    }

    // What to do with each slot now; returns the slots gained.
    std::vector<int> balance(Clock::TimePoint now) {
        std::vector<int> toTake, toRelease;
        {
            std::lock_guard lock(mu);
            const bool writable = writableLocked(now);
            live = liveMembersLocked(now);
            for (int n = 0; n < cfg.slots; ++n) {
                SlotState& s = slots[static_cast<std::size_t>(n)];
                const bool mine = writable && runtime::ownerOfSlot(n, live) == cfg.identity;
                auto it = seen.find(slotName(n));
                const bool takenAway =
                    s.held && it != seen.end() && it->second.record.holderIdentity != cfg.identity;
                if (s.held && (!writable || takenAway)) {
                    s.held = false;  // the fence closes on every claim of it
                    spdlog::warn("sharding: lost slot {} ({})", n,
                                 writable ? "taken by another replica"
                                          : "membership not renewed within the renew deadline");
                }
                // A Lease still ours on the server that this replica does not count as held
                // (lost while a write was under way) is handed back too, or nobody would work
                // on its keys.
                const bool strayLease =
                    !s.held && it != seen.end() && it->second.record.holderIdentity == cfg.identity;
                if (mine && !s.held) toTake.push_back(n);
                if (!mine && (s.held || strayLease)) toRelease.push_back(n);
                if (mine && s.held) s.draining = false;
            }
        }
        for (int n : toRelease) release(n);
        std::vector<int> gained;
        for (int n : toTake)
            if (acquire(n, now)) gained.push_back(n);
        return gained;
    }

    void step() {
        const auto now = clock().now();
        observe(now);
        renewMembership(now);
        const auto gained = balance(now);
        collectDeadMembers(now);
        std::vector<KeysGained> callbacks;
        {
            std::lock_guard lock(mu);
            callbacks = onGained;
        }
        if (gained.empty() || callbacks.empty()) return;
        const std::set<int> gainedSet(gained.begin(), gained.end());
        const int count = cfg.slots;
        const auto isGained = [gainedSet, count](std::string_view key) {
            return gainedSet.count(runtime::shardOf(key, count)) > 0;
        };
        for (const auto& callback : callbacks) callback(isGained);
    }

    // Until the next renewal, or the moment a member seen could expire, or a wake-up.
    Clock::TimePoint nextStepLocked(Clock::TimePoint now) const {
        auto next = now + cfg.retryPeriod;
        for (const auto& [name, s] : seen)
            if (s.role == "member" && s.record.holderIdentity != cfg.identity) {
                auto expiry =
                    s.since + seconds(std::max(1, s.record.leaseDurationSeconds)) + milliseconds(1);
                if (expiry > now) next = std::min(next, expiry);
            }
        return next;
    }

    void loop(StopToken stop) {
        while (!stop.stopRequested()) {
            step();
            std::unique_lock lock(mu);
            const auto now = clock().now();
            const auto wait = std::chrono::duration_cast<milliseconds>(nextStepLocked(now) - now);
            wakeCv.wait_for(lock, std::max(wait, milliseconds(10)),
                            [&] { return woken || stop.stopRequested(); });
            woken = false;
        }
    }
};

namespace {

// One claim: counts as in flight on its slot and fences the claiming thread's writes.
class ClaimHold final : public kube::WriteFence {
  public:
    ClaimHold(std::shared_ptr<ShardCoordinator::Impl> impl, int slot, uint64_t generation)
        : impl_(std::move(impl)), slot_(slot), generation_(generation) {}
    ~ClaimHold() override {
        bool draining;
        {
            std::lock_guard lock(impl_->mu);
            auto& s = impl_->slots[static_cast<std::size_t>(slot_)];
            --s.inflight;
            draining = s.draining && s.inflight == 0;
        }
        if (draining) impl_->wake();  // the slot can be handed over now
    }
    std::optional<std::string> closedBecause() const override {
        std::lock_guard lock(impl_->mu);
        const auto& s = impl_->slots[static_cast<std::size_t>(slot_)];
        if (!s.held || s.generation != generation_)
            return "slot " + std::to_string(slot_) + " is no longer held by this replica";
        if (!impl_->writableLocked(impl_->clock().now()))
            return "its membership Lease was not renewed within the renew deadline";
        return std::nullopt;
    }

  private:
    std::shared_ptr<ShardCoordinator::Impl> impl_;
    int slot_;
    uint64_t generation_;
};

// What a runtime::Claim keeps alive: the fence installed on the claiming thread.
struct FencedClaim {
    explicit FencedClaim(std::shared_ptr<ClaimHold> hold) : scope(hold), fence(std::move(hold)) {}
    kube::FenceScope scope;
    std::shared_ptr<ClaimHold> fence;
};

}  // namespace

ShardCoordinator::ShardCoordinator(kube::KubeClient& client, ShardingConfig config)
    : impl_(std::make_shared<Impl>(client, std::move(config))) {}

ShardCoordinator::~ShardCoordinator() {
    stop();
}

void ShardCoordinator::start() {
    if (impl_->thread.joinable() || impl_->stopped) return;
    cache::InformerOptions opts;
    opts.ns = impl_->cfg.leaseNamespace;
    opts.labelSelector = std::string(kShardingLabel) + "=" + impl_->cfg.group;
    impl_->informer = std::make_unique<cache::Informer>(impl_->client, kLease, opts);
    std::weak_ptr<Impl> weak = impl_;
    auto wake = [weak](const cache::ObjectPtr&) {
        if (auto impl = weak.lock()) impl->wake();
    };
    impl_->informer->addEventHandler(
        {wake, [wake](const cache::ObjectPtr&, const cache::ObjectPtr& o) { wake(o); }, wake});
    impl_->informer->start();
    spdlog::info("sharding: {} joins group {} ({} slots, Leases in {})", impl_->cfg.identity,
                 impl_->cfg.group, impl_->cfg.slots, impl_->cfg.leaseNamespace);
    impl_->thread = std::thread([impl = impl_, token = impl_->stopSource.token()] {
        // Nothing is decided before the watch shows every Lease of the group.
        while (!token.stopRequested() && !impl->informer->waitForSync(milliseconds(200))) {
        }
        impl->loop(token);
    });
}

void ShardCoordinator::stop(milliseconds drain) {
    Impl& m = *impl_;
    {
        std::lock_guard lock(m.mu);
        if (m.stopped) return;
        m.stopped = true;
        for (auto& s : m.slots) s.draining = true;
    }
    m.stopSource.requestStop();
    m.wakeCv.notify_all();
    if (m.thread.joinable()) m.thread.join();
    if (!m.informer) return;
    const auto deadline = steady_clock::now() + drain;
    for (int n = 0; n < m.cfg.slots; ++n) {
        while (steady_clock::now() < deadline) {
            {
                std::lock_guard lock(m.mu);
                if (m.slots[static_cast<std::size_t>(n)].inflight == 0) break;
            }
            std::this_thread::sleep_for(milliseconds(20));
        }
        bool held;
        {
            std::lock_guard lock(m.mu);
            held = m.slots[static_cast<std::size_t>(n)].held;
        }
        if (held) m.release(n);
    }
    try {
        m.client.remove(kLease, m.cfg.leaseNamespace, m.memberName, {});
    } catch (const std::exception& e) {
        spdlog::debug("sharding: deleting membership Lease {}: {}", m.memberName, e.what());
    }
    m.informer->stop();
    spdlog::info("sharding: {} left group {}", m.cfg.identity, m.cfg.group);
}

runtime::Claim ShardCoordinator::claim(std::string_view key) {
    const int slot = slotOf(key);
    uint64_t generation;
    {
        std::lock_guard lock(impl_->mu);
        auto& s = impl_->slots[static_cast<std::size_t>(slot)];
        if (!s.held || s.draining || !impl_->writableLocked(impl_->clock().now())) return {};
        ++s.inflight;
        generation = s.generation;
    }
    auto hold = std::make_shared<ClaimHold>(impl_, slot, generation);
    return runtime::Claim(std::make_shared<FencedClaim>(std::move(hold)));
}

bool ShardCoordinator::owns(std::string_view key) const {
    std::lock_guard lock(impl_->mu);
    const auto& s = impl_->slots[static_cast<std::size_t>(slotOf(key))];
    return s.held && !s.draining && impl_->writableLocked(impl_->clock().now());
}

void ShardCoordinator::onKeysGained(KeysGained callback) {
    std::lock_guard lock(impl_->mu);
    impl_->onGained.push_back(std::move(callback));
}

ShardingState ShardCoordinator::state() const {
    std::lock_guard lock(impl_->mu);
    ShardingState st;
    st.members = impl_->live;
    st.writable = impl_->writableLocked(impl_->clock().now());
    for (int n = 0; n < impl_->cfg.slots; ++n)
        if (impl_->slots[static_cast<std::size_t>(n)].held) st.heldSlots.push_back(n);
    return st;
}

const std::string& ShardCoordinator::identity() const {
    return impl_->cfg.identity;
}

std::string ShardCoordinator::memberLeaseName() const {
    return impl_->memberName;
}

std::string ShardCoordinator::memberLeaseUid() const {
    std::lock_guard lock(impl_->mu);
    return impl_->member.is_object() ? impl_->member.value("/metadata/uid"_json_pointer, "")
                                     : std::string();
}

int ShardCoordinator::slotOf(std::string_view key) const {
    return runtime::shardOf(key, impl_->cfg.slots);
}

void ShardCoordinator::step() {
    impl_->step();
}

}  // namespace sluice::leader
