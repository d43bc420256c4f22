#include "sluice/appengine/notifications.h"

#include <algorithm>
#include <regex>
#include <set>
#include <utility>

#include "sluice/appengine/status.h"
#include "sluice/util/base64.h"
#include "sluice/util/strings.h"
#include "sluice/util/yaml_json.h"

namespace sluice::appengine::notifications {

namespace {

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    const auto e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

// A string at a path of object members, "" when any step is missing or not of that type.
std::string str(const json& obj, std::initializer_list<const char*> path) {
    const json* cur = &obj;
    for (const char* step : path) {
        if (!cur->is_object()) return "";
        auto it = cur->find(step);
        if (it == cur->end()) return "";
        cur = &*it;
    }
    return cur->is_string() ? cur->get<std::string>() : "";
}

const json& at(const json& obj, std::initializer_list<const char*> path) {
    static const json kNull;
    const json* cur = &obj;
    for (const char* step : path) {
        if (!cur->is_object()) return kNull;
        auto it = cur->find(step);
        if (it == cur->end()) return kNull;
        cur = &*it;
    }
    return *cur;
}

std::vector<std::string> splitRecipients(const std::string& value) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : value + ";") {
        if (c == ';' || c == ',') {
            if (auto t = trim(cur); !t.empty()) out.push_back(t);
            cur.clear();
        } else {
            cur += c;
        }
    }
    // An empty value subscribes the service itself (a webhook has no recipients).
    if (out.empty()) out.push_back("");
    return out;
}

void addAll(Subscriptions& subs, const std::string& trigger, const std::string& service,
            const std::vector<std::string>& recipients) {
    for (const auto& r : recipients) subs[trigger].push_back({service, r});
}

std::vector<std::string> stringList(const json& v) {
    std::vector<std::string> out;
    if (v.is_string()) {
        out = splitRecipients(v.get<std::string>());
    } else if (v.is_array()) {
        for (const auto& e : v)
            if (e.is_string()) out.push_back(trim(e.get<std::string>()));
    }
    return out;
}

// Argo CD's "<prefix>/subscriptions" form:
//   - trigger: [on-sync-failed, on-deployed]    (or a single name)
//     destinations:
//     - service: slack
//       recipients: [team-a, team-b]
void parseSubscriptionList(const std::string& key, const std::string& text, Subscriptions& subs,
                           std::vector<std::string>& errors) {
    json list;
    try {
        list = yamlToJson(text);
    } catch (const std::exception& e) {
        errors.push_back(key + ": not YAML: " + e.what());
        return;
    }
    if (list.is_null()) return;
    if (!list.is_array()) {
        errors.push_back(key + ": not a list");
        return;
    }
    for (const auto& item : list) {
        const auto triggers = stringList(item.is_object() ? item.value("trigger", json()) : json());
        const json dests = item.is_object() ? item.value("destinations", json()) : json();
        if (triggers.empty() || !dests.is_array()) {
            errors.push_back(key + ": an entry needs trigger and destinations");
            continue;
        }
        for (const auto& d : dests) {
            const std::string service = d.is_object() ? d.value("service", "") : "";
            if (service.empty()) {
                errors.push_back(key + ": a destination without service");
                continue;
            }
            auto recipients = stringList(d.value("recipients", json()));
            if (recipients.empty()) recipients.push_back("");
            for (const auto& t : triggers)
                if (!t.empty()) addAll(subs, t, service, recipients);
        }
    }
}

}  // namespace

const std::vector<std::string>& builtinTriggers() {
    static const std::vector<std::string> kTriggers = {"on-created",
                                                       "on-deleted",
                                                       "on-deployed",
                                                       "on-health-degraded",
                                                       "on-sync-failed",
                                                       "on-sync-running",
                                                       "on-sync-status-unknown",
                                                       "on-sync-succeeded"};
    return kTriggers;
}

bool isBuiltinTrigger(const std::string& trigger) {
    const auto& all = builtinTriggers();
    return std::binary_search(all.begin(), all.end(), trigger);
}

Subscriptions parseSubscriptions(const json& annotations, std::vector<std::string>* errors) {
    Subscriptions subs;
    std::vector<std::string> problems;
    if (annotations.is_object()) {
        for (const auto& [key, value] : annotations.items()) {
            if (!value.is_string()) continue;
            for (const std::string prefix : {kArgoPrefix, kSluicePrefix}) {
                const std::string subscribe = prefix + "/subscribe.";
                if (key == prefix + "/subscriptions") {
                    parseSubscriptionList(key, value.get<std::string>(), subs, problems);
                } else if (key.rfind(subscribe, 0) == 0) {
                    const std::string rest = key.substr(subscribe.size());
                    const auto dot = rest.find('.');
                    if (dot == std::string::npos || dot == 0 || dot + 1 == rest.size()) {
                        problems.push_back(key + ": expected " + subscribe + "<trigger>.<service>");
                        continue;
                    }
                    addAll(subs, rest.substr(0, dot), rest.substr(dot + 1),
                           splitRecipients(value.get<std::string>()));
                }
            }
        }
    }
    for (auto& [trigger, dests] : subs) {
        std::sort(dests.begin(), dests.end());
        dests.erase(std::unique(dests.begin(), dests.end()), dests.end());
    }
    if (errors) *errors = std::move(problems);
    return subs;
}

namespace {

// The revision(s) an operation synced: syncResult.revision, or the revisions of a
// multi-source Application joined with ",".
std::string syncedRevision(const json& app) {
    const json& result = at(app, {"status", "operationState", "syncResult"});
    if (!result.is_object()) return "";
    if (auto r = str(result, {"revision"}); !r.empty()) return r;
    std::vector<std::string> revisions;
    if (const json& rs = at(result, {"revisions"}); rs.is_array())
        for (const auto& r : rs)
            if (r.is_string()) revisions.push_back(r.get<std::string>());
    return join(revisions, ",");
}

std::string phaseOf(const json& app) {
    return str(app, {"status", "operationState", "phase"});
}
std::string healthOf(const json& app) {
    return str(app, {"status", "health", "status"});
}

}  // namespace

TriggerResult evaluateTrigger(const std::string& trigger, const json& app) {
    TriggerResult r;
    r.trigger = trigger;
    const std::string phase = phaseOf(app);
    if (trigger == "on-created") {
        r.holds = true;
        r.oncePer = str(app, {"metadata", "name"});
    } else if (trigger == "on-deleted") {
        r.holds = !at(app, {"metadata", "deletionTimestamp"}).is_null();
        r.oncePer = str(app, {"metadata", "name"});
    } else if (trigger == "on-deployed") {
        // Healthy since the operation finished (when both times are known): a health left over
        // from before the sync is not the new revision's.
        const std::string since = str(app, {"status", "health", "lastTransitionTime"});
        const std::string finished = str(app, {"status", "operationState", "finishedAt"});
        r.holds = phase == "Succeeded" && healthOf(app) == "Healthy" &&
                  (since.empty() || finished.empty() || since >= finished);
        r.oncePer = syncedRevision(app);
    } else if (trigger == "on-health-degraded") {
        r.holds = healthOf(app) == "Degraded";
    } else if (trigger == "on-sync-failed") {
        r.holds = phase == "Failed" || phase == "Error";
        r.oncePer = syncedRevision(app);
    } else if (trigger == "on-sync-running") {
        // Once per operation: an operation started while the last one was still seen running
        // (or between two observations) is announced too.
        r.holds = phase == "Running";
        r.oncePer = str(app, {"status", "operationState", "startedAt"});
    } else if (trigger == "on-sync-status-unknown") {
        r.holds = str(app, {"status", "sync", "status"}) == "Unknown";
    } else if (trigger == "on-sync-succeeded") {
        r.holds = phase == "Succeeded";
        r.oncePer = str(app, {"status", "operationState", "finishedAt"});
    }
    return r;
}

std::vector<TriggerResult> evaluateTriggers(const json& app) {
    std::vector<TriggerResult> out;
    for (const auto& t : builtinTriggers()) out.push_back(evaluateTrigger(t, app));
    return out;
}

NotifiedState parseNotifiedState(const std::string& annotationValue) {
    NotifiedState state;
    if (annotationValue.empty()) return state;
    json parsed = json::parse(annotationValue, nullptr, false);
    if (!parsed.is_object()) return state;
    for (const auto& [key, value] : parsed.items())
        if (value.is_number_integer()) state[key] = value.get<int64_t>();
    return state;
}

std::string serializeNotifiedState(const NotifiedState& state) {
    if (state.empty()) return "";
    json out = json::object();
    for (const auto& [key, at] : state) out[key] = at;
    return out.dump();
}

std::string stateKey(const TriggerResult& result, const Destination& to) {
    std::string key = result.trigger + ":[0]:" + to.service + ":" + to.recipient;
    return result.oncePer.empty() ? key : result.oncePer + ":" + key;
}

namespace {

// Drops the oldest records beyond kNotifiedHistoryMax.
void truncate(NotifiedState& state) {
    if (state.size() <= kNotifiedHistoryMax) return;
    std::vector<std::pair<int64_t, std::string>> byAge;
    for (const auto& [key, at] : state) byAge.emplace_back(at, key);
    std::sort(byAge.begin(), byAge.end());
    for (std::size_t i = 0; i < byAge.size() - kNotifiedHistoryMax; ++i)
        state.erase(byAge[i].second);
}

}  // namespace

Plan plan(const json& app, const Subscriptions& subscriptions, NotifiedState sent, int64_t now) {
    Plan p;
    const NotifiedState before = sent;
    for (const auto& [trigger, dests] : subscriptions) {
        if (!isBuiltinTrigger(trigger)) {
            p.unknownTriggers.push_back(trigger);
            continue;
        }
        const TriggerResult r = evaluateTrigger(trigger, app);
        for (const auto& to : dests) {
            const std::string key = stateKey(r, to);
            if (r.holds) {
                if (sent.emplace(key, now).second) p.send.push_back({trigger, to});
            } else if (r.oncePer.empty()) {
                sent.erase(key);  // re-armed: the next flip to true fires again
            }
        }
    }
    truncate(sent);
    p.stateChanged = sent != before;
    p.state = std::move(sent);
    return p;
}

std::string shortRevision(const std::string& revision) {
    const bool sha =
        revision.size() == 40 && std::all_of(revision.begin(), revision.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        });
    return sha ? revision.substr(0, 7) : revision;
}

namespace {

constexpr std::size_t kMaxListedResources = 10;

std::string resourceName(const json& r) {
    std::string ns = r.value("namespace", "");
    return r.value("kind", "?") + " " + (ns.empty() ? "" : ns + "/") + r.value("name", "?");
}

// "Deployment demo/web: message" for each resource `failing` picks, at most
// kMaxListedResources, then how many more.
template <class Pred>
std::vector<std::string> listResources(const json& resources, Pred failing,
                                       const char* messageField) {
    std::vector<std::string> lines;
    std::size_t more = 0;
    const json list = unpackedField(resources);
    if (!list.is_array()) return lines;
    for (const auto& r : list) {
        if (!r.is_object() || !failing(r)) continue;
        if (lines.size() == kMaxListedResources) {
            ++more;
            continue;
        }
        std::string msg = std::string(messageField) == "health" ? str(r, {"health", "message"})
                                                                : r.value("message", "");
        lines.push_back(resourceName(r) + (msg.empty() ? "" : ": " + msg));
    }
    if (more) lines.push_back("and " + std::to_string(more) + " more");
    return lines;
}

std::vector<std::string> failedSyncResources(const json& app) {
    const json& resources = at(app, {"status", "operationState", "syncResult", "resources"});
    return listResources(
        resources,
        [](const json& r) {
            const std::string hook = r.value("hookPhase", "");
            return r.value("status", "") == "SyncFailed" || hook == "Failed" || hook == "Error";
        },
        "message");
}

std::vector<std::string> degradedResources(const json& app) {
    return listResources(
        at(app, {"status", "resources"}),
        [](const json& r) {
            return str(r, {"health", "status"}) == "Degraded";
        },
        "health");
}

// Messages of the conditions that explain an Unknown sync status.
std::vector<std::string> errorConditions(const json& app) {
    std::vector<std::string> out;
    if (const json& cs = at(app, {"status", "conditions"}); cs.is_array())
        for (const auto& c : cs)
            if (c.is_object() && c.value("type", "").find("Error") != std::string::npos)
                out.push_back(c.value("type", "") + ": " + c.value("message", ""));
    return out;
}

struct Wording {
    const char* title;  // after "Application <name> "
    notify::Severity severity;
};

Wording wordingOf(const std::string& trigger) {
    using S = notify::Severity;
    static const std::map<std::string, Wording> kWording = {
        {"on-created", {"created", S::Info}},
        {"on-deleted", {"deleted", S::Info}},
        {"on-deployed", {"deployed", S::Info}},
        {"on-health-degraded", {"is degraded", S::Error}},
        {"on-sync-failed", {"sync failed", S::Error}},
        {"on-sync-running", {"is syncing", S::Info}},
        {"on-sync-status-unknown", {"sync status is Unknown", S::Warn}},
        {"on-sync-succeeded", {"synced", S::Info}}};
    auto it = kWording.find(trigger);
    return it == kWording.end() ? Wording{"changed", S::Info} : it->second;
}

std::string revisionOf(const json& app) {
    std::string rev = syncedRevision(app);
    if (rev.empty()) rev = str(app, {"status", "operationState", "operation", "sync", "revision"});
    if (rev.empty()) rev = str(app, {"status", "sync", "revision"});
    std::vector<std::string> shortened;
    std::string cur;
    for (char c : rev + ",") {
        if (c == ',') {
            if (!cur.empty()) shortened.push_back(shortRevision(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    return join(shortened, ",");
}

// The first lines of the text, by trigger.
std::vector<std::string> textLines(const std::string& trigger, const json& app,
                                   const std::string& revision) {
    const std::string rev = revision.empty() ? "" : " of revision " + revision;
    const std::string opMessage = str(app, {"status", "operationState", "message"});
    std::vector<std::string> lines;
    auto add = [&](const std::vector<std::string>& more, const char* heading) {
        if (more.empty()) return;
        lines.push_back(heading);
        for (const auto& m : more) lines.push_back("- " + m);
    };
    if (trigger == "on-sync-failed") {
        lines.push_back("Sync" + rev + " failed" + (opMessage.empty() ? "." : ": " + opMessage));
        add(failedSyncResources(app), "Failed resources:");
    } else if (trigger == "on-health-degraded") {
        const std::string msg = str(app, {"status", "health", "message"});
        lines.push_back("Health is Degraded" + (msg.empty() ? "." : ": " + msg));
        add(degradedResources(app), "Degraded resources:");
    } else if (trigger == "on-sync-status-unknown") {
        lines.push_back("The desired state could not be compared with the cluster.");
        add(errorConditions(app), "Conditions:");
    } else if (trigger == "on-sync-succeeded") {
        lines.push_back("Sync" + rev + " succeeded" + (opMessage.empty() ? "." : ": " + opMessage));
    } else if (trigger == "on-sync-running") {
        lines.push_back("Sync" + rev + " started.");
    } else if (trigger == "on-deployed") {
        lines.push_back("Revision " + (revision.empty() ? std::string("?") : revision) +
                        " is synced and healthy.");
    } else if (trigger == "on-created") {
        lines.push_back("The Application was created.");
    } else if (trigger == "on-deleted") {
        lines.push_back("The Application is being deleted.");
    }
    return lines;
}

}  // namespace

notify::Message buildMessage(const std::string& trigger, const json& app) {
    const std::string name = str(app, {"metadata", "name"});
    const std::string ns = str(app, {"metadata", "namespace"});
    const Wording w = wordingOf(trigger);
    notify::Message m;
    m.title = "Application " + name + " " + w.title;
    m.severity = w.severity;
    const std::string revision = revisionOf(app);
    m.text = join(textLines(trigger, app, revision), "\n");

    std::string project = str(app, {"spec", "project"});
    m.fields.emplace_back("Application", ns.empty() ? name : ns + "/" + name);
    m.fields.emplace_back("Project", project.empty() ? "default" : project);
    if (!revision.empty()) m.fields.emplace_back("Revision", revision);
    const std::string phase = phaseOf(app);
    if (!phase.empty() && trigger.rfind("on-sync-", 0) == 0 && trigger != "on-sync-status-unknown")
        m.fields.emplace_back("Result", phase);
    if (auto s = str(app, {"status", "sync", "status"}); !s.empty())
        m.fields.emplace_back("Sync status", s);
    if (auto h = healthOf(app); !h.empty()) m.fields.emplace_back("Health", h);
    if (trigger == "on-sync-failed") {
        const auto failed = failedSyncResources(app);
        if (!failed.empty()) m.fields.emplace_back("Failed resource", failed.front());
    }
    return m;
}

// --- Service configuration -------------------------------------------------------------------

namespace {

std::optional<std::string> canonicalType(const std::string& type) {
    static const std::map<std::string, std::string> kTypes = {
        {"slack", "slack"},           {"teams", "teams"},           {"msteams", "teams"},
        {"discord", "discord"},       {"googlechat", "googlechat"}, {"gchat", "googlechat"},
        {"rocketchat", "rocketchat"}, {"rocket", "rocketchat"},     {"webhook", "webhook"},
        {"generic", "webhook"}};
    auto it = kTypes.find(type);
    if (it == kTypes.end()) return std::nullopt;
    return it->second;
}

std::map<std::string, std::string> secretValues(const json& secret) {
    std::map<std::string, std::string> out;
    if (const json& data = at(secret, {"data"}); data.is_object())
        for (const auto& [k, v] : data.items())
            if (v.is_string())
                if (auto decoded = base64Decode(v.get<std::string>())) out[k] = *decoded;
    if (const json& data = at(secret, {"stringData"}); data.is_object())
        for (const auto& [k, v] : data.items())
            if (v.is_string()) out[k] = v.get<std::string>();
    return out;
}

// Replaces "$key" in every string of `v` with the Secret's value of key. A reference to a key
// the Secret lacks stays as written and is reported by name.
void resolveSecrets(json& v, const std::map<std::string, std::string>& secrets,
                    std::set<std::string>& missing) {
    static const std::regex kRef(R"(\$([A-Za-z0-9_.-]+))");
    if (v.is_object() || v.is_array()) {
        for (auto& e : v) resolveSecrets(e, secrets, missing);
        return;
    }
    if (!v.is_string()) return;
    const std::string text = v.get<std::string>();
    std::string out;
    std::size_t last = 0;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kRef);
         it != std::sregex_iterator(); ++it) {
        out += text.substr(last, it->position() - last);
        std::string key = (*it)[1].str();
        auto found = secrets.find(key);
        // "$key." at the end of a sentence: the dot is not part of the key.
        while (found == secrets.end() && !key.empty() && key.back() == '.') {
            key.pop_back();
            found = secrets.find(key);
        }
        if (found == secrets.end()) {
            missing.insert((*it)[1].str());
            out += it->str();
        } else {
            out += found->second + it->str().substr(1 + key.size());
        }
        last = it->position() + it->length();
    }
    v = out + text.substr(last);
}

}  // namespace

Config parseConfig(const json& configMap, const json& secret) {
    Config config;
    const auto secrets = secretValues(secret);
    const json& data = at(configMap, {"data"});
    if (!data.is_object()) return config;
    for (const auto& [key, value] : data.items()) {
        if (key.rfind("service.", 0) != 0 || !value.is_string()) continue;
        const std::string rest = key.substr(8);
        const auto dot = rest.find('.');
        const std::string type = rest.substr(0, dot);
        const std::string name = dot == std::string::npos ? type : rest.substr(dot + 1);
        const auto canonical = canonicalType(type);
        if (!canonical) {
            config.errors.push_back(key + ": service type " + type + " is not supported");
            continue;
        }
        if (name.empty()) {
            config.errors.push_back(key + ": empty service name");
            continue;
        }
        json settings;
        try {
            settings = yamlToJson(value.get<std::string>());
        } catch (const std::exception& e) {
            config.errors.push_back(key + ": not YAML: " + e.what());
            continue;
        }
        if (settings.is_null()) settings = json::object();
        if (!settings.is_object()) {
            config.errors.push_back(key + ": not a map of settings");
            continue;
        }
        std::set<std::string> missing;
        resolveSecrets(settings, secrets, missing);
        for (const auto& m : missing)
            config.errors.push_back(key + ": $" + m + " is not a key of the Secret");
        config.services[name] = ServiceConfig{*canonical, std::move(settings)};
    }
    return config;
}

namespace {

std::string setting(const json& settings, const char* name) {
    auto it = settings.find(name);
    return it != settings.end() && it->is_string() ? trim(it->get<std::string>()) : "";
}

// The webhook URL of `recipient`: its entry in the named-webhooks map, else the single `url`.
// Sets `shared` when the single URL was used (the recipient is then a channel, where the
// service takes one).
std::optional<std::string> webhookUrl(const json& settings, const std::string& recipient,
                                      bool& shared) {
    for (const char* map : {"webhooks", "recipientUrls"}) {
        const json& hooks = at(settings, {map});
        if (!recipient.empty() && hooks.is_object())
            if (auto it = hooks.find(recipient); it != hooks.end() && it->is_string())
                return trim(it->get<std::string>());
    }
    for (const char* single : {"url", "webhookUrl", "webhookURL"}) {
        if (auto u = setting(settings, single); !u.empty()) {
            shared = true;
            return u;
        }
    }
    return std::nullopt;
}

void webhookHeaders(const json& settings, notify::Destination& d) {
    if (const json& headers = at(settings, {"headers"}); headers.is_array()) {
        for (const auto& h : headers)
            if (h.is_object() && h.value("name", "") != "")
                d.headers[h.value("name", "")] = h.value("value", "");
    } else if (headers.is_object()) {
        for (const auto& [k, v] : headers.items())
            if (v.is_string()) d.headers[k] = v.get<std::string>();
    }
    const json& basic = at(settings, {"basicAuth"});
    if (basic.is_object())
        d.headers["Authorization"] = "Basic " + base64Encode(basic.value("username", "") + ":" +
                                                             basic.value("password", ""));
}

}  // namespace

std::optional<notify::Destination> destinationFor(const Config& config, const Destination& to,
                                                  std::string* error) {
    auto fail = [&](const std::string& why) -> std::optional<notify::Destination> {
        if (error) *error = why;
        return std::nullopt;
    };
    auto it = config.services.find(to.service);
    if (it == config.services.end())
        return fail("no service " + to.service +
                    " is configured in the notifications ConfigMap (service.<type>." + to.service +
                    ")");
    const ServiceConfig& svc = it->second;
    const json& s = svc.settings;
    notify::Destination d;
    d.username = setting(s, "username");
    d.proxy = setting(s, "proxy");
    static const std::map<std::string, std::string> kNotifyName = {
        {"slack", "slack"},      {"teams", "msteams"},     {"discord", "discord"},
        {"googlechat", "gchat"}, {"rocketchat", "rocket"}, {"webhook", "generic"}};
    d.service = kNotifyName.at(svc.type);
    if (svc.type == "webhook") {
        d.address = setting(s, "url");
        if (d.address.empty()) return fail("service " + to.service + " has no url");
        webhookHeaders(s, d);
        return d;
    }
    if (svc.type == "slack" && !setting(s, "token").empty()) {
        if (to.recipient.empty()) return fail("service " + to.service + " needs a channel");
        d.token = setting(s, "token");
        // Argo CD's apiURL names the API ("https://slack.com/api/"); the notifier wants the
        // base it appends /api/chat.postMessage to.
        d.address = setting(s, "apiURL");
        while (!d.address.empty() && d.address.back() == '/') d.address.pop_back();
        if (d.address.size() >= 4 && d.address.compare(d.address.size() - 4, 4, "/api") == 0)
            d.address.resize(d.address.size() - 4);
        d.channel = to.recipient;
        return d;
    }
    bool shared = false;
    auto url = webhookUrl(s, to.recipient, shared);
    if (!url || url->empty())
        return fail("service " + to.service + " has no webhook" +
                    (to.recipient.empty() ? std::string() : " named " + to.recipient));
    d.address = *url;
    if (shared && (svc.type == "slack" || svc.type == "rocketchat" || svc.type == "discord"))
        d.channel = to.recipient;
    return d;
}

}  // namespace sluice::appengine::notifications
