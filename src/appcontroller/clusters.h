#pragma once
// The destination clusters of Applications. The local cluster is reached with the controller's
// own client and watch caches; every other one is named by a cluster Secret (Argo CD's format,
// see appengine/clusters.h) and gets its own client, rate limit, watch caches and live state,
// created when the first Application targets it and stopped when the last one leaves or its
// Secret changes (rotated credentials are picked up without a restart).
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <atomic>

#include "live_state.h"
#include "sluice/appengine/clusters.h"
#include "sluice/kube/client.h"
#include "sluice/kube/config.h"

namespace sluice::appcontroller {

class Cluster {
  public:
    // The local cluster: the controller's client, caches and live state.
    Cluster(appengine::ClusterEntry entry, kube::KubeClient& client, LiveState& live,
            const Clock& clock, appengine::ManagedScope scope);
    // A remote cluster: its own client (built from entry.config) and caches.
    Cluster(appengine::ClusterEntry entry, const Clock& clock, const Options& opts,
            std::shared_ptr<workqueue::Gate> gate, const BaseInformers& base);
    ~Cluster();

    const appengine::ClusterEntry& entry() const { return entry_; }
    kube::KubeClient& client() { return *client_; }
    LiveState& live() { return *live_; }
    bool local() const { return !ownedClient_; }
    // What Applications may deploy there: --managed-namespaces/--cluster-resources for the
    // local cluster, the Secret's namespaces/clusterResources for another.
    const appengine::ManagedScope& managedScope() const { return opts_.managedScope; }
    // The version and API versions for renders, read at most every 5 minutes (Helm's defaults
    // until the server answers).
    kube::ServerInfo serverInfo();
    // The last error reaching the server (version read), empty once it answered.
    std::string lastError();
    // A client of this cluster whose requests impersonate `user` (Impersonate-User; the API
    // server adds a service account's groups itself), made on first use and kept. The local
    // cluster's comes from Options::impersonatingClient. Throws std::runtime_error when there
    // is none, or the client's error when it cannot be built.
    kube::KubeClient& impersonating(const std::string& user);
    // Whether its watches were connected when last looked at (Clusters' monitor).
    bool connected() const { return connected_.load(); }

  private:
    friend class Clusters;
    std::atomic<bool> connected_{true};
    appengine::ClusterEntry entry_;
    const Clock& clock_;
    Options opts_;  // the controller's, with this cluster's managed scope
    std::unique_ptr<kube::KubeClient> ownedClient_;
    std::unique_ptr<cache::SharedInformerFactory> ownedInformers_;
    std::unique_ptr<LiveState> ownedLive_;
    kube::KubeClient* client_;
    LiveState* live_;
    std::mutex infoMu_;
    std::optional<Clock::TimePoint> infoReadAt_;
    kube::ServerInfo info_;
    std::string lastError_;
    ImpersonatingClientFactory impersonatingFactory_;
    std::mutex impersonatedMu_;
    std::map<std::string, std::unique_ptr<kube::KubeClient>> impersonated_;  // by user
};

// The kube client configuration of a cluster Secret's entry (Argo CD's config JSON: bearerToken,
// username/password, tlsClientConfig, execProviderConfig). Throws std::invalid_argument naming
// the field at fault.
kube::ClusterConfig clientConfigOf(const appengine::ClusterEntry& entry);

// The clusters' ConfigMap as last written, or as it would be written now: each cluster's state
// as JSON text, with (data) and without (states) its cached-object count.
struct PublishedClusters {
    json data;
    json states;
    Clock::TimePoint at{};
};
// A change of the cached-object counts alone waits this long since the last write: a
// controller with nothing to do writes nothing, though its first write is itself one more
// cached object (its ConfigMap).
inline constexpr std::chrono::seconds kClusterCountsEvery{60};
// Whether `next` is written over `last`: any change of state at once, counts alone at most
// every kClusterCountsEvery.
bool shouldPublishClusters(const PublishedClusters& last, const PublishedClusters& next);

class Clusters {
  public:
    Clusters(kube::KubeClient& localClient, LiveState& localLive, const Clock& clock,
             const Options& opts, std::shared_ptr<workqueue::Gate> gate, const BaseInformers& base);
    ~Clusters();

    // The cluster the Application's destination names, now used by it. Null, with the reason
    // (Argo CD's wording for an unknown cluster, or the Secret's problem), when there is none.
    std::shared_ptr<Cluster> use(const std::string& appKey, const std::string& server,
                                 const std::string& name, std::string& error);
    // The Application is gone: a remote cluster no Application uses any more is stopped.
    void release(const std::string& appKey);

    // Every known cluster (Secrets and the local one) as the controller sees it now.
    std::vector<ClusterState> list();
    // From now on (the controller runs, and leads) the states are published in the
    // kClusterStateConfigMap ConfigMap when they change; until stopPublishing().
    void startPublishing();
    void stopPublishing();

  private:
    std::vector<appengine::ClusterEntry> known(std::string& problems);
    void dropUnusedLocked();
    // Every couple of seconds: a remote cluster whose watches lost (or regained) their
    // connection has its Applications reconciled, so their status says so without waiting
    // for the poll interval.
    void monitor();
    void checkConnections();
    void publish();
    std::string configMapName() const;

    kube::KubeClient& localClient_;
    LiveState& localLive_;
    const Clock& clock_;
    const Options& opts_;
    const std::shared_ptr<workqueue::Gate> gate_;
    const BaseInformers& base_;

    std::mutex mu_;  // guards the maps below
    std::shared_ptr<Cluster> local_;
    std::map<std::string, std::shared_ptr<Cluster>> remote_;  // by server URL
    std::map<std::string, std::string> users_;                // Application key -> server
    bool stopping_ = false;
    bool publishing_ = false;
    PublishedClusters published_;  // the ConfigMap last written
    std::condition_variable wake_;
    std::thread monitor_;  // last: started once the members above exist
};

}  // namespace sluice::appcontroller
