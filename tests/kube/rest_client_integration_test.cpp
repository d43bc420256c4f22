// RestClient against the in-process Kubernetes API test server over real HTTPS.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "apiserver/api_server.h"
#include "http/certs.h"
#include "http/http_server.h"
#include "sluice/kube/client.h"
#include "sluice/kube/config.h"
#include "sluice/util/base64.h"
#include "tempdir/tempdir.h"
#include "test_util.h"

// Options structs are built with designated initializers naming only the fields a test cares
// about; the rest keep their defaults on purpose.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace sluice::kube {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
using testing::ApiServer;
using testing::ApiServerOptions;
using testing::TempDir;

const GroupVersionKind kConfigMap{"", "v1", "ConfigMap"};
const GroupVersionKind kDeployment{"apps", "v1", "Deployment"};
const GroupVersionKind kNamespace{"", "v1", "Namespace"};

Object configMap(const std::string& name, const std::string& ns = "default",
                 json labels = json::object(), json data = {{"k", "v"}}) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
            {"data", data}};
}

Object deployment(const std::string& name) {
    return json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":")" +
                       name + R"(","namespace":"default"},
      "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
        "template":{"metadata":{"labels":{"app":"web"}},
          "spec":{"containers":[{"name":"web","image":"nginx:1.25"}]}}}})");
}

Object crd(const std::string& plural, const std::string& kind) {
    return {
        {"apiVersion", "apiextensions.k8s.io/v1"},
        {"kind", "CustomResourceDefinition"},
        {"metadata", {{"name", plural + ".example.com"}}},
        {"spec",
         {{"group", "example.com"},
          {"scope", "Namespaced"},
          {"names",
           {{"plural", plural},
            {"singular", kind == "Widget" ? "widget" : "gadget"},
            {"kind", kind},
            {"listKind", kind + "List"}}},
          {"versions",
           json::array({{{"name", "v1"},
                         {"served", true},
                         {"storage", true},
                         {"schema",
                          {{"openAPIV3Schema",
                            {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}}}}},
                         {"subresources", {{"status", json::object()}}}}})}}}};
}

// Fields that are the same for every test: fast retries so failures do not take long.
ClusterConfig baseConfig(const ApiServer& server) {
    ClusterConfig cfg;
    cfg.server = server.url();
    cfg.caPem = server.caPem();
    cfg.token = server.token();
    cfg.requestTimeout = 5s;
    cfg.retryBaseDelay = 20ms;
    cfg.retryMaxDelay = 2s;
    cfg.maxRetries = 3;
    cfg.qps = 0;
    cfg.source = "test";
    return cfg;
}

ApiServerOptions quietServer() {
    ApiServerOptions o;
    o.simulateWorkloads = false;                   // no background status writes racing the tests
    o.bookmarkInterval = std::chrono::seconds(1);  // a bookmark within a test's patience
    return o;
}

class KubeIntegration : public ::testing::Test {
  protected:
    explicit KubeIntegration(ApiServerOptions opts = quietServer()) : server_(std::move(opts)) {}
    void SetUp() override {
        server_.start();
        client_ = std::make_unique<RestClient>(baseConfig(server_));
    }
    void TearDown() override {
        client_.reset();
        server_.stop();
    }
    ApiServer server_;
    std::unique_ptr<RestClient> client_;
};

// Runs a watch on a thread and collects its events.
class WatchRecorder {
  public:
    WatchRecorder(RestClient& client, GroupVersionKind gvk, std::string ns, WatchOptions opts) {
        thread_ = std::thread([this, &client, gvk, ns, opts] {
            try {
                client.watch(
                    gvk, ns, opts,
                    [this](const WatchEvent& ev) {
                        std::lock_guard lock(mu_);
                        events_.push_back(ev);
                        cv_.notify_all();
                        return keepGoing_.load();
                    },
                    stop_.token());
            } catch (...) {
                std::lock_guard lock(mu_);
                error_ = std::current_exception();
            }
            std::lock_guard lock(mu_);
            done_ = true;
            doneAt_ = Clock::now();
            cv_.notify_all();
        });
    }
    ~WatchRecorder() {
        stop_.requestStop();
        if (thread_.joinable()) thread_.join();
    }
    // Waits for an event matching pred; returns it.
    std::optional<WatchEvent> waitFor(const std::function<bool(const WatchEvent&)>& pred,
                                      std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(mu_);
        std::optional<WatchEvent> found;
        cv_.wait_for(lock, timeout, [&] {
            for (const auto& ev : events_)
                if (pred(ev)) {
                    found = ev;
                    return true;
                }
            return done_;
        });
        return found;
    }
    bool waitDone(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, timeout, [&] { return done_; });
    }
    std::exception_ptr error() {
        std::lock_guard lock(mu_);
        return error_;
    }
    std::vector<WatchEvent> events() {
        std::lock_guard lock(mu_);
        return events_;
    }
    Clock::time_point doneAt() {
        std::lock_guard lock(mu_);
        return doneAt_;
    }
    void stop() { stop_.requestStop(); }
    void stopAfterNextEvent() { keepGoing_ = false; }

  private:
    StopSource stop_;
    std::atomic<bool> keepGoing_{true};
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<WatchEvent> events_;
    std::exception_ptr error_;
    bool done_ = false;
    Clock::time_point doneAt_;
    std::thread thread_;
};

auto isType(WatchEvent::Type t, const std::string& name = "") {
    return [t, name](const WatchEvent& ev) {
        return ev.type == t && (name.empty() || nameOf(ev.object) == name);
    };
}

template <typename Fn>
ApiError expectApiError(Fn fn) {
    try {
        fn();
    } catch (const ApiError& e) {
        return e;
    }
    ADD_FAILURE() << "no ApiError thrown";
    return ApiError(0, "", "");
}

template <typename Fn>
std::string expectTransportError(Fn fn) {
    try {
        fn();
    } catch (const TransportError& e) {
        return e.what();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "unexpected exception: " << e.what();
        return {};
    }
    ADD_FAILURE() << "no TransportError thrown";
    return {};
}

// ---- verbs ----------------------------------------------------------------------------

TEST_F(KubeIntegration, CreateGetUpdateConflictDelete) {
    auto created = client_->create(configMap("cm1"));
    EXPECT_EQ(nameOf(created), "cm1");
    EXPECT_FALSE(uidOf(created).empty());
    std::string rv1 = resourceVersionOf(created);
    ASSERT_FALSE(rv1.empty());

    auto got = client_->get(kConfigMap, "default", "cm1");
    EXPECT_EQ(got["data"]["k"], "v");
    EXPECT_EQ(got["kind"], "ConfigMap");

    got["data"]["k"] = "v2";
    auto updated = client_->update(got);
    EXPECT_EQ(updated["data"]["k"], "v2");
    EXPECT_NE(resourceVersionOf(updated), rv1);

    // A write based on the old version is refused.
    auto stale = created;
    stale["data"]["k"] = "v3";
    auto conflict = expectApiError([&] { client_->update(stale); });
    EXPECT_EQ(conflict.code(), 409);
    EXPECT_TRUE(conflict.isConflict());

    auto exists = expectApiError([&] { client_->create(configMap("cm1")); });
    EXPECT_TRUE(exists.isAlreadyExists());

    // Dry-run create leaves nothing behind.
    client_->create(configMap("dry"), WriteOptions{"", true});
    EXPECT_FALSE(server_.get("v1", "ConfigMap", "default", "dry"));

    client_->remove(kConfigMap, "default", "cm1");
    auto missing = expectApiError([&] { client_->get(kConfigMap, "default", "cm1"); });
    EXPECT_TRUE(missing.isNotFound());
    EXPECT_EQ(missing.reason(), "NotFound");
}

TEST_F(KubeIntegration, NamespaceDefaultsAndClusterScope) {
    // A namespaced object without a namespace goes to the config's default namespace.
    Object cm = configMap("no-ns");
    cm["metadata"].erase("namespace");
    client_->create(cm);
    EXPECT_TRUE(server_.get("v1", "ConfigMap", "default", "no-ns"));

    Object ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "team-x"}}}};
    client_->create(ns);
    EXPECT_EQ(nameOf(client_->get(kNamespace, "ignored", "team-x")), "team-x");
    auto ri = client_->resourceFor(kNamespace);
    EXPECT_FALSE(ri.namespaced);
    EXPECT_EQ(ri.resource, "namespaces");
    EXPECT_TRUE(ri.supports("create"));
}

TEST_F(KubeIntegration, ListSelectorsPaginationAndListAll) {
    for (int i = 0; i < 5; ++i)
        server_.create(configMap("a-" + std::to_string(i), "default", {{"app", "a"}}));
    for (int i = 0; i < 2; ++i)
        server_.create(configMap("b-" + std::to_string(i), "default", {{"app", "b"}}));
    server_.create(
        {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "other-ns"}}}});
    server_.create(configMap("other", "other-ns", {{"app", "a"}}));

    auto byLabel = client_->list(kConfigMap, "default", {.labelSelector = "app=a"});
    EXPECT_EQ(byLabel.items.size(), 5u);
    EXPECT_FALSE(byLabel.resourceVersion.empty());
    for (const auto& item : byLabel.items) {
        EXPECT_EQ(item["apiVersion"], "v1");  // filled in for list items
        EXPECT_EQ(item["kind"], "ConfigMap");
    }
    // Characters that must be percent-encoded: spaces, parentheses, commas, '!'.
    EXPECT_EQ(client_->list(kConfigMap, "default", {.labelSelector = "app in (a, b)"}).items.size(),
              7u);
    EXPECT_EQ(client_->list(kConfigMap, "default", {.labelSelector = "app!=a"}).items.size(), 2u);
    auto byField = client_->list(kConfigMap, "", {.fieldSelector = "metadata.name=other"});
    ASSERT_EQ(byField.items.size(), 1u);
    EXPECT_EQ(namespaceOf(byField.items[0]), "other-ns");
    EXPECT_EQ(client_->list(kConfigMap, "", {.labelSelector = "app=a"}).items.size(), 6u);

    // Manual paging.
    std::vector<std::string> names;
    ListOptions page{.labelSelector = "app", .limit = 3};
    int pages = 0;
    for (;;) {
        auto r = client_->list(kConfigMap, "default", page);
        EXPECT_LE(r.items.size(), 3u);
        for (const auto& it : r.items) names.push_back(nameOf(it));
        ++pages;
        if (r.continueToken.empty()) break;
        page.continueToken = r.continueToken;
    }
    EXPECT_EQ(pages, 3);
    EXPECT_EQ(names.size(), 7u);

    server_.resetRequestCounts();
    auto all = client_->listAll(kConfigMap, "", {.limit = 2});
    EXPECT_EQ(all.items.size(), 8u);
    EXPECT_FALSE(all.resourceVersion.empty());
    EXPECT_EQ(server_.requestCounts()["list"], 4u);
}

TEST_F(KubeIntegration, ApplyWithFieldManagerForceAndDryRun) {
    Object desired = configMap("applied", "default", {{"team", "a"}}, {{"color", "blue"}});
    auto first = client_->apply(desired, {.fieldManager = "manager-a"});
    EXPECT_EQ(first["data"]["color"], "blue");
    bool managed = false;
    for (const auto& mf : first["metadata"]["managedFields"])
        if (mf.value("manager", "") == "manager-a" && mf.value("operation", "") == "Apply")
            managed = true;
    EXPECT_TRUE(managed) << first["metadata"].dump();

    // Another manager changing an owned field conflicts unless it forces.
    Object takeover = configMap("applied", "default", json::object(), {{"color", "red"}});
    takeover["metadata"].erase("labels");
    auto conflict =
        expectApiError([&] { client_->apply(takeover, {.fieldManager = "manager-b"}); });
    EXPECT_EQ(conflict.code(), 409);
    EXPECT_TRUE(conflict.isConflict());

    // Dry-run with force: answered, but nothing stored.
    auto dry =
        client_->apply(takeover, {.fieldManager = "manager-b", .force = true, .dryRun = true});
    EXPECT_EQ(dry["data"]["color"], "red");
    EXPECT_EQ((*server_.get("v1", "ConfigMap", "default", "applied"))["data"]["color"], "blue");

    auto forced = client_->apply(takeover, {.fieldManager = "manager-b", .force = true});
    EXPECT_EQ(forced["data"]["color"], "red");
    EXPECT_EQ((*server_.get("v1", "ConfigMap", "default", "applied"))["data"]["color"], "red");
}

TEST_F(KubeIntegration, MergeJsonAndStrategicPatches) {
    client_->create(configMap("patched"));
    auto merged = client_->patch(kConfigMap, "default", "patched", PatchType::Merge,
                                 R"({"data":{"added":"1","k":null}})");
    EXPECT_EQ(merged["data"]["added"], "1");
    EXPECT_FALSE(merged["data"].contains("k"));

    auto jsonPatched = client_->patch(
        kConfigMap, "default", "patched", PatchType::JsonPatch,
        R"([{"op":"replace","path":"/data/added","value":"2"},{"op":"add","path":"/data/x","value":"y"}])");
    EXPECT_EQ(jsonPatched["data"]["added"], "2");
    EXPECT_EQ(jsonPatched["data"]["x"], "y");

    // A failing JSON patch test op is a client error, not retried.
    auto bad = expectApiError([&] {
        client_->patch(kConfigMap, "default", "patched", PatchType::JsonPatch,
                       R"([{"op":"test","path":"/data/x","value":"nope"}])");
    });
    EXPECT_EQ(bad.code(), 422) << "as upstream answers a JSON patch that cannot be applied";
    EXPECT_TRUE(bad.isInvalid());

    client_->create(deployment("web"));
    auto smp = client_->patch(
        kDeployment, "default", "web", PatchType::StrategicMerge,
        R"({"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}})");
    EXPECT_EQ(smp["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27");

    auto applied = client_->patch(
        kConfigMap, "default", "patched", PatchType::Apply,
        R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"patched"},"data":{"z":"1"}})",
        {.fieldManager = "patcher"});
    EXPECT_EQ(applied["data"]["z"], "1");

    auto dry = client_->patch(kConfigMap, "default", "patched", PatchType::Merge,
                              R"({"data":{"dry":"run"}})", {.dryRun = true});
    EXPECT_EQ(dry["data"]["dry"], "run");
    EXPECT_FALSE((*server_.get("v1", "ConfigMap", "default", "patched"))["data"].contains("dry"));
}

TEST_F(KubeIntegration, StatusSubresource) {
    auto d = client_->create(deployment("web"));
    EXPECT_TRUE(client_->resourceFor(kDeployment).hasStatus);
    d["status"] = {{"replicas", 2}, {"readyReplicas", 1}, {"observedGeneration", 1}};
    d["spec"]["replicas"] = 9;  // ignored by a status write
    auto afterStatus = client_->updateStatus(d);
    EXPECT_EQ(afterStatus["status"]["readyReplicas"], 1);
    auto stored = *server_.get("apps/v1", "Deployment", "default", "web");
    EXPECT_EQ(stored["status"]["readyReplicas"], 1);
    EXPECT_EQ(stored["spec"]["replicas"], 2);

    auto patched = client_->patch(kDeployment, "default", "web", PatchType::Merge,
                                  R"({"status":{"readyReplicas":2}})", {.subresource = "status"});
    EXPECT_EQ(patched["status"]["readyReplicas"], 2);

    Object applyStatus = {{"apiVersion", "apps/v1"},
                          {"kind", "Deployment"},
                          {"metadata", {{"name", "web"}, {"namespace", "default"}}},
                          {"status", {{"availableReplicas", 2}}}};
    auto applied =
        client_->apply(applyStatus, {.fieldManager = "status-mgr", .subresource = "status"});
    EXPECT_EQ(applied["status"]["availableReplicas"], 2);
}

TEST_F(KubeIntegration, APatchCanAnswerWithMetadataOnly) {
    client_->create(deployment("web"));
    PatchOptions po;
    po.subresource = "status";
    po.metadataOnly = true;
    auto answer = client_->patch(kDeployment, "default", "web", PatchType::Merge,
                                 R"({"status":{"readyReplicas":1}})", po);
    EXPECT_EQ(answer["kind"], "PartialObjectMetadata");
    EXPECT_EQ(answer["apiVersion"], "meta.k8s.io/v1");
    EXPECT_FALSE(answer.contains("spec"));
    EXPECT_FALSE(answer.contains("status"));
    auto stored = *server_.get("apps/v1", "Deployment", "default", "web");
    EXPECT_EQ(stored["status"]["readyReplicas"], 1);  // the write itself is whole
    EXPECT_EQ(answer["metadata"]["resourceVersion"], stored["metadata"]["resourceVersion"]);

    po.subresource = "";
    answer = client_->patch(kDeployment, "default", "web", PatchType::Merge,
                            R"({"metadata":{"annotations":{"a":"b"}}})", po);
    EXPECT_EQ(answer["metadata"]["annotations"]["a"], "b");
    EXPECT_FALSE(answer.contains("spec"));
}

TEST_F(KubeIntegration, DeleteWithPropagationAndPreconditions) {
    auto d = client_->create(deployment("web"));
    auto wrongUid = expectApiError([&] {
        client_->remove(kDeployment, "default", "web", {.preconditionUid = "not-the-uid"});
    });
    EXPECT_EQ(wrongUid.code(), 409);
    auto wrongRv = expectApiError([&] {
        client_->remove(kDeployment, "default", "web", {.preconditionResourceVersion = "1"});
    });
    EXPECT_EQ(wrongRv.code(), 409);

    client_->remove(kDeployment, "default", "web",
                    {.propagationPolicy = "Foreground", .dryRun = true});
    EXPECT_FALSE((*server_.get("apps/v1", "Deployment", "default", "web"))["metadata"].contains(
        "deletionTimestamp"));

    auto bad = expectApiError(
        [&] { client_->remove(kDeployment, "default", "web", {.propagationPolicy = "Sideways"}); });
    EXPECT_EQ(bad.code(), 422);  // proves the policy reaches the server

    auto answer = client_->remove(kDeployment, "default", "web",
                                  {.propagationPolicy = "Foreground", .preconditionUid = uidOf(d)});
    // Foreground deletion keeps the object, marked, until its dependents are gone.
    auto fins = answer["metadata"].value("finalizers", json::array());
    EXPECT_NE(std::find(fins.begin(), fins.end(), "foregroundDeletion"), fins.end())
        << answer.dump();
    EXPECT_TRUE(answer["metadata"].contains("deletionTimestamp"));

    client_->create(configMap("gone"));
    auto status =
        client_->remove(kConfigMap, "default", "gone", {.propagationPolicy = "Background"});
    EXPECT_EQ(status.value("kind", ""), "Status");
    EXPECT_FALSE(server_.get("v1", "ConfigMap", "default", "gone"));
}

// ---- discovery ------------------------------------------------------------------------

TEST_F(KubeIntegration, DiscoveryFindsCrdCreatedLater) {
    GroupVersionKind widget{"example.com", "v1", "Widget"};
    GroupVersionKind gadget{"example.com", "v1", "Gadget"};
    auto unknown = expectApiError([&] { client_->resourceFor(widget); });
    EXPECT_TRUE(unknown.isNotFound());
    EXPECT_NE(unknown.message().find("no resource for kind Widget in example.com/v1"),
              std::string::npos)
        << unknown.message();

    client_->create(crd("widgets", "Widget"));
    auto ri = client_->resourceFor(widget);  // the miss refreshes discovery
    EXPECT_EQ(ri.resource, "widgets");
    EXPECT_TRUE(ri.namespaced);
    EXPECT_TRUE(ri.hasStatus);

    // Group-version cached now; a second CRD in it is still found.
    client_->create(crd("gadgets", "Gadget"));
    EXPECT_EQ(client_->resourceFor(gadget).resource, "gadgets");

    Object w = {{"apiVersion", "example.com/v1"},
                {"kind", "Widget"},
                {"metadata", {{"name", "w1"}, {"namespace", "default"}}},
                {"spec", {{"size", 3}}}};
    client_->create(w);
    EXPECT_EQ(client_->get(widget, "default", "w1")["spec"]["size"], 3);

    // Cached lookups do not hit the server again.
    server_.resetRequestCounts();
    auto before = client_->stats().requests;
    for (int i = 0; i < 20; ++i) client_->resourceFor(widget);
    EXPECT_EQ(client_->stats().requests, before);

    auto stillUnknown = expectApiError([&] { client_->resourceFor({"nope.io", "v1", "Thing"}); });
    EXPECT_TRUE(stillUnknown.isNotFound());
    EXPECT_EQ(client_->getPath("/version").value("major", ""), "1");
}

// ---- watch ----------------------------------------------------------------------------

TEST_F(KubeIntegration, WatchDeliversEventsBookmarksAndStopsPromptly) {
    server_.create(configMap("pre"));
    auto listed = client_->list(kConfigMap, "default");
    WatchRecorder rec(*client_, kConfigMap, "default", {.resourceVersion = listed.resourceVersion});

    auto created = client_->create(configMap("w1"));
    ASSERT_TRUE(rec.waitFor(isType(WatchEvent::Type::Added, "w1")));
    created["data"]["k"] = "changed";
    client_->update(created);
    auto mod = rec.waitFor(isType(WatchEvent::Type::Modified, "w1"));
    ASSERT_TRUE(mod);
    EXPECT_EQ(mod->object["data"]["k"], "changed");
    client_->remove(kConfigMap, "default", "w1");
    ASSERT_TRUE(rec.waitFor(isType(WatchEvent::Type::Deleted, "w1")));
    auto bookmark = rec.waitFor(isType(WatchEvent::Type::Bookmark), 4s);
    ASSERT_TRUE(bookmark);
    EXPECT_FALSE(resourceVersionOf(bookmark->object).empty());

    // In order, and "pre" (before the list's version) not replayed.
    std::vector<std::string> seq;
    for (const auto& ev : rec.events())
        if (ev.type != WatchEvent::Type::Bookmark)
            seq.push_back(std::string(toString(ev.type)) + ":" + nameOf(ev.object));
    EXPECT_EQ(seq, (std::vector<std::string>{"ADDED:w1", "MODIFIED:w1", "DELETED:w1"}));

    auto stopAt = Clock::now();
    rec.stop();
    ASSERT_TRUE(rec.waitDone(2s));
    EXPECT_LT(rec.doneAt() - stopAt, 1500ms);
    EXPECT_FALSE(rec.error());
}

TEST_F(KubeIntegration, WatchFromNowSendsSyntheticAddsAndConsumerCanStop) {
    server_.create(configMap("existing"));
    WatchRecorder rec(*client_, kConfigMap, "default", {.allowBookmarks = false});
    rec.stopAfterNextEvent();
    ASSERT_TRUE(rec.waitFor(isType(WatchEvent::Type::Added, "existing")));
    ASSERT_TRUE(rec.waitDone(2s));
    EXPECT_FALSE(rec.error());
    EXPECT_EQ(rec.events().size(), 1u);
}

TEST_F(KubeIntegration, WatchEndsCleanlyAtServerTimeout) {
    WatchRecorder rec(*client_, kConfigMap, "", {.allowBookmarks = false, .timeoutSeconds = 1});
    ASSERT_TRUE(rec.waitDone(5s));
    EXPECT_FALSE(rec.error());
}

TEST_F(KubeIntegration, WatchGoneAfterCompaction) {
    auto first = client_->create(configMap("c1"));
    std::string oldRv = resourceVersionOf(first);
    for (int i = 0; i < 3; ++i) client_->create(configMap("c-more-" + std::to_string(i)));
    server_.compact();
    client_->create(configMap("after"));
    int errorEvents = 0;
    auto err = expectApiError([&] {
        client_->watch(kConfigMap, "default", {.resourceVersion = oldRv},
                       [&](const WatchEvent& ev) {
                           if (ev.type == WatchEvent::Type::Error) ++errorEvents;
                           return true;
                       });
    });
    EXPECT_EQ(errorEvents, 0);  // thrown, not delivered
    EXPECT_TRUE(err.isGone()) << err.what();
    EXPECT_EQ(err.code(), 410);

    // A continue token from before compaction is gone too.
    auto page = client_->list(kConfigMap, "default", {.limit = 1});
    ASSERT_FALSE(page.continueToken.empty());
    client_->create(configMap("after-2"));  // compaction must pass the token's revision
    server_.compact();
    auto listErr = expectApiError([&] {
        client_->list(kConfigMap, "default", {.limit = 1, .continueToken = page.continueToken});
    });
    EXPECT_TRUE(listErr.isGone()) << listErr.what();
}

TEST_F(KubeIntegration, WatchCutMidStreamIsTransportError) {
    client_->resourceFor(kConfigMap);
    // The server sends the response head and then drops the connection without ending the
    // chunked body: a cut, not a clean end.
    server_.faults().disconnectNext(1, "GET", "watch=");
    auto msg = expectTransportError(
        [&] { client_->watch(kConfigMap, "default", {}, [](const WatchEvent&) { return true; }); });
    EXPECT_NE(msg.find("/api/v1/namespaces/default/configmaps?watch=1"), std::string::npos) << msg;
}

TEST_F(KubeIntegration, WatchDroppedByServerEnds) {
    WatchRecorder rec(*client_, kConfigMap, "default", {});
    client_->create(configMap("x"));
    ASSERT_TRUE(rec.waitFor(isType(WatchEvent::Type::Added, "x")));
    server_.dropWatches();
    ASSERT_TRUE(rec.waitDone(5s));
    // dropWatches() closes the server's watchers before cutting the streams, so the server
    // sometimes ends the stream properly (final chunk) first: then the watch returns normally.
    // When the cut wins, it must surface as TransportError.
    if (auto err = rec.error()) {
        try {
            std::rethrow_exception(err);
        } catch (const TransportError& e) {
            EXPECT_NE(std::string(e.what()).find("/api/v1/namespaces/default/configmaps"),
                      std::string::npos)
                << e.what();
        } catch (const std::exception& e) {
            ADD_FAILURE() << "expected TransportError, got " << e.what();
        }
    }
}

TEST_F(KubeIntegration, WatchIdleTimeoutDetectsSilentStream) {
    auto cfg = baseConfig(server_);
    cfg.watchIdleTimeout = 600ms;
    RestClient client(cfg);
    // No bookmarks and no events: the stream stays silent, so the idle bound ends it.
    auto start = Clock::now();
    expectTransportError([&] {
        client.watch({"", "v1", "Secret"}, "default", {.allowBookmarks = false},
                     [](const WatchEvent&) { return true; });
    });
    EXPECT_LT(Clock::now() - start, 5s);
}

// A real API server may send neither an event nor a bookmark on a quiet watch until it ends the
// watch at timeoutSeconds: the client's idle bound must not cut such a watch short, bookmarks
// asked for or not (issue: "stream broken: timed out after 150000ms" every 150 s).
TEST_F(KubeIntegration, AQuietWatchEndsAtItsServerTimeoutNotAtTheIdleBound) {
    ApiServerOptions quiet;
    quiet.bookmarkInterval = std::chrono::hours(1);  // no bookmark within the test
    ApiServer server(quiet);
    server.start();
    auto cfg = baseConfig(server);
    cfg.watchIdleTimeout = 600ms;
    RestClient client(cfg);
    auto start = Clock::now();
    client.watch({"", "v1", "Secret"}, "default", {.allowBookmarks = true, .timeoutSeconds = 2},
                 [](const WatchEvent&) { return true; });
    EXPECT_GE(Clock::now() - start, 1500ms) << "ended before the server's timeout";
}

TEST_F(KubeIntegration, WatchHttpErrorIsApiError) {
    auto err = expectApiError([&] {
        client_->watch(kConfigMap, "default", {.labelSelector = "a in (((("},
                       [](const WatchEvent&) { return true; });
    });
    EXPECT_EQ(err.code(), 400);
}

// ---- kubeconfig end to end ------------------------------------------------------------

TEST_F(KubeIntegration, KubeconfigWithToken) {
    TempDir dir;
    auto path = server_.writeKubeconfig((dir.path() / "config").string());
    auto cfg = loadKubeconfig(path);
    EXPECT_EQ(cfg.server, server_.url());
    RestClient client(cfg);
    client.create(configMap("via-kubeconfig"));
    EXPECT_EQ(client.list(kConfigMap, "default").items.size(), 1u);
    EXPECT_EQ(client.config().source, cfg.source);
}

TEST_F(KubeIntegration, WrongTokenIs401AndNotRetried) {
    auto cfg = baseConfig(server_);
    cfg.token = "wrong";
    RestClient client(cfg);
    auto err = expectApiError([&] { client.list(kConfigMap, "default"); });
    EXPECT_TRUE(err.isUnauthorized());
    EXPECT_EQ(client.stats().retries, 0u);
}

TEST_F(KubeIntegration, RotatedTokenFileIsUsed) {
    TempDir dir;
    auto tokenPath = dir.write("token", "stale-token\n");
    auto cfg = baseConfig(server_);
    cfg.token.clear();
    cfg.tokenFile = tokenPath;
    RestClient client(cfg);
    EXPECT_TRUE(expectApiError([&] {
                    client.getPath("/api/v1/namespaces/default/configmaps");
                }).isUnauthorized());
    auto t0 = std::filesystem::last_write_time(tokenPath);
    dir.write("token", server_.token() + "\n");
    std::filesystem::last_write_time(tokenPath, t0 + 2s);
    EXPECT_NO_THROW(client.getPath("/api/v1/namespaces/default/configmaps"));
}

int readCount(const TempDir& dir) {
    std::ifstream in(dir.file("count"));
    int n = 0;
    in >> n;
    return n;
}

// A client whose only credential is an exec plugin (from a kubeconfig, command relative to
// it): when the server stops accepting the plugin's token, the request that got 401 runs the
// plugin again and is sent once more with the new token.
TEST(KubeExec, ExecPluginTokenIsRefreshedAfter401) {
    ApiServerOptions opts = quietServer();
    opts.tokens = {"exec-token-1", "exec-token-2", "exec-token-3"};
    ApiServer server(opts);
    server.start();

    TempDir dir;
    dir.write("token", "exec-token-1");
    auto plugin = dir.write(
        "kube/plugin.sh",
        "#!/bin/sh\n"
        "n=$(cat \"$DIR/count\" 2>/dev/null || echo 0)\n"
        "echo $((n+1)) > \"$DIR/count\"\n"
        "printf "
        "'{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",'\n"
        "printf '\"status\":{\"token\":\"%s\"}}\\n' \"$(cat \"$DIR/token\")\"\n");
    ::chmod(plugin.c_str(), 0755);
    auto path = dir.write("kube/config",
                          "apiVersion: v1\nkind: Config\ncurrent-context: exec\n"
                          "clusters:\n- name: c\n  cluster:\n    server: " +
                              server.url() +
                              "\n    certificate-authority-data: " + base64Encode(server.caPem()) +
                              "\ncontexts:\n- name: exec\n  context: {cluster: c, user: u}\n"
                              "users:\n- name: u\n  user:\n    exec:\n"
                              "      apiVersion: client.authentication.k8s.io/v1\n"
                              "      command: ./plugin.sh\n"
                              "      env:\n      - name: DIR\n        value: " +
                              dir.str() + "\n      interactiveMode: Never\n");

    auto cfg = loadKubeconfig(path);
    ASSERT_TRUE(cfg.token.empty());
    ASSERT_EQ(cfg.exec.command, dir.file("kube/plugin.sh"));
    cfg.maxRetries = 0;
    RestClient client(cfg);
    client.create(configMap("first"));
    EXPECT_EQ(client.list(kConfigMap, "default").items.size(), 1u);
    EXPECT_EQ(readCount(dir), 1);  // cached: no expirationTimestamp

    // The token is revoked; the plugin now prints another. A create (not idempotent) still
    // goes through: the server refused it before acting.
    server.revokeToken("exec-token-1");
    dir.write("token", "exec-token-2");
    client.create(configMap("second"));
    EXPECT_EQ(readCount(dir), 2);
    EXPECT_EQ(client.list(kConfigMap, "default").items.size(), 2u);
    EXPECT_EQ(readCount(dir), 2);
    EXPECT_EQ(client.stats().retries, 0u);

    // A plugin that keeps printing a rejected token: one more run, then the 401 surfaces.
    server.revokeToken("exec-token-2");
    EXPECT_TRUE(expectApiError([&] { client.list(kConfigMap, "default"); }).isUnauthorized());
    EXPECT_EQ(readCount(dir), 3);

    // Watches get the same second chance.
    dir.write("token", "exec-token-3");
    EXPECT_NO_THROW(client.watch(kConfigMap, "default", {.timeoutSeconds = 1},
                                 [](const WatchEvent&) { return true; }));
    EXPECT_EQ(readCount(dir), 4);
    server.stop();
}

TEST(KubeTls, MutualTlsWithClientCertificate) {
    auto clientCa = sluice::testing::generateCa("test-client-ca");
    auto clientCert =
        sluice::testing::issueCertificate(clientCa, "sluice-user", {}, true, "system:masters");
    ApiServerOptions opts = quietServer();
    opts.tokens = {};  // only certificates authenticate
    opts.clientCaPem = clientCa.certPem;
    ApiServer server(opts);
    server.start();

    TempDir dir;
    std::string kubeconfig =
        "apiVersion: v1\nkind: Config\ncurrent-context: mtls\n"
        "clusters:\n- name: c\n  cluster:\n    server: " +
        server.url() +
        "\n    certificate-authority: ca.crt\n"
        "contexts:\n- name: mtls\n  context: {cluster: c, user: u}\n"
        "- name: anon\n  context: {cluster: c}\n"
        "users:\n- name: u\n  user:\n    client-certificate-data: " +
        base64Encode(clientCert.certPem) +
        "\n    client-key-data: " + base64Encode(clientCert.keyPem) + "\n";
    dir.write("ca.crt", server.caPem());
    auto path = dir.write("config", kubeconfig);

    auto cfg = loadKubeconfig(path);
    cfg.maxRetries = 0;
    RestClient client(cfg);
    client.create(configMap("mtls"));
    EXPECT_EQ(nameOf(client.get(kConfigMap, "default", "mtls")), "mtls");

    // Same server without the certificate: not authenticated.
    auto anonCfg = loadKubeconfig(path, "anon");
    RestClient anon(anonCfg);
    EXPECT_TRUE(expectApiError([&] { anon.get(kConfigMap, "default", "mtls"); }).isUnauthorized());
    server.stop();
}

TEST(KubeTls, WrongCaIsTransportErrorWithoutRetries) {
    ApiServer server(quietServer());
    server.start();
    auto cfg = baseConfig(server);
    cfg.caPem = sluice::testing::generateCa("some-other-ca").certPem;
    RestClient client(cfg);
    auto msg = expectTransportError([&] { client.getPath("/api"); });
    EXPECT_NE(msg.find(server.url()), std::string::npos) << msg;
    EXPECT_NE(msg.find("SSL"), std::string::npos) << msg;
    EXPECT_EQ(client.stats().retries, 0u);

    // The system trust store is not consulted either: with no CA at all it fails the same way.
    cfg.caPem.clear();
    RestClient noCa(cfg);
    expectTransportError([&] { noCa.getPath("/api"); });

    cfg.insecureSkipTlsVerify = true;
    RestClient insecure(cfg);
    EXPECT_NO_THROW(insecure.getPath("/api"));
    server.stop();
}

TEST(KubeTls, TlsServerNameIsVerified) {
    ApiServer server(quietServer());
    server.start();
    auto cfg = baseConfig(server);
    cfg.maxRetries = 0;
    cfg.tlsServerName = "localhost";  // a SAN of the server certificate
    RestClient ok(cfg);
    EXPECT_NO_THROW(ok.getPath("/api"));
    cfg.tlsServerName = "not-the-server.example";
    RestClient wrong(cfg);
    expectTransportError([&] { wrong.getPath("/api"); });
    server.stop();
}

// ---- reliability ----------------------------------------------------------------------

TEST_F(KubeIntegration, ThrottleHonoursRetryAfter) {
    client_->resourceFor(kConfigMap);  // discovery out of the way
    server_.faults().throttleNext(1, 1, "GET");
    auto start = Clock::now();
    client_->list(kConfigMap, "default");
    auto waited = Clock::now() - start;
    EXPECT_GE(waited, 950ms);
    EXPECT_LT(waited, 3s);
    EXPECT_EQ(client_->stats().retries, 1u);

    // 429 is retried for creates too: the server did not act on it.
    server_.faults().throttleNext(1, 1, "POST");
    client_->create(configMap("after-429"));
    EXPECT_EQ(client_->stats().retries, 2u);
    EXPECT_TRUE(server_.get("v1", "ConfigMap", "default", "after-429"));
}

TEST_F(KubeIntegration, ServerErrorsRetriedThenSucceed) {
    client_->create(configMap("r"));
    std::vector<int> codes;
    std::mutex mu;
    client_->setRequestObserver(
        [&](const std::string& verb, int code, std::chrono::nanoseconds latency) {
            std::lock_guard lock(mu);
            EXPECT_EQ(verb, "get");
            EXPECT_GT(latency.count(), 0);
            codes.push_back(code);
        });
    server_.faults().failNext(1, 500, "GET");
    server_.faults().failNext(1, 503, "GET");
    EXPECT_EQ(nameOf(client_->get(kConfigMap, "default", "r")), "r");
    EXPECT_EQ(codes, (std::vector<int>{500, 503, 200}));
    EXPECT_EQ(client_->stats().retries, 2u);
}

TEST_F(KubeIntegration, GivesUpAfterMaxRetries) {
    client_->resourceFor(kConfigMap);
    auto before = client_->stats();
    server_.faults().failNext(10, 503, "GET");
    auto err = expectApiError([&] { client_->list(kConfigMap, "default"); });
    EXPECT_EQ(err.code(), 503);
    EXPECT_EQ(err.reason(), "ServiceUnavailable");
    auto after = client_->stats();
    EXPECT_EQ(after.requests - before.requests, 4u);  // 1 + maxRetries(3)
    EXPECT_EQ(after.retries - before.retries, 3u);
    server_.faults().clear();

    // 501 means "never going to work": no retry.
    server_.faults().failNext(1, 501, "GET");
    EXPECT_EQ(expectApiError([&] { client_->list(kConfigMap, "default"); }).code(), 501);
    EXPECT_EQ(client_->stats().retries, after.retries);
}

TEST_F(KubeIntegration, CreateNotRetriedAfter500) {
    client_->resourceFor(kConfigMap);
    server_.faults().failNext(1, 500, "POST");
    auto err = expectApiError([&] { client_->create(configMap("once")); });
    EXPECT_EQ(err.code(), 500);
    EXPECT_EQ(client_->stats().retries, 0u);
    EXPECT_EQ(server_.requestCounts()["create"], 0u);  // the fault answered before the handler
}

TEST_F(KubeIntegration, RequestTimeout) {
    auto cfg = baseConfig(server_);
    cfg.requestTimeout = 400ms;
    cfg.maxRetries = 0;
    RestClient client(cfg);
    client.resourceFor(kConfigMap);
    server_.faults().delayNext(1, 1500ms, "GET");
    auto start = Clock::now();
    auto msg = expectTransportError([&] { client.list(kConfigMap, "default"); });
    EXPECT_NE(msg.find("timed out"), std::string::npos) << msg;
    EXPECT_LT(Clock::now() - start, 1400ms);

    // With a retry, the second attempt gets through.
    cfg.maxRetries = 1;
    RestClient retrying(cfg);
    retrying.resourceFor(kConfigMap);
    server_.faults().delayNext(1, 1500ms, "GET");
    EXPECT_NO_THROW(retrying.list(kConfigMap, "default"));
    EXPECT_EQ(retrying.stats().retries, 1u);
}

TEST_F(KubeIntegration, ConnectionDropRetriedForReadsNotForCreates) {
    client_->create(configMap("d"));
    server_.faults().disconnectNext(1, "GET");
    EXPECT_EQ(nameOf(client_->get(kConfigMap, "default", "d")), "d");
    EXPECT_EQ(client_->stats().retries, 1u);

    server_.faults().disconnectNext(1, "POST");
    auto msg = expectTransportError([&] { client_->create(configMap("maybe")); });
    EXPECT_NE(msg.find("POST " + server_.url() + "/api/v1/namespaces/default/configmaps"),
              std::string::npos)
        << msg;
    EXPECT_EQ(client_->stats().retries, 1u);
}

TEST_F(KubeIntegration, ConcurrentAppliesShareOneClient) {
    auto cfg = baseConfig(server_);
    cfg.qps = 2000;
    cfg.burst = 100;
    RestClient client(cfg);
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    auto start = Clock::now();
    for (int t = 0; t < 16; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 25; ++i) {
                auto cm = configMap("c-" + std::to_string(t) + "-" + std::to_string(i));
                client.apply(cm, {.fieldManager = "bench"});
                ++ok;
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok.load(), 400);
    EXPECT_EQ(server_.list("v1", "ConfigMap", "default").size(), 400u);
    EXPECT_EQ(server_.requestCounts()["apply"], 400u);
    EXPECT_EQ(client.stats().retries, 0u);
    EXPECT_LT(Clock::now() - start, 60s);
}

// The most requests a client had in flight at once against a server that answers each after
// 50 ms, with 16 threads asking.
int peakInFlight(int maxInFlight) {
    testing::HttpServer server(testing::HttpServerOptions{});
    std::mutex mu;
    int now = 0, peak = 0;
    server.start([&](const testing::HttpRequest&, testing::ResponseWriter& w) {
        {
            std::lock_guard lock(mu);
            peak = std::max(peak, ++now);
        }
        std::this_thread::sleep_for(50ms);
        {
            std::lock_guard lock(mu);
            --now;
        }
        w.respond(200, {{"Content-Type", "application/json"}}, R"({"gitVersion":"v1.30.0"})");
    });
    ClusterConfig cfg;
    cfg.server = server.url();
    cfg.qps = 0;
    cfg.maxInFlight = maxInFlight;
    cfg.source = "test";
    RestClient client(cfg);
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int t = 0; t < 16; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 3; ++i)
                if (client.getPath("/version").value("gitVersion", "") == "v1.30.0") ++ok;
        });
    for (auto& th : threads) th.join();
    server.stop();
    EXPECT_EQ(ok.load(), 48);
    return peak;
}

TEST(RestClientInFlight, RequestsBeyondTheLimitWaitForASlot) {
    EXPECT_LE(peakInFlight(4), 4);
    // Unbounded, the same load has more in flight: the limit is what held it.
    EXPECT_GT(peakInFlight(0), 4);
}

}  // namespace
}  // namespace sluice::kube

namespace sluice::kube {

namespace {

// Two seats and a queue of two: a burst of requests finds the priority level full.
ApiServerOptions flowControlledServer() {
    ApiServerOptions o = quietServer();
    o.apfSeats = 2;
    o.apfQueueLength = 2;
    return o;
}

class FlowControlIntegration : public KubeIntegration {
  protected:
    FlowControlIntegration() : KubeIntegration(flowControlledServer()) {}
};

}  // namespace

TEST_F(FlowControlIntegration, ThrottledBurstsShrinkTheInFlightLimitAndAllSucceed) {
    ClusterConfig cfg = baseConfig(server_);
    cfg.maxInFlight = 32;
    cfg.maxRetries = 20;
    cfg.retryMaxDelay = 1s;
    RestClient client(cfg);
    // Slow writes hold their seats, so the burst finds the queue full.
    server_.faults().delayNext(1000, 50ms, "POST");
    std::vector<std::thread> threads;
    std::atomic<int> created{0}, failed{0};
    for (int i = 0; i < 48; ++i)
        threads.emplace_back([&, i] {
            try {
                client.create(configMap("burst-" + std::to_string(i)));
                ++created;
            } catch (const std::exception& e) {
                ++failed;
                ADD_FAILURE() << e.what();
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(created, 48);
    EXPECT_EQ(server_.list("v1", "ConfigMap", "default").size(), 48u);
    RequestStats st = client.stats();
    EXPECT_TRUE(st.apf);
    EXPECT_GT(st.serverThrottled, 0u);
    EXPECT_LT(st.concurrencyLimit, 32) << "429s must lower the limit in force";
}

TEST_F(KubeIntegration, TheClientRateLimitStepsAsideForApiPriorityAndFairness) {
    ClusterConfig cfg = baseConfig(server_);
    cfg.qps = 1;  // one request a second would make this test take 20 s
    cfg.burst = 1;
    cfg.qpsOnlyWithoutApf = true;
    RestClient client(cfg);
    for (int i = 0; i < 20; ++i) client.list(kConfigMap, "default");
    RequestStats st = client.stats();
    EXPECT_TRUE(st.apf);
    EXPECT_EQ(st.throttledWaits, 0u);

    cfg.qpsOnlyWithoutApf = false;  // an explicit limit applies whatever the server does
    RestClient paced(cfg);
    for (int i = 0; i < 3; ++i) paced.list(kConfigMap, "default");
    EXPECT_GE(paced.stats().throttledWaits, 2u);
}

}  // namespace sluice::kube

// ---- impersonation ----------------------------------------------------------------------

namespace sluice::kube {
namespace {

Object rbacObject(const std::string& kind, const std::string& name, const std::string& ns,
                  json body) {
    body["apiVersion"] = "rbac.authorization.k8s.io/v1";
    body["kind"] = kind;
    body["metadata"] = {{"name", name}};
    if (!ns.empty()) body["metadata"]["namespace"] = ns;
    return body;
}

// Impersonate-User is sent on every request; the server checks that the caller may impersonate
// the service account, then authorizes the request as it (its RBAC, not the caller's).
TEST(KubeImpersonation, RequestsRunAsTheImpersonatedServiceAccount) {
    ApiServerOptions o = quietServer();
    o.authorize = true;
    o.userTokens = {{"bob-token", "bob"}};
    ApiServer server(o);
    server.start();
    RestClient root(baseConfig(server));  // a superuser token
    root.create(rbacObject(
        "Role", "read-configmaps", "default",
        {{"rules",
          {{{"apiGroups", {""}}, {"resources", {"configmaps"}}, {"verbs", {"get", "list"}}}}}}));
    root.create(rbacObject(
        "RoleBinding", "viewer", "default",
        {{"roleRef",
          {{"apiGroup", "rbac.authorization.k8s.io"},
           {"kind", "Role"},
           {"name", "read-configmaps"}}},
         {"subjects",
          {{{"kind", "ServiceAccount"}, {"name", "viewer"}, {"namespace", "default"}}}}}));

    const std::string viewer = "system:serviceaccount:default:viewer";
    auto cfg = baseConfig(server);
    cfg.impersonateUser = viewer;
    RestClient asViewer(cfg);
    EXPECT_NO_THROW(asViewer.list(kConfigMap, "default"));
    auto denied = expectApiError([&] { asViewer.create(configMap("x")); });
    EXPECT_EQ(denied.code(), 403);
    EXPECT_NE(denied.message().find("User \"" + viewer +
                                    "\" cannot create resource \"configmaps\" in API group \"\" "
                                    "in the namespace \"default\""),
              std::string::npos)
        << denied.message();
    bool audited = false;
    for (const auto& e : server.auditLog())
        if (e.verb == "create" && e.resource == "configmaps")
            audited = e.user == viewer && e.impersonatedBy == "admin" && !e.allowed;
    EXPECT_TRUE(audited) << [&] {
        std::string all;
        for (const auto& e : server.auditLog())
            all += e.user + " (" + e.impersonatedBy + ") " + e.verb + " " + e.resource + " " +
                   e.ns + " " + (e.allowed ? "allowed" : "denied") + "\n";
        return all;
    }();

    // bob may not impersonate the service account until a role lets him.
    cfg.token = "bob-token";
    RestClient bob(cfg);
    auto refused = expectApiError([&] { bob.list(kConfigMap, "default"); });
    EXPECT_EQ(refused.code(), 403);
    EXPECT_EQ(refused.message(),
              "serviceaccounts \"viewer\" is forbidden: User \"bob\" cannot impersonate resource "
              "\"serviceaccounts\" in API group \"\" in the namespace \"default\"");
    root.create(rbacObject("ClusterRole", "impersonator", "",
                           {{"rules",
                             {{{"apiGroups", {""}},
                               {"resources", {"serviceaccounts"}},
                               {"verbs", {"impersonate"}}}}}}));
    root.create(rbacObject("ClusterRoleBinding", "bob-impersonates", "",
                           {{"roleRef",
                             {{"apiGroup", "rbac.authorization.k8s.io"},
                              {"kind", "ClusterRole"},
                              {"name", "impersonator"}}},
                            {"subjects", {{{"kind", "User"}, {"name", "bob"}}}}}));
    EXPECT_NO_THROW(bob.list(kConfigMap, "default"));
    EXPECT_EQ(expectApiError([&] { bob.create(configMap("y")); }).code(), 403);
    server.stop();
}

TEST(KubeImpersonation, AtMostOneGroupAndOnlyWithAUser) {
    ClusterConfig cfg;
    cfg.server = "https://127.0.0.1:1";
    cfg.impersonateUser = "jane";
    cfg.impersonateGroups = {"a", "b"};
    EXPECT_THROW(RestClient{cfg}, ConfigError);
    cfg.impersonateUser = "";
    cfg.impersonateGroups = {"a"};
    EXPECT_THROW(RestClient{cfg}, ConfigError);
    cfg.impersonateUser = "jane";
    EXPECT_NO_THROW(RestClient{cfg});
}

}  // namespace
}  // namespace sluice::kube
