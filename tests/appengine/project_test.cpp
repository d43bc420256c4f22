#include "sluice/appengine/project.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::appengine {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using namespace std::chrono;

Project project(const json& spec) {
    ProjectParse parsed = parseProject({{"metadata", {{"name", "team-a"}}}, {"spec", spec}});
    EXPECT_THAT(parsed.errors, IsEmpty());
    return parsed.project;
}

const AppDestination kDemo = resolveDestination("https://kubernetes.default.svc", "", "demo");

system_clock::time_point utc(int y, unsigned mo, unsigned d, int h, int mi) {
    return sys_days{year{y} / mo / d} + hours(h) + minutes(mi);
}

TEST(GlobTest, Wildcards) {
    EXPECT_TRUE(globMatch("*", ""));
    EXPECT_TRUE(globMatch("https://github.com/org/*", "https://github.com/org/a/b"));
    EXPECT_FALSE(globMatch("https://github.com/org/*", "https://github.com/other/a"));
    EXPECT_TRUE(globMatch("team-?", "team-a"));
    EXPECT_FALSE(globMatch("team-?", "team-ab"));
    EXPECT_TRUE(globMatch("team-[a-c]", "team-b"));
    EXPECT_FALSE(globMatch("team-[!a-c]", "team-b"));
    EXPECT_TRUE(globMatch("{prod,staging}-*", "staging-eu"));
    EXPECT_FALSE(globMatch("{prod,staging}-*", "dev-eu"));
    EXPECT_TRUE(globMatch("a\\*", "a*"));
    EXPECT_FALSE(globMatch("a\\*", "ab"));
}

TEST(ProjectTest, SourceReposWithNegation) {
    Project p = project({{"sourceRepos", {"https://github.com/org/*"}}});
    EXPECT_TRUE(isSourcePermitted(p, "https://github.com/org/apps.git"));
    EXPECT_TRUE(isSourcePermitted(p, "https://GitHub.com/org/apps/"));
    EXPECT_FALSE(isSourcePermitted(p, "https://gitlab.com/org/apps"));
    p = project({{"sourceRepos", {"!https://github.com/org/secret", "*"}}});
    EXPECT_TRUE(isSourcePermitted(p, "https://github.com/org/apps"));
    EXPECT_FALSE(isSourcePermitted(p, "https://github.com/org/secret.git"));
    EXPECT_FALSE(isSourcePermitted(project({{"sourceRepos", json::array()}}), "https://x/y"));
    EXPECT_EQ(sourceNotPermitted(p, "https://x/y"),
              "application repo https://x/y is not permitted in project 'team-a'");
}

TEST(ProjectTest, DestinationsWithNegation) {
    Project p =
        project({{"destinations",
                  {{{"server", "https://kubernetes.default.svc"}, {"namespace", "team-a-*"}},
                   {{"name", "in-cluster"}, {"namespace", "demo"}}}}});
    EXPECT_TRUE(isDestinationPermitted(p, kDemo));
    EXPECT_TRUE(isDestinationPermitted(p, resolveDestination("", "in-cluster", "team-a-x")));
    EXPECT_FALSE(isDestinationPermitted(p, resolveDestination("", "in-cluster", "kube-system")));
    p = project(
        {{"destinations",
          {{{"server", "*"}, {"namespace", "!kube-*"}}, {{"server", "*"}, {"namespace", "*"}}}}});
    EXPECT_TRUE(isDestinationPermitted(p, kDemo));
    EXPECT_FALSE(isDestinationPermitted(p, resolveDestination("", "in-cluster", "kube-system")));
    EXPECT_EQ(destinationNotPermitted(p, kDemo),
              "application destination server 'https://kubernetes.default.svc' and namespace "
              "'demo' do not match any of the allowed destinations in project 'team-a'");
    // Only clusters of the project, and the local one is none.
    p = project({{"destinations", {{{"server", "*"}, {"namespace", "*"}}}},
                 {"permitOnlyProjectScopedClusters", true}});
    EXPECT_FALSE(isDestinationPermitted(p, kDemo));
}

TEST(ProjectTest, ResourceListsInArgoOrder) {
    Project p = project(json::object());
    EXPECT_FALSE(isGroupKindPermitted(p, "", "Namespace", false));     // none cluster-wide
    EXPECT_TRUE(isGroupKindPermitted(p, "apps", "Deployment", true));  // every namespaced
    p = project({{"clusterResourceWhitelist", {{{"group", ""}, {"kind", "Namespace"}}}},
                 {"clusterResourceBlacklist", {{{"group", "*"}, {"kind", "Namespace"}}}},
                 {"namespaceResourceWhitelist", {{{"group", "apps"}, {"kind", "*"}}}},
                 {"namespaceResourceBlacklist", {{{"group", "apps"}, {"kind", "DaemonSet"}}}}});
    EXPECT_FALSE(isGroupKindPermitted(p, "", "Namespace", false));  // the blacklist wins
    EXPECT_TRUE(isGroupKindPermitted(p, "apps", "Deployment", true));
    EXPECT_FALSE(isGroupKindPermitted(p, "apps", "DaemonSet", true));
    EXPECT_FALSE(isGroupKindPermitted(p, "", "ConfigMap", true));
    p = project({{"namespaceResourceWhitelist", json::array()}});  // [] allows none
    EXPECT_FALSE(isGroupKindPermitted(p, "", "ConfigMap", true));
}

TEST(ProjectTest, ResourceViolationsNameTheRule) {
    Project p = project({{"destinations", {{{"server", "*"}, {"namespace", "demo"}}}},
                         {"namespaceResourceBlacklist", {{{"group", ""}, {"kind", "Secret"}}}}});
    std::vector<json> objs = {{{"apiVersion", "v1"},
                               {"kind", "ConfigMap"},
                               {"metadata", {{"name", "a"}, {"namespace", "demo"}}}},
                              {{"apiVersion", "v1"},
                               {"kind", "Secret"},
                               {"metadata", {{"name", "s"}, {"namespace", "demo"}}}},
                              {{"apiVersion", "v1"},
                               {"kind", "Secret"},
                               {"metadata", {{"name", "t"}, {"namespace", "demo"}}}},
                              {{"apiVersion", "rbac.authorization.k8s.io/v1"},
                               {"kind", "ClusterRole"},
                               {"metadata", {{"name", "r"}}}},
                              {{"apiVersion", "v1"},
                               {"kind", "ConfigMap"},
                               {"metadata", {{"name", "b"}, {"namespace", "other"}}}}};
    EXPECT_THAT(resourceViolations(p, objs, kDemo),
                ElementsAre("resource :Secret is not permitted in project team-a "
                            "(namespaceResourceWhitelist/Blacklist)",
                            "resource rbac.authorization.k8s.io:ClusterRole is not permitted in "
                            "project team-a (clusterResourceWhitelist/Blacklist)",
                            "namespace other is not permitted in project 'team-a' "
                            "(spec.destinations)"));
    EXPECT_THAT(resourceViolations(builtInDefaultProject(), objs, kDemo), IsEmpty());
}

TEST(ProjectTest, SpecViolationsAndSourceNamespaces) {
    Project p = project({{"sourceRepos", {"https://git.example.com/*"}},
                         {"destinations", {{{"server", "*"}, {"namespace", "demo"}}}},
                         {"sourceNamespaces", {"team-*"}}});
    EXPECT_THAT(specViolations(p, "sluice", "sluice", {"https://git.example.com/a"}, kDemo),
                IsEmpty());
    EXPECT_THAT(specViolations(p, "team-a", "sluice", {"https://git.example.com/a"}, kDemo),
                IsEmpty());
    auto v = specViolations(p, "other", "sluice", {"https://evil.example.com/a"},
                            resolveDestination("", "in-cluster", "prod"));
    ASSERT_EQ(v.size(), 3u);
    EXPECT_THAT(v[0], HasSubstr("application namespace 'other' is not permitted"));
    EXPECT_THAT(v[1], HasSubstr("application repo https://evil.example.com/a is not permitted"));
    EXPECT_THAT(v[2], HasSubstr("namespace 'prod' do not match any of the allowed destinations"));
    EXPECT_THAT(specViolations(builtInDefaultProject(), "other", "sluice", {"x"}, kDemo),
                IsEmpty());
    EXPECT_EQ(missingProject("team-b"),
              "Application referencing project team-b which does not exist");
}

TEST(ProjectTest, FieldsWithoutEffect) {
    json ap = {{"spec", {{"roles", {{{"name", "ci"}}}}, {"orphanedResources", {{"warn", false}}}}}};
    EXPECT_THAT(unimplementedProjectFieldsIn(ap), ElementsAre("spec.roles"));
    // orphanedResources has an effect (OrphanedResourceWarning) and is not reported.
    ap["spec"]["orphanedResources"]["warn"] = true;
    ap["spec"]["orphanedResources"]["ignore"] = {{{"kind", "ConfigMap"}}};
    EXPECT_THAT(unimplementedProjectFieldsIn(ap), ElementsAre("spec.roles"));
    // destinationServiceAccounts has an effect (impersonation) and is not reported.
    ap["spec"]["destinationServiceAccounts"] = {
        {{"server", "*"}, {"namespace", "*"}, {"defaultServiceAccount", "sa"}}};
    EXPECT_THAT(unimplementedProjectFieldsIn(ap), ElementsAre("spec.roles"));
    ap["spec"]["signatureKeys"] = {{{"keyID", "ABCDEF"}}};
    EXPECT_THAT(unimplementedProjectFieldsIn(ap), ElementsAre("spec.roles", "spec.signatureKeys"));
}

TEST(ProjectTest, ServiceAccountToImpersonateFirstMatchWins) {
    const std::string local = "https://kubernetes.default.svc";
    Project p = project(
        {{"destinationServiceAccounts",
          {{{"server", local}, {"namespace", "!kube-*"}, {"defaultServiceAccount", "deployer"}},
           {{"server", "https://*.example.com"},
            {"namespace", "team-?"},
            {"defaultServiceAccount", "ops:syncer"}},
           {{"server", "*"}, {"namespace", "*"}, {"defaultServiceAccount", "fallback"}}}}});
    ASSERT_EQ(p.destinationServiceAccounts.size(), 3u);
    EXPECT_EQ(p.destinationServiceAccounts[1].namespace_, "team-?");
    auto r = serviceAccountToImpersonate(p, local, local, "demo", "argocd");
    EXPECT_EQ(r.user, "system:serviceaccount:demo:deployer");
    EXPECT_EQ(r.error, "");
    // The first item denies kube-*: the catch-all matches.
    EXPECT_EQ(serviceAccountToImpersonate(p, local, local, "kube-system", "argocd").user,
              "system:serviceaccount:kube-system:fallback");
    // namespace:name names the account's namespace itself.
    EXPECT_EQ(serviceAccountToImpersonate(p, "https://a.example.com", "", "team-b", "argocd").user,
              "system:serviceaccount:ops:syncer");
    // No destination namespace: the Application's namespace holds the account.
    EXPECT_EQ(serviceAccountToImpersonate(p, "https://other", "https://other", "", "apps").user,
              "system:serviceaccount:apps:fallback");
}

TEST(ProjectTest, ServiceAccountToImpersonateErrorsAsArgoCD) {
    // No destinationServiceAccounts: the controller's own identity.
    auto none =
        serviceAccountToImpersonate(project({}), "https://x", "https://x", "demo", "argocd");
    EXPECT_EQ(none.user, "");
    EXPECT_EQ(none.error, "");
    Project p = project({{"destinationServiceAccounts",
                          {{{"server", "https://kubernetes.default.svc"},
                            {"namespace", "demo"},
                            {"defaultServiceAccount", "deployer"}}}}});
    auto miss = serviceAccountToImpersonate(p, "https://kubernetes.default.svc",
                                            "https://kubernetes.default.svc", "other", "argocd");
    EXPECT_EQ(miss.user, "");
    EXPECT_EQ(miss.error,
              "no matching service account found for destination server "
              "https://kubernetes.default.svc and namespace other");
    Project bad =
        project({{"destinationServiceAccounts",
                  {{{"server", "*"}, {"namespace", "*"}, {"defaultServiceAccount", "sa*"}}}}});
    EXPECT_EQ(serviceAccountToImpersonate(bad, "https://x", "https://x", "demo", "argocd").error,
              "default service account contains invalid chars 'sa*'");
    bad.destinationServiceAccounts[0].defaultServiceAccount = "  ";
    EXPECT_THAT(serviceAccountToImpersonate(bad, "https://x", "https://x", "demo", "argocd").error,
                HasSubstr("invalid chars"));
}

TEST(CronTest, ParsesFieldsAndRejectsNonsense) {
    std::string error;
    auto c = CronSchedule::parse("*/15 9-17 * * MON-FRI", error);
    ASSERT_TRUE(c) << error;
    EXPECT_TRUE(c->matches(30, 9, 7, 12, 1));
    EXPECT_FALSE(c->matches(31, 9, 7, 12, 1));
    EXPECT_FALSE(c->matches(30, 18, 7, 12, 1));
    EXPECT_FALSE(c->matches(30, 9, 6, 12, 0));       // Sunday
    c = CronSchedule::parse("0 0 1,15 * 7", error);  // day of month OR Sunday
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->matches(0, 0, 15, 3, 3));
    EXPECT_TRUE(c->matches(0, 0, 6, 3, 0));
    EXPECT_FALSE(c->matches(0, 0, 7, 3, 1));
    c = CronSchedule::parse("@daily", error);
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->matches(0, 0, 9, 2, 4));
    for (const char* bad : {"", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
                            "5-1 * * * *", "*/0 * * * *", "x * * * *"}) {
        EXPECT_FALSE(CronSchedule::parse(bad, error)) << bad;
        EXPECT_FALSE(error.empty());
    }
}

TEST(CronTest, GoDurations) {
    EXPECT_EQ(parseGoDuration("1h"), hours(1));
    EXPECT_EQ(parseGoDuration("1h30m"), minutes(90));
    EXPECT_EQ(parseGoDuration("1.5h"), minutes(90));
    EXPECT_EQ(parseGoDuration("45s"), seconds(45));
    EXPECT_FALSE(parseGoDuration("1d"));
    EXPECT_FALSE(parseGoDuration("h"));
    EXPECT_FALSE(parseGoDuration(""));
}

SyncWindow window(const std::string& kind, const std::string& schedule, const std::string& duration,
                  const std::string& tz = "", bool manual = false) {
    json w = {{"kind", kind},
              {"schedule", schedule},
              {"duration", duration},
              {"applications", {"*"}},
              {"manualSync", manual}};
    if (!tz.empty()) w["timeZone"] = tz;
    ProjectParse p = parseProject({{"spec", {{"syncWindows", {w}}}}});
    EXPECT_THAT(p.errors, IsEmpty());
    return p.project.syncWindows.at(0);
}

TEST(SyncWindowTest, ActiveFromTheFireForTheDuration) {
    const SyncWindow w = window("deny", "0 22 * * *", "1h");
    EXPECT_FALSE(windowActive(w, utc(2026, 1, 5, 21, 59)));
    EXPECT_TRUE(windowActive(w, utc(2026, 1, 5, 22, 0)));
    EXPECT_TRUE(windowActive(w, utc(2026, 1, 5, 22, 59)));
    EXPECT_FALSE(windowActive(w, utc(2026, 1, 5, 23, 0)));
    // Across midnight and from a weekday rule days back.
    EXPECT_TRUE(windowActive(window("allow", "30 23 * * *", "2h"), utc(2026, 1, 6, 1, 0)));
    EXPECT_TRUE(windowActive(window("allow", "0 8 * * MON", "72h"), utc(2026, 1, 7, 12, 0)));
    EXPECT_FALSE(windowActive(window("allow", "0 8 * * MON", "72h"), utc(2026, 1, 9, 12, 0)));
}

TEST(SyncWindowTest, TimeZonesWithDaylightSaving) {
    // 22:00 in Berlin: 21:00 UTC in winter, 20:00 UTC in summer.
    const SyncWindow w = window("deny", "0 22 * * *", "1h", "Europe/Berlin");
    EXPECT_TRUE(windowActive(w, utc(2026, 1, 5, 21, 30)));
    EXPECT_FALSE(windowActive(w, utc(2026, 1, 5, 22, 30)));
    EXPECT_TRUE(windowActive(w, utc(2026, 7, 5, 20, 30)));
    EXPECT_FALSE(windowActive(w, utc(2026, 7, 5, 21, 30)));
    const SyncWindow ny = window("deny", "0 9 * * *", "1h", "America/New_York");
    EXPECT_TRUE(windowActive(ny, utc(2026, 1, 5, 14, 10)));
    EXPECT_TRUE(windowActive(ny, utc(2026, 7, 5, 13, 10)));
    std::string error;
    EXPECT_FALSE(TimeZone::load("Mars/Olympus", error));
    EXPECT_THAT(error, HasSubstr("unknown time zone"));
    EXPECT_FALSE(TimeZone::load("../../etc/passwd", error));
    ProjectParse bad = parseProject({{"spec",
                                      {{"syncWindows",
                                        {{{"kind", "later"},
                                          {"schedule", "* *"},
                                          {"duration", "x"},
                                          {"timeZone", "Nowhere/City"}}}}}}});
    EXPECT_EQ(bad.errors.size(), 4u);
}

TEST(SyncWindowTest, DenyOverridesAllowAndManualSync) {
    Project p;
    const auto at2230 = utc(2026, 1, 5, 22, 30), at1200 = utc(2026, 1, 5, 12, 0);
    // No windows: everything allowed.
    SyncWindowVerdict v = evaluateSyncWindows(p, "app", kDemo, at2230);
    EXPECT_TRUE(v.automatedAllowed && v.manualAllowed && !v.hasWindows);
    // An allow window outside its time blocks, manual syncs pass with its manualSync.
    p.syncWindows = {window("allow", "0 22 * * *", "1h", "", true)};
    v = evaluateSyncWindows(p, "app", kDemo, at1200);
    EXPECT_FALSE(v.automatedAllowed);
    EXPECT_TRUE(v.manualAllowed);
    EXPECT_EQ(v.reason, "no allow window is active");
    v = evaluateSyncWindows(p, "app", kDemo, at2230);
    EXPECT_TRUE(v.automatedAllowed);
    EXPECT_THAT(v.active, ElementsAre("allow 0 22 * * * (1h)"));
    // An overlapping deny window wins; manual only when every active deny allows it.
    p.syncWindows.push_back(window("deny", "0 22 * * *", "2h", "", true));
    p.syncWindows.push_back(window("deny", "15 22 * * *", "1h"));
    v = evaluateSyncWindows(p, "app", kDemo, at2230);
    EXPECT_FALSE(v.automatedAllowed);
    EXPECT_FALSE(v.manualAllowed);
    EXPECT_EQ(v.reason, "an active deny window");
    v = evaluateSyncWindows(p, "app", kDemo, utc(2026, 1, 5, 23, 20));
    EXPECT_FALSE(v.automatedAllowed);
    EXPECT_TRUE(v.manualAllowed);
}

TEST(SyncWindowTest, MatchesApplicationsNamespacesClusters) {
    Project p;
    p.syncWindows = {window("deny", "* * * * *", "1h")};
    p.syncWindows[0].applications = {"prod-*"};
    const auto now = utc(2026, 1, 5, 12, 0);
    EXPECT_TRUE(evaluateSyncWindows(p, "dev-a", kDemo, now).automatedAllowed);
    EXPECT_FALSE(evaluateSyncWindows(p, "prod-a", kDemo, now).automatedAllowed);
    p.syncWindows[0].namespaces = {"demo"};
    EXPECT_FALSE(evaluateSyncWindows(p, "dev-a", kDemo, now).automatedAllowed);  // OR-ed
    p.syncWindows[0].andOperator = true;
    EXPECT_TRUE(evaluateSyncWindows(p, "dev-a", kDemo, now).automatedAllowed);
    p.syncWindows[0] = window("deny", "* * * * *", "1h");
    p.syncWindows[0].applications.clear();
    p.syncWindows[0].clusters = {"in-cluster"};
    EXPECT_FALSE(evaluateSyncWindows(p, "dev-a", kDemo, now).automatedAllowed);
}

}  // namespace
}  // namespace sluice::appengine
