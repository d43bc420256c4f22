#pragma once
// Shared set-up of the Application controller integration tests: the in-process API server with
// the Application CRD, a real libgit2 source on a scratch cache, git repositories built with the
// git CLI (served over file:// or `git http-backend`), and helpers to read status and Events.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apiserver/api_server.h"
#include "sluice/appcontroller/controller.h"
#include "sluice/cache/informer.h"
#include "sluice/git/git.h"
#include "sluice/kube/client.h"
#include "tempdir/tempdir.h"
#include "test_repo.h"

namespace sluice::apptest {

using nlohmann::json;
using namespace std::chrono_literals;

inline constexpr const char* kControlNs = "sluice";  // Applications and repository Secrets
inline constexpr const char* kDestNs = "demo";       // where the manifests land
inline const kube::GroupVersionKind kApplication{"sluice.io", "v1alpha1", "Application"};
inline const kube::GroupVersionKind kConfigMap{"", "v1", "ConfigMap"};
inline const kube::GroupVersionKind kDeployment{"apps", "v1", "Deployment"};

// Manifest text as it would sit in a repository.
std::string configMapYaml(const std::string& name, const std::map<std::string, std::string>& data,
                          const std::map<std::string, std::string>& annotations = {});
std::string deploymentYaml(const std::string& name,
                           const std::map<std::string, std::string>& annotations = {});

// Polls cond every 20 ms until it holds or the deadline passes; returns its final value.
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 30s);

// Every state of one kind's objects in one namespace, in watch order, seen through an informer
// of the test's own (so apply/prune order can be checked from the outside).
class ChangeLog {
  public:
    struct Entry {
        uint64_t seq;  // position in this log
        uint64_t rv;   // the server's resourceVersion (one global counter)
        bool deleted;  // a delete notification
        json object;
    };
    ChangeLog(kube::KubeClient& client, const kube::GroupVersionKind& gvk, const std::string& ns);
    ~ChangeLog();
    // The first entry of `name` for which pred holds.
    std::optional<Entry> first(const std::string& name,
                               const std::function<bool(const Entry&)>& pred) const;
    // First appearance, and first sign of deletion (deletionTimestamp set, or gone).
    std::optional<Entry> created(const std::string& name) const;
    std::optional<Entry> deletionStarted(const std::string& name) const;
    // One line per entry; `detail` adds text about the object.
    std::string dump(const std::function<std::string(const json&)>& detail = {}) const;

  private:
    void record(const json& obj, bool deleted);
    std::unique_ptr<cache::Informer> informer_;
    mutable std::mutex mu_;
    std::vector<Entry> entries_;
};

class AppIntegration : public ::testing::Test {
  protected:
    AppIntegration();
    ~AppIntegration() override;
    void SetUp() override;
    void TearDown() override;

    // Builds and starts the controller with options_ (set them before calling).
    void startController();

    // An Application in kControlNs for repoUrl/path at branch main, destination kDestNs, with
    // the given syncPolicy (default: automated with prune).
    json application(const std::string& name, const std::string& repoUrl, const std::string& path,
                     json syncPolicy = {{"automated", {{"prune", true}}}}) const;
    void createApp(const json& app);
    std::optional<json> getApp(const std::string& name);
    json appStatus(const std::string& name);  // {} when absent or without status
    void patchApp(const std::string& name, const json& mergePatch);

    std::optional<json> getObject(const std::string& apiVersion, const std::string& kind,
                                  const std::string& ns, const std::string& name);
    std::optional<json> configMap(const std::string& name) {
        return getObject("v1", "ConfigMap", kDestNs, name);
    }
    std::string configMapValue(const std::string& name, const std::string& key);  // "" if absent

    // Events about Application `name`.
    std::vector<json> appEvents(const std::string& name);
    bool hasEvent(const std::string& name, const std::string& reason,
                  const std::string& contains = "");
    // Status, conditions and Events of the app, for failure messages.
    std::string describe(const std::string& name);

    static std::optional<json> condition(const json& status, const std::string& type);
    static std::string annotation(const json& obj, const std::string& key);

    // sync.status Synced at `sha` after a successful operation.
    bool waitSynced(const std::string& name, const std::string& sha);
    // Reconciles of "namespace/name" the controller finished so far.
    int reconcilesOf(const std::string& key) const;
    // Asks for a refresh of Application `name` and waits until a reconcile of it finished after
    // the request: whatever the controller would do about the current state, it has done.
    bool reconcileAgain(const std::string& name);

    // A ChangeLog of the test's own, stopped in TearDown before the clients go away.
    ChangeLog& watchChanges(const kube::GroupVersionKind& gvk, const std::string& ns = kDestNs);

    // A repository Secret in kControlNs, label sluice.io/secret-type=`type` ("repository": url
    // is the repository; "repo-creds": url is a prefix). An empty username is left out.
    void createRepoSecret(const std::string& name, const std::string& url,
                          const std::string& username, const std::string& password,
                          const std::string& type = "repository");

    // A CustomResourceDefinition for example.com/v1 `kind` (namespaced), whose spec.size must be
    // an integer.
    static json widgetCrd(const std::string& kind, const std::string& plural);

    testing::ApiServer server_;
    testing::TempDir tmp_;
    std::unique_ptr<testing::TestRepo> repo_;  // tmp_/root/repo
    appcontroller::Options options_;
    std::unique_ptr<kube::RestClient> client_;  // the controller's
    std::unique_ptr<kube::RestClient> user_;    // the test's own writes (a "kubectl")
    std::unique_ptr<cache::SharedInformerFactory> informers_;
    std::unique_ptr<git::LibGit2Source> git_;
    std::unique_ptr<appcontroller::ApplicationController> controller_;

  private:
    std::vector<std::unique_ptr<ChangeLog>> changeLogs_;
    mutable std::mutex recordsMu_;
    std::map<std::string, int> reconciles_;
};

}  // namespace sluice::apptest
