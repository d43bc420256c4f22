// Leader election on a Lease in the test API server, with real HTTP.
#include "sluice/leader/leader.h"

#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "apiserver/api_server.h"
#include "process/process.h"
#include "sluice/kube/client.h"
#include "sluice/kube/config.h"
#include "tempdir/tempdir.h"

namespace sluice::leader {
namespace {

using namespace std::chrono_literals;

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 20s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(20ms);
    }
    return pred();
}

class LeaderTest : public ::testing::Test {
  protected:
    void SetUp() override {
        server_.start();
        kubeconfig_ = server_.writeKubeconfig(dir_.file("kubeconfig"));
        server_.create(
            {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "sluice"}}}});
    }
    std::unique_ptr<kube::RestClient> client() {
        // As the controller configures its election client: a renew must fail fast enough to be
        // retried within the renew deadline.
        auto cfg = kube::loadKubeconfig(kubeconfig_);
        cfg.maxRetries = 1;
        cfg.requestTimeout = 1s;
        return std::make_unique<kube::RestClient>(cfg);
    }
    Config config(const std::string& identity, const Clock* clock = nullptr) {
        Config c;
        c.identity = identity;
        c.leaseDuration = 3s;
        c.renewDeadline = 2s;
        c.retryPeriod = 200ms;
        c.clock = clock;
        return c;
    }
    nlohmann::json lease() {
        return *server_.get("coordination.k8s.io/v1", "Lease", "sluice", "sluice-controller");
    }

    sluice::testing::TempDir dir_;
    sluice::testing::ApiServer server_;
    std::string kubeconfig_;
};

TEST(MicroTime, SixFractionDigitsInUtc) {
    std::chrono::system_clock::time_point t{std::chrono::microseconds(1764889200123456LL)};
    EXPECT_EQ(formatMicroTime(t), "2025-12-04T23:00:00.123456Z");
    EXPECT_TRUE(std::regex_match(formatMicroTime(std::chrono::system_clock::now()),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")));
}

TEST_F(LeaderTest, FirstCandidateCreatesTheLeaseAndTheSecondWaits) {
    FakeClock clock;
    auto ca = client(), cb = client();
    LeaderElector a(*ca, config("a", &clock), {});
    LeaderElector b(*cb, config("b", &clock), {});
    EXPECT_TRUE(a.tryAcquireOrRenew());
    EXPECT_FALSE(b.tryAcquireOrRenew());
    EXPECT_EQ(b.currentHolder(), "a");
    auto l = lease();
    EXPECT_EQ(l["spec"]["holderIdentity"], "a");
    EXPECT_EQ(l["spec"]["leaseDurationSeconds"], 3);
    EXPECT_EQ(l["spec"]["leaseTransitions"], 0);

    // a renews: same acquireTime, newer renewTime.
    clock.advance(1s);
    EXPECT_TRUE(a.tryAcquireOrRenew());
    EXPECT_EQ(lease()["spec"]["acquireTime"], l["spec"]["acquireTime"]);

    // b has seen a renew at every look, so the Lease never expires in its eyes.
    clock.advance(2s);
    EXPECT_FALSE(b.tryAcquireOrRenew());
}

TEST_F(LeaderTest, AnExpiredLeaseIsTakenOverJudgedByTheCandidatesOwnClock) {
    FakeClock clock;
    auto ca = client(), cb = client();
    LeaderElector a(*ca, config("a", &clock), {});
    LeaderElector b(*cb, config("b", &clock), {});
    ASSERT_TRUE(a.tryAcquireOrRenew());
    EXPECT_FALSE(b.tryAcquireOrRenew());  // b starts its own observation now
    clock.advance(2900ms);
    EXPECT_FALSE(b.tryAcquireOrRenew()) << "not yet expired";
    clock.advance(200ms);
    EXPECT_TRUE(b.tryAcquireOrRenew()) << "a stopped renewing 3.1 s ago";
    auto l = lease();
    EXPECT_EQ(l["spec"]["holderIdentity"], "b");
    EXPECT_EQ(l["spec"]["leaseTransitions"], 1);
    // a now sees b's record and stays out.
    EXPECT_FALSE(a.tryAcquireOrRenew());
    EXPECT_EQ(a.currentHolder(), "b");
}

TEST_F(LeaderTest, ConcurrentCandidatesNeverBothWin) {
    // Two candidates race for a free Lease many times; resourceVersion preconditions mean at
    // most one of each pair succeeds.
    for (int round = 0; round < 10; ++round) {
        const std::string name = "race-" + std::to_string(round);
        auto ca = client(), cb = client();
        Config c1 = config("a"), c2 = config("b");
        c1.leaseName = c2.leaseName = name;
        LeaderElector a(*ca, c1, {}), b(*cb, c2, {});
        bool wa = false, wb = false;
        std::thread ta([&] { wa = a.tryAcquireOrRenew(); });
        std::thread tb([&] { wb = b.tryAcquireOrRenew(); });
        ta.join();
        tb.join();
        EXPECT_FALSE(wa && wb) << "round " << round;
        auto holder = (*server_.get("coordination.k8s.io/v1", "Lease", "sluice",
                                    name))["spec"]["holderIdentity"];
        if (wa) {
            EXPECT_EQ(holder, "a");
        }
        if (wb) {
            EXPECT_EQ(holder, "b");
        }
    }
}

TEST_F(LeaderTest, ReleaseOnStopHandsOverAtOnce) {
    auto ca = client(), cb = client();
    std::atomic<int> aStarted{0}, bStarted{0}, aStopped{0};
    LeaderElector a(*ca, config("a"), {[&] { ++aStarted; }, [&] { ++aStopped; }, nullptr});
    a.start();
    ASSERT_TRUE(eventually([&] { return a.isLeader(); }));
    LeaderElector b(*cb, config("b"), {[&] { ++bStarted; }, nullptr, nullptr});
    b.start();
    std::this_thread::sleep_for(600ms);
    EXPECT_FALSE(b.isLeader());
    auto before = std::chrono::steady_clock::now();
    a.stop();
    EXPECT_EQ(aStopped, 0) << "a release is not a loss";
    // The released Lease (holder "", 1 s) is free: b takes it at its next attempt.
    ASSERT_TRUE(eventually([&] { return b.isLeader(); }, 5s));
    EXPECT_LT(std::chrono::steady_clock::now() - before, 2500ms)
        << "a hand-over waits for no lease expiry";
    EXPECT_EQ(aStarted, 1);
    EXPECT_EQ(bStarted, 1);
    EXPECT_EQ(lease()["spec"]["holderIdentity"], "b");
}

TEST_F(LeaderTest, LeaderThatCannotRenewStepsDown) {
    auto ca = client();
    std::atomic<int> stopped{0};
    LeaderElector a(*ca, config("a"), {nullptr, [&] { ++stopped; }, nullptr});
    a.start();
    ASSERT_TRUE(eventually([&] { return a.isLeader(); }));
    // Every Lease request fails from now on: after renewDeadline (2 s) a stops leading.
    server_.faults().failNext(1000, 500, "", "leases");
    ASSERT_TRUE(eventually([&] { return !a.isLeader(); }, 10s));
    EXPECT_EQ(stopped, 1);
    server_.faults().clear();
    // Once the API answers again it competes again and wins the (its own, expired) Lease.
    ASSERT_TRUE(eventually([&] { return a.isLeader(); }, 10s));
}

TEST_F(LeaderTest, InvalidTimingsAreRejected) {
    auto c = client();
    Config bad = config("a");
    bad.renewDeadline = bad.leaseDuration;
    EXPECT_THROW(LeaderElector(*c, bad, {}), std::invalid_argument);
    bad = config("a");
    bad.retryPeriod = bad.renewDeadline;
    EXPECT_THROW(LeaderElector(*c, bad, {}), std::invalid_argument);
}

}  // namespace
}  // namespace sluice::leader
