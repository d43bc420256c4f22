// One sync operation: bootstrap (Namespaces, CRDs), dry run, waves of server-side applies with
// prunes and health gates, PruneLast, retries, timeout and termination.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <thread>

#include "impl.h"
#include "sluice/util/strings.h"
#include "util.h"

namespace sluice::appcontroller {

namespace {

std::string propagationPolicy(const std::string& option) {
    if (option == "background") return "Background";
    if (option == "orphan") return "Orphan";
    return "Foreground";
}

// "deployment.apps/web", as kubectl and Argo CD name objects in messages.
std::string kubectlName(const app::ResourceKey& k) {
    std::string kind = k.kind;
    std::transform(kind.begin(), kind.end(), kind.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return kind + (k.group.empty() ? "" : "." + k.group) + "/" + k.name;
}

std::string describeKey(const app::ResourceKey& k) {
    return detail::describe(k.group, k.kind, k.ns, k.name);
}

bool isImmutableError(const std::string& message) {
    return message.find("field is immutable") != std::string::npos;
}

bool bootstrapReady(const json& obj) {
    const std::string kind = obj.value("kind", "");
    if (kind == "Namespace") return detail::strAt(obj, "/status/phase"_json_pointer) == "Active";
    if (kind == "CustomResourceDefinition") {
        if (!obj.contains("status") || !obj["status"].contains("conditions")) return false;
        for (const auto& c : obj["status"]["conditions"])
            if (c.value("type", "") == "Established" && c.value("status", "") == "True")
                return true;
        return false;
    }
    return true;
}

}  // namespace

SyncOutcome ApplicationController::Impl::runSync(AppRef& ref, const app::ApplicationSpec& spec,
                                                 Desired& desired, const SyncRequest& req,
                                                 json& updates) {
    SyncOutcome so;
    counters.syncs++;
    const app::CompareResult& compared = desired.compared;
    const app::SyncPlan plan = app::planSync(compared, req.request);
    const app::SyncOptions& options = req.request.options;
    const std::string sha = desired.revision.sha;
    const json revisionRecord = revisionAndSource(ref, spec, desired);
    const bool dryRun = req.op.dryRun;
    const auto deadline = clock.now() + opts.syncTimeout;
    const StopToken stop = stopSource.token();
    const kube::DeleteOptions pruneDelete{propagationPolicy(options.prunePropagationPolicy),
                                          std::nullopt, "", "", false};
    so.retryCount = req.retryCount;
    so.startedAt = req.startedAt;

    // Per-resource results (index into compared.resources), filled concurrently.
    std::mutex resultsMu;
    std::vector<std::optional<json>> results(compared.resources.size());
    std::vector<bool> applied(compared.resources.size(), false);
    std::vector<bool> pruned(compared.resources.size(), false);
    std::map<std::size_t, std::string> appliedVersion;
    auto setResult = [&](std::size_t i, const std::string& state, const std::string& message) {
        const auto& r = compared.resources[i];
        json item = {{"group", r.key.group},  {"version", r.version}, {"kind", r.key.kind},
                     {"namespace", r.key.ns}, {"name", r.key.name},   {"status", state},
                     {"message", message},    {"syncPhase", "Sync"}};
        std::lock_guard lock(resultsMu);
        results[i] = std::move(item);
    };
    auto gvkAt = [&](std::size_t i) {
        const auto& r = compared.resources[i];
        return detail::gvkOf(r.key.group, r.version, r.key.kind);
    };

    // Start: the operation is visible as Running before anything is written to the cluster.
    json opState = {
        {"operation", recordedOperation(req.op.raw)},
        {"phase", "Running"},
        {"message", req.retryCount > 0 ? "retrying attempt #" + std::to_string(req.retryCount)
                                       : std::string("syncing")},
        {"startedAt", req.startedAt},
        {"retryCount", req.retryCount},
        {"syncResult", revisionRecord}};
    opState["syncResult"]["resources"] = json::array();
    updates["operationState"] = opState;
    auto terminatedByUser = [&] { return operationPhase(ref) == "Terminating"; };
    std::string failure;    // non-empty: the sync failed with this message
    bool terminal = false;  // failure not worth a retry (timeout, termination)
    if (!writeStatus(ref, updates)) {
        so.terminated = true;
    } else {
        event(ref, kube::EventType::Normal, "SyncStarted",
              std::string(dryRun ? "dry-run " : "") + "sync to " + sha + " started" +
                  (req.automated ? " (automated)" : "") +
                  (req.retryCount > 0 ? ", attempt #" + std::to_string(req.retryCount + 1) : ""));
    }

    // Why the sync must end now, checked between steps: shutdown, timeout, termination.
    auto interruption = [&]() -> bool {
        if (so.terminated) return true;
        if (stop.stopRequested()) {
            so.interrupted = true;
            return true;
        }
        if (clock.now() >= deadline) {
            failure = "sync timed out after " + detail::formatDuration(opts.syncTimeout);
            terminal = true;
            return true;
        }
        if (terminatedByUser()) {
            so.terminated = true;
            return true;
        }
        return false;
    };
    // Sleeps one health poll; false when the controller is stopping.
    auto pause = [&] { return stop.sleepFor(opts.healthPollInterval); };

    // Write-ahead: before objects are applied, the inventory in the status already names them,
    // so a sync cut short at any point (even by SIGKILL) leaves nothing with our tracking id
    // that a later prune could miss. One status write per step that adds to the inventory.
    auto entryOf = [&](std::size_t i) {
        const auto& r = compared.resources[i];
        return app::InventoryEntry{r.key.group, r.version, r.key.kind, r.key.ns, r.key.name};
    };
    std::vector<app::InventoryEntry> recorded = desired.inventory;
    std::set<app::ResourceKey> recordedKeys;
    for (const auto& e : recorded) recordedKeys.insert(e.key());
    auto recordIntent = [&](const std::vector<std::size_t>& indices) -> bool {
        if (dryRun) return true;
        bool grew = false;
        for (std::size_t i : indices)
            if (recordedKeys.insert(compared.resources[i].key).second) {
                recorded.push_back(entryOf(i));
                grew = true;
            }
        if (!grew) return true;
        json inventory = {{"inventory", app::inventoryStatus(recorded)}};
        if (writeStatus(ref, inventory)) return true;
        so.terminated = true;  // the user terminated the operation meanwhile
        return false;
    };

    auto applyOne = [&](std::size_t i, bool validateOnly) -> std::optional<std::string> {
        const auto& r = compared.resources[i];
        // A Canary's target: its replicas are the Canary controller's, never re-applied.
        const json payload =
            app::controlledPayload(app::applyPayload(*r.desired, r.live, spec.ignoreDifferences,
                                                     options.respectIgnoreDifferences),
                                   r.live, r.controlled, opts.fieldManager);
        kube::ApplyOptions ao;
        ao.fieldManager = opts.fieldManager;
        ao.force = true;  // as Argo CD: git wins over other managers of the same fields
        ao.dryRun = validateOnly || dryRun;
        std::string verb = "serverside-applied";
        try {
            json response;
            try {
                response = client.apply(payload, ao);
            } catch (const kube::ApiError& e) {
                const bool immutable = e.isInvalid() && isImmutableError(e.message());
                if (validateOnly || ao.dryRun || !immutable ||
                    !(options.replace || r.objectOptions.replace))
                    throw;
                // Replace=true: an immutable field changed, so the object is re-created.
                const auto gvk = gvkAt(i);
                kube::DeleteOptions del;
                del.propagationPolicy = "Foreground";
                try {
                    client.remove(gvk, r.key.ns, r.key.name, del);
                } catch (const kube::ApiError& de) {
                    if (!de.isNotFound()) throw;
                }
                for (;;) {
                    try {
                        client.get(gvk, r.key.ns, r.key.name);
                    } catch (const kube::ApiError& ge) {
                        if (ge.isNotFound()) break;
                        throw;
                    }
                    if (clock.now() >= deadline)
                        return std::string("timed out waiting for the old object to be deleted");
                    if (!pause()) return std::string("interrupted by controller shutdown");
                }
                json fresh = payload;
                response = client.apply(fresh, ao);
                verb = "replaced";
            }
            if (!validateOnly) {
                const std::string rv = kube::resourceVersionOf(response);
                std::lock_guard lock(resultsMu);
                applied[i] = true;
                if (!ao.dryRun) {
                    appliedVersion[i] = rv;
                    so.written.push_back({gvkAt(i), r.key.ns, r.key.name, rv});
                }
            }
            if (!validateOnly)
                setResult(i, "Synced",
                          kubectlName(r.key) + " " + verb + (ao.dryRun ? " (dry run)" : ""));
            return std::nullopt;
        } catch (const kube::ApiError& e) {
            return e.message();
        } catch (const std::exception& e) {
            return std::string(e.what());
        }
    };

    auto applyAll = [&](const std::vector<std::size_t>& indices) -> bool {
        std::vector<std::optional<std::string>> errors(indices.size());
        detail::parallelFor(indices.size(), opts.applyConcurrency,
                            [&](std::size_t n) { errors[n] = applyOne(indices[n], false); });
        std::vector<std::string> failed;
        for (std::size_t n = 0; n < indices.size(); ++n) {
            if (!errors[n]) continue;
            setResult(indices[n], "SyncFailed", *errors[n]);
            failed.push_back(describeKey(compared.resources[indices[n]].key) + ": " + *errors[n]);
        }
        if (failed.empty()) return true;
        failure = "one or more objects failed to apply: " + join(failed, "; ");
        return false;
    };

    auto pruneAll = [&](const std::vector<std::size_t>& indices) -> bool {
        std::vector<std::optional<std::string>> errors(indices.size());
        detail::parallelFor(indices.size(), opts.applyConcurrency, [&](std::size_t n) {
            const std::size_t i = indices[n];
            const auto& r = compared.resources[i];
            const auto gvk = gvkAt(i);
            auto live = liveObject(gvk, r.key.ns, r.key.name);
            if (!live) {
                setResult(i, "Pruned", "already deleted");
                return;
            }
            if (!app::isTrackedBy(*live, ref.instance)) {
                setResult(i, "PruneSkipped", "no longer tracked by " + ref.instance);
                return;
            }
            if (dryRun) {
                setResult(i, "Pruned", "pruned (dry run)");
                return;
            }
            kube::DeleteOptions del = pruneDelete;
            del.preconditionUid = kube::uidOf(*live);  // never delete a re-created namesake
            try {
                client.remove(gvk, r.key.ns, r.key.name, del);
            } catch (const kube::ApiError& e) {
                if (!e.isNotFound()) {
                    errors[n] = e.message();
                    setResult(i, "SyncFailed", "prune failed: " + e.message());
                    return;
                }
            } catch (const std::exception& e) {
                errors[n] = e.what();
                setResult(i, "SyncFailed", std::string("prune failed: ") + e.what());
                return;
            }
            {
                std::lock_guard lock(resultsMu);
                pruned[i] = true;
                so.pruned++;
            }
            setResult(i, "Pruned", "pruned");
            const std::string what =
                "pruned " + detail::describe(r.key.group, r.key.kind, r.key.ns, r.key.name);
            spdlog::info("application {}: {}", ref.key, what);
            event(ref, kube::EventType::Normal, "Pruned", what);
        });
        std::vector<std::string> failed;
        for (std::size_t n = 0; n < indices.size(); ++n)
            if (errors[n])
                failed.push_back(describeKey(compared.resources[indices[n]].key) + ": " +
                                 *errors[n]);
        if (failed.empty()) return true;
        failure = "one or more objects failed to prune: " + join(failed, "; ");
        return false;
    };

    // Waits until every applied object of a step is Healthy (or Suspended) in the cache, as of
    // our write at least. False: failed (Degraded), timed out, terminated or interrupted.
    auto waitHealthy = [&](const std::vector<std::size_t>& indices) -> bool {
        for (;;) {
            if (interruption()) return false;
            bool ready = true;
            for (std::size_t i : indices) {
                if (!applied[i]) continue;
                const auto& r = compared.resources[i];
                const auto gvk = gvkAt(i);
                std::shared_ptr<const json> live = liveObject(gvk, r.key.ns, r.key.name);
                if (cache::ScopedInformer* cached = managedInformer(gvk);
                    !cached || !cached->covers(r.key.ns)) {
                    try {
                        live = std::make_shared<const json>(client.get(gvk, r.key.ns, r.key.name));
                    } catch (const kube::ApiError& e) {
                        if (!e.isNotFound()) throw;
                    }
                }
                if (!live || !detail::resourceVersionReached(kube::resourceVersionOf(*live),
                                                             appliedVersion[i])) {
                    ready = false;
                    continue;
                }
                health::Assessment h = health::assess(*live);
                if (h.status == health::Status::Degraded) {
                    failure = describeKey(r.key) + " is Degraded" +
                              (h.message.empty() ? "" : ": " + h.message);
                    return false;
                }
                if (h.status != health::Status::Healthy && h.status != health::Status::Suspended)
                    ready = false;
            }
            if (ready) return true;
            if (!pause()) {
                so.interrupted = true;
                return false;
            }
        }
    };

    bool ok = !so.terminated;
    // CreateNamespace=true: the destination namespace, neither tracked nor in the inventory.
    if (ok && options.createNamespace && !spec.destination.namespace_.empty() && !dryRun) {
        const kube::GroupVersionKind nsGvk{"", "v1", "Namespace"};
        try {
            client.get(nsGvk, "", spec.destination.namespace_);
        } catch (const kube::ApiError& e) {
            if (!e.isNotFound()) throw;
            try {
                client.create({{"apiVersion", "v1"},
                               {"kind", "Namespace"},
                               {"metadata", {{"name", spec.destination.namespace_}}}});
                spdlog::info("application {}: created namespace {}", ref.key,
                             spec.destination.namespace_);
            } catch (const kube::ApiError& ce) {
                if (!ce.isAlreadyExists()) {
                    failure =
                        "creating namespace " + spec.destination.namespace_ + ": " + ce.message();
                    ok = false;
                }
            }
        }
    }

    // Namespaces and CRDs first, and waited for, so what lives in them can be dry-run.
    if (ok && !plan.bootstrap.empty()) {
        ok = recordIntent(plan.bootstrap) && applyAll(plan.bootstrap);
        bool crds = false;
        for (std::size_t i : plan.bootstrap)
            crds |= compared.resources[i].key.kind == "CustomResourceDefinition";
        while (ok && !dryRun) {
            bool ready = true;
            for (std::size_t i : plan.bootstrap) {
                const auto& r = compared.resources[i];
                try {
                    if (!bootstrapReady(client.get(gvkAt(i), r.key.ns, r.key.name))) ready = false;
                } catch (const kube::ApiError& e) {
                    if (!e.isNotFound()) throw;
                    ready = false;
                }
            }
            if (ready) break;
            if (interruption() || !pause()) {
                if (stop.stopRequested()) so.interrupted = true;
                ok = false;
            }
        }
        if (ok && crds) {
            // Kinds these CRDs define are served now: watch them before waiting on their health.
            forgetUnknownKinds();
            std::set<kube::GroupVersionKind> kinds;
            for (const auto& step : plan.waves)
                for (std::size_t i : step.apply) kinds.insert(gvkAt(i));
            ensureInformers(kinds, std::chrono::seconds(10));
        }
    }

    // Validate: every object is dry-run first; one rejection and nothing is applied.
    if (ok && options.validate) {
        std::vector<std::size_t> check;
        auto scope = scopeLookup();
        for (const auto& step : plan.waves)
            for (std::size_t i : step.apply) {
                const auto& r = compared.resources[i];
                if (r.objectOptions.validateDisabled) continue;
                if (r.objectOptions.skipDryRunOnMissingResource &&
                    !scope(gvkAt(i).apiVersion(), r.key.kind))
                    continue;
                check.push_back(i);
            }
        std::vector<std::optional<std::string>> errors(check.size());
        detail::parallelFor(check.size(), opts.applyConcurrency,
                            [&](std::size_t n) { errors[n] = applyOne(check[n], true); });
        std::vector<std::string> rejected;
        for (std::size_t n = 0; n < check.size(); ++n) {
            if (!errors[n]) continue;
            // An immutable field is what Replace=true is for: the object is re-created.
            if (isImmutableError(*errors[n]) &&
                (options.replace || compared.resources[check[n]].objectOptions.replace))
                continue;
            setResult(check[n], "SyncFailed", *errors[n]);
            rejected.push_back(describeKey(compared.resources[check[n]].key) + ": " + *errors[n]);
        }
        if (!rejected.empty()) {
            failure = "one or more objects failed validation (dry run), nothing was applied: " +
                      join(rejected, "; ");
            ok = false;
        }
    }

    for (std::size_t w = 0; ok && w < plan.waves.size(); ++w) {
        const app::SyncStep& step = plan.waves[w];
        if (w > 0 && interruption()) {
            ok = false;
            break;
        }
        ok = recordIntent(step.apply) && applyAll(step.apply) && pruneAll(step.prune);
        const bool later = w + 1 < plan.waves.size() || !plan.pruneLast.empty();
        if (ok && later && !dryRun) ok = waitHealthy(step.apply);
    }
    if (ok && !plan.pruneLast.empty()) ok = pruneAll(plan.pruneLast);

    // Resources not touched: owned by another Application, or prune not allowed.
    for (std::size_t i : plan.skipped) {
        const auto& r = compared.resources[i];
        if (!r.ownedBy.empty()) {
            setResult(i, "SyncFailed",
                      describeKey(r.key) + " is part of applications " + r.ownedBy + " and " +
                          ref.instance);
            if (failure.empty())
                failure = "one or more resources are tracked by another application: " +
                          describeKey(r.key) + " (" + r.ownedBy + ")";
            ok = false;
        } else if (r.requiresPruning) {
            setResult(i, "PruneSkipped",
                      r.pruneDisabled ? "ignored (Prune=false)" : "ignored (requires pruning)");
        }
    }

    // Outcome.
    const std::string finishedAt = formatRfc3339(clock.wallNow());
    if (so.terminated) {
        so.phase = "Failed";
        so.message = "Operation terminated";
        terminal = true;
    } else if (so.interrupted) {
        so.phase = "Running";
        so.message = "interrupted by controller shutdown; resumes on restart";
    } else if (ok && failure.empty()) {
        so.phase = "Succeeded";
        so.message =
            dryRun ? "successfully synced (dry run)" : "successfully synced (all tasks run)";
    } else {
        so.phase = "Failed";
        so.message = failure.empty() ? "sync failed" : failure;
    }
    if (so.phase == "Failed" && !terminal && req.retry &&
        (req.retry->limit < 0 || req.retryCount < req.retry->limit)) {
        so.retryScheduled = true;
        so.retryCount = req.retryCount + 1;
        so.retryDelay = req.retry->delayFor(so.retryCount);
        so.phase = "Running";
        so.message = "retrying attempt #" + std::to_string(so.retryCount) + " after " +
                     detail::formatDuration(so.retryDelay) + ": " + so.message;
    } else if (so.phase == "Failed" && req.retry && req.retryCount > 0 && !terminal) {
        so.message += " (retried " + std::to_string(req.retryCount) + " times)";
    }

    json resources = json::array();
    for (const auto& r : results)
        if (r) resources.push_back(*r);
    opState["phase"] = so.phase;
    opState["message"] = so.message;
    opState["retryCount"] = so.retryCount;
    if (so.phase != "Running") opState["finishedAt"] = finishedAt;
    opState["syncResult"]["resources"] = resources;
    updates["operationState"] = opState;

    if (!dryRun) {
        // The inventory is what carries our tracking id and may need pruning later: after a
        // success, the desired set plus anything left unpruned; after a failure, the previous
        // inventory plus whatever this attempt set out to apply, minus what it pruned.
        std::vector<app::InventoryEntry> entries;
        std::set<app::ResourceKey> prunedKeys;
        for (std::size_t i = 0; i < compared.resources.size(); ++i)
            if (pruned[i]) prunedKeys.insert(compared.resources[i].key);
        if (so.phase == "Succeeded") {
            for (std::size_t i = 0; i < compared.resources.size(); ++i) {
                const auto& r = compared.resources[i];
                if (r.desired && r.ownedBy.empty()) entries.push_back(entryOf(i));
                if (!r.desired && !pruned[i]) entries.push_back(entryOf(i));
            }
        } else {
            // Everything this attempt may have applied stays recorded: an apply that failed
            // on our side may still have reached the server.
            for (const auto& e : recorded)
                if (!prunedKeys.count(e.key())) entries.push_back(e);
            for (std::size_t i = 0; i < compared.resources.size(); ++i)
                if (applied[i]) entries.push_back(entryOf(i));
        }
        updates["inventory"] = app::inventoryStatus(entries);
        if (so.phase == "Succeeded") {
            json history = ref.status->contains("history")
                               ? app::unpackedField((*ref.status)["history"])
                               : json::array();
            app::appendHistory(history, revisionRecord, req.startedAt, finishedAt,
                               spec.revisionHistoryLimit);
            updates["history"] = std::move(history);
        }
    }

    counters.prunes += so.pruned;
    if (so.phase == "Succeeded") {
        event(ref, kube::EventType::Normal, "SyncSucceeded",
              "sync to " + sha + " succeeded: " + so.message);
    } else if (!so.interrupted) {
        if (!so.retryScheduled) counters.syncFailures++;
        event(ref, kube::EventType::Warning, "SyncFailed", "sync to " + sha + ": " + so.message);
    }
    spdlog::info("application {}: sync to {} {}: {} ({} applied, {} pruned)", ref.key, sha,
                 so.phase, so.message, std::count(applied.begin(), applied.end(), true), so.pruned);
    return so;
}

void ApplicationController::Impl::waitForCaches(const SyncOutcome& outcome,
                                                std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (const auto& w : outcome.written) {
        for (;;) {
            auto live = liveObject(w.gvk, w.ns, w.name);
            if (cache::ScopedInformer* cached = managedInformer(w.gvk);
                !cached || !cached->covers(w.ns))
                break;
            if (live &&
                detail::resourceVersionReached(kube::resourceVersionOf(*live), w.resourceVersion))
                break;
            if (std::chrono::steady_clock::now() >= deadline) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
}

}  // namespace sluice::appcontroller
