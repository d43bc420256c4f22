#include "decide.h"

#include <gtest/gtest.h>

namespace sluice::appcontroller::detail {
namespace {

using Action = AutoSyncDecision::Action;
using nlohmann::json;

AutoSyncInput input(bool needs, bool sameRevision, const std::string& phase) {
    AutoSyncInput in;
    in.needsSync = needs;
    in.sameRevision = sameRevision;
    in.phase = phase;
    return in;
}

TEST(DecideAutoSync, ArgoCdRules) {
    EXPECT_EQ(decideAutoSync(input(false, true, "Succeeded")).action, Action::None);
    EXPECT_EQ(decideAutoSync(input(true, false, "Succeeded")).action, Action::Sync);
    EXPECT_EQ(decideAutoSync(input(true, false, "")).action, Action::Sync);
    // The same revision again: only self-heal syncs it, and a failed one is never retried.
    EXPECT_EQ(decideAutoSync(input(true, true, "Succeeded")).action, Action::None);
    auto heal = input(true, true, "Succeeded");
    heal.selfHeal = true;
    EXPECT_EQ(decideAutoSync(heal).action, Action::SelfHeal);
    EXPECT_EQ(decideAutoSync(input(true, true, "Failed")).action, Action::RefuseFailed);
    EXPECT_EQ(decideAutoSync(input(true, true, "Error")).action, Action::RefuseFailed);
    // A new revision after a failure is synced.
    EXPECT_EQ(decideAutoSync(input(true, false, "Failed")).action, Action::Sync);
}

TEST(DecideAutoSync, RunningOperationContinuesOrEndsWhenTheTargetMoved) {
    auto running = input(false, true, "Running");
    EXPECT_EQ(decideAutoSync(running).action, Action::Continue);
    EXPECT_FALSE(decideAutoSync(running).endEarlierOperation);
    running.retryPending = true;
    EXPECT_EQ(decideAutoSync(running).action, Action::WaitRetry);
    auto moved = input(true, false, "Running");
    auto d = decideAutoSync(moved);
    EXPECT_TRUE(d.endEarlierOperation);
    EXPECT_EQ(d.action, Action::Sync);
}

TEST(DecideAutoSync, RefusesToWipeOutEverythingUnlessAllowEmpty) {
    auto empty = input(true, false, "Succeeded");
    empty.rendersNothing = true;
    empty.wouldPrune = 3;
    EXPECT_EQ(decideAutoSync(empty).action, Action::RefuseEmpty);
    empty.allowEmpty = true;
    EXPECT_EQ(decideAutoSync(empty).action, Action::Sync);
    empty.allowEmpty = false;
    empty.wouldPrune = 0;  // nothing to delete: an empty source is no danger
    EXPECT_EQ(decideAutoSync(empty).action, Action::Sync);
}

appengine::ResourceComparison resource(const std::string& name, bool desired,
                                       appengine::SyncState state) {
    appengine::ResourceComparison r;
    r.key = {"apps", "Deployment", "web", name};
    r.version = "v1";
    if (desired) r.desired = std::make_shared<const json>(json::object());
    r.state = state;
    return r;
}

TEST(NeedsSync, DifferencesAndPruneCandidates) {
    appengine::CompareResult compared;
    compared.resources = {resource("a", true, appengine::SyncState::Synced)};
    EXPECT_FALSE(needsSync(compared, true));
    auto orphan = resource("old", false, appengine::SyncState::OutOfSync);
    orphan.requiresPruning = true;
    compared.resources.push_back(orphan);
    EXPECT_TRUE(needsSync(compared, true));
    EXPECT_FALSE(needsSync(compared, false));  // prune off: nothing to do for it
    EXPECT_EQ(wouldPrune(compared, true), 1u);
    EXPECT_EQ(wouldPrune(compared, false), 0u);
    compared.resources.back().pruneDisabled = true;  // Prune=false
    EXPECT_EQ(wouldPrune(compared, true), 0u);
    compared.resources.push_back(resource("b", true, appengine::SyncState::Missing));
    EXPECT_TRUE(needsSync(compared, false));
}

TEST(DriftMessage, NamesTheObjectThePathsAndWhoChangedThem) {
    appengine::CompareResult compared;
    auto drifted = resource("web", true, appengine::SyncState::OutOfSync);
    drifted.live = std::make_shared<const json>(json::parse(R"({
        "metadata": {"managedFields": [
            {"manager": "sluice", "operation": "Apply", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kubectl-edit", "operation": "Update", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
        "spec": {"replicas": 5}})"));
    drifted.diff.modified = true;
    drifted.diff.differences.push_back({".spec.replicas", json(2), json(5)});
    compared.resources = {drifted, resource("missing", true, appengine::SyncState::Missing)};
    const std::string msg = driftMessage(compared, "sluice");
    EXPECT_NE(msg.find("self-heal: correcting drift of "), std::string::npos) << msg;
    EXPECT_NE(msg.find("web"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(.spec.replicas)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("changed by kubectl-edit"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("missing"), std::string::npos) << msg;  // missing objects are no drift

    appengine::CompareResult onlyMissing;
    onlyMissing.resources = {resource("missing", true, appengine::SyncState::Missing)};
    EXPECT_EQ(driftMessage(onlyMissing, "sluice"), "self-heal: re-creating missing resources");
}

TEST(DecideAutoSync, ARolledBackRevisionIsHeldUntilGitMoves) {
    AutoSyncInput in;
    in.needsSync = true;
    in.phase = "Succeeded";  // the rollback's sync, to another revision
    in.heldAfterRollback = true;
    EXPECT_EQ(decideAutoSync(in).action, AutoSyncDecision::Action::HoldRolledBack);
    in.heldAfterRollback = false;  // Git moved to a revision not held
    EXPECT_EQ(decideAutoSync(in).action, AutoSyncDecision::Action::Sync);
    in.heldAfterRollback = true;
    in.needsSync = false;  // e.g. Git was reverted to the restored revision
    EXPECT_EQ(decideAutoSync(in).action, AutoSyncDecision::Action::None);
}

TEST(PostSyncRollback, AppliesOnlyToAFinalPostSyncFailureOfAnAutomatedSync) {
    RollbackInput in;
    in.enabled = true;
    in.automated = true;
    in.phase = "Failed";
    in.failedHookPhase = "PostSync";
    in.failedRevision = "bad";
    in.history = json::parse(R"([{"id":0,"revision":"old"},{"id":1,"revision":"good"},
                                 {"id":2,"revision":"bad"}])");
    EXPECT_TRUE(rollbackApplies(in));
    EXPECT_EQ(rollbackTarget(in)["revision"], "good") << "the newest other revision";

    auto without = [&](auto change) {
        RollbackInput copy = in;
        change(copy);
        return rollbackApplies(copy);
    };
    EXPECT_FALSE(without([](auto& c) { c.enabled = false; }));
    EXPECT_FALSE(without([](auto& c) { c.automated = false; })) << "a manual sync is the user's";
    EXPECT_FALSE(without([](auto& c) { c.retryScheduled = true; })) << "retries come first";
    EXPECT_FALSE(without([](auto& c) { c.failedHookPhase = "PreSync"; }));
    EXPECT_FALSE(without([](auto& c) { c.failedHookPhase = ""; })) << "a resource failed";
    EXPECT_FALSE(without([](auto& c) { c.phase = "Succeeded"; }));

    in.history = json::parse(R"([{"id":0,"revision":"bad"}])");
    EXPECT_TRUE(rollbackTarget(in).is_null()) << "nothing earlier to restore";
    in.history = json::parse(R"([{"id":0,"revisions":["a","b"]}])");
    in.failedRevision = "a,c";
    EXPECT_EQ(rollbackTarget(in)["revisions"], json::parse(R"(["a","b"])")) << "multi-source";
}

}  // namespace
}  // namespace sluice::appcontroller::detail
