#pragma once
// The Canary custom resource (Flagger's flagger.app/v1beta1 Canary served as
// sluice.io/v1alpha1): typed spec and status, parsed from and written to JSON.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/canaryengine/time_format.h"

namespace sluice::canaryengine {

enum class WebhookType {
    ConfirmRollout,
    PreRollout,
    Rollout,
    ConfirmTrafficIncrease,
    ConfirmPromotion,
    PostRollout,
    Rollback,
    Event,
};
std::string_view toString(WebhookType type);
// Flagger treats a missing or empty type as "rollout".
std::optional<WebhookType> parseWebhookType(std::string_view text);
// Gates hold the canary until every hook of the type answers with success.
bool isGate(WebhookType type);

struct ObjectRef {
    std::string apiVersion;
    std::string kind;
    std::string name;
};

// spec.autoscalerRef: a HorizontalPodAutoscaler or KEDA ScaledObject scaling the target, which
// the controller copies as `<name>-primary` for the primary.
struct AutoscalerRef : ObjectRef {
    // primaryScalerReplicas: the copy's min/max replicas instead of the target's.
    std::optional<int> primaryMinReplicas;
    std::optional<int> primaryMaxReplicas;
    // primaryScalerQueries (KEDA): trigger name -> the query of that trigger in the copy.
    std::map<std::string, std::string> primaryScalerQueries;
    bool isScaledObject() const { return kind == "ScaledObject"; }
    std::string primaryName() const { return name + "-primary"; }
};

// A Gateway API ParentReference (service.gatewayRefs). Fields left out are left out of the
// HTTPRoute too (the API server defaults them).
struct GatewayRef {
    std::optional<std::string> group;  // "" is the core group
    std::optional<std::string> kind;
    std::string name;
    std::string namespaceName;
    std::string sectionName;
    std::optional<int> port;
};

// Flagger's HTTPRewrite (service.rewrite).
struct Rewrite {
    std::string uri;
    std::string authority;
    std::string type;  // Gateway API: "ReplaceFullPath", else a prefix rewrite
};

// Flagger's CustomMetadata: labels and annotations for a generated object.
struct CustomMetadata {
    std::map<std::string, std::string> labels;
    std::map<std::string, std::string> annotations;
};

struct ServiceSpec {
    std::string name;  // the apex Service's name; "" means targetRef.name
    int port = 0;
    nlohmann::json targetPort;  // int or named port, as in Kubernetes (IntOrString)
    std::string portName;
    std::string appProtocol;
    bool portDiscovery = false;  // Istio: destinations name the port (behind a gateway)
    std::string timeout;         // request timeout, as written (e.g. "15s")
    std::vector<std::string> gateways;
    std::vector<std::string> hosts;
    std::vector<GatewayRef> gatewayRefs;
    std::vector<std::string> backends;  // App Mesh: the VirtualNodes' backends, as written
    nlohmann::json match = nlohmann::json::array();  // Istio HTTPMatchRequests (a list)
    Rewrite rewrite;
    // Istio objects the routers copy as written (null when absent).
    nlohmann::json headers;        // Flagger's HeaderOperations (also for Gateway API)
    nlohmann::json retries;        // Istio HTTPRetry
    nlohmann::json corsPolicy;     // Istio CorsPolicy
    nlohmann::json trafficPolicy;  // Istio TrafficPolicy of the DestinationRules
    CustomMetadata apex;
    CustomMetadata primary;
    CustomMetadata canary;
};

struct ThresholdRange {
    std::optional<double> min;
    std::optional<double> max;
};

struct TemplateRef {
    std::string name;
    std::string namespaceName;
};

struct MetricSpec {
    std::string name;
    std::optional<TemplateRef> templateRef;
    ThresholdRange thresholdRange;
    // The query's window; parseCanarySpec defaults it to the analysis interval.
    Duration interval{std::chrono::minutes(1)};
    std::string query;
    // Values of {{ variables.KEY }} (a value written as another JSON type is its JSON text).
    std::map<std::string, std::string> templateVariables;
};

struct WebhookSpec {
    std::string name;
    WebhookType type = WebhookType::Rollout;
    std::string url;
    Duration timeout{std::chrono::seconds(10)};
    nlohmann::json metadata;
    // Sluice extension for gates: once the gate has been closed this long, roll back.
    std::optional<Duration> maxWait;
    // Flagger's muteAlert: a closed gate of this hook sends no "waiting for approval" alert.
    bool muteAlert = false;
};

// Flagger's alert severities. An alert subscribed at `warn` gets warn and error messages, one
// at `info` gets everything.
enum class AlertSeverity { Info, Warn, Error };
std::string_view toString(AlertSeverity severity);  // "info", "warn", "error"

// spec.analysis.alerts[]: an AlertProvider to notify, and from which severity on.
struct AlertSpec {
    std::string name;
    AlertSeverity severity = AlertSeverity::Info;
    std::string providerName;
    std::string providerNamespace;  // "" = the Canary's
};

// The cookies session affinity routes by, "name=value" each ("" when none). Not spec: the
// controller keeps the canary's and the previous one in the Canary status (Flagger's
// sessionAffinityCookie and previousSessionAffinityCookie) and fills them in before routing.
struct SessionAffinityCookies {
    std::string canary;    // set on responses from the canary; routes to the canary
    std::string previous;  // the last analysis' canary cookie, expired once traffic is back
    std::string primary;   // primaryCookieName's: set on responses from the primary
    bool operator==(const SessionAffinityCookies&) const = default;
};

// Flagger's analysis.sessionAffinity: a user the weighted route sends to the canary gets a
// cookie that keeps sending them there until the analysis ends (Istio, Gateway API).
struct SessionAffinitySpec {
    std::string cookieName;         // required
    int maxAge = 86400;             // the canary cookie's Max-Age in seconds (Flagger's default)
    std::string primaryCookieName;  // optional: users served by the primary stay there
    SessionAffinityCookies cookies;
};

// The cookies after routing `canaryWeight` percent to the canary, as Flagger's routers move
// them: while the canary gets traffic it keeps one canary cookie (a new one when it has none)
// and gets a new primary cookie (with primaryCookieName) each time the weights are set; back
// at 0 the canary cookie becomes the previous one. `random` makes cookie values.
SessionAffinityCookies nextSessionAffinityCookies(const SessionAffinitySpec& affinity,
                                                  int canaryWeight,
                                                  const std::function<std::string()>& random);
// Ten random ASCII letters, as Flagger's cookie values.
std::string randomCookieValue();

struct AnalysisSpec {
    Duration interval{std::chrono::seconds(60)};
    int threshold = 1;
    std::optional<int> maxWeight;
    int stepWeight = 0;
    std::vector<int> stepWeights;
    int stepWeightPromotion = 0;
    int iterations = 0;
    // Traffic mirroring (Istio, Gateway API): the canary gets a copy of the primary's requests
    // (mirrorWeight percent of them when set) during blue-green iterations, or for one step
    // before the first weight of a progressive canary; the primary's answers are the ones sent.
    bool mirror = false;
    std::optional<int> mirrorWeight;  // percentage of mirrored requests
    // A/B testing: Istio HTTPMatchRequests selecting the requests sent to the canary.
    nlohmann::json match = nlohmann::json::array();
    std::optional<SessionAffinitySpec> sessionAffinity;
    std::vector<MetricSpec> metrics;
    std::vector<WebhookSpec> webhooks;
    std::vector<AlertSpec> alerts;
    // Flagger's primaryReadyThreshold / canaryReadyThreshold: the percentage of a workload's
    // replicas that must be ready for it to count as ready (0-100).
    int primaryReadyThreshold = 100;
    int canaryReadyThreshold = 100;
};

enum class Strategy {
    Canary,     // progressive traffic shifting (stepWeight or stepWeights)
    BlueGreen,  // fixed number of iterations at weight 0, then a full switch
};

struct CanarySpec {
    std::string provider;
    std::string metricsServer;  // Prometheus for built-in metrics; "" means the controller's
    ObjectRef targetRef;
    std::optional<AutoscalerRef> autoscalerRef;
    ObjectRef ingressRef;  // the Ingress to canary (nginx); empty when absent
    ObjectRef routeRef;    // the ApisixRoute to canary (apisix); empty when absent
    int progressDeadlineSeconds = 600;
    bool skipAnalysis = false;
    // Flagger's suspend: the Canary is not advanced (see step()).
    bool suspend = false;
    // Flagger's revertOnDeletion: deleting the Canary restores the target as the workload that
    // serves (the controller keeps a finalizer on the Canary for it).
    bool revertOnDeletion = false;
    ServiceSpec service;
    AnalysisSpec analysis;

    Strategy strategy() const;
    // A/B testing: iterations with analysis.match. Requests that match go to the canary for
    // the iterations, the others stay on the primary.
    bool abTesting() const;
    // Mirroring applies (analysis.mirror without A/B testing, which ignores it as Flagger does).
    bool mirrors() const;
    // The last stepWeights entry, else maxWeight, else 100.
    int maxWeight() const;
    // The canary weight after one more successful step from `current` (capped at maxWeight).
    int nextWeight(int current) const;
    std::vector<const WebhookSpec*> webhooksOfType(WebhookType type) const;
    bool hasWebhooks(WebhookType type) const;
    std::chrono::seconds progressDeadline() const {
        return std::chrono::seconds(progressDeadlineSeconds);
    }
    std::string primaryName() const { return targetRef.name + "-primary"; }
    // Flagger's apex Service: service.name, else targetRef.name.
    std::string apexServiceName() const {
        return service.name.empty() ? targetRef.name : service.name;
    }
};

struct SpecParseResult {
    CanarySpec spec;
    std::vector<std::string> errors;  // human-readable, prefixed with the field path
    bool ok() const { return errors.empty(); }
};
// Never throws: malformed input yields errors. Unknown fields are ignored.
SpecParseResult parseCanarySpec(const nlohmann::json& spec);

// The Canary fields this version accepts without acting on them, as paths from the object
// ("spec.autoscalerRef", "spec.analysis.webhooks.retries"): exactly the rows docs/crds.md marks
// "not implemented" or "no effect" (a test holds the two together).
const std::vector<std::string>& fieldsWithoutEffect();
// Those a spec sets to something that would change Flagger's behaviour (true, a number other
// than the default, a non-empty object or list), in fieldsWithoutEffect() order. The
// controller says so in a FieldsNotImplemented Event. `canaryAnalysis` counts as `analysis`.
std::vector<std::string> unimplementedFieldsIn(const nlohmann::json& spec);

enum class Phase {
    None,  // no status yet
    Initializing,
    Initialized,
    Waiting,
    Progressing,
    WaitingPromotion,
    Promoting,
    Finalising,
    Succeeded,
    Failed,
};
std::string_view toString(Phase phase);
std::optional<Phase> parsePhase(std::string_view text);  // "" -> Phase::None

struct Condition {
    std::string type;
    std::string status;  // "True", "False", "Unknown"
    std::string reason;
    std::string message;
    std::optional<Time> lastUpdateTime;
    std::optional<Time> lastTransitionTime;
    bool operator==(const Condition&) const = default;
};

inline constexpr std::string_view kPromotedCondition = "Promoted";

// Everything the engine decides from lives here, so a restarted controller carries on exactly
// where the previous one stopped. Times are stored with second precision.
struct CanaryStatus {
    // Flagger's fields.
    Phase phase = Phase::None;
    int failedChecks = 0;
    int canaryWeight = 0;
    int iterations = 0;            // successful analysis iterations of the current revision
    std::string lastAppliedSpec;   // target pod-template hash under (or last under) analysis
    std::string lastPromotedSpec;  // target pod-template hash the primary was promoted to
    std::optional<Time> lastTransitionTime;
    std::vector<Condition> conditions;

    // Sluice's fields.
    std::optional<Time> lastAnalysisTime;          // last completed analysis iteration (pacing)
    std::optional<Time> noDataSince;               // metrics without data since (reset by data)
    std::string noDataReason;                      // why the last metric query gave no data
    std::map<WebhookType, Time> gateWaitingSince;  // gate first seen closed (for maxWait)
    std::optional<Time> targetUnreadySince;        // canary scaled up / seen not ready since
    std::optional<Time> primaryUnreadySince;       // primary initialising / promoting since
    bool preRolloutPassed = false;                 // pre-rollout hooks passed for this revision
    // A failure left the target up and serving because the primary was not ready; traffic is
    // moved back and the target scaled down once the primary is ready.
    bool targetKeptServing = false;
    // A manual promote request (its time) being carried out: the rest of the analysis and the
    // gates are skipped, the promotion starts once the canary and the primary are ready.
    std::optional<Time> manualPromotionRequested;

    const Condition* condition(std::string_view type) const;
    bool operator==(const CanaryStatus&) const = default;
};

struct StatusParseResult {
    CanaryStatus status;
    std::vector<std::string> errors;
};
// Never throws; unreadable fields are reported and left at their defaults.
StatusParseResult parseCanaryStatus(const nlohmann::json& status);
nlohmann::json toJson(const CanaryStatus& status);

// A whole Canary object (metadata, spec, status).
struct Canary {
    std::string name;
    std::string namespaceName;
    CanarySpec spec;
    CanaryStatus status;
    std::vector<std::string> errors;  // spec and status errors together
};
Canary parseCanary(const nlohmann::json& object);

}  // namespace sluice::canaryengine
