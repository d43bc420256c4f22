// The provider table: every routable row builds its router under every spelling, and the
// spellings makeRouter, --mesh-provider and the built-in queries accept are the table's.
#include <gtest/gtest.h>

#include <set>

#include "sluice/router/providers.h"

namespace sluice::router {
namespace {

TEST(ProviderTable, EveryRowRoutesUnderEverySpelling) {
    for (const ProviderEntry& entry : providerTable()) {
        SCOPED_TRACE(std::string(entry.name));
        EXPECT_EQ(findProvider(entry.name), &entry);
        if (!entry.makeRouter) {
            EXPECT_THROW(makeRouter(entry.name), RouterError) << "a query-only row";
            continue;
        }
        EXPECT_EQ(makeRouter(entry.name)->provider(), entry.name);
        for (std::string_view alias : entry.aliases) {
            EXPECT_EQ(findProvider(alias), &entry);
            EXPECT_EQ(makeRouter(alias)->provider(), entry.name);
        }
        std::string suffixed = std::string(entry.name) + ":mesh";
        EXPECT_EQ(findProvider(suffixed) == &entry, entry.acceptsSuffix);
    }
}

TEST(ProviderTable, NamesAreUnique) {
    std::set<std::string_view> seen;
    for (const ProviderEntry& entry : providerTable()) {
        EXPECT_TRUE(seen.insert(entry.name).second) << entry.name;
        for (std::string_view alias : entry.aliases)
            EXPECT_TRUE(seen.insert(alias).second) << alias;
    }
}

TEST(ProviderTable, UnknownSpellings) {
    for (std::string_view spelling : {"", "gatewayapi:", "istio:", "Istio", "osm", "nginx:x"}) {
        EXPECT_EQ(findProvider(spelling), nullptr) << spelling;
    }
    try {
        makeRouter("osm");
        FAIL() << "expected RouterError";
    } catch (const RouterError& error) {
        EXPECT_NE(std::string(error.what()).find(routableProviders()), std::string::npos)
            << error.what();
    }
    EXPECT_NE(routableProviders().find("gatewayapi:v1, gatewayapi, gatewayapi:v1beta1"),
              std::string::npos)
        << routableProviders();
}

}  // namespace
}  // namespace sluice::router
