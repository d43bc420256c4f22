// sluice-controller as a process, end to end, for each source type rendered by the real tools:
// a Helm chart in git, a Kustomize overlay, a chart from a Helm repository on loopback with value
// files from a second (git) source, Jsonnet, and a config management plugin. Each is synced, then
// follows a new commit or chart version, and prunes what its source no longer renders.
#include "controller_process.h"
#include "http/http_server.h"

using namespace std::chrono_literals;
using nlohmann::json;
using sluice::testing::ChildProcess;
using sluice::testing::eventually;
using sluice::testing::runProcess;

namespace {

namespace fs = std::filesystem;

using sluice::processtest::kApp;

const char* kDeploymentTemplate = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec: {containers: [{name: web, image: "nginx:1"}]}
)";

class SourcesProcess : public sluice::processtest::ControllerProcessTest {
  protected:
    void startController() { controller_ = ControllerProcessTest::startController(); }
    bool waitFor(const std::function<bool()>& cond, const std::string& app) {
        if (eventually(cond, 60s)) return true;
        ADD_FAILURE() << "status of " << app << ": " << status(app).dump(2) << "\ncontroller:\n"
                      << controller_->stderrText().substr(0, 20000);
        return false;
    }
    int replicas(const std::string& name) {
        auto d = object("apps/v1", "Deployment", name);
        return d ? d->value("/spec/replicas"_json_pointer, -1) : -1;
    }

    // A chart `web` at `version` in the loopback Helm repository (with a ConfigMap or not).
    void publish(const std::string& version, bool withConfig) {
        const std::string www = dir_.file("charts");
        const std::string src = dir_.file("chart-src-" + version) + "/web";
        fs::create_directories(src + "/templates");
        std::ofstream(src + "/Chart.yaml")
            << "apiVersion: v2\nname: web\nversion: " << version << "\n";
        std::ofstream(src + "/values.yaml") << "replicas: 1\n";
        std::ofstream(src + "/templates/deployment.yaml") << kDeploymentTemplate;
        if (withConfig)
            std::ofstream(src + "/templates/config.yaml")
                << "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: chart-config}\n";
        const std::map<std::string, std::string> env = {{"HOME", dir_.str()}};
        ASSERT_EQ(
            runProcess({sluice::testing::helmPath(), "package", src, "-d", www}, env).exitCode, 0);
        ASSERT_EQ(runProcess({sluice::testing::helmPath(), "repo", "index", www}, env).exitCode, 0);
    }
    void serveCharts() {
        const std::string www = dir_.file("charts");
        charts_.start(
            [www](const sluice::testing::HttpRequest& req, sluice::testing::ResponseWriter& w) {
                std::ifstream f(www + req.path, std::ios::binary);
                if (!f) return w.respond(404, {}, "not found");
                w.respond(200, {}, std::string(std::istreambuf_iterator<char>(f), {}));
            });
    }
    // A manual sync with prune (what `kubectl sluice app sync --prune` writes), optionally to
    // these revisions.
    void sync(const std::string& name, const json& revisions = json()) {
        json op = {{"sync", {{"prune", true}}}, {"initiatedBy", {{"username", "test"}}}};
        if (!revisions.is_null()) op["sync"]["revisions"] = revisions;
        client_->patch(kApp, "sluice", name, sluice::kube::PatchType::Merge,
                       json({{"operation", op}}).dump());
    }

    sluice::testing::HttpServer charts_{sluice::testing::HttpServerOptions{}};
    std::unique_ptr<ChildProcess> controller_;
};

TEST_F(SourcesProcess, HelmChartInGitSyncsFollowsCommitsAndPrunes) {
    write("chart/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
    write("chart/values.yaml", "replicas: 1\n");
    write("chart/values-prod.yaml", "replicas: 2\n");
    write("chart/templates/deployment.yaml", kDeploymentTemplate);
    write("chart/templates/config.yaml",
          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-config}\n");
    commit();
    startController();
    createApp("helm-web", {{"source",
                            {{"repoURL", "file://" + repo_},
                             {"path", "chart"},
                             {"helm", {{"valueFiles", {"values-prod.yaml"}}}}}}});
    ASSERT_TRUE(waitFor(
        [&] { return replicas("helm-web") == 2 && object("v1", "ConfigMap", "helm-web-config"); },
        "helm-web"));
    EXPECT_TRUE(
        waitFor([&] { return status("helm-web").value("sourceType", "") == "Helm"; }, "helm-web"));

    write("chart/values-prod.yaml", "replicas: 3\n");
    remove("chart/templates/config.yaml");
    commit();
    refresh("helm-web");
    EXPECT_TRUE(waitFor(
        [&] { return replicas("helm-web") == 3 && !object("v1", "ConfigMap", "helm-web-config"); },
        "helm-web"));
}

TEST_F(SourcesProcess, KustomizeOverlaySyncsFollowsCommitsAndPrunes) {
    write("base/kustomization.yaml", "resources: [deployment.yaml, extra.yaml]\n");
    write("base/deployment.yaml", R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: "api:1"}]}
)");
    write("base/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n");
    write("overlays/prod/kustomization.yaml", "resources: [../../base]\n");
    commit();
    startController();
    createApp(
        "kust",
        {{"source",
          {{"repoURL", "file://" + repo_},
           {"path", "overlays/prod"},
           {"kustomize", {{"namePrefix", "prod-"}, {"images", {"api=registry.local/api:2"}}}}}}});
    ASSERT_TRUE(waitFor(
        [&] {
            return object("apps/v1", "Deployment", "prod-api") &&
                   object("v1", "ConfigMap", "prod-extra");
        },
        "kust"));
    auto d = object("apps/v1", "Deployment", "prod-api");
    EXPECT_EQ(d->value("/spec/template/spec/containers/0/image"_json_pointer, ""),
              "registry.local/api:2");
    EXPECT_TRUE(
        waitFor([&] { return status("kust").value("sourceType", "") == "Kustomize"; }, "kust"));

    write("base/kustomization.yaml",
          "resources: [deployment.yaml]\nreplicas: [{name: api, count: 4}]\n");
    commit();
    refresh("kust");
    EXPECT_TRUE(waitFor(
        [&] { return replicas("prod-api") == 4 && !object("v1", "ConfigMap", "prod-extra"); },
        "kust"));
}

TEST_F(SourcesProcess, ChartFromAHelmRepositoryWithValuesFromGitFollowsNewVersions) {
    publish("1.0.0", true);
    serveCharts();
    write("envs/prod.yaml", "replicas: 5\n");
    commit();
    startController();
    createApp("charted", {{"sources",
                           {{{"repoURL", charts_.url()},
                             {"chart", "web"},
                             {"targetRevision", "^1.0.0"},
                             {"helm", {{"valueFiles", {"$values/envs/prod.yaml"}}}}},
                            {{"repoURL", "file://" + repo_}, {"ref", "values"}}}}});
    ASSERT_TRUE(waitFor(
        [&] { return replicas("charted") == 5 && object("v1", "ConfigMap", "chart-config"); },
        "charted"));
    EXPECT_TRUE(waitFor(
        [&] {
            json st = status("charted");
            return st.value("/sync/revisions/0"_json_pointer, json()) == "1.0.0" &&
                   st.value("sourceTypes", json()) == json::array({"Helm", ""});
        },
        "charted"));

    publish("1.1.0", false);
    refresh("charted");
    EXPECT_TRUE(waitFor(
        [&] {
            return !object("v1", "ConfigMap", "chart-config") &&
                   status("charted").value("/sync/revisions/0"_json_pointer, json()) == "1.1.0";
        },
        "charted"));
    EXPECT_EQ(replicas("charted"), 5);
    json history = status("charted").value("history", json::array());
    ASSERT_FALSE(history.empty());
    EXPECT_EQ(history.back().value("revisions", json()).at(0), "1.1.0");
    EXPECT_TRUE(history.back().contains("sources"));
}

// Rollback of a multi-source Application to a history entry: operation.sync.revisions.
TEST_F(SourcesProcess, AMultiSourceApplicationRollsBackToAHistoryEntry) {
    publish("1.0.0", true);
    serveCharts();
    write("envs/prod.yaml", "replicas: 2\n");
    const std::string first = commit();
    startController();
    json spec = {{"sources",
                  {{{"repoURL", charts_.url()},
                    {"chart", "web"},
                    {"targetRevision", "^1.0.0"},
                    {"helm", {{"valueFiles", {"$values/envs/prod.yaml"}}}}},
                   {{"repoURL", "file://" + repo_}, {"ref", "values"}}}}};
    createApp("roll", spec, false);  // manual syncs: automation would undo the rollback
    sync("roll");
    ASSERT_TRUE(
        waitFor([&] { return object("v1", "ConfigMap", "chart-config").has_value(); }, "roll"));

    publish("1.1.0", false);
    write("envs/prod.yaml", "replicas: 3\n");
    commit();
    refresh("roll");
    ASSERT_TRUE(waitFor(
        [&] { return status("roll").value("/sync/revisions/0"_json_pointer, json()) == "1.1.0"; },
        "roll"));
    sync("roll");
    ASSERT_TRUE(
        waitFor([&] { return replicas("roll") == 3 && !object("v1", "ConfigMap", "chart-config"); },
                "roll"));

    // Back to history entry 0: chart 1.0.0 with the values of the first commit. (The history
    // is written after the sync's objects, which the test saw first.)
    json history;
    ASSERT_TRUE(waitFor(
        [&] {
            history = status("roll").value("history", json::array());
            return history.size() == 2;
        },
        "roll"));
    EXPECT_EQ(history[0]["revisions"], json::array({"1.0.0", first}));
    sync("roll", history[0]["revisions"]);
    EXPECT_TRUE(waitFor(
        [&] {
            return replicas("roll") == 2 && object("v1", "ConfigMap", "chart-config").has_value();
        },
        "roll"));
    EXPECT_TRUE(waitFor(
        [&] {
            json h = status("roll").value("history", json::array());
            return h.size() == 3 && h[2]["revisions"] == json::array({"1.0.0", first});
        },
        "roll"));
    // The target is still the newest: the app is OutOfSync after the rollback, as in Argo CD.
    EXPECT_EQ(status("roll").value("/sync/revisions/0"_json_pointer, json()), "1.1.0");
}

TEST_F(SourcesProcess, JsonnetAndAPluginRender) {
    write("jsonnet/main.jsonnet",
          "function(replicas=1) [{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: "
          "'from-jsonnet'}, data: {env: std.extVar('env'), replicas: std.toString(replicas)}}]\n");
    write("plugin/input.txt", "hello\n");
    commit();
    server_.create({{"apiVersion", "v1"},
                    {"kind", "ConfigMap"},
                    {"metadata", {{"name", "sluice-cmp"}, {"namespace", "sluice"}}},
                    {"data",
                     {{"echo.yaml",
                       "apiVersion: argoproj.io/v1alpha1\nkind: ConfigManagementPlugin\n"
                       "metadata: {name: echo}\nspec:\n  generate:\n    command: [sh, -c]\n"
                       "    args: ['printf \"apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: "
                       "from-plugin}\\ndata: {app: $ARGOCD_APP_NAME, text: %s}\\n\" \"$(cat "
                       "input.txt)\"']\n"}}}});
    startController();
    createApp("jsonnet",
              {{"source",
                {{"repoURL", "file://" + repo_},
                 {"path", "jsonnet"},
                 {"directory",
                  {{"jsonnet",
                    {{"extVars", {{{"name", "env"}, {"value", "prod"}}}},
                     {"tlas", {{{"name", "replicas"}, {"value", "3"}, {"code", true}}}}}}}}}}});
    createApp(
        "plugged",
        {{"source",
          {{"repoURL", "file://" + repo_}, {"path", "plugin"}, {"plugin", {{"name", "echo"}}}}}});
    ASSERT_TRUE(waitFor(
        [&] {
            auto cm = object("v1", "ConfigMap", "from-jsonnet");
            return cm && cm->value("/data/env"_json_pointer, "") == "prod" &&
                   cm->value("/data/replicas"_json_pointer, "") == "3";
        },
        "jsonnet"));
    ASSERT_TRUE(waitFor(
        [&] {
            auto cm = object("v1", "ConfigMap", "from-plugin");
            return cm && cm->value("/data/app"_json_pointer, "") == "plugged" &&
                   cm->value("/data/text"_json_pointer, "") == "hello";
        },
        "plugged"));
    // The status is written after the objects are applied.
    EXPECT_TRUE(
        waitFor([&] { return status("plugged").value("sourceType", "") == "Plugin"; }, "plugged"));
    EXPECT_TRUE(waitFor([&] { return status("jsonnet").value("sourceType", "") == "Directory"; },
                        "jsonnet"));

    write("plugin/input.txt", "again\n");
    commit();
    refresh("plugged");
    EXPECT_TRUE(waitFor(
        [&] {
            auto cm = object("v1", "ConfigMap", "from-plugin");
            return cm && cm->value("/data/text"_json_pointer, "") == "again";
        },
        "plugged"));
}

TEST_F(SourcesProcess, ASourceThatFailsToRenderAppliesAndPrunesNothing) {
    write("chart/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
    write("chart/values.yaml", "replicas: 1\n");
    write("chart/templates/deployment.yaml", kDeploymentTemplate);
    commit();
    startController();
    createApp("fragile", {{"source", {{"repoURL", "file://" + repo_}, {"path", "chart"}}}});
    ASSERT_TRUE(waitFor([&] { return replicas("fragile") == 1; }, "fragile"));

    write("chart/templates/broken.yaml", "{{ .Values.missing.deeper }}\n");
    write("chart/values.yaml", "replicas: 2\n");
    commit();
    refresh("fragile");
    ASSERT_TRUE(waitFor(
        [&] {
            for (const auto& c : status("fragile").value("conditions", json::array()))
                if (c.value("type", "") == "ComparisonError" &&
                    c.value("message", "").find("broken.yaml") != std::string::npos)
                    return true;
            return false;
        },
        "fragile"));
    EXPECT_EQ(replicas("fragile"), 1);  // nothing applied from the half-rendered revision
}

}  // namespace
