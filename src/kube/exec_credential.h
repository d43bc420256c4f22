#pragma once
// Running client-go exec credential plugins (client.authentication.k8s.io ExecCredential).
#include <chrono>
#include <optional>
#include <string>

#include "sluice/kube/config.h"

namespace sluice::kube::detail {

inline constexpr const char* kExecApiV1 = "client.authentication.k8s.io/v1";
inline constexpr const char* kExecApiV1beta1 = "client.authentication.k8s.io/v1beta1";

// "" counts as v1beta1.
bool isSupportedExecApiVersion(const std::string& apiVersion);
std::string effectiveExecApiVersion(const std::string& apiVersion);

// RFC 3339 (Kubernetes metav1.Time): 2006-01-02T15:04:05Z, optional fraction, Z or +hh:mm.
std::optional<std::chrono::system_clock::time_point> parseRfc3339(const std::string& s);

// The KUBERNETES_EXEC_INFO value: {"apiVersion":...,"kind":"ExecCredential","spec":
// {"interactive":false[,"cluster":{...}]}}; cluster only with exec.provideClusterInfo.
std::string execInfo(const ExecConfig& exec, const ClusterConfig& cluster);

struct ExecCredentialResult {
    std::string token;
    std::optional<std::chrono::system_clock::time_point> expiry;  // none: valid until a 401
};

// Runs the plugin once (no shell, stdin /dev/null, its own process group killed after
// exec.timeout) and reads its ExecCredential. Throws TransportError whose message starts with
// `exec credential plugin "<command>": ` and never contains the plugin's stdout.
ExecCredentialResult runExecPlugin(const ExecConfig& exec, const ClusterConfig& cluster);

}  // namespace sluice::kube::detail
