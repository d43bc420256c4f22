// The Canary controller: lifecycle, one reconcile, the engine's actions, status writes.
#include "sluice/canarycontroller/controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "impl.h"
#include "sluice/cache/store.h"
#include "sluice/prometheus/builtin.h"
#include "sluice/prometheus/metric_template.h"
#include "sluice/router/apply.h"
#include "sluice/router/router.h"
#include "sluice/runtime/runtime.h"
#include "sluice/util/strings.h"

namespace sluice::canarycontroller {

using nlohmann::json;

namespace {

const kube::GroupVersionKind kCanaryGvk{"sluice.io", "v1alpha1", "Canary"};
const kube::GroupVersionKind kDeploymentGvk{"apps", "v1", "Deployment"};
const kube::GroupVersionKind kMetricTemplateGvk{"sluice.io", "v1alpha1", "MetricTemplate"};
const kube::GroupVersionKind kSecretGvk{"", "v1", "Secret"};

constexpr auto kCacheWait = std::chrono::seconds(30);

// The status fields the engine owns (canary::toJson writes a subset of them: the others are
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

// An action the controller must not carry out (the target moved on): nothing more is done and
// the status is not written; the next step sees the new revision.
class Refused : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

kube::EventType toKube(canary::EventType type) {
    return type == canary::EventType::Warning ? kube::EventType::Warning : kube::EventType::Normal;
}

// The analysis object as written (Flagger's older name canaryAnalysis is accepted).
const json& rawAnalysis(const json& rawSpec) {
    static const json kEmpty = json::object();
    if (!rawSpec.is_object()) return kEmpty;
    for (const char* key : {"analysis", "canaryAnalysis"}) {
        auto it = rawSpec.find(key);
        if (it != rawSpec.end() && it->is_object()) return *it;
    }
    return kEmpty;
}

// The raw metric object named `name` in the spec as written.
const json& rawMetric(const json& rawSpec, const std::string& name) {
    static const json kEmpty = json::object();
    const json& analysis = rawAnalysis(rawSpec);
    auto it = analysis.find("metrics");
    if (it == analysis.end() || !it->is_array()) return kEmpty;
    for (const json& m : *it)
        if (m.is_object() && m.value("name", "") == name) return m;
    return kEmpty;
}

struct Checks {
    std::map<std::string, canary::MetricResult> metrics;
    std::map<std::string, canary::WebhookResult> webhooks;
    bool any = false;
};

// The Canary as our last write left it, until the watch cache shows that write.
struct Pending {
    std::string resourceVersion;
    json status;
    std::optional<json> annotations;  // after removing request annotations (null: none left)
};

// The request annotations (kubectl sluice canary promote|abort|retry) on a Canary.
std::vector<canary::ManualRequest> manualRequests(const json& object) {
    std::vector<canary::ManualRequest> out;
    static const json::json_pointer kAnnotations("/metadata/annotations");
    if (!object.contains(kAnnotations) || !object.at(kAnnotations).is_object()) return out;
    const json& annotations = object.at(kAnnotations);
    for (canary::ManualAction action : {canary::ManualAction::Promote, canary::ManualAction::Abort,
                                        canary::ManualAction::Retry}) {
        auto it = annotations.find(std::string(canary::annotationOf(action)));
        if (it == annotations.end()) continue;
        canary::ManualRequest request;
        request.action = action;
        request.value = it->is_string() ? it->get<std::string>() : it->dump();
        if (it->is_string()) request.requestedAt = canary::parseTimestamp(request.value);
        out.push_back(std::move(request));
    }
    return out;
}

struct Outcome {
    ReconcileRecord record;
    std::chrono::seconds requeueAfter{0};  // 0: not requeued (the Canary is gone)
    bool rateLimited = false;
};

}  // namespace

struct CanaryController::Impl {
    Impl(kube::KubeClient& c, cache::SharedInformerFactory& f, Options o);
    ~Impl() { runtime.stop(); }

    void ensureInformers();
    bool waitForSync(std::chrono::milliseconds timeout);
    void start();
    // One reconcile of key with its timing, counters and observer; exceptions become errors.
    Outcome reconcileKey(const std::string& key);
    Outcome reconcile(const std::string& ns, const std::string& name);
    struct Round;  // one reconcile's actions
    // Re-applies the routing objects when their live weights differ from the status' (edited
    // or deleted by someone else).
    void healRoutes(const json& object, const router::Router& router,
                    const router::RouteContext& ctx, const canary::Decision& decision,
                    const canary::Observation& obs);

    std::optional<json> getOptional(const kube::GroupVersionKind& gvk, const std::string& ns,
                                    const std::string& name);
    void writeStatus(const std::string& key, json& object, const json& status);
    // Removes request annotations (a merge patch with null values).
    void removeRequests(const std::string& key, const json& object,
                        const std::vector<canary::ManualAction>& actions, const json& status);
    // Remembers what a write answered, for reconciles that run before the cache shows it.
    void remember(const std::string& key, const json& response, const json& status);
    std::shared_ptr<prometheus::MetricProvider> providerFor(const prometheus::ClientOptions& o);

    kube::KubeClient& client;
    cache::SharedInformerFactory& informers;
    Options opts;
    const Clock& clock;
    std::unique_ptr<kube::KubeEventRecorder> ownEvents;
    kube::EventRecorder* events;
    std::unique_ptr<HttpWebhookCaller> ownWebhooks;
    WebhookCaller* webhooks;
    MetricProviderFactory providerFactory;
    runtime::Runtime runtime;
    runtime::Observer<ReconcileRecord> observer;

    std::mutex baseMu;
    cache::Informer* canaryInformer = nullptr;
    cache::Informer* deploymentInformer = nullptr;

    std::mutex mu;                           // guards the maps below
    std::map<std::string, Checks> checks;    // by Canary uid: results for the next step
    std::map<std::string, Pending> pending;  // by key: status writes the cache may not show
    std::map<std::string, std::string> uidByKey;
    std::map<std::string, std::shared_ptr<prometheus::MetricProvider>> providers;

    struct Counters {
        std::atomic<uint64_t> reconciles{0}, errors{0}, statusWrites{0}, metricQueries{0},
            webhookCalls{0}, promotions{0}, rollbacks{0};
    } counters;
};

// ------------------------------------------------------------------------------------------
// One reconcile: the context the actions run in.

struct CanaryController::Impl::Round {
    CanaryController::Impl& c;
    const std::string& ns;
    const std::string& name;
    const json& object;   // the Canary (for Events and owner references)
    const json& rawSpec;  // its spec as written
    const canary::CanarySpec& spec;
    const canary::CanaryStatus& next;  // the status the decision leads to
    const router::Router* router = nullptr;
    const router::RouteContext* ctx = nullptr;
    std::string provider;
    Checks results;

    json requireTarget() {
        auto target = c.getOptional(kDeploymentGvk, ns, spec.targetRef.name);
        if (!target) throw Refused("target Deployment " + spec.targetRef.name + " not found");
        return *target;
    }
    const router::Router& requireRouter() const {
        if (!router || !ctx) throw Refused("no router for this Canary");
        return *router;
    }

    void applyPrimary(const json& target, int replicas) {
        requireRouter();
        json primary = primaryDeploymentFor(target, spec.primaryName(), ctx->selector.label,
                                            ctx->selector.value, replicas);
        kube::ApplyOptions ao;
        ao.fieldManager = c.opts.fieldManager;
        ao.force = true;
        c.client.apply(router::withOwner(std::move(primary), *ctx), ao);
    }

    void setWeights(int primaryWeight, int canaryWeight) {
        const router::Router& r = requireRouter();
        router::ReconcileOptions ro;
        ro.fieldManager = c.opts.fieldManager;
        router::reconcileRoutes(c.client, r, *ctx, router::Weights{primaryWeight, canaryWeight},
                                ro);
    }

    void operator()(const canary::action::InitializePrimary& a) {
        json target = requireTarget();
        if (podTemplateHash(target) != a.templateHash)
            throw Refused("target " + spec.targetRef.name + " changed before initialization");
        applyPrimary(target, std::max(1, detail::specReplicas(target)));
        // The primary and canary Services only: the apex Service and the routes move traffic
        // onto the primary, which happens once it is ready (SetWeights), never before.
        kube::ApplyOptions ao;
        ao.fieldManager = c.opts.fieldManager;
        ao.force = true;
        for (router::ServiceRole role : {router::ServiceRole::Primary, router::ServiceRole::Canary})
            c.client.apply(router::withOwner(router::buildService(*ctx, role), *ctx), ao);
    }

    void operator()(const canary::action::ScaleTarget& a) {
        json target = requireTarget();
        if (target.contains("spec") && target["spec"].contains("replicas") &&
            target["spec"]["replicas"] == a.replicas)
            return;
        json patch = {{"spec", {{"replicas", a.replicas}}}};
        kube::PatchOptions po;
        po.fieldManager = c.opts.fieldManager;
        c.client.patch(kDeploymentGvk, ns, spec.targetRef.name, kube::PatchType::Merge,
                       patch.dump(), po);
    }

    void operator()(const canary::action::SetWeights& a) { setWeights(a.primary, a.canary); }

    void operator()(const canary::action::CopyTargetToPrimary& a) {
        json target = requireTarget();
        if (podTemplateHash(target) != a.templateHash)
            throw Refused("target " + spec.targetRef.name +
                          " changed since its analysis: not promoting it");
        auto primary = c.getOptional(kDeploymentGvk, ns, spec.primaryName());
        int replicas =
            primary ? detail::specReplicas(*primary) : std::max(1, detail::specReplicas(target));
        applyPrimary(target, replicas);
    }

    json payload(const canary::WebhookSpec& hook) const {
        json p = {{"name", name},
                  {"namespace", ns},
                  {"phase", std::string(canary::toString(next.phase))},
                  {"checksum", next.lastAppliedSpec}};
        if (hook.metadata.is_object() && !hook.metadata.empty()) p["metadata"] = hook.metadata;
        return p;
    }

    void operator()(const canary::action::CallWebhooks& a) {
        for (const canary::WebhookSpec* hook : spec.webhooksOfType(a.type)) {
            WebhookRequest req{hook->name, hook->url,
                               std::chrono::duration_cast<std::chrono::milliseconds>(hook->timeout),
                               payload(*hook)};
            if (a.type == canary::WebhookType::Event && a.event) {
                json meta = req.payload.value("metadata", json::object());
                meta["eventMessage"] = a.event->message;
                meta["eventType"] = std::string(canary::toString(a.event->type));
                meta["eventReason"] = a.event->reason;
                meta["timestamp"] =
                    std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       c.clock.wallNow().time_since_epoch())
                                       .count());
                req.payload["metadata"] = std::move(meta);
            }
            canary::WebhookResult result = c.webhooks->call(req);
            c.counters.webhookCalls++;
            if (result.outcome != canary::WebhookOutcome::Succeeded)
                spdlog::info("canary {}/{}: {} webhook {} failed: {}", ns, name,
                             canary::toString(a.type), hook->name, result.message);
            if (a.type == canary::WebhookType::Event) continue;  // nothing waits for it
            results.webhooks[hook->name] = std::move(result);
            results.any = true;
        }
    }

    canary::MetricResult runMetric(const canary::MetricSpec& declared) {
        canary::MetricSpec metric = declared;
        const json& raw = rawMetric(rawSpec, declared.name);
        // The metric's window defaults to the analysis interval.
        if (!raw.contains("interval")) metric.interval = spec.analysis.interval;

        prometheus::TemplateModel model;
        model.name = name;
        model.namespaceName = ns;
        model.target = spec.targetRef.name;
        model.service = ctx ? ctx->apexServiceName() : spec.targetRef.name;
        if (rawSpec.contains("ingressRef") && rawSpec["ingressRef"].is_object())
            model.ingress = rawSpec["ingressRef"].value("name", "");
        if (raw.contains("templateVariables") && raw["templateVariables"].is_object()) {
            for (auto it = raw["templateVariables"].begin(); it != raw["templateVariables"].end();
                 ++it)
                model.variables[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
        }

        // Flagger's spec.metricsServer overrides the controller's default server.
        std::string defaultServer = c.opts.metricsServer;
        if (rawSpec.contains("metricsServer") && rawSpec["metricsServer"].is_string() &&
            !rawSpec["metricsServer"].get<std::string>().empty())
            defaultServer = rawSpec["metricsServer"].get<std::string>();
        prometheus::ClientOptions copts;
        copts.address = defaultServer;
        copts.timeout = c.opts.metricsTimeout;
        std::string templateQuery;
        const std::string* tq = nullptr;
        if (metric.templateRef) {
            const std::string tns =
                metric.templateRef->namespaceName.empty() ? ns : metric.templateRef->namespaceName;
            const std::string ref = tns + "/" + metric.templateRef->name;
            std::optional<json> tmpl;
            try {
                tmpl = c.getOptional(kMetricTemplateGvk, tns, metric.templateRef->name);
            } catch (const std::exception& e) {
                return canary::MetricResult::queryError("reading MetricTemplate " + ref + ": " +
                                                        e.what());
            }
            if (tmpl) {
                auto parsed = prometheus::parseMetricTemplate(*tmpl);
                if (!parsed.ok())
                    return canary::MetricResult::queryError("MetricTemplate " + ref + ": " +
                                                            join(parsed.errors, "; "));
                templateQuery = parsed.metricTemplate.query;
                tq = &templateQuery;
                std::optional<std::map<std::string, std::string>> secretData;
                const auto& p = parsed.metricTemplate.provider;
                if (!p.secretName.empty()) {
                    try {
                        auto secret = c.getOptional(kSecretGvk, tns, p.secretName);
                        if (!secret)
                            return canary::MetricResult::queryError("MetricTemplate " + ref +
                                                                    ": Secret " + p.secretName +
                                                                    " not found");
                        auto decoded = prometheus::decodeSecretData(*secret);
                        if (!decoded.ok())
                            return canary::MetricResult::queryError("MetricTemplate " + ref +
                                                                    ": Secret " + p.secretName +
                                                                    ": " + decoded.error);
                        secretData = std::move(decoded.data);
                    } catch (const std::exception& e) {
                        return canary::MetricResult::queryError("MetricTemplate " + ref +
                                                                ": reading Secret " + p.secretName +
                                                                ": " + e.what());
                    }
                }
                auto co = prometheus::clientOptionsFor(p, defaultServer,
                                                       secretData ? &*secretData : nullptr);
                if (!co.ok())
                    return canary::MetricResult::queryError("MetricTemplate " + ref + ": " +
                                                            co.error);
                copts = co.options;
                copts.timeout = c.opts.metricsTimeout;
            }
        }
        prometheus::RenderResult query = prometheus::analysisQuery(metric, provider, model, tq);
        if (!query.ok()) return canary::MetricResult::queryError(query.error);
        std::shared_ptr<prometheus::MetricProvider> source;
        try {
            source = c.providerFor(copts);
        } catch (const std::exception& e) {
            return canary::MetricResult::queryError(e.what());
        }
        c.counters.metricQueries++;
        return source->query(query.query);
    }

    void operator()(const canary::action::RunMetricChecks&) {
        for (const canary::MetricSpec& metric : spec.analysis.metrics) {
            canary::MetricResult r = runMetric(metric);
            if (!r.hasValue())
                spdlog::info("canary {}/{}: metric {}: no value: {}", ns, name, metric.name,
                             r.reason);
            results.metrics[metric.name] = std::move(r);
        }
        results.any = true;
    }

    void operator()(const canary::action::EmitEvent& a) {
        spdlog::info("canary {}/{}: {} {}: {}", ns, name, canary::toString(a.event.type),
                     a.event.reason, a.event.message);
        c.events->record(object, toKube(a.event.type), a.event.reason, a.event.message);
    }
};

// ------------------------------------------------------------------------------------------
// Lifecycle

CanaryController::Impl::Impl(kube::KubeClient& cl, cache::SharedInformerFactory& f, Options o)
    : client(cl),
      informers(f),
      opts(std::move(o)),
      clock(opts.clock ? *opts.clock : SystemClock::instance()),
      runtime(workqueue::Options{opts.clock, std::chrono::milliseconds(5),
                                 ExponentialBackoff{std::chrono::milliseconds(500), 2.0,
                                                    std::chrono::milliseconds(60000)}},
              opts.concurrency) {
    if (opts.events) {
        events = opts.events;
    } else {
        ownEvents = std::make_unique<kube::KubeEventRecorder>(client, "sluice-controller",
                                                              "default", opts.clock);
        events = ownEvents.get();
    }
    if (opts.webhooks) {
        webhooks = opts.webhooks;
    } else {
        ownWebhooks = std::make_unique<HttpWebhookCaller>();
        webhooks = ownWebhooks.get();
    }
    providerFactory = opts.metricProviders ? opts.metricProviders : prometheusProviderFactory();
}

void CanaryController::Impl::ensureInformers() {
    std::lock_guard lock(baseMu);
    if (canaryInformer) return;
    auto gateRef = runtime.gate();
    canaryInformer = &informers.informerFor(kCanaryGvk, opts.watchNamespace);
    auto enqueue = [gateRef](const cache::ObjectPtr& o) {
        gateRef->add(kube::namespaceOf(*o) + "/" + kube::nameOf(*o));
    };
    canaryInformer->addEventHandler(cache::EventHandler{
        enqueue, [enqueue](const cache::ObjectPtr&, const cache::ObjectPtr& n) { enqueue(n); },
        enqueue});

    // A Deployment's change (a new template of a target, readiness of a primary) enqueues the
    // Canaries that target it.
    deploymentInformer = &informers.informerFor(kDeploymentGvk, opts.watchNamespace);
    cache::Informer* canaries = canaryInformer;
    auto byDeployment = [gateRef, canaries](const cache::ObjectPtr& d) {
        const std::string ns = kube::namespaceOf(*d);
        const std::string name = kube::nameOf(*d);
        for (const auto& cobj : canaries->store().listNamespace(ns)) {
            static const json::json_pointer kTarget("/spec/targetRef/name");
            if (!cobj->contains(kTarget) || !cobj->at(kTarget).is_string()) continue;
            const std::string target = cobj->at(kTarget).get<std::string>();
            if (target == name || target + "-primary" == name)
                gateRef->add(ns + "/" + kube::nameOf(*cobj));
        }
    };
    deploymentInformer->addEventHandler(cache::EventHandler{
        byDeployment,
        [byDeployment](const cache::ObjectPtr& o, const cache::ObjectPtr& n) {
            // Status-only changes matter too (readiness), but not resyncs of the same version.
            if (kube::resourceVersionOf(*o) != kube::resourceVersionOf(*n) || o == n)
                byDeployment(n);
        },
        byDeployment});
    informers.startAll();
}

bool CanaryController::Impl::waitForSync(std::chrono::milliseconds timeout) {
    ensureInformers();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto left = [&] {
        return std::max(std::chrono::milliseconds(0),
                        std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now()));
    };
    return canaryInformer->waitForSync(left()) && deploymentInformer->waitForSync(left());
}

void CanaryController::Impl::start() {
    if (runtime.stopped()) return;
    ensureInformers();
    runtime.start([this](const std::string& key) {
        Outcome out = reconcileKey(key);
        runtime::Result result;
        result.backoff = out.rateLimited;
        if (out.requeueAfter > std::chrono::seconds::zero()) result.requeueAfter = out.requeueAfter;
        return result;
    });
}

Outcome CanaryController::Impl::reconcileKey(const std::string& key) {
    const auto began = std::chrono::steady_clock::now();
    auto [ns, name] = cache::splitStoreKey(key);
    Outcome out;
    try {
        out = reconcile(ns, name);
    } catch (const Refused& e) {
        out.record.succeeded = false;
        out.record.error = e.what();
        out.rateLimited = true;
        spdlog::info("canary {}: {}; re-evaluating", key, out.record.error);
    } catch (const std::exception& e) {
        out.record.succeeded = false;
        out.record.error = e.what();
        out.rateLimited = true;
        spdlog::warn("canary {}: reconcile failed, retrying with backoff: {}", key,
                     out.record.error);
    }
    out.record.key = key;
    out.record.duration = std::chrono::steady_clock::now() - began;
    counters.reconciles++;
    if (!out.record.succeeded) counters.errors++;
    observer.notify(out.record);
    return out;
}

std::optional<json> CanaryController::Impl::getOptional(const kube::GroupVersionKind& gvk,
                                                        const std::string& ns,
                                                        const std::string& name) {
    try {
        return client.get(gvk, ns, name);
    } catch (const kube::ApiError& e) {
        if (e.isNotFound()) return std::nullopt;
        throw;
    }
}

std::shared_ptr<prometheus::MetricProvider> CanaryController::Impl::providerFor(
    const prometheus::ClientOptions& o) {
    std::string key = o.address;
    key += '\n';
    key += o.credentials.bearerToken + '\n' + o.credentials.username + '\n' +
           o.credentials.password + '\n' + (o.insecureSkipVerify ? "1" : "0") + '\n' +
           std::to_string(o.timeout.count());
    {
        std::lock_guard lock(mu);
        auto it = providers.find(key);
        if (it != providers.end()) return it->second;
    }
    auto made = providerFactory(o);
    if (!made) throw std::invalid_argument("no metric provider for " + o.address);
    std::lock_guard lock(mu);
    return providers.emplace(key, std::move(made)).first->second;
}

void CanaryController::Impl::writeStatus(const std::string& key, json& object, const json& status) {
    json ops = json::array({{{"op", "add"}, {"path", "/status"}, {"value", status}}});
    kube::PatchOptions po;
    po.subresource = "status";
    po.fieldManager = opts.fieldManager;
    json response = client.patch(kCanaryGvk, kube::namespaceOf(object), kube::nameOf(object),
                                 kube::PatchType::JsonPatch, ops.dump(), po);
    counters.statusWrites++;
    remember(key, response, status);
}

void CanaryController::Impl::remember(const std::string& key, const json& response,
                                      const json& status) {
    const std::string rv = kube::resourceVersionOf(response);
    std::lock_guard lock(mu);
    Pending& p = pending[key];
    if (!rv.empty() && runtime::resourceVersionReached(rv, p.resourceVersion)) {
        p.resourceVersion = rv;
        p.status = response.contains("status") ? response["status"] : status;
        static const json::json_pointer kAnnotations("/metadata/annotations");
        if (response.contains("metadata"))
            p.annotations = response.contains(kAnnotations) ? response.at(kAnnotations) : json();
    }
}

void CanaryController::Impl::removeRequests(const std::string& key, const json& object,
                                            const std::vector<canary::ManualAction>& actions,
                                            const json& status) {
    json annotations = json::object();
    for (canary::ManualAction action : actions)
        annotations[std::string(canary::annotationOf(action))] = nullptr;
    json patch = {{"metadata", {{"annotations", annotations}}}};
    kube::PatchOptions po;
    po.fieldManager = opts.fieldManager;
    json response = client.patch(kCanaryGvk, kube::namespaceOf(object), kube::nameOf(object),
                                 kube::PatchType::Merge, patch.dump(), po);
    remember(key, response, status);
}

// ------------------------------------------------------------------------------------------
// Reconcile

void CanaryController::Impl::healRoutes(const json& object, const router::Router& router,
                                        const router::RouteContext& ctx,
                                        const canary::Decision& decision,
                                        const canary::Observation& obs) {
    // Routes exist once the primary was initialised; this round's own weights are fresh.
    const canary::Phase phase = decision.status.phase;
    if (phase == canary::Phase::None || phase == canary::Phase::Initializing) return;
    // While the target keeps serving for a primary that is not ready, the engine decides
    // where traffic goes.
    if (decision.status.targetKeptServing) return;
    for (const canary::Action& a : decision.actions) {
        if (std::holds_alternative<canary::action::SetWeights>(a) ||
            std::holds_alternative<canary::action::InitializePrimary>(a))
            return;
    }
    // The status records the weights last set.
    const router::Weights want =
        router::Weights::forCanary(std::clamp(decision.status.canaryWeight, 0, 100));
    // Never (re)route traffic onto a version that cannot serve it.
    if ((want.primary > 0 && !obs.primary.ready) || (want.canary > 0 && !obs.target.ready)) return;
    std::string found;
    try {
        auto live = router::readLiveWeights(client, router, ctx);
        if (live && live->primary == want.primary && live->canary == want.canary) return;
        found = live ? router::toString(*live) : "missing";
    } catch (const router::RouterError& e) {
        found = e.what();
    }
    router::ReconcileOptions ro;
    ro.fieldManager = opts.fieldManager;
    router::reconcileRoutes(client, router, ctx, want, ro);
    std::string message = "Routing restored to ";
    message += router::toString(want) + " (found " + found + ")";
    spdlog::warn("canary {}/{}: {}", ctx.namespaceName, ctx.canaryName, message);
    events->record(object, kube::EventType::Warning, "RoutingRestored", message);
}

Outcome CanaryController::Impl::reconcile(const std::string& ns, const std::string& name) {
    ensureInformers();
    Outcome out;
    ReconcileRecord& rec = out.record;
    const std::string key = ns + "/" + name;
    rec.key = key;

    auto cached = canaryInformer->store().get(ns, name);
    if (!cached) {
        // Gone: forget what was kept for it.
        std::lock_guard lock(mu);
        pending.erase(key);
        auto u = uidByKey.find(key);
        if (u != uidByKey.end()) {
            checks.erase(u->second);
            uidByKey.erase(u);
        }
        return out;
    }
    json object = *cached;
    {
        std::lock_guard lock(mu);
        auto it = pending.find(key);
        if (it != pending.end()) {
            if (runtime::resourceVersionReached(kube::resourceVersionOf(object),
                                                it->second.resourceVersion)) {
                pending.erase(it);
            } else {
                object["status"] = it->second.status;
                object["metadata"]["resourceVersion"] = it->second.resourceVersion;
                if (it->second.annotations) {
                    if (it->second.annotations->is_object())
                        object["metadata"]["annotations"] = *it->second.annotations;
                    else
                        object["metadata"].erase("annotations");
                }
            }
        }
    }
    if (object.contains("metadata") && object["metadata"].contains("deletionTimestamp")) {
        rec.phase = "Terminating";
        return out;  // the owned objects go with it (owner references)
    }
    if (!object.contains("apiVersion")) object["apiVersion"] = kCanaryGvk.apiVersion();
    if (!object.contains("kind")) object["kind"] = kCanaryGvk.kind;
    const std::string uid = kube::uidOf(object);
    const json rawStatus = object.contains("status") && object["status"].is_object()
                               ? object["status"]
                               : json::object();
    const json rawSpec = object.value("spec", json::object());

    auto statusParse = canary::parseCanaryStatus(rawStatus);
    if (!statusParse.errors.empty())
        spdlog::warn("canary {}: unreadable status fields: {}", key,
                     join(statusParse.errors, "; "));
    const canary::CanaryStatus& status = statusParse.status;
    const canary::Time now = clock.wallNow();

    Checks previous;
    {
        std::lock_guard lock(mu);
        auto u = uidByKey.find(key);
        if (u != uidByKey.end() && u->second != uid) checks.erase(u->second);  // re-created
        uidByKey[key] = uid;
        auto it = checks.find(uid);
        if (it != checks.end()) {
            previous = std::move(it->second);
            checks.erase(it);
        }
    }

    auto specParse = canary::parseCanarySpec(rawSpec);
    std::vector<std::string> errors = specParse.errors;
    const canary::CanarySpec& spec = specParse.spec;
    std::unique_ptr<router::Router> router;
    std::optional<router::RouteContext> ctx;
    std::string provider;
    canary::Observation obs;
    std::optional<json> target;

    if (errors.empty()) {
        if (spec.targetRef.kind != "Deployment" ||
            (!spec.targetRef.apiVersion.empty() && spec.targetRef.apiVersion != "apps/v1")) {
            std::string what =
                "spec.targetRef: only apps/v1 Deployment targets are supported, not ";
            what += spec.targetRef.apiVersion + " " + spec.targetRef.kind;
            errors.push_back(what);
        }
    }
    if (errors.empty()) {
        provider = router::providerOf(spec, opts.defaultProvider);
        try {
            router = router::makeRouter(provider);
        } catch (const router::RouterError& e) {
            errors.push_back(std::string("spec.provider: ") + e.what());
        }
        target = getOptional(kDeploymentGvk, ns, spec.targetRef.name);
        auto primary = getOptional(kDeploymentGvk, ns, spec.primaryName());
        obs.target = detail::observeDeployment(target);
        obs.primary = detail::observeDeployment(primary);
        if (target) obs.targetTemplateHash = podTemplateHash(*target);
        obs.metrics = previous.metrics;
        obs.webhooks = previous.webhooks;
        obs.requests = manualRequests(object);
        if (target && router) {
            const auto& labels =
                opts.selectorLabels.empty() ? router::defaultSelectorLabels() : opts.selectorLabels;
            auto selector = router::selectorOf(*target, labels);
            if (!selector) {
                errors.push_back("target " + spec.targetRef.name +
                                 ": spec.selector.matchLabels has none of the labels " +
                                 join(labels, ", "));
            } else {
                try {
                    ctx = router::makeRouteContext(object, *selector);
                    router->checkSpec(*ctx);
                } catch (const router::RouterError& e) {
                    errors.push_back(e.what());
                }
            }
        }
    }

    canary::Decision decision = errors.empty() ? canary::step(spec, status, obs, now)
                                               : canary::rejectInvalidSpec(status, errors, now);

    // Checks run while the actions are carried out, so the engine judges their results at
    // once (the "next step" of its contract) rather than a requeue later: a breach is acted on
    // in the reconcile that measured it. Bounded; results of the last pass wait for the next
    // reconcile.
    std::vector<canary::ManualAction> removed;
    Checks results;
    for (int pass = 0;; ++pass) {
        removed.insert(removed.end(), decision.removeRequests.begin(),
                       decision.removeRequests.end());
        Round round{*this,
                    ns,
                    name,
                    object,
                    rawSpec,
                    spec,
                    decision.status,
                    router.get(),
                    ctx ? &*ctx : nullptr,
                    provider,
                    {}};
        for (const canary::Action& action : decision.actions) {
            rec.actions.push_back(canary::describe(action));
            std::visit(round, action);
        }
        results = std::move(round.results);
        if (!results.metrics.empty()) rec.metrics = results.metrics;
        if (!results.any || !errors.empty() || pass >= 2) break;
        canary::Observation judged = obs;
        judged.metrics = results.metrics;
        judged.webhooks = results.webhooks;
        judged.requests.clear();  // taken by the first pass
        const canary::CanaryStatus current = decision.status;
        decision = canary::step(spec, current, judged, clock.wallNow());
        results = Checks{};
    }
    if (results.any) {
        std::lock_guard lock(mu);
        checks[uid] = std::move(results);
    }
    if (errors.empty() && router && ctx) healRoutes(object, *router, *ctx, decision, obs);

    json newStatus = rawStatus;
    for (const char* field : kEngineStatusFields) newStatus.erase(field);
    newStatus.update(canary::toJson(decision.status));
    if (newStatus != rawStatus) {
        writeStatus(key, object, newStatus);
        rec.statusWritten = true;
        if (decision.status.phase != status.phase) {
            spdlog::info(
                "canary {}: phase {} -> {}", key,
                status.phase == canary::Phase::None ? "(none)" : canary::toString(status.phase),
                canary::toString(decision.status.phase));
            if (decision.status.phase == canary::Phase::Succeeded) counters.promotions++;
            if (decision.status.phase == canary::Phase::Failed) counters.rollbacks++;
        }
    }
    // Requests are removed once their outcome is in the status: a failed removal leaves a
    // request that the status now marks as stale.
    std::sort(removed.begin(), removed.end());
    removed.erase(std::unique(removed.begin(), removed.end()), removed.end());
    if (!removed.empty()) {
        removeRequests(key, object, removed, newStatus);
        for (canary::ManualAction action : removed)
            rec.requestsRemoved.push_back(std::string(canary::annotationOf(action)));
    }
    rec.phase = std::string(canary::toString(decision.status.phase));
    rec.canaryWeight = decision.status.canaryWeight;
    rec.requeueAfter = std::max(std::chrono::seconds(1), decision.requeueAfter);
    out.requeueAfter = rec.requeueAfter;
    return out;
}

// ------------------------------------------------------------------------------------------
// Public API

CanaryController::CanaryController(kube::KubeClient& client,
                                   cache::SharedInformerFactory& informers, Options options)
    : impl_(std::make_unique<Impl>(client, informers, std::move(options))) {}

CanaryController::~CanaryController() {
    stop();
}

void CanaryController::start() {
    impl_->start();
}

bool CanaryController::waitForSync(std::chrono::milliseconds timeout) {
    return impl_->waitForSync(timeout);
}

void CanaryController::stop() {
    impl_->runtime.stop();
}

ReconcileRecord CanaryController::reconcileNow(const std::string& ns, const std::string& name) {
    impl_->ensureInformers();
    impl_->waitForSync(kCacheWait);
    return impl_->runtime
        .runNow(ns + "/" + name,
                [this](const std::string& key) { return impl_->reconcileKey(key); })
        .record;
}

Stats CanaryController::stats() const {
    Stats s;
    s.reconciles = impl_->counters.reconciles;
    s.errors = impl_->counters.errors;
    s.statusWrites = impl_->counters.statusWrites;
    s.metricQueries = impl_->counters.metricQueries;
    s.webhookCalls = impl_->counters.webhookCalls;
    s.promotions = impl_->counters.promotions;
    s.rollbacks = impl_->counters.rollbacks;
    s.queueDepth = impl_->runtime.queueDepth();
    return s;
}

void CanaryController::setObserver(std::function<void(const ReconcileRecord&)> observer) {
    impl_->observer.set(std::move(observer));
}

}  // namespace sluice::canarycontroller
