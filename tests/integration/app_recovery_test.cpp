// A sync cut short: the inventory names every object before it is applied (write-ahead), and an
// operation left Running for an earlier revision ends when the controller comes back, with what
// it applied pruned if git no longer holds it.
#include "app_fixture.h"

namespace sluice::apptest {
namespace {

using AppRecovery = AppIntegration;

kube::PatchOptions statusOnly() {
    kube::PatchOptions o;
    o.subresource = "status";
    return o;
}

bool inventoryHas(const json& app, const std::string& name) {
    for (const auto& e : app.value("status", json::object()).value("inventory", json::array()))
        if (e.value("kind", "") == "ConfigMap" && e.value("name", "") == name) return true;
    return false;
}

TEST_F(AppRecovery, TheInventoryNamesEachObjectBeforeItIsApplied) {
    repo_->write("app/early.yaml",
                 configMapYaml("early", {{"k", "1"}}, {{"argocd.argoproj.io/sync-wave", "-1"}}));
    repo_->write("app/middle.yaml", configMapYaml("middle", {{"k", "1"}}));
    repo_->write("app/late.yaml",
                 configMapYaml("late", {{"k", "1"}}, {{"sluice.io/sync-wave", "1"}}));
    const std::string sha = repo_->commit("three waves");
    ChangeLog& cms = watchChanges(kConfigMap);
    ChangeLog& apps = watchChanges(kApplication, kControlNs);
    startController();
    createApp(application("ahead", repo_->url(), "app"));
    ASSERT_TRUE(waitSynced("ahead", sha)) << describe("ahead");
    for (const char* name : {"early", "middle", "late"}) {
        std::optional<ChangeLog::Entry> created;
        ASSERT_TRUE(eventually([&] { return (created = cms.created(name)).has_value(); }))
            << cms.dump();
        auto recorded = apps.first(
            "ahead", [&](const ChangeLog::Entry& e) { return inventoryHas(e.object, name); });
        ASSERT_TRUE(recorded) << name << " never in the inventory\n" << apps.dump();
        EXPECT_LT(recorded->rv, created->rv)
            << name << " was applied before the inventory named it\n"
            << apps.dump() << cms.dump();
    }
}

TEST_F(AppRecovery, AnOperationLeftRunningAtAnEarlierRevisionEndsAndItsObjectsArePruned) {
    repo_->write("app/keep.yaml", configMapYaml("keep", {{"k", "1"}}));
    repo_->write("app/extra.yaml", configMapYaml("extra", {{"k", "1"}}));
    const std::string first = repo_->commit("keep + extra");
    startController();
    createApp(application("cut", repo_->url(), "app"));
    ASSERT_TRUE(waitSynced("cut", first)) << describe("cut");
    controller_.reset();  // the controller goes away...

    // ...in the middle of a sync to another revision (what SIGKILL leaves: the operation
    // Running, the inventory written ahead), and git moves on meanwhile.
    json status = appStatus("cut");
    status["operationState"]["phase"] = "Running";
    status["operationState"]["message"] = "syncing";
    status["operationState"].erase("finishedAt");
    status["operationState"]["syncResult"]["revision"] = std::string(40, 'a');
    user_->patch(kApplication, kControlNs, "cut", kube::PatchType::Merge,
                 json({{"status", status}}).dump(), statusOnly());
    repo_->remove("app/extra.yaml");
    const std::string second = repo_->commit("extra removed");

    startController();
    ASSERT_TRUE(waitSynced("cut", second)) << describe("cut");
    EXPECT_TRUE(eventually([&] { return !configMap("extra"); })) << describe("cut");
    EXPECT_TRUE(configMap("keep"));
    EXPECT_TRUE(hasEvent("cut", "SyncInterrupted", std::string(40, 'a'))) << describe("cut");
    EXPECT_EQ(appStatus("cut")["operationState"]["phase"], "Succeeded") << describe("cut");
}

}  // namespace
}  // namespace sluice::apptest
