#pragma once
// Command-line flags of sluice-controller. Every flag has an environment equivalent
// (SLUICE_<FLAG_IN_CAPITALS>); a flag given on the command line wins.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

struct ControllerOptions {
    std::string kubeconfig;  // "" = $KUBECONFIG, ~/.kube/config, then in-cluster
    std::string context;
    std::string ns;  // watch scope; "" = all namespaces
    // Namespaces Applications may deploy to (their kinds are watched there only); empty = all.
    std::vector<std::string> managedNamespaces;
    // Cluster-scoped kinds may be managed; unset = only when every namespace is managed.
    std::optional<bool> clusterResources;
    std::string logFormat = "text";
    std::string logLevel = "info";
    // Client-side rate limit; unset ("auto") = 50 until the API server shows API Priority and
    // Fairness, then off (the server paces us).
    std::optional<double> qps;
    int burst = 100;
    // Namespace of the controller itself: repository Secrets live here, and Applications here
    // sign their objects with their bare name. Default: $POD_NAMESPACE, else "sluice".
    std::string controlNamespace = "sluice";
    std::string repoCacheDir = "/tmp/sluice/repositories";
    std::chrono::milliseconds reconcileInterval{180000};  // git poll interval
    std::chrono::milliseconds syncTimeout{300000};
    int concurrency = 4;
    // Sources (Argo CD's repo server settings): tool paths, found on PATH by default.
    std::string helmPath = "helm";
    std::string kustomizePath;  // "" = `kubectl kustomize`
    std::string kubectlPath = "kubectl";
    std::vector<std::string> kustomizeBuildOptions;  // e.g. --enable-helm
    bool allowRemoteKustomizeBases = false;
    bool allowRemoteValueFiles = false;
    int renderConcurrency = 4;
    std::chrono::milliseconds renderTimeout{90000};
    std::string renderDir = "/tmp/sluice/sources";  // trees, charts, scratch
    std::string pluginConfigMap = "sluice-cmp";     // config management plugins
    // Application notifications' services (Argo CD's argocd-notifications-cm format); the
    // Secret is its name with -cm replaced by -secret.
    std::string notificationsConfigMap = "sluice-notifications-cm";
    // HTTP endpoints; "" turns one off. Go-style ":8080" listens on every interface.
    std::string metricsAddr = ":8080";
    std::string healthAddr = ":8081";
    std::string webhookAddr = ":8082";
    std::string webhookSecret = "sluice-webhook";  // Secret name in the control namespace
    // Canary controller (Flagger's -metrics-server, -mesh-provider and -selector-labels).
    std::string metricsServer = "http://prometheus:9090";
    std::string meshProvider = "kubernetes";
    std::vector<std::string> selectorLabels;  // empty = app, name, app.kubernetes.io/name
    // Flagger's -slack-url, -slack-channel, -slack-user, -msteams-url: where Canaries without
    // spec.analysis.alerts send their alerts ("" = nowhere).
    std::string slackUrl, slackChannel, slackUser, msteamsUrl;
    // A fixed split between replicas (Argo CD's ARGOCD_CONTROLLER_REPLICAS): this replica
    // reconciles the Applications and Canaries of shard `shardIndex` of `shards`. --shard auto
    // takes the ordinal at the end of the Pod's name ($POD_NAME, else the host name), as a
    // StatefulSet numbers its Pods.
    int shards = 1;
    std::string shard = "0";
    int shardIndex = 0;  // resolved from shard
    // --sharding leases: every replica is active and they split the Applications and Canaries
    // among the live ones through Leases (leader::ShardCoordinator) in `shardSlots` slots.
    std::string sharding;  // "" or "leases"
    int shardSlots = 32;
    bool leaderElect = false;
    std::string leaderElectionId = "sluice-controller";  // Lease name (prefix when sharding)
    // client-go's --leader-elect-lease-duration, -renew-deadline and -retry-period; also the
    // sharding Leases'.
    std::chrono::milliseconds leaseDuration{15000}, renewDeadline{10000}, retryPeriod{2000};
    // Extra apiVersion/Kind pairs whose changes are logged (a debugging aid).
    std::vector<std::string> watch;
    bool showHelp = false;
    bool showVersion = false;
};

// Parses argv and the environment. Throws std::invalid_argument with a one-line message.
ControllerOptions parseOptions(int argc, char** argv);
std::string usage();

}  // namespace sluice
