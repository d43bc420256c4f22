#include "sluice/appengine/tracking.h"

#include <gtest/gtest.h>

namespace sluice::appengine {
namespace {

using nlohmann::json;

json object(const std::string& apiVersion, const std::string& kind, const std::string& ns,
            const std::string& name, const json& annotations = json::object()) {
    json obj = {{"apiVersion", apiVersion}, {"kind", kind}, {"metadata", {{"name", name}}}};
    if (!ns.empty()) obj["metadata"]["namespace"] = ns;
    if (!annotations.empty()) obj["metadata"]["annotations"] = annotations;
    return obj;
}

TEST(Tracking, InstanceName) {
    EXPECT_EQ(instanceName("sluice", "web", "sluice"), "web");
    EXPECT_EQ(instanceName("team-a", "web", "sluice"), "team-a_web");
    EXPECT_EQ(instanceName("", "web", "sluice"), "web");
}

TEST(Tracking, IdRoundTrip) {
    TrackingId id{"web", "apps", "Deployment", "prod", "api"};
    EXPECT_EQ(id.str(), "web:apps/Deployment:prod/api");
    EXPECT_EQ(parseTrackingId(id.str()), id);

    TrackingId core{"team-a_web", "", "Namespace", "", "prod"};
    EXPECT_EQ(core.str(), "team-a_web:/Namespace:/prod");
    EXPECT_EQ(parseTrackingId(core.str()), core);
}

TEST(Tracking, MalformedIds) {
    for (const char* bad :
         {"", "web", "web:apps/Deployment", "web:apps/Deployment:prod/api:extra",
          "web:Deployment:prod/api", "web:apps/Deployment:api", "web:a/b/Deployment:prod/api",
          "web:apps/Deployment:prod/a/b", ":apps/Deployment:prod/api", "web:apps/:prod/api",
          "web:apps/Deployment:prod/"})
        EXPECT_FALSE(parseTrackingId(bad).has_value()) << bad;
}

TEST(Tracking, IdOfAndFor) {
    json obj = object("apps/v1", "Deployment", "prod", "api",
                      {{kTrackingAnnotation, "web:apps/Deployment:prod/api"}});
    EXPECT_EQ(trackingIdFor("web", obj), (TrackingId{"web", "apps", "Deployment", "prod", "api"}));
    EXPECT_EQ(trackingIdOf(obj), trackingIdFor("web", obj));
    EXPECT_TRUE(isTrackedBy(obj, "web"));
    EXPECT_FALSE(isTrackedBy(obj, "other"));

    EXPECT_FALSE(trackingIdOf(object("v1", "Service", "prod", "api")).has_value());
    EXPECT_FALSE(isTrackedBy(object("v1", "Service", "prod", "api"), "web"));
    EXPECT_FALSE(
        trackingIdOf(object("v1", "Service", "prod", "api", {{kTrackingAnnotation, "garbage"}})));
    // Argo CD's annotation is not Sluice's: objects Argo CD manages are not ours to prune.
    EXPECT_FALSE(isTrackedBy(object("v1", "Service", "prod", "api",
                                    {{"argocd.argoproj.io/tracking-id", "web:/Service:prod/api"}}),
                             "web"));
}

TEST(Tracking, CopiedAnnotationDoesNotCount) {
    // The id names another object (e.g. copied with kubectl get -o yaml | sed): not tracked.
    json copy = object("v1", "ConfigMap", "prod", "copy",
                       {{kTrackingAnnotation, "web:/ConfigMap:prod/original"}});
    EXPECT_FALSE(isTrackedBy(copy, "web"));
    json otherNs = object("v1", "ConfigMap", "staging", "original",
                          {{kTrackingAnnotation, "web:/ConfigMap:prod/original"}});
    EXPECT_FALSE(isTrackedBy(otherNs, "web"));
    json otherKind = object("v1", "Secret", "prod", "original",
                            {{kTrackingAnnotation, "web:/ConfigMap:prod/original"}});
    EXPECT_FALSE(isTrackedBy(otherKind, "web"));
}

TEST(Tracking, SyncWave) {
    EXPECT_EQ(syncWaveOf(object("v1", "ConfigMap", "a", "b")), 0);
    EXPECT_EQ(syncWaveOf(object("v1", "ConfigMap", "a", "b", {{kArgoSyncWaveAnnotation, "-2"}})),
              -2);
    EXPECT_EQ(syncWaveOf(object("v1", "ConfigMap", "a", "b",
                                {{kArgoSyncWaveAnnotation, "5"}, {kSyncWaveAnnotation, "3"}})),
              3);
    EXPECT_EQ(syncWaveOf(object("v1", "ConfigMap", "a", "b", {{kSyncWaveAnnotation, " +4 "}})), 4);
    std::string error;
    EXPECT_EQ(
        syncWaveOf(object("v1", "ConfigMap", "a", "b", {{kSyncWaveAnnotation, "1.5"}}), &error), 0);
    EXPECT_NE(error.find("sluice.io/sync-wave"), std::string::npos) << error;
    error.clear();
    EXPECT_EQ(
        syncWaveOf(object("v1", "ConfigMap", "a", "b", {{kArgoSyncWaveAnnotation, "x"}}), &error),
        0);
    EXPECT_NE(error.find("argocd.argoproj.io/sync-wave"), std::string::npos) << error;
    error.clear();
    syncWaveOf(object("v1", "ConfigMap", "a", "b", {{kSyncWaveAnnotation, "99999999999"}}), &error);
    EXPECT_FALSE(error.empty());
}

TEST(Tracking, ObjectSyncOptions) {
    ObjectSyncOptions none = objectSyncOptionsOf(object("v1", "ConfigMap", "a", "b"));
    EXPECT_FALSE(none.pruneDisabled);
    EXPECT_FALSE(none.deleteDisabled);
    EXPECT_FALSE(none.replace);

    ObjectSyncOptions o = objectSyncOptionsOf(
        object("v1", "ConfigMap", "a", "b",
               {{kArgoSyncOptionsAnnotation,
                 "Prune=false, Delete=false,Replace=true,Validate=false,"
                 "SkipDryRunOnMissingResource=true,PruneLast=true,Unknown=1"}}));
    EXPECT_TRUE(o.pruneDisabled);
    EXPECT_TRUE(o.deleteDisabled);
    EXPECT_TRUE(o.replace);
    EXPECT_TRUE(o.validateDisabled);
    EXPECT_TRUE(o.skipDryRunOnMissingResource);
    EXPECT_TRUE(o.pruneLast);

    // Sluice's annotation overrides Argo CD's for the same option.
    ObjectSyncOptions both = objectSyncOptionsOf(object(
        "v1", "ConfigMap", "a", "b",
        {{kArgoSyncOptionsAnnotation, "Prune=false"}, {kSyncOptionsAnnotation, "Prune=true"}}));
    EXPECT_FALSE(both.pruneDisabled);
    // Argo CD's "confirm" needs a human; Sluice never deletes such an object on its own.
    EXPECT_TRUE(objectSyncOptionsOf(object("v1", "ConfigMap", "a", "b",
                                           {{kSyncOptionsAnnotation, "Prune=confirm"}}))
                    .pruneDisabled);
}

TEST(Tracking, KindOrder) {
    EXPECT_EQ(kindOrder("", "Namespace"), 0);
    EXPECT_LT(kindOrder("", "Namespace"), kindOrder("networking.k8s.io", "NetworkPolicy"));
    EXPECT_LT(kindOrder("", "ServiceAccount"), kindOrder("", "Secret"));
    EXPECT_LT(kindOrder("", "Secret"), kindOrder("", "ConfigMap"));
    EXPECT_LT(kindOrder("", "PersistentVolumeClaim"),
              kindOrder("apiextensions.k8s.io", "CustomResourceDefinition"));
    EXPECT_LT(kindOrder("apiextensions.k8s.io", "CustomResourceDefinition"),
              kindOrder("rbac.authorization.k8s.io", "ClusterRole"));
    EXPECT_LT(kindOrder("rbac.authorization.k8s.io", "RoleBinding"), kindOrder("", "Service"));
    EXPECT_LT(kindOrder("", "Service"), kindOrder("apps", "Deployment"));
    EXPECT_LT(kindOrder("apps", "Deployment"), kindOrder("autoscaling", "HorizontalPodAutoscaler"));
    EXPECT_LT(kindOrder("batch", "Job"), kindOrder("networking.k8s.io", "Ingress"));
    EXPECT_LT(kindOrder("networking.k8s.io", "Ingress"),
              kindOrder("apiregistration.k8s.io", "APIService"));
    EXPECT_LT(kindOrder("apiregistration.k8s.io", "APIService"), kindOrder("sluice.io", "Canary"));
    EXPECT_EQ(kindOrder("sluice.io", "Canary"), kindOrder("example.com", "Widget"));
}

}  // namespace
}  // namespace sluice::appengine
