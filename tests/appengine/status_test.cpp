#include "sluice/appengine/status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::appengine {
namespace {

using ::testing::ElementsAre;

ResourceComparison resource(const std::string& group, const std::string& kind,
                            const std::string& ns, const std::string& name, SyncState state,
                            health::Status health, const std::string& message = "") {
    ResourceComparison r;
    r.key = {group, kind, ns, name};
    r.version = "v1";
    r.state = state;
    r.health = {health, message};
    return r;
}

TEST(ResourcesStatus, ArgoShape) {
    CompareResult c;
    c.resources.push_back(resource("apps", "Deployment", "prod", "api", SyncState::OutOfSync,
                                   health::Status::Progressing, "Waiting for rollout"));
    c.resources.push_back(
        resource("", "Namespace", "", "prod", SyncState::Synced, health::Status::Healthy));
    c.resources.push_back(
        resource("", "ConfigMap", "prod", "new", SyncState::Missing, health::Status::Missing));
    auto prune =
        resource("", "ConfigMap", "prod", "old", SyncState::OutOfSync, health::Status::Healthy);
    prune.requiresPruning = true;
    c.resources.push_back(prune);

    json s = resourcesStatus(c);
    ASSERT_EQ(s.size(), 4u);
    EXPECT_EQ(s[0], json::parse(R"({"group":"apps","version":"v1","kind":"Deployment",
        "namespace":"prod","name":"api","status":"OutOfSync",
        "health":{"status":"Progressing","message":"Waiting for rollout"}})"));
    EXPECT_EQ(s[1], json::parse(R"({"version":"v1","kind":"Namespace","name":"prod",
        "status":"Synced","health":{"status":"Healthy"}})"));
    EXPECT_EQ(s[2]["status"], "OutOfSync");
    EXPECT_EQ(s[2]["health"]["status"], "Missing");
    EXPECT_FALSE(s[2].contains("requiresPruning"));
    EXPECT_EQ(s[3]["requiresPruning"], true);
    EXPECT_EQ(resourcesStatus(CompareResult{}), json::array());
}

TEST(InventoryStatus, SortedAndUnique) {
    InventoryEntry dep{"apps", "v1", "Deployment", "prod", "api"};
    InventoryEntry cm{"", "v1", "ConfigMap", "prod", "cfg"};
    InventoryEntry ns{"", "v1", "Namespace", "", "prod"};
    json inv = inventoryStatus({dep, ns, cm, dep});
    ASSERT_EQ(inv.size(), 3u);
    EXPECT_EQ(inv[0], cm.toJson());
    EXPECT_EQ(inv[1], ns.toJson());
    EXPECT_EQ(inv[2], dep.toJson());
    EXPECT_THAT(parseInventory(inv), ElementsAre(cm, ns, dep));
}

TEST(History, IdsStartAtZeroAndTrimKeepsNewest) {
    json history;  // null: no history yet
    json source = {{"repoURL", "https://example.com/r"}, {"path", "."}};
    appendHistory(history, "rev0", source, "t0", "t0b", 3);
    ASSERT_EQ(history.size(), 1u);
    EXPECT_EQ(history[0], json({{"id", 0},
                                {"revision", "rev0"},
                                {"deployedAt", "t0b"},
                                {"deployStartedAt", "t0"},
                                {"source", source}}));
    for (int i = 1; i <= 4; ++i)
        appendHistory(history, "rev" + std::to_string(i), source, "s", "d", 3);
    ASSERT_EQ(history.size(), 3u);
    EXPECT_EQ(history[0]["id"], 2);
    EXPECT_EQ(history[2]["id"], 4);
    EXPECT_EQ(history[2]["revision"], "rev4");

    EXPECT_EQ(historyEntry(history, 3)["revision"], "rev3");
    EXPECT_TRUE(historyEntry(history, 0).is_null());  // trimmed
    EXPECT_TRUE(historyEntry(history, 9).is_null());
    EXPECT_TRUE(historyEntry(json(), 0).is_null());

    // A lower limit trims what is already there; ids keep counting.
    appendHistory(history, "rev5", source, "s", "d", 1);
    ASSERT_EQ(history.size(), 1u);
    EXPECT_EQ(history[0]["id"], 5);
    appendHistory(history, "rev6", source, "s", "d", 0);
    EXPECT_EQ(history, json::array());
}

TEST(Conditions, SetKeepsTransitionTimeWhenUnchanged) {
    json conditions;
    EXPECT_TRUE(setCondition(conditions, kSyncError, "apply failed", "t1"));
    EXPECT_TRUE(setCondition(conditions, kSharedResourceWarning, "x is tracked by y", "t1"));
    EXPECT_FALSE(setCondition(conditions, kSyncError, "apply failed", "t2"));
    ASSERT_EQ(conditions.size(), 2u);
    EXPECT_EQ(
        conditions[0],
        json({{"type", "SyncError"}, {"message", "apply failed"}, {"lastTransitionTime", "t1"}}));

    EXPECT_TRUE(setCondition(conditions, kSyncError, "dry run failed", "t3"));
    ASSERT_EQ(conditions.size(), 2u);
    EXPECT_EQ(conditions[0]["message"], "dry run failed");
    EXPECT_EQ(conditions[0]["lastTransitionTime"], "t3");
    EXPECT_EQ(conditions[1]["type"], "SharedResourceWarning");

    EXPECT_TRUE(removeCondition(conditions, kSyncError));
    EXPECT_FALSE(removeCondition(conditions, kSyncError));
    ASSERT_EQ(conditions.size(), 1u);
    EXPECT_EQ(conditions[0]["type"], "SharedResourceWarning");
    json none;
    EXPECT_FALSE(removeCondition(none, kSyncError));
}

TEST(SameStatus, IgnoresReconciledAtOnly) {
    json a = {{"sync", {{"status", "Synced"}}}, {"reconciledAt", "2024-01-01T00:00:00Z"}};
    json b = a;
    b["reconciledAt"] = "2024-01-01T00:05:00Z";
    EXPECT_TRUE(sameStatus(a, b));
    b.erase("reconciledAt");
    EXPECT_TRUE(sameStatus(a, b));
    b["sync"]["status"] = "OutOfSync";
    EXPECT_FALSE(sameStatus(a, b));
    EXPECT_FALSE(sameStatus(a, nullptr));
    EXPECT_TRUE(sameStatus(nullptr, nullptr));
}

TEST(PackStatus, BulkyListsBecomeTextAndComeBackUnchanged) {
    json status = json::parse(R"({
      "sync": {"status": "Synced", "revision": "abc"},
      "health": {"status": "Healthy"},
      "resources": [{"kind": "ConfigMap", "name": "a", "status": "Synced"}],
      "inventory": [{"version": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "a"}],
      "history": [{"id": 0, "revision": "abc"}],
      "operationState": {"phase": "Succeeded",
                         "syncResult": {"revision": "abc", "resources": [{"name": "a"}]}}})");
    json packed = status;
    packStatus(packed);
    for (const char* p :
         {"/resources", "/inventory", "/history", "/operationState/syncResult/resources"})
        EXPECT_TRUE(packed.at(json::json_pointer(p)).is_string()) << p;
    // What other readers look at stays JSON.
    EXPECT_EQ(packed["sync"], status["sync"]);
    EXPECT_EQ(packed["health"], status["health"]);
    EXPECT_EQ(packed["operationState"]["phase"], "Succeeded");
    EXPECT_EQ(packed["operationState"]["syncResult"]["revision"], "abc");
    json again = packed;
    packStatus(again);
    EXPECT_EQ(again, packed);
    EXPECT_EQ(unpackedField(packed["history"]), status["history"]);
    EXPECT_EQ(unpackedField(status["history"]), status["history"]);
    json unpacked = packed;
    unpackStatus(unpacked);
    EXPECT_EQ(unpacked, status);
    // The inventory parses from either form.
    EXPECT_EQ(parseInventory(packed["inventory"]).size(), 1u);
    EXPECT_EQ(parseInventory(packed["inventory"])[0].name, "a");
    // An empty or partial status is left as it is.
    json partial = {{"operationState", {{"phase", "Running"}}}};
    json before = partial;
    packStatus(partial);
    unpackStatus(partial);
    EXPECT_EQ(partial, before);
}

}  // namespace
}  // namespace sluice::appengine
