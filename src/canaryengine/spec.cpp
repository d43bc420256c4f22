#include "sluice/canaryengine/spec.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "sluice/util/json_reader.h"

namespace sluice::canaryengine {

using nlohmann::json;

namespace {

constexpr std::pair<WebhookType, std::string_view> kWebhookTypeNames[] = {
    {WebhookType::ConfirmRollout, "confirm-rollout"},
    {WebhookType::PreRollout, "pre-rollout"},
    {WebhookType::Rollout, "rollout"},
    {WebhookType::ConfirmTrafficIncrease, "confirm-traffic-increase"},
    {WebhookType::ConfirmPromotion, "confirm-promotion"},
    {WebhookType::PostRollout, "post-rollout"},
    {WebhookType::Rollback, "rollback"},
    {WebhookType::Event, "event"},
};

constexpr std::pair<Phase, std::string_view> kPhaseNames[] = {
    {Phase::None, ""},
    {Phase::Initializing, "Initializing"},
    {Phase::Initialized, "Initialized"},
    {Phase::Waiting, "Waiting"},
    {Phase::Progressing, "Progressing"},
    {Phase::WaitingPromotion, "WaitingPromotion"},
    {Phase::Promoting, "Promoting"},
    {Phase::Finalising, "Finalising"},
    {Phase::Succeeded, "Succeeded"},
    {Phase::Failed, "Failed"},
};

using Reader = util::JsonReader;

std::optional<Duration> readDuration(const Reader& reader, std::string_view key) {
    auto text = reader.string(key);
    if (!text) return std::nullopt;
    auto parsed = parseGoDuration(*text);
    if (!parsed) {
        reader.error(key, "invalid duration \"" + *text + "\" (expected e.g. 30s, 1m, 1m30s)");
    }
    return parsed;
}

std::optional<Time> readTimestamp(const Reader& reader, std::string_view key) {
    auto text = reader.string(key);
    if (!text) return std::nullopt;
    auto parsed = parseTimestamp(*text);
    if (!parsed) reader.error(key, "invalid RFC 3339 timestamp \"" + *text + "\"");
    return parsed;
}

// Flagger's string lists (hosts, gateways).
std::vector<std::string> readStrings(const Reader& reader, std::string_view key) {
    return reader.strings(key, "must be a list of strings");
}

ObjectRef readObjectRef(const Reader& reader, bool required) {
    ObjectRef ref;
    ref.apiVersion = reader.string("apiVersion").value_or("");
    ref.kind = reader.string("kind").value_or("");
    ref.name = reader.string("name").value_or("");
    if (required && ref.name.empty()) reader.error("name", "is required");
    if (required && ref.kind.empty()) reader.error("kind", "is required");
    return ref;
}

// The autoscalers the controller knows how to copy for the primary (Flagger's HPA and KEDA
// reconcilers).
AutoscalerRef readAutoscalerRef(const Reader& reader) {
    AutoscalerRef ref;
    static_cast<ObjectRef&>(ref) = readObjectRef(reader, true);
    if (!ref.kind.empty() && ref.kind != "HorizontalPodAutoscaler" && ref.kind != "ScaledObject")
        reader.error("kind", "must be HorizontalPodAutoscaler or ScaledObject, not " + ref.kind);
    if (auto replicas = reader.child("primaryScalerReplicas")) {
        ref.primaryMinReplicas = replicas->boundedInt("minReplicas", 0, 1'000'000);
        ref.primaryMaxReplicas = replicas->boundedInt("maxReplicas", 1, 1'000'000);
        if (ref.primaryMinReplicas && ref.primaryMaxReplicas &&
            *ref.primaryMinReplicas > *ref.primaryMaxReplicas)
            replicas->error("minReplicas", "must not exceed maxReplicas");
    }
    ref.primaryScalerQueries = reader.stringMap("primaryScalerQueries");
    return ref;
}

GatewayRef readGatewayRef(const Reader& reader) {
    GatewayRef gateway;
    gateway.group = reader.string("group");
    gateway.kind = reader.string("kind");
    gateway.name = reader.string("name").value_or("");
    gateway.namespaceName = reader.string("namespace").value_or("");
    gateway.sectionName = reader.string("sectionName").value_or("");
    gateway.port = reader.boundedInt("port", 1, 65535);
    if (gateway.name.empty()) reader.error("name", "is required");
    return gateway;
}

CustomMetadata readCustomMetadata(const Reader& reader, std::string_view key) {
    CustomMetadata metadata;
    if (auto custom = reader.child(key)) {
        metadata.labels = custom->stringMap("labels");
        metadata.annotations = custom->stringMap("annotations");
    }
    return metadata;
}

// A list of Istio HTTPMatchRequests, kept as written (an empty list when absent).
json readMatches(const Reader& reader, std::string_view key) {
    // objects() reports a field that is not a list of objects.
    if (reader.objects(key).empty()) return json::array();
    return *reader.field(key);
}

// An object the routers copy as written (null when absent).
json readVerbatim(const Reader& reader, std::string_view key) {
    const json* value = reader.object(key);
    return value ? *value : json();
}

void readPort(const Reader& reader, ServiceSpec& service) {
    if (auto port = reader.boundedInt("port", 1, 65535)) {
        service.port = *port;
    } else if (reader.field("port") == nullptr) {
        reader.error("port", "is required");
    }
    if (const json* targetPort = reader.field("targetPort")) {
        if (targetPort->is_number_integer() || targetPort->is_string()) {
            service.targetPort = *targetPort;
        } else {
            reader.error("targetPort", "must be a port number or name");
        }
    }
    service.portName = reader.string("portName").value_or("");
    service.appProtocol = reader.string("appProtocol").value_or("");
}

// The routes' options: how requests are matched, rewritten and retried.
void readRouting(const Reader& reader, ServiceSpec& service) {
    service.portDiscovery = reader.boolean("portDiscovery").value_or(false);
    service.timeout = reader.string("timeout").value_or("");
    service.gateways = readStrings(reader, "gateways");
    service.hosts = readStrings(reader, "hosts");
    for (const Reader& ref : reader.objects("gatewayRefs")) {
        service.gatewayRefs.push_back(readGatewayRef(ref));
    }
    service.backends = readStrings(reader, "backends");
    service.match = readMatches(reader, "match");
    if (auto rewrite = reader.child("rewrite")) {
        service.rewrite.uri = rewrite->string("uri").value_or("");
        service.rewrite.authority = rewrite->string("authority").value_or("");
        service.rewrite.type = rewrite->string("type").value_or("");
    }
    if (const json* headers = reader.field("headers")) service.headers = *headers;
    service.retries = readVerbatim(reader, "retries");
    service.corsPolicy = readVerbatim(reader, "corsPolicy");
    service.trafficPolicy = readVerbatim(reader, "trafficPolicy");
}

ServiceSpec readService(const Reader& reader) {
    ServiceSpec service;
    service.name = reader.string("name").value_or("");
    readPort(reader, service);
    readRouting(reader, service);
    service.apex = readCustomMetadata(reader, "apex");
    service.primary = readCustomMetadata(reader, "primary");
    service.canary = readCustomMetadata(reader, "canary");
    return service;
}

// A metric without an interval measures over the analysis interval.
MetricSpec readMetric(const Reader& reader, Duration analysisInterval) {
    MetricSpec metric;
    metric.name = reader.string("name").value_or("");
    if (metric.name.empty()) reader.error("name", "is required");
    if (auto ref = reader.child("templateRef")) {
        TemplateRef templateRef;
        templateRef.name = ref->string("name").value_or("");
        templateRef.namespaceName = ref->string("namespace").value_or("");
        if (templateRef.name.empty()) ref->error("name", "is required");
        metric.templateRef = templateRef;
    }
    if (auto range = reader.child("thresholdRange")) {
        metric.thresholdRange.min = range->number("min");
        metric.thresholdRange.max = range->number("max");
    } else if (auto threshold = reader.number("threshold")) {
        // Flagger's older single threshold: a minimum for the success rate, a maximum for the
        // request duration and for every other query (thresholdRange wins when both are set).
        if (metric.name == "request-success-rate") {
            metric.thresholdRange.min = threshold;
        } else {
            metric.thresholdRange.max = threshold;
        }
    }
    if (!metric.thresholdRange.min && !metric.thresholdRange.max) {
        reader.error("thresholdRange", "needs min and/or max");
    } else if (metric.thresholdRange.min && metric.thresholdRange.max &&
               *metric.thresholdRange.min > *metric.thresholdRange.max) {
        reader.error("thresholdRange", "min is greater than max");
    }
    metric.interval = readDuration(reader, "interval").value_or(analysisInterval);
    metric.query = reader.string("query").value_or("");
    if (const json* variables = reader.object("templateVariables")) {
        for (const auto& [key, value] : variables->items()) {
            metric.templateVariables[key] =
                value.is_string() ? value.get<std::string>() : value.dump();
        }
    }
    return metric;
}

WebhookSpec readWebhook(const Reader& reader) {
    WebhookSpec hook;
    hook.name = reader.string("name").value_or("");
    if (hook.name.empty()) reader.error("name", "is required");
    std::string typeName = reader.string("type").value_or("");
    if (auto type = parseWebhookType(typeName)) {
        hook.type = *type;
    } else {
        reader.error("type", "unknown webhook type \"" + typeName + "\"");
    }
    hook.url = reader.string("url").value_or("");
    if (hook.url.empty()) reader.error("url", "is required");
    if (auto timeout = readDuration(reader, "timeout")) hook.timeout = *timeout;
    if (const json* metadata = reader.field("metadata")) hook.metadata = *metadata;
    hook.maxWait = readDuration(reader, "maxWait");
    if (hook.maxWait && !isGate(hook.type)) {
        reader.error("maxWait", "only applies to confirm-* gates, not to " +
                                    std::string(toString(hook.type)) + " webhooks");
    }
    hook.muteAlert = reader.boolean("muteAlert").value_or(false);
    return hook;
}

AlertSpec readAlert(const Reader& reader) {
    AlertSpec alert;
    alert.name = reader.string("name").value_or("");
    if (alert.name.empty()) reader.error("name", "is required");
    // Flagger reads an empty severity as info.
    const std::string severity = reader.string("severity").value_or("");
    if (severity == "warn") {
        alert.severity = AlertSeverity::Warn;
    } else if (severity == "error") {
        alert.severity = AlertSeverity::Error;
    } else if (!severity.empty() && severity != "info") {
        reader.error("severity", "must be info, warn or error, not \"" + severity + "\"");
    }
    if (auto ref = reader.child("providerRef")) {
        alert.providerName = ref->string("name").value_or("");
        alert.providerNamespace = ref->string("namespace").value_or("");
    }
    if (alert.providerName.empty()) reader.error("providerRef.name", "is required");
    return alert;
}

// Increasing percentages between 1 and 100.
std::vector<int> readStepWeights(const Reader& reader) {
    std::vector<int> weights;
    const json* steps = reader.field("stepWeights");
    if (steps == nullptr) return weights;
    if (!steps->is_array()) {
        reader.error("stepWeights", "must be a list of integers");
        return weights;
    }
    for (size_t i = 0; i < steps->size(); ++i) {
        const json& step = (*steps)[i];
        std::string path = "stepWeights[" + std::to_string(i) + "]";
        if (!step.is_number_integer() || step.get<long long>() < 1 || step.get<long long>() > 100) {
            reader.error(path, "must be an integer between 1 and 100");
            continue;
        }
        int weight = step.get<int>();
        if (!weights.empty() && weight <= weights.back()) {
            reader.error(path, "must be greater than the previous step");
            continue;
        }
        weights.push_back(weight);
    }
    return weights;
}

// The metrics and webhooks, each name used once.
void readChecks(const Reader& reader, AnalysisSpec& analysis) {
    std::set<std::string> names;
    for (const Reader& metricReader : reader.objects("metrics")) {
        MetricSpec metric = readMetric(metricReader, analysis.interval);
        if (!metric.name.empty() && !names.insert(metric.name).second) {
            metricReader.error("name", "duplicate metric \"" + metric.name + "\"");
        }
        analysis.metrics.push_back(std::move(metric));
    }
    names.clear();
    for (const Reader& hookReader : reader.objects("webhooks")) {
        WebhookSpec hook = readWebhook(hookReader);
        if (!hook.name.empty() && !names.insert(hook.name).second) {
            hookReader.error("name", "duplicate webhook \"" + hook.name + "\"");
        }
        analysis.webhooks.push_back(std::move(hook));
    }
    for (const Reader& alertReader : reader.objects("alerts"))
        analysis.alerts.push_back(readAlert(alertReader));
}

// A cookie name as RFC 6265 allows it (a token): what goes into Set-Cookie verbatim.
bool isCookieName(const std::string& name) {
    static const std::string_view kSeparators = "()<>@,;:\\\"/[]?={} \t";
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
        return ch > 32 && ch < 127 && kSeparators.find(ch) == std::string_view::npos;
    });
}

SessionAffinitySpec readSessionAffinity(const Reader& reader) {
    SessionAffinitySpec affinity;
    affinity.cookieName = reader.string("cookieName").value_or("");
    if (affinity.cookieName.empty()) {
        reader.error("cookieName", "is required");
    } else if (!isCookieName(affinity.cookieName)) {
        reader.error("cookieName", "\"" + affinity.cookieName + "\" is not a cookie name");
    }
    // Flagger: 0 (or absent) means a day.
    affinity.maxAge = reader.boundedInt("maxAge", 0, 2'147'483'647).value_or(0);
    if (affinity.maxAge == 0) affinity.maxAge = 86400;
    affinity.primaryCookieName = reader.string("primaryCookieName").value_or("");
    if (!affinity.primaryCookieName.empty()) {
        if (!isCookieName(affinity.primaryCookieName)) {
            reader.error("primaryCookieName",
                         "\"" + affinity.primaryCookieName + "\" is not a cookie name");
        } else if (affinity.primaryCookieName == affinity.cookieName) {
            reader.error("primaryCookieName", "must differ from cookieName");
        }
    }
    return affinity;
}

AnalysisSpec readAnalysis(const Reader& reader, bool skipAnalysis) {
    AnalysisSpec analysis;
    if (auto interval = readDuration(reader, "interval")) {
        if (interval->count() <= 0) {
            reader.error("interval", "must be positive");
        } else {
            analysis.interval = *interval;
        }
    }
    if (auto threshold = reader.boundedInt("threshold", 0, 1'000'000)) {
        // Flagger treats 0 as the default of 1.
        analysis.threshold = std::max(1, *threshold);
    }
    analysis.maxWeight = reader.boundedInt("maxWeight", 0, 100);
    analysis.stepWeight = reader.boundedInt("stepWeight", 0, 100).value_or(0);
    analysis.stepWeights = readStepWeights(reader);
    analysis.stepWeightPromotion = reader.boundedInt("stepWeightPromotion", 0, 100).value_or(0);
    analysis.iterations = reader.boundedInt("iterations", 0, 1'000'000).value_or(0);
    analysis.mirror = reader.boolean("mirror").value_or(false);
    analysis.mirrorWeight = reader.boundedInt("mirrorWeight", 0, 100);
    analysis.match = readMatches(reader, "match");
    if (auto affinity = reader.child("sessionAffinity")) {
        analysis.sessionAffinity = readSessionAffinity(*affinity);
    }
    analysis.primaryReadyThreshold =
        reader.boundedInt("primaryReadyThreshold", 0, 100).value_or(100);
    analysis.canaryReadyThreshold = reader.boundedInt("canaryReadyThreshold", 0, 100).value_or(100);

    if (analysis.stepWeight > 0 && reader.field("stepWeights") != nullptr) {
        reader.error("stepWeights", "cannot be combined with stepWeight");
    }
    if (!skipAnalysis && analysis.stepWeight == 0 && analysis.stepWeights.empty() &&
        analysis.iterations == 0 && reader.field("stepWeights") == nullptr) {
        reader.error("stepWeight",
                     "one of stepWeight, stepWeights (canary) or iterations (blue-green) is "
                     "required");
    }

    readChecks(reader, analysis);
    return analysis;
}

Condition readCondition(const Reader& reader) {
    Condition condition;
    condition.type = reader.string("type").value_or("");
    condition.status = reader.string("status").value_or("");
    condition.reason = reader.string("reason").value_or("");
    condition.message = reader.string("message").value_or("");
    condition.lastUpdateTime = readTimestamp(reader, "lastUpdateTime");
    condition.lastTransitionTime = readTimestamp(reader, "lastTransitionTime");
    return condition;
}

void putTime(json& out, const char* key, const std::optional<Time>& time) {
    if (time) out[key] = formatTimestamp(*time);
}

}  // namespace

std::string_view toString(WebhookType type) {
    for (const auto& [value, name] : kWebhookTypeNames) {
        if (value == type) return name;
    }
    return "rollout";
}

std::string_view toString(AlertSeverity severity) {
    switch (severity) {
        case AlertSeverity::Info:
            return "info";
        case AlertSeverity::Warn:
            return "warn";
        case AlertSeverity::Error:
            return "error";
    }
    return "info";
}

std::optional<WebhookType> parseWebhookType(std::string_view text) {
    if (text.empty()) return WebhookType::Rollout;
    for (const auto& [value, name] : kWebhookTypeNames) {
        if (name == text) return value;
    }
    return std::nullopt;
}

bool isGate(WebhookType type) {
    return type == WebhookType::ConfirmRollout || type == WebhookType::ConfirmTrafficIncrease ||
           type == WebhookType::ConfirmPromotion;
}

std::string_view toString(Phase phase) {
    for (const auto& [value, name] : kPhaseNames) {
        if (value == phase) return name;
    }
    return "";
}

std::optional<Phase> parsePhase(std::string_view text) {
    for (const auto& [value, name] : kPhaseNames) {
        if (name == text) return value;
    }
    return std::nullopt;
}

Strategy CanarySpec::strategy() const {
    if (analysis.stepWeight > 0 || !analysis.stepWeights.empty()) return Strategy::Canary;
    if (analysis.iterations > 0) return Strategy::BlueGreen;
    return Strategy::Canary;
}

bool CanarySpec::abTesting() const {
    return strategy() == Strategy::BlueGreen && analysis.match.is_array() &&
           !analysis.match.empty();
}

SessionAffinityCookies nextSessionAffinityCookies(const SessionAffinitySpec& affinity,
                                                  int canaryWeight,
                                                  const std::function<std::string()>& random) {
    SessionAffinityCookies next = affinity.cookies;
    if (canaryWeight > 0) {
        if (next.canary.empty()) next.canary = affinity.cookieName + "=" + random();
        next.primary =
            affinity.primaryCookieName.empty() ? "" : affinity.primaryCookieName + "=" + random();
    } else {
        if (!next.canary.empty()) next.previous = next.canary;
        next.canary.clear();
        next.primary.clear();
    }
    return next;
}

std::string randomCookieValue() {
    static constexpr std::string_view kLetters =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    thread_local std::mt19937 engine{std::random_device{}()};
    std::uniform_int_distribution<std::size_t> pick(0, kLetters.size() - 1);
    std::string value(10, 'a');
    for (char& ch : value) ch = kLetters[pick(engine)];
    return value;
}

bool CanarySpec::mirrors() const {
    return analysis.mirror && !abTesting();
}

int CanarySpec::maxWeight() const {
    if (!analysis.stepWeights.empty()) return analysis.stepWeights.back();
    if (analysis.maxWeight && *analysis.maxWeight > 0) return *analysis.maxWeight;
    return 100;
}

int CanarySpec::nextWeight(int current) const {
    int cap = maxWeight();
    if (!analysis.stepWeights.empty()) {
        for (int step : analysis.stepWeights) {
            if (step > current) return std::min(step, cap);
        }
        return cap;
    }
    return std::min(current + std::max(analysis.stepWeight, 1), cap);
}

std::vector<const WebhookSpec*> CanarySpec::webhooksOfType(WebhookType type) const {
    std::vector<const WebhookSpec*> out;
    for (const WebhookSpec& hook : analysis.webhooks) {
        if (hook.type == type) out.push_back(&hook);
    }
    return out;
}

bool CanarySpec::hasWebhooks(WebhookType type) const {
    return std::any_of(analysis.webhooks.begin(), analysis.webhooks.end(),
                       [type](const WebhookSpec& hook) { return hook.type == type; });
}

namespace {

// A DaemonSet target runs one pod per node for the primary and one for the canary: there are no
// replicas to shift traffic between by weight, nor for an autoscaler to scale. As Flagger, it is
// analysed blue-green (iterations) or A/B (iterations and match) only.
void checkDaemonSetTarget(const Reader& reader, const std::string& analysisKey,
                          const CanarySpec& spec) {
    if (spec.targetRef.kind != "DaemonSet") return;
    const std::string why =
        "a DaemonSet target is analysed blue-green (iterations) or A/B testing (iterations "
        "and match): canary weights need a Deployment target";
    if (spec.analysis.stepWeight > 0) reader.error(analysisKey + ".stepWeight", why);
    const json* analysis = reader.field(analysisKey);
    if (analysis && analysis->is_object() && analysis->contains("stepWeights") &&
        !analysis->at("stepWeights").is_null())
        reader.error(analysisKey + ".stepWeights", why);
    if (spec.autoscalerRef)
        reader.error("autoscalerRef", "a DaemonSet target has no replicas to autoscale");
}

}  // namespace

SpecParseResult parseCanarySpec(const json& spec) {
    SpecParseResult result;
    if (!spec.is_object()) {
        result.errors.push_back("spec: must be an object");
        return result;
    }
    Reader reader(spec, "spec", result.errors);
    CanarySpec& out = result.spec;
    out.provider = reader.string("provider").value_or("");
    out.metricsServer = reader.string("metricsServer").value_or("");
    if (auto target = reader.child("targetRef")) {
        out.targetRef = readObjectRef(*target, true);
    } else {
        reader.error("targetRef", "is required");
    }
    if (auto autoscaler = reader.child("autoscalerRef")) {
        out.autoscalerRef = readAutoscalerRef(*autoscaler);
    }
    if (auto ingress = reader.child("ingressRef")) out.ingressRef = readObjectRef(*ingress, false);
    if (auto route = reader.child("routeRef")) out.routeRef = readObjectRef(*route, false);
    if (auto deadline = reader.boundedInt("progressDeadlineSeconds", 1, 365 * 24 * 3600)) {
        out.progressDeadlineSeconds = *deadline;
    }
    out.skipAnalysis = reader.boolean("skipAnalysis").value_or(false);
    out.suspend = reader.boolean("suspend").value_or(false);
    out.revertOnDeletion = reader.boolean("revertOnDeletion").value_or(false);
    if (auto service = reader.child("service")) {
        out.service = readService(*service);
    } else {
        reader.error("service", "is required");
    }
    // "canaryAnalysis" is the pre-v1beta1 name Flagger still accepts.
    const char* analysisKey = reader.field("analysis") != nullptr ? "analysis" : "canaryAnalysis";
    if (auto analysis = reader.child(analysisKey)) {
        out.analysis = readAnalysis(*analysis, out.skipAnalysis);
    } else if (!out.skipAnalysis) {
        reader.error("analysis", "is required unless skipAnalysis is true");
    }
    checkDaemonSetTarget(reader, analysisKey, out);
    return result;
}

const Condition* CanaryStatus::condition(std::string_view type) const {
    for (const Condition& c : conditions) {
        if (c.type == type) return &c;
    }
    return nullptr;
}

StatusParseResult parseCanaryStatus(const json& status) {
    StatusParseResult result;
    if (status.is_null()) return result;
    if (!status.is_object()) {
        result.errors.push_back("status: must be an object");
        return result;
    }
    Reader reader(status, "status", result.errors);
    CanaryStatus& out = result.status;
    std::string phaseName = reader.string("phase").value_or("");
    if (auto phase = parsePhase(phaseName)) {
        out.phase = *phase;
    } else {
        reader.error("phase", "unknown phase \"" + phaseName + "\"");
    }
    out.failedChecks = reader.boundedInt("failedChecks", 0, 1'000'000).value_or(0);
    out.canaryWeight = reader.boundedInt("canaryWeight", 0, 100).value_or(0);
    out.iterations = reader.boundedInt("iterations", 0, 1'000'000'000).value_or(0);
    out.lastAppliedSpec = reader.string("lastAppliedSpec").value_or("");
    out.lastPromotedSpec = reader.string("lastPromotedSpec").value_or("");
    out.lastTransitionTime = readTimestamp(reader, "lastTransitionTime");
    for (const Reader& condition : reader.objects("conditions")) {
        out.conditions.push_back(readCondition(condition));
    }
    out.lastAnalysisTime = readTimestamp(reader, "lastAnalysisTime");
    out.noDataSince = readTimestamp(reader, "noDataSince");
    out.noDataReason = reader.string("noDataReason").value_or("");
    if (auto gates = reader.child("gateWaitingSince")) {
        for (const auto& [name, value] : reader.field("gateWaitingSince")->items()) {
            auto type = parseWebhookType(name);
            auto time = readTimestamp(*gates, name);
            if (!type || !isGate(*type)) {
                gates->error(name, "not a gate webhook type");
            } else if (time) {
                out.gateWaitingSince[*type] = *time;
            }
        }
    }
    out.targetUnreadySince = readTimestamp(reader, "targetUnreadySince");
    out.primaryUnreadySince = readTimestamp(reader, "primaryUnreadySince");
    out.preRolloutPassed = reader.boolean("preRolloutPassed").value_or(false);
    out.targetKeptServing = reader.boolean("targetKeptServing").value_or(false);
    out.manualPromotionRequested = readTimestamp(reader, "manualPromotionRequested");
    return result;
}

json toJson(const CanaryStatus& status) {
    json out = json::object();
    out["phase"] = std::string(toString(status.phase));
    out["failedChecks"] = status.failedChecks;
    out["canaryWeight"] = status.canaryWeight;
    out["iterations"] = status.iterations;
    if (!status.lastAppliedSpec.empty()) out["lastAppliedSpec"] = status.lastAppliedSpec;
    if (!status.lastPromotedSpec.empty()) out["lastPromotedSpec"] = status.lastPromotedSpec;
    putTime(out, "lastTransitionTime", status.lastTransitionTime);
    if (!status.conditions.empty()) {
        json conditions = json::array();
        for (const Condition& c : status.conditions) {
            json condition = {{"type", c.type},
                              {"status", c.status},
                              {"reason", c.reason},
                              {"message", c.message}};
            putTime(condition, "lastUpdateTime", c.lastUpdateTime);
            putTime(condition, "lastTransitionTime", c.lastTransitionTime);
            conditions.push_back(std::move(condition));
        }
        out["conditions"] = std::move(conditions);
    }
    putTime(out, "lastAnalysisTime", status.lastAnalysisTime);
    putTime(out, "noDataSince", status.noDataSince);
    if (!status.noDataReason.empty()) out["noDataReason"] = status.noDataReason;
    if (!status.gateWaitingSince.empty()) {
        json gates = json::object();
        for (const auto& [type, since] : status.gateWaitingSince) {
            gates[std::string(toString(type))] = formatTimestamp(since);
        }
        out["gateWaitingSince"] = std::move(gates);
    }
    putTime(out, "targetUnreadySince", status.targetUnreadySince);
    putTime(out, "primaryUnreadySince", status.primaryUnreadySince);
    if (status.preRolloutPassed) out["preRolloutPassed"] = true;
    if (status.targetKeptServing) out["targetKeptServing"] = true;
    putTime(out, "manualPromotionRequested", status.manualPromotionRequested);
    return out;
}

Canary parseCanary(const json& object) {
    Canary canary;
    if (!object.is_object()) {
        canary.errors.push_back("object: must be an object");
        return canary;
    }
    if (auto metadata = object.find("metadata");
        metadata != object.end() && metadata->is_object()) {
        auto text = [&](const char* key) {
            auto it = metadata->find(key);
            return it != metadata->end() && it->is_string() ? it->get<std::string>() : "";
        };
        canary.name = text("name");
        canary.namespaceName = text("namespace");
    }
    static const json kNull;
    auto spec = object.find("spec");
    SpecParseResult parsedSpec = parseCanarySpec(spec == object.end() ? kNull : *spec);
    canary.spec = std::move(parsedSpec.spec);
    canary.errors = std::move(parsedSpec.errors);
    auto status = object.find("status");
    if (status != object.end()) {
        StatusParseResult parsedStatus = parseCanaryStatus(*status);
        canary.status = std::move(parsedStatus.status);
        canary.errors.insert(canary.errors.end(), parsedStatus.errors.begin(),
                             parsedStatus.errors.end());
    }
    return canary;
}

}  // namespace sluice::canaryengine
