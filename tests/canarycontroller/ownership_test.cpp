// The Canary controller reconciles only the Canaries its ownership grants (--shards, --sharding
// leases), and one granted later at once.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "harness.h"

namespace sluice::canarytest {
namespace {

// Owns the keys it is given; gaining one announces it as the Lease coordinator does.
class GrantedKeys final : public runtime::Ownership {
  public:
    runtime::Claim claim(std::string_view key) override {
        std::lock_guard lock(mu_);
        if (!keys_.count(std::string(key))) {
            refused_.insert(std::string(key));
            return {};
        }
        return runtime::Claim(std::make_shared<int>(0));
    }
    bool owns(std::string_view key) const override {
        std::lock_guard lock(mu_);
        return keys_.count(std::string(key)) > 0;
    }
    void onKeysGained(KeysGained callback) override {
        std::lock_guard lock(mu_);
        gained_ = std::move(callback);
    }
    void grant(const std::string& key) {
        KeysGained callback;
        {
            std::lock_guard lock(mu_);
            keys_.insert(key);
            callback = gained_;
        }
        if (callback) callback([key](std::string_view k) { return k == key; });
    }
    bool refused(const std::string& key) const {
        std::lock_guard lock(mu_);
        return refused_.count(key) > 0;
    }

  private:
    mutable std::mutex mu_;
    std::set<std::string> keys_, refused_;
    KeysGained gained_;
};

class CanaryOwnershipTest : public CanaryControllerTest {};

TEST_F(CanaryOwnershipTest, AnotherReplicasCanaryIsLeftAloneUntilItIsGained) {
    auto ownership = std::make_shared<GrantedKeys>();
    auto options = defaultOptions();
    options.ownership = ownership;
    startController(options);
    server_->create(deployment("podinfo", "example/app:1.0"));
    server_->create(gatewayCanary("podinfo", "podinfo"));

    // Offered to this replica, refused, and nothing written for it.
    ASSERT_TRUE(eventually([&] { return ownership->refused(kNs + "/podinfo"); }));
    std::this_thread::sleep_for(1500ms);
    EXPECT_FALSE(deploymentObject("podinfo-primary"));
    EXPECT_EQ(phase("podinfo"), "");
    EXPECT_TRUE(records().empty());

    // Gained: reconciled at once, without any change to the Canary.
    ownership->grant(kNs + "/podinfo");
    ASSERT_TRUE(eventually([&] { return phase("podinfo") == "Initialized"; }))
        << status("podinfo").dump(2);
    EXPECT_TRUE(deploymentObject("podinfo-primary"));
}

}  // namespace
}  // namespace sluice::canarytest
