// Desired-vs-live comparison and sync planning for one Application, as Argo CD does it:
// tracking ids decide what is ours, sync waves and kind order decide when it is applied.
#include "sluice/appengine/plan.h"

#include <openssl/sha.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "sluice/fieldset/fieldset.h"

namespace sluice::appengine {

namespace {

namespace fs = sluice::fieldset;

std::string groupOf(const std::string& apiVersion) {
    auto slash = apiVersion.find('/');
    return slash == std::string::npos ? "" : apiVersion.substr(0, slash);
}

std::string versionOf(const std::string& apiVersion) {
    auto slash = apiVersion.find('/');
    return slash == std::string::npos ? apiVersion : apiVersion.substr(slash + 1);
}

std::string stringField(const json& obj, const char* field) {
    if (!obj.is_object()) return "";
    auto it = obj.find(field);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string metadataField(const json& obj, const char* field) {
    if (!obj.is_object()) return "";
    auto md = obj.find("metadata");
    return md != obj.end() ? stringField(*md, field) : "";
}

bool isNamespaceKind(const ResourceKey& k) {
    return k.group.empty() && k.kind == "Namespace";
}
bool isCrdKind(const ResourceKey& k) {
    return k.group == "apiextensions.k8s.io" && k.kind == "CustomResourceDefinition";
}

// Sync order inside the same wave: Argo CD's kind order, then kind and name for a stable,
// readable order among kinds it does not list.
auto orderKey(const ResourceComparison& r) {
    return std::tie(r.wave, r.kindOrder, r.key.kind, r.key.group, r.key.name, r.key.ns);
}

// Scope of a kind defined by a CustomResourceDefinition in the same manifest set.
std::optional<bool> scopeFromCrds(const std::vector<json>& manifests, const std::string& apiVersion,
                                  const std::string& kind) {
    const std::string group = groupOf(apiVersion);
    for (const auto& m : manifests) {
        if (!m.is_object() || stringField(m, "kind") != "CustomResourceDefinition" ||
            groupOf(stringField(m, "apiVersion")) != "apiextensions.k8s.io")
            continue;
        const json spec = m.value("spec", json::object());
        if (!spec.is_object() || stringField(spec, "group") != group) continue;
        const json names = spec.value("names", json::object());
        if (stringField(names, "kind") != kind) continue;
        return stringField(spec, "scope") != "Cluster";
    }
    return std::nullopt;
}

// A managed field path written the way diff::compare names fields
// (".spec.containers[name=app].image"): list keys in the schema's order, strings unquoted.
std::string diffStylePath(const fs::Path& path, const fs::Schema& schema) {
    std::string out;
    std::string schemaPath;
    for (const auto& element : path) {
        const std::string& e = element.encoded;
        const std::string body = e.size() >= 2 ? e.substr(2) : e;
        if (e.rfind("f:", 0) == 0) {
            out += "." + body;
            schemaPath += (schemaPath.empty() ? "" : ".") + body;
            continue;
        }
        if (e.rfind("k:", 0) == 0) {
            json key = json::parse(body, nullptr, false);
            std::vector<std::string> keyOrder;
            if (auto list = schema.listAt(schemaPath); list && !list->keys.empty()) {
                keyOrder = list->keys;
            } else if (key.is_object()) {
                for (auto it = key.begin(); it != key.end(); ++it) keyOrder.push_back(it.key());
            }
            std::string label;
            for (const auto& k : keyOrder) {
                if (!label.empty()) label += ",";
                json v = key.is_object() && key.contains(k) ? key[k] : json();
                label += k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
            }
            out += "[" + label + "]";
        } else {
            // Set values and indices name the list itself in diffs (sets and atomic lists are
            // reported whole), so the list path is what has to match.
            return out;
        }
        schemaPath += "[]";
    }
    return out;
}

bool isAtOrBelow(const std::string& path, const std::string& ancestor) {
    if (path.size() < ancestor.size() || path.compare(0, ancestor.size(), ancestor) != 0)
        return false;
    if (path.size() == ancestor.size()) return true;
    char next = path[ancestor.size()];
    return next == '.' || next == '[';
}

}  // namespace

std::string ResourceKey::str() const {
    return (group.empty() ? "" : group + "/") + kind + ":" + ns + "/" + name;
}

ResourceKey ResourceKey::of(const json& obj) {
    return {groupOf(stringField(obj, "apiVersion")), stringField(obj, "kind"),
            metadataField(obj, "namespace"), metadataField(obj, "name")};
}

json InventoryEntry::toJson() const {
    json out = json::object();
    if (!group.empty()) out["group"] = group;
    out["version"] = version;
    out["kind"] = kind;
    if (!ns.empty()) out["namespace"] = ns;
    out["name"] = name;
    return out;
}

std::optional<InventoryEntry> InventoryEntry::fromJson(const json& j) {
    if (!j.is_object()) return std::nullopt;
    InventoryEntry e{stringField(j, "group"), stringField(j, "version"), stringField(j, "kind"),
                     stringField(j, "namespace"), stringField(j, "name")};
    if (e.version.empty() || e.kind.empty() || e.name.empty()) return std::nullopt;
    return e;
}

std::vector<InventoryEntry> parseInventory(const json& statusInventory) {
    std::vector<InventoryEntry> out;
    if (statusInventory.is_string()) {  // packed by the controller's cache (appengine::packStatus)
        const json unpacked =
            json::parse(statusInventory.get_ref<const std::string&>(), nullptr, false);
        return unpacked.is_array() ? parseInventory(unpacked) : out;
    }
    if (!statusInventory.is_array()) return out;
    for (const auto& item : statusInventory)
        if (auto e = InventoryEntry::fromJson(item)) out.push_back(std::move(*e));
    return out;
}

PreparedObjects prepareDesired(const std::vector<json>& manifests,
                               const std::vector<std::string>& sources,
                               const std::string& destinationNamespace, const std::string& instance,
                               const ScopeLookup& scope) {
    PreparedObjects out;
    std::map<ResourceKey, std::string> seen;  // key -> where it was first defined
    for (size_t i = 0; i < manifests.size(); ++i) {
        const std::string where = i < sources.size() && !sources[i].empty()
                                      ? sources[i]
                                      : "manifest #" + std::to_string(i + 1);
        auto fail = [&](const std::string& message) {
            out.errors.push_back(where + ": " + message);
        };
        const json& manifest = manifests[i];
        if (!manifest.is_object()) {
            fail("not a Kubernetes object");
            continue;
        }
        const std::string apiVersion = stringField(manifest, "apiVersion");
        const std::string kind = stringField(manifest, "kind");
        if (apiVersion.empty() || kind.empty()) {
            fail("apiVersion and kind are required");
            continue;
        }
        auto md = manifest.find("metadata");
        if (md == manifest.end() || !md->is_object()) {
            fail("metadata: required");
            continue;
        }
        std::string hookError;
        const auto hook = hookOf(manifest, &hookError);
        if (!hookError.empty()) {
            fail(kind + " " + metadataField(manifest, "name") + ": " + hookError);
            continue;
        }
        // A hook may have only generateName: it is named when a sync creates it.
        const bool generated = hook && metadataField(manifest, "name").empty() &&
                               !metadataField(manifest, "generateName").empty();
        if (metadataField(manifest, "name").empty() && !generated) {
            fail(kind + ": metadata.name: required");
            continue;
        }
        if (md->contains("annotations") && !(*md)["annotations"].is_object() &&
            !(*md)["annotations"].is_null()) {
            fail("metadata.annotations: must be a map");
            continue;
        }
        std::optional<bool> namespaced = scope ? scope(apiVersion, kind) : std::nullopt;
        if (!namespaced) namespaced = scopeFromCrds(manifests, apiVersion, kind);
        if (!namespaced) {
            fail("unknown kind " + kind + " in " + apiVersion +
                 " (not served by the cluster, and no CustomResourceDefinition here defines it)");
            continue;
        }
        json obj = manifest;
        json& metadata = obj["metadata"];
        if (*namespaced) {
            if (metadataField(obj, "namespace").empty()) {
                if (destinationNamespace.empty()) {
                    fail(kind + " " + metadataField(obj, "name") +
                         ": no namespace, and spec.destination.namespace is not set");
                    continue;
                }
                metadata["namespace"] = destinationNamespace;
            }
        } else {
            metadata.erase("namespace");
        }
        std::string waveError;
        syncWaveOf(obj, &waveError);
        if (!waveError.empty()) {
            fail(waveError);
            continue;
        }
        ResourceKey key = ResourceKey::of(obj);
        if (generated) key.name = metadataField(obj, "generateName") + "*";
        if (auto [it, inserted] = seen.emplace(key, where); !inserted) {
            fail("duplicate resource " + key.str() + " (also defined in " + it->second + ")");
            continue;
        }
        if (!metadata.contains("annotations") || !metadata["annotations"].is_object())
            metadata["annotations"] = json::object();
        if (!generated)
            metadata["annotations"][kTrackingAnnotation] = trackingIdFor(instance, obj).str();
        out.objects.push_back(std::move(obj));
    }
    return out;
}

std::vector<std::string> scopeViolations(const std::vector<json>& prepared,
                                         const ManagedScope& scope) {
    std::vector<std::string> out;
    if (scope.everything()) return out;
    std::set<std::string> reported;  // one message per namespace
    for (const auto& obj : prepared) {
        const std::string ns = metadataField(obj, "namespace");
        if (ns.empty()) {
            if (scope.clusterResources) continue;
            out.push_back("cluster level " + stringField(obj, "kind") + " \"" +
                          metadataField(obj, "name") +
                          "\" can not be managed when in namespaced mode");
            continue;
        }
        if (scope.namespaces.empty()) continue;
        if (std::find(scope.namespaces.begin(), scope.namespaces.end(), ns) !=
            scope.namespaces.end())
            continue;
        if (reported.insert(ns).second)
            out.push_back("namespace \"" + ns + "\" is not managed (--managed-namespaces)");
    }
    return out;
}

const char* toString(SyncState s) {
    switch (s) {
        case SyncState::Synced:
            return "Synced";
        case SyncState::OutOfSync:
            return "OutOfSync";
        case SyncState::Missing:
            return "Missing";
    }
    return "Unknown";
}

bool isCanary(const json& obj) {
    const std::string group = groupOf(stringField(obj, "apiVersion"));
    return stringField(obj, "kind") == "Canary" && (group == "sluice.io" || group == "flagger.app");
}

namespace {

// The pause the Canary controller puts on the ScaledObject of a Canary's autoscalerRef while
// the target is at zero (nullopt: the Canary names no ScaledObject).
std::optional<diff::IgnoreRule> pausedScalerRule(const json& canary, const std::string& ns) {
    const json::json_pointer refPtr("/spec/autoscalerRef");
    if (!canary.contains(refPtr) || !canary.at(refPtr).is_object()) return std::nullopt;
    const json& ref = canary.at(refPtr);
    const std::string name = stringField(ref, "name");
    if (stringField(ref, "kind") != "ScaledObject" || name.empty() || ns.empty())
        return std::nullopt;
    diff::IgnoreRule rule;
    rule.group = "keda.sh";
    rule.kind = "ScaledObject";
    rule.name = name;
    rule.ns = ns;
    rule.jsonPointers = kCanaryControlledScalerPointers;
    return rule;
}

}  // namespace

std::vector<diff::IgnoreRule> canaryTargetRules(const std::vector<const json*>& canaries) {
    std::vector<diff::IgnoreRule> rules;
    std::set<std::pair<std::string, std::string>> seen;
    std::set<std::pair<std::string, std::string>> seenScalers;
    for (const json* c : canaries) {
        if (!c || !isCanary(*c)) continue;
        if (auto scaler = pausedScalerRule(*c, metadataField(*c, "namespace"))) {
            if (seenScalers.emplace(scaler->ns, scaler->name).second)
                rules.push_back(std::move(*scaler));
        }
        const json::json_pointer refPtr("/spec/targetRef");
        if (!c->contains(refPtr) || !c->at(refPtr).is_object()) continue;
        const json& ref = c->at(refPtr);
        const std::string kind = stringField(ref, "kind");
        const std::string apiVersion = stringField(ref, "apiVersion");
        const std::string name = stringField(ref, "name");
        const std::string ns = metadataField(*c, "namespace");
        if ((kind != "Deployment" && kind != "DaemonSet") ||
            groupOf(apiVersion.empty() ? "apps/v1" : apiVersion) != "apps" || name.empty() ||
            ns.empty())
            continue;
        if (!seen.emplace(ns, kind + "/" + name).second) continue;
        diff::IgnoreRule rule;
        rule.group = "apps";
        rule.kind = kind;
        rule.name = name;
        rule.ns = ns;
        rule.jsonPointers =
            kind == "DaemonSet" ? kCanaryControlledDaemonSetPointers : kCanaryControlledPointers;
        rules.push_back(std::move(rule));
    }
    return rules;
}

namespace {

std::string fingerprint(const std::vector<diff::IgnoreRule>& rules) {
    std::string out;
    for (const auto& r : rules) {
        out += r.group + "/" + r.kind + "/" + r.ns + "/" + r.name + "|";
        for (const auto& p : r.jsonPointers) out += p + ",";
        out += "|";
        for (const auto& m : r.managedFieldsManagers) out += m + ",";
        out += ";";
    }
    return out;
}

}  // namespace

namespace {

std::string canaryKeyOf(const std::vector<std::shared_ptr<const json>>& canaries) {
    std::string out;
    for (const auto& c : canaries)
        if (c) out += metadataField(*c, "uid") + "@" + metadataField(*c, "resourceVersion") + ";";
    return out;
}

std::string inventoryDigest(const std::vector<InventoryEntry>& inventory) {
    std::string text;
    for (const auto& e : inventory)
        for (const std::string* part : {&e.group, &e.version, &e.kind, &e.ns, &e.name}) {
            text += *part;
            text += '\0';
        }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

// The memo's whole result when nothing compare() would read has changed; nullopt otherwise.
std::optional<CompareResult> reuseWhole(const CompareInput& in, const std::string& ignoreKey,
                                        const std::string& canaryKey) {
    const CompareMemo* m = in.memo.get();
    if (!m || !m->result || in.desiredKey.empty() || m->desiredKey != in.desiredKey ||
        m->ignoreKey != ignoreKey || m->canaryKey != canaryKey ||
        m->liveVersions.size() != m->result->resources.size())
        return std::nullopt;
    auto lookup = [&](const ResourceKey& key, const std::string& version) {
        return in.liveAt ? in.liveAt(key, version) : (in.live ? in.live(key) : nullptr);
    };
    auto versionOf = [](const std::shared_ptr<const json>& obj) {
        return obj ? metadataField(*obj, "resourceVersion") : std::string();
    };
    for (const auto& l : m->otherLooked)
        if (versionOf(lookup(l.key, l.version)) != l.liveVersion) return std::nullopt;
    // The objects go back in: the same desired set (same key) and the same live versions.
    CompareResult out = *m->result;
    for (std::size_t i = 0; i < out.resources.size(); ++i) {
        ResourceComparison& r = out.resources[i];
        r.live = lookup(r.key, r.version);
        if (versionOf(r.live) != m->liveVersions[i]) return std::nullopt;
    }
    if (m->inventoryDigest != inventoryDigest(in.inventory)) return std::nullopt;
    auto desiredAt = [&](int i) -> std::shared_ptr<const json> {
        if (i < 0 || static_cast<std::size_t>(i) >= in.desired->size()) return nullptr;
        return std::shared_ptr<const json>(in.desired, &(*in.desired)[i]);
    };
    for (auto& r : out.resources) r.desired = desiredAt(r.desiredIndex);
    for (auto& h : out.hooks) h.desired = desiredAt(h.desiredIndex);
    out.memo = in.memo;
    out.reused = true;
    return out;
}

// The result as a memo keeps it: conclusions only, no objects.
std::shared_ptr<const CompareResult> withoutObjects(CompareResult result) {
    for (auto& r : result.resources) {
        r.desired.reset();
        r.live.reset();
    }
    for (auto& h : result.hooks) h.desired.reset();
    return std::make_shared<const CompareResult>(std::move(result));
}

}  // namespace

CompareResult compare(const CompareInput& in) {
    const std::string commonRules = fingerprint(in.ignore);
    const std::string canaryKey = canaryKeyOf(in.canaries);
    if (auto whole = reuseWhole(in, commonRules, canaryKey)) return std::move(*whole);

    CompareResult result;
    std::set<ResourceKey> desiredKeys;
    std::vector<ResourceComparison> desired;
    // Deployments a Canary scales: its fields are the Canary controller's, never drift.
    std::vector<const json*> canaries;
    const std::vector<json>& desiredObjects = *in.desired;
    for (const auto& obj : desiredObjects)
        if (isCanary(obj)) canaries.push_back(&obj);
    for (const auto& c : in.canaries)
        if (c) canaries.push_back(c.get());
    const std::vector<diff::IgnoreRule> canaryRules = canaryTargetRules(canaries);
    auto memo = std::make_shared<CompareMemo>();
    memo->desiredKey = in.desiredKey;
    memo->inventoryDigest = inventoryDigest(in.inventory);
    memo->ignoreKey = commonRules;
    memo->canaryKey = canaryKey;
    // The previous results per desired object, for the objects neither side changed, and the
    // live versions they were concluded from.
    std::map<ResourceKey, const ResourceComparison*> earlierByKey;
    std::map<ResourceKey, const std::string*> earlierVersion;
    if (in.memo && in.memo->result && !in.desiredKey.empty() &&
        in.memo->desiredKey == in.desiredKey && in.memo->ignoreKey == commonRules) {
        const auto& earlier = in.memo->result->resources;
        for (std::size_t i = 0; i < earlier.size(); ++i)
            if (earlier[i].desiredIndex >= 0 && i < in.memo->liveVersions.size()) {
                earlierByKey.emplace(earlier[i].key, &earlier[i]);
                earlierVersion.emplace(earlier[i].key, &in.memo->liveVersions[i]);
            }
    }
    std::set<ResourceKey> hookKeys;  // never prune candidates
    for (std::size_t index = 0; index < desiredObjects.size(); ++index) {
        const json& obj = desiredObjects[index];
        if (auto hook = hookOf(obj)) {
            HookResource h;
            h.desiredIndex = static_cast<int>(index);
            h.key = ResourceKey::of(obj);
            hookKeys.insert(h.key);
            if (hook->skip && hook->types.empty()) continue;
            h.version = versionOf(stringField(obj, "apiVersion"));
            h.desired = std::shared_ptr<const json>(in.desired, &obj);
            h.info = std::move(*hook);
            h.kindOrder = kindOrder(h.key.group, h.key.kind);
            result.hooks.push_back(std::move(h));
            continue;
        }
        ResourceComparison r;
        r.desiredIndex = static_cast<int>(index);
        r.key = ResourceKey::of(obj);
        for (const auto& rule : canaryRules)
            if (rule.matches(obj)) r.controlled.push_back(rule);
        std::vector<diff::IgnoreRule> ignoreHere;
        const std::vector<diff::IgnoreRule>* ignore = &in.ignore;
        if (!r.controlled.empty()) {
            ignoreHere = in.ignore;
            ignoreHere.insert(ignoreHere.end(), r.controlled.begin(), r.controlled.end());
            ignore = &ignoreHere;
        }
        desiredKeys.insert(r.key);
        r.version = versionOf(stringField(obj, "apiVersion"));
        r.desired = std::shared_ptr<const json>(in.desired, &obj);
        r.live = in.live ? in.live(r.key) : nullptr;
        r.wave = syncWaveOf(obj);
        r.kindOrder = kindOrder(r.key.group, r.key.kind);
        r.objectOptions = objectSyncOptionsOf(obj);
        const std::string liveVersion = r.live ? metadataField(*r.live, "resourceVersion") : "";
        const ResourceComparison* earlier = nullptr;
        if (auto it = earlierByKey.find(r.key); it != earlierByKey.end()) {
            const ResourceComparison& e = *it->second;
            auto v = earlierVersion.find(r.key);
            const std::string before = v == earlierVersion.end() ? std::string() : *v->second;
            // A live object without a resourceVersion (never from the API) is always diffed.
            if (!liveVersion.empty() == !!r.live && before == liveVersion &&
                fingerprint(e.controlled) == fingerprint(r.controlled))
                earlier = &e;
        }
        if (earlier) {
            r.diff = earlier->diff;
            r.health = earlier->health;
        } else {
            r.diff = diff::compare(obj, r.live ? *r.live : json(), *ignore, in.manager);
            r.health = health::assess(r.live ? *r.live : json());
        }
        if (!r.live) {
            r.state = SyncState::Missing;
        } else {
            r.pruneDisabled = objectSyncOptionsOf(*r.live).pruneDisabled;
            r.state = r.diff.modified ? SyncState::OutOfSync : SyncState::Synced;
            // Another Application's object: reported and left alone. An object nobody
            // tracks (or whose id was copied from elsewhere) is adopted by the next apply.
            auto owner = trackingIdOf(*r.live);
            if (owner && owner->instance != in.instance &&
                *owner == trackingIdFor(owner->instance, *r.live)) {
                r.ownedBy = owner->instance;
                r.state = SyncState::OutOfSync;
                result.sharedResourceWarnings.push_back(r.key.str() + " is tracked by " +
                                                        r.ownedBy);
            }
        }
        desired.push_back(std::move(r));
    }
    std::stable_sort(desired.begin(), desired.end(),
                     [](const auto& a, const auto& b) { return orderKey(a) < orderKey(b); });

    // Prune candidates: only what a previous sync recorded AND still carries our id, so an
    // object created by hand, or taken over by another Application, is never deleted.
    std::vector<ResourceComparison> prune;
    std::set<ResourceKey> considered;
    for (const auto& entry : in.inventory) {
        ResourceKey key = entry.key();
        if (desiredKeys.count(key) || hookKeys.count(key) || !considered.insert(key).second)
            continue;
        auto live = in.live ? in.live(key) : nullptr;
        if (!live || !isTrackedBy(*live, in.instance)) {
            memo->otherLooked.push_back(
                {key, entry.version, live ? metadataField(*live, "resourceVersion") : ""});
            continue;
        }
        ResourceComparison r;
        r.key = key;
        r.version = entry.version;
        r.live = live;
        r.state = SyncState::OutOfSync;
        r.requiresPruning = true;
        r.objectOptions = objectSyncOptionsOf(*live);
        r.pruneDisabled = r.objectOptions.pruneDisabled;
        r.health = health::assess(*live);
        r.wave = syncWaveOf(*live);
        r.kindOrder = kindOrder(key.group, key.kind);
        prune.push_back(std::move(r));
    }
    std::stable_sort(prune.begin(), prune.end(),
                     [](const auto& a, const auto& b) { return orderKey(a) < orderKey(b); });

    for (const auto& r : desired) {
        if (r.state != SyncState::Synced) result.synced = false;
        result.health = health::worst(result.health, r.health.status);
    }
    if (!prune.empty()) result.synced = false;
    result.resources = std::move(desired);
    for (auto& r : prune) result.resources.push_back(std::move(r));
    for (const auto& r : result.resources)
        memo->liveVersions.push_back(r.live ? metadataField(*r.live, "resourceVersion") : "");
    memo->result = withoutObjects(result);
    result.memo = std::move(memo);
    return result;
}

namespace {

// Hooks into their phases' steps, by wave, then kind order and name within one.
void planHooks(const std::vector<HookResource>& hooks, SyncPlan& plan,
               std::map<int, SyncStep>& syncSteps) {
    std::map<std::pair<HookType, int>, HookStep> steps;
    for (std::size_t i = 0; i < hooks.size(); ++i) {
        const HookResource& h = hooks[i];
        for (HookType t : h.info.types) {
            if (t == HookType::Sync) {
                SyncStep& step = syncSteps[h.info.wave];
                step.wave = h.info.wave;
                step.hooks.push_back(i);
                continue;
            }
            HookStep& step = steps[{t, h.info.wave}];
            step.phase = t;
            step.wave = h.info.wave;
            step.hooks.push_back(i);
        }
    }
    auto order = [&](std::size_t a, std::size_t b) {
        return std::tie(hooks[a].kindOrder, hooks[a].key.kind, hooks[a].key.name) <
               std::tie(hooks[b].kindOrder, hooks[b].key.kind, hooks[b].key.name);
    };
    for (auto& [wave, step] : syncSteps)
        std::stable_sort(step.hooks.begin(), step.hooks.end(), order);
    for (auto& [phaseWave, step] : steps) {
        std::stable_sort(step.hooks.begin(), step.hooks.end(), order);
        std::vector<HookStep>& into = step.phase == HookType::PreSync    ? plan.preSync
                                      : step.phase == HookType::PostSync ? plan.postSync
                                      : step.phase == HookType::SyncFail ? plan.syncFail
                                                                         : plan.postDelete;
        into.push_back(std::move(step));
    }
}

}  // namespace

SyncPlan planSync(const CompareResult& compared, const SyncRequest& request) {
    SyncPlan plan;
    std::map<int, SyncStep> steps;
    const auto& res = compared.resources;
    for (size_t i = 0; i < res.size(); ++i) {
        const ResourceComparison& r = res[i];
        if (r.desired) {
            if (!r.ownedBy.empty()) {
                plan.skipped.push_back(i);
                continue;
            }
            if (request.applyOutOfSyncOnly && r.state == SyncState::Synced) continue;
            if (isNamespaceKind(r.key) || isCrdKind(r.key)) {
                plan.bootstrap.push_back(i);
                continue;
            }
            SyncStep& step = steps[r.wave];
            step.wave = r.wave;
            step.apply.push_back(i);
            continue;
        }
        if (!r.requiresPruning) continue;
        if (!request.prune || r.pruneDisabled) {
            plan.skipped.push_back(i);
            continue;
        }
        if (request.options.pruneLast || r.objectOptions.pruneLast) {
            plan.pruneLast.push_back(i);
            continue;
        }
        SyncStep& step = steps[r.wave];
        step.wave = r.wave;
        step.prune.push_back(i);
    }
    auto forward = [&](size_t a, size_t b) { return orderKey(res[a]) < orderKey(res[b]); };
    // Deletion runs in reverse kind order (a Deployment goes before its ServiceAccount), and
    // PruneLast in reverse wave order too, as Argo CD does.
    auto reverse = [&](size_t a, size_t b) { return orderKey(res[b]) < orderKey(res[a]); };
    std::stable_sort(plan.bootstrap.begin(), plan.bootstrap.end(), forward);
    std::stable_sort(plan.pruneLast.begin(), plan.pruneLast.end(), reverse);
    planHooks(compared.hooks, plan, steps);
    for (auto& [wave, step] : steps) {
        std::stable_sort(step.apply.begin(), step.apply.end(), forward);
        std::stable_sort(step.prune.begin(), step.prune.end(), reverse);
        plan.waves.push_back(std::move(step));
    }
    return plan;
}

json applyPayload(const json& desired, const std::shared_ptr<const json>& live,
                  const std::vector<diff::IgnoreRule>& ignore, bool respectIgnoreDifferences) {
    json payload = diff::normalizeDesired(desired);
    // Argo CD applies RespectIgnoreDifferences only to objects that exist: a new object is
    // created whole.
    if (respectIgnoreDifferences && live) diff::removeIgnoredFields(payload, *live, ignore);
    return payload;
}

json controlledPayload(json payload, const std::shared_ptr<const json>& live,
                       const std::vector<diff::IgnoreRule>& controlled,
                       const std::string& manager) {
    if (!live || controlled.empty()) return payload;
    const auto entries = fs::parseManagedFields(*live);
    for (const auto& rule : controlled) {
        if (!rule.matches(*live)) continue;
        for (const auto& text : rule.jsonPointers) {
            json::json_pointer ptr;
            try {
                ptr = json::json_pointer(text);
            } catch (const std::exception&) {
                continue;
            }
            if (ptr.empty() || !payload.contains(ptr)) continue;
            // Object fields only (what kCanaryControlledPointers names).
            fs::Path path;
            for (json::json_pointer p = ptr; !p.empty(); p.pop_back())
                path.insert(path.begin(), fs::PathElement::field(p.back()));
            bool ownedByUs = false;
            for (const auto& e : entries)
                if (e.manager == manager && e.subresource.empty() && e.fields.contains(path))
                    ownedByUs = true;
            if (ownedByUs && live->contains(ptr)) {
                payload[ptr] = live->at(ptr);
                continue;
            }
            json& parent = payload[ptr.parent_pointer()];
            if (parent.is_object()) parent.erase(ptr.back());
        }
    }
    return payload;
}

std::vector<std::string> driftManagers(const json& live, const diff::Result& differences,
                                       const std::string& self) {
    std::vector<std::string> paths;
    for (const auto& d : differences.differences)
        if (d.path != "." && !d.path.empty()) paths.push_back(d.path);
    if (paths.empty()) return {};
    const fs::Schema& schema =
        fs::Schema::forKind(stringField(live, "apiVersion"), stringField(live, "kind"));
    std::map<std::string, std::string> latest;  // manager -> most recent time of a match
    std::vector<std::string> order;             // first appearance, for equal times
    for (const auto& entry : fs::parseManagedFields(live)) {
        if (entry.manager == self || entry.manager.empty()) continue;
        bool owns = false;
        for (const auto& owned : entry.fields.paths()) {
            // Either spelling: diff::compare writes its own paths and fieldset::toString for
            // fields it found only in managedFields.
            const std::string a = diffStylePath(owned, schema);
            const std::string b = fs::toString(owned);
            for (const auto& p : paths)
                if ((!a.empty() && isAtOrBelow(a, p)) || isAtOrBelow(b, p)) owns = true;
            if (owns) break;
        }
        if (!owns) continue;
        auto [it, inserted] = latest.emplace(entry.manager, entry.time);
        if (inserted) {
            order.push_back(entry.manager);
        } else if (entry.time > it->second) {
            it->second = entry.time;
        }
    }
    std::stable_sort(order.begin(), order.end(), [&](const std::string& a, const std::string& b) {
        return latest[a] > latest[b];
    });
    return order;
}

}  // namespace sluice::appengine
