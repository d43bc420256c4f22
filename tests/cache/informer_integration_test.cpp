// Informer against the in-process Kubernetes API test server over HTTPS: changes made by
// another client arrive exactly once, also across dropped watches and compaction (410 Gone).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "apiserver/api_server.h"
#include "sluice/cache/informer.h"
#include "sluice/cache/scoped_informer.h"
#include "sluice/kube/client.h"
#include "sluice/kube/config.h"

using namespace std::chrono_literals;
using namespace sluice::cache;
using nlohmann::json;
using sluice::testing::ApiServer;
using sluice::testing::ApiServerOptions;

namespace {

const sluice::kube::GroupVersionKind kConfigMap{"", "v1", "ConfigMap"};

template <class F>
bool eventually(F cond, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) return cond();
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

std::string numbered(const char* prefix, int i) {
    std::string s(prefix);
    s += std::to_string(i);
    return s;
}

json configMap(const std::string& name, const std::string& value) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}, {"namespace", "default"}}},
            {"data", {{"k", value}}}};
}

std::string nameRv(const json& o) {
    return o["metadata"].value("name", "") + "@" + o["metadata"].value("resourceVersion", "");
}

// Counts every notification per object state: each (name, resourceVersion) must be announced
// exactly once, by an add or an update, and each deletion exactly once.
class Ledger {
  public:
    EventHandler handler() {
        return {[this](const ObjectPtr& o) { seen(*o); },
                [this](const ObjectPtr&, const ObjectPtr& n) { seen(*n); },
                [this](const ObjectPtr& o) {
                    std::lock_guard lock(mu_);
                    ++deletes_[(*o)["metadata"].value("name", "")];
                }};
    }
    std::vector<std::string> duplicates() const {
        std::lock_guard lock(mu_);
        std::vector<std::string> out;
        for (auto& [k, n] : states_)
            if (n != 1) out.push_back(k + " x" + std::to_string(n));
        for (auto& [k, n] : deletes_)
            if (n != 1) out.push_back("delete " + k + " x" + std::to_string(n));
        return out;
    }
    int deletes(const std::string& name) const {
        std::lock_guard lock(mu_);
        auto it = deletes_.find(name);
        return it == deletes_.end() ? 0 : it->second;
    }
    bool announced(const std::string& state) const {
        std::lock_guard lock(mu_);
        return states_.count(state) > 0;
    }

  private:
    void seen(const json& o) {
        std::lock_guard lock(mu_);
        ++states_[nameRv(o)];
    }
    mutable std::mutex mu_;
    std::map<std::string, int> states_;
    std::map<std::string, int> deletes_;
};

// Forwards to a real client and counts how watches ended, so a test can wait until the
// informer has really been refused instead of guessing with a sleep.
class ObservedClient final : public sluice::kube::KubeClient {
  public:
    explicit ObservedClient(sluice::kube::KubeClient& inner) : inner_(inner) {}
    int watchErrors(int code) const {
        std::lock_guard lock(mu_);
        auto it = errors_.find(code);
        return it == errors_.end() ? 0 : it->second;
    }

    sluice::kube::ResourceInfo resourceFor(const sluice::kube::GroupVersionKind& g) override {
        return inner_.resourceFor(g);
    }
    sluice::kube::Object get(const sluice::kube::GroupVersionKind& g, const std::string& ns,
                             const std::string& name) override {
        return inner_.get(g, ns, name);
    }
    sluice::kube::ListResult list(const sluice::kube::GroupVersionKind& g, const std::string& ns,
                                  const sluice::kube::ListOptions& o) override {
        return inner_.list(g, ns, o);
    }
    sluice::kube::ListResult listAll(const sluice::kube::GroupVersionKind& g, const std::string& ns,
                                     const sluice::kube::ListOptions& o) override {
        return inner_.listAll(g, ns, o);
    }
    void watch(const sluice::kube::GroupVersionKind& g, const std::string& ns,
               const sluice::kube::WatchOptions& o,
               const std::function<bool(sluice::kube::WatchEvent&)>& onEvent,
               const sluice::StopToken& stop) override {
        try {
            inner_.watch(g, ns, o, onEvent, stop);
        } catch (const sluice::kube::ApiError& e) {
            std::lock_guard lock(mu_);
            ++errors_[e.code()];
            throw;
        }
    }
    sluice::kube::Object create(const sluice::kube::Object& o,
                                const sluice::kube::WriteOptions& w) override {
        return inner_.create(o, w);
    }
    sluice::kube::Object update(const sluice::kube::Object& o,
                                const sluice::kube::WriteOptions& w) override {
        return inner_.update(o, w);
    }
    sluice::kube::Object updateStatus(const sluice::kube::Object& o,
                                      const sluice::kube::WriteOptions& w) override {
        return inner_.updateStatus(o, w);
    }
    sluice::kube::Object apply(const sluice::kube::Object& o,
                               const sluice::kube::ApplyOptions& a) override {
        return inner_.apply(o, a);
    }
    sluice::kube::Object patch(const sluice::kube::GroupVersionKind& g, const std::string& ns,
                               const std::string& name, sluice::kube::PatchType t,
                               const std::string& body,
                               const sluice::kube::PatchOptions& p) override {
        return inner_.patch(g, ns, name, t, body, p);
    }
    sluice::kube::Object remove(const sluice::kube::GroupVersionKind& g, const std::string& ns,
                                const std::string& name,
                                const sluice::kube::DeleteOptions& d) override {
        return inner_.remove(g, ns, name, d);
    }

  private:
    sluice::kube::KubeClient& inner_;
    mutable std::mutex mu_;
    std::map<int, int> errors_;
};

class InformerIntegration : public ::testing::Test {
  protected:
    static ApiServerOptions serverOptions() {
        ApiServerOptions o;
        o.simulateWorkloads = false;
        o.bookmarkInterval = 100ms;
        return o;
    }
    InformerIntegration() : server_(serverOptions()) {}

    void SetUp() override {
        server_.start();
        char tmpl[] = "/tmp/sluice-cache-it-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        std::string path = server_.writeKubeconfig(dir_ + "/kubeconfig");
        auto cfg = sluice::kube::loadKubeconfig(path);
        cfg.qps = 0;  // bulk writes in tests need no client-side throttle
        watchClient_ = std::make_unique<sluice::kube::RestClient>(cfg);
        observed_ = std::make_unique<ObservedClient>(*watchClient_);
        writer_ = std::make_unique<sluice::kube::RestClient>(cfg);
    }
    void TearDown() override {
        writer_.reset();
        observed_.reset();
        watchClient_.reset();
        server_.stop();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    std::unique_ptr<Informer> makeInformer() {
        InformerOptions o;
        o.ns = "default";
        o.backoff = {20ms, 2.0, 200ms};
        return std::make_unique<Informer>(*observed_, kConfigMap, o);
    }

    std::vector<std::string> serverState() {
        std::vector<std::string> out;
        for (auto& o : server_.list("v1", "ConfigMap", "default")) out.push_back(nameRv(o));
        std::sort(out.begin(), out.end());
        return out;
    }
    static std::vector<std::string> storeState(const Store& s) {
        std::vector<std::string> out;
        for (auto& o : s.list()) out.push_back(nameRv(*o));
        std::sort(out.begin(), out.end());
        return out;
    }
    void expectConverged(Informer& inf) {
        eventually([&] { return storeState(inf.store()) == serverState(); });
        EXPECT_EQ(storeState(inf.store()), serverState());
    }

    json update(const std::string& name, const std::string& value) {
        json cur = writer_->get(kConfigMap, "default", name);
        cur["data"]["k"] = value;
        return writer_->update(cur);
    }

    ApiServer server_;
    std::string dir_;
    std::unique_ptr<sluice::kube::RestClient> watchClient_;
    std::unique_ptr<ObservedClient> observed_;
    std::unique_ptr<sluice::kube::RestClient> writer_;
};

}  // namespace

TEST_F(InformerIntegration, SeesCreatesUpdatesAndDeletesFromAnotherClient) {
    server_.create(configMap("pre", "0"));
    auto inf = makeInformer();
    Ledger ledger;
    inf->addEventHandler(ledger.handler());
    inf->start();
    ASSERT_TRUE(inf->waitForSync(10s));
    EXPECT_EQ(inf->store().size(), 1u);

    json a = writer_->create(configMap("a", "1"));
    json a2 = update("a", "2");
    json b = writer_->create(configMap("b", "1"));
    writer_->remove(kConfigMap, "default", "pre");
    ASSERT_TRUE(
        eventually([&] { return ledger.deletes("pre") == 1 && ledger.announced(nameRv(b)); }));
    EXPECT_TRUE(ledger.announced(nameRv(a)));
    EXPECT_TRUE(ledger.announced(nameRv(a2)));
    expectConverged(*inf);
    EXPECT_TRUE(ledger.duplicates().empty()) << ::testing::PrintToString(ledger.duplicates());
}

TEST_F(InformerIntegration, DroppedWatchesAndCompactionLoseAndDuplicateNothing) {
    for (int i = 0; i < 20; ++i) server_.create(configMap(numbered("o", i), "0"));
    auto inf = makeInformer();
    Ledger ledger;
    inf->addEventHandler(ledger.handler());
    inf->start();
    ASSERT_TRUE(inf->waitForSync(10s));
    expectConverged(*inf);

    // 1. Cut the stream while changes keep coming: the informer resumes from its version.
    for (int i = 0; i < 5; ++i) update(numbered("o", i), "1");
    server_.dropWatches();
    for (int i = 5; i < 10; ++i) update(numbered("o", i), "1");
    writer_->remove(kConfigMap, "default", "o19");
    server_.dropWatches();
    writer_->create(configMap("n1", "1"));
    expectConverged(*inf);
    EXPECT_EQ(inf->store().size(), 20u);
    EXPECT_EQ(server_.requestCounts()["list"], 1u) << "a dropped watch must resume, not relist";

    // 2. Keep the informer away (its watch requests are refused), change things, compact:
    //    its resume version is gone, so it must relist and report exactly what it missed.
    server_.faults().failNext(1000000, 403, "GET", "watch=1");
    server_.dropWatches();
    ASSERT_TRUE(eventually([&] { return observed_->watchErrors(403) >= 1; }));
    for (int i = 10; i < 15; ++i) update(numbered("o", i), "2");
    writer_->remove(kConfigMap, "default", "o18");
    writer_->remove(kConfigMap, "default", "o17");
    writer_->create(configMap("n2", "2"));
    server_.compact();
    server_.faults().clear();
    expectConverged(*inf);
    EXPECT_EQ(observed_->watchErrors(410), 1);
    EXPECT_EQ(server_.requestCounts()["list"], 2u) << "410 Gone must cause exactly one relist";

    // 3. Live events still flow after the relist.
    json n3 = writer_->create(configMap("n3", "3"));
    ASSERT_TRUE(eventually([&] { return ledger.announced(nameRv(n3)); }));
    expectConverged(*inf);

    EXPECT_TRUE(ledger.duplicates().empty()) << ::testing::PrintToString(ledger.duplicates());
    for (const char* gone : {"o17", "o18", "o19"}) EXPECT_EQ(ledger.deletes(gone), 1) << gone;
    for (const auto& state : serverState()) EXPECT_TRUE(ledger.announced(state)) << state;
}

TEST_F(InformerIntegration, SharedFactoryServesTwoConsumersFromOneWatch) {
    server_.create(configMap("x", "1"));
    InformerOptions defaults;
    defaults.transform = dropManagedFields;
    SharedInformerFactory factory(*watchClient_, defaults);
    Informer& one = factory.informerFor(kConfigMap, "default");
    Informer& two = factory.informerFor(kConfigMap, "default");
    ASSERT_EQ(&one, &two);
    Ledger first, second;
    one.addEventHandler(first.handler());
    factory.startAll();
    ASSERT_TRUE(factory.waitForCacheSync(10s));
    two.addEventHandler(second.handler());  // late: synthetic add
    json y = writer_->create(configMap("y", "1"));
    ASSERT_TRUE(
        eventually([&] { return first.announced(nameRv(y)) && second.announced(nameRv(y)); }));
    EXPECT_FALSE((*one.store().get("default", "y"))["metadata"].contains("managedFields"));
    EXPECT_TRUE(first.duplicates().empty());
    EXPECT_TRUE(second.duplicates().empty());
    factory.stopAll();
}

TEST_F(InformerIntegration, ScopedInformerWatchesOnlyItsNamespaces) {
    for (const char* ns : {"apps", "web", "other"}) {
        server_.create({{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
        json cm = configMap("x", ns);
        cm["metadata"]["namespace"] = ns;
        server_.create(cm);
    }
    SharedInformerFactory factory(*watchClient_);
    ScopedInformer scoped(factory, kConfigMap, {}, {"web", "apps", "web"}, true);
    Ledger ledger;
    scoped.addEventHandler(ledger.handler());
    factory.startAll();
    auto sync = scoped.waitForSync(10s);
    ASSERT_EQ(sync.state, ScopedInformer::SyncState::Synced) << sync.error;
    EXPECT_TRUE(scoped.covers("apps"));
    EXPECT_FALSE(scoped.covers("other"));
    EXPECT_TRUE(scoped.get("web", "x"));
    EXPECT_FALSE(scoped.get("other", "x"));
    EXPECT_EQ(scoped.list().size(), 2u);
    EXPECT_EQ(scoped.listNamespace("apps").size(), 1u);
    EXPECT_TRUE(scoped.listNamespace("other").empty());
    // Two namespaces, two lists: nothing was listed at the cluster scope.
    EXPECT_EQ(server_.requestCounts()["list"], 2u);
    json extra = configMap("y", "1");
    extra["metadata"]["namespace"] = "apps";
    json y = writer_->create(extra);
    ASSERT_TRUE(eventually([&] { return ledger.announced(nameRv(y)); }));
    factory.stopAll();
}

TEST_F(InformerIntegration, ScopedInformerReportsARefusedListAndRecoversWhenAllowed) {
    server_.faults().failNext(1000000, 403, "GET", "configmaps");
    SharedInformerFactory factory(*watchClient_);
    InformerOptions fast;
    fast.backoff = {20ms, 2.0, 100ms};
    ScopedInformer scoped(factory, kConfigMap, fast, {}, true);
    factory.startAll();
    auto sync = scoped.waitForSync(10s);
    ASSERT_EQ(sync.state, ScopedInformer::SyncState::Failed);
    EXPECT_NE(sync.error.find("injected fault"), std::string::npos) << sync.error;
    // Still refused, so a short wait reports it again rather than timing out.
    EXPECT_EQ(scoped.waitForSync(1ms).state, ScopedInformer::SyncState::Failed);
    // Allowed now (say a RoleBinding was created): the retries fill the cache.
    server_.faults().clear();
    // The refusal stays reported until a retry succeeds.
    ASSERT_TRUE(eventually(
        [&] { return scoped.waitForSync(50ms).state == ScopedInformer::SyncState::Synced; }));
    EXPECT_FALSE(factory.informerFor(kConfigMap).lastError());
    factory.stopAll();
}
