#pragma once
// Destination clusters as Argo CD declares them: Secrets labelled
// argocd.argoproj.io/secret-type=cluster (or sluice.io/secret-type=cluster) in the control
// namespace, and the resolution of an Application's destination to one of them. Pure: the
// controller turns an entry's config into a client.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace sluice::appengine {

// The ConfigMap in the control namespace where the controller publishes what it sees of each
// cluster (one key per cluster: its Secret's name, or "in-cluster"; the value is JSON with
// name, server, secret, project, namespaces, connectionState, message, serverVersion,
// applications, cachedObjects), for `kubectl sluice cluster`.
// With --shards N, each replica publishes its own, sluice-clusters-<shard>, and the plugin merges
// them.
inline constexpr const char* kClusterStateConfigMap = "sluice-clusters";

// One cluster: from a Secret, or the built-in local one.
struct ClusterEntry {
    std::string name;
    std::string server;  // normalised: no trailing '/'
    // Argo CD's namespace-scoped cluster: only these namespaces are managed (empty: all).
    std::vector<std::string> namespaces;
    bool clusterResources = true;  // false only when namespaces are set and it says "false"
    std::string project;           // a project-scoped cluster (Argo CD's data.project)
    nlohmann::json config = nlohmann::json::object();  // Argo CD's ClusterConfig JSON
    std::string secretName;                            // empty for the built-in local cluster
    std::string resourceVersion;                       // the Secret's, to notice changes
    // The local cluster is reached with the controller's own credentials.
    bool local() const;
};

// The data of a Secret, decoded (data is base64, stringData wins as the API server merges it).
// Throws std::invalid_argument naming the key when a value is not valid base64.
std::string secretValue(const nlohmann::json& secret, const std::string& key);

// Whether the Secret is labelled as a cluster Secret (either label).
bool isClusterSecret(const nlohmann::json& secret);

// The entry of a cluster Secret. Throws std::invalid_argument with one line naming the Secret
// and the field at fault (missing server, config not a JSON object, bad base64, ...).
ClusterEntry parseClusterSecret(const nlohmann::json& secret);

// Server URLs compare without trailing slashes, as Argo CD compares them.
std::string normaliseServer(std::string server);

// The built-in local cluster (in-cluster, https://kubernetes.default.svc).
ClusterEntry localCluster();

// The clusters Applications can name: the Secrets' entries plus the local cluster unless a
// Secret declares https://kubernetes.default.svc itself (then that entry, e.g. renamed).
std::vector<ClusterEntry> knownClusters(std::vector<ClusterEntry> fromSecrets);

// The cluster a destination names (server or name), as Argo CD resolves it. Nothing, with
// Argo CD's message in error, when no cluster (or more than one) has that name or URL.
std::optional<ClusterEntry> resolveCluster(const std::vector<ClusterEntry>& clusters,
                                           const std::string& server, const std::string& name,
                                           std::string& error);

}  // namespace sluice::appengine
