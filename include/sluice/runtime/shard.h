#pragma once
// A fixed split of the work between controller replicas (Argo CD's ARGOCD_CONTROLLER_REPLICAS
// with each replica's shard number): replica `index` of `count` reconciles the keys rendezvous
// (highest-random-weight) hashing gives it. Every key has exactly one owner, and going from n
// to n+1 shards moves only about 1/(n+1) of the keys.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::runtime {

// The shard (0..count-1) that owns key.
int shardOf(std::string_view key, int count);

struct Shard {
    int index = 0;
    int count = 1;  // 1: no sharding, every key is owned
    bool owns(std::string_view key) const { return count <= 1 || shardOf(key, count) == index; }
};

// The ordinal at the end of a StatefulSet Pod's name ("sluice-controller-2" -> 2), for
// --shard auto; nothing without one.
std::optional<int> ordinalOf(const std::string& podName);

}  // namespace sluice::runtime
