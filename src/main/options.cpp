#include "options.h"

#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>

namespace sluice {
namespace {

std::vector<std::string> splitList(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ','))
        if (!item.empty()) out.push_back(item);
    return out;
}

double toDouble(const std::string& flag, const std::string& v) {
    try {
        size_t used = 0;
        double d = std::stod(v, &used);
        if (used == v.size()) return d;
    } catch (const std::exception&) {
    }
    throw std::invalid_argument("--" + flag + ": not a number: '" + v + "'");
}

int toInt(const std::string& flag, const std::string& v) {
    double d = toDouble(flag, v);
    if (d != static_cast<int>(d) || d < 0)
        throw std::invalid_argument("--" + flag + ": not a non-negative integer: '" + v + "'");
    return static_cast<int>(d);
}

std::string envName(const std::string& flag) {
    std::string out = "SLUICE_";
    for (char c : flag) out += c == '-' ? '_' : static_cast<char>(std::toupper(c));
    return out;
}

}  // namespace

std::string usage() {
    return R"(Usage: sluice-controller [flags]

Flags (each also read from the environment as SLUICE_<NAME>, e.g. SLUICE_LOG_LEVEL):
  --kubeconfig PATH   kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, then in-cluster)
  --context NAME      kubeconfig context (default: current-context)
  --namespace NS      namespace to watch (default: all namespaces)
  --log-format F      text or json (default: text)
  --log-level L       trace, debug, info, warn, error (default: info)
  --qps N             client-side request rate limit, requests per second (default: 50; 0 = off)
  --burst N           client-side rate limit burst (default: 100)
  --watch LIST        comma-separated apiVersion/Kind to cache
                      (default: v1/Namespace,apps/v1/Deployment,v1/Service,v1/ConfigMap)
  --version           print the version and exit
  -h, --help          print this help and exit
)";
}

ControllerOptions parseOptions(int argc, char** argv) {
    ControllerOptions o;
    std::map<std::string, std::function<void(const std::string&)>> setters = {
        {"kubeconfig", [&](const std::string& v) { o.kubeconfig = v; }},
        {"context", [&](const std::string& v) { o.context = v; }},
        {"namespace", [&](const std::string& v) { o.ns = v; }},
        {"log-format", [&](const std::string& v) { o.logFormat = v; }},
        {"log-level", [&](const std::string& v) { o.logLevel = v; }},
        {"qps", [&](const std::string& v) { o.qps = toDouble("qps", v); }},
        {"burst", [&](const std::string& v) { o.burst = toInt("burst", v); }},
        {"watch", [&](const std::string& v) { o.watch = splitList(v); }},
    };
    for (auto& [flag, set] : setters)
        if (const char* v = std::getenv(envName(flag).c_str()); v && *v) set(v);

    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            o.showHelp = true;
            continue;
        }
        if (arg == "--version") {
            o.showVersion = true;
            continue;
        }
        if (arg.rfind("--", 0) != 0)
            throw std::invalid_argument("unexpected argument '" + arg + "'");
        std::string name = arg.substr(2), value;
        auto eq = name.find('=');
        bool hasValue = eq != std::string::npos;
        if (hasValue) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        auto it = setters.find(name);
        if (it == setters.end()) throw std::invalid_argument("unknown flag --" + name);
        if (!hasValue) {
            if (i + 1 >= argc) throw std::invalid_argument("flag --" + name + " needs a value");
            value = argv[++i];
        }
        it->second(value);
    }
    if (o.logFormat != "text" && o.logFormat != "json")
        throw std::invalid_argument("--log-format: want text or json, got '" + o.logFormat + "'");
    for (const auto& w : o.watch)
        if (w.find('/') == std::string::npos)
            throw std::invalid_argument("--watch: '" + w + "' is not apiVersion/Kind");
    return o;
}

}  // namespace sluice
