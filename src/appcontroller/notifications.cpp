#include "sluice/appcontroller/notifications.h"

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "sluice/appengine/notifications.h"
#include "sluice/appengine/spec.h"
#include "sluice/appengine/status.h"
#include "sluice/cache/reflector.h"
#include "sluice/kube/errors.h"
#include "sluice/kube/types.h"
#include "sluice/workqueue/gate.h"
#include "sluice/workqueue/workqueue.h"

namespace sluice::appcontroller {

namespace notif = appengine::notifications;
using nlohmann::json;

namespace {

const kube::GroupVersionKind kApplicationGvk{appengine::kGroup, appengine::kVersion,
                                             appengine::kKind};
const kube::GroupVersionKind kConfigMapGvk{"", "v1", "ConfigMap"};
const kube::GroupVersionKind kSecretGvk{"", "v1", "Secret"};

std::string keyOf(const cache::ObjectPtr& o) {
    return kube::namespaceOf(*o) + "/" + kube::nameOf(*o);
}

const json& annotationsOf(const json& obj) {
    static const json kNone = json::object();
    auto md = obj.find("metadata");
    if (md == obj.end() || !md->is_object()) return kNone;
    auto a = md->find("annotations");
    return a != md->end() && a->is_object() ? *a : kNone;
}

std::string notifiedAnnotation(const json& obj) {
    const json& a = annotationsOf(obj);
    auto it = a.find(notif::kNotifiedAnnotation);
    return it != a.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::string notificationSecretName(const std::string& configMap) {
    const std::string suffix = "-cm";
    if (configMap.size() > suffix.size() &&
        configMap.compare(configMap.size() - suffix.size(), suffix.size(), suffix) == 0)
        return configMap.substr(0, configMap.size() - suffix.size()) + "-secret";
    return configMap + "-secret";
}

struct NotificationController::Impl {
    Impl(kube::KubeClient& c, cache::SharedInformerFactory& f, notify::Notifier& n,
         NotificationOptions o)
        : client(c),
          informers(f),
          notifier(n),
          opts(std::move(o)),
          clock(opts.clock ? *opts.clock : SystemClock::instance()),
          queue(queueOptions()),
          gate(std::make_shared<workqueue::Gate>(queue)) {
        if (opts.secret.empty()) opts.secret = notificationSecretName(opts.configMap);
    }

    static workqueue::Options queueOptions() {
        workqueue::Options q;
        // A failed record write is retried, but a broken API server is not hammered.
        q.backoff = ExponentialBackoff{std::chrono::milliseconds(200), 2.0,
                                       std::chrono::milliseconds(60000)};
        return q;
    }

    void start();
    bool process(const std::string& key);
    void forget(const std::string& key);  // another replica's Application now
    const notif::Config& config();
    void send(const json& app, const notif::Plan& plan, notif::NotifiedState& state);
    bool writeRecord(const json& app, const notif::NotifiedState& state);

    kube::KubeClient& client;
    cache::SharedInformerFactory& informers;
    notify::Notifier& notifier;
    NotificationOptions opts;
    const Clock& clock;
    workqueue::WorkQueue queue;
    std::shared_ptr<workqueue::Gate> gate;
    cache::Informer* applications = nullptr;
    std::once_flag started;

    // The last state seen of Applications deleted from the cache, until the worker takes them.
    // Shared with the informer's handler, which may outlive this controller.
    struct Deleted {
        std::mutex mu;
        std::unordered_map<std::string, cache::ObjectPtr> objects;
    };
    std::shared_ptr<Deleted> deleted = std::make_shared<Deleted>();

    // Worker thread only. What this process recorded, by Application UID: authoritative over
    // the annotation of a cached object that may predate the record's write.
    std::unordered_map<std::string, notif::NotifiedState> records;
    notif::Config cfg;
    std::string cfgVersion;  // resourceVersions of the ConfigMap and Secret last parsed
    std::optional<Clock::TimePoint> cfgReadAt;
    std::set<std::string> warned;  // "app|service|recipient" already logged as undeliverable

    std::atomic<uint64_t> queued{0}, undeliverable{0}, recordWrites{0}, recordErrors{0};
};

void NotificationController::Impl::start() {
    cache::InformerOptions ao;
    ao.ns = opts.watchNamespace;
    // The same options as the ApplicationController's, whichever of the two asks first.
    ao.transform = [](json& obj) {
        cache::dropManagedFields(obj);
        if (auto st = obj.find("status"); st != obj.end() && st->is_object())
            appengine::packStatus(*st);
    };
    ao.rawMembers = appengine::packedStatusMembers();
    applications = &informers.informerFor(kApplicationGvk, ao);
    auto g = gate;
    auto enqueue = [g](const cache::ObjectPtr& o) { g->add(keyOf(o)); };
    applications->addEventHandler(cache::EventHandler{
        enqueue, [enqueue](const cache::ObjectPtr&, const cache::ObjectPtr& n) { enqueue(n); },
        [g, d = deleted](const cache::ObjectPtr& o) {
            {
                std::lock_guard lock(d->mu);
                d->objects[keyOf(o)] = o;
            }
            g->add(keyOf(o));
        }});
    informers.startAll();
    // One worker: sends are queued at once and record writes are small; a single worker keeps
    // the per-Application records free of locks.
    queue.run(1, [this](const std::string& key) {
        // Another replica's Application: it notifies. What this one remembered of it may be
        // stale when it comes back, so it is forgotten.
        const runtime::Claim claim =
            opts.ownership ? opts.ownership->claim(key) : runtime::Claim(std::make_shared<int>(0));
        if (!claim) {
            forget(key);
            return true;
        }
        return process(key);
    });
}

const notif::Config& NotificationController::Impl::config() {
    const auto now = clock.now();
    if (cfgReadAt && now - *cfgReadAt < opts.configRefresh) return cfg;
    cfgReadAt = now;
    auto read = [&](const kube::GroupVersionKind& gvk, const std::string& name) -> json {
        try {
            return client.get(gvk, opts.controlNamespace, name);
        } catch (const kube::ApiError& e) {
            if (e.isNotFound()) return nullptr;
            throw;
        }
    };
    try {
        json cm = read(kConfigMapGvk, opts.configMap);
        json secret = read(kSecretGvk, opts.secret);
        std::string version = (cm.is_null() ? "-" : kube::resourceVersionOf(cm)) + "/" +
                              (secret.is_null() ? "-" : kube::resourceVersionOf(secret));
        if (version == cfgVersion) return cfg;
        cfgVersion = version;
        cfg = notif::parseConfig(cm, secret);
        warned.clear();
        // Errors name keys and services, never a Secret's values.
        for (const auto& e : cfg.errors)
            spdlog::warn("notifications: ConfigMap {}/{}: {}", opts.controlNamespace,
                         opts.configMap, e);
        spdlog::info("notifications: {} service(s) configured from {}/{}", cfg.services.size(),
                     opts.controlNamespace, opts.configMap);
    } catch (const std::exception& e) {
        // Keeps the last configuration; the next Application change reads again.
        spdlog::warn("notifications: cannot read {}/{}: {}", opts.controlNamespace, opts.configMap,
                     e.what());
        cfgReadAt.reset();
    }
    return cfg;
}

// Hands what `plan` holds to the Notifier. A message that cannot go (no such service, or the
// Notifier refused it) is taken out of `state`: a later change of the Application tries again,
// as Argo CD does after a failed send.
void NotificationController::Impl::send(const json& app, const notif::Plan& plan,
                                        notif::NotifiedState& state) {
    if (plan.send.empty()) return;
    const notif::Config& c = config();
    const std::string appKey = kube::namespaceOf(app) + "/" + kube::nameOf(app);
    for (const auto& n : plan.send) {
        std::string error;
        auto to = notif::destinationFor(c, n.to, &error);
        bool ok = false;
        if (to) {
            const std::string label = to->label();
            ok = notifier.send(std::move(*to), notif::buildMessage(n.trigger, app));
            if (!ok) error = "the notifier refused it (" + label + ")";
        }
        if (ok) {
            ++queued;
            spdlog::info("notifications: {} {} -> {}{}", appKey, n.trigger, n.to.service,
                         n.to.recipient.empty() ? "" : " " + n.to.recipient);
            continue;
        }
        ++undeliverable;
        state.erase(notif::stateKey(notif::evaluateTrigger(n.trigger, app), n.to));
        if (warned.insert(appKey + "|" + n.to.service + "|" + n.to.recipient).second)
            spdlog::warn("notifications: {} {} to {}{} not sent: {}", appKey, n.trigger,
                         n.to.service, n.to.recipient.empty() ? "" : " " + n.to.recipient, error);
    }
}

// Writes the record as Argo CD does: a merge patch of the one annotation (null removes it).
bool NotificationController::Impl::writeRecord(const json& app, const notif::NotifiedState& state) {
    const std::string text = notif::serializeNotifiedState(state);
    json patch = {{"metadata",
                   {{"annotations",
                     {{notif::kNotifiedAnnotation, text.empty() ? json(nullptr) : json(text)}}}}}};
    kube::PatchOptions po;
    po.metadataOnly = true;
    try {
        client.patch(kApplicationGvk, kube::namespaceOf(app), kube::nameOf(app),
                     kube::PatchType::Merge, patch.dump(), po);
        ++recordWrites;
        return true;
    } catch (const kube::ApiError& e) {
        if (e.isNotFound()) return true;  // gone meanwhile: nothing to record on
        ++recordErrors;
        spdlog::warn("notifications: cannot record on Application {}/{}: {}",
                     kube::namespaceOf(app), kube::nameOf(app), e.what());
    } catch (const std::exception& e) {
        ++recordErrors;
        spdlog::warn("notifications: cannot record on Application {}/{}: {}",
                     kube::namespaceOf(app), kube::nameOf(app), e.what());
    }
    return false;
}

void NotificationController::Impl::forget(const std::string& key) {
    cache::ObjectPtr obj = applications->store().getByKey(key);
    std::lock_guard lock(deleted->mu);
    if (auto it = deleted->objects.find(key); it != deleted->objects.end()) {
        if (!obj) obj = it->second;
        deleted->objects.erase(it);
    }
    if (obj) records.erase(kube::uidOf(*obj));
}

bool NotificationController::Impl::process(const std::string& key) {
    cache::ObjectPtr obj = applications->store().getByKey(key);
    bool gone = false;
    {
        std::lock_guard lock(deleted->mu);
        auto it = deleted->objects.find(key);
        if (it != deleted->objects.end()) {
            if (!obj) {
                obj = it->second;
                gone = true;
            }
            deleted->objects.erase(it);
        }
    }
    if (!obj) return true;
    json app = *obj;
    const std::string uid = kube::uidOf(app);
    // Deleted without a finalizer: the last state seen, deleted.
    if (gone && !app["metadata"].contains("deletionTimestamp"))
        app["metadata"]["deletionTimestamp"] = formatRfc3339(clock.wallNow());

    std::vector<std::string> problems;
    const auto subscriptions = notif::parseSubscriptions(annotationsOf(app), &problems);
    if (subscriptions.empty()) {
        records.erase(uid);
        return true;
    }
    const notif::NotifiedState annotated = notif::parseNotifiedState(notifiedAnnotation(app));
    auto rec = records.find(uid);
    const notif::NotifiedState& sent = rec != records.end() ? rec->second : annotated;
    const int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(clock.wallNow().time_since_epoch())
            .count();
    notif::Plan plan = notif::plan(app, subscriptions, sent, now);
    for (const auto& t : plan.unknownTriggers)
        problems.push_back("trigger " + t + " is not built in (custom triggers are not supported)");
    for (const auto& p : problems)
        if (warned.insert(key + "|" + p).second) spdlog::warn("notifications: {}: {}", key, p);
    notif::NotifiedState state = plan.state;
    send(app, plan, state);
    if (gone) {
        records.erase(uid);
        return true;
    }
    records[uid] = state;
    if (state == annotated) return true;
    return writeRecord(app, state);
}

NotificationController::NotificationController(kube::KubeClient& client,
                                               cache::SharedInformerFactory& informers,
                                               notify::Notifier& notifier, NotificationOptions opts)
    : impl_(std::make_unique<Impl>(client, informers, notifier, std::move(opts))) {}

NotificationController::~NotificationController() {
    stop();
}

void NotificationController::start() {
    std::call_once(impl_->started, [this] { impl_->start(); });
}

void NotificationController::stop() {
    impl_->gate->close();
    impl_->queue.shutdown();
}

bool NotificationController::waitForSync(std::chrono::milliseconds timeout) {
    start();
    return impl_->applications->waitForSync(timeout);
}

NotificationStats NotificationController::stats() const {
    NotificationStats s;
    s.queued = impl_->queued;
    s.undeliverable = impl_->undeliverable;
    s.recordWrites = impl_->recordWrites;
    s.recordErrors = impl_->recordErrors;
    return s;
}

}  // namespace sluice::appcontroller
