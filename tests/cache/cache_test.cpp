#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <cstdio>
#include <fstream>

#include "fake_kube.h"
#include "sluice/cache/informer.h"
#include "sluice/cache/reflector.h"
#include "sluice/cache/store.h"

using namespace std::chrono_literals;
using namespace sluice::cache;
using nlohmann::json;
using sluice::cachetest::FakeKube;
using sluice::cachetest::makeObject;

namespace {

const sluice::kube::GroupVersionKind kConfigMap{"", "v1", "ConfigMap"};

template <class F>
bool eventually(F cond, std::chrono::milliseconds timeout = 5s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) return cond();
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// Appends instead of operator+: g++ 12 reports a bogus -Wrestrict for "lit" + std::string.
std::string numbered(const char* prefix, int i) {
    std::string s(prefix);
    s += std::to_string(i);
    return s;
}

std::string rv(const ObjectPtr& o) {
    return (*o)["metadata"].value("resourceVersion", "");
}
std::string nm(const ObjectPtr& o) {
    return (*o)["metadata"].value("name", "");
}

// Records handler calls as "add a@101", "update a@101->102", "delete a@103".
class Recorder {
  public:
    EventHandler handler() {
        return {
            [this](const ObjectPtr& o) { push("add " + nm(o) + "@" + rv(o)); },
            [this](const ObjectPtr& o, const ObjectPtr& n) {
                push("update " + nm(n) + "@" + rv(o) + "->" + rv(n));
            },
            [this](const ObjectPtr& o) { push("delete " + nm(o) + "@" + rv(o)); },
        };
    }
    std::vector<std::string> events() const {
        std::lock_guard lock(mu_);
        return events_;
    }
    std::size_t count() const {
        std::lock_guard lock(mu_);
        return events_.size();
    }
    // Waits until n events were recorded and returns them (more than n is a failure the
    // caller sees in the comparison).
    std::vector<std::string> waitFor(std::size_t n) const {
        eventually([&] { return count() >= n; });
        return events();
    }
    void clear() {
        std::lock_guard lock(mu_);
        events_.clear();
    }

  private:
    void push(std::string s) {
        std::lock_guard lock(mu_);
        events_.push_back(std::move(s));
    }
    mutable std::mutex mu_;
    std::vector<std::string> events_;
};

// Cuts the informer's open watch and makes its next one wait for resumeWatches(), so that
// changes made meanwhile are only seen after the reconnect.
void disconnect(FakeKube& kube) {
    ASSERT_TRUE(eventually([&] { return kube.openWatches() == 1; }));
    auto before = kube.watchVersions().size();
    kube.pauseWatches();
    ASSERT_TRUE(eventually([&] { return kube.watchVersions().size() == before + 1; }));
}

InformerOptions fastOptions() {
    InformerOptions o;
    o.backoff = {1ms, 2.0, 20ms};
    return o;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

// Store contents as name@rv, to compare with the fake server's objects.
std::vector<std::string> storeState(const Store& s) {
    std::vector<std::string> out;
    for (auto& o : s.list()) out.push_back(nm(o) + "@" + rv(o));
    std::sort(out.begin(), out.end());
    return out;
}
std::vector<std::string> serverState(const FakeKube& k) {
    std::vector<std::string> out;
    for (auto& o : k.items()) {
        out.push_back(o["metadata"].value("name", "") + "@" +
                      o["metadata"].value("resourceVersion", ""));
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

// ---------------------------------------------------------------- Store

TEST(Store, GetListNamespaceAndKeys) {
    Store s;
    s.upsert(std::make_shared<const json>(makeObject("b", "x")));
    s.upsert(std::make_shared<const json>(makeObject("a", "y")));
    s.upsert(std::make_shared<const json>(makeObject("a", "x")));
    s.upsert(std::make_shared<const json>(makeObject("", "cluster")));
    EXPECT_EQ(s.size(), 4u);
    EXPECT_EQ(s.keys(), (std::vector<std::string>{"cluster", "a/x", "a/y", "b/x"}));
    ASSERT_NE(s.get("a", "y"), nullptr);
    EXPECT_EQ(s.get("a", "z"), nullptr);
    EXPECT_NE(s.getByKey("b/x"), nullptr);
    EXPECT_NE(s.getByKey("cluster"), nullptr);
    auto a = s.listNamespace("a");
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(nm(a[0]), "x");
    EXPECT_EQ(nm(a[1]), "y");
    EXPECT_TRUE(s.listNamespace("c").empty());
    EXPECT_EQ(nm(s.erase("a", "x")), "x");
    EXPECT_EQ(s.erase("a", "x"), nullptr);
    EXPECT_EQ(s.size(), 3u);
}

TEST(Store, SplitStoreKeyUndoesStoreKey) {
    EXPECT_EQ(splitStoreKey(storeKey("ns", "a")), (std::pair<std::string, std::string>{"ns", "a"}));
    EXPECT_EQ(splitStoreKey(storeKey("", "node-1")),
              (std::pair<std::string, std::string>{"", "node-1"}));
}

TEST(Store, SnapshotsSurviveLaterWrites) {
    Store s;
    s.upsert(std::make_shared<const json>(makeObject("ns", "a", {{"v", "1"}})));
    ObjectPtr before = s.get("ns", "a");
    auto old = s.upsert(std::make_shared<const json>(makeObject("ns", "a", {{"v", "2"}})));
    EXPECT_EQ(old, before);
    EXPECT_EQ((*before)["data"]["v"], "1");
    EXPECT_EQ((*s.get("ns", "a"))["data"]["v"], "2");
}

TEST(Store, IndexesFollowUpsertAndErase) {
    Store s;
    auto byApp = [](const json& o) -> std::vector<std::string> {
        auto labels = o["metadata"].value("labels", json::object());
        if (!labels.contains("app")) return {};
        return {labels["app"].get<std::string>()};
    };
    auto withApp = [](std::string name, std::string app) {
        json o = makeObject("ns", name);
        o["metadata"]["labels"] = {{"app", app}};
        return std::make_shared<const json>(o);
    };
    s.upsert(withApp("a", "web"));
    s.addIndex("app", byApp);  // indexes what is already there
    s.upsert(withApp("b", "web"));
    s.upsert(withApp("c", "db"));
    EXPECT_EQ(s.byIndex("app", "web").size(), 2u);
    EXPECT_EQ(s.indexValues("app"), (std::vector<std::string>{"db", "web"}));
    s.upsert(withApp("a", "db"));  // moves between values
    EXPECT_EQ(s.byIndex("app", "web").size(), 1u);
    EXPECT_EQ(s.byIndex("app", "db").size(), 2u);
    s.erase("ns", "b");
    EXPECT_TRUE(s.byIndex("app", "web").empty());
    EXPECT_EQ(s.indexValues("app"), (std::vector<std::string>{"db"}));
    EXPECT_THROW(s.byIndex("nope", "x"), std::out_of_range);
}

TEST(Store, ThrowingIndexFunctionLeavesStoreUnchanged) {
    Store s;
    s.addIndex("strict", [](const json& o) -> std::vector<std::string> {
        if (!o["data"].contains("k")) throw std::runtime_error("no k");
        return {o["data"]["k"].get<std::string>()};
    });
    s.upsert(std::make_shared<const json>(makeObject("ns", "a", {{"k", "1"}})));
    EXPECT_THROW(s.upsert(std::make_shared<const json>(makeObject("ns", "a"))), std::runtime_error);
    ASSERT_NE(s.get("ns", "a"), nullptr);
    EXPECT_EQ((*s.get("ns", "a"))["data"]["k"], "1");
    EXPECT_EQ(s.byIndex("strict", "1").size(), 1u);
}

TEST(ResourceVersion, NumericWhenPossible) {
    EXPECT_TRUE(resourceVersionNewer("10", "9"));
    EXPECT_FALSE(resourceVersionNewer("9", "10"));
    EXPECT_FALSE(resourceVersionNewer("10", "10"));
    EXPECT_TRUE(resourceVersionNewer("abc", "abd"));  // opaque: different counts as newer
}

// ---------------------------------------------------------------- Informer over FakeKube

TEST(Informer, InitialSyncListsThenWatchesFromListVersion) {
    FakeKube kube;
    kube.put("ns", "a");
    kube.put("ns", "b");
    kube.put("other", "c");
    Informer inf(kube, kConfigMap, fastOptions());
    Recorder rec;
    inf.addEventHandler(rec.handler());
    EXPECT_FALSE(inf.hasSynced());
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    EXPECT_EQ(sorted(rec.events()),
              (std::vector<std::string>{"add a@101", "add b@102", "add c@103"}));
    EXPECT_EQ(inf.store().size(), 3u);
    EXPECT_EQ(inf.store().listNamespace("ns").size(), 2u);
    ASSERT_TRUE(eventually([&] { return kube.watchVersions().size() == 1; }));
    EXPECT_EQ(kube.watchVersions()[0], "103");
    EXPECT_EQ(kube.lastListOptions().limit, 500);
    EXPECT_EQ(kube.listCalls(), 1);
}

TEST(Informer, NamespaceAndSelectorArePassedToTheServer) {
    FakeKube kube;
    kube.put("ns", "a");
    kube.put("other", "b");
    InformerOptions o = fastOptions();
    o.ns = "ns";
    o.labelSelector = "app=web";
    Informer inf(kube, kConfigMap, o);
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    EXPECT_EQ(kube.lastListOptions().labelSelector, "app=web");
    EXPECT_EQ(storeState(inf.store()), (std::vector<std::string>{"a@101"}));
    kube.put("other", "c");
    kube.put("ns", "d");
    ASSERT_TRUE(eventually([&] { return inf.store().size() == 2; }));
    EXPECT_EQ(inf.store().get("other", "c"), nullptr);
}

TEST(Informer, DeliversAddUpdateDeleteInOrder) {
    FakeKube kube;
    Informer inf(kube, kConfigMap, fastOptions());
    Recorder rec;
    inf.addEventHandler(rec.handler());
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    kube.put("ns", "a");
    kube.put("ns", "a", {{"k", "v"}});
    kube.put("ns", "b");
    kube.del("ns", "a");
    EXPECT_EQ(rec.waitFor(4), (std::vector<std::string>{"add a@101", "update a@101->102",
                                                        "add b@103", "delete a@104"}));
    EXPECT_EQ(storeState(inf.store()), (std::vector<std::string>{"b@103"}));
    EXPECT_EQ(inf.lastResourceVersion(), "104");
}

TEST(Informer, ResumesFromLastVersionAfterDroppedStream) {
    FakeKube kube;
    kube.put("ns", "a");
    Informer inf(kube, kConfigMap, fastOptions());
    Recorder rec;
    inf.addEventHandler(rec.handler());
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    kube.put("ns", "b");
    ASSERT_EQ(rec.waitFor(2).size(), 2u);

    disconnect(kube);  // drop the stream and miss what happens next
    kube.put("ns", "c");
    kube.put("ns", "a", {{"x", "1"}});
    kube.resumeWatches();
    EXPECT_EQ(rec.waitFor(4), (std::vector<std::string>{"add a@101", "add b@102", "add c@103",
                                                        "update a@101->104"}));
    EXPECT_EQ(kube.watchVersions(), (std::vector<std::string>{"101", "102"}));
    EXPECT_EQ(kube.listCalls(), 1) << "a dropped stream must not relist";
}

TEST(Informer, ResumesAfterCleanCloseWithoutDuplicates) {
    FakeKube kube;
    Informer inf(kube, kConfigMap, fastOptions());
    Recorder rec;
    inf.addEventHandler(rec.handler());
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    kube.put("ns", "a");
    ASSERT_EQ(rec.waitFor(1).size(), 1u);
    kube.closeWatches();
    ASSERT_TRUE(eventually([&] { return kube.watchVersions().size() == 2; }));
    kube.put("ns", "b");
    EXPECT_EQ(rec.waitFor(2), (std::vector<std::string>{"add a@101", "add b@102"}));
    EXPECT_EQ(kube.watchVersions(), (std::vector<std::string>{"100", "101"}));
}

TEST(Informer, ReplayedEventsAreNotDeliveredTwice) {
    FakeKube kube;
    Informer inf(kube, kConfigMap, fastOptions());
    Recorder rec;
    inf.addEventHandler(rec.handler());
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    kube.put("ns", "a");
    kube.put("ns", "b");
    kube.put("ns", "a", {{"v", "2"}});
    kube.del("ns", "b");
    ASSERT_EQ(rec.waitFor(4).size(), 4u);
    kube.replayAllOnNextWatch();
    kube.dropWatches();
    ASSERT_TRUE(eventually([&] { return kube.watchVersions().size() == 2; }));
    kube.put("ns", "c");
    auto ev = rec.waitFor(5);
    // Give a wrongly delivered duplicate the chance to show up after the marker event.
    kube.put("ns", "marker");
    ev = rec.waitFor(6);
    EXPECT_EQ(ev, (std::vector<std::string>{"add a@101", "add b@102", "update a@101->103",
                                            "delete b@104", "add c@105", "add marker@106"}));
}

TEST(Informer, GoneRelistsAndEmitsExactlyTheMissedChanges) {
    FakeKube kube;
    kube.put("ns", "same");     // 101, unchanged throughout
    kube.put("ns", "changed");  // 102
    kube.put("ns", "deleted");  // 103
    Informer inf(kube, kConfigMap, fastOptions());
    Recorder rec;
    inf.addEventHandler(rec.handler());
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    ASSERT_EQ(rec.waitFor(3).size(), 3u);
    rec.clear();

    disconnect(kube);
    kube.put("ns", "changed", {{"v", "2"}});  // 104
    kube.del("ns", "deleted");                // 105
    kube.put("ns", "added");                  // 106
    kube.compact();
    kube.resumeWatches();

    ASSERT_TRUE(eventually([&] { return kube.listCalls() == 2 && rec.count() >= 3; }));
    kube.put("ns", "after");  // 107, through the new watch
    auto ev = rec.waitFor(4);
    ASSERT_EQ(ev.size(), 4u);
    // The relist reports the three missed changes (in list order), then the live event.
    EXPECT_EQ(sorted({ev.begin(), ev.begin() + 3}),
              (std::vector<std::string>{"add added@106", "delete deleted@103",
                                        "update changed@102->104"}));
    EXPECT_EQ(ev[3], "add after@107");
    EXPECT_EQ(storeState(inf.store()), serverState(kube));
    EXPECT_EQ(kube.watchVersions().back(), "106");
    EXPECT_EQ(kube.listCalls(), 2);
}

TEST(Informer, GoneAsWatchErrorEventAlsoRelists) {
    FakeKube kube;
    kube.put("ns", "a");
    Informer inf(kube, kConfigMap, fastOptions());
    Recorder rec;
    inf.addEventHandler(rec.handler());
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    ASSERT_TRUE(eventually([&] { return kube.openWatches() == 1; }));
    kube.goneViaErrorEvent();
    ASSERT_TRUE(eventually([&] { return kube.listCalls() == 2; }));
    kube.put("ns", "b");
    EXPECT_EQ(rec.waitFor(2), (std::vector<std::string>{"add a@101", "add b@102"}));
}

// An API server restart: the watch fails while it is down (backing off), then its version is
// gone. The relist comes at once, not after the backoff the outage built up.
TEST(Informer, GoneAfterAnOutageRelistsWithoutWaitingForTheBackoff) {
    FakeKube kube;
    kube.put("ns", "a");
    InformerOptions o;
    o.backoff = {500ms, 2.0, 60000ms};
    Informer inf(kube, kConfigMap, o);
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    ASSERT_TRUE(eventually([&] { return kube.openWatches() == 1; }));
    // Down: the watch drops and three more attempts fail (0, +500, +1000 ms of backoff, and
    // 2000 ms before the next); meanwhile the server moves on and compacts.
    const auto before = kube.watchVersions().size();
    kube.failNextWatches(std::make_exception_ptr(sluice::kube::TransportError("refused")), 3);
    kube.dropWatches();
    ASSERT_TRUE(eventually([&] { return kube.watchVersions().size() == before + 1; }, 5s));
    kube.put("ns", "b");
    kube.compact();
    // Up again: the next watch's version is gone.
    ASSERT_TRUE(eventually([&] { return kube.watchVersions().size() >= before + 4; }, 10s));
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(eventually([&] { return kube.listCalls() == 2; }, 10s));
    // With the outage's backoff carried over, the relist would wait 4000 ms.
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2000ms);
    EXPECT_TRUE(eventually([&] { return inf.store().get("ns", "b") != nullptr; }));
}

// As client-go: each watch asks the server to end it after 5-10 minutes (so a quiet watch
// is never cut by the client's read timeout), and a clean end resumes without a relist.
TEST(Informer, WatchesAskForAFiveToTenMinuteLifetimeAndResumeAfterIt) {
    FakeKube kube;
    kube.put("ns", "a");
    Informer inf(kube, kConfigMap, fastOptions());
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    ASSERT_TRUE(eventually([&] { return kube.openWatches() == 1; }));
    kube.closeWatches();
    ASSERT_TRUE(eventually([&] { return kube.watchTimeouts().size() == 2; }));
    for (int t : kube.watchTimeouts()) {
        EXPECT_GE(t, 300);
        EXPECT_LE(t, 600);
    }
    EXPECT_EQ(kube.listCalls(), 1);
}

TEST(Informer, BookmarkAdvancesResumeVersionWithoutNotifications) {
    FakeKube kube;
    kube.put("ns", "a");
    Informer inf(kube, kConfigMap, fastOptions());
    Recorder rec;
    inf.addEventHandler(rec.handler());
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    std::string bm = kube.bookmark();
    ASSERT_TRUE(eventually([&] { return inf.lastResourceVersion() == bm; }));
    kube.dropWatches();
    ASSERT_TRUE(eventually([&] { return kube.watchVersions().size() == 2; }));
    EXPECT_EQ(kube.watchVersions()[1], bm);
    EXPECT_EQ(rec.events(), (std::vector<std::string>{"add a@101"}));
}

TEST(Informer, OtherErrorsBackOffThenRecover) {
    FakeKube kube;
    InformerOptions o;
    o.backoff = {20ms, 2.0, 1000ms};
    Informer inf(kube, kConfigMap, o);
    Recorder rec;
    inf.addEventHandler(rec.handler());
    kube.failNextLists(std::make_exception_ptr(sluice::kube::TransportError("refused")), 1);
    kube.failNextWatches(
        std::make_exception_ptr(sluice::kube::ApiError(500, "InternalError", "boom")), 3);
    auto t0 = std::chrono::steady_clock::now();
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    ASSERT_TRUE(eventually([&] { return kube.openWatches() == 1; }));
    auto elapsed = std::chrono::steady_clock::now() - t0;
    // list fails (retry at once), then three watch failures: 20 + 40 + 80 ms of backoff.
    EXPECT_GE(elapsed, 140ms);
    EXPECT_EQ(kube.watchVersions().size(), 4u);
    EXPECT_EQ(kube.listCalls(), 2);
    kube.put("ns", "a");
    EXPECT_EQ(rec.waitFor(1), (std::vector<std::string>{"add a@101"}));
}

TEST(Informer, WaitForSyncTimesOutWhileListFails) {
    FakeKube kube;
    kube.failNextLists(std::make_exception_ptr(sluice::kube::ApiError(403, "Forbidden", "no")),
                       1000);
    Informer inf(kube, kConfigMap, fastOptions());
    inf.start();
    EXPECT_FALSE(inf.waitForSync(100ms));
    EXPECT_FALSE(inf.hasSynced());
    EXPECT_GE(kube.listCalls(), 2);
}

TEST(Informer, LateHandlerGetsSyntheticAddsThenLiveEvents) {
    FakeKube kube;
    kube.put("ns", "a");
    kube.put("ns", "b");
    Informer inf(kube, kConfigMap, fastOptions());
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    Recorder rec;
    inf.addEventHandler(rec.handler());
    EXPECT_EQ(rec.events(), (std::vector<std::string>{"add a@101", "add b@102"}));
    kube.put("ns", "c");
    EXPECT_EQ(rec.waitFor(3), (std::vector<std::string>{"add a@101", "add b@102", "add c@103"}));
}

TEST(Informer, HandlersAddedConcurrentlyWithEventsMissNothingAndSeeNothingTwice) {
    FakeKube kube;
    Informer inf(kube, kConfigMap, fastOptions());
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    constexpr int kObjects = 200;
    std::thread writer([&] {
        for (int i = 0; i < kObjects; ++i) kube.put("ns", numbered("o", i));
    });
    std::vector<std::unique_ptr<Recorder>> recs;
    for (int i = 0; i < 10; ++i) {
        recs.push_back(std::make_unique<Recorder>());
        inf.addEventHandler(recs.back()->handler());
        std::this_thread::sleep_for(1ms);  // spread registrations over the stream
    }
    writer.join();
    for (auto& r : recs) {
        auto ev = r->waitFor(kObjects);
        EXPECT_EQ(ev.size(), static_cast<std::size_t>(kObjects));
        EXPECT_EQ(std::set<std::string>(ev.begin(), ev.end()).size(), ev.size());
    }
}

TEST(Informer, TransformIsAppliedBeforeStoringAndDelivering) {
    FakeKube kube;
    kube.put("ns", "a", {{"big", "x"}});
    InformerOptions o = fastOptions();
    o.transform = [](json& obj) {
        dropManagedFields(obj);
        obj["data"].erase("big");
    };
    Informer inf(kube, kConfigMap, o);
    std::atomic<bool> sawManaged{false};
    inf.addEventHandler({[&](const ObjectPtr& obj) {
                             if ((*obj)["metadata"].contains("managedFields")) sawManaged = true;
                         },
                         {},
                         {}});
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    kube.put("ns", "b", {{"big", "y"}});
    ASSERT_TRUE(eventually([&] { return inf.store().size() == 2; }));
    for (auto& obj : inf.store().list()) {
        EXPECT_FALSE((*obj)["metadata"].contains("managedFields"));
        EXPECT_FALSE((*obj)["data"].contains("big"));
        EXPECT_FALSE(rv(obj).empty());
    }
    EXPECT_FALSE(sawManaged.load());
}

TEST(Transforms, PackManagedFieldsKeepsTheArrayAsItsText) {
    json entries = json::array({{{"manager", "sluice"},
                                 {"operation", "Apply"},
                                 {"fieldsV1", {{"f:data", {{"f:a", json::object()}}}}}}});
    json obj = {{"metadata", {{"name", "a"}, {"resourceVersion", "7"}, {"managedFields", entries}}},
                {"data", {{"a", "1"}}}};
    json packed = obj;
    packManagedFields(packed);
    ASSERT_TRUE(packed["metadata"]["managedFields"].is_string());
    EXPECT_EQ(json::parse(packed["metadata"]["managedFields"].get<std::string>()), entries);
    json twice = packed;
    packManagedFields(twice);
    EXPECT_EQ(twice, packed);  // idempotent
    packed["metadata"].erase("managedFields");
    obj["metadata"].erase("managedFields");
    EXPECT_EQ(packed, obj);  // nothing else touched
    json bare = {{"kind", "X"}};
    packManagedFields(bare);
    EXPECT_EQ(bare, json({{"kind", "X"}}));
}

TEST(Informer, DefaultKeepsObjectsIntact) {
    FakeKube kube;
    json put = kube.put("ns", "a", {{"k", "v"}});
    Informer inf(kube, kConfigMap, fastOptions());
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    EXPECT_EQ(*inf.store().get("ns", "a"), put);
}

TEST(Informer, StoreIndexesAreMaintainedByTheInformer) {
    FakeKube kube;
    kube.put("ns", "a", {{"owner", "x"}});
    Informer inf(kube, kConfigMap, fastOptions());
    inf.store().addIndex("owner", [](const json& o) -> std::vector<std::string> {
        if (!o["data"].contains("owner")) return {};
        return {o["data"]["owner"].get<std::string>()};
    });
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    EXPECT_EQ(inf.store().byIndex("owner", "x").size(), 1u);
    kube.put("ns", "b", {{"owner", "x"}});
    kube.put("ns", "a", {{"owner", "y"}});
    ASSERT_TRUE(eventually([&] { return inf.store().byIndex("owner", "y").size() == 1; }));
    EXPECT_EQ(inf.store().byIndex("owner", "x").size(), 1u);
    EXPECT_EQ(nm(inf.store().byIndex("owner", "x")[0]), "b");
}

TEST(Informer, ThrowingHandlerIsLoggedAndDoesNotStopDelivery) {
    FakeKube kube;
    Informer inf(kube, kConfigMap, fastOptions());
    inf.addEventHandler({[](const ObjectPtr&) { throw std::runtime_error("handler bug"); },
                         [](const ObjectPtr&, const ObjectPtr&) { throw 42; },
                         {}});
    Recorder rec;
    inf.addEventHandler(rec.handler());
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    kube.put("ns", "a");
    kube.put("ns", "a", {{"v", "2"}});
    kube.put("ns", "b");
    EXPECT_EQ(rec.waitFor(3),
              (std::vector<std::string>{"add a@101", "update a@101->102", "add b@103"}));
    EXPECT_EQ(kube.listCalls(), 1);
}

TEST(Informer, PeriodicResyncRedeliversEveryObjectAsUpdate) {
    FakeKube kube;
    kube.put("ns", "a");
    kube.put("ns", "b");
    InformerOptions o = fastOptions();
    o.resyncPeriod = 20ms;
    Informer inf(kube, kConfigMap, o);
    std::mutex mu;
    std::map<std::string, int> resyncs;
    std::atomic<bool> differentObjects{false};
    inf.addEventHandler({{},
                         [&](const ObjectPtr& a, const ObjectPtr& b) {
                             if (a != b) differentObjects = true;
                             std::lock_guard lock(mu);
                             ++resyncs[nm(b)];
                         },
                         {}});
    inf.start();
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lock(mu);
        return resyncs["a"] >= 2 && resyncs["b"] >= 2;
    }));
    EXPECT_FALSE(differentObjects.load());
}

TEST(Informer, StopIsPromptWhileWatchingAndWhileBackingOff) {
    {
        FakeKube kube;
        Informer inf(kube, kConfigMap, fastOptions());
        inf.start();
        ASSERT_TRUE(inf.waitForSync(5s));
        ASSERT_TRUE(eventually([&] { return kube.openWatches() == 1; }));
        auto t0 = std::chrono::steady_clock::now();
        inf.stop();
        // Generous on purpose (sanitizers, loaded CI): it proves stop cancels the open watch.
        EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
        EXPECT_EQ(kube.openWatches(), 0);
    }
    {
        FakeKube kube;
        InformerOptions o;
        o.backoff = {60000ms, 2.0, 60000ms};
        kube.failNextLists(std::make_exception_ptr(sluice::kube::TransportError("down")), 10);
        Informer inf(kube, kConfigMap, o);
        inf.start();
        ASSERT_TRUE(eventually([&] { return kube.listCalls() == 2; }));  // now in a 60 s wait
        auto t0 = std::chrono::steady_clock::now();
        inf.stop();
        // Well under the 60 s backoff: stop interrupts the wait instead of sitting it out.
        EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
        EXPECT_FALSE(inf.waitForSync(10ms));
    }
}

TEST(Informer, RelistAfterManyChangesMatchesServer) {
    FakeKube kube;
    for (int i = 0; i < 50; ++i) kube.put("ns", numbered("o", i));
    Informer inf(kube, kConfigMap, fastOptions());
    std::mutex mu;
    std::map<std::string, std::string> seen;  // name -> last rv delivered ("" after delete)
    inf.addEventHandler({[&](const ObjectPtr& o) {
                             std::lock_guard lock(mu);
                             seen[nm(o)] = rv(o);
                         },
                         [&](const ObjectPtr&, const ObjectPtr& n) {
                             std::lock_guard lock(mu);
                             seen[nm(n)] = rv(n);
                         },
                         [&](const ObjectPtr& o) {
                             std::lock_guard lock(mu);
                             seen.erase(nm(o));
                         }});
    inf.start();
    ASSERT_TRUE(inf.waitForSync(5s));
    for (int round = 0; round < 3; ++round) {
        disconnect(kube);
        for (int i = round; i < 50; i += 3) kube.put("ns", numbered("o", i), {{"r", round}});
        for (int i = round + 1; i < 50; i += 7) {
            if (kube.items().size() > 10) {
                try {
                    kube.del("ns", numbered("o", i));
                } catch (const std::out_of_range&) {
                }
            }
        }
        if (round != 1) kube.compact();
        kube.resumeWatches();
        eventually([&] { return storeState(inf.store()) == serverState(kube); });
        ASSERT_EQ(storeState(inf.store()), serverState(kube)) << "round " << round;
    }
    std::vector<std::string> handlerView;
    {
        std::lock_guard lock(mu);
        for (auto& [n, r] : seen) handlerView.push_back(n + "@" + r);
    }
    EXPECT_EQ(sorted(handlerView), serverState(kube));
}

// ---------------------------------------------------------------- SharedInformerFactory

TEST(SharedInformerFactory, SharesInformersPerKindNamespaceAndSelector) {
    FakeKube kube;
    kube.put("ns", "a");
    SharedInformerFactory f(kube, fastOptions());
    Informer& x = f.informerFor(kConfigMap);
    Informer& y = f.informerFor(kConfigMap, "", "");
    Informer& z = f.informerFor(kConfigMap, "ns");
    Informer& w = f.informerFor(kConfigMap, "ns", "app=web");
    EXPECT_EQ(&x, &y);
    EXPECT_NE(&x, &z);
    EXPECT_NE(&z, &w);
    f.startAll();
    EXPECT_TRUE(f.waitForCacheSync(5s));
    EXPECT_TRUE(x.hasSynced() && z.hasSynced() && w.hasSynced());
    EXPECT_EQ(kube.listCalls(), 3);
    f.stopAll();
    EXPECT_EQ(kube.openWatches(), 0);
}

TEST(SharedInformerFactory, WaitForCacheSyncFailsWhenOneInformerCannotSync) {
    FakeKube kube;
    SharedInformerFactory f(kube, fastOptions());
    f.informerFor(kConfigMap);
    f.startAll();
    ASSERT_TRUE(f.waitForCacheSync(5s));
    kube.failNextLists(std::make_exception_ptr(sluice::kube::ApiError(403, "Forbidden", "no")),
                       1000);
    f.informerFor(kConfigMap, "ns");
    f.startAll();
    EXPECT_FALSE(f.waitForCacheSync(100ms));
}

// Memory per cached object is measured by bench/kube_bench.cpp (scripts/bench.sh), not here.
