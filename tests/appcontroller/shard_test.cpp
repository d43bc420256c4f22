// A fixed split of the Applications between two controllers (--shard/--shards) on one server.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>

#include "harness.h"

namespace sluice::apptest {
namespace {

class ShardTest : public ControllerTest {};

TEST_F(ShardTest, EachApplicationIsReconciledByItsShardOnly) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")}});
    std::mutex mu;
    std::map<std::string, std::set<int>> reconciledBy;  // Application key -> shards
    auto options = [&](int index) {
        auto o = defaultOptions();
        o.shard = runtime::Shard{index, 2};
        return o;
    };
    makeController(options(0));
    auto other = std::make_unique<appcontroller::ApplicationController>(*client_, *factory_, git_,
                                                                        options(1));
    controller_->setObserver([&](const appcontroller::ReconcileRecord& r) {
        std::lock_guard lock(mu);
        reconciledBy[r.key].insert(0);
    });
    other->setObserver([&](const appcontroller::ReconcileRecord& r) {
        std::lock_guard lock(mu);
        reconciledBy[r.key].insert(1);
    });
    controller_->start();
    other->start();
    const int apps = 8;
    for (int i = 0; i < apps; ++i) {
        json a = application("app-" + std::to_string(i), "app", automated());
        a["spec"]["destination"]["namespace"] = "shard-" + std::to_string(i);
        a["spec"]["syncPolicy"]["syncOptions"] = {"CreateNamespace=true"};
        server_->create(a);
    }
    for (int i = 0; i < apps; ++i)
        EXPECT_TRUE(eventually([&] {
            return statusAt("app-" + std::to_string(i), "/sync/status") == "Synced";
        })) << "app-"
            << i;
    // A reconcile's observer runs after its status write: wait for the last ones. Then copy,
    // so that no lock is held while `other` joins a worker that may be in its observer (CI
    // under ASan read 7 of 8 and then hung in other.reset()).
    auto seen = [&] {
        std::lock_guard lock(mu);
        return reconciledBy;
    };
    EXPECT_TRUE(eventually([&] { return seen().size() == static_cast<std::size_t>(apps); }));
    const auto reconciled = seen();
    std::set<int> shardsUsed;
    for (const auto& [key, shards] : reconciled) {
        ASSERT_EQ(shards.size(), 1u) << key << " was reconciled by both";
        EXPECT_EQ(*shards.begin(), runtime::shardOf(key, 2)) << key;
        shardsUsed.insert(*shards.begin());
    }
    EXPECT_EQ(reconciled.size(), static_cast<std::size_t>(apps));
    EXPECT_EQ(shardsUsed.size(), 2u) << "8 Applications over 2 shards use both";
    other.reset();
}

}  // namespace
}  // namespace sluice::apptest
