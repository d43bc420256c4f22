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

#include "autoscaler.h"
#include "heal.h"
#include "impl.h"
#include "sluice/cache/store.h"
#include "sluice/metricprovider/builtin.h"
#include "sluice/metricprovider/metric_template.h"
#include "sluice/router/apply.h"
#include "sluice/router/router.h"
#include "sluice/runtime/runtime.h"
#include "sluice/util/strings.h"

namespace sluice::canarycontroller {

using nlohmann::json;

namespace {

const kube::GroupVersionKind kCanaryGvk{"sluice.io", "v1alpha1", "Canary"};
const kube::GroupVersionKind kDeploymentGvk{"apps", "v1", "Deployment"};
const kube::GroupVersionKind kDaemonSetGvk{"apps", "v1", "DaemonSet"};
const kube::GroupVersionKind kMetricTemplateGvk{"sluice.io", "v1alpha1", "MetricTemplate"};
const kube::GroupVersionKind kSecretGvk{"", "v1", "Secret"};
const kube::GroupVersionKind kAlertProviderGvk{"sluice.io", "v1alpha1", "AlertProvider"};

constexpr auto kCacheWait = std::chrono::seconds(30);

// An action the controller must not carry out (the target moved on): nothing more is done and
// the status is not written; the next step sees the new revision.
class Refused : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

kube::EventType toKube(canaryengine::EventType type) {
    return type == canaryengine::EventType::Warning ? kube::EventType::Warning
                                                    : kube::EventType::Normal;
}

// Session affinity: `ctx` with the cookies to route `canaryWeight` percent to the canary by,
// moved on from `cookies` (the status') as Flagger's routers move them.
router::RouteContext withCookies(const router::RouteContext& ctx,
                                 const canaryengine::SessionAffinityCookies& cookies,
                                 int canaryWeight) {
    router::RouteContext out = ctx;
    canaryengine::SessionAffinitySpec& affinity = *out.spec.analysis.sessionAffinity;
    affinity.cookies = cookies;
    affinity.cookies = canaryengine::nextSessionAffinityCookies(affinity, canaryWeight,
                                                                canaryengine::randomCookieValue);
    return out;
}

// The Canary status fields of the session-affinity cookies (Flagger's names).
constexpr const char* kCookieField = "sessionAffinityCookie";
constexpr const char* kPreviousCookieField = "previousSessionAffinityCookie";

struct Checks {
    std::map<std::string, canaryengine::MetricResult> metrics;
    std::map<std::string, canaryengine::WebhookResult> webhooks;
    bool any = false;
};

// The Canary as our last write left it, until the watch cache shows that write (kept by
// runtime::PendingWrites with the version that shows it).
struct UnseenWrites {
    json status;
    std::optional<json> annotations;  // after removing request annotations (null: none left)
};

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
    struct Observed;     // what one reconcile observed of a Canary
    struct Reconciler;   // one reconcile, phase by phase
    struct Round;        // carries out one decision's actions
    struct MetricCheck;  // queries one metric

    std::optional<json> getOptional(const kube::GroupVersionKind& gvk, const std::string& ns,
                                    const std::string& name);
    void writeStatus(const std::string& key, json& object, const json& status);
    // Removes request annotations (a merge patch with null values).
    void removeRequests(const std::string& key, const json& object,
                        const std::vector<canaryengine::ManualAction>& actions, const json& status);
    // Remembers what a write answered, for reconciles that run before the cache shows it.
    void remember(const std::string& key, const json& response, const json& status);
    std::shared_ptr<metricprovider::MetricProvider> providerFor(
        const metricprovider::ClientOptions& o);
    // The version of the autoscaler's kind this cluster serves; nullopt when it serves none.
    std::optional<kube::GroupVersionKind> scalerKind(const canaryengine::AutoscalerRef& ref);

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
    runtime::PendingWrites<UnseenWrites> pending;  // by key: writes the cache may not show

    std::mutex baseMu;
    cache::Informer* canaryInformer = nullptr;
    cache::Informer* deploymentInformer = nullptr;
    cache::Informer* daemonSetInformer = nullptr;

    std::mutex mu;                         // guards the maps below
    std::map<std::string, Checks> checks;  // by Canary uid: results for the next step
    std::map<std::string, std::string> uidByKey;
    // By key: the FieldsNotImplemented message last recorded (said once, not every reconcile).
    std::map<std::string, std::string> unimplementedSaid;
    std::map<std::string, std::shared_ptr<metricprovider::MetricProvider>> providers;
    std::optional<kube::GroupVersionKind> hpaGvk;  // once discovery has found a served version

    struct Counters {
        std::atomic<uint64_t> reconciles{0}, errors{0}, statusWrites{0}, metricQueries{0},
            webhookCalls{0}, promotions{0}, rollbacks{0}, alerts{0};
    } counters;
};

// ------------------------------------------------------------------------------------------
// One metric check: where its query comes from and runs (the default server, or its
// MetricTemplate's provider and Secret), then the query.

struct CanaryController::Impl::MetricCheck {
    CanaryController::Impl& c;
    const std::string& ns;  // the Canary's (and a template's, unless it names another)

    struct Source {
        metricprovider::ClientOptions client;
        std::optional<std::string> templateQuery;
        std::string error;  // the metric cannot be queried
    };

    canaryengine::MetricResult run(const canaryengine::MetricSpec& metric,
                                   const metricprovider::TemplateModel& model,
                                   const std::string& provider, const std::string& defaultServer) {
        Source source = sourceOf(metric, defaultServer);
        if (!source.error.empty()) return canaryengine::MetricResult::queryError(source.error);
        source.client.timeout = c.opts.metricsTimeout;
        metricprovider::RenderResult query = metricprovider::analysisQuery(
            metric, provider, model, source.templateQuery ? &*source.templateQuery : nullptr);
        if (!query.ok()) return canaryengine::MetricResult::queryError(query.error);
        std::shared_ptr<metricprovider::MetricProvider> server;
        try {
            server = c.providerFor(source.client);
        } catch (const std::exception& e) {
            return canaryengine::MetricResult::queryError(e.what());
        }
        c.counters.metricQueries++;
        return server->query(query.query);
    }

    // A missing MetricTemplate leaves the default server and the metric's own query.
    Source sourceOf(const canaryengine::MetricSpec& metric, const std::string& defaultServer) {
        Source source;
        source.client.address = defaultServer;
        if (!metric.templateRef) return source;
        const std::string tns =
            metric.templateRef->namespaceName.empty() ? ns : metric.templateRef->namespaceName;
        const std::string ref = tns + "/" + metric.templateRef->name;
        auto failed = [&](const std::string& why) {
            source.error = "MetricTemplate " + ref + ": " + why;
            return source;
        };
        std::optional<json> tmpl;
        try {
            tmpl = c.getOptional(kMetricTemplateGvk, tns, metric.templateRef->name);
        } catch (const std::exception& e) {
            source.error = "reading MetricTemplate " + ref + ": " + e.what();
            return source;
        }
        if (!tmpl) return source;
        auto parsed = metricprovider::parseMetricTemplate(*tmpl);
        if (!parsed.ok()) return failed(join(parsed.errors, "; "));
        const metricprovider::MetricTemplateProvider& p = parsed.metricTemplate.provider;
        metricprovider::SecretDataResult secret;
        if (!p.secretName.empty()) {
            secret = secretData(tns, p.secretName);
            if (!secret.ok()) return failed(secret.error);
        }
        auto co = metricprovider::clientOptionsFor(p, defaultServer,
                                                   p.secretName.empty() ? nullptr : &secret.data);
        if (!co.ok()) return failed(co.error);
        source.client = co.options;
        source.templateQuery = parsed.metricTemplate.query;
        return source;
    }

    // The decoded data of a template provider's Secret (its error names the Secret).
    metricprovider::SecretDataResult secretData(const std::string& tns,
                                                const std::string& secretName) {
        metricprovider::SecretDataResult out;
        try {
            auto secret = c.getOptional(kSecretGvk, tns, secretName);
            if (!secret) {
                out.error = "Secret " + secretName + " not found";
                return out;
            }
            out = metricprovider::decodeSecretData(*secret);
            if (!out.ok()) out.error = "Secret " + secretName + ": " + out.error;
        } catch (const std::exception& e) {
            out.error = "reading Secret " + secretName + ": " + e.what();
        }
        return out;
    }
};

// ------------------------------------------------------------------------------------------
// The actions of one decision, one operator() per kind.

struct CanaryController::Impl::Round {
    CanaryController::Impl& c;
    const std::string& ns;
    const std::string& name;
    const json& object;  // the Canary (for Events and owner references)
    const canaryengine::CanarySpec& spec;
    const canaryengine::CanaryStatus& next;  // the status the decision leads to
    const router::Router* router = nullptr;
    const router::RouteContext* ctx = nullptr;
    std::string provider;
    Checks results;
    // spec.autoscalerRef's served kind, and whether an autoscaler scales the primary (it has
    // a copy, or one is being made from the target's).
    std::optional<kube::GroupVersionKind> scalerGvk;
    bool autoscaled = false;
    // analysis.sessionAffinity's cookies, moved along as the weights are set (nullptr: none).
    canaryengine::SessionAffinityCookies* cookies = nullptr;

    json requireTarget() {
        const kube::GroupVersionKind& gvk = detail::workloadGvk(spec.targetRef);
        auto target = c.getOptional(gvk, ns, spec.targetRef.name);
        if (!target) throw Refused("target " + gvk.kind + " " + spec.targetRef.name + " not found");
        return *target;
    }
    const router::Router& requireRouter() const {
        if (!router || !ctx) throw Refused("no router for this Canary");
        return *router;
    }

    // `live`: the primary as it is (nullopt: it is being created).
    void applyPrimary(const json& target, int replicas, const std::optional<json>& live) {
        requireRouter();
        kube::ApplyOptions ao;
        ao.fieldManager = c.opts.fieldManager;
        ao.force = true;
        if (detail::isDaemonSet(spec.targetRef)) {
            // A DaemonSet's pods follow the nodes: there are no replicas to carry over.
            c.client.apply(
                router::withOwner(primaryDaemonSetFor(target, spec.primaryName(),
                                                      ctx->selector.label, ctx->selector.value),
                                  *ctx),
                ao);
            return;
        }
        json primary = primaryDeploymentFor(target, spec.primaryName(), ctx->selector.label,
                                            ctx->selector.value, replicas);
        // The replicas of an autoscaled primary are its autoscaler's: left out of the apply,
        // except while this manager still owns them (the autoscaler has not set them yet),
        // where leaving them out would reset them to 1; `replicas` is then their live value.
        if (autoscaled && live && !detail::appliesReplicas(*live, c.opts.fieldManager))
            primary["spec"].erase("replicas");
        c.client.apply(router::withOwner(std::move(primary), *ctx), ao);
    }

    void setWeights(int primaryWeight, int canaryWeight, bool mirror) {
        const router::Router& r = requireRouter();
        router::ReconcileOptions ro;
        ro.fieldManager = c.opts.fieldManager;
        if (!cookies) {
            router::reconcileRoutes(c.client, r, *ctx,
                                    router::Weights{primaryWeight, canaryWeight, mirror}, ro);
            return;
        }
        router::RouteContext sticky = withCookies(*ctx, *cookies, canaryWeight);
        router::reconcileRoutes(c.client, r, sticky,
                                router::Weights{primaryWeight, canaryWeight, mirror}, ro);
        *cookies = sticky.spec.analysis.sessionAffinity->cookies;
    }

    void operator()(const canaryengine::action::InitializePrimary& a) {
        json target = requireTarget();
        if (podTemplateHash(target) != a.templateHash)
            throw Refused("target " + spec.targetRef.name + " changed before initialization");
        applyPrimary(target, std::max(1, detail::specReplicas(target)), std::nullopt);
        // The primary and canary Services only: the apex Service and the routes move traffic
        // onto the primary, which happens once it is ready (SetWeights), never before.
        kube::ApplyOptions ao;
        ao.fieldManager = c.opts.fieldManager;
        ao.force = true;
        for (router::ServiceRole role : {router::ServiceRole::Primary, router::ServiceRole::Canary})
            c.client.apply(router::withOwner(router::buildService(*ctx, role), *ctx), ao);
    }

    void operator()(const canaryengine::action::ScaleTarget& a) {
        json target = requireTarget();
        pauseTargetScaler(a.replicas == 0);
        std::optional<json> patch = detail::scalePatch(spec.targetRef, target, a.replicas);
        if (!patch) return;
        kube::PatchOptions po;
        po.fieldManager = c.opts.fieldManager;
        c.client.patch(detail::workloadGvk(spec.targetRef), ns, spec.targetRef.name,
                       kube::PatchType::Merge, patch->dump(), po);
    }

    void operator()(const canaryengine::action::SetWeights& a) {
        setWeights(a.primary, a.canary, a.mirror);
    }

    void operator()(const canaryengine::action::CopyTargetToPrimary& a) {
        json target = requireTarget();
        if (podTemplateHash(target) != a.templateHash)
            throw Refused("target " + spec.targetRef.name +
                          " changed since its analysis: not promoting it");
        auto primary = c.getOptional(detail::workloadGvk(spec.targetRef), ns, spec.primaryName());
        int replicas =
            primary ? detail::specReplicas(*primary) : std::max(1, detail::specReplicas(target));
        applyPrimary(target, replicas, primary);
    }

    // The primary's autoscaler, copied from the target's: created by the first, kept in line
    // at promotion by the second (server-side apply, owned by the Canary).
    void operator()(const canaryengine::action::InitializePrimaryAutoscaler&) {
        applyPrimaryAutoscaler();
    }
    void operator()(const canaryengine::action::CopyAutoscalerToPrimary&) {
        applyPrimaryAutoscaler();
    }

    void applyPrimaryAutoscaler() {
        requireRouter();
        const canaryengine::AutoscalerRef& ref = *spec.autoscalerRef;
        std::optional<json> target =
            scalerGvk ? c.getOptional(*scalerGvk, ns, ref.name) : std::nullopt;
        if (!target) throw Refused(ref.kind + " " + ref.name + " (spec.autoscalerRef) not found");
        kube::ApplyOptions ao;
        ao.fieldManager = c.opts.fieldManager;
        ao.force = true;
        c.client.apply(router::withOwner(detail::primaryAutoscalerFor(*target, spec), *ctx), ao);
    }

    // A ScaledObject on the target is paused while the target is at zero replicas (KEDA would
    // scale it up again: an HPA leaves a workload at zero alone) and resumed before it scales
    // up, as Flagger's Pause/ResumeTargetScaler.
    void pauseTargetScaler(bool pause) {
        if (!spec.autoscalerRef || !spec.autoscalerRef->isScaledObject() || !scalerGvk) return;
        auto scaler = c.getOptional(*scalerGvk, ns, spec.autoscalerRef->name);
        if (!scaler) return;
        auto patch = detail::scaledObjectPausePatch(*scaler, pause);
        if (!patch) return;
        kube::PatchOptions po;
        po.fieldManager = c.opts.fieldManager;
        c.client.patch(*scalerGvk, ns, spec.autoscalerRef->name, kube::PatchType::Merge,
                       patch->dump(), po);
    }

    void operator()(const canaryengine::action::CallWebhooks& a) {
        const canaryengine::Event* event =
            a.type == canaryengine::WebhookType::Event && a.event ? &*a.event : nullptr;
        for (const canaryengine::WebhookSpec* hook : spec.webhooksOfType(a.type)) {
            WebhookRequest req{
                hook->name, hook->url,
                std::chrono::duration_cast<std::chrono::milliseconds>(hook->timeout),
                detail::webhookPayload(ns, name, next, *hook, event,
                                       event ? c.clock.wallNow() : canaryengine::Time())};
            canaryengine::WebhookResult result = c.webhooks->call(req);
            c.counters.webhookCalls++;
            if (result.outcome != canaryengine::WebhookOutcome::Succeeded)
                spdlog::info("canary {}/{}: {} webhook {} failed: {}", ns, name,
                             canaryengine::toString(a.type), hook->name, result.message);
            if (a.type == canaryengine::WebhookType::Event) continue;  // nothing waits for it
            results.webhooks[hook->name] = std::move(result);
            results.any = true;
        }
    }

    void operator()(const canaryengine::action::RunMetricChecks&) {
        // Flagger's spec.metricsServer overrides the controller's default server.
        const std::string& server =
            spec.metricsServer.empty() ? c.opts.metricsServer : spec.metricsServer;
        MetricCheck check{c, ns};
        for (const canaryengine::MetricSpec& metric : spec.analysis.metrics) {
            canaryengine::MetricResult r =
                check.run(metric, detail::templateModel(ns, name, spec, metric), provider, server);
            if (!r.hasValue())
                spdlog::info("canary {}/{}: metric {}: no value: {}", ns, name, metric.name,
                             r.reason);
            results.metrics[metric.name] = std::move(r);
        }
        results.any = true;
    }

    void operator()(const canaryengine::action::EmitEvent& a) {
        spdlog::info("canary {}/{}: {} {}: {}", ns, name, canaryengine::toString(a.event.type),
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

    // A Deployment's or DaemonSet's change (a new template of a target, readiness of a
    // primary) enqueues the Canaries that target it.
    deploymentInformer = &informers.informerFor(kDeploymentGvk, opts.watchNamespace);
    daemonSetInformer = &informers.informerFor(kDaemonSetGvk, opts.watchNamespace);
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
    const cache::EventHandler byWorkload{
        byDeployment,
        [byDeployment](const cache::ObjectPtr& o, const cache::ObjectPtr& n) {
            // Status-only changes matter too (readiness), but not resyncs of the same version.
            if (kube::resourceVersionOf(*o) != kube::resourceVersionOf(*n) || o == n)
                byDeployment(n);
        },
        byDeployment};
    deploymentInformer->addEventHandler(byWorkload);
    daemonSetInformer->addEventHandler(byWorkload);
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
    return canaryInformer->waitForSync(left()) && deploymentInformer->waitForSync(left()) &&
           daemonSetInformer->waitForSync(left());
}

void CanaryController::Impl::start() {
    if (runtime.stopped()) return;
    ensureInformers();
    if (!opts.ownership) opts.ownership = std::make_shared<runtime::StaticOwnership>(opts.shard);
    opts.ownership->onKeysGained(
        [gate = runtime.gate(), canaries = canaryInformer](const auto& gained) {
            for (const auto& obj : canaries->store().list())
                if (const auto key = cache::storeKeyOf(*obj); gained(key)) gate->add(key);
        });
    runtime.start([this](const std::string& key) {
        // The claim fences this reconcile's writes (kube/fence.h) while it runs.
        const runtime::Claim claim = opts.ownership->claim(key);
        if (!claim) return runtime::Result{};  // another replica's
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

std::optional<kube::GroupVersionKind> CanaryController::Impl::scalerKind(
    const canaryengine::AutoscalerRef& ref) {
    auto served = [this](const kube::GroupVersionKind& gvk) {
        try {
            client.resourceFor(gvk);
            return true;
        } catch (const kube::ApiError& e) {
            if (e.isNotFound()) return false;
            throw;
        }
    };
    if (ref.isScaledObject()) {
        if (served(detail::kScaledObjectGvk)) return detail::kScaledObjectGvk;
        return std::nullopt;
    }
    {
        std::lock_guard lock(mu);
        if (hpaGvk) return hpaGvk;
    }
    // autoscaling/v2 first, as Flagger; the answer holds for the controller's lifetime.
    auto found = detail::hpaKind(served);
    std::lock_guard lock(mu);
    if (found) hpaGvk = found;
    return found;
}

std::shared_ptr<metricprovider::MetricProvider> CanaryController::Impl::providerFor(
    const metricprovider::ClientOptions& o) {
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
    pending.record(key, rv, [&](UnseenWrites& p) {
        p.status = response.contains("status") ? response["status"] : status;
        static const json::json_pointer kAnnotations("/metadata/annotations");
        if (response.contains("metadata"))
            p.annotations = response.contains(kAnnotations) ? response.at(kAnnotations) : json();
    });
}

void CanaryController::Impl::removeRequests(const std::string& key, const json& object,
                                            const std::vector<canaryengine::ManualAction>& actions,
                                            const json& status) {
    json annotations = json::object();
    for (canaryengine::ManualAction action : actions)
        annotations[std::string(canaryengine::annotationOf(action))] = nullptr;
    json patch = {{"metadata", {{"annotations", annotations}}}};
    kube::PatchOptions po;
    po.fieldManager = opts.fieldManager;
    json response = client.patch(kCanaryGvk, kube::namespaceOf(object), kube::nameOf(object),
                                 kube::PatchType::Merge, patch.dump(), po);
    remember(key, response, status);
}

// ------------------------------------------------------------------------------------------
// One reconcile: read the Canary -> observe (the engine's input) -> canaryengine::step -> carry out
// the actions -> write the status.

// What a reconcile observed of a Canary: its parsed spec, the engine's input, and the router
// the actions move traffic with.
struct CanaryController::Impl::Observed {
    canaryengine::CanarySpec spec;
    std::vector<std::string> errors;  // spec errors: the engine only reports them
    std::unique_ptr<router::Router> router;
    std::optional<router::RouteContext> ctx;
    std::string provider;
    canaryengine::Observation obs;
    std::string revision;                             // the target's images, for alerts
    std::optional<kube::GroupVersionKind> scalerGvk;  // spec.autoscalerRef's, when served
};

struct CanaryController::Impl::Reconciler {
    CanaryController::Impl& c;
    const std::string& ns;
    const std::string& name;
    const std::string key;
    std::string uid;
    Outcome out;
    // What the decisions of this reconcile alert about, sent once the status is written (a
    // failed write retries the reconcile, which would alert again).
    std::vector<canaryengine::AlertMessage> alerts;
    std::optional<json> deleting;  // the Canary, when it is being deleted with revertOnDeletion
    // analysis.sessionAffinity's cookies: the status', then as this reconcile's routes moved
    // them (written with the status).
    std::optional<canaryengine::SessionAffinityCookies> cookies;

    Outcome run() {
        out.record.key = key;
        std::optional<json> object = readCanary();
        if (!object) {
            if (deleting) revert(*deleting);
            return out;
        }
        detail::syncRevertFinalizer(c.client, *object);
        uid = kube::uidOf(*object);
        const json rawStatus = object->contains("status") && (*object)["status"].is_object()
                                   ? (*object)["status"]
                                   : json::object();
        auto statusParse = canaryengine::parseCanaryStatus(rawStatus);
        if (!statusParse.errors.empty())
            spdlog::warn("canary {}: unreadable status fields: {}", key,
                         join(statusParse.errors, "; "));
        const canaryengine::CanaryStatus& status = statusParse.status;
        const canaryengine::Time now = c.clock.wallNow();

        Observed seen = observe(*object, takeChecks());
        if (seen.spec.analysis.sessionAffinity) {
            auto text = [&](const char* field) {
                auto it = rawStatus.find(field);
                return it != rawStatus.end() && it->is_string() ? it->get<std::string>()
                                                                : std::string();
            };
            cookies = canaryengine::SessionAffinityCookies{text(kCookieField),
                                                           text(kPreviousCookieField), ""};
        }
        canaryengine::Decision decision =
            seen.errors.empty() ? canaryengine::step(seen.spec, status, seen.obs, now)
                                : canaryengine::rejectInvalidSpec(status, seen.errors, now);
        collectAlerts(seen, status, decision);
        std::vector<canaryengine::ManualAction> removed;
        decision = carryOut(*object, seen, std::move(decision), removed);
        if (seen.errors.empty() && seen.router && seen.ctx) healRoutes(*object, seen, decision);
        writeResults(*object, rawStatus, status.phase, decision, std::move(removed));
        sendAlerts(*object, seen.spec);
        return out;
    }

    // A Canary being deleted with revertOnDeletion: polled until its target is restored.
    void revert(const json& object) {
        detail::RevertOptions ro{c.client,
                                 *c.events,
                                 c.opts.fieldManager,
                                 c.opts.selectorLabels,
                                 c.opts.defaultProvider,
                                 c.clock.wallNow()};
        out.requeueAfter = detail::revertOnDeletion(ro, object);
        out.record.requeueAfter = out.requeueAfter;
    }

    void collectAlerts(const Observed& seen, const canaryengine::CanaryStatus& before,
                       const canaryengine::Decision& decision) {
        if (!seen.errors.empty() || !c.opts.notifier) return;
        auto more = canaryengine::alertsFor(seen.spec, {ns, name, seen.revision}, before, decision);
        alerts.insert(alerts.end(), std::make_move_iterator(more.begin()),
                      std::make_move_iterator(more.end()));
    }

    // Hands each alert to the notifier for every subscription it reaches (Flagger: the
    // controller-wide defaults when the Canary has no alerts). Never waits for delivery.
    void sendAlerts(const json& object, const canaryengine::CanarySpec& spec) {
        if (alerts.empty() || !c.opts.notifier) return;
        std::map<std::string, std::optional<notify::Destination>> resolved;  // by alert name
        for (const canaryengine::AlertMessage& alert : alerts) {
            const notify::Message message = detail::messageFor(alert);
            std::vector<std::pair<std::string, notify::Destination>> to;
            if (spec.analysis.alerts.empty()) {
                for (notify::Destination& d : detail::defaultDestinations(c.opts.defaultAlerts))
                    to.emplace_back("default", std::move(d));
            }
            for (const canaryengine::AlertSpec* sub :
                 canaryengine::subscribersOf(spec, alert.severity)) {
                auto it = resolved.find(sub->name);
                if (it == resolved.end())
                    it = resolved.emplace(sub->name, resolveAlert(object, *sub)).first;
                if (it->second) to.emplace_back(sub->name, *it->second);
            }
            for (auto& [alertName, destination] : to) {
                const std::string label = destination.label();
                const bool queued = c.opts.notifier->send(std::move(destination), message);
                c.counters.alerts++;
                out.record.alertsSent.push_back(std::string(toString(alert.severity)) + " " +
                                                alert.title + " -> " + label);
                if (!queued)
                    c.events->record(object, kube::EventType::Warning, "AlertNotSent",
                                     "alert " + alertName + " (" + label + "): " + alert.title +
                                         ": not queued (invalid destination or queue full)");
            }
        }
    }

    // The destination of one of the Canary's alerts: its AlertProvider and that one's Secret.
    // Missing or unusable, it is a Warning Event, never a failed reconcile.
    std::optional<notify::Destination> resolveAlert(const json& object,
                                                    const canaryengine::AlertSpec& alert) {
        const std::string pns = alert.providerNamespace.empty() ? ns : alert.providerNamespace;
        const std::string ref = "AlertProvider " + pns + "/" + alert.providerName;
        auto fail = [&](const std::string& why) -> std::optional<notify::Destination> {
            spdlog::warn("canary {}: alert {}: {}", key, alert.name, why);
            c.events->record(object, kube::EventType::Warning, "AlertProviderFailed",
                             "alert " + alert.name + ": " + why);
            return std::nullopt;
        };
        try {
            auto provider = c.getOptional(kAlertProviderGvk, pns, alert.providerName);
            if (!provider) return fail(ref + " not found");
            detail::AlertProviderSpec spec = detail::parseAlertProvider(*provider);
            std::optional<metricprovider::SecretDataResult> secret;
            if (!spec.secretName.empty()) {
                auto object = c.getOptional(kSecretGvk, pns, spec.secretName);
                if (!object) return fail(ref + ": Secret " + spec.secretName + " not found");
                secret = metricprovider::decodeSecretData(*object);
                if (!secret->ok())
                    return fail(ref + ": Secret " + spec.secretName + ": " + secret->error);
            }
            detail::DestinationResult to =
                detail::destinationFor(spec, secret ? &secret->data : nullptr);
            if (!to.ok()) return fail(ref + ": " + to.error);
            return std::move(to.destination);
        } catch (const std::exception& e) {
            return fail("reading " + ref + ": " + e.what());
        }
    }

    // The Canary as the cache shows it plus our own writes the cache does not show yet;
    // nullopt when it is gone or being deleted.
    std::optional<json> readCanary() {
        auto cached = c.canaryInformer->store().get(ns, name);
        if (!cached) {
            forget();
            return std::nullopt;
        }
        json object = *cached;
        overlayPending(object);
        if (object.contains("metadata") && object["metadata"].contains("deletionTimestamp")) {
            out.record.phase = "Terminating";
            // The owned objects go with it (owner references); revertOnDeletion first
            // restores the target.
            if (detail::hasRevertFinalizer(object)) deleting = std::move(object);
            return std::nullopt;
        }
        if (!object.contains("apiVersion")) object["apiVersion"] = kCanaryGvk.apiVersion();
        if (!object.contains("kind")) object["kind"] = kCanaryGvk.kind;
        return object;
    }

    // Gone: forget what was kept for it.
    void forget() {
        c.pending.forget(key);
        std::lock_guard lock(c.mu);
        c.unimplementedSaid.erase(key);
        auto u = c.uidByKey.find(key);
        if (u != c.uidByKey.end()) {
            c.checks.erase(u->second);
            c.uidByKey.erase(u);
        }
    }

    void overlayPending(json& object) {
        auto unseen = c.pending.unseen(key, kube::resourceVersionOf(object));
        if (!unseen) return;
        const auto& [version, writes] = *unseen;
        object["status"] = writes.status;
        object["metadata"]["resourceVersion"] = version;
        if (writes.annotations) {
            if (writes.annotations->is_object())
                object["metadata"]["annotations"] = *writes.annotations;
            else
                object["metadata"].erase("annotations");
        }
    }

    // The check results the previous reconcile gathered for this Canary (none if re-created).
    Checks takeChecks() {
        Checks previous;
        std::lock_guard lock(c.mu);
        auto u = c.uidByKey.find(key);
        if (u != c.uidByKey.end() && u->second != uid) c.checks.erase(u->second);  // re-created
        c.uidByKey[key] = uid;
        auto it = c.checks.find(uid);
        if (it != c.checks.end()) {
            previous = std::move(it->second);
            c.checks.erase(it);
        }
        return previous;
    }

    // The spec, the target and primary Deployments, the previous check results and the
    // requests: the engine's input. Spec errors stop it short of reading the cluster.
    Observed observe(const json& object, Checks previous) {
        Observed seen;
        canaryengine::SpecParseResult parsed =
            canaryengine::parseCanarySpec(object.value("spec", json::object()));
        seen.spec = std::move(parsed.spec);
        seen.errors = std::move(parsed.errors);
        sayUnimplemented(object);
        if (seen.errors.empty()) {
            if (std::string error = detail::unsupportedTarget(seen.spec.targetRef); !error.empty())
                seen.errors.push_back(error);
        }
        if (!seen.errors.empty()) return seen;
        seen.provider = router::providerOf(seen.spec, c.opts.defaultProvider);
        try {
            seen.router = router::makeRouter(seen.provider);
        } catch (const router::RouterError& e) {
            seen.errors.push_back(std::string("spec.provider: ") + e.what());
        }
        const canaryengine::ObjectRef& ref = seen.spec.targetRef;
        auto target = c.getOptional(detail::workloadGvk(ref), ns, ref.name);
        auto primary = c.getOptional(detail::workloadGvk(ref), ns, seen.spec.primaryName());
        seen.obs.target =
            detail::observeWorkload(ref, target, seen.spec.analysis.canaryReadyThreshold);
        seen.obs.primary =
            detail::observeWorkload(ref, primary, seen.spec.analysis.primaryReadyThreshold);
        if (target) seen.obs.targetTemplateHash = podTemplateHash(*target);
        if (target) seen.revision = detail::containerImages(*target);
        seen.obs.metrics = std::move(previous.metrics);
        seen.obs.webhooks = std::move(previous.webhooks);
        seen.obs.requests = detail::manualRequests(object);
        if (seen.spec.autoscalerRef) observeAutoscaler(seen);
        if (target && seen.router) routeContext(object, *target, seen);
        if (target && detail::isDaemonSet(ref)) checkDaemonSet(*target, seen);
        return seen;
    }

    // A DaemonSet updated OnDelete would never roll its primary's pods onto a promoted
    // template: refused, as Flagger does.
    void checkDaemonSet(const json& target, Observed& seen) {
        static const json::json_pointer kType("/spec/updateStrategy/type");
        if (!target.contains(kType) || !target.at(kType).is_string()) return;
        const std::string type = target.at(kType).get<std::string>();
        if (type.empty() || type == "RollingUpdate") return;
        seen.errors.push_back("target DaemonSet " + seen.spec.targetRef.name +
                              ": spec.updateStrategy.type must be RollingUpdate, not " + type);
    }

    // The autoscaler the Canary names and the primary's copy of it; a kind the cluster does
    // not serve counts as missing.
    void observeAutoscaler(Observed& seen) {
        const canaryengine::AutoscalerRef& ref = *seen.spec.autoscalerRef;
        seen.scalerGvk = c.scalerKind(ref);
        if (!seen.scalerGvk) return;
        seen.obs.autoscaler.target = c.getOptional(*seen.scalerGvk, ns, ref.name).has_value();
        seen.obs.autoscaler.primary =
            c.getOptional(*seen.scalerGvk, ns, ref.primaryName()).has_value();
    }

    // Fields Flagger acts on and this version does not: a Warning Event when the set changes.
    void sayUnimplemented(const json& object) {
        const auto fields = canaryengine::unimplementedFieldsIn(object.value("spec", json()));
        const std::string message =
            fields.empty() ? ""
                           : join(fields, ", ") +
                                 ": set, but not implemented by this version of Sluice, so "
                                 "ignored (see docs/crds.md)";
        {
            std::lock_guard lock(c.mu);
            std::string& said = c.unimplementedSaid[key];
            if (said == message) return;
            said = message;
        }
        if (!message.empty())
            c.events->record(object, kube::EventType::Warning, "FieldsNotImplemented", message);
    }

    // The routing context from the target's pod labels; a Canary its router cannot route is a
    // spec error.
    void routeContext(const json& object, const json& target, Observed& seen) {
        const auto& labels =
            c.opts.selectorLabels.empty() ? router::defaultSelectorLabels() : c.opts.selectorLabels;
        auto selector = router::selectorOf(target, labels);
        if (!selector) {
            seen.errors.push_back("target " + seen.spec.targetRef.name +
                                  ": spec.selector.matchLabels has none of the labels " +
                                  join(labels, ", "));
            return;
        }
        try {
            seen.ctx = router::makeRouteContext(object, seen.spec, *selector);
            seen.router->checkSpec(*seen.ctx);
            // Only the Istio and Gateway API routers write sticky routes.
            if (seen.spec.analysis.sessionAffinity &&
                !dynamic_cast<const router::IstioRouter*>(seen.router.get()) &&
                !dynamic_cast<const router::GatewayApiRouter*>(seen.router.get())) {
                throw router::RouterError("the " + seen.provider +
                                          " provider cannot route by session affinity cookie "
                                          "(analysis.sessionAffinity)");
            }
        } catch (const router::RouterError& e) {
            seen.errors.push_back(e.what());
        }
    }

    // Carries out the decision's actions and returns the decision the status is written from.
    // Checks run while the actions are carried out, so the engine judges their results at
    // once (the "next step" of its contract) rather than a requeue later: a breach is acted on
    // in the reconcile that measured it. Bounded; results of the last pass wait for the next
    // reconcile. `removed` gathers the request annotations the decisions took.
    canaryengine::Decision carryOut(const json& object, const Observed& seen,
                                    canaryengine::Decision decision,
                                    std::vector<canaryengine::ManualAction>& removed) {
        Checks results;
        for (int pass = 0;; ++pass) {
            removed.insert(removed.end(), decision.removeRequests.begin(),
                           decision.removeRequests.end());
            results = runActions(object, seen, decision);
            if (!results.metrics.empty()) out.record.metrics = results.metrics;
            if (!results.any || !seen.errors.empty() || pass >= 2) break;
            canaryengine::Observation judged = seen.obs;
            judged.metrics = results.metrics;
            judged.webhooks = results.webhooks;
            judged.requests.clear();  // taken by the first pass
            const canaryengine::CanaryStatus current = decision.status;
            decision = canaryengine::step(seen.spec, current, judged, c.clock.wallNow());
            collectAlerts(seen, current, decision);
        }
        if (results.any) {
            std::lock_guard lock(c.mu);
            c.checks[uid] = std::move(results);
        }
        return decision;
    }

    Checks runActions(const json& object, const Observed& seen,
                      const canaryengine::Decision& decision) {
        Round round{c,
                    ns,
                    name,
                    object,
                    seen.spec,
                    decision.status,
                    seen.router.get(),
                    seen.ctx ? &*seen.ctx : nullptr,
                    seen.provider,
                    {},
                    seen.scalerGvk,
                    seen.obs.autoscaler.target || seen.obs.autoscaler.primary,
                    cookies ? &*cookies : nullptr};
        for (const canaryengine::Action& action : decision.actions) {
            out.record.actions.push_back(canaryengine::describe(action));
            std::visit(round, action);
        }
        return std::move(round.results);
    }

    // Routing at rest, as Flagger reconciles its router objects on every loop: every object the
    // router builds for the status' weights (the Services and the router's own) is compared
    // with the live one (one GET each, plus the router's inputs), and only those missing or
    // whose fields the router sets differ are re-applied (detail::healRouting). Nothing is
    // written while the routing is as built.
    void healRoutes(const json& object, const Observed& seen,
                    const canaryengine::Decision& decision) {
        std::optional<router::Weights> want = detail::weightsToKeep(decision, seen.obs);
        if (!want) return;
        // The status has no mirroring flag: the engine derives it from the status.
        want->mirror = canaryengine::mirrorsTraffic(seen.spec, decision.status);
        const router::RouteContext& ctx = *seen.ctx;
        std::optional<canaryengine::SessionAffinityCookies> moved;
        detail::AdjustContext keepCookies = nullptr;
        if (cookies) {
            keepCookies = [&](router::RouteContext& routed, const json* liveWeights) {
                routed = withCookies(ctx, *cookies, want->canary);
                canaryengine::SessionAffinitySpec& affinity = *routed.spec.analysis.sessionAffinity;
                // The primary cookie is not in the status, and a new one at every reconcile
                // would rewrite the route each time: the live route's is kept.
                if (!affinity.cookies.primary.empty() && liveWeights) {
                    if (auto kept = detail::cookieIn(*liveWeights, affinity.primaryCookieName))
                        affinity.cookies.primary = *kept;
                }
                moved = affinity.cookies;
            };
        }
        detail::RouteHealing healed = detail::healRouting(c.client, *seen.router, ctx, *want,
                                                          c.opts.fieldManager, keepCookies);
        if (moved) *cookies = *moved;
        if (healed.restored.empty()) return;
        std::string message = "Routing restored to ";
        message += router::toString(*want) + " (found " + healed.found() + ")";
        spdlog::warn("canary {}/{}: {}", ctx.namespaceName, ctx.canaryName, message);
        c.events->record(object, kube::EventType::Warning, "RoutingRestored", message);
    }

    // Writes the status when it changed, then removes the requests the decisions took (once
    // their outcome is in the status: a failed removal leaves a request that the status now
    // marks as stale), and fills in the record.
    void writeResults(json& object, const json& rawStatus, canaryengine::Phase before,
                      const canaryengine::Decision& decision,
                      std::vector<canaryengine::ManualAction> removed) {
        ReconcileRecord& rec = out.record;
        const canaryengine::Phase phase = decision.status.phase;
        json newStatus = detail::mergeStatus(rawStatus, decision.status);
        if (cookies) {
            for (auto [field, value] : {std::pair{kCookieField, &cookies->canary},
                                        std::pair{kPreviousCookieField, &cookies->previous}}) {
                if (value->empty()) {
                    newStatus.erase(field);
                } else {
                    newStatus[field] = *value;
                }
            }
        }
        if (newStatus != rawStatus) {
            c.writeStatus(key, object, newStatus);
            rec.statusWritten = true;
            if (phase != before) {
                spdlog::info(
                    "canary {}: phase {} -> {}", key,
                    before == canaryengine::Phase::None ? "(none)" : canaryengine::toString(before),
                    canaryengine::toString(phase));
                if (phase == canaryengine::Phase::Succeeded) c.counters.promotions++;
                if (phase == canaryengine::Phase::Failed) c.counters.rollbacks++;
            }
        }
        std::sort(removed.begin(), removed.end());
        removed.erase(std::unique(removed.begin(), removed.end()), removed.end());
        if (!removed.empty()) {
            c.removeRequests(key, object, removed, newStatus);
            for (canaryengine::ManualAction action : removed)
                rec.requestsRemoved.push_back(std::string(canaryengine::annotationOf(action)));
        }
        rec.phase = std::string(canaryengine::toString(phase));
        rec.canaryWeight = decision.status.canaryWeight;
        rec.requeueAfter = std::max(std::chrono::seconds(1), decision.requeueAfter);
        out.requeueAfter = rec.requeueAfter;
    }
};

Outcome CanaryController::Impl::reconcile(const std::string& ns, const std::string& name) {
    ensureInformers();
    return Reconciler{*this, ns, name, ns + "/" + name, {}, {}, {}, {}, {}}.run();
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
    s.alerts = impl_->counters.alerts;
    s.queueDepth = impl_->runtime.queueDepth();
    return s;
}

void CanaryController::setObserver(std::function<void(const ReconcileRecord&)> observer) {
    impl_->observer.set(std::move(observer));
}

}  // namespace sluice::canarycontroller
