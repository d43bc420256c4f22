// The parts of kube-controller-manager (and kubelet) that clients observe through the API:
// garbage collection by ownerReferences, namespace and CRD cleanup, and workload status.
// They run on one background thread, take the store lock for each pass, and write through
// the same commit path as REST requests so watchers see their events.
#include <algorithm>

#include "apilogic/apilogic.h"
#include "apiserver/store.h"

namespace sluice::testing {

namespace {

bool hasFinalizer(const json& obj, const std::string& f) {
    const json fins = obj["metadata"].value("finalizers", json::array());
    return std::find(fins.begin(), fins.end(), f) != fins.end();
}

std::vector<std::string> ownerUids(const json& obj) {
    std::vector<std::string> out;
    for (const auto& r : obj["metadata"].value("ownerReferences", json::array()))
        out.push_back(r.value("uid", ""));
    return out;
}

}  // namespace

void Store::controllerLoop() {
    std::unique_lock<std::mutex> lk(mu_);
    while (!stopping_) {
        auto now = std::chrono::steady_clock::now();
        auto wake = now + std::chrono::milliseconds(200);
        if (!simDue_.empty()) wake = std::min(wake, simDue_.begin()->first);
        ctlCv_.wait_until(lk, wake);
        if (stopping_) break;
        // Cascades (owner -> dependents -> their dependents) settle over a few passes.
        for (int pass = 0; pass < 20 && gcDirty_; ++pass) {
            gcDirty_ = false;
            bool progress = runCrdCleanupLocked();
            progress |= runNamespaceCleanupLocked();
            progress |= runGarbageCollectorLocked();
            if (!progress) break;
        }
        runSimulationLocked(std::chrono::steady_clock::now());
    }
}

bool Store::removeFinalizerLocked(const ResourceInfo& res, const json& obj,
                                  const std::string& fin) {
    json next = obj;
    json fins = json::array();
    for (const auto& f : obj["metadata"].value("finalizers", json::array()))
        if (f != fin) fins.push_back(f);
    if (fins.empty())
        next["metadata"].erase("finalizers");
    else
        next["metadata"]["finalizers"] = fins;
    WriteOptions wo;
    wo.manager = "kube-controller-manager";
    finishUpdateLocked(res, obj, next, "", wo, false, true);
    return true;
}

bool Store::runGarbageCollectorLocked() {
    bool progress = false;
    // Snapshot the work first: commits below modify objects_.
    struct Item {
        ResourcePtr res;
        json obj;
    };
    std::vector<Item> deleting, dependents;
    std::unordered_map<std::string, std::vector<size_t>> byOwner;  // owner uid -> dependents
    for (const auto& [key, m] : objects_) {
        ResourcePtr res = registry_.findByStorageKey(key);
        if (!res) continue;
        for (const auto& [k, obj] : m) {
            const json& meta = obj["metadata"];
            if (meta.contains("deletionTimestamp") &&
                (hasFinalizer(obj, "orphan") || hasFinalizer(obj, "foregroundDeletion")))
                deleting.push_back({res, obj});
            if (meta.contains("ownerReferences") && !meta["ownerReferences"].empty()) {
                for (const auto& uid : ownerUids(obj)) byOwner[uid].push_back(dependents.size());
                dependents.push_back({res, obj});
            }
        }
    }
    for (const auto& [res, owner] : deleting) {
        const std::string uid = owner["metadata"].value("uid", "");
        auto it = byOwner.find(uid);
        if (hasFinalizer(owner, "orphan")) {
            // Orphan: cut the dependents loose, then let the owner go.
            if (it != byOwner.end())
                for (size_t i : it->second) {
                    auto& d = dependents[i];
                    json next = d.obj;
                    json refs = json::array();
                    for (const auto& r : d.obj["metadata"]["ownerReferences"])
                        if (r.value("uid", "") != uid) refs.push_back(r);
                    if (refs.empty())
                        next["metadata"].erase("ownerReferences");
                    else
                        next["metadata"]["ownerReferences"] = refs;
                    WriteOptions wo;
                    wo.manager = "kube-controller-manager";
                    auto r = finishUpdateLocked(*d.res, d.obj, next, "", wo, false, true);
                    d.obj = r.body;
                }
            removeFinalizerLocked(*res, owner, "orphan");
            progress = true;
        } else {
            // Foreground: delete dependents (foreground too), the owner goes once none are left.
            bool remaining = false;
            if (it != byOwner.end())
                for (size_t i : it->second) {
                    auto& d = dependents[i];
                    const json* live = findLocked(*d.res, d.obj["metadata"].value("namespace", ""),
                                                  d.obj["metadata"].value("name", ""));
                    if (!live) continue;
                    remaining = true;
                    if (!(*live)["metadata"].contains("deletionTimestamp")) {
                        DeleteOptions o;
                        o.propagationPolicy = "Foreground";
                        deleteLocked(*d.res, *live, o, true);
                        progress = true;
                    }
                }
            if (!remaining) {
                removeFinalizerLocked(*res, owner, "foregroundDeletion");
                progress = true;
            }
        }
    }
    // Background: dependents none of whose owners exist any more are deleted; references to
    // vanished owners are dropped when another owner still exists.
    for (auto& d : dependents) {
        const json* live = findLocked(*d.res, d.obj["metadata"].value("namespace", ""),
                                      d.obj["metadata"].value("name", ""));
        if (!live || (*live)["metadata"].contains("deletionTimestamp")) continue;
        json refs = (*live)["metadata"].value("ownerReferences", json::array());
        json solid = json::array();
        for (const auto& r : refs)
            if (byUid_.count(r.value("uid", ""))) solid.push_back(r);
        if (solid.size() == refs.size()) continue;
        json cur = *live;
        if (solid.empty()) {
            deleteLocked(*d.res, cur, DeleteOptions{}, true);
        } else {
            json next = cur;
            next["metadata"]["ownerReferences"] = solid;
            WriteOptions wo;
            wo.manager = "kube-controller-manager";
            finishUpdateLocked(*d.res, cur, next, "", wo, false, true);
        }
        progress = true;
    }
    return progress;
}

bool Store::runNamespaceCleanupLocked() {
    bool progress = false;
    auto nsRes = registry_.find("", "v1", "namespaces");
    std::vector<json> terminating;
    for (const auto& [k, ns] : objects_[nsRes->storageKey()])
        if (ns["metadata"].contains("deletionTimestamp")) terminating.push_back(ns);
    for (const json& ns : terminating) {
        const std::string name = ns["metadata"].value("name", "");
        bool remaining = false;
        std::vector<std::pair<ResourcePtr, json>> toDelete;
        for (const auto& [key, m] : objects_) {
            ResourcePtr res = registry_.findByStorageKey(key);
            if (!res || !res->namespaced) continue;
            for (auto it = m.lower_bound(name + "/");
                 it != m.end() && it->first.compare(0, name.size() + 1, name + "/") == 0; ++it) {
                remaining = true;
                if (!it->second["metadata"].contains("deletionTimestamp"))
                    toDelete.emplace_back(res, it->second);
            }
        }
        for (auto& [res, obj] : toDelete) {
            deleteLocked(*res, obj, DeleteOptions{}, true);
            progress = true;
        }
        if (remaining) continue;
        // Empty: the "kubernetes" spec finalizer is done, then metadata finalizers decide.
        json next = ns;
        next["spec"]["finalizers"] = json::array();
        if (next["metadata"].value("finalizers", json::array()).empty()) {
            commitLocked(*nsRes, "DELETED", next, nullptr, true);
        } else if (!ns["spec"].value("finalizers", json::array()).empty()) {
            commitLocked(*nsRes, "MODIFIED", next, &ns, true);
        }
        progress = true;
    }
    return progress;
}

bool Store::runCrdCleanupLocked() {
    bool progress = false;
    auto crdRes = registry_.find("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    std::vector<json> deleting;
    for (const auto& [k, crd] : objects_[crdRes->storageKey()])
        if (crd["metadata"].contains("deletionTimestamp") &&
            hasFinalizer(crd, "customresourcecleanup.apiextensions.k8s.io"))
            deleting.push_back(crd);
    for (const json& crd : deleting) {
        const std::string name = crd["metadata"].value("name", "");
        ResourcePtr res;
        for (const auto& r : registry_.all())
            if (r->isCustom && r->crdName == name) res = r;
        bool remaining = false;
        if (res) {
            std::vector<json> instances;
            for (const auto& [k, obj] : objects_[res->storageKey()]) {
                remaining = true;
                if (!obj["metadata"].contains("deletionTimestamp")) instances.push_back(obj);
            }
            for (const json& obj : instances) {
                deleteLocked(*res, obj, DeleteOptions{}, true);
                progress = true;
            }
        }
        if (!remaining) {
            removeFinalizerLocked(*crdRes, crd, "customresourcecleanup.apiextensions.k8s.io");
            progress = true;
        }
    }
    return progress;
}

void Store::scheduleSimulationLocked(const ResourceInfo& res, const json& obj) {
    if (!opts_.simulateWorkloads) return;
    static const std::vector<std::string> simulated = {
        "apps/deployments", "apps/statefulsets",
        "apps/daemonsets",  "apps/replicasets",
        "batch/jobs",       "/pods",
        "/services",        "/persistentvolumeclaims"};
    if (std::find(simulated.begin(), simulated.end(), res.storageKey()) == simulated.end()) return;
    simDue_.emplace(std::chrono::steady_clock::now() + opts_.simulateDelay,
                    Ref{res.storageKey(), obj["metadata"].value("namespace", ""),
                        obj["metadata"].value("name", "")});
}

void Store::runSimulationLocked(std::chrono::steady_clock::time_point now) {
    while (!simDue_.empty() && simDue_.begin()->first <= now) {
        Ref ref = simDue_.begin()->second;
        simDue_.erase(simDue_.begin());
        ResourcePtr res = registry_.findByStorageKey(ref.storageKey);
        if (!res) continue;
        const json* live = findLocked(*res, ref.ns, ref.name);
        if (!live) continue;
        json status = apilogic::simulatedStatus(*live, nowRfc3339());
        if (status.is_null() || (live->contains("status") && (*live)["status"] == status)) continue;
        json old = *live;
        json next = old;
        next["status"] = status;
        WriteOptions wo;
        wo.manager = res->kind == "Pod" ? "kubelet" : "kube-controller-manager";
        try {
            finishUpdateLocked(*res, old, next, res->hasStatus ? "status" : "", wo, false, true);
        } catch (const std::exception&) {
            // A status the object's schema rejects is simply not written.
        }
    }
}

}  // namespace sluice::testing
