// Reading Applications from the cache and writing them back: status, operation, annotations,
// Events.
#include "application_store.h"

#include <spdlog/spdlog.h>

#include "sluice/util/strings.h"
#include "util.h"

namespace sluice::appcontroller {

ApplicationStore::ApplicationStore(kube::KubeClient& client, const Clock& clock,
                                   kube::EventRecorder* events, const std::string& controlNamespace,
                                   const BaseInformers& base)
    : client_(client), clock_(clock), base_(base), events_(events) {
    if (!events_) {
        ownEvents_ = std::make_unique<kube::KubeEventRecorder>(client, "sluice-controller",
                                                               controlNamespace, &clock);
        events_ = ownEvents_.get();
    }
}

bool ApplicationStore::load(AppRef& ref) {
    auto cached = base_.applications->store().get(ref.ns, ref.name);
    if (!cached) return false;
    // Everything but the status is copied (small); the status, which holds a line per
    // resource, is shared with the cache.
    json object = json::object();
    std::shared_ptr<const json> status;
    for (auto it = cached->begin(); it != cached->end(); ++it) {
        if (it.key() != "status") {
            object[it.key()] = it.value();
        } else if (it->is_object()) {
            status = std::shared_ptr<const json>(cached, &*it);
        }
    }
    if (!status) status = std::make_shared<const json>(json::object());
    if (auto unseen = pending_.unseen(ref.key, kube::resourceVersionOf(*cached))) {
        const auto& [version, writes] = *unseen;
        if (writes.status) status = writes.status;
        if (writes.operationRemoved) object.erase("operation");
        if (!writes.annotationsRemoved.empty() && object["metadata"].contains("annotations"))
            for (const auto& a : writes.annotationsRemoved)
                object["metadata"]["annotations"].erase(a);
        object["metadata"]["resourceVersion"] = version;
    }
    ref.object = std::move(object);
    ref.status = std::move(status);
    return true;
}

std::string ApplicationStore::operationPhase(const AppRef& ref) {
    AppRef fresh{ref.ns, ref.name, ref.key, ref.instance, {}, nullptr};
    if (!load(fresh)) return "";
    return detail::strAt(*fresh.status, "/operationState/phase"_json_pointer);
}

void ApplicationStore::recordPending(const std::string& key, const json& response,
                                     const std::function<void(UnseenWrites&)>& update) {
    pending_.record(key, kube::resourceVersionOf(response), update);
}

namespace {

// Two status fields as packStatus leaves them. Packed text as the API server wrote it (kept raw
// by the watch) may differ from ours in form only (Go escapes '<' as \u003c): compared as JSON
// then.
bool samePacked(const json& a, const json& b) {
    if (a == b) return true;
    if (!a.is_string() || !b.is_string()) return false;
    return appengine::unpackedField(a) == appengine::unpackedField(b);
}

}  // namespace

bool ApplicationStore::writeStatus(AppRef& ref, const json& updates) {
    // Compared as the cache keeps them (appengine::packStatus), whichever form either side is in.
    json cur = *ref.status;
    appengine::packStatus(cur);
    json packedUpdates = updates;
    appengine::packStatus(packedUpdates);
    // Only the fields that differ are written: a reconcile that finds nothing new writes
    // nothing at all, not even reconciledAt (which dates the last change of status).
    std::vector<std::string> changed;
    for (auto it = packedUpdates.begin(); it != packedUpdates.end(); ++it) {
        auto c = cur.find(it.key());
        if (it->is_null() ? c != cur.end() : c == cur.end() || !samePacked(*c, *it))
            changed.push_back(it.key());
    }
    if (changed.empty()) return true;
    const std::string now = formatRfc3339(clock_.wallNow());
    json ops = json::array();
    // A phase we set to Running may have been turned into Terminating by the user since: the
    // test makes such a write fail instead of overwriting the request.
    const std::string oldPhase = detail::strAt(cur, "/operationState/phase"_json_pointer);
    if (oldPhase == "Running")
        ops.push_back(
            {{"op", "test"}, {"path", "/status/operationState/phase"}, {"value", "Running"}});
    // What goes to the API is never packed, even where an update copied a cached field.
    auto sendable = [&](const std::string& k) {
        json one = {{k, updates[k]}};
        appengine::unpackStatus(one);
        return std::move(one[k]);
    };
    if (cur.empty()) {
        json whole = json::object();
        for (auto it = updates.begin(); it != updates.end(); ++it)
            if (!it->is_null()) whole[it.key()] = sendable(it.key());
        whole["reconciledAt"] = now;
        ops.push_back({{"op", "add"}, {"path", "/status"}, {"value", std::move(whole)}});
    } else {
        for (const auto& k : changed) {
            if (updates[k].is_null()) {
                ops.push_back({{"op", "remove"}, {"path", "/status/" + k}});
            } else {
                ops.push_back({{"op", "add"}, {"path", "/status/" + k}, {"value", sendable(k)}});
            }
        }
        ops.push_back({{"op", "add"}, {"path", "/status/reconciledAt"}, {"value", now}});
    }
    kube::PatchOptions po;
    po.subresource = "status";
    // The answer's status would be a large object to parse again (a line per resource): the
    // status the patch leaves is the one we patched with the changes applied.
    po.metadataOnly = true;
    try {
        json response = client_.patch(kApplicationGvk, ref.ns, ref.name, kube::PatchType::JsonPatch,
                                      ops.dump(), po);
        json storedStatus = cur.is_object() ? std::move(cur) : json::object();
        for (const auto& k : changed) {
            if (packedUpdates[k].is_null()) {
                storedStatus.erase(k);
            } else {
                storedStatus[k] = std::move(packedUpdates[k]);
            }
        }
        storedStatus["reconciledAt"] = now;
        auto stored = std::make_shared<const json>(std::move(storedStatus));
        recordPending(ref.key, response, [&](UnseenWrites& p) { p.status = stored; });
        ref.status = stored;
        ref.object["metadata"]["resourceVersion"] = kube::resourceVersionOf(response);
        return true;
    } catch (const kube::ApiError& e) {
        if (e.isNotFound()) return true;  // deleted meanwhile
        if (oldPhase == "Running" && (e.isInvalid() || e.isConflict())) {
            json fresh = client_.get(kApplicationGvk, ref.ns, ref.name);
            json freshStatus = fresh.contains("status") ? fresh["status"] : json::object();
            appengine::packStatus(freshStatus);
            ref.status = std::make_shared<const json>(std::move(freshStatus));
            fresh.erase("status");
            ref.object = std::move(fresh);
            spdlog::info("application {}: operation phase changed to {} while syncing", ref.key,
                         detail::strAt(*ref.status, "/operationState/phase"_json_pointer));
            return false;
        }
        throw;
    }
}

void ApplicationStore::removeOperation(AppRef& ref) {
    if (!ref.object.contains("operation")) return;
    try {
        kube::PatchOptions po;
        po.metadataOnly = true;
        json response = client_.patch(kApplicationGvk, ref.ns, ref.name, kube::PatchType::Merge,
                                      R"({"operation":null})", po);
        recordPending(ref.key, response, [](UnseenWrites& p) { p.operationRemoved = true; });
        ref.object.erase("operation");
    } catch (const kube::ApiError& e) {
        if (!e.isNotFound()) throw;
    }
}

void ApplicationStore::setOperation(AppRef& ref, const json& operation) {
    kube::PatchOptions po;
    po.metadataOnly = true;
    client_.patch(kApplicationGvk, ref.ns, ref.name, kube::PatchType::Merge,
                  json{{"operation", operation}}.dump(), po);
    ref.object["operation"] = operation;
}

void ApplicationStore::addFinalizer(AppRef& ref, const std::string& finalizer) {
    const json fresh = client_.get(kApplicationGvk, ref.ns, ref.name);
    const json finalizers = fresh["metadata"].value("finalizers", json::array());
    if (std::find(finalizers.begin(), finalizers.end(), finalizer) == finalizers.end()) {
        // The version test keeps a concurrent change of the list from being lost.
        json ops = json::array(
            {{{"op", "test"},
              {"path", "/metadata/resourceVersion"},
              {"value", kube::resourceVersionOf(fresh)}},
             finalizers.empty()
                 ? json{{"op", "add"}, {"path", "/metadata/finalizers"}, {"value", {finalizer}}}
                 : json{{"op", "add"}, {"path", "/metadata/finalizers/-"}, {"value", finalizer}}});
        kube::PatchOptions po;
        po.metadataOnly = true;
        client_.patch(kApplicationGvk, ref.ns, ref.name, kube::PatchType::JsonPatch, ops.dump(),
                      po);
        spdlog::info("application {}: added finalizer {}", ref.key, finalizer);
    }
    json& list = ref.object["metadata"]["finalizers"];
    if (!list.is_array()) list = json::array();
    if (std::find(list.begin(), list.end(), finalizer) == list.end()) list.push_back(finalizer);
}

void ApplicationStore::removeAnnotations(AppRef& ref, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    json patch = {{"metadata", {{"annotations", json::object()}}}};
    for (const auto& k : keys) patch["metadata"]["annotations"][k] = nullptr;
    try {
        kube::PatchOptions po;
        po.metadataOnly = true;
        json response = client_.patch(kApplicationGvk, ref.ns, ref.name, kube::PatchType::Merge,
                                      patch.dump(), po);
        recordPending(ref.key, response, [&](UnseenWrites& p) {
            p.annotationsRemoved.insert(keys.begin(), keys.end());
        });
    } catch (const kube::ApiError& e) {
        if (!e.isNotFound()) throw;
    }
}

void ApplicationStore::event(const AppRef& ref, kube::EventType type, const std::string& reason,
                             const std::string& message) {
    events_->record(ref.object, type, reason, message);
}

void ApplicationStore::eventOnce(const AppRef& ref, kube::EventType type, const std::string& reason,
                                 const std::string& message) {
    {
        std::lock_guard lock(eventsMu_);
        std::string& last = lastEvents_[ref.key][reason];
        if (last == message) return;
        last = message;
    }
    event(ref, type, reason, message);
}

void ApplicationStore::forgetEvent(const std::string& key, const std::string& reason) {
    std::lock_guard lock(eventsMu_);
    auto it = lastEvents_.find(key);
    if (it != lastEvents_.end()) it->second.erase(reason);
}

void ApplicationStore::forget(const std::string& key) {
    pending_.forget(key);
    std::lock_guard lock(eventsMu_);
    lastEvents_.erase(key);
}

}  // namespace sluice::appcontroller
