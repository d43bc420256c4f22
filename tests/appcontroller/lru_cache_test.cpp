// The desired-state caches: bounded by objects held, least recently used out first.
#include <gtest/gtest.h>

#include <memory>

#include "impl.h"

namespace sluice::appcontroller {
namespace {

using Cache = detail::LruCache<std::shared_ptr<const int>>;

std::shared_ptr<const int> value(int v) {
    return std::make_shared<const int>(v);
}

TEST(LruCache, EvictsLeastRecentlyUsedBeyondTheObjectBound) {
    Cache cache(10);
    cache.put("a", value(1), 4);
    cache.put("b", value(2), 4);
    ASSERT_NE(cache.get("a"), nullptr);  // a is now the most recent
    cache.put("c", value(3), 4);         // 12 objects: b goes
    EXPECT_EQ(cache.get("b"), nullptr);
    EXPECT_EQ(*cache.get("a"), 1);
    EXPECT_EQ(*cache.get("c"), 3);
}

TEST(LruCache, ReplacingAnEntryCountsItsNewSize) {
    Cache cache(10);
    cache.put("a", value(1), 6);
    cache.put("b", value(2), 4);
    cache.put("a", value(10), 2);  // 6 objects held now
    cache.put("c", value(3), 4);   // 10: nothing goes
    EXPECT_EQ(*cache.get("a"), 10);
    EXPECT_EQ(*cache.get("b"), 2);
    EXPECT_EQ(*cache.get("c"), 3);
}

TEST(LruCache, KeepsTheNewestEntryEvenAboveTheBound) {
    Cache cache(10);
    cache.put("small", value(1), 2);
    cache.put("huge", value(2), 50);
    EXPECT_EQ(cache.get("small"), nullptr);
    EXPECT_EQ(*cache.get("huge"), 2);
    EXPECT_EQ(cache.get("missing"), nullptr);
}

}  // namespace
}  // namespace sluice::appcontroller
