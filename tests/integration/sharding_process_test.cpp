// Live sharding through Leases (--sharding leases), with sluice-controller processes against one
// test API server (issue #12): the Applications are split between the replicas; a replica killed
// with SIGKILL has its Applications reconciled by the others within the lease duration; a
// replica joining later takes its share by graceful hand-over. "No Application is ever
// reconciled by two processes at once" is checked from the server's audit log, not from the
// controllers' own claims: each replica authenticates with a bearer token of its own user, and
// for every Application the users writing it (the Application itself and the ConfigMap it
// deploys) must form at most one hand-over [owner before, owner after], never an interleaving.
#include <signal.h>

#include <algorithm>
#include <regex>
#include <set>
#include <thread>

#include "controller_process.h"
#include "metrics/exposition_parser.h"
#include "prometheus/prometheus_server.h"

using namespace std::chrono_literals;
using nlohmann::json;
using sluice::testing::AuditEvent;
using sluice::testing::ChildProcess;
using sluice::testing::eventually;
using Clock = std::chrono::steady_clock;

namespace {

// Short leases so that a SIGKILLed replica's slots expire in seconds.
constexpr auto kLeaseDuration = 4s;
const char* const kLease = "4s";
const char* const kRenew = "3s";
const char* const kRetry = "1s";
// 32 slots (the default) over 3 replicas: a replica is left with no slot at all with odds of
// 3 x (2/3)^32, about 1e-5; with 24 Applications, it is left with no Application at about
// 3 x (2/3)^24, about 2e-5.
constexpr int kSlots = 32;
constexpr int kApps = 24;
constexpr int kMaxReplicas = 3;

std::string replicaUser(int i) {
    return "sluice-replica-" + std::to_string(i);
}
std::string replicaToken(int i) {
    return "replica-token-" + std::to_string(i);
}
std::string appName(int i) {
    return "app-" + std::to_string(i);
}
std::string configMapName(int i) {
    return "cm-" + std::to_string(i);
}

sluice::testing::ApiServerOptions shardingServer() {
    sluice::testing::ApiServerOptions o;
    for (int i = 0; i < kMaxReplicas; ++i) o.userTokens[replicaToken(i)] = replicaUser(i);
    o.authorize = false;
    // 3 replicas renewing 33 Leases each every second, for up to a minute, plus everything else.
    o.auditLogCapacity = 1'000'000;
    return o;
}

bool isWrite(const AuditEvent& e) {
    return e.verb == "create" || e.verb == "update" || e.verb == "patch" || e.verb == "delete" ||
           e.verb == "deletecollection";
}

struct Write {
    std::string user;
    Clock::time_point at;
};

// Consecutive duplicates collapsed: the succession of writers.
std::vector<std::string> writers(const std::vector<Write>& writes) {
    std::vector<std::string> out;
    for (const auto& w : writes)
        if (out.empty() || out.back() != w.user) out.push_back(w.user);
    return out;
}

std::string describe(const std::vector<std::string>& users) {
    std::string s = "[";
    for (const auto& u : users) s += (s.size() > 1 ? ", " : "") + u;
    return s + "]";
}

class ShardingProcess : public sluice::processtest::ControllerProcessTest {
  protected:
    ShardingProcess() : ControllerProcessTest(shardingServer()) {}

    struct Replica {
        int index = 0;
        std::string user;
        int metricsPort = 0;
        std::unique_ptr<ChildProcess> process;
    };

    void SetUp() override {
        ControllerProcessTest::SetUp();
        write("apps/.keep", "");
    }

    // A kubeconfig with the replica's own token instead of the admin's.
    std::string kubeconfigOf(int i) {
        std::ifstream in(kubeconfig_);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const std::string admin = server_.token();
        text.replace(text.find(admin), admin.size(), replicaToken(i));
        const std::string path = dir_.file("kubeconfig-" + std::to_string(i));
        std::ofstream(path) << text;
        return path;
    }

    // sluice-controller --sharding leases as replica i, with its own caches and ports; waits
    // until its /metrics answers.
    Replica& startReplica(int i) {
        Replica r;
        r.index = i;
        r.user = replicaUser(i);
        r.metricsPort = sluice::testing::freeLoopbackPort();
        const std::string tag = "replica-" + std::to_string(i);
        r.process = std::make_unique<ChildProcess>(
            std::vector<std::string>{SLUICE_CONTROLLER_BIN,
                                     "--kubeconfig",
                                     kubeconfigOf(i),
                                     "--control-namespace",
                                     "sluice",
                                     "--repo-cache-dir",
                                     dir_.file("cache-" + tag),
                                     "--render-dir",
                                     dir_.file("sources-" + tag),
                                     "--helm-path",
                                     sluice::testing::helmPath(),
                                     "--kubectl-path",
                                     sluice::testing::kubectlPath(),
                                     "--reconcile-interval",
                                     "10m",
                                     "--sharding",
                                     "leases",
                                     "--shard-slots",
                                     std::to_string(kSlots),
                                     "--leader-elect-lease-duration",
                                     kLease,
                                     "--leader-elect-renew-deadline",
                                     kRenew,
                                     "--leader-elect-retry-period",
                                     kRetry,
                                     "--metrics-addr",
                                     "127.0.0.1:" + std::to_string(r.metricsPort),
                                     "--health-addr",
                                     "0",
                                     "--webhook-addr",
                                     "0"});
        replicas_.push_back(std::move(r));
        Replica& added = replicas_.back();
        EXPECT_TRUE(eventually([&] { return scrape(added).has_value(); }, 30s))
            << added.process->stderrText();
        return added;
    }

    std::optional<sluice::testing::ParsedExposition> scrape(const Replica& r) {
        auto resp = sluice::testing::localHttpGet(r.metricsPort, "/metrics", 2s);
        if (!resp || resp->status != 200) return std::nullopt;
        try {
            return sluice::testing::parseExposition(resp->body);
        } catch (const std::exception&) {
            return std::nullopt;
        }
    }

    // Holder of each slot Lease ("" when free or missing).
    std::vector<std::string> slotHolders() {
        std::vector<std::string> holders(kSlots);
        for (int n = 0; n < kSlots; ++n) {
            auto lease = server_.get("coordination.k8s.io/v1", "Lease", "sluice",
                                     "sluice-controller-slot-" + std::to_string(n));
            if (lease)
                holders[static_cast<size_t>(n)] =
                    lease->value("/spec/holderIdentity"_json_pointer, std::string());
        }
        return holders;
    }

    // Every slot held, by `members` distinct holders, every running replica reporting `members`
    // members and holding some slots (the slots held adding up), unchanged for two retry periods.
    bool balanced(int members, std::chrono::milliseconds timeout = 30s) {
        std::vector<std::string> last;
        auto stableSince = Clock::now();
        return eventually(
            [&] {
                auto holders = slotHolders();
                std::set<std::string> distinct(holders.begin(), holders.end());
                bool ok = !distinct.contains("") && static_cast<int>(distinct.size()) == members;
                double held = 0;
                for (auto& r : replicas_) {
                    if (!ok || !r.process->running()) continue;
                    auto page = scrape(r);
                    if (!page || page->value("sluice_shard_members") != members ||
                        page->value("sluice_shard_slots_held").value_or(0) < 1)
                        ok = false;
                    else
                        held += *page->value("sluice_shard_slots_held");
                }
                ok = ok && held == kSlots;
                if (!ok || holders != last) {
                    last = holders;
                    stableSince = Clock::now();
                    return false;
                }
                balancedSince_ = stableSince;
                return Clock::now() - stableSince >= 2s;
            },
            timeout, 200ms);
    }

    // What balanced() looks at, for failure messages.
    std::string shardState() {
        const auto holders = slotHolders();
        std::map<std::string, int> perHolder;
        for (const auto& h : holders) ++perHolder[h];
        std::string s = "slot holders " + describe(holders) + "\nslot Leases per holder:";
        for (const auto& [h, n] : perHolder)
            s += " " + (h.empty() ? "(none)" : h) + "=" + std::to_string(n);
        s += " (a replica counting fewer slots than it holds Leases of has stranded one)\n";
        for (auto& r : replicas_) {
            if (!r.process->running()) continue;
            auto page = scrape(r);
            s +=
                r.user + ": members " +
                (page ? std::to_string(page->value("sluice_shard_members").value_or(-1)) : "?") +
                ", slots held " +
                (page ? std::to_string(page->value("sluice_shard_slots_held").value_or(-1)) : "?") +
                "\n";
        }
        return s;
    }

    // One ConfigMap per Application, cm-<i> with data.generation = generation; returns HEAD.
    std::string commitGeneration(const std::string& generation) {
        for (int i = 0; i < kApps; ++i)
            write("apps/" + appName(i) + "/cm.yaml",
                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + configMapName(i) +
                      "\ndata:\n  generation: " + generation + "\n");
        return commit();
    }

    void createApps() {
        for (int i = 0; i < kApps; ++i)
            createApp(appName(i), {{"source",
                                    {{"repoURL", "file://" + repo_},
                                     {"path", "apps/" + appName(i)},
                                     {"targetRevision", "main"}}}});
    }

    std::string generationOf(int i) {
        auto cm = object("v1", "ConfigMap", configMapName(i));
        return cm ? cm->value("/data/generation"_json_pointer, std::string()) : std::string();
    }

    bool syncedTo(int i, const std::string& sha) {
        auto s = server_.get("sluice.io/v1alpha1", "Application", "sluice", appName(i));
        return s && s->value("/status/sync/status"_json_pointer, std::string()) == "Synced" &&
               s->value("/status/sync/revision"_json_pointer, std::string()) == sha;
    }

    bool allSynced(const std::string& sha, const std::string& generation) {
        for (int i = 0; i < kApps; ++i)
            if (!syncedTo(i, sha) || generationOf(i) != generation) return false;
        return true;
    }

    std::string logs() {
        std::string s;
        for (auto& r : replicas_) {
            const std::string text = r.process->stderrText();
            s += "---- " + r.user + " (last 6000 bytes)\n" +
                 text.substr(text.size() > 6000 ? text.size() - 6000 : 0);
        }
        return s;
    }

    // For each Application, the controllers' writes on it and on its ConfigMap, oldest first
    // (the test's own writes, as admin, and writes on Leases, Events and the sluice-clusters-*
    // ConfigMaps are not Application writes).
    std::vector<std::vector<Write>> applicationWrites() {
        std::set<std::string> users;
        for (int i = 0; i < kMaxReplicas; ++i) users.insert(replicaUser(i));
        std::map<std::string, int> byApp, byConfigMap;
        for (int i = 0; i < kApps; ++i) {
            byApp[appName(i)] = i;
            byConfigMap[configMapName(i)] = i;
        }
        std::vector<std::vector<Write>> out(kApps);
        for (const auto& e : server_.auditLog()) {
            if (!isWrite(e) || !users.contains(e.user) || !e.allowed) continue;
            const std::map<std::string, int>* index = nullptr;
            if (e.resource == "applications" && e.ns == "sluice") index = &byApp;
            if (e.resource == "configmaps" && e.ns == "web") index = &byConfigMap;
            if (!index) continue;
            auto it = index->find(e.name);
            if (it != index->end()) out[static_cast<size_t>(it->second)].push_back({e.user, e.at});
        }
        return out;
    }

    // The slot numbers of the log lines "sharding: <verb> slot <n>" in text.
    static std::set<int> slotsLogged(const std::string& text, const std::string& verb) {
        std::set<int> slots;
        const std::regex re("sharding: " + verb + " slot ([0-9]+)");
        for (auto it = std::sregex_iterator(text.begin(), text.end(), re);
             it != std::sregex_iterator(); ++it)
            slots.insert(std::stoi((*it)[1]));
        return slots;
    }

    std::vector<Replica> replicas_;
    Clock::time_point balancedSince_;  // since when the last balanced() saw its state
};

// Three replicas split the Applications; one is SIGKILLed; its Applications are reconciled by
// the two others within the lease duration (plus a margin), and no Application is ever written
// by two replicas in alternation.
TEST_F(ShardingProcess, KilledReplicasApplicationsAreTakenOverWithinTheLeaseDuration) {
    replicas_.reserve(kMaxReplicas);
    for (int i = 0; i < 3; ++i) startReplica(i);
    ASSERT_TRUE(balanced(3)) << shardState() << logs();

    const std::string sha1 = commitGeneration("one");
    createApps();
    ASSERT_TRUE(eventually([&] { return allSynced(sha1, "one"); }, 40s)) << logs();
    std::this_thread::sleep_for(500ms);  // the last status writes after the ConfigMaps

    // Steady state: each Application written by one replica only, and every replica got some.
    std::vector<std::string> owner(kApps);
    std::map<std::string, int> owned;
    auto before = applicationWrites();
    for (int i = 0; i < kApps; ++i) {
        auto who = writers(before[static_cast<size_t>(i)]);
        ASSERT_EQ(who.size(), 1u) << appName(i) << " written by " << describe(who) << logs();
        owner[static_cast<size_t>(i)] = who.front();
        ++owned[who.front()];
    }
    for (int r = 0; r < 3; ++r)
        EXPECT_GE(owned[replicaUser(r)], 1) << replicaUser(r) << " got no Application";

    // SIGKILL replica 1, then a change of every ConfigMap and a refresh of every Application.
    Replica& victim = replicas_[1];
    ASSERT_GE(owned[victim.user], 1);
    victim.process->signal(SIGKILL);
    const auto killed = Clock::now();
    ASSERT_TRUE(victim.process->wait(5s).has_value());
    const std::string sha2 = commitGeneration("two");
    for (int i = 0; i < kApps; ++i) refresh(appName(i));

    std::vector<std::optional<Clock::time_point>> changedAt(kApps);
    ASSERT_TRUE(eventually(
        [&] {
            bool all = true;
            for (int i = 0; i < kApps; ++i) {
                if (!changedAt[static_cast<size_t>(i)] && generationOf(i) == "two")
                    changedAt[static_cast<size_t>(i)] = Clock::now();
                all = all && changedAt[static_cast<size_t>(i)].has_value();
            }
            return all;
        },
        40s, 50ms))
        << logs();
    ASSERT_TRUE(eventually([&] { return allSynced(sha2, "two"); }, 30s)) << logs();

    // (a) The victim's Applications are taken over within the lease duration: the Leases it
    // held are observed unchanged for 4 s, then taken at the next retry (1 s), then the
    // Application is fetched and synced. 5 s of margin beyond the lease duration, for the retry
    // period, the git fetch and sync, and slow (sanitizer, shared) CI machines.
    Clock::duration takeover{};
    for (int i = 0; i < kApps; ++i)
        if (owner[static_cast<size_t>(i)] == victim.user)
            takeover = std::max(takeover, *changedAt[static_cast<size_t>(i)] - killed);
    const double takeoverS = std::chrono::duration<double>(takeover).count();
    std::printf("takeover after SIGKILL: %.2f s (lease duration %lld s)\n", takeoverS,
                static_cast<long long>(kLeaseDuration.count()));
    EXPECT_LE(takeover, kLeaseDuration + 5s) << takeoverS << " s" << logs();

    // (b) From the server's log: per Application at most one hand-over, only away from the
    // victim, only of the victim's Applications; the victim never writes after its death.
    // 200 ms of grace for requests it sent just before the kill still being read.
    auto all = applicationWrites();
    for (int i = 0; i < kApps; ++i) {
        const auto& writes = all[static_cast<size_t>(i)];
        auto who = writers(writes);
        const std::string& was = owner[static_cast<size_t>(i)];
        ASSERT_FALSE(who.empty()) << appName(i);
        EXPECT_EQ(who.front(), was) << appName(i) << ": " << describe(who);
        if (was == victim.user) {
            ASSERT_EQ(who.size(), 2u) << appName(i) << ": " << describe(who) << logs();
            EXPECT_NE(who.back(), victim.user) << appName(i);
        } else {
            EXPECT_EQ(who.size(), 1u)
                << appName(i) << " moved off a live replica: " << describe(who) << logs();
        }
        for (const auto& w : writes)
            EXPECT_FALSE(w.user == victim.user && w.at > killed + 200ms)
                << appName(i) << ": the killed replica wrote after its death";
    }

    // The survivors hold every slot between them.
    EXPECT_TRUE(balanced(2, 20s)) << shardState() << logs();
}

// Two replicas, then a third joins while a change is being synced: it takes its share by
// graceful hand-over (each slot it acquires was released by its former holder, no expiry) and
// syncs its Applications at the next change; no Application is written by two replicas in
// alternation.
TEST_F(ShardingProcess, JoiningReplicaTakesItsShareByGracefulHandOver) {
    replicas_.reserve(kMaxReplicas);
    for (int i = 0; i < 2; ++i) startReplica(i);
    ASSERT_TRUE(balanced(2)) << shardState() << logs();

    const std::string sha1 = commitGeneration("one");
    createApps();
    ASSERT_TRUE(eventually([&] { return allSynced(sha1, "one"); }, 40s)) << logs();
    std::this_thread::sleep_for(500ms);
    std::vector<std::string> owner(kApps);
    auto before = applicationWrites();
    for (int i = 0; i < kApps; ++i) {
        auto who = writers(before[static_cast<size_t>(i)]);
        ASSERT_EQ(who.size(), 1u) << appName(i) << " written by " << describe(who) << logs();
        owner[static_cast<size_t>(i)] = who.front();
    }

    // The change and the join at once: slots move while their Applications are being synced.
    std::vector<size_t> logOffset;
    for (auto& r : replicas_) logOffset.push_back(r.process->stderrText().size());
    const std::string sha2 = commitGeneration("two");
    for (int i = 0; i < kApps; ++i) refresh(appName(i));
    Replica& joiner = startReplica(2);
    const auto joined = Clock::now();  // serving /metrics, about to join
    ASSERT_TRUE(balanced(3)) << shardState() << logs();
    // Graceful: the slots were handed over sooner than a Lease not renewed could expire, and
    // none was taken from a replica thought gone.
    const double handOverS = std::chrono::duration<double>(balancedSince_ - joined).count();
    EXPECT_LT(balancedSince_ - joined, kLeaseDuration) << handOverS << " s" << logs();
    EXPECT_EQ(joiner.process->stderrText().find("which is gone"), std::string::npos) << logs();
    ASSERT_TRUE(eventually([&] { return allSynced(sha2, "two"); }, 30s)) << logs();
    // Then one more change, synced by the new split: the joiner has Applications to write.
    const std::string sha3 = commitGeneration("three");
    for (int i = 0; i < kApps; ++i) refresh(appName(i));
    ASSERT_TRUE(eventually([&] { return allSynced(sha3, "three"); }, 30s)) << logs();
    std::this_thread::sleep_for(500ms);

    std::set<int> released;
    for (int r = 0; r < 2; ++r) {
        auto s = slotsLogged(replicas_[static_cast<size_t>(r)].process->stderrText().substr(
                                 logOffset[static_cast<size_t>(r)]),
                             "released");
        released.insert(s.begin(), s.end());
    }
    const std::set<int> acquired = slotsLogged(joiner.process->stderrText(), "acquired");
    EXPECT_FALSE(acquired.empty()) << logs();
    for (int slot : acquired)
        EXPECT_TRUE(released.contains(slot))
            << "slot " << slot << " acquired by the joiner was not released by its holder"
            << logs();

    auto all = applicationWrites();
    int moved = 0;
    for (int i = 0; i < kApps; ++i) {
        auto who = writers(all[static_cast<size_t>(i)]);
        ASSERT_FALSE(who.empty()) << appName(i);
        EXPECT_EQ(who.front(), owner[static_cast<size_t>(i)]) << appName(i);
        EXPECT_LE(who.size(), 2u) << appName(i) << ": " << describe(who) << logs();
        if (who.size() == 2) {
            EXPECT_EQ(who.back(), joiner.user) << appName(i) << ": " << describe(who);
            ++moved;
        }
    }
    EXPECT_GE(moved, 1) << "the joiner synced nothing" << logs();
    std::printf("joiner took %d of %d Applications (slots acquired: %zu) in %.2f s\n", moved, kApps,
                acquired.size(), handOverS);
}

}  // namespace
