// KubeEventRecorder against the API server: Events as kubectl describe shows them, repeats
// aggregated into a count.
#include <gtest/gtest.h>

#include "harness.h"
#include "sluice/kube/events.h"

namespace sluice::apptest {
namespace {

class EventRecorderTest : public ControllerTest {};

TEST_F(EventRecorderTest, WritesEventsAndAggregatesRepeats) {
    json cm = server_->create({{"apiVersion", "v1"},
                               {"kind", "ConfigMap"},
                               {"metadata", {{"name", "subject"}, {"namespace", kDestNs}}}});
    kube::KubeEventRecorder recorder(*client_, "sluice-test");
    std::vector<json> seen;
    recorder.setSink([&](const json& e) { seen.push_back(e); });

    recorder.record(cm, kube::EventType::Warning, "Broken", "it broke");
    recorder.record(cm, kube::EventType::Warning, "Broken", "it broke");
    recorder.record(cm, kube::EventType::Normal, "Fixed", "it works");

    auto events = server_->list("v1", "Event", kDestNs);
    ASSERT_EQ(events.size(), 2u);
    std::map<std::string, json> byReason;
    for (auto& e : events) byReason[e.value("reason", "")] = e;
    const json& broken = byReason["Broken"];
    EXPECT_EQ(broken["count"], 2);
    EXPECT_EQ(broken["type"], "Warning");
    EXPECT_EQ(broken["message"], "it broke");
    EXPECT_EQ(broken["involvedObject"]["kind"], "ConfigMap");
    EXPECT_EQ(broken["involvedObject"]["name"], "subject");
    EXPECT_EQ(broken["involvedObject"]["uid"], cm["metadata"]["uid"]);
    EXPECT_EQ(broken["source"]["component"], "sluice-test");
    EXPECT_FALSE(broken.value("firstTimestamp", "").empty());
    EXPECT_EQ(byReason["Fixed"]["type"], "Normal");
    EXPECT_EQ(byReason["Fixed"]["count"], 1);
    ASSERT_EQ(seen.size(), 3u) << "the sink sees every record, repeats included";
    EXPECT_EQ(seen[1]["count"], 2);
}

TEST_F(EventRecorderTest, ClusterScopedObjectsGetEventsInTheDefaultNamespace) {
    json ns = *server_->get("v1", "Namespace", "", kDestNs);
    kube::KubeEventRecorder recorder(*client_, "sluice-test", kControlNs);
    recorder.record(ns, kube::EventType::Normal, "Seen", "namespace seen");
    auto events = server_->list("v1", "Event", kControlNs);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0]["involvedObject"]["kind"], "Namespace");
}

TEST_F(EventRecorderTest, FailuresAreSwallowed) {
    json ghost = {{"apiVersion", "v1"},
                  {"kind", "ConfigMap"},
                  {"metadata", {{"name", "ghost"}, {"namespace", "no-such-namespace"}}}};
    kube::KubeEventRecorder recorder(*client_, "sluice-test");
    EXPECT_NO_THROW(recorder.record(ghost, kube::EventType::Warning, "Lost", "nowhere to go"));
    // A repeat after a failed create must still reach the API (as a new Event).
    server_->create({{"apiVersion", "v1"},
                     {"kind", "Namespace"},
                     {"metadata", {{"name", "no-such-namespace"}}}});
    recorder.record(ghost, kube::EventType::Warning, "Lost", "nowhere to go");
    EXPECT_EQ(server_->list("v1", "Event", "no-such-namespace").size(), 1u);
}

}  // namespace
}  // namespace sluice::apptest
