// The fixed split of keys between controller replicas.
#include "sluice/runtime/shard.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::runtime {
namespace {

std::vector<std::string> keys(int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i)
        out.push_back("team-" + std::to_string(i % 7) + "/app-" + std::to_string(i));
    return out;
}

TEST(Shard, EveryKeyHasExactlyOneOwner) {
    for (int count : {1, 2, 3, 5}) {
        std::vector<Shard> shards;
        for (int i = 0; i < count; ++i) shards.push_back({i, count});
        for (const auto& k : keys(500)) {
            int owners = 0;
            for (const auto& s : shards) owners += s.owns(k) ? 1 : 0;
            EXPECT_EQ(owners, 1) << k << " with " << count << " shards";
        }
    }
    EXPECT_TRUE(Shard{}.owns("anything")) << "no sharding";
}

TEST(Shard, SpreadsEvenly) {
    const int count = 3;
    std::vector<int> per(count, 0);
    for (const auto& k : keys(3000)) ++per[static_cast<std::size_t>(shardOf(k, count))];
    for (int n : per) EXPECT_NEAR(n, 1000, 120) << "per shard of 3000 keys";
}

TEST(Shard, AnotherShardMovesOnlyItsShare) {
    int moved = 0;
    const auto all = keys(4000);
    for (const auto& k : all) {
        const int before = shardOf(k, 3), after = shardOf(k, 4);
        if (before != after) {
            ++moved;
            EXPECT_EQ(after, 3) << "a key only moves to the new shard";
        }
    }
    EXPECT_NEAR(moved, 1000, 150) << "about a quarter moves";
}

TEST(Shard, OrdinalOfAStatefulSetPod) {
    EXPECT_EQ(ordinalOf("sluice-controller-2"), 2);
    EXPECT_EQ(ordinalOf("sluice-controller-0"), 0);
    EXPECT_EQ(ordinalOf("sluice-controller-12"), 12);
    EXPECT_FALSE(ordinalOf("sluice-controller-7d9f8b6c4-x2x9z")) << "a Deployment's Pod";
    EXPECT_FALSE(ordinalOf("sluice-controller"));
    EXPECT_FALSE(ordinalOf("sluice-controller-"));
    EXPECT_FALSE(ordinalOf("plain"));
}

}  // namespace
}  // namespace sluice::runtime
