#include "sluice/appengine/spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "sluice/util/yaml_json.h"

namespace sluice::appengine {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

json minimalApp() {
    return json::parse(R"({
      "apiVersion": "sluice.io/v1alpha1", "kind": "Application",
      "metadata": {"name": "a", "namespace": "sluice"},
      "spec": {
        "source": {"repoURL": "https://example.com/repo.git"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"}
      }
    })");
}

// Parses an app whose spec has `patch` merged in and returns the errors.
std::vector<std::string> errorsWith(const json& patch) {
    json app = minimalApp();
    app["spec"].merge_patch(patch);
    return parseApplication(app).errors;
}

// True when exactly one error mentions `field` and contains `text`.
::testing::AssertionResult singleError(const std::vector<std::string>& errors,
                                       const std::string& prefix, const std::string& text) {
    if (errors.size() != 1) {
        std::string all;
        for (const auto& e : errors) all += "\n  " + e;
        return ::testing::AssertionFailure() << errors.size() << " errors:" << all;
    }
    if (errors[0].rfind(prefix + ":", 0) != 0 || errors[0].find(text) == std::string::npos)
        return ::testing::AssertionFailure() << "error was: " << errors[0];
    return ::testing::AssertionSuccess();
}

TEST(ParseApplication, SharedExample) {
    std::ifstream in(SLUICE_SOURCE_DIR "/tests/data/examples/application.yaml");
    ASSERT_TRUE(in.good());
    std::stringstream text;
    text << in.rdbuf();
    ParseResult r = parseApplication(yamlToJson(text.str()));
    EXPECT_TRUE(r.errors.empty()) << r.errors.front();
    EXPECT_EQ(r.spec.project, "blessed-horizon");
    EXPECT_EQ(r.spec.source.repoURL, "https://github.com/blessed-horizon/k8s-manifests");
    EXPECT_EQ(r.spec.source.targetRevision, "main");
    EXPECT_EQ(r.spec.source.path, "environments/production");
    EXPECT_FALSE(r.spec.source.recurse);
    EXPECT_EQ(r.spec.destination.server, kDefaultServer);
    EXPECT_EQ(r.spec.destination.namespace_, "blessed-horizon");
    const SyncPolicy& p = r.spec.syncPolicy;
    EXPECT_TRUE(p.automated);
    EXPECT_TRUE(p.prune);
    EXPECT_TRUE(p.selfHeal);
    EXPECT_FALSE(p.allowEmpty);
    EXPECT_TRUE(p.options.validate);
    EXPECT_TRUE(p.options.createNamespace);
    EXPECT_EQ(p.options.prunePropagationPolicy, "foreground");
    EXPECT_TRUE(p.options.pruneLast);
    EXPECT_FALSE(p.options.applyOutOfSyncOnly);
    EXPECT_THAT(p.rawOptions, ElementsAre("Validate=true", "CreateNamespace=true",
                                          "PrunePropagationPolicy=foreground", "PruneLast=true"));
    ASSERT_TRUE(p.retry.has_value());
    EXPECT_EQ(p.retry->limit, 5);
    EXPECT_EQ(p.retry->duration, 5s);
    EXPECT_EQ(p.retry->factor, 2);
    EXPECT_EQ(p.retry->maxDuration, 3min);
    EXPECT_EQ(r.spec.revisionHistoryLimit, 10);
    EXPECT_FALSE(r.operation.has_value());
}

TEST(ParseApplication, DefaultsOfAMinimalApp) {
    ParseResult r = parseApplication(minimalApp());
    ASSERT_TRUE(r.errors.empty()) << r.errors.front();
    EXPECT_EQ(r.spec.project, "default");
    EXPECT_EQ(r.spec.source.targetRevision, "");
    EXPECT_EQ(r.spec.source.path, "");
    EXPECT_FALSE(r.spec.syncPolicy.automated);
    EXPECT_FALSE(r.spec.syncPolicy.retry.has_value());
    EXPECT_TRUE(r.spec.syncPolicy.options.validate);
    EXPECT_TRUE(r.spec.syncPolicy.options.serverSideApply);
    EXPECT_FALSE(r.spec.syncPolicy.options.createNamespace);
    EXPECT_EQ(r.spec.syncPolicy.options.prunePropagationPolicy, "foreground");
    EXPECT_TRUE(r.spec.ignoreDifferences.empty());
    EXPECT_EQ(r.spec.revisionHistoryLimit, 10);
}

TEST(ParseApplication, NotAnObjectOrNoSpec) {
    EXPECT_FALSE(parseApplication(json::array()).errors.empty());
    EXPECT_THAT(parseApplication(json{{"metadata", json::object()}}).errors,
                ElementsAre("spec: required"));
    EXPECT_THAT(parseApplication(json{{"spec", "x"}}).errors,
                ElementsAre("spec: must be an object"));
}

TEST(ParseApplication, UnknownSpecFieldsAreErrors) {
    EXPECT_TRUE(
        singleError(errorsWith({{"sourec", json::object()}}), "spec.sourec", "unknown field"));
    EXPECT_TRUE(singleError(errorsWith({{"syncPolicy", {{"automatic", json::object()}}}}),
                            "spec.syncPolicy.automatic", "unknown field"));
    EXPECT_TRUE(singleError(errorsWith({{"syncPolicy", {{"automated", {{"purne", true}}}}}}),
                            "spec.syncPolicy.automated.purne", "unknown field"));
    EXPECT_TRUE(singleError(errorsWith({{"source", {{"paht", "x"}}}}), "spec.source.paht",
                            "unknown field"));
    EXPECT_TRUE(singleError(errorsWith({{"destination", {{"namepsace", "x"}}}}),
                            "spec.destination.namepsace", "unknown field"));
    EXPECT_TRUE(
        singleError(errorsWith({{"syncPolicy", {{"retry", {{"backoff", {{"durration", "5s"}}}}}}}}),
                    "spec.syncPolicy.retry.backoff.durration", "unknown field"));
}

TEST(ParseApplication, EveryProblemIsReported) {
    json app = minimalApp();
    app["spec"]["source"].erase("repoURL");
    app["spec"]["revisionHistoryLimit"] = -1;
    app["spec"]["syncPolicy"] = {{"syncOptions", {"Bogus=true"}}};
    auto errors = parseApplication(app).errors;
    ASSERT_EQ(errors.size(), 3u);
    EXPECT_THAT(errors, ::testing::Contains(HasSubstr("spec.source.repoURL: required")));
    EXPECT_THAT(errors, ::testing::Contains(HasSubstr("spec.revisionHistoryLimit")));
    EXPECT_THAT(errors, ::testing::Contains(HasSubstr("spec.syncPolicy.syncOptions[0]")));
}

TEST(ParseApplication, Source) {
    EXPECT_TRUE(singleError(errorsWith({{"source", {{"repoURL", ""}}}}), "spec.source.repoURL",
                            "required"));
    EXPECT_TRUE(singleError(errorsWith({{"source", {{"repoURL", 5}}}}), "spec.source.repoURL",
                            "must be a string"));
    EXPECT_TRUE(singleError(errorsWith({{"source", {{"targetRevision", true}}}}),
                            "spec.source.targetRevision", "must be a string"));
    EXPECT_TRUE(singleError(errorsWith({{"source", {{"path", "/etc"}}}}), "spec.source.path",
                            "relative path inside the repository"));
    EXPECT_TRUE(singleError(errorsWith({{"source", {{"path", "../other"}}}}), "spec.source.path",
                            "relative path"));
    EXPECT_TRUE(singleError(errorsWith({{"source", {{"path", "a/../../b"}}}}), "spec.source.path",
                            "relative path"));
    EXPECT_TRUE(errorsWith({{"source", {{"path", "a/../b"}}}}).empty());
    EXPECT_TRUE(errorsWith({{"source", {{"path", "."}}}}).empty());
    EXPECT_TRUE(singleError(errorsWith({{"source", {{"directory", {{"recurse", "yes"}}}}}}),
                            "spec.source.directory.recurse", "must be a boolean"));
    EXPECT_TRUE(
        singleError(errorsWith({{"source", {{"directory", {{"jsonnet", {{"libs", "x"}}}}}}}}),
                    "spec.source.directory.jsonnet.libs", "must be a list"));
    EXPECT_TRUE(singleError(errorsWith({{"source", "x"}}), "spec.source", "must be an object"));

    json app = minimalApp();
    app["spec"].erase("source");
    EXPECT_TRUE(singleError(parseApplication(app).errors, "spec.source", "required"));

    app = minimalApp();
    app["spec"]["source"]["targetRevision"] = "v1.2";
    app["spec"]["source"]["path"] = "deploy/prod";
    app["spec"]["source"]["directory"] = {{"recurse", true}};
    ParseResult r = parseApplication(app);
    ASSERT_TRUE(r.errors.empty());
    EXPECT_EQ(r.spec.source.targetRevision, "v1.2");
    EXPECT_EQ(r.spec.source.path, "deploy/prod");
    EXPECT_TRUE(r.spec.source.recurse);
}

TEST(ParseApplication, HelmKustomizeDirectoryAndPluginSources) {
    json app = minimalApp();
    app["spec"]["source"] = {
        {"repoURL", "https://example.com/charts"},
        {"path", "web"},
        {"helm",
         {{"valueFiles", {"values-prod.yaml", "$values/envs/prod.yaml"}},
          {"values", "a: 1\n"},
          {"valuesObject", {{"b", 2}}},
          {"parameters", {{{"name", "image.tag"}, {"value", "v2"}, {"forceString", true}}}},
          {"fileParameters", {{{"name", "cfg"}, {"path", "files/cfg.txt"}}}},
          {"releaseName", "rel"},
          {"skipCrds", true},
          {"ignoreMissingValueFiles", true},
          {"apiVersions", {"monitoring.coreos.com/v1"}}}}};
    ParseResult r = parseApplication(app);
    ASSERT_TRUE(r.errors.empty()) << r.errors.front();
    ASSERT_TRUE(r.spec.source.helm);
    const HelmSource& h = *r.spec.source.helm;
    EXPECT_EQ(h.valueFiles.size(), 2u);
    EXPECT_EQ(h.values, "a: 1\n");
    EXPECT_EQ(h.valuesObject["b"], 2);
    ASSERT_EQ(h.parameters.size(), 1u);
    EXPECT_TRUE(h.parameters[0].forceString);
    EXPECT_EQ(h.fileParameters[0].path, "files/cfg.txt");
    EXPECT_EQ(h.releaseName, "rel");
    EXPECT_TRUE(h.skipCrds && h.ignoreMissingValueFiles);
    EXPECT_EQ(r.spec.sources.size(), 1u);
    EXPECT_FALSE(r.spec.multiSource);

    EXPECT_TRUE(
        singleError(errorsWith({{"source", {{"helm", {{"valueFiles", {"../../etc/passwd"}}}}}}}),
                    "spec.source.helm.valueFiles", "inside the repository"));
    EXPECT_TRUE(singleError(errorsWith({{"source", {{"helm", {{"version", "v2"}}}}}}),
                            "spec.source.helm.version", "only v3"));
    EXPECT_TRUE(
        singleError(errorsWith({{"source", {{"helm", {{"parameters", {{{"value", "x"}}}}}}}}}),
                    "spec.source.helm.parameters[0].name", "required"));
    auto both = errorsWith({{"source", {{"helm", json::object()}, {"kustomize", json::object()}}}});
    ASSERT_EQ(both.size(), 1u);
    EXPECT_NE(both[0].find("at most one of"), std::string::npos);

    app["spec"]["source"] = {{"repoURL", "https://example.com/k"},
                             {"kustomize",
                              {{"namePrefix", "p-"},
                               {"images", {"nginx=registry/nginx:2"}},
                               {"commonLabels", {{"team", "a"}}},
                               {"replicas", {{{"name", "web"}, {"count", "3"}}}},
                               {"components", {"../components/x"}},
                               {"patches", {{{"patch", "[]"}}}}}}};
    r = parseApplication(app);
    ASSERT_TRUE(r.errors.empty()) << r.errors.front();
    ASSERT_TRUE(r.spec.source.kustomize);
    EXPECT_EQ(r.spec.source.kustomize->replicas[0].count, 3);
    EXPECT_TRUE(r.spec.source.kustomize->modifiesKustomization());
    EXPECT_TRUE(singleError(
        errorsWith(
            {{"source", {{"kustomize", {{"replicas", {{{"name", "w"}, {"count", "x"}}}}}}}}}),
        "spec.source.kustomize.replicas[0].count", "non-negative integer"));

    app["spec"]["source"] = {{"repoURL", "https://example.com/d"},
                             {"directory",
                              {{"include", "{a,b}.yaml"},
                               {"exclude", "*-secret.yaml"},
                               {"jsonnet",
                                {{"extVars", {{{"name", "env"}, {"value", "prod"}}}},
                                 {"tlas", {{{"name", "n"}, {"value", "3"}, {"code", true}}}},
                                 {"libs", {"vendor"}}}}}},
                             {"plugin", nullptr}};
    r = parseApplication(app);
    ASSERT_TRUE(r.errors.empty()) << r.errors.front();
    EXPECT_EQ(r.spec.source.include, "{a,b}.yaml");
    ASSERT_TRUE(r.spec.source.jsonnet);
    EXPECT_TRUE(r.spec.source.jsonnet->tlas[0].code);

    app["spec"]["source"] = {
        {"repoURL", "https://example.com/p"},
        {"plugin", {{"name", "cdk8s"}, {"env", {{{"name", "A"}, {"value", "b"}}}}}}};
    r = parseApplication(app);
    ASSERT_TRUE(r.errors.empty()) << r.errors.front();
    EXPECT_EQ(r.spec.source.plugin->name, "cdk8s");
}

TEST(ParseApplication, ChartsAndMultipleSources) {
    json app = minimalApp();
    app["spec"].erase("source");
    app["spec"]["sources"] =
        json::array({{{"repoURL", "https://charts.example.com"},
                      {"chart", "nginx"},
                      {"targetRevision", "^15.0.0"},
                      {"helm", {{"valueFiles", {"$values/nginx/prod.yaml"}}}}},
                     {{"repoURL", "https://example.com/values.git"}, {"ref", "values"}}});
    ParseResult r = parseApplication(app);
    ASSERT_TRUE(r.errors.empty()) << r.errors.front();
    EXPECT_TRUE(r.spec.multiSource);
    ASSERT_EQ(r.spec.sources.size(), 2u);
    EXPECT_TRUE(r.spec.sources[0].isHelmRepository());
    EXPECT_TRUE(r.spec.sources[0].rendersManifests());
    EXPECT_FALSE(r.spec.sources[1].rendersManifests());  // ref only
    EXPECT_EQ(r.spec.source.chart, "nginx");

    app["spec"]["sources"][1]["ref"] = "bad/ref";
    EXPECT_TRUE(singleError(parseApplication(app).errors, "spec.sources[1].ref", "plain name"));
    app["spec"]["sources"][1]["ref"] = "values";
    app["spec"]["sources"].push_back({{"repoURL", "https://example.com/x"}, {"ref", "values"}});
    EXPECT_TRUE(
        singleError(parseApplication(app).errors, "spec.sources[2].ref", "used by another source"));
    app["spec"]["sources"][0]["kustomize"] = json::object();
    auto errors = parseApplication(app).errors;
    EXPECT_FALSE(errors.empty());

    json op = minimalApp();
    op["operation"] = {{"sync", {{"revisions", {"abc", "1.2.3"}}}}};
    r = parseApplication(op);
    ASSERT_TRUE(r.errors.empty()) << r.errors.front();
    EXPECT_EQ(r.operation->revisions, (std::vector<std::string>{"abc", "1.2.3"}));
}

TEST(ParseApplication, Destination) {
    auto withDestination = [](const json& destination) {
        json app = minimalApp();
        app["spec"]["destination"] = destination;
        return parseApplication(app);
    };
    // Any cluster parses: whether it is known is the controller's to say (cluster Secrets).
    ParseResult remote = withDestination({{"server", "https://10.0.0.1:6443/"}});
    ASSERT_TRUE(remote.errors.empty()) << remote.errors.front();
    EXPECT_EQ(remote.spec.destination.server, "https://10.0.0.1:6443");
    ParseResult named = withDestination({{"name", "prod-cluster"}});
    ASSERT_TRUE(named.errors.empty()) << named.errors.front();
    EXPECT_EQ(named.spec.destination.name, "prod-cluster");
    EXPECT_TRUE(singleError(withDestination({{"namespace", "web"}}).errors, "spec.destination",
                            "server or name required"));
    EXPECT_TRUE(
        singleError(withDestination({{"name", "in-cluster"}, {"server", kDefaultServer}}).errors,
                    "spec.destination", "not both"));
    EXPECT_TRUE(
        singleError(withDestination({{"server", kDefaultServer}, {"namespace", "Bad_NS"}}).errors,
                    "spec.destination.namespace", "not a valid namespace"));
    ParseResult byName = withDestination({{"name", "in-cluster"}, {"namespace", "web"}});
    ASSERT_TRUE(byName.errors.empty());
    EXPECT_EQ(byName.spec.destination.name, "in-cluster");
    EXPECT_EQ(byName.spec.destination.namespace_, "web");
    ParseResult slash = withDestination({{"server", "https://kubernetes.default.svc/"}});
    ASSERT_TRUE(slash.errors.empty());
    EXPECT_EQ(slash.spec.destination.server, kDefaultServer);
    EXPECT_EQ(slash.spec.destination.namespace_, "");

    json app = minimalApp();
    app["spec"].erase("destination");
    EXPECT_TRUE(singleError(parseApplication(app).errors, "spec.destination", "required"));
}

TEST(ParseApplication, Project) {
    EXPECT_TRUE(singleError(errorsWith({{"project", ""}}), "spec.project", "must not be empty"));
    EXPECT_TRUE(singleError(errorsWith({{"project", 3}}), "spec.project", "must be a string"));
    json app = minimalApp();
    app["spec"]["project"] = "team-a";
    EXPECT_EQ(parseApplication(app).spec.project, "team-a");
}

TEST(ParseApplication, SyncPolicy) {
    EXPECT_TRUE(singleError(errorsWith({{"syncPolicy", {{"automated", true}}}}),
                            "spec.syncPolicy.automated", "must be an object"));
    EXPECT_TRUE(singleError(errorsWith({{"syncPolicy", {{"automated", {{"prune", "true"}}}}}}),
                            "spec.syncPolicy.automated.prune", "must be a boolean"));
    EXPECT_TRUE(singleError(errorsWith({{"syncPolicy", {{"syncOptions", "Validate=false"}}}}),
                            "spec.syncPolicy.syncOptions", "must be a list"));
    EXPECT_TRUE(singleError(errorsWith({{"syncPolicy", {{"syncOptions", {1}}}}}),
                            "spec.syncPolicy.syncOptions[0]", "must be a string"));
    EXPECT_TRUE(
        singleError(errorsWith({{"syncPolicy", {{"managedNamespaceMetadata", json::object()}}}}),
                    "spec.syncPolicy.managedNamespaceMetadata", "not supported"));

    json app = minimalApp();
    app["spec"]["syncPolicy"] = {{"automated", json::object()}};
    ParseResult r = parseApplication(app);
    ASSERT_TRUE(r.errors.empty());
    EXPECT_TRUE(r.spec.syncPolicy.automated);
    EXPECT_FALSE(r.spec.syncPolicy.prune);
    EXPECT_FALSE(r.spec.syncPolicy.selfHeal);

    // `automated:` with no value (YAML null) still enables auto-sync, as in Argo CD.
    app["spec"]["syncPolicy"] = {{"automated", nullptr}};
    EXPECT_TRUE(parseApplication(app).spec.syncPolicy.automated);

    app["spec"]["syncPolicy"] = {{"automated", {{"enabled", false}, {"prune", true}}}};
    r = parseApplication(app);
    ASSERT_TRUE(r.errors.empty());
    EXPECT_FALSE(r.spec.syncPolicy.automated);
    EXPECT_TRUE(r.spec.syncPolicy.prune);
}

TEST(ParseApplication, Retry) {
    auto retryErrors = [](const json& retry) {
        return errorsWith({{"syncPolicy", {{"retry", retry}}}});
    };
    EXPECT_TRUE(singleError(retryErrors({{"limit", "5"}}), "spec.syncPolicy.retry.limit",
                            "must be an integer"));
    EXPECT_TRUE(singleError(retryErrors({{"backoff", {{"duration", "5 parsecs"}}}}),
                            "spec.syncPolicy.retry.backoff.duration", "invalid duration"));
    EXPECT_TRUE(singleError(retryErrors({{"backoff", {{"maxDuration", "-3m"}}}}),
                            "spec.syncPolicy.retry.backoff.maxDuration", "invalid duration"));
    EXPECT_TRUE(singleError(retryErrors({{"backoff", {{"factor", 0.5}}}}),
                            "spec.syncPolicy.retry.backoff.factor", "at least 1"));
    EXPECT_TRUE(singleError(retryErrors({{"backoff", {{"factor", "2"}}}}),
                            "spec.syncPolicy.retry.backoff.factor", "must be a number"));
    EXPECT_TRUE(singleError(retryErrors("often"), "spec.syncPolicy.retry", "must be an object"));

    json app = minimalApp();
    app["spec"]["syncPolicy"] = {{"retry", {{"limit", -1}, {"backoff", {{"duration", 10}}}}}};
    ParseResult r = parseApplication(app);
    ASSERT_TRUE(r.errors.empty());
    ASSERT_TRUE(r.spec.syncPolicy.retry);
    EXPECT_EQ(r.spec.syncPolicy.retry->limit, -1);
    EXPECT_EQ(r.spec.syncPolicy.retry->duration, 10s);  // a bare number is seconds
    EXPECT_EQ(r.spec.syncPolicy.retry->factor, 2);
    EXPECT_EQ(r.spec.syncPolicy.retry->maxDuration, 3min);
}

TEST(RetryPolicy, DelayGrowsByFactorUpToMax) {
    RetryPolicy p;  // 5s, x2, max 3m
    EXPECT_EQ(p.delayFor(1), 5s);
    EXPECT_EQ(p.delayFor(2), 10s);
    EXPECT_EQ(p.delayFor(3), 20s);
    EXPECT_EQ(p.delayFor(6), 160s);
    EXPECT_EQ(p.delayFor(7), 180s);
    EXPECT_EQ(p.delayFor(1000), 180s);
    EXPECT_EQ(p.delayFor(0), 5s);
    p.factor = 1;
    EXPECT_EQ(p.delayFor(10), 5s);
}

TEST(ParseDuration, GoSyntax) {
    EXPECT_EQ(parseDuration("30s"), 30s);
    EXPECT_EQ(parseDuration("5m"), 5min);
    EXPECT_EQ(parseDuration("1h"), 1h);
    EXPECT_EQ(parseDuration("1h30m"), 90min);
    EXPECT_EQ(parseDuration("250ms"), 250ms);
    EXPECT_EQ(parseDuration("1.5s"), 1500ms);
    EXPECT_EQ(parseDuration("12"), 12s);
    EXPECT_EQ(parseDuration("0"), 0ms);
    for (const char* bad : {"", "s", "-5s", "5x", "1..5s", "m5", "5s3", ".", "5 s"})
        EXPECT_FALSE(parseDuration(bad).has_value()) << bad;
}

TEST(SyncOptions, NamesValuesAndDefaults) {
    std::vector<std::string> errors;
    SyncOptions o = SyncOptions::parse(
        {"Validate=false", "CreateNamespace=true", "PrunePropagationPolicy=Background",
         "PruneLast=true", "ApplyOutOfSyncOnly=true", "ServerSideApply=true",
         "RespectIgnoreDifferences=true", "Replace=true"},
        errors);
    EXPECT_TRUE(errors.empty());
    EXPECT_FALSE(o.validate);
    EXPECT_TRUE(o.createNamespace);
    EXPECT_EQ(o.prunePropagationPolicy, "background");
    EXPECT_TRUE(o.pruneLast);
    EXPECT_TRUE(o.applyOutOfSyncOnly);
    EXPECT_TRUE(o.serverSideApply);
    EXPECT_TRUE(o.respectIgnoreDifferences);
    EXPECT_TRUE(o.replace);

    o = SyncOptions::parse({"PrunePropagationPolicy=orphan"}, errors);
    EXPECT_EQ(o.prunePropagationPolicy, "orphan");
    EXPECT_TRUE(errors.empty());
}

TEST(SyncOptions, AcceptedArgoOptionsWithoutEffect) {
    std::vector<std::string> errors;
    SyncOptions o =
        SyncOptions::parse({"FailOnSharedResource=true", "SkipDryRunOnMissingResource=true",
                            "ClientSideApplyMigration=false"},
                           errors);
    EXPECT_TRUE(errors.empty());
    EXPECT_TRUE(o.validate);
    SyncOptions::parse({"FailOnSharedResource=maybe"}, errors);
    EXPECT_EQ(errors.size(), 1u);
}

TEST(SyncOptions, Errors) {
    std::vector<std::string> errors;
    SyncOptions::parse(
        {"Validate=true", "Validate", "Foo=bar", "PruneLast=yes", "PrunePropagationPolicy=later"},
        errors);
    ASSERT_EQ(errors.size(), 4u);
    EXPECT_THAT(errors[0], HasSubstr("syncPolicy.syncOptions[1]: expected Name=value"));
    EXPECT_EQ(errors[1], "syncPolicy.syncOptions[2]: unknown option \"Foo=bar\"");
    EXPECT_THAT(errors[2], HasSubstr("syncPolicy.syncOptions[3]: PruneLast must be true or false"));
    EXPECT_THAT(errors[3], HasSubstr("syncPolicy.syncOptions[4]: PrunePropagationPolicy"));
}

TEST(ParseApplication, IgnoreDifferences) {
    json app = minimalApp();
    app["spec"]["ignoreDifferences"] = json::parse(R"([
      {"group": "apps", "kind": "Deployment", "name": "web", "namespace": "web",
       "jsonPointers": ["/spec/replicas"]},
      {"kind": "ConfigMap", "managedFieldsManagers": ["kube-controller-manager"]}
    ])");
    ParseResult r = parseApplication(app);
    ASSERT_TRUE(r.errors.empty()) << r.errors.front();
    ASSERT_EQ(r.spec.ignoreDifferences.size(), 2u);
    const auto& a = r.spec.ignoreDifferences[0];
    EXPECT_EQ(a.group, "apps");
    EXPECT_EQ(a.kind, "Deployment");
    EXPECT_EQ(a.name, "web");
    EXPECT_EQ(a.ns, "web");
    EXPECT_THAT(a.jsonPointers, ElementsAre("/spec/replicas"));
    EXPECT_THAT(r.spec.ignoreDifferences[1].managedFieldsManagers,
                ElementsAre("kube-controller-manager"));

    auto ruleErrors = [](const json& rule) {
        return errorsWith({{"ignoreDifferences", json::array({rule})}});
    };
    EXPECT_TRUE(
        singleError(ruleErrors({{"kind", "Deployment"}, {"jqPathExpressions", {".spec.replicas"}}}),
                    "spec.ignoreDifferences[0].jqPathExpressions", "not supported"));
    EXPECT_TRUE(singleError(ruleErrors({{"kind", "Deployment"}, {"jsonPointers", {"spec"}}}),
                            "spec.ignoreDifferences[0].jsonPointers[0]", "invalid JSON pointer"));
    EXPECT_TRUE(singleError(ruleErrors({{"jsonPointers", {"/spec"}}}),
                            "spec.ignoreDifferences[0].kind", "required"));
    EXPECT_TRUE(singleError(ruleErrors({{"kind", "Deployment"}}), "spec.ignoreDifferences[0]",
                            "jsonPointers or managedFieldsManagers required"));
    EXPECT_TRUE(singleError(ruleErrors({{"kind", "X"}, {"jsonPointers", {"/a"}}, {"nmae", "x"}}),
                            "spec.ignoreDifferences[0].nmae", "unknown field"));
    EXPECT_TRUE(singleError(errorsWith({{"ignoreDifferences", json::array({"x"})}}),
                            "spec.ignoreDifferences[0]", "must be an object"));
    EXPECT_TRUE(singleError(errorsWith({{"ignoreDifferences", "x"}}), "spec.ignoreDifferences",
                            "must be a list"));
}

TEST(ParseApplication, RevisionHistoryLimit) {
    EXPECT_TRUE(singleError(errorsWith({{"revisionHistoryLimit", -1}}), "spec.revisionHistoryLimit",
                            "negative"));
    EXPECT_TRUE(singleError(errorsWith({{"revisionHistoryLimit", "3"}}),
                            "spec.revisionHistoryLimit", "must be an integer"));
    json app = minimalApp();
    app["spec"]["revisionHistoryLimit"] = 3;
    EXPECT_EQ(parseApplication(app).spec.revisionHistoryLimit, 3);
    app["spec"]["revisionHistoryLimit"] = 0;
    EXPECT_EQ(parseApplication(app).spec.revisionHistoryLimit, 0);
}

TEST(ParseApplication, Operation) {
    json app = minimalApp();
    app["operation"] = json::parse(R"({
      "sync": {"revision": "abc123", "prune": true, "dryRun": true,
               "syncOptions": ["Replace=true"], "syncStrategy": {"hook": {}}},
      "initiatedBy": {"username": "alice", "automated": false},
      "retry": {"limit": 2, "backoff": {"duration": "1s", "factor": 3, "maxDuration": "10s"}}
    })");
    ParseResult r = parseApplication(app);
    ASSERT_TRUE(r.errors.empty()) << r.errors.front();
    ASSERT_TRUE(r.operation.has_value());
    const Operation& op = *r.operation;
    EXPECT_EQ(op.revision, "abc123");
    EXPECT_TRUE(op.prune);
    EXPECT_TRUE(op.dryRun);
    EXPECT_THAT(op.syncOptions, ElementsAre("Replace=true"));
    EXPECT_EQ(op.initiatedBy, "alice");
    EXPECT_FALSE(op.automated);
    ASSERT_TRUE(op.retry.has_value());
    EXPECT_EQ(op.retry->limit, 2);
    EXPECT_EQ(op.retry->delayFor(2), 3s);
    EXPECT_EQ(op.retry->delayFor(3), 9s);
    EXPECT_EQ(op.retry->delayFor(4), 10s);
    EXPECT_EQ(op.raw, app["operation"]);
}

TEST(ParseApplication, OperationErrors) {
    auto opErrors = [](const json& op) {
        json app = minimalApp();
        app["operation"] = op;
        return parseApplication(app).errors;
    };
    EXPECT_TRUE(singleError(opErrors(json::object()), "operation.sync", "required"));
    EXPECT_TRUE(singleError(opErrors("sync"), "operation", "must be an object"));
    EXPECT_TRUE(singleError(opErrors({{"sync", {{"syncOptions", {"Nope=true"}}}}}),
                            "operation.sync.syncOptions[0]", "unknown option"));
    EXPECT_TRUE(singleError(opErrors({{"sync", {{"prune", "yes"}}}}), "operation.sync.prune",
                            "must be a boolean"));
    EXPECT_TRUE(
        singleError(opErrors({{"sync", {{"resources", json::array({{{"kind", "Deployment"}}})}}}}),
                    "operation.sync.resources", "not supported"));
    EXPECT_TRUE(singleError(opErrors({{"sync", json::object()}, {"bogus", 1}}), "operation.bogus",
                            "unknown field"));
    EXPECT_TRUE(
        singleError(opErrors({{"sync", json::object()}, {"initiatedBy", {{"username", 1}}}}),
                    "operation.initiatedBy.username", "must be a string"));
    EXPECT_TRUE(singleError(
        opErrors({{"sync", json::object()}, {"retry", {{"backoff", {{"duration", "soon"}}}}}}),
        "operation.retry.backoff.duration", "invalid duration"));
    EXPECT_TRUE(
        singleError(opErrors({{"sync", {{"syncStrategy", {{"apply", {{"force", true}}}}}}}}),
                    "operation.sync.syncStrategy.apply.force", "not supported"));

    json app = minimalApp();
    app["operation"] = {{"sync", json::object()}, {"initiatedBy", {{"automated", true}}}};
    ParseResult r = parseApplication(app);
    ASSERT_TRUE(r.errors.empty());
    EXPECT_TRUE(r.operation->automated);
    EXPECT_EQ(r.operation->revision, "");
    EXPECT_FALSE(r.operation->retry.has_value());
}

}  // namespace
}  // namespace sluice::appengine

namespace sluice::appengine {
namespace {

// spec.project is enforced (AppProjects), so no Application field is accepted without effect.
TEST(UnimplementedFields, AProjectIsEnforcedNotReported) {
    using nlohmann::json;
    EXPECT_TRUE(unimplementedFieldsIn(json::parse(R"({"spec": {}})")).empty());
    EXPECT_TRUE(unimplementedFieldsIn(json::parse(R"({"spec": {"project": "team-a"}})")).empty());
    EXPECT_TRUE(fieldsWithoutEffect().empty());
}

}  // namespace
}  // namespace sluice::appengine
