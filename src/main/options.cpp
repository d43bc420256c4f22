#include "options.h"

#include "sluice/appengine/spec.h"
#include "sluice/router/providers.h"
#include "sluice/runtime/shard.h"

#include <cctype>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

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

std::vector<std::string> splitWords(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string word;
    while (in >> word) out.push_back(word);
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

std::chrono::milliseconds toDuration(const std::string& flag, const std::string& v) {
    auto d = appengine::parseDuration(v);
    if (!d || d->count() <= 0)
        throw std::invalid_argument("--" + flag + ": not a duration like 30s, 3m or 1h: '" + v +
                                    "'");
    return *d;
}

bool toBool(const std::string& flag, const std::string& v) {
    if (v == "true" || v == "1") return true;
    if (v == "false" || v == "0") return false;
    throw std::invalid_argument("--" + flag + ": want true or false, got '" + v + "'");
}

std::string toAddress(const std::string& flag, const std::string& v) {
    if (v == "0") return "";
    auto colon = v.rfind(':');
    bool digits = colon != std::string::npos && colon + 1 < v.size();
    for (size_t i = colon + 1; digits && i < v.size(); ++i)
        digits = std::isdigit(static_cast<unsigned char>(v[i]));
    if (!digits)
        throw std::invalid_argument("--" + flag +
                                    ": want [HOST]:PORT (or 0 to turn it off), got '" + v + "'");
    return v;
}

std::string envName(const std::string& flag) {
    std::string out = "SLUICE_";
    for (char c : flag) out += c == '-' ? '_' : static_cast<char>(std::toupper(c));
    return out;
}

using Setters = std::map<std::string, std::function<void(const std::string&)>>;

// Each flag's setter of `o`, by flag name: one table for the environment and the command line.
Setters flagSetters(ControllerOptions& o) {
    return {
        {"kubeconfig", [&](const std::string& v) { o.kubeconfig = v; }},
        {"context", [&](const std::string& v) { o.context = v; }},
        {"namespace", [&](const std::string& v) { o.ns = v; }},
        {"managed-namespaces", [&](const std::string& v) { o.managedNamespaces = splitList(v); }},
        {"cluster-resources",
         [&](const std::string& v) { o.clusterResources = toBool("cluster-resources", v); }},
        {"log-format", [&](const std::string& v) { o.logFormat = v; }},
        {"log-level", [&](const std::string& v) { o.logLevel = v; }},
        {"qps",
         [&](const std::string& v) {
             if (v == "auto")
                 o.qps.reset();
             else
                 o.qps = toDouble("qps", v);
         }},
        {"burst", [&](const std::string& v) { o.burst = toInt("burst", v); }},
        {"watch", [&](const std::string& v) { o.watch = splitList(v); }},
        {"control-namespace", [&](const std::string& v) { o.controlNamespace = v; }},
        {"repo-cache-dir", [&](const std::string& v) { o.repoCacheDir = v; }},
        {"reconcile-interval",
         [&](const std::string& v) { o.reconcileInterval = toDuration("reconcile-interval", v); }},
        {"sync-timeout",
         [&](const std::string& v) { o.syncTimeout = toDuration("sync-timeout", v); }},
        {"helm-path", [&](const std::string& v) { o.helmPath = v; }},
        {"kustomize-path", [&](const std::string& v) { o.kustomizePath = v; }},
        {"kubectl-path", [&](const std::string& v) { o.kubectlPath = v; }},
        {"kustomize-build-options",
         [&](const std::string& v) { o.kustomizeBuildOptions = splitWords(v); }},
        {"allow-remote-kustomize-bases",
         [&](const std::string& v) {
             o.allowRemoteKustomizeBases = toBool("allow-remote-kustomize-bases", v);
         }},
        {"allow-remote-value-files",
         [&](const std::string& v) {
             o.allowRemoteValueFiles = toBool("allow-remote-value-files", v);
         }},
        {"render-concurrency",
         [&](const std::string& v) {
             o.renderConcurrency = toInt("render-concurrency", v);
             if (o.renderConcurrency < 1)
                 throw std::invalid_argument("--render-concurrency: must be at least 1");
         }},
        {"render-timeout",
         [&](const std::string& v) { o.renderTimeout = toDuration("render-timeout", v); }},
        {"render-dir", [&](const std::string& v) { o.renderDir = v; }},
        {"plugin-configmap", [&](const std::string& v) { o.pluginConfigMap = v; }},
        {"notifications-configmap", [&](const std::string& v) { o.notificationsConfigMap = v; }},
        {"metrics-addr",
         [&](const std::string& v) { o.metricsAddr = toAddress("metrics-addr", v); }},
        {"health-addr", [&](const std::string& v) { o.healthAddr = toAddress("health-addr", v); }},
        {"webhook-addr",
         [&](const std::string& v) { o.webhookAddr = toAddress("webhook-addr", v); }},
        {"webhook-secret", [&](const std::string& v) { o.webhookSecret = v; }},
        {"metrics-server", [&](const std::string& v) { o.metricsServer = v; }},
        {"mesh-provider", [&](const std::string& v) { o.meshProvider = v; }},
        {"selector-labels", [&](const std::string& v) { o.selectorLabels = splitList(v); }},
        {"slack-url", [&](const std::string& v) { o.slackUrl = v; }},
        {"slack-channel", [&](const std::string& v) { o.slackChannel = v; }},
        {"slack-user", [&](const std::string& v) { o.slackUser = v; }},
        {"msteams-url", [&](const std::string& v) { o.msteamsUrl = v; }},
        {"shards", [&](const std::string& v) { o.shards = toInt("shards", v); }},
        {"shard", [&](const std::string& v) { o.shard = v; }},
        {"leader-elect", [&](const std::string& v) { o.leaderElect = toBool("leader-elect", v); }},
        {"sharding", [&](const std::string& v) { o.sharding = v; }},
        {"shard-slots", [&](const std::string& v) { o.shardSlots = toInt("shard-slots", v); }},
        {"leader-elect-lease-duration",
         [&](const std::string& v) {
             o.leaseDuration = toDuration("leader-elect-lease-duration", v);
         }},
        {"leader-elect-renew-deadline",
         [&](const std::string& v) {
             o.renewDeadline = toDuration("leader-elect-renew-deadline", v);
         }},
        {"leader-elect-retry-period",
         [&](const std::string& v) { o.retryPeriod = toDuration("leader-elect-retry-period", v); }},
        {"leader-election-id", [&](const std::string& v) { o.leaderElectionId = v; }},
        {"concurrency",
         [&](const std::string& v) {
             o.concurrency = toInt("concurrency", v);
             if (o.concurrency < 1)
                 throw std::invalid_argument("--concurrency: must be at least 1");
         }},
    };
}

// SLUICE_<FLAG> environment variables (and POD_NAMESPACE), read before the command line.
void readEnvironment(ControllerOptions& o, const Setters& setters) {
    if (const char* podNs = std::getenv("POD_NAMESPACE"); podNs && *podNs)
        o.controlNamespace = podNs;
    for (auto& [flag, set] : setters)
        if (const char* v = std::getenv(envName(flag).c_str()); v && *v) set(v);
}

// The command line: --flag value, --flag=value, bare boolean flags, --help and --version.
void readArguments(int argc, char** argv, ControllerOptions& o, const Setters& setters) {
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
        // Boolean flags stand alone (--leader-elect) or take =true/=false, as in Go.
        static const std::set<std::string> booleans = {
            "leader-elect", "allow-remote-kustomize-bases", "allow-remote-value-files",
            "cluster-resources"};
        if (!hasValue && booleans.count(name)) {
            hasValue = true;
            value = "true";
        }
        if (!hasValue) {
            if (i + 1 >= argc) throw std::invalid_argument("flag --" + name + " needs a value");
            value = argv[++i];
        }
        it->second(value);
    }
}

// What no single flag's setter can check.
// --shard as a number, or the Pod's ordinal for auto.
int resolveShard(const ControllerOptions& o) {
    if (o.shards < 1) throw std::invalid_argument("--shards: must be at least 1");
    std::optional<int> index;
    if (o.shard == "auto") {
        std::string pod;
        if (const char* name = std::getenv("POD_NAME"); name && *name) pod = name;
        if (pod.empty()) {
            char host[256] = {};
            if (gethostname(host, sizeof host - 1) == 0) pod = host;
        }
        index = runtime::ordinalOf(pod);
        if (!index)
            throw std::invalid_argument("--shard auto: '" + pod +
                                        "' does not end in a StatefulSet ordinal (-0, -1, ...)");
    } else {
        index = toInt("shard", o.shard);
    }
    if (*index < 0 || *index >= o.shards)
        throw std::invalid_argument("--shard: want 0.." + std::to_string(o.shards - 1) +
                                    " for --shards " + std::to_string(o.shards) + ", got " +
                                    std::to_string(*index));
    return *index;
}

// Leader election, sharding and their Lease timings.
void validateReplication(const ControllerOptions& o) {
    if (!o.sharding.empty() && o.sharding != "leases")
        throw std::invalid_argument("--sharding: want leases, got '" + o.sharding + "'");
    if (o.sharding == "leases" && (o.leaderElect || o.shards > 1))
        throw std::invalid_argument(
            "--sharding leases: every replica is active and the Leases split the work; it "
            "cannot be combined with --leader-elect or --shards");
    if (o.shardSlots < 1 || o.shardSlots > 1024)
        throw std::invalid_argument("--shard-slots: want 1..1024");
    if (o.renewDeadline >= o.leaseDuration)
        throw std::invalid_argument(
            "--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration");
    if (o.retryPeriod >= o.renewDeadline || o.retryPeriod.count() <= 0)
        throw std::invalid_argument(
            "--leader-elect-retry-period must be positive and shorter than "
            "--leader-elect-renew-deadline");
}

void validate(const ControllerOptions& o) {
    const router::ProviderEntry* provider = router::findProvider(o.meshProvider);
    if (!provider || !provider->makeRouter)
        throw std::invalid_argument("--mesh-provider: want one of " + router::routableProviders() +
                                    ", got '" + o.meshProvider + "'");
    if (o.logFormat != "text" && o.logFormat != "json")
        throw std::invalid_argument("--log-format: want text or json, got '" + o.logFormat + "'");
    for (const auto& w : o.watch)
        if (w.find('/') == std::string::npos)
            throw std::invalid_argument("--watch: '" + w + "' is not apiVersion/Kind");
    validateReplication(o);
}

}  // namespace

std::string usage() {
    return R"(Usage: sluice-controller [flags]

Flags (each also read from the environment as SLUICE_<NAME>, e.g. SLUICE_LOG_LEVEL):
  --kubeconfig PATH   kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, then in-cluster)
  --context NAME      kubeconfig context (default: current-context)
  --namespace NS      namespace whose Applications are watched (default: all namespaces)
  --managed-namespaces LIST
                      comma-separated namespaces Applications may deploy to; the kinds they
                      deploy are watched in these namespaces only, so RoleBindings there are
                      enough (a namespaced installation; default: all namespaces)
  --cluster-resources BOOL
                      whether Applications may manage cluster-scoped kinds (default: true,
                      false when --managed-namespaces is set)
  --control-namespace NS
                      the controller's own namespace: repository Secrets are read here
                      (default: $POD_NAMESPACE, else sluice)
  --repo-cache-dir DIR
                      where git repositories are cloned (default: /tmp/sluice/repositories)
  --reconcile-interval D
                      how often each Application's repository is fetched when nothing
                      else triggers it (default: 3m)
  --sync-timeout D    hard limit of one sync operation (default: 5m)
  --concurrency N     Applications reconciled in parallel (default: 4)
  --helm-path P       helm v3 binary that renders Helm sources (default: helm on PATH)
  --kustomize-path P  standalone kustomize binary (default: none, `kubectl kustomize` is run)
  --kubectl-path P    kubectl binary for `kubectl kustomize` (default: kubectl on PATH)
  --kustomize-build-options OPTS
                      extra `kustomize build` options, space-separated, e.g. "--enable-helm
                      --load-restrictor LoadRestrictionsNone" (Argo CD's kustomize.buildOptions)
  --allow-remote-kustomize-bases
                      let kustomizations reference remote bases (URLs; default: refused)
  --allow-remote-value-files
                      let helm.valueFiles name http(s) URLs (default: refused)
  --render-concurrency N
                      renders (helm, kustomize, plugins) running at once (default: 4)
  --render-timeout D  limit of one tool run (default: 90s, as Argo CD's exec timeout)
  --render-dir DIR    where source trees and pulled charts are kept (default: /tmp/sluice/sources)
  --plugin-configmap NAME
                      ConfigMap in the control namespace defining config management plugins,
                      one ConfigManagementPlugin per key (default: sluice-cmp)
  --notifications-configmap NAME
                      ConfigMap in the control namespace configuring the services of
                      Application notifications, in argocd-notifications-cm's format; its
                      Secret is NAME with -cm replaced by -secret
                      (default: sluice-notifications-cm)
  --metrics-addr A    where /metrics is served, [HOST]:PORT or 0 for off (default: :8080)
  --health-addr A     where /healthz and /readyz are served (default: :8081)
  --webhook-addr A    where git push webhooks are received at /api/webhook (default: :8082)
  --webhook-secret NAME
                      Secret in the control namespace holding the webhook secrets
                      (keys webhook.github.secret, webhook.gitlab.secret,
                      webhook.bitbucket.secret, webhook.gitea.secret; default: sluice-webhook)
  --metrics-server URL
                      Prometheus queried by Canary analysis when a metric names no
                      address (Flagger's -metrics-server; default: http://prometheus:9090)
  --mesh-provider P   router of Canaries without spec.provider: kubernetes, istio, nginx,
                      gatewayapi:v1 (Flagger's -mesh-provider; default: kubernetes)
  --selector-labels LIST
                      pod labels that identify a Canary target's pods, in order of preference
                      (default: app,name,app.kubernetes.io/name)
  --slack-url URL     Slack incoming webhook that Canaries without spec.analysis.alerts send
                      their alerts to (Flagger's -slack-url; default: none). The URL is a
                      secret: prefer SLUICE_SLACK_URL from a Secret to the command line
  --slack-channel C   channel of those alerts (Flagger's -slack-channel)
  --slack-user NAME   name they are posted as (Flagger's -slack-user; default: sluice)
  --msteams-url URL   Microsoft Teams webhook for the same alerts (Flagger's -msteams-url;
                      default: none; SLUICE_MSTEAMS_URL is the better place for it)
  --shards N          split the Applications and Canaries between N replicas, each run with
                      its own --shard (default: 1, no split)
  --shard I           this replica's shard, 0..N-1, or auto: the ordinal that ends the Pod's
                      name ($POD_NAME, else the host name), as in a StatefulSet (default: 0)
  --leader-elect      run as one of several replicas: only the holder of the Lease
                      <control-namespace>/sluice-controller reconciles (default: false); with
                      --shards the Lease is per shard (<id>-shard-<I>)
  --leader-election-id NAME
                      name of that Lease (default: sluice-controller); with --sharding, the
                      prefix of the sharding Leases' names
  --sharding leases   every replica is active: the live replicas split the Applications and
                      Canaries between them through Leases in the control namespace (a
                      membership Lease each, and --shard-slots slot Leases); a replica that
                      dies has its share taken over one lease duration after its last
                      renewal. Not with --leader-elect or --shards (default: off)
  --shard-slots N     slots the keys are hashed into with --sharding leases (default: 32)
  --leader-elect-lease-duration D
                      how long a Lease not renewed is still held (default: 15s)
  --leader-elect-renew-deadline D
                      how long the holder tries to renew before it stops writing (default: 10s)
  --leader-elect-retry-period D
                      between renewals and attempts (default: 2s)
  --log-format F      text or json (default: text)
  --log-level L       trace, debug, info, warn, error (default: info)
  --qps N             client-side request rate limit, requests per second, or auto: 50 until
                      the API server shows API Priority and Fairness, then off, the server's
                      429s pacing the client (default: auto; 0 = off)
  --burst N           client-side rate limit burst (default: 100)
  --watch LIST        comma-separated apiVersion/Kind whose changes are logged
                      (a debugging aid; default: none)
  --version           print the version and exit
  -h, --help          print this help and exit
)";
}

ControllerOptions parseOptions(int argc, char** argv) {
    ControllerOptions o;
    const Setters setters = flagSetters(o);
    readEnvironment(o, setters);
    readArguments(argc, argv, o, setters);
    validate(o);
    o.shardIndex = resolveShard(o);
    return o;
}

}  // namespace sluice
