// The CRDs in crds/ installed with the real kubectl into the test API server: they are
// accepted and Established, the example manifests of tests/data/examples (Argo CD / Flagger
// originals with a sluice.io apiVersion) validate against them, the printer columns show the status
// fields, and wrong types or unsupported fields are refused by the server.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "sluice/util/yaml_json.h"
#include "testutil/kubectl_test.h"
#include "testutil/testutil.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kCrdDir = fs::path(SLUICE_SOURCE_DIR) / "crds";
const fs::path kExamplesDir = fs::path(SLUICE_SOURCE_DIR) / "tests" / "data" / "examples";

const std::vector<std::string> kCrdNames = {"alertproviders.sluice.io", "applications.sluice.io",
                                            "appprojects.sluice.io", "canaries.sluice.io",
                                            "metrictemplates.sluice.io"};

// Replaces the first occurrence of `from` (which must exist) in `text`.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
    auto at = text.find(from);
    if (at == std::string::npos) throw std::runtime_error("no \"" + from + "\" in manifest");
    return text.replace(at, from.size(), to);
}

bool hasCondition(const json& obj, const std::string& type) {
    for (const auto& c : obj.value("status", json::object()).value("conditions", json::array()))
        if (c.value("type", "") == type && c.value("status", "") == "True") return true;
    return false;
}

class CrdsTest : public KubectlTest {
  protected:
    RunResult applyText(const std::string& manifest) {
        return kubectl({"apply", "--server-side", "-f", "-"}, manifest);
    }

    void installCrds() {
        auto r = kubectl({"apply", "--server-side", "-f", kCrdDir.string()});
        ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
        for (const auto& name : kCrdNames) {
            auto crd = server->get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", name);
            ASSERT_TRUE(crd) << name;
            EXPECT_TRUE(hasCondition(*crd, "Established")) << crd->dump(2);
            EXPECT_TRUE(hasCondition(*crd, "NamesAccepted")) << crd->dump(2);
        }
    }
    void createNamespaces(const std::vector<std::string>& names) {
        for (const auto& ns : names) createNamespace(ns);
    }
    // The example manifests' namespaces.
    void createExampleNamespaces() {
        createNamespaces({"sluice", "production", "blessed-horizon", "bifrost"});
    }
};

TEST_F(CrdsTest, EveryCrdFileIsOneEstablishedCrdWithTheExpectedNames) {
    std::vector<std::string> found;
    for (const auto& entry : fs::directory_iterator(kCrdDir)) {
        auto docs = yamlDocumentsToJson(readFile(entry.path()));
        ASSERT_EQ(docs.size(), 1u) << entry.path();
        EXPECT_EQ(docs[0]["kind"], "CustomResourceDefinition") << entry.path();
        // controller-gen's file naming: <group>_<plural>.yaml.
        EXPECT_EQ(entry.path().filename().string(),
                  docs[0]["spec"]["group"].get<std::string>() + "_" +
                      docs[0]["spec"]["names"]["plural"].get<std::string>() + ".yaml");
        found.push_back(docs[0]["metadata"]["name"]);
    }
    std::sort(found.begin(), found.end());
    EXPECT_EQ(found, kCrdNames);

    installCrds();
    auto resources = kubectl({"api-resources", "--api-group=sluice.io", "-o", "wide"});
    ASSERT_EQ(resources.exitCode, 0) << resources.out << resources.err;
    for (const auto& expected :
         {"applications", "app,apps", "Application", "canaries", "Canary", "metrictemplates", "mt",
          "MetricTemplate", "alertproviders", "AlertProvider", "appprojects", "appproj,appprojs",
          "AppProject", "sluice.io/v1alpha1"})
        EXPECT_NE(resources.out.find(expected), std::string::npos) << expected << " in\n"
                                                                   << resources.out;

    // Short names and categories resolve through discovery.
    createExampleNamespaces();
    ASSERT_EQ(applyText(readFile(kExamplesDir / "application.yaml")).exitCode, 0);
    auto byShortName = kubectl({"get", "app", "-n", "sluice", "-o", "name"});
    EXPECT_EQ(byShortName.out, "application.sluice.io/blessed-horizon-prod\n") << byShortName.err;
    auto byCategory = kubectl({"get", "sluice", "-A", "-o", "name"});
    EXPECT_EQ(byCategory.out, "application.sluice.io/blessed-horizon-prod\n") << byCategory.err;
}

TEST_F(CrdsTest, SharedExamplesValidateAndPrinterColumnsShowStatus) {
    ASSERT_TRUE(fs::is_directory(kExamplesDir)) << kExamplesDir << " (the example manifests)";
    installCrds();
    createExampleNamespaces();
    for (const auto* file :
         {"application.yaml", "canary.yaml", "blue-green.yaml", "stepped-canary.yaml"}) {
        auto r = kubectl({"apply", "--server-side", "-f", (kExamplesDir / file).string()});
        EXPECT_EQ(r.exitCode, 0) << file << ": " << r.out << r.err;
    }

    // Nothing was pruned: the stored objects carry every field of the manifests.
    auto app = server->get("sluice.io/v1alpha1", "Application", "sluice", "blessed-horizon-prod");
    ASSERT_TRUE(app);
    EXPECT_EQ((*app)["spec"]["syncPolicy"]["retry"]["backoff"]["factor"], 2);
    EXPECT_EQ((*app)["spec"]["syncPolicy"]["syncOptions"].size(), 4u);
    EXPECT_EQ((*app)["spec"]["syncPolicy"]["automated"]["allowEmpty"], false);
    EXPECT_EQ((*app)["metadata"]["finalizers"][0], "resources-finalizer.sluice.io");
    auto stepped = server->get("sluice.io/v1alpha1", "Canary", "bifrost", "bifrost-api");
    ASSERT_TRUE(stepped);
    EXPECT_EQ((*stepped)["spec"]["analysis"]["stepWeights"], json::array({5, 20, 50}));
    EXPECT_EQ((*stepped)["spec"]["analysis"]["metrics"][0]["templateRef"]["namespace"], "bifrost");
    // Gateway API parentRef defaults, as in Flagger's schema.
    EXPECT_EQ((*stepped)["spec"]["service"]["gatewayRefs"][0]["group"],
              "gateway.networking.k8s.io");
    EXPECT_EQ((*stepped)["spec"]["service"]["gatewayRefs"][0]["kind"], "Gateway");
    auto canary =
        server->get("sluice.io/v1alpha1", "Canary", "blessed-horizon", "campaign-service");
    ASSERT_TRUE(canary);
    EXPECT_EQ((*canary)["spec"]["analysis"]["webhooks"][0]["metadata"]["cmd"],
              "hey -z 1m -q 10 -c 2 http://api.blessedhorizon.org/api/v1/campaigns");
    EXPECT_EQ((*canary)["spec"]["service"]["targetPort"], 8080);
    auto mt = server->get("sluice.io/v1alpha1", "MetricTemplate", "bifrost", "error-rate");
    ASSERT_TRUE(mt);
    EXPECT_EQ((*mt)["spec"]["provider"]["type"], "prometheus");

    // Status written through the status subresource appears in the printer columns.
    auto appStatus = kubectl({"patch", "application", "blessed-horizon-prod", "-n", "sluice",
                              "--subresource=status", "--type=merge", "-p",
                              R"({"status":{"sync":{"status":"Synced","revision":"0a1b2c3"},)"
                              R"("health":{"status":"Healthy"},"observedGeneration":1,)"
                              R"("controllerNote":"kept"}})"});
    ASSERT_EQ(appStatus.exitCode, 0) << appStatus.out << appStatus.err;
    auto canaryStatus = kubectl({"patch", "canary", "campaign-service", "-n", "blessed-horizon",
                                 "--subresource=status", "--type=merge", "-p",
                                 R"({"status":{"phase":"Progressing","canaryWeight":30,)"
                                 R"("failedChecks":2,)"
                                 R"("lastTransitionTime":"2026-01-02T03:04:05Z"}})"});
    ASSERT_EQ(canaryStatus.exitCode, 0) << canaryStatus.out << canaryStatus.err;
    // Unknown status fields are preserved (the controller may record more than is declared).
    EXPECT_EQ((*server->get("sluice.io/v1alpha1", "Application", "sluice",
                            "blessed-horizon-prod"))["status"]["controllerNote"],
              "kept");

    auto table = kubectl({"get", "applications,canaries", "-A"});
    ASSERT_EQ(table.exitCode, 0) << table.out << table.err;
    std::istringstream lines(table.out);
    std::vector<std::string> rows;
    for (std::string line; std::getline(lines, line);) rows.push_back(line);
    auto rowWith = [&](const std::string& text) {
        for (const auto& row : rows)
            if (row.find(text) != std::string::npos) return row;
        return std::string();
    };
    // Header then values, in column order.
    auto appHeader = rowWith("SYNC STATUS");
    EXPECT_NE(appHeader.find("HEALTH"), std::string::npos) << table.out;
    EXPECT_LT(appHeader.find("SYNC STATUS"), appHeader.find("REVISION")) << table.out;
    EXPECT_NE(appHeader.find("AGE"), std::string::npos) << table.out;
    EXPECT_EQ(appHeader.find("PROJECT"), std::string::npos) << "priority 10 column: " << table.out;
    auto appRow = rowWith("blessed-horizon-prod");
    EXPECT_NE(appRow.find("Synced"), std::string::npos) << table.out;
    EXPECT_LT(appRow.find("Synced"), appRow.find("Healthy")) << table.out;
    EXPECT_LT(appRow.find("Healthy"), appRow.find("0a1b2c3")) << table.out;

    auto canaryHeader = rowWith("FAILEDCHECKS");
    EXPECT_NE(canaryHeader.find("STATUS"), std::string::npos) << table.out;
    EXPECT_LT(canaryHeader.find("WEIGHT"), canaryHeader.find("FAILEDCHECKS")) << table.out;
    EXPECT_NE(canaryHeader.find("LASTTRANSITIONTIME"), std::string::npos) << table.out;
    auto canaryRow = rowWith("campaign-service");
    EXPECT_NE(canaryRow.find("Progressing"), std::string::npos) << table.out;
    EXPECT_NE(canaryRow.find(" 30 "), std::string::npos) << table.out;
    EXPECT_NE(canaryRow.find(" 2 "), std::string::npos) << table.out;
    EXPECT_NE(canaryRow.find("2026-01-02T03:04:05Z"), std::string::npos) << table.out;
    EXPECT_NE(rowWith("ml-platform"), "") << table.out;
    EXPECT_NE(rowWith("bifrost-api"), "") << table.out;

    auto wide = kubectl({"get", "canary", "bifrost-api", "-n", "bifrost", "-o", "wide"});
    EXPECT_NE(wide.out.find("STEPWEIGHTS"), std::string::npos) << wide.out << wide.err;
    auto templates = kubectl({"get", "mt", "-A"});
    EXPECT_NE(templates.out.find("PROVIDER"), std::string::npos) << templates.out;
    EXPECT_NE(templates.out.find("prometheus"), std::string::npos) << templates.out;
}

// An Argo CD AppProject with every field, only its apiVersion changed: accepted whole (nothing
// pruned), its printer columns and short name work, and a sync window of another kind is refused.
TEST_F(CrdsTest, ArgoCdAppProjectIsAcceptedWhole) {
    installCrds();
    createExampleNamespaces();
    const std::string project = R"(apiVersion: sluice.io/v1alpha1
kind: AppProject
metadata:
  name: team-a
  namespace: sluice
spec:
  description: Team A
  sourceRepos: ['https://git.example.com/team-a/*', '!https://git.example.com/team-a/old']
  destinations:
  - {server: https://kubernetes.default.svc, name: in-cluster, namespace: 'team-a-*'}
  clusterResourceWhitelist: [{group: '', kind: Namespace}]
  clusterResourceBlacklist: [{group: rbac.authorization.k8s.io, kind: '*'}]
  namespaceResourceWhitelist: [{group: '*', kind: '*'}]
  namespaceResourceBlacklist: [{group: '', kind: ResourceQuota}]
  sourceNamespaces: [team-a]
  orphanedResources: {warn: true, ignore: [{group: apps, kind: Deployment, name: legacy}]}
  permitOnlyProjectScopedClusters: false
  syncWindows:
  - {kind: deny, schedule: '0 22 * * *', duration: 1h, timeZone: Europe/Berlin,
     applications: ['*'], namespaces: [team-a-prod], clusters: [in-cluster], manualSync: true,
     andOperator: false, description: nightly freeze}
  destinationServiceAccounts:
  - {server: https://kubernetes.default.svc, namespace: team-a, defaultServiceAccount: deployer}
  roles:
  - name: ci
    description: CI pipeline
    policies: ['p, proj:team-a:ci, applications, sync, team-a/*, allow']
    groups: [team-a-ci]
    jwtTokens: [{iat: 1700000000, id: abc}]
  signatureKeys: [{keyID: 4AEE18F83AFDEB23}]
)";
    auto r = applyText(project);
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    auto stored = server->get("sluice.io/v1alpha1", "AppProject", "sluice", "team-a");
    ASSERT_TRUE(stored);
    const json expected = yamlDocumentsToJson(project)[0]["spec"];
    EXPECT_EQ((*stored)["spec"], expected) << (*stored)["spec"].dump(2);
    auto table = kubectl({"get", "appproj", "-n", "sluice"});
    EXPECT_NE(table.out.find("DESCRIPTION"), std::string::npos) << table.out << table.err;
    EXPECT_NE(table.out.find("Team A"), std::string::npos) << table.out;
    auto bad = applyText(replaced(project, "kind: deny", "kind: sometimes"));
    EXPECT_NE(bad.exitCode, 0) << bad.out;
}

TEST_F(CrdsTest, WrongTypesAndUnsupportedFieldsAreRejected) {
    ASSERT_TRUE(fs::is_directory(kExamplesDir)) << kExamplesDir << " (the example manifests)";
    installCrds();
    createExampleNamespaces();
    const std::string blueGreen = readFile(kExamplesDir / "blue-green.yaml");
    const std::string application = readFile(kExamplesDir / "application.yaml");

    // -v=6 logs the HTTP status of each request: the server answers 422 Unprocessable Entity.
    auto wrongType = kubectl({"apply", "--server-side", "-v=6", "-f", "-"},
                             replaced(blueGreen, "threshold: 2", "threshold: \"abc\""));
    EXPECT_NE(wrongType.exitCode, 0);
    EXPECT_NE(wrongType.err.find("422 Unprocessable Entity"), std::string::npos) << wrongType.err;
    EXPECT_NE(wrongType.err.find("The Canary \"ml-platform\" is invalid: spec.analysis.threshold"),
              std::string::npos)
        << wrongType.err;
    EXPECT_FALSE(server->get("sluice.io/v1alpha1", "Canary", "production", "ml-platform"));

    struct Case {
        std::string what;
        std::string manifest;
        std::string expected;  // in kubectl's error output
    };
    const std::vector<Case> cases = {
        {"analysis with neither iterations nor a step weight (Flagger's oneOf)",
         replaced(blueGreen, "iterations: 10", "maxWeight: 50"), "spec.analysis"},
        {"interval in hours (Flagger's pattern)",
         replaced(blueGreen, "interval: 30s", "interval: 1h"), "spec.analysis.interval"},
        {"unknown webhook type", replaced(blueGreen, "type: pre-rollout", "type: pre-flight"),
         "spec.analysis.webhooks[0].type"},
        {"webhook without url",
         replaced(blueGreen, "      url: http://smoke-tester.production/\n", ""),
         "spec.analysis.webhooks[0].url"},
        {"fractional step weight", replaced(blueGreen, "iterations: 10", "stepWeight: 2.5"),
         "spec.analysis.stepWeight"},
        {"target kind not supported by Flagger",
         replaced(blueGreen, "kind: Deployment", "kind: StatefulSet"), "spec.targetRef.kind"},
        {"application without repoURL",
         replaced(application, "    repoURL: https://github.com/blessed-horizon/k8s-manifests\n",
                  ""),
         "spec.source.repoURL"},
        {"retry limit as a string", replaced(application, "limit: 5", "limit: five"),
         "spec.syncPolicy.retry.limit"},
        {"a typo (strict field validation)",
         replaced(application, "selfHeal: true", "selfheal: true"),
         "unknown field \"spec.syncPolicy.automated.selfheal\""},
        {"webhook maxWait that is not a string",
         replaced(blueGreen, "type: confirm-promotion",
                  "type: confirm-promotion\n      maxWait: 5"),
         "spec.analysis.webhooks[1].maxWait"},
    };
    for (const auto& c : cases) {
        auto r = applyText(c.manifest);
        EXPECT_NE(r.exitCode, 0) << c.what << ": " << r.out;
        EXPECT_NE(r.err.find(c.expected), std::string::npos) << c.what << ": " << r.err;
    }
    EXPECT_TRUE(server->list("sluice.io/v1alpha1", "Canary").empty());
    EXPECT_TRUE(server->list("sluice.io/v1alpha1", "Application").empty());

    // int-or-string: a named target port is as valid as a number.
    auto named = applyText(replaced(blueGreen, "targetPort: 8080", "targetPort: http"));
    EXPECT_EQ(named.exitCode, 0) << named.err;

    // Argo CD features Sluice does not implement are stored as written, so the controller can
    // report them instead of deploying the plain directory.
    auto helm =
        applyText(replaced(application, "path: environments/production",
                           "path: environments/production\n    helm:\n      releaseName: x"));
    ASSERT_EQ(helm.exitCode, 0) << helm.err;
    EXPECT_EQ((*server->get("sluice.io/v1alpha1", "Application", "sluice",
                            "blessed-horizon-prod"))["spec"]["source"]["helm"]["releaseName"],
              "x");
    // Flagger's other ways to write a Canary: no analysis with skipAnalysis, the pre-v1beta1
    // canaryAnalysis, and Sluice's maxWait on gates.
    std::string skipped =
        replaced(blueGreen, "name: ml-platform\n  namespace", "name: skipped\n  namespace");
    skipped = replaced(skipped, "  analysis:\n", "  skipAnalysis: true\n  unused:\n");
    skipped = skipped.substr(0, skipped.find("  unused:\n"));
    auto skip = applyText(skipped);
    EXPECT_EQ(skip.exitCode, 0) << skipped << skip.err;
    std::string legacy =
        replaced(blueGreen, "name: ml-platform\n  namespace", "name: legacy\n  namespace");
    auto old = applyText(replaced(legacy, "  analysis:\n", "  canaryAnalysis:\n"));
    EXPECT_EQ(old.exitCode, 0) << old.err;
    auto gate = applyText(replaced(blueGreen, "type: confirm-promotion",
                                   "type: confirm-promotion\n      maxWait: 30m"));
    EXPECT_EQ(gate.exitCode, 0) << gate.err;

    // A wrong type in status is refused too (status fields are typed, not only preserved).
    auto badStatus =
        kubectl({"patch", "canary", "ml-platform", "-n", "production", "--subresource=status",
                 "--type=merge", "-p", R"({"status":{"canaryWeight":"half"}})"});
    EXPECT_NE(badStatus.exitCode, 0);
    EXPECT_NE(badStatus.err.find("status.canaryWeight"), std::string::npos) << badStatus.err;
}

}  // namespace
}  // namespace sluice::testing
