#pragma once
// Command-line flags of sluice-controller. Every flag has an environment equivalent
// (SLUICE_<FLAG_IN_CAPITALS>); a flag given on the command line wins.
#include <string>
#include <vector>

namespace sluice {

struct ControllerOptions {
    std::string kubeconfig;  // "" = $KUBECONFIG, ~/.kube/config, then in-cluster
    std::string context;
    std::string ns;  // watch scope; "" = all namespaces
    std::string logFormat = "text";
    std::string logLevel = "info";
    double qps = 50;
    int burst = 100;
    // apiVersion/Kind pairs whose caches the controller keeps.
    std::vector<std::string> watch = {"v1/Namespace", "apps/v1/Deployment", "v1/Service",
                                      "v1/ConfigMap"};
    bool showHelp = false;
    bool showVersion = false;
};

// Parses argv and the environment. Throws std::invalid_argument with a one-line message.
ControllerOptions parseOptions(int argc, char** argv);
std::string usage();

}  // namespace sluice
