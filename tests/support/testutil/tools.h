#pragma once
// The helm and kubectl the tests run: the copies CMake found (the pinned ones that
// scripts/install-deps.sh puts in .tools/bin first, then PATH), passed in as SLUICE_HELM_PATH
// and SLUICE_KUBECTL_PATH by sluice_add_test; a bare name (searched in PATH) without them.
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>

namespace sluice::testing {

namespace detail {
inline std::string toolOr(const char* configured, const char* name) {
    return configured && *configured ? configured : name;
}
}  // namespace detail

inline std::string helmPath() {
#ifdef SLUICE_HELM_PATH
    return detail::toolOr(SLUICE_HELM_PATH, "helm");
#else
    return "helm";
#endif
}

inline std::string kubectlPath() {
#ifdef SLUICE_KUBECTL_PATH
    return detail::toolOr(SLUICE_KUBECTL_PATH, "kubectl");
#else
    return "kubectl";
#endif
}

// Whether `program` can be run: an executable file when it names a path, else a name found in
// PATH (as execvp would find it).
inline bool isExecutable(const std::string& program) {
    if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0;
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "");
    for (std::string dir; std::getline(dirs, dir, ':');)
        if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
    return false;
}

}  // namespace sluice::testing
