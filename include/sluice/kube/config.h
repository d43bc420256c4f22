#pragma once
// How to reach and authenticate to an API server: from a kubeconfig or from inside a Pod.
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>

namespace sluice::kube {

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
// modification time changed (kubelet rotates projected tokens). Thread-safe.
class TokenSource {
  public:
    explicit TokenSource(ClusterConfig cfg);
    std::string token();

  private:
    std::string fixed_;
    std::string file_;
    std::mutex mu_;
    std::string cached_;
    std::filesystem::file_time_type mtime_{};
};

}  // namespace sluice::kube
