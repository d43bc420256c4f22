#include "sluice/appengine/hooks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/appengine/plan.h"

namespace sluice::appengine {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

json job(const std::string& name, const json& annotations = json::object()) {
    json o = {{"apiVersion", "batch/v1"},
              {"kind", "Job"},
              {"metadata", {{"name", name}, {"namespace", "prod"}}}};
    if (!annotations.empty()) o["metadata"]["annotations"] = annotations;
    return o;
}

json configMap(const std::string& name, const json& annotations = json::object()) {
    json o = {{"apiVersion", "v1"},
              {"kind", "ConfigMap"},
              {"metadata", {{"name", name}, {"namespace", "prod"}}}};
    if (!annotations.empty()) o["metadata"]["annotations"] = annotations;
    return o;
}

TEST(Hooks, OrdinaryResourcesAreNotHooks) {
    EXPECT_FALSE(hookOf(configMap("settings")));
    EXPECT_FALSE(hookOf(job("migrate", {{"argocd.argoproj.io/sync-wave", "2"}})));
    // Helm's crd-install is an ordinary CRD, as in Argo CD.
    EXPECT_FALSE(hookOf(configMap("crd", {{"helm.sh/hook", "crd-install"}})));
}

TEST(Hooks, ArgoTypesAndTheDefaultDeletePolicy) {
    auto h = hookOf(job("migrate", {{"argocd.argoproj.io/hook", "PreSync"}}));
    ASSERT_TRUE(h);
    EXPECT_THAT(h->types, ElementsAre(HookType::PreSync));
    EXPECT_TRUE(h->deleteBeforeCreation) << "BeforeHookCreation when no policy is given";
    EXPECT_FALSE(h->deleteOnSuccess);
    EXPECT_FALSE(h->deleteOnFailure);

    h = hookOf(job("both", {{"argocd.argoproj.io/hook", "PreSync, PostSync"},
                            {"argocd.argoproj.io/hook-delete-policy", "HookSucceeded,HookFailed"},
                            {"argocd.argoproj.io/sync-wave", "-2"}}));
    ASSERT_TRUE(h);
    EXPECT_THAT(h->types, ElementsAre(HookType::PreSync, HookType::PostSync));
    EXPECT_TRUE(h->deleteOnSuccess);
    EXPECT_TRUE(h->deleteOnFailure);
    EXPECT_FALSE(h->deleteBeforeCreation);
    EXPECT_EQ(h->wave, -2);
}

TEST(Hooks, SluiceAnnotationWinsOverArgoAndHelm) {
    auto h = hookOf(job("j", {{"sluice.io/hook", "SyncFail"},
                              {"argocd.argoproj.io/hook", "PreSync"},
                              {"helm.sh/hook", "post-install"},
                              {"sluice.io/hook-delete-policy", "HookSucceeded"},
                              {"argocd.argoproj.io/hook-delete-policy", "HookFailed"}}));
    ASSERT_TRUE(h);
    EXPECT_THAT(h->types, ElementsAre(HookType::SyncFail));
    EXPECT_TRUE(h->deleteOnSuccess);
    EXPECT_FALSE(h->deleteOnFailure);
}

TEST(Hooks, SkipLeavesTheObjectOut) {
    auto h = hookOf(configMap("manual", {{"argocd.argoproj.io/hook", "Skip"}}));
    ASSERT_TRUE(h);
    EXPECT_TRUE(h->skip);
    EXPECT_THAT(h->types, IsEmpty());
}

TEST(Hooks, HelmHooksMapAsArgoCdMapsThem) {
    auto h = hookOf(job("pre", {{"helm.sh/hook", "pre-install,pre-upgrade"},
                                {"helm.sh/hook-weight", "-5"},
                                {"helm.sh/hook-delete-policy", "hook-succeeded"}}));
    ASSERT_TRUE(h);
    EXPECT_THAT(h->types, ElementsAre(HookType::PreSync));
    EXPECT_EQ(h->wave, -5) << "hook-weight is the wave";
    EXPECT_TRUE(h->deleteOnSuccess);
    EXPECT_FALSE(h->deleteBeforeCreation);

    h = hookOf(job("post", {{"helm.sh/hook", "post-install,post-upgrade"},
                            {"helm.sh/hook-weight", "3"},
                            {"argocd.argoproj.io/sync-wave", "7"}}));
    ASSERT_TRUE(h);
    EXPECT_THAT(h->types, ElementsAre(HookType::PostSync));
    EXPECT_EQ(h->wave, 7) << "an explicit sync-wave wins over hook-weight";
    EXPECT_TRUE(h->deleteBeforeCreation);

    h = hookOf(job("del", {{"helm.sh/hook", "post-delete"}}));
    ASSERT_TRUE(h);
    EXPECT_THAT(h->types, ElementsAre(HookType::PostDelete));

    // Hooks Argo CD does not run: a hook with no phase (never applied, never compared).
    h = hookOf(job("rb", {{"helm.sh/hook", "pre-rollback,pre-delete"}}));
    ASSERT_TRUE(h);
    EXPECT_THAT(h->types, IsEmpty());
}

// Helm's delete policies translate to Argo CD's: before-hook-creation to BeforeHookCreation,
// hook-failed to HookFailed (hook-succeeded above); given any, the default is not added.
TEST(Hooks, HelmDeletePoliciesTranslate) {
    auto h = hookOf(job("j", {{"helm.sh/hook", "pre-upgrade"},
                              {"helm.sh/hook-delete-policy", "before-hook-creation"}}));
    ASSERT_TRUE(h);
    EXPECT_TRUE(h->deleteBeforeCreation);
    EXPECT_FALSE(h->deleteOnSuccess);
    EXPECT_FALSE(h->deleteOnFailure);

    h = hookOf(job(
        "j", {{"helm.sh/hook", "post-install"}, {"helm.sh/hook-delete-policy", "hook-failed"}}));
    ASSERT_TRUE(h);
    EXPECT_TRUE(h->deleteOnFailure);
    EXPECT_FALSE(h->deleteOnSuccess);
    EXPECT_FALSE(h->deleteBeforeCreation) << "no default once a policy is given";

    h = hookOf(job("j", {{"helm.sh/hook", "pre-install"},
                         {"helm.sh/hook-delete-policy", "before-hook-creation, hook-failed"}}));
    ASSERT_TRUE(h);
    EXPECT_TRUE(h->deleteBeforeCreation);
    EXPECT_TRUE(h->deleteOnFailure);
    EXPECT_FALSE(h->deleteOnSuccess);

    // Argo CD's policy annotation wins over Helm's.
    h = hookOf(job("j", {{"helm.sh/hook", "pre-install"},
                         {"helm.sh/hook-delete-policy", "hook-failed"},
                         {"argocd.argoproj.io/hook-delete-policy", "HookSucceeded"}}));
    ASSERT_TRUE(h);
    EXPECT_TRUE(h->deleteOnSuccess);
    EXPECT_FALSE(h->deleteOnFailure);
}

TEST(Hooks, ErrorsNameTheAnnotation) {
    std::string error;
    EXPECT_FALSE(hookOf(job("j", {{"argocd.argoproj.io/hook", "PreSink"}}), &error));
    EXPECT_THAT(error, HasSubstr("argocd.argoproj.io/hook: unknown hook type \"PreSink\""));
    error.clear();
    EXPECT_FALSE(hookOf(job("j", {{"argocd.argoproj.io/hook", "PostSync"},
                                  {"argocd.argoproj.io/hook-delete-policy", "Always"}}),
                        &error));
    EXPECT_THAT(error, HasSubstr("unknown hook delete policy \"Always\""));
    error.clear();
    EXPECT_FALSE(
        hookOf(job("j", {{"helm.sh/hook", "pre-install"}, {"helm.sh/hook-weight", "x"}}), &error));
    EXPECT_THAT(error, HasSubstr("helm.sh/hook-weight"));
}

TEST(Hooks, GenerateNameGetsASuffixPerSyncAndPhase) {
    json j = job("");
    j["metadata"].erase("name");
    j["metadata"]["generateName"] = "smoke-";
    const std::string a =
        hookObjectName(j, syncIdOf("app", "2026-12-07T08:00:00Z", 0), HookType::PostSync);
    const std::string b =
        hookObjectName(j, syncIdOf("app", "2026-12-07T09:00:00Z", 0), HookType::PostSync);
    EXPECT_EQ(a.rfind("smoke-", 0), 0u);
    EXPECT_THAT(a, ::testing::EndsWith("-postsync"));
    EXPECT_NE(a, b);
    EXPECT_EQ(a, hookObjectName(j, syncIdOf("app", "2026-12-07T08:00:00Z", 0), HookType::PostSync))
        << "the same sync names it the same (a restarted sync finds its hook)";
    j["metadata"]["generateName"] = std::string(80, 'x');
    EXPECT_LE(hookObjectName(j, "abc", HookType::PreSync).size(), 63u);
    EXPECT_EQ(hookObjectName(job("fixed"), "abc", HookType::PreSync), "fixed");
}

ScopeLookup scopes() {
    return [](const std::string&, const std::string& kind) -> std::optional<bool> {
        return kind != "Namespace";
    };
}

TEST(Hooks, PrepareAcceptsGenerateNameOnlyForHooks) {
    json hook = job("");
    hook["metadata"].erase("name");
    hook["metadata"]["generateName"] = "smoke-";
    hook["metadata"]["annotations"] = {{"argocd.argoproj.io/hook", "PostSync"}};
    json plain = configMap("");
    plain["metadata"].erase("name");
    plain["metadata"]["generateName"] = "cm-";
    auto p = prepareDesired({hook, plain}, {"a.yaml:1", "b.yaml:1"}, "prod", "app", scopes());
    ASSERT_EQ(p.errors.size(), 1u);
    EXPECT_THAT(p.errors[0], HasSubstr("metadata.name: required"));
    ASSERT_EQ(p.objects.size(), 1u);
    EXPECT_FALSE(p.objects[0]["metadata"]["annotations"].contains(kTrackingAnnotation))
        << "tracked once it has a name, when a sync creates it";
}

// Hooks are run by a sync, never compared nor pruned; Skip objects are left out entirely.
TEST(Hooks, CompareLeavesHooksOutAndNeverPrunesThem) {
    std::vector<json> desired = {configMap("settings"),
                                 job("migrate", {{"argocd.argoproj.io/hook", "PreSync"}}),
                                 configMap("manual", {{"argocd.argoproj.io/hook", "Skip"}})};
    auto prepared = prepareDesired(desired, {}, "prod", "app", scopes());
    ASSERT_THAT(prepared.errors, IsEmpty());
    // The hook Job is live, tracked, and (from an older sync) even in the inventory.
    json live = prepared.objects[1];
    live["metadata"]["resourceVersion"] = "5";
    auto liveJob = std::make_shared<const json>(live);
    CompareInput in;
    in.instance = "app";
    in.desired = std::make_shared<const std::vector<json>>(prepared.objects);
    in.live = [&](const ResourceKey& k) -> std::shared_ptr<const json> {
        if (k.kind == "Job") return liveJob;
        return nullptr;
    };
    in.inventory = {{"batch", "v1", "Job", "prod", "migrate"}};
    CompareResult c = compare(in);
    ASSERT_EQ(c.resources.size(), 1u);
    EXPECT_EQ(c.resources[0].key.name, "settings");
    ASSERT_EQ(c.hooks.size(), 1u);
    EXPECT_EQ(c.hooks[0].key.name, "migrate");
    EXPECT_FALSE(c.synced) << "settings is missing";

    // With settings live too, the app is Synced whatever the hook's state.
    json settings = prepared.objects[0];
    settings["metadata"]["resourceVersion"] = "6";
    auto liveSettings = std::make_shared<const json>(settings);
    in.live = [&](const ResourceKey& k) -> std::shared_ptr<const json> {
        return k.kind == "Job" ? liveJob : liveSettings;
    };
    EXPECT_TRUE(compare(in).synced);
}

TEST(Hooks, PlanPutsHooksInTheirPhasesByWave) {
    std::vector<json> desired = {
        configMap("settings"),
        configMap("late", {{"argocd.argoproj.io/sync-wave", "1"}}),
        job("migrate", {{"argocd.argoproj.io/hook", "PreSync"}}),
        job("seed",
            {{"argocd.argoproj.io/hook", "PreSync"}, {"argocd.argoproj.io/sync-wave", "-1"}}),
        job("during", {{"argocd.argoproj.io/hook", "Sync"}, {"argocd.argoproj.io/sync-wave", "1"}}),
        job("smoke", {{"argocd.argoproj.io/hook", "PostSync"}}),
        job("cleanup", {{"argocd.argoproj.io/hook", "SyncFail"}}),
        job("farewell", {{"argocd.argoproj.io/hook", "PostDelete"}})};
    auto prepared = prepareDesired(desired, {}, "prod", "app", scopes());
    ASSERT_THAT(prepared.errors, IsEmpty());
    CompareInput in;
    in.instance = "app";
    in.desired = std::make_shared<const std::vector<json>>(prepared.objects);
    CompareResult c = compare(in);
    SyncPlan plan = planSync(c, {});
    auto names = [&](const std::vector<std::size_t>& idx) {
        std::vector<std::string> out;
        for (auto i : idx) out.push_back(c.hooks[i].key.name);
        return out;
    };
    ASSERT_EQ(plan.preSync.size(), 2u);
    EXPECT_EQ(plan.preSync[0].wave, -1);
    EXPECT_THAT(names(plan.preSync[0].hooks), ElementsAre("seed"));
    EXPECT_THAT(names(plan.preSync[1].hooks), ElementsAre("migrate"));
    ASSERT_EQ(plan.waves.size(), 2u);
    EXPECT_THAT(names(plan.waves[0].hooks), IsEmpty());
    EXPECT_THAT(names(plan.waves[1].hooks), ElementsAre("during"));
    ASSERT_EQ(plan.postSync.size(), 1u);
    EXPECT_THAT(names(plan.postSync[0].hooks), ElementsAre("smoke"));
    ASSERT_EQ(plan.syncFail.size(), 1u);
    EXPECT_THAT(names(plan.syncFail[0].hooks), ElementsAre("cleanup"));
    EXPECT_EQ(plan.syncFail[0].phase, HookType::SyncFail);
    ASSERT_EQ(plan.postDelete.size(), 1u);
    EXPECT_THAT(names(plan.postDelete[0].hooks), ElementsAre("farewell"));
}

}  // namespace
}  // namespace sluice::appengine
