// AppProject spec.orphanedResources: parsing, Argo CD's default exclusions and ignore globs, and
// which live objects of a namespace are orphans.
#include "sluice/appengine/orphans.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/appengine/tracking.h"

namespace sluice::appengine {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::shared_ptr<const json> obj(const std::string& apiVersion, const std::string& kind,
                                const std::string& ns, const std::string& name) {
    return std::make_shared<const json>(json{{"apiVersion", apiVersion},
                                             {"kind", kind},
                                             {"metadata", {{"namespace", ns}, {"name", name}}}});
}

std::shared_ptr<const json> tracked(std::shared_ptr<const json> o, const std::string& instance) {
    json copy = *o;
    copy["metadata"]["annotations"][kTrackingAnnotation] = trackingIdFor(instance, copy).str();
    return std::make_shared<const json>(std::move(copy));
}

std::vector<std::string> names(const std::vector<ResourceKey>& keys) {
    std::vector<std::string> out;
    for (const auto& k : keys) out.push_back(k.kind + "/" + k.name);
    return out;
}

TEST(OrphansTest, ParseSettings) {
    EXPECT_FALSE(parseOrphanedResources(json{{"spec", json::object()}}));
    EXPECT_FALSE(parseOrphanedResources(json{{"spec", {{"orphanedResources", nullptr}}}}));
    auto on = parseOrphanedResources(json{{"spec", {{"orphanedResources", json::object()}}}});
    ASSERT_TRUE(on);
    EXPECT_FALSE(on->warn);  // monitoring on, no condition (Argo CD 2.x: warn must be true)
    EXPECT_THAT(on->ignore, IsEmpty());
    auto warn = parseOrphanedResources(
        json{{"spec",
              {{"orphanedResources",
                {{"warn", true},
                 {"ignore",
                  {{{"group", "apps"}, {"kind", "Deployment"}, {"name", "legacy-*"}},
                   {{"kind", "Secret"}}}}}}}}});
    ASSERT_TRUE(warn);
    EXPECT_TRUE(warn->warn);
    ASSERT_EQ(warn->ignore.size(), 2u);
    EXPECT_EQ(warn->ignore[0].group, "apps");
    EXPECT_EQ(warn->ignore[0].name, "legacy-*");
    EXPECT_EQ(warn->ignore[1].group, "");
    EXPECT_EQ(warn->ignore[1].name, "");
}

TEST(OrphansTest, DefaultExclusionsAndIgnoreGlobs) {
    OrphanedResourcesSettings s;
    EXPECT_TRUE(isKnownOrphanExclusion({"", "ServiceAccount", "x", "default"}, s));
    EXPECT_FALSE(isKnownOrphanExclusion({"", "ServiceAccount", "x", "builder"}, s));
    EXPECT_TRUE(isKnownOrphanExclusion({"", "ConfigMap", "x", "kube-root-ca.crt"}, s));
    EXPECT_TRUE(isKnownOrphanExclusion({"", "Service", "default", "kubernetes"}, s));
    EXPECT_FALSE(isKnownOrphanExclusion({"", "Service", "x", "kubernetes"}, s));
    EXPECT_FALSE(isKnownOrphanExclusion({"other.io", "ConfigMap", "x", "kube-root-ca.crt"}, s));
    s.ignore = {{"apps", "Deployment", "legacy-*"}, {"", "", "debug"}, {"*", "Secret", ""}};
    EXPECT_TRUE(isKnownOrphanExclusion({"apps", "Deployment", "x", "legacy-1"}, s));
    EXPECT_FALSE(isKnownOrphanExclusion({"apps", "Deployment", "x", "web"}, s));
    EXPECT_FALSE(isKnownOrphanExclusion({"", "Deployment", "x", "legacy-1"}, s));  // group ""
    EXPECT_TRUE(isKnownOrphanExclusion({"", "ConfigMap", "x", "debug"}, s));       // any kind
    EXPECT_FALSE(isKnownOrphanExclusion({"apps", "ConfigMap", "x", "debug"}, s));
    EXPECT_TRUE(isKnownOrphanExclusion({"", "Secret", "x", "anything"}, s));
    EXPECT_TRUE(isKnownOrphanExclusion({"batch", "Secret", "x", "anything"}, s));
}

TEST(OrphansTest, FindsUntrackedTopLevelObjectsOfTheNamespace) {
    OrphanInput in;
    in.ns = "demo";
    json owned = *obj("apps/v1", "ReplicaSet", "demo", "web-123");
    owned["metadata"]["ownerReferences"] = {{{"kind", "Deployment"}, {"name", "web"}}};
    in.live = {obj("v1", "ConfigMap", "demo", "hand-made"),
               tracked(obj("v1", "ConfigMap", "demo", "settings"), "app"),
               std::make_shared<const json>(owned),
               obj("v1", "ConfigMap", "other", "elsewhere"),
               obj("v1", "ServiceAccount", "demo", "default"),
               obj("v1", "ConfigMap", "demo", "kube-root-ca.crt"),
               obj("apps/v1", "Deployment", "demo", "manual"),
               obj("v1", "Secret", "demo", "desired-not-yet-tracked")};
    in.own = {{"", "Secret", "demo", "desired-not-yet-tracked"}};
    EXPECT_THAT(names(findOrphans(in)), ElementsAre("ConfigMap/hand-made", "Deployment/manual"));
    in.settings.ignore = {{"apps", "Deployment", "man*"}};
    EXPECT_THAT(names(findOrphans(in)), ElementsAre("ConfigMap/hand-made"));
    in.ns = "";
    EXPECT_THAT(findOrphans(in), IsEmpty());
}

TEST(OrphansTest, TrackedByAGoneApplicationOrCopiedTrackingIsAnOrphan) {
    OrphanInput in;
    in.ns = "demo";
    json copied = *tracked(obj("v1", "ConfigMap", "demo", "original"), "app");
    copied["metadata"]["name"] = "copy";  // the annotation names another object
    in.live = {tracked(obj("v1", "ConfigMap", "demo", "live-app"), "app"),
               tracked(obj("v1", "ConfigMap", "demo", "gone-app"), "gone"),
               std::make_shared<const json>(copied)};
    EXPECT_THAT(names(findOrphans(in)), ElementsAre("ConfigMap/copy"));
    in.applicationExists = [](const std::string& instance) { return instance == "app"; };
    EXPECT_THAT(names(findOrphans(in)), ElementsAre("ConfigMap/copy", "ConfigMap/gone-app"));
}

TEST(OrphansTest, KindsTheProjectDeniesAreNotOrphans) {
    Project p;
    p.namespaceBlacklist = {{"", "Secret"}};
    OrphanInput in;
    in.ns = "demo";
    in.project = &p;
    in.live = {obj("v1", "Secret", "demo", "token"), obj("v1", "ConfigMap", "demo", "cm")};
    EXPECT_THAT(names(findOrphans(in)), ElementsAre("ConfigMap/cm"));
    p.namespaceWhitelist = std::vector<GroupKind>{{"apps", "*"}};
    EXPECT_THAT(findOrphans(in), IsEmpty());
}

TEST(OrphansTest, Message) {
    EXPECT_EQ(orphanedResourcesMessage(1), "Application has 1 orphaned resources");
    EXPECT_EQ(orphanedResourcesMessage(3), "Application has 3 orphaned resources");
}

}  // namespace
}  // namespace sluice::appengine
