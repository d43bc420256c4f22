// The commands through run(), with an in-memory API (FakeClient), an in-memory git
// (FakeGitSource) and a fixed clock: exact output, the writes made, --wait, and exit codes.
#include <gtest/gtest.h>

#include "sluice/util/base64.h"

#include <map>
#include <sstream>

#include "commands.h"
#include "run.h"
#include "sluice/git/fake_source.h"
#include "sluice/kube/errors.h"

namespace sluice::plugin {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

// Namespaced kinds it serves: Application, AppProject, Canary, ConfigMap, Deployment, Secret.
class FakeClient : public kube::KubeClient {
  public:
    kube::ResourceInfo resourceFor(const kube::GroupVersionKind& gvk) override {
        static const std::map<std::string, std::string> plural = {
            {"Application", "applications"}, {"AppProject", "appprojects"}, {"Canary", "canaries"},
            {"ConfigMap", "configmaps"},     {"Deployment", "deployments"}, {"Secret", "secrets"}};
        auto it = plural.find(gvk.kind);
        if (it == plural.end()) throw kube::ApiError(404, "NotFound", "no kind " + gvk.kind);
        kube::ResourceInfo info;
        info.gvk = gvk;
        info.resource = it->second;
        return info;
    }
    kube::Object get(const kube::GroupVersionKind& gvk, const std::string& ns,
                     const std::string& name) override {
        auto it = objects.find(key(gvk, ns, name));
        if (it == objects.end())
            throw kube::ApiError(404, "NotFound",
                                 resourceFor(gvk).resource + " \"" + name + "\" not found");
        return it->second;
    }
    kube::ListResult list(const kube::GroupVersionKind& gvk, const std::string& ns,
                          const kube::ListOptions& = {}) override {
        kube::ListResult r;
        for (const auto& [k, obj] : objects)
            if (kube::GroupVersionKind::of(obj).kind == gvk.kind &&
                (ns.empty() || kube::namespaceOf(obj) == ns))
                r.items.push_back(obj);
        return r;
    }
    kube::ListResult listAll(const kube::GroupVersionKind& gvk, const std::string& ns,
                             const kube::ListOptions& opts = {}) override {
        return list(gvk, ns, opts);
    }
    void watch(const kube::GroupVersionKind&, const std::string&, const kube::WatchOptions&,
               const std::function<bool(kube::WatchEvent&)>&, const StopToken&) override {
        throw std::logic_error("not used");
    }
    kube::Object create(const kube::Object& obj, const kube::WriteOptions& = {}) override {
        kube::Object o = obj;
        o["metadata"]["resourceVersion"] = std::to_string(++rv);
        if (!o["metadata"].contains("creationTimestamp"))
            o["metadata"]["creationTimestamp"] = "2026-12-04T11:00:00Z";
        objects[key(kube::GroupVersionKind::of(o), kube::namespaceOf(o), kube::nameOf(o))] = o;
        return o;
    }
    kube::Object update(const kube::Object&, const kube::WriteOptions& = {}) override {
        throw std::logic_error("not used");
    }
    kube::Object updateStatus(const kube::Object&, const kube::WriteOptions& = {}) override {
        throw std::logic_error("not used");
    }
    kube::Object apply(const kube::Object&, const kube::ApplyOptions& = {}) override {
        throw std::logic_error("not used");
    }
    kube::Object patch(const kube::GroupVersionKind& gvk, const std::string& ns,
                       const std::string& name, kube::PatchType type, const std::string& body,
                       const kube::PatchOptions& = {}) override {
        EXPECT_EQ(type, kube::PatchType::Merge);
        patches.push_back(json::parse(body));
        kube::Object obj = get(gvk, ns, name);
        json p = json::parse(body);
        if (p.contains("metadata") && p["metadata"].contains("resourceVersion")) {
            if (p["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"])
                throw kube::ApiError(409, "Conflict", "the object has been modified");
            p["metadata"].erase("resourceVersion");
        }
        obj.merge_patch(p);
        obj["metadata"]["resourceVersion"] = std::to_string(++rv);
        objects[key(gvk, ns, name)] = obj;
        return obj;
    }
    kube::Object remove(const kube::GroupVersionKind&, const std::string&, const std::string&,
                        const kube::DeleteOptions& = {}) override {
        throw std::logic_error("not used");
    }

    static std::string key(const kube::GroupVersionKind& gvk, const std::string& ns,
                           const std::string& name) {
        return gvk.group + "/" + gvk.kind + "/" + ns + "/" + name;
    }
    json& at(const kube::GroupVersionKind& gvk, const std::string& ns, const std::string& name) {
        return objects.at(key(gvk, ns, name));
    }

    std::map<std::string, kube::Object> objects;
    std::vector<json> patches;
    int rv = 100;
};

// Lends the test's FakeClient to run() (which owns the client it connects).
class Borrowed : public kube::KubeClient {
  public:
    explicit Borrowed(kube::KubeClient& c) : c_(c) {}
    kube::ResourceInfo resourceFor(const kube::GroupVersionKind& g) override {
        return c_.resourceFor(g);
    }
    kube::Object get(const kube::GroupVersionKind& g, const std::string& ns,
                     const std::string& n) override {
        return c_.get(g, ns, n);
    }
    kube::ListResult list(const kube::GroupVersionKind& g, const std::string& ns,
                          const kube::ListOptions& o = {}) override {
        return c_.list(g, ns, o);
    }
    kube::ListResult listAll(const kube::GroupVersionKind& g, const std::string& ns,
                             const kube::ListOptions& o = {}) override {
        return c_.listAll(g, ns, o);
    }
    void watch(const kube::GroupVersionKind& g, const std::string& ns, const kube::WatchOptions& o,
               const std::function<bool(kube::WatchEvent&)>& f, const StopToken& s) override {
        c_.watch(g, ns, o, f, s);
    }
    kube::Object create(const kube::Object& o, const kube::WriteOptions& w = {}) override {
        return c_.create(o, w);
    }
    kube::Object update(const kube::Object& o, const kube::WriteOptions& w = {}) override {
        return c_.update(o, w);
    }
    kube::Object updateStatus(const kube::Object& o, const kube::WriteOptions& w = {}) override {
        return c_.updateStatus(o, w);
    }
    kube::Object apply(const kube::Object& o, const kube::ApplyOptions& a = {}) override {
        return c_.apply(o, a);
    }
    kube::Object patch(const kube::GroupVersionKind& g, const std::string& ns, const std::string& n,
                       kube::PatchType t, const std::string& b,
                       const kube::PatchOptions& o = {}) override {
        return c_.patch(g, ns, n, t, b, o);
    }
    kube::Object remove(const kube::GroupVersionKind& g, const std::string& ns,
                        const std::string& n, const kube::DeleteOptions& o = {}) override {
        return c_.remove(g, ns, n, o);
    }

  private:
    kube::KubeClient& c_;
};

const kube::GroupVersionKind kConfigMapGvk{"", "v1", "ConfigMap"};
constexpr const char* kRepo = "https://git.example/deploy.git";

class PluginCommands : public ::testing::Test {
  protected:
    struct Result {
        int code;
        std::string out, err;
    };

    Result run(std::vector<std::string> args) {
        std::ostringstream out, err;
        Environment env(out, err);
        env.username = "ann";
        env.now = [this] { return now_; };
        env.sleep = [this](std::chrono::milliseconds d) {
            now_ += d;
            ++sleeps_;
            if (onSleep_) onSleep_();
        };
        env.connect = [this](const Invocation&, std::string& defaultNamespace) {
            defaultNamespace = "sluice";
            return std::unique_ptr<kube::KubeClient>(std::make_unique<Borrowed>(client_));
        };
        env.makeGit = [this](const Invocation&) {
            ++gitMade_;
            return std::unique_ptr<git::GitSource>(std::make_unique<BorrowedGit>(git_));
        };
        int code = sluice::plugin::run(args, env);
        return {code, out.str(), err.str()};
    }

    json application(const std::string& name, const std::string& created) {
        return {
            {"apiVersion", "sluice.io/v1alpha1"},
            {"kind", "Application"},
            {"metadata", {{"name", name}, {"namespace", "sluice"}, {"creationTimestamp", created}}},
            {"spec",
             {{"project", "default"},
              {"source", {{"repoURL", kRepo}, {"targetRevision", "main"}, {"path", "app"}}},
              {"destination",
               {{"server", "https://kubernetes.default.svc"}, {"namespace", "demo"}}}}}};
    }

    class BorrowedGit : public git::GitSource {
      public:
        explicit BorrowedGit(git::GitSource& g) : g_(g) {}
        git::Revision resolve(const git::Repository& r, const std::string& t) override {
            return g_.resolve(r, t);
        }
        std::vector<git::File> listFiles(const git::Repository& r, const std::string& s,
                                         const std::string& p, bool rec) override {
            return g_.listFiles(r, s, p, rec);
        }
        std::string readFile(const git::Repository& r, const std::string& s,
                             const std::string& p) override {
            return g_.readFile(r, s, p);
        }

      private:
        git::GitSource& g_;
    };

    FakeClient client_;
    git::FakeGitSource git_;
    Clock::time_point now_ = std::chrono::sys_days{std::chrono::year{2026} / 12 / 4} + 12h;
    std::function<void()> onSleep_;
    int sleeps_ = 0;
    int gitMade_ = 0;
};

TEST_F(PluginCommands, AppListExactTableWithAges) {
    client_.create(application("guestbook", "2026-12-04T11:55:00Z"));
    client_.create(application("old", "2026-12-02T12:00:00Z"));
    client_.create(application("recent", "2026-12-04T09:00:00Z"));
    client_.at(kApplicationGvk, "sluice", "guestbook")["status"] = {
        {"sync", {{"status", "Synced"}, {"revision", std::string(40, 'a')}}},
        {"health", {{"status", "Healthy"}}}};
    client_.at(kApplicationGvk, "sluice",
               "old")["spec"]["syncPolicy"] = {{"automated", json::object()}};
    Result r = run({"app", "list"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out,
              "NAME        SYNC STATUS   HEALTH    REVISION   SYNCPOLICY   AGE\n"
              "guestbook   Synced        Healthy   aaaaaaa    <none>       5m\n"
              "old                                            Auto         2d\n"
              "recent                                         <none>       3h\n");
    EXPECT_EQ(gitMade_, 0) << "git is only for app diff";
}

TEST_F(PluginCommands, SyncWritesTheOperationAndWaitsForTheController) {
    client_.create(application("guestbook", "2026-12-04T11:00:00Z"));
    // The "controller": after the second poll it finishes the operation it found.
    onSleep_ = [this] {
        if (sleeps_ != 2) return;
        json& a = client_.at(kApplicationGvk, "sluice", "guestbook");
        a["status"]["operationState"] = {{"operation", a["operation"]},
                                         {"phase", "Succeeded"},
                                         {"message", "successfully synced"},
                                         {"syncResult", {{"revision", std::string(40, 'b')}}}};
        a.erase("operation");
    };
    Result r = run({"app", "sync", "guestbook", "--prune", "--wait", "--revision", "v2"});
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_EQ(client_.patches.size(), 1u);
    EXPECT_EQ(client_.patches[0], (json{{"metadata", {{"resourceVersion", "101"}}},
                                        {"operation",
                                         {{"sync", {{"revision", "v2"}, {"prune", true}}},
                                          {"initiatedBy", {{"username", "ann"}}}}}}));
    EXPECT_EQ(r.out,
              "application.sluice.io/guestbook sync requested (revision v2, prune)\n"
              "Phase:    Succeeded\n"
              "Message:  successfully synced\n"
              "Revision: " +
                  std::string(40, 'b') + "\n");
    EXPECT_EQ(sleeps_, 2);
}

TEST_F(PluginCommands, SyncWaitTimesOutAndFailedOperationsFail) {
    client_.create(application("guestbook", "2026-12-04T11:00:00Z"));
    Result r = run({"app", "sync", "guestbook", "--wait", "--timeout", "3s"});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("timed out after 3s"), std::string::npos) << r.err;
    EXPECT_EQ(sleeps_, 6);

    client_.create(application("failing", "2026-12-04T11:00:00Z"));
    onSleep_ = [this] {
        json& a = client_.at(kApplicationGvk, "sluice", "failing");
        if (!a.contains("operation")) return;
        a["status"]["operationState"] = {{"operation", a["operation"]},
                                         {"phase", "Failed"},
                                         {"message", "one or more objects failed to apply"}};
        a.erase("operation");
    };
    Result f = run({"app", "sync", "failing", "--wait"});
    EXPECT_EQ(f.code, 1);
    EXPECT_NE(f.out.find("Phase:    Failed\n"), std::string::npos) << f.out;
}

TEST_F(PluginCommands, CanaryRequestIsTheRequestTime) {
    client_.create({{"apiVersion", "sluice.io/v1alpha1"},
                    {"kind", "Canary"},
                    {"metadata", {{"name", "podinfo"}, {"namespace", "sluice"}}},
                    {"status", {{"phase", "WaitingPromotion"}}}});
    Result r = run({"canary", "promote", "podinfo"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(client_.patches.back()["metadata"]["annotations"],
              (json{{"sluice.io/promote", "2026-12-04T12:00:00Z"}}));
    EXPECT_EQ(
        r.out,
        "canary.sluice.io/podinfo promote requested (sluice.io/promote=2026-12-04T12:00:00Z)\n");
    Result retry = run({"canary", "retry", "podinfo"});
    EXPECT_EQ(retry.code, 1);
    EXPECT_EQ(retry.err,
              "error: canary sluice/podinfo is in phase WaitingPromotion: retry applies only in "
              "phase Failed\n");
    EXPECT_EQ(client_.patches.size(), 1u);
}

TEST_F(PluginCommands, DiffExactOutputAndExitCodes) {
    const std::string sha =
        git_.commit(kRepo, {{"app/cm.yaml",
                             "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n"
                             "  a: \"1\"\n  b: \"2\"\n  c: \"3\"\n  d: \"4\"\n  e: \"5\"\n"}});
    client_.create(application("guestbook", "2026-12-04T11:00:00Z"));
    // Missing live object: every line added.
    Result missing = run({"app", "diff", "guestbook"});
    EXPECT_EQ(missing.code, 1) << missing.err;
    EXPECT_EQ(missing.out,
              "===== /ConfigMap demo/settings ======\n"
              "--- live/v1.ConfigMap.demo.settings\n"
              "+++ desired/v1.ConfigMap.demo.settings\n"
              "@@ -0,0 +1,13 @@\n"
              "+apiVersion: v1\n"
              "+data:\n"
              "+  a: \"1\"\n"
              "+  b: \"2\"\n"
              "+  c: \"3\"\n"
              "+  d: \"4\"\n"
              "+  e: \"5\"\n"
              "+kind: ConfigMap\n"
              "+metadata:\n"
              "+  annotations:\n"
              "+    sluice.io/tracking-id: guestbook:/ConfigMap:demo/settings\n"
              "+  name: settings\n"
              "+  namespace: demo\n");
    // Live with one changed value and fields the manifest does not set.
    client_.create(
        {{"apiVersion", "v1"},
         {"kind", "ConfigMap"},
         {"metadata",
          {{"name", "settings"},
           {"namespace", "demo"},
           {"uid", "u-1"},
           {"labels", {{"team", "x"}}},
           {"annotations", {{"sluice.io/tracking-id", "guestbook:/ConfigMap:demo/settings"}}}}},
         {"data", {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "50"}, {"z", "9"}}}});
    Result changed = run({"app", "diff", "guestbook"});
    EXPECT_EQ(changed.code, 1) << changed.err;
    EXPECT_EQ(changed.out,
              "===== /ConfigMap demo/settings ======\n"
              "--- live/v1.ConfigMap.demo.settings\n"
              "+++ desired/v1.ConfigMap.demo.settings\n"
              "@@ -4,7 +4,7 @@\n"
              "   b: \"2\"\n"
              "   c: \"3\"\n"
              "   d: \"4\"\n"
              "-  e: \"50\"\n"
              "+  e: \"5\"\n"
              " kind: ConfigMap\n"
              " metadata:\n"
              "   annotations:\n");
    // In sync: nothing printed, exit 0.
    client_.at(kConfigMapGvk, "demo", "settings")["data"]["e"] = "5";
    Result same = run({"app", "diff", "guestbook"});
    EXPECT_EQ(same.code, 0) << same.err;
    EXPECT_EQ(same.out, "");
    // Without a compared revision in the status, every diff resolves the target.
    EXPECT_EQ(git_.resolveCalls(kRepo), 3);
    // Git failing: exit 2.
    git_.setError(kRepo, git::GitError(git::GitError::Kind::Unreachable, "cannot reach it"));
    Result broken = run({"app", "diff", "guestbook"});
    EXPECT_EQ(broken.code, 2);
    EXPECT_EQ(broken.err, "error: cannot reach it\n");
    (void)sha;
}

TEST_F(PluginCommands, DiffUsesTheComparedRevisionUnlessRefreshed) {
    const std::string first = git_.commit(
        kRepo, {{"app/cm.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\ndata:\n  v: \"1\"\n"}});
    git_.commit(kRepo,
                {{"app/cm.yaml",
                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\ndata:\n  v: \"2\"\n"}});
    json app = application("guestbook", "2026-12-04T11:00:00Z");
    app["status"] = {{"sync",
                      {{"status", "Synced"},
                       {"revision", first},
                       {"comparedTo", {{"source", app["spec"]["source"]}}}}}};
    client_.create(app);
    client_.create({{"apiVersion", "v1"},
                    {"kind", "ConfigMap"},
                    {"metadata",
                     {{"name", "s"},
                      {"namespace", "demo"},
                      {"annotations", {{"sluice.io/tracking-id", "guestbook:/ConfigMap:demo/s"}}}}},
                    {"data", {{"v", "1"}}}});
    EXPECT_EQ(run({"app", "diff", "guestbook"}).code, 0) << "compared revision: v=1";
    Result refreshed = run({"app", "diff", "guestbook", "--refresh"});
    EXPECT_EQ(refreshed.code, 1) << "main now: v=2";
    EXPECT_NE(refreshed.out.find("-  v: \"1\"\n+  v: \"2\"\n"), std::string::npos) << refreshed.out;
    EXPECT_EQ(run({"app", "diff", "guestbook", "--revision", first}).code, 0);
}

TEST_F(PluginCommands, UsageErrorsAndApiErrors) {
    Result none = run({});
    EXPECT_EQ(none.code, 2);
    Result bad = run({"app", "get", "a", "b"});
    EXPECT_EQ(bad.code, 2);
    EXPECT_EQ(bad.err,
              "error: \"app get\" takes arguments: NAME (got 2)\n"
              "See 'kubectl sluice --help' for usage.\n");
    Result notFound = run({"app", "get", "nope"});
    EXPECT_EQ(notFound.code, 1);
    EXPECT_EQ(notFound.err, "Error from server (NotFound): applications \"nope\" not found\n");
    Result diffNotFound = run({"app", "diff", "nope"});
    EXPECT_EQ(diffNotFound.code, 2);
    Result allNs = run({"app", "get", "x", "-A"});
    EXPECT_EQ(allNs.code, 2);
}

// Clusters: the Secrets of the control namespace (Argo CD's format) plus the local cluster,
// with what the controller published of each in the sluice-clusters ConfigMap.
TEST_F(PluginCommands, ClusterListAndGet) {
    auto b64 = [](const std::string& s) { return base64Encode(s); };
    client_.create(json{{"apiVersion", "v1"},
                        {"kind", "Secret"},
                        {"metadata",
                         {{"name", "cluster-east"},
                          {"namespace", "sluice"},
                          {"labels", {{"argocd.argoproj.io/secret-type", "cluster"}}}}},
                        {"data",
                         {{"name", b64("east")},
                          {"server", b64("https://east.example:6443")},
                          {"project", b64("team-a")},
                          {"config", b64(R"({"bearerToken":"secret-token"})")}}}});
    client_.create(json{{"apiVersion", "v1"},
                        {"kind", "ConfigMap"},
                        {"metadata", {{"name", "sluice-clusters"}, {"namespace", "sluice"}}},
                        {"data",
                         {{"cluster-east", json{{"server", "https://east.example:6443"},
                                                {"connectionState", "Successful"},
                                                {"message", ""},
                                                {"serverVersion", "v1.32.3"},
                                                {"applications", {"sluice/web", "sluice/api"}},
                                                {"cachedObjects", 42}}
                                               .dump()}}}});
    Result list = run({"cluster", "list"});
    ASSERT_EQ(list.code, 0) << list.err;
    const std::string message = "the controller has not published this cluster's state";
    EXPECT_EQ(list.out,
              "SERVER                           NAME         VERSION   STATUS       MESSAGE" +
                  std::string(message.size() - 4, ' ') +
                  "PROJECT   APPLICATIONS   CACHED OBJECTS\n"
                  "https://east.example:6443        east         v1.32.3   Successful   " +
                  std::string(message.size() + 3, ' ') +
                  "team-a    2              42\n"
                  "https://kubernetes.default.svc   in-cluster             Unknown      " +
                  message + "             0              0\n");
    EXPECT_EQ(list.out.find("secret-token"), std::string::npos) << "credentials never shown";
    EXPECT_EQ(run({"cluster", "list", "-o", "name"}).out, "east\nin-cluster\n");

    Result get = run({"cluster", "get", "https://east.example:6443/"});
    ASSERT_EQ(get.code, 0) << get.err;
    EXPECT_NE(get.out.find("Name:               east\n"), std::string::npos) << get.out;
    EXPECT_NE(get.out.find("Connection State:   Successful\n"), std::string::npos);
    EXPECT_NE(get.out.find("Applications:       2\n  sluice/web\n  sluice/api\n"),
              std::string::npos);
    EXPECT_EQ(get.out.find("secret-token"), std::string::npos);
    Result asJson = run({"cluster", "get", "east", "-o", "json"});
    ASSERT_EQ(asJson.code, 0) << asJson.err;
    EXPECT_EQ(json::parse(asJson.out)["cachedObjects"], 42);
    EXPECT_FALSE(json::parse(asJson.out).contains("config")) << "credentials never shown";
    // With --shards, each replica publishes sluice-clusters-<shard>: merged.
    client_.create(json{{"apiVersion", "v1"},
                        {"kind", "ConfigMap"},
                        {"metadata", {{"name", "sluice-clusters-1"}, {"namespace", "sluice"}}},
                        {"data",
                         {{"cluster-east", json{{"server", "https://east.example:6443"},
                                                {"connectionState", "Failed"},
                                                {"message", "connection refused"},
                                                {"applications", {"sluice/db"}},
                                                {"cachedObjects", 8}}
                                               .dump()}}}});
    const json merged = json::parse(run({"cluster", "get", "east", "-o", "json"}).out);
    EXPECT_EQ(merged["applications"], json({"sluice/web", "sluice/api", "sluice/db"}));
    EXPECT_EQ(merged["cachedObjects"], 50);
    EXPECT_EQ(merged["connectionState"], "Failed") << "one replica cannot reach it";
    EXPECT_EQ(merged["message"], "connection refused");
    EXPECT_EQ(merged["serverVersion"], "v1.32.3");
    // With --sharding leases, each replica publishes sluice-clusters-member-<replica>: merged
    // too; other ConfigMaps with the prefix are not the controller's.
    for (const char* name : {"sluice-clusters-member-sluice-7f9c-1a2b", "sluice-clusters-old"})
        client_.create(json{{"apiVersion", "v1"},
                            {"kind", "ConfigMap"},
                            {"metadata", {{"name", name}, {"namespace", "sluice"}}},
                            {"data",
                             {{"cluster-east", json{{"server", "https://east.example:6443"},
                                                    {"connectionState", "Successful"},
                                                    {"applications", {"sluice/cache"}},
                                                    {"cachedObjects", 5}}
                                                   .dump()}}}});
    const json members = json::parse(run({"cluster", "get", "east", "-o", "json"}).out);
    EXPECT_EQ(members["applications"],
              json({"sluice/web", "sluice/api", "sluice/db", "sluice/cache"}));
    EXPECT_EQ(members["cachedObjects"], 55);
    Result missing = run({"cluster", "get", "west"});
    EXPECT_EQ(missing.code, 1);
    EXPECT_NE(missing.err.find("cluster \"west\" not found"), std::string::npos) << missing.err;
}

// Projects are read from the control namespace; the windows' state at the plugin's clock
// (2026-12-04T12:00:00Z, a Friday).
TEST_F(PluginCommands, ProjectListAndGet) {
    client_.create(json::parse(R"({
        "apiVersion": "sluice.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": "team-a", "namespace": "sluice"},
        "spec": {
            "description": "Team A",
            "sourceRepos": ["https://git.example/team-a/*"],
            "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "team-a"}],
            "namespaceResourceBlacklist": [{"group": "", "kind": "ResourceQuota"}],
            "roles": [{"name": "ci"}],
            "syncWindows": [
                {"kind": "allow", "schedule": "0 12 * * *", "duration": "1h",
                 "applications": ["*"]},
                {"kind": "deny", "schedule": "0 22 * * FRI", "duration": "60h",
                 "timeZone": "Europe/Berlin", "namespaces": ["team-a"], "manualSync": true},
                {"kind": "deny", "schedule": "* * * * *", "duration": "1h",
                 "timeZone": "Nowhere/City", "clusters": ["in-cluster"]}]}})"));
    Result list = run({"project", "list"});
    ASSERT_EQ(list.code, 0) << list.err;
    EXPECT_EQ(list.out,
              "NAME     DESCRIPTION   DESTINATIONS                            SOURCES           "
              "             CLUSTER-RESOURCE-WHITELIST   NAMESPACE-RESOURCE-BLACKLIST   "
              "SYNC-WINDOWS\n"
              "team-a   Team A        https://kubernetes.default.svc,team-a   "
              "https://git.example/team-a/*   <none>                       /ResourceQuota     "
              "            3\n");
    EXPECT_EQ(run({"project", "list", "-o", "name"}).out, "appproject.sluice.io/team-a\n");
    Result none = run({"project", "list", "-n", "other"});
    EXPECT_EQ(none.err, "No resources found in other namespace.\n");

    Result get = run({"project", "get", "team-a"});
    ASSERT_EQ(get.code, 0) << get.err;
    EXPECT_NE(get.out.find("Name:                         sluice/team-a\n"), std::string::npos)
        << get.out;
    EXPECT_NE(get.out.find("Allowed Namespaced Resources: <all>\n"), std::string::npos);
    EXPECT_NE(get.out.find("Denied Namespaced Resources:  /ResourceQuota\n"), std::string::npos);
    EXPECT_NE(get.out.find("Not Implemented (ignored):    spec.roles\n"), std::string::npos);
    EXPECT_NE(get.out.find("0     Active     allow   0 12 * * *"), std::string::npos) << get.out;
    EXPECT_NE(get.out.find("1     Inactive   deny    0 22 * * FRI   60h        Europe/Berlin"),
              std::string::npos);
    EXPECT_NE(get.out.find("2     Invalid    deny"), std::string::npos);
    EXPECT_NE(get.out.find("invalid: spec.syncWindows[2].timeZone: unknown time zone"),
              std::string::npos);
    // At 23:30 in Berlin the Friday deny window is open.
    now_ += 10h + 30min;
    EXPECT_NE(run({"project", "get", "team-a"}).out.find("1     Active     deny"),
              std::string::npos);
    EXPECT_EQ(
        json::parse(run({"project", "get", "team-a", "-o", "json"}).out)["spec"]["description"],
        "Team A");
    EXPECT_EQ(run({"project", "get", "nope"}).code, 1);
}

}  // namespace
}  // namespace sluice::plugin
