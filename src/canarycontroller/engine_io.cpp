// The engine's inputs and outputs as the Canary object holds them: request annotations, the
// status fields the engine owns, and what metric queries and webhooks are given.
#include <algorithm>
#include <chrono>

#include "impl.h"

namespace sluice::canarycontroller::detail {

using nlohmann::json;

namespace {

// The status fields the engine owns (canaryengine::toJson writes a subset of them: the others are
// removed when the engine clears them). Anything else in the status is left alone.
const char* const kEngineStatusFields[] = {
    "phase",
    "failedChecks",
    "canaryWeight",
    "iterations",
    "lastAppliedSpec",
    "lastPromotedSpec",
    "lastTransitionTime",
    "conditions",
    "lastAnalysisTime",
    "noDataSince",
    "noDataReason",
    "gateWaitingSince",
    "targetUnreadySince",
    "primaryUnreadySince",
    "preRolloutPassed",
    "targetKeptServing",
    "manualPromotionRequested",
};

}  // namespace

std::vector<canaryengine::ManualRequest> manualRequests(const json& canary) {
    std::vector<canaryengine::ManualRequest> out;
    static const json::json_pointer kAnnotations("/metadata/annotations");
    if (!canary.contains(kAnnotations) || !canary.at(kAnnotations).is_object()) return out;
    const json& annotations = canary.at(kAnnotations);
    for (canaryengine::ManualAction action :
         {canaryengine::ManualAction::Promote, canaryengine::ManualAction::Abort,
          canaryengine::ManualAction::Retry}) {
        auto it = annotations.find(std::string(canaryengine::annotationOf(action)));
        if (it == annotations.end()) continue;
        canaryengine::ManualRequest request;
        request.action = action;
        request.value = it->is_string() ? it->get<std::string>() : it->dump();
        if (it->is_string()) request.requestedAt = canaryengine::parseTimestamp(request.value);
        out.push_back(std::move(request));
    }
    return out;
}

std::string unsupportedTarget(const canaryengine::ObjectRef& targetRef) {
    if ((targetRef.kind == "Deployment" || targetRef.kind == "DaemonSet") &&
        (targetRef.apiVersion.empty() || targetRef.apiVersion == "apps/v1"))
        return "";
    return "spec.targetRef: only apps/v1 Deployment and DaemonSet targets are supported, not " +
           targetRef.apiVersion + " " + targetRef.kind;
}

json mergeStatus(const json& written, const canaryengine::CanaryStatus& status) {
    json merged = written;
    for (const char* field : kEngineStatusFields) merged.erase(field);
    merged.update(canaryengine::toJson(status));
    return merged;
}

metricprovider::TemplateModel templateModel(const std::string& ns, const std::string& name,
                                            const canaryengine::CanarySpec& spec,
                                            const canaryengine::MetricSpec& metric) {
    metricprovider::TemplateModel model;
    model.name = name;
    model.namespaceName = ns;
    model.target = spec.targetRef.name;
    model.service = spec.apexServiceName();
    model.ingress = spec.ingressRef.name;
    model.route = spec.routeRef.name;
    model.variables = metric.templateVariables;
    return model;
}

json webhookPayload(const std::string& ns, const std::string& name,
                    const canaryengine::CanaryStatus& next, const canaryengine::WebhookSpec& hook,
                    const canaryengine::Event* event, canaryengine::Time now) {
    json payload = {{"name", name},
                    {"namespace", ns},
                    {"phase", std::string(canaryengine::toString(next.phase))},
                    {"checksum", next.lastAppliedSpec}};
    if (hook.metadata.is_object() && !hook.metadata.empty()) payload["metadata"] = hook.metadata;
    if (event) {
        json metadata = payload.value("metadata", json::object());
        metadata["eventMessage"] = event->message;
        metadata["eventType"] = std::string(canaryengine::toString(event->type));
        metadata["eventReason"] = event->reason;
        metadata["timestamp"] = std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
        payload["metadata"] = std::move(metadata);
    }
    return payload;
}

std::optional<router::Weights> weightsToKeep(const canaryengine::Decision& decision,
                                             const canaryengine::Observation& observation) {
    // Routes exist once the primary was initialised; this round's own weights are fresh.
    const canaryengine::Phase phase = decision.status.phase;
    if (phase == canaryengine::Phase::None || phase == canaryengine::Phase::Initializing)
        return std::nullopt;
    // While the target keeps serving for a primary that is not ready, the engine decides
    // where traffic goes.
    if (decision.status.targetKeptServing) return std::nullopt;
    for (const canaryengine::Action& a : decision.actions) {
        if (std::holds_alternative<canaryengine::action::SetWeights>(a) ||
            std::holds_alternative<canaryengine::action::InitializePrimary>(a))
            return std::nullopt;
    }
    // The status records the weights last set.
    const router::Weights want =
        router::Weights::forCanary(std::clamp(decision.status.canaryWeight, 0, 100));
    // Never (re)route traffic onto a version that cannot serve it.
    if ((want.primary > 0 && !observation.primary.ready) ||
        (want.canary > 0 && !observation.target.ready))
        return std::nullopt;
    return want;
}

}  // namespace sluice::canarycontroller::detail
