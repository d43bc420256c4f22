// Watch semantics (initial state, replay, bookmarks, 410, selectors, timeouts) and faults.
#include "fixture.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

// Next non-bookmark event.
std::optional<json> nextEvent(TestClient::Stream& s, std::chrono::milliseconds t = 3s) {
    auto end = std::chrono::steady_clock::now() + t;
    while (std::chrono::steady_clock::now() < end) {
        auto ev = s.next(std::chrono::duration_cast<std::chrono::milliseconds>(
            end - std::chrono::steady_clock::now()));
        if (!ev) return std::nullopt;
        if ((*ev)["type"] != "BOOKMARK") return ev;
    }
    return std::nullopt;
}

TEST_F(ApiServerTest, WatchFromNowThenEvents) {
    client->post(kCm, configMap("pre"));
    auto w = client->stream(std::string(kCm) + "?watch=1");
    ASSERT_EQ(w->status, 200);
    auto ev = nextEvent(*w);
    ASSERT_TRUE(ev);
    EXPECT_EQ((*ev)["type"], "ADDED");
    EXPECT_EQ((*ev)["object"]["metadata"]["name"], "pre");

    client->post(kCm, configMap("a"));
    client->mergePatch(std::string(kCm) + "/a", {{"data", {{"k", "2"}}}});
    client->del(std::string(kCm) + "/a");
    std::vector<std::string> types;
    std::vector<uint64_t> rvs;
    for (int i = 0; i < 3; ++i) {
        auto e = nextEvent(*w);
        ASSERT_TRUE(e);
        types.push_back((*e)["type"]);
        rvs.push_back(
            std::stoull((*e)["object"]["metadata"]["resourceVersion"].get<std::string>()));
    }
    EXPECT_EQ(types, (std::vector<std::string>{"ADDED", "MODIFIED", "DELETED"}));
    EXPECT_TRUE(rvs[0] < rvs[1] && rvs[1] < rvs[2]);
}

TEST_F(ApiServerTest, WatchReplaysHistoryAfterResourceVersion) {
    auto a = client->post(kCm, configMap("a")).json();
    std::string from = rvOf(a);
    client->post(kCm, configMap("b"));
    client->mergePatch(std::string(kCm) + "/a", {{"data", {{"k", "2"}}}});
    auto w = client->stream(std::string(kCm) + "?watch=true&resourceVersion=" + from);
    auto e1 = nextEvent(*w);
    auto e2 = nextEvent(*w);
    ASSERT_TRUE(e1 && e2);
    EXPECT_EQ((*e1)["type"], "ADDED");
    EXPECT_EQ((*e1)["object"]["metadata"]["name"], "b");
    EXPECT_EQ((*e2)["type"], "MODIFIED");
    EXPECT_EQ((*e2)["object"]["metadata"]["name"], "a");
    EXPECT_FALSE(nextEvent(*w, 300ms)) << "nothing at or before the given revision";
    // Legacy /watch/ path with a single object.
    auto legacy = client->stream("/api/v1/watch/namespaces/default/configmaps/b");
    auto le = nextEvent(*legacy);
    ASSERT_TRUE(le);
    EXPECT_EQ((*le)["object"]["metadata"]["name"], "b");
}

TEST_F(ApiServerTest, WatchTooOldResourceVersionIs410InStream) {
    auto a = client->post(kCm, configMap("a")).json();
    server->compact();
    client->post(kCm, configMap("b"));
    auto w = client->stream(std::string(kCm) + "?watch=1&resourceVersion=" + rvOf(a));
    EXPECT_EQ(w->status, 200);
    auto ev = w->next(3s);
    ASSERT_TRUE(ev);
    EXPECT_EQ((*ev)["type"], "ERROR");
    EXPECT_EQ((*ev)["object"]["code"], 410);
    EXPECT_EQ((*ev)["object"]["reason"], "Expired");
    EXPECT_EQ((*ev)["object"]["kind"], "Status");
    EXPECT_NE((*ev)["object"]["message"].get<std::string>().find("too old resource version"),
              std::string::npos);
    EXPECT_FALSE(w->next(2s));
    EXPECT_TRUE(w->ended());
}

class SmallHistoryTest : public ApiServerTest {
  protected:
    ApiServerOptions options() override {
        ApiServerOptions o;
        o.watchHistory = 3;
        return o;
    }
};

TEST_F(SmallHistoryTest, HistoryIsBounded) {
    auto a = client->post(kCm, configMap("a")).json();
    for (int i = 0; i < 5; ++i) {
        std::string name = "x";
        client->post(kCm, configMap(name.append(std::to_string(i))));
    }
    auto w = client->stream(std::string(kCm) + "?watch=1&resourceVersion=" + rvOf(a));
    auto ev = w->next(3s);
    ASSERT_TRUE(ev);
    EXPECT_EQ((*ev)["type"], "ERROR");
    // A recent revision still replays.
    std::string recent = std::to_string(std::stoull(server->currentResourceVersion()) - 1);
    auto w2 = client->stream(std::string(kCm) + "?watch=1&resourceVersion=" + recent);
    auto ev2 = nextEvent(*w2);
    ASSERT_TRUE(ev2);
    EXPECT_EQ((*ev2)["type"], "ADDED");
}

TEST_F(ApiServerTest, Bookmarks) {
    client->post(kCm, configMap("a"));
    std::string rv = server->currentResourceVersion();
    auto w = client->stream(std::string(kCm) +
                            "?watch=1&allowWatchBookmarks=true&resourceVersion=" + rv);
    std::optional<json> bm;
    for (int i = 0; i < 10 && !bm; ++i) {
        auto ev = w->next(1s);
        if (ev && (*ev)["type"] == "BOOKMARK") bm = ev;
    }
    ASSERT_TRUE(bm);
    EXPECT_EQ((*bm)["object"]["kind"], "ConfigMap");
    EXPECT_EQ((*bm)["object"]["apiVersion"], "v1");
    EXPECT_EQ((*bm)["object"]["metadata"]["resourceVersion"], rv);
    // Without the flag: no bookmarks.
    auto plain = client->stream(std::string(kCm) + "?watch=1&resourceVersion=" + rv);
    EXPECT_FALSE(plain->next(600ms));
}

TEST_F(ApiServerTest, WatchSelectorTransitions) {
    client->post(kCm, configMap("a", {{"app", "web"}}));
    auto w = client->stream(std::string(kCm) + "?watch=1&labelSelector=app%3Dweb&resourceVersion=" +
                            server->currentResourceVersion());
    client->post(kCm, configMap("other", {{"app", "db"}}));
    client->mergePatch(std::string(kCm) + "/a", {{"metadata", {{"labels", {{"app", "db"}}}}}});
    auto left = nextEvent(*w);
    ASSERT_TRUE(left);
    EXPECT_EQ((*left)["type"], "DELETED");
    EXPECT_EQ((*left)["object"]["metadata"]["name"], "a");
    client->mergePatch(std::string(kCm) + "/other", {{"metadata", {{"labels", {{"app", "web"}}}}}});
    auto entered = nextEvent(*w);
    ASSERT_TRUE(entered);
    EXPECT_EQ((*entered)["type"], "ADDED");
    EXPECT_EQ((*entered)["object"]["metadata"]["name"], "other");
}

TEST_F(ApiServerTest, WatchTimeoutEndsCleanlyAndDropWatchesCuts) {
    auto t = client->stream(std::string(kCm) + "?watch=1&timeoutSeconds=1&resourceVersion=" +
                            server->currentResourceVersion());
    auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(t->next(4s));
    EXPECT_TRUE(t->ended());
    EXPECT_TRUE(t->cleanEnd());
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);

    auto w = client->stream(std::string(kCm) + "?watch=1");
    ASSERT_EQ(w->status, 200);
    server->dropWatches();
    EXPECT_FALSE(w->next(3s));
    EXPECT_TRUE(w->ended());
    EXPECT_FALSE(w->cleanEnd()) << "a dropped watch ends without the final chunk";
    // New watches work after a drop.
    auto again = client->stream(std::string(kCm) +
                                "?watch=1&resourceVersion=" + server->currentResourceVersion());
    client->post(kCm, configMap("after"));
    auto ev = nextEvent(*again);
    ASSERT_TRUE(ev);
    EXPECT_EQ((*ev)["object"]["metadata"]["name"], "after");
}

TEST_F(ApiServerTest, ManyConcurrentWritersAndWatchers) {
    std::vector<std::unique_ptr<TestClient::Stream>> watches;
    for (int i = 0; i < 4; ++i)
        watches.push_back(client->stream(
            std::string(kCm) + "?watch=1&resourceVersion=" + server->currentResourceVersion()));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            TestClient c(*server);
            for (int i = 0; i < 25; ++i) {
                std::string name = "c";
                name.append(std::to_string(t)).append("-").append(std::to_string(i));
                std::string url = kCm;
                url.append("/").append(name).append("?fieldManager=bench");
                c.apply(url, configMap(name).dump());
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(server->list("v1", "ConfigMap", "default").size(), 100u);
    for (auto& w : watches) {
        int n = 0;
        while (n < 100 && nextEvent(*w)) ++n;
        EXPECT_EQ(n, 100);
    }
}

TEST_F(ApiServerTest, FaultInjection) {
    server->faults().failNext(1, 503, "GET", "/configmaps");
    auto f = client->get(kCm);
    EXPECT_EQ(f.status, 503);
    EXPECT_EQ(f.json()["kind"], "Status");
    EXPECT_EQ(f.json()["code"], 503);
    EXPECT_EQ(client->get(kCm).status, 200) << "count consumed";

    // Method filter: a POST is not matched by a GET rule.
    server->faults().failNext(1, 500, "GET");
    EXPECT_EQ(client->post(kCm, configMap("a")).status, 201);
    EXPECT_EQ(client->get(kCm).status, 500);

    server->faults().throttleNext(2, 3, "", "/configmaps");
    auto t = client->get(kCm);
    EXPECT_EQ(t.status, 429);
    EXPECT_EQ(t.header("retry-after"), "3");
    EXPECT_EQ(t.json()["reason"], "TooManyRequests");
    EXPECT_EQ(t.json()["details"]["retryAfterSeconds"], 3);
    EXPECT_EQ(client->get(kCm).status, 429);
    EXPECT_EQ(client->get(kCm).status, 200);

    server->faults().delayNext(1, 400ms);
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(client->get(kCm).status, 200);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 400ms);

    server->faults().disconnectNext(1, "", "/configmaps");
    EXPECT_EQ(client->get(kCm).status, 0) << "connection closed without a complete answer";
    EXPECT_EQ(client->get(kCm).status, 200);

    // Watch requests can be targeted through the query string.
    server->faults().failNext(1, 500, "GET", "watch=");
    EXPECT_EQ(client->get(kCm).status, 200);
    EXPECT_EQ(client->stream(std::string(kCm) + "?watch=1")->status, 500);

    server->faults().failNext(5, 500);
    server->faults().clear();
    EXPECT_EQ(client->get(kCm).status, 200);
}

}  // namespace
}  // namespace sluice::testing
