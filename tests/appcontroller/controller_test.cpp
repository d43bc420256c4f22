// The Application controller against the in-process API server, with a fake git source.
#include <gtest/gtest.h>

#include <set>

#include "harness.h"
#include "sluice/app/tracking.h"

namespace sluice::apptest {
namespace {

TEST_F(ControllerTest, FirstSyncAppliesTrackedObjectsAndReportsStatus) {
    const std::string sha =
        git_.commit(kRepo, {{"guestbook/deploy.yaml", deploymentYaml("web", "nginx:1.25", 2)},
                            {"guestbook/config.yaml", configMapYaml("settings", "a")}});
    startController(defaultOptions());
    server_->create(application("guestbook", "guestbook", automated()));

    ASSERT_TRUE(eventually([&] {
        return statusAt("guestbook", "/sync/status") == "Synced" &&
               statusAt("guestbook", "/health/status") == "Healthy";
    })) << status("guestbook").dump(2);

    auto deploy = object("apps/v1", "Deployment", "web");
    ASSERT_TRUE(deploy);
    EXPECT_EQ(at(*deploy, "/metadata/annotations/sluice.io~1tracking-id"),
              "guestbook:apps/Deployment:demo/web");
    EXPECT_EQ(at(*deploy, "/spec/replicas"), "2");
    auto cm = object("v1", "ConfigMap", "settings");
    ASSERT_TRUE(cm);
    EXPECT_EQ(at(*cm, "/metadata/annotations/sluice.io~1tracking-id"),
              "guestbook:/ConfigMap:demo/settings");
    bool bySluice = false;
    for (const auto& mf : (*cm)["metadata"]["managedFields"])
        bySluice |= mf.value("manager", "") == "sluice" && mf.value("operation", "") == "Apply";
    EXPECT_TRUE(bySluice) << "server-side applied with field manager sluice";

    json st = status("guestbook");
    const json a = app("guestbook");
    EXPECT_EQ(st["sync"]["revision"], sha);
    EXPECT_EQ(st["sync"]["comparedTo"]["source"]["path"], "guestbook");
    EXPECT_EQ(st["sync"]["comparedTo"]["destination"]["namespace"], kDestNs);
    ASSERT_EQ(st["resources"].size(), 2u);
    for (const auto& r : st["resources"]) {
        EXPECT_EQ(r["status"], "Synced") << r.dump();
        EXPECT_EQ(r["health"]["status"], "Healthy") << r.dump();
    }
    EXPECT_EQ(st["operationState"]["phase"], "Succeeded");
    EXPECT_EQ(st["operationState"]["message"], "successfully synced (all tasks run)");
    EXPECT_EQ(st["operationState"]["syncResult"]["revision"], sha);
    EXPECT_EQ(st["operationState"]["syncResult"]["resources"].size(), 2u);
    EXPECT_EQ(st["operationState"]["operation"]["initiatedBy"]["automated"], true);
    EXPECT_FALSE(at(st, "/operationState/startedAt").empty());
    EXPECT_FALSE(at(st, "/operationState/finishedAt").empty());
    ASSERT_EQ(st["history"].size(), 1u);
    EXPECT_EQ(st["history"][0]["id"], 0);
    EXPECT_EQ(st["history"][0]["revision"], sha);
    EXPECT_EQ(st["inventory"].size(), 2u);
    EXPECT_FALSE(at(st, "/reconciledAt").empty());
    EXPECT_EQ(st["observedGeneration"], a["metadata"]["generation"]);
    EXPECT_FALSE(st.contains("conditions") && !st["conditions"].empty()) << st["conditions"];

    EXPECT_FALSE(eventsFor("SyncStarted").empty());
    ASSERT_FALSE(eventsFor("SyncSucceeded").empty());
    EXPECT_EQ(eventsFor("SyncSucceeded")[0]["involvedObject"]["name"], "guestbook");
    EXPECT_GE(controller_->stats().syncs, 1u);
}

}  // namespace
}  // namespace sluice::apptest
