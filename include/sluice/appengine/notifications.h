#pragma once
// Argo CD's notifications for Applications, the pure part: subscriptions from annotations, the
// built-in triggers evaluated on an Application, the record of what was already sent (Argo CD's
// `notified.notifications.argoproj.io` annotation), the message, and the service configuration
// (ConfigMap + Secret) turned into notify::Destinations. No I/O: the watcher that sends and
// records lives in appcontroller/notifications.h.
//
// As Argo CD's notifications controller: a trigger without oncePer fires when its condition
// becomes true and re-arms when it becomes false; a trigger with oncePer fires once per value of
// its oncePer field (e.g. once per deployed revision), whatever happens in between.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/notify/notifier.h"

namespace sluice::appengine::notifications {

using nlohmann::json;

// The annotation holding what was sent: a JSON object {key: unix seconds}, as Argo CD's.
inline constexpr const char* kNotifiedAnnotation = "notified.notifications.argoproj.io";
// Subscription annotation prefixes: "<prefix>/subscribe.<trigger>.<service>: a;b" and
// "<prefix>/subscriptions: <YAML list>".
inline constexpr const char* kArgoPrefix = "notifications.argoproj.io";
inline constexpr const char* kSluicePrefix = "sluice.io";
// At most this many records are kept (the oldest go first), as Argo CD does.
inline constexpr std::size_t kNotifiedHistoryMax = 100;

// The built-in triggers, sorted: on-created, on-deleted, on-deployed, on-health-degraded,
// on-sync-failed, on-sync-running, on-sync-status-unknown, on-sync-succeeded.
const std::vector<std::string>& builtinTriggers();
bool isBuiltinTrigger(const std::string& trigger);

// One trigger sent to one recipient of one configured service (a name from the ConfigMap:
// "slack", or "<name>" of "service.webhook.<name>"). recipient may be "" (a webhook).
struct Destination {
    std::string service;
    std::string recipient;
    bool operator<(const Destination& o) const {
        return std::tie(service, recipient) < std::tie(o.service, o.recipient);
    }
    bool operator==(const Destination& o) const {
        return service == o.service && recipient == o.recipient;
    }
};

// trigger -> destinations (deduplicated, sorted).
using Subscriptions = std::map<std::string, std::vector<Destination>>;

// The subscriptions of an Application from its metadata.annotations (both prefixes, both
// forms). Recipients are split on ';' and ',' and trimmed; an empty value subscribes the
// service itself (recipient ""), as a webhook is subscribed. Malformed entries are skipped and
// described in `errors` (when given).
Subscriptions parseSubscriptions(const json& annotations,
                                 std::vector<std::string>* errors = nullptr);

// A built-in trigger evaluated on an Application.
struct TriggerResult {
    std::string trigger;
    bool holds = false;
    // The value the trigger fires once per ("" = fire on each false -> true flip).
    std::string oncePer;
};
// Every built-in trigger on `app` (the object as read, status possibly packed by the cache).
std::vector<TriggerResult> evaluateTriggers(const json& app);
TriggerResult evaluateTrigger(const std::string& trigger, const json& app);

// What was sent: Argo CD's annotation value. Unparseable text reads as empty, as Argo CD does.
using NotifiedState = std::map<std::string, int64_t>;
NotifiedState parseNotifiedState(const std::string& annotationValue);
// "" when empty (the annotation is then removed).
std::string serializeNotifiedState(const NotifiedState& state);
// "[<oncePer>:]<trigger>:[0]:<service>:<recipient>", the layout of Argo CD's keys.
std::string stateKey(const TriggerResult& result, const Destination& to);

struct Notification {
    std::string trigger;
    Destination to;
};
struct Plan {
    std::vector<Notification> send;  // in trigger order, then destination order
    NotifiedState state;             // after this evaluation, truncated to kNotifiedHistoryMax
    bool stateChanged = false;       // the annotation must be written
    std::vector<std::string> unknownTriggers;  // subscribed but not built in (not evaluated)
};
// Which notifications `app` is due, given what was already sent (`sent`); `now` (unix seconds)
// stamps new records.
Plan plan(const json& app, const Subscriptions& subscriptions, NotifiedState sent, int64_t now);

// "4f2c1e0" for a 40-hex commit SHA; anything else unchanged.
std::string shortRevision(const std::string& revision);

// The message for `trigger` about `app`: application, project, revision, result, and for a
// failure the failing resources and the operation's message; for degraded health the degraded
// resources. Plain text, no links.
notify::Message buildMessage(const std::string& trigger, const json& app);

// --- Service configuration -------------------------------------------------------------------

// One configured service: "service.<type>" (named <type>) or "service.<type>.<name>" (named
// <name>) in the ConfigMap, its YAML value with "$key" references resolved from the Secret.
struct ServiceConfig {
    std::string type;  // canonical: slack, teams, discord, googlechat, rocketchat, webhook
    json settings;     // the parsed value (an object)
};

struct Config {
    std::map<std::string, ServiceConfig> services;  // by service name
    // Problems found (unsupported service types, unparseable values, unknown $references).
    // Never holds a secret value.
    std::vector<std::string> errors;
};

// configMap / secret: the objects as read (either may be null). Secret values are read from
// `data` (base64) and `stringData`.
Config parseConfig(const json& configMap, const json& secret);

// The notify::Destination for one recipient of a configured service, or nullopt with the reason
// in `error` (an unknown service, a recipient with no webhook configured). How recipients read:
//   slack with a token: the recipient is the channel (chat.postMessage);
//   slack without a token, teams, googlechat, discord, rocketchat: the recipient names a webhook
//     in the service's `webhooks` (teams: `recipientUrls`) map; with a single `url` any
//     recipient goes there;
//   webhook: the recipient is ignored; url, headers [{name, value}], basicAuth.
std::optional<notify::Destination> destinationFor(const Config& config, const Destination& to,
                                                  std::string* error = nullptr);

}  // namespace sluice::appengine::notifications
