#pragma once
// How to reach and authenticate to an API server: from a kubeconfig or from inside a Pod.
#include <chrono>
#include <filesystem>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace sluice::kube {

// A client-go exec credential plugin (kubeconfig users[].user.exec): a command printing an
// ExecCredential whose status.token is sent as the bearer token.
struct ExecConfig {
    struct EnvVar {
        std::string name;
        std::string value;
    };
    // Run without a shell. A path with a slash is used as is (the kubeconfig loader makes a
    // relative one absolute against the kubeconfig's directory); a bare name is looked up in
    // $PATH. Empty: no plugin.
    std::string command;
    std::vector<std::string> args;
    // Added to (or replacing in) the controller's own environment.
    std::vector<EnvVar> env;
    // client.authentication.k8s.io/v1 or /v1beta1; "" means v1beta1. The plugin must answer
    // with the same apiVersion.
    std::string apiVersion;
    std::string installHint;  // appended to "command not found" errors
    // Passes the cluster (server, tls-server-name, insecure-skip-tls-verify,
    // certificate-authority-data) in KUBERNETES_EXEC_INFO's spec.cluster, as client-go does.
    // The cluster's "client.authentication.k8s.io/exec" extension (spec.cluster.config) is
    // not read from kubeconfigs and never passed.
    bool provideClusterInfo = false;
    // Never, IfAvailable or Always ("" as IfAvailable). Recorded only: a controller has no
    // terminal, so the plugin always runs as with Never (spec.interactive false, stdin
    // /dev/null); a plugin that insists on a terminal fails and says so on stderr.
    std::string interactiveMode;
    // The plugin is killed (its whole process group) when it has not finished by then.
    std::chrono::milliseconds timeout{30000};

    bool enabled() const { return !command.empty(); }
};

// Builds an ExecConfig from an Argo CD cluster Secret's config.execProviderConfig:
// {"command": "...", "args": [...], "env": {"NAME": "value"}, "apiVersion": "...",
//  "installHint": "..."} (env is a map there, unlike a kubeconfig's list). Unknown fields are
// ignored, as Argo CD's JSON decoding does. Throws ConfigError naming the field on a wrong
// type, a missing command or an apiVersion other than client.authentication.k8s.io/v1 or
// /v1beta1 ("" = v1beta1).
ExecConfig execConfigFromArgo(const nlohmann::json& execProviderConfig);

struct ClusterConfig {
    std::string server;  // https://host:port (http:// accepted for tests)

    // TLS. PEM text, already read from files or decoded from *-data fields.
    std::string caPem;
    bool insecureSkipTlsVerify = false;
    std::string tlsServerName;  // overrides SNI / verification name
    std::string clientCertPem;
    std::string clientKeyPem;

    // Bearer auth: a fixed token, or a file re-read when it changes (rotated SA tokens).
    std::string token;
    std::string tokenFile;
    // Basic auth (kubeconfig username/password).
    std::string username;
    std::string password;
    // Exec credential plugin, used when neither token nor tokenFile is set (client-go: a
    // static token wins over the plugin).
    ExecConfig exec;
    // Impersonation (kubeconfig users[].user.as / as-groups, kubectl --as/--as-group): every
    // request carries Impersonate-User, and Impersonate-Group when a group is given. The API
    // server checks that the authenticated user may impersonate them (verb impersonate on
    // users, groups or serviceaccounts) and then authorizes the request as that user; for
    // "system:serviceaccount:<ns>:<name>" without groups it adds the service account's groups
    // (system:serviceaccounts, system:serviceaccounts:<ns>, system:authenticated) itself.
    // At most one group: the HTTP library sends one header per name.
    std::string impersonateUser;
    std::vector<std::string> impersonateGroups;

    // Client behaviour.
    double qps = 50.0;  // client-side rate limit; <= 0 disables it
    int burst = 100;
    // The qps limit applies only until the server shows that it runs API Priority and Fairness
    // (X-Kubernetes-PF-* response headers): from then on the server's own flow control paces
    // the client (429 + Retry-After, and maxInFlight adapting to it), as controller-runtime
    // and Flux do. False: qps applies always.
    bool qpsOnlyWithoutApf = false;
    // Requests in flight at once (watches not counted); more wait for a free slot. Each takes
    // its own HTTP/1.1 keep-alive connection, so this bounds the connections (and their TLS
    // state) a client keeps, as client-go's idle-connection limit does. The limit in force
    // halves when the server answers 429 and grows back by itself (AdaptiveConcurrency).
    // <= 0: unbounded.
    int maxInFlight = 64;
    std::chrono::milliseconds requestTimeout{30000};
    int maxRetries = 5;  // for 429, 5xx and connection failures
    std::chrono::milliseconds retryBaseDelay{200};
    std::chrono::milliseconds retryMaxDelay{10000};
    std::string userAgent = "sluice/0.1";

    // Where this came from, for error messages ("kubeconfig /root/.kube/config context kind").
    std::string source;

    // Namespace of the kubeconfig context (or the Pod's own); used for namespaced objects
    // given without one.
    std::string defaultNamespace = "default";
    // A watch stream that receives nothing, not even a bookmark (sent about every minute), for
    // this long is treated as dead and ends with TransportError.
    std::chrono::milliseconds watchIdleTimeout{150000};
};

// Loads a kubeconfig. path "" means $KUBECONFIG (colon-separated list, first value of each
// field wins, as kubectl does) or ~/.kube/config. context "" means current-context.
// Relative file paths in the kubeconfig are resolved against the kubeconfig's directory.
// Throws ConfigError with one line naming the file and the field at fault.
ClusterConfig loadKubeconfig(const std::string& path = "", const std::string& context = "");

// Pod service-account configuration: KUBERNETES_SERVICE_HOST/PORT, token and ca.crt under
// saDir (default /var/run/secrets/kubernetes.io/serviceaccount). Throws ConfigError.
ClusterConfig loadInCluster(
    const std::filesystem::path& saDir = "/var/run/secrets/kubernetes.io/serviceaccount");

// kubeconfig when a path is given or one exists; otherwise in-cluster. Throws ConfigError.
ClusterConfig loadDefaultConfig(const std::string& kubeconfigPath = "",
                                const std::string& context = "");

// Returns the bearer token to send now: token, or tokenFile's content re-read when the file's
// modification time changed (kubelet rotates projected tokens), or the exec plugin's token.
// Thread-safe.
class TokenSource {
  public:
    explicit TokenSource(ClusterConfig cfg);
    // With an exec plugin: runs it when no token is cached or the cached one's
    // status.expirationTimestamp has passed (no expiry: kept until invalidate()); concurrent
    // callers wait for that one run. Throws TransportError naming the command when the plugin
    // cannot be run, fails, times out or prints no usable ExecCredential.
    std::string token();
    // True when tokens come from the exec plugin (no token or tokenFile configured).
    bool usesExec() const { return usesExec_; }
    // The server answered 401 to `rejected`: forgets it, if it is still the cached token, so
    // that the next token() runs the plugin again (client-go does the same). Returns whether
    // a retry is worth it: true with an exec plugin (the next token() gives a fresh token or
    // the one a concurrent caller already got), false without one (nothing done).
    bool invalidate(const std::string& rejected);

  private:
    std::string fixed_;
    std::string file_;
    std::mutex mu_;
    std::string cached_;
    std::filesystem::file_time_type mtime_{};

    bool usesExec_ = false;
    ExecConfig exec_;
    ClusterConfig cluster_;  // for provideClusterInfo (server, CA, TLS name); no credentials
    std::optional<std::chrono::system_clock::time_point> expiry_;
};

}  // namespace sluice::kube
