// Live sharding through Leases (leader::ShardCoordinator) against the test API server, with real
// HTTP: slots split between live replicas, a joining replica takes its share after the others
// hand it over, a leaving one hands its share back, and a replica cut off from the server stops
// writing (fence) before the others take its slots.
#include "sluice/leader/sharding.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "apiserver/api_server.h"
#include "sluice/kube/client.h"
#include "sluice/kube/config.h"
#include "sluice/kube/fence.h"
#include "tempdir/tempdir.h"
#include "testutil/testutil.h"

namespace sluice::leader {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

using sluice::testing::eventually;

constexpr int kSlots = 12;

sluice::testing::ApiServerOptions serverOptions() {
    sluice::testing::ApiServerOptions o;
    for (const char* r : {"a", "b", "c"}) o.userTokens[std::string("token-") + r] = r;
    return o;
}

class ShardingTest : public ::testing::Test {
  protected:
    void SetUp() override {
        server_.start();
        kubeconfig_ = server_.writeKubeconfig(dir_.file("kubeconfig"));
        server_.create(
            {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "sluice"}}}});
    }

    // A replica with its own client (its own token, so it can be cut off alone).
    struct Replica {
        std::unique_ptr<kube::RestClient> client;
        std::unique_ptr<ShardCoordinator> shards;
    };
    Replica replica(const std::string& name) {
        auto cfg = kube::loadKubeconfig(kubeconfig_);
        cfg.token = "token-" + name;
        cfg.maxRetries = 1;
        cfg.requestTimeout = 1s;
        Replica r;
        r.client = std::make_unique<kube::RestClient>(cfg);
        ShardingConfig sc;
        sc.identity = name;
        sc.slots = kSlots;
        sc.leaseDuration = 3s;
        sc.renewDeadline = 2s;
        sc.retryPeriod = 250ms;
        r.shards = std::make_unique<ShardCoordinator>(*r.client, sc);
        return r;
    }

    // Slot -> holder, as the server has it.
    std::map<int, std::string> holders() {
        std::map<int, std::string> out;
        for (int n = 0; n < kSlots; ++n)
            if (auto l = server_.get("coordination.k8s.io/v1", "Lease", "sluice",
                                     "sluice-controller-slot-" + std::to_string(n)))
                out[n] = (*l)["spec"].value("holderIdentity", "");
        return out;
    }

    // Every replica of `who` sees exactly them live and holds some slots; every slot is held
    // by one of them as the server says and as that replica believes, and no other replica
    // believes it holds it.
    bool settled(const std::map<std::string, ShardCoordinator*>& who) {
        std::vector<std::string> names;
        for (const auto& [name, s] : who) names.push_back(name);
        for (const auto& [name, s] : who)
            if (s->state().members != names || s->state().heldSlots.empty()) return false;
        auto h = holders();
        if (static_cast<int>(h.size()) != kSlots) return false;
        for (const auto& [slot, holder] : h) {
            if (!who.count(holder)) return false;
            for (const auto& [name, s] : who) {
                const auto held = s->state().heldSlots;
                const bool believes = std::find(held.begin(), held.end(), slot) != held.end();
                if (believes != (name == holder)) return false;
            }
        }
        return true;
    }

    sluice::testing::TempDir dir_;
    sluice::testing::ApiServer server_{serverOptions()};
    std::string kubeconfig_;
};

TEST(SlotOwner, RendezvousMovesOnlyTheShareOfAMemberThatComesOrGoes) {
    const std::vector<std::string> two = {"a", "b"}, three = {"a", "b", "c"};
    std::map<std::string, int> count;
    int moved = 0;
    for (int slot = 0; slot < 300; ++slot) {
        const auto before = runtime::ownerOfSlot(slot, two),
                   after = runtime::ownerOfSlot(slot, three);
        ++count[after];
        if (before != after) {
            ++moved;
            EXPECT_EQ(after, "c") << "slot " << slot << " moved between the members that stayed";
        }
    }
    EXPECT_GT(moved, 70);  // about a third moves to the newcomer
    EXPECT_LT(moved, 130);
    for (const auto& [member, n] : count) EXPECT_GT(n, 70) << member;
    EXPECT_EQ(runtime::ownerOfSlot(3, {}), "");
}

TEST(SlotOwner, LeaseNameSuffixIsADnsLabelPart) {
    EXPECT_EQ(leaseNameSuffix("Sluice-Controller-7f9c_1a2B3c4d"),
              "sluice-controller-7f9c-1a2b3c4d");
    EXPECT_EQ(leaseNameSuffix("__"), "replica");
    EXPECT_LE(leaseNameSuffix(std::string(100, 'x')).size(), 40u);
}

TEST_F(ShardingTest, ReplicasSplitTheSlotsAndAJoiningOneTakesItsShare) {
    auto a = replica("a"), b = replica("b");
    a.shards->start();
    b.shards->start();
    ASSERT_TRUE(eventually([&] {
        return settled({{"a", a.shards.get()}, {"b", b.shards.get()}});
    })) << "slots: "
        << json(holders()).dump();
    EXPECT_FALSE(a.shards->state().heldSlots.empty());
    EXPECT_FALSE(b.shards->state().heldSlots.empty());
    EXPECT_EQ(a.shards->state().members, (std::vector<std::string>{"a", "b"}));

    // A key is claimed by its slot's holder only.
    for (const std::string key : {"demo/guestbook", "team-a/api", "team-b/web", "x/y"}) {
        const bool ownedByA = static_cast<bool>(a.shards->claim(key));
        const bool ownedByB = static_cast<bool>(b.shards->claim(key));
        EXPECT_NE(ownedByA, ownedByB) << key;
    }

    // c joins: the others hand its slots over (released, then taken), and the keys gained are
    // announced.
    // Each controller (Applications, Canaries) registers its own callback: both are called.
    std::atomic<int> gainedByC{0}, canariesGainedByC{0};
    auto c = replica("c");
    c.shards->onKeysGained([&](const auto& gained) {
        for (int i = 0; i < 200; ++i)
            if (gained("ns/app-" + std::to_string(i))) ++gainedByC;
    });
    c.shards->onKeysGained([&](const auto& gained) {
        for (int i = 0; i < 200; ++i)
            if (gained("ns/canary-" + std::to_string(i))) ++canariesGainedByC;
    });
    c.shards->start();
    ASSERT_TRUE(eventually([&] {
        return settled({{"a", a.shards.get()}, {"b", b.shards.get()}, {"c", c.shards.get()}});
    })) << "slots: "
        << json(holders()).dump();
    EXPECT_FALSE(c.shards->state().heldSlots.empty());
    EXPECT_GT(gainedByC.load(), 0);
    EXPECT_GT(canariesGainedByC.load(), 0);
    auto membership = server_.list("coordination.k8s.io/v1", "Lease", "sluice");
    EXPECT_EQ(membership.size(), static_cast<std::size_t>(kSlots + 3));

    // c leaves: it releases its slots and deletes its membership Lease, and the others take
    // them at once, well before its Leases could have expired.
    const auto left = std::chrono::steady_clock::now();
    c.shards->stop();
    ASSERT_TRUE(eventually([&] {
        return settled({{"a", a.shards.get()}, {"b", b.shards.get()}});
    })) << "slots: "
        << json(holders()).dump();
    EXPECT_LT(std::chrono::steady_clock::now() - left, 2500ms);
    EXPECT_FALSE(
        server_.get("coordination.k8s.io/v1", "Lease", "sluice", "sluice-controller-member-c"));
}

TEST_F(ShardingTest, AClaimOnASlotBeingHandedOverDelaysTheHandOverUntilItEnds) {
    auto a = replica("a");
    a.shards->start();
    ASSERT_TRUE(eventually([&] { return settled({{"a", a.shards.get()}}); }));
    // A key of a slot that b will own once it joins.
    std::string key;
    for (int i = 0; key.empty() && i < 1000; ++i) {
        const std::string k = "ns/app-" + std::to_string(i);
        if (runtime::ownerOfSlot(a.shards->slotOf(k), {"a", "b"}) == "b") key = k;
    }
    ASSERT_FALSE(key.empty());
    const int slot = a.shards->slotOf(key);
    auto claim = a.shards->claim(key);
    ASSERT_TRUE(claim);
    auto b = replica("b");
    b.shards->start();
    std::this_thread::sleep_for(1500ms);  // b joined long ago; a still works on the key
    EXPECT_EQ(holders()[slot], "a");
    EXPECT_FALSE(a.shards->claim(key)) << "no new claim on a slot being handed over";
    EXPECT_FALSE(b.shards->claim(key));
    claim = runtime::Claim();  // the reconcile ends
    ASSERT_TRUE(eventually([&] { return static_cast<bool>(b.shards->claim(key)); }));
    EXPECT_EQ(holders()[slot], "b");
}

TEST_F(ShardingTest, AReplicaCutOffStopsWritingBeforeTheOthersTakeItsSlots) {
    auto a = replica("a"), b = replica("b");
    a.shards->start();
    b.shards->start();
    ASSERT_TRUE(eventually([&] {
        return settled({{"a", a.shards.get()}, {"b", b.shards.get()}});
    }));
    const int slotOfA = a.shards->state().heldSlots.front();
    std::string key;
    for (int i = 0; key.empty() && i < 1000; ++i)
        if (a.shards->slotOf("ns/app-" + std::to_string(i)) == slotOfA)
            key = "ns/app-" + std::to_string(i);
    // A reconcile of a's is under way on this thread when a loses the server.
    auto claim = a.shards->claim(key);
    ASSERT_TRUE(claim);
    const json cm = {{"apiVersion", "v1"},
                     {"kind", "ConfigMap"},
                     {"metadata", {{"name", "written"}, {"namespace", "sluice"}}}};
    a.client->create(cm);  // the fence is open
    const auto cut = std::chrono::steady_clock::now();
    server_.revokeToken("token-a");

    // Within the renew deadline (2 s) a's writes stop, before any write is sent.
    ASSERT_TRUE(eventually(
        [&] {
            try {
                a.client->apply(cm, {});
                return false;
            } catch (const kube::FencedError& e) {
                return std::string(e.what()).find("renew deadline") != std::string::npos;
            } catch (const kube::ApiError&) {
                return false;  // sent and refused (401): the fence was still open
            }
        },
        5s));
    const auto fenced = std::chrono::steady_clock::now() - cut;
    EXPECT_LT(fenced, 3s);
    // b takes a's slots once a's membership was not renewed for the lease duration (3 s).
    ASSERT_TRUE(eventually([&] { return holders()[slotOfA] == "b"; }, 10s));
    const auto takenOver = std::chrono::steady_clock::now() - cut;
    EXPECT_GT(takenOver, fenced) << "a stopped writing before b took over";
    EXPECT_GE(takenOver, 2500ms) << "not before a's membership expired";
    // b records the slot as held once its Lease write has returned, a moment after the server
    // shows it (CI read b's claim in between once).
    EXPECT_TRUE(eventually([&] { return static_cast<bool>(b.shards->claim(key)); }));
    EXPECT_FALSE(a.shards->claim(key));
}

}  // namespace
}  // namespace sluice::leader
