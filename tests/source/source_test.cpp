// Sources rendered by the real helm and kustomize through SourceService, from real git
// repositories: charts with sub-charts and Chart.lock dependencies, Helm repositories served on
// loopback (with and without basic auth), value files from a second source, Kustomize overlays
// with Argo CD's options, and every refusal (traversal, remote bases, missing tool, timeout).
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "git_http_server.h"
#include "http/http_server.h"
#include "sluice/source/service.h"
#include "tempdir/tempdir.h"
#include "test_repo.h"
#include "testutil/tools.h"

namespace sluice::source {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::TestRepo;

const char* kChartYaml = "apiVersion: v2\nname: web\nversion: 0.1.0\n";
const char* kDeployment = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  namespace: {{ .Release.Namespace }}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: "{{ .Values.image }}"
)";
const char* kConfigMap = R"(apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  port: {{ .Values.port | quote }}
  flag: {{ kindOf .Values.flag | quote }}
)";

appengine::Source parse(const json& raw) {
    std::vector<std::string> errors;
    appengine::Source s = appengine::parseSource(raw, "spec.source", errors);
    for (const auto& e : errors) ADD_FAILURE() << e;
    return s;
}

const json* findObject(const RenderedSources& r, const std::string& kind, const std::string& name) {
    for (const auto& o : r.objects)
        if (o.manifest.value("kind", "") == kind &&
            o.manifest["metadata"].value("name", "") == name)
            return &o.manifest;
    return nullptr;
}

class SourceTest : public ::testing::Test {
  protected:
    void SetUp() override {
        repo_ = std::make_unique<TestRepo>(dir_.path() / "repo");
        git_ = std::make_unique<git::LibGit2Source>(dir_.path() / "cache");
        settings_.helmPath = testing::helmPath();
        settings_.kubectlPath = testing::kubectlPath();
        settings_.workDir = dir_.path() / "work";
    }

    SourceService& service() {
        if (!service_) service_ = std::make_unique<SourceService>(*git_, settings_, hooks_);
        return *service_;
    }

    RenderedPtr render(const std::vector<appengine::Source>& sources, RenderContext ctx = {}) {
        std::vector<std::string> revisions;
        for (const auto& s : sources)
            revisions.push_back(service().resolve(s, s.targetRevision).sha);
        if (ctx.appName.empty()) ctx.appName = "demo";
        if (ctx.destinationNamespace.empty()) ctx.destinationNamespace = "prod";
        return service().render(sources, revisions, ctx);
    }
    RenderedPtr render(const appengine::Source& s) {
        return render(std::vector<appengine::Source>{s});
    }

    void writeChart(const std::string& dir) {
        repo_->write(dir + "/Chart.yaml", kChartYaml);
        repo_->write(dir + "/values.yaml", "replicas: 1\nimage: web:1\nport: 80\nflag: true\n");
        repo_->write(dir + "/templates/deployment.yaml", kDeployment);
        repo_->write(dir + "/templates/configmap.yaml", kConfigMap);
    }

    std::string renderError(const appengine::Source& s) {
        try {
            render(s);
        } catch (const std::exception& e) {
            return e.what();
        }
        return "(no error)";
    }

    testing::TempDir dir_;
    std::unique_ptr<TestRepo> repo_;
    std::unique_ptr<git::LibGit2Source> git_;
    Settings settings_;
    ServiceHooks hooks_;
    std::unique_ptr<SourceService> service_;
};

TEST(SourceTypeTest, ExplicitBlocksWinThenKustomizeThenChart) {
    appengine::Source plain;
    EXPECT_EQ(detectType(plain, {"a.yaml", "Chart.yaml"}), SourceType::Helm);
    EXPECT_EQ(detectType(plain, {"Chart.yaml", "kustomization.yaml"}), SourceType::Kustomize);
    EXPECT_EQ(detectType(plain, {"Kustomization"}), SourceType::Kustomize);
    EXPECT_EQ(detectType(plain, {"a.yaml"}), SourceType::Directory);
    appengine::Source dir = plain;
    dir.directory = true;
    EXPECT_EQ(detectType(dir, {"kustomization.yaml"}), SourceType::Directory);
    appengine::Source chart = plain;
    chart.chart = "nginx";
    EXPECT_EQ(detectType(chart, {}), SourceType::Helm);
    appengine::Source helm = plain;
    helm.helm = appengine::HelmSource{};
    EXPECT_EQ(detectType(helm, {"kustomization.yaml"}), SourceType::Helm);
}

TEST_F(SourceTest, HelmChartInGitWithValueFilesParametersAndSubChart) {
    writeChart("charts/web");
    repo_->write("charts/web/values-prod.yaml", "replicas: 3\n");
    repo_->write("charts/web/charts/sidecar/Chart.yaml",
                 "apiVersion: v2\nname: sidecar\nversion: 1.0.0\n");
    repo_->write(
        "charts/web/charts/sidecar/templates/sa.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {{ .Release.Name }}-sidecar\n");
    repo_->commit("chart");
    appengine::Source s =
        parse({{"repoURL", repo_->url()},
               {"path", "charts/web"},
               {"helm",
                {{"valueFiles", {"values-prod.yaml"}},
                 {"values", "image: web:2\n"},
                 {"parameters",
                  {{{"name", "port"}, {"value", "8080"}},
                   {{"name", "flag"}, {"value", "true"}, {"forceString", true}}}}}}});
    auto r = render(s);
    EXPECT_EQ(r->sourceTypes, std::vector<std::string>{"Helm"});
    const json* d = findObject(*r, "Deployment", "demo-web");  // release name = the app's
    ASSERT_NE(d, nullptr);
    EXPECT_EQ((*d)["spec"]["replicas"], 3);            // value file
    EXPECT_EQ((*d)["metadata"]["namespace"], "prod");  // destination namespace
    EXPECT_EQ((*d)["spec"]["template"]["spec"]["containers"][0]["image"], "web:2");  // values
    const json* cm = findObject(*r, "ConfigMap", "demo-config");
    ASSERT_NE(cm, nullptr);
    EXPECT_EQ((*cm)["data"]["port"], "8080");    // --set
    EXPECT_EQ((*cm)["data"]["flag"], "string");  // --set-string (forceString)
    EXPECT_NE(findObject(*r, "ServiceAccount", "demo-sidecar"), nullptr);  // sub-chart
    for (const auto& o : r->objects) EXPECT_NE(o.sourceFile.find("templates/"), std::string::npos);
}

TEST_F(SourceTest, DiscoveredChartAndReleaseNameAndNamespaceOverrides) {
    writeChart("app");
    repo_->commit("chart");
    appengine::Source s = parse(
        {{"repoURL", repo_->url()},
         {"path", "app"},
         {"helm",
          {{"releaseName", "rel"}, {"namespace", "other"}, {"valuesObject", {{"replicas", 5}}}}}});
    auto r = render(s);
    const json* d = findObject(*r, "Deployment", "rel-web");
    ASSERT_NE(d, nullptr);
    EXPECT_EQ((*d)["metadata"]["namespace"], "other");
    EXPECT_EQ((*d)["spec"]["replicas"], 5);
    appengine::Source discovered = parse({{"repoURL", repo_->url()}, {"path", "app"}});
    EXPECT_EQ(render(discovered)->sourceTypes, std::vector<std::string>{"Helm"});
}

TEST_F(SourceTest, ValueFilesFromARefSourceOfAnotherRepository) {
    writeChart("web");
    repo_->commit("chart");
    TestRepo values(dir_.path() / "values");
    values.write("envs/prod.yaml", "replicas: 7\n");
    values.commit("values");
    appengine::Source chart = parse({{"repoURL", repo_->url()},
                                     {"path", "web"},
                                     {"helm", {{"valueFiles", {"$values/envs/prod.yaml"}}}}});
    appengine::Source ref = parse({{"repoURL", values.url()}, {"ref", "values"}});
    auto r = render({chart, ref});
    EXPECT_EQ(r->sourceTypes, (std::vector<std::string>{"Helm", ""}));
    const json* d = findObject(*r, "Deployment", "demo-web");
    ASSERT_NE(d, nullptr);
    EXPECT_EQ((*d)["spec"]["replicas"], 7);
}

TEST_F(SourceTest, ValueFilesOutsideTheRepositoryAreRefused) {
    writeChart("web");
    repo_->commit("chart");
    for (std::string file : {"../../../../etc/passwd", "/etc/passwd"}) {
        appengine::Source s;
        s.repoURL = repo_->url();
        s.path = "web";
        s.helm = appengine::HelmSource{};
        s.helm->valueFiles = {file};
        s.raw = {{"file", file}};
        EXPECT_NE(renderError(s).find("outside the repository"), std::string::npos) << file;
    }
    appengine::Source missing = parse(
        {{"repoURL", repo_->url()}, {"path", "web"}, {"helm", {{"valueFiles", {"nope.yaml"}}}}});
    EXPECT_NE(renderError(missing).find("does not exist"), std::string::npos);
    appengine::Source ignored =
        parse({{"repoURL", repo_->url()},
               {"path", "web"},
               {"helm", {{"valueFiles", {"nope.yaml"}}, {"ignoreMissingValueFiles", true}}}});
    EXPECT_NO_THROW(render(ignored));
}

TEST_F(SourceTest, ABrokenTemplateNamesHelmAndTheFile) {
    writeChart("web");
    repo_->write("web/templates/broken.yaml", "{{ .Values.nope.deeper }}\n");
    repo_->commit("broken");
    std::string err = renderError(parse({{"repoURL", repo_->url()}, {"path", "web"}}));
    EXPECT_NE(err.find("helm template"), std::string::npos) << err;
    EXPECT_NE(err.find("broken.yaml"), std::string::npos) << err;
}

TEST_F(SourceTest, KustomizeOverlayWithArgoCdOptions) {
    repo_->write("base/kustomization.yaml", "resources: [deployment.yaml]\n");
    repo_->write("base/deployment.yaml", R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.0"}]}
)");
    repo_->write("overlays/prod/kustomization.yaml", "resources: [../../base]\n");
    repo_->write("components/extra/kustomization.yaml",
                 "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
                 "resources: [cm.yaml]\n");
    repo_->write("components/extra/cm.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n");
    repo_->commit("overlay");
    appengine::Source s = parse(
        {{"repoURL", repo_->url()},
         {"path", "overlays/prod"},
         {"kustomize",
          {{"namePrefix", "p-"},
           {"images", {"nginx=registry.local/nginx:2.0"}},
           {"commonLabels", {{"team", "a"}}},
           {"namespace", "shop"},
           {"replicas", {{{"name", "web"}, {"count", 4}}}},
           {"components", {"../../components/extra"}},
           {"patches",
            {{{"target", {{"kind", "Deployment"}}},
              {"patch",
               "- op: add\n  path: /metadata/annotations\n  value: {patched: \"yes\"}\n"}}}}}}});
    auto r = render(s);
    EXPECT_EQ(r->sourceTypes, std::vector<std::string>{"Kustomize"});
    const json* d = findObject(*r, "Deployment", "p-web");
    ASSERT_NE(d, nullptr) << r->objects.size();
    EXPECT_EQ((*d)["metadata"]["namespace"], "shop");
    EXPECT_EQ((*d)["spec"]["replicas"], 4);
    EXPECT_EQ((*d)["metadata"]["labels"]["team"], "a");
    EXPECT_EQ((*d)["metadata"]["annotations"]["patched"], "yes");
    EXPECT_EQ((*d)["spec"]["template"]["spec"]["containers"][0]["image"],
              "registry.local/nginx:2.0");
    EXPECT_NE(findObject(*r, "ConfigMap", "p-extra"), nullptr);
    // The shared tree is untouched: a plain build still gives the original names.
    auto plain = render(parse({{"repoURL", repo_->url()}, {"path", "overlays/prod"}}));
    EXPECT_NE(findObject(*plain, "Deployment", "web"), nullptr);
}

TEST_F(SourceTest, KustomizeRefusesRemoteBasesAndPathsOutsideTheRepository) {
    repo_->write("remote/kustomization.yaml",
                 "resources:\n  - https://github.com/example/repo//base?ref=v1\n");
    repo_->write("escape/kustomization.yaml", "resources: [../../../../etc]\n");
    repo_->commit("bad");
    std::string remote = renderError(parse({{"repoURL", repo_->url()}, {"path", "remote"}}));
    EXPECT_NE(remote.find("remote base"), std::string::npos) << remote;
    std::string escape = renderError(parse({{"repoURL", repo_->url()}, {"path", "escape"}}));
    EXPECT_NE(escape.find("outside the repository"), std::string::npos) << escape;
}

TEST_F(SourceTest, SymlinksOutOfTheRepositoryRefuseTheRender) {
    writeChart("web");
    repo_->symlink("web/values-link.yaml", "../../../../etc/passwd");
    repo_->commit("link");
    std::string err = renderError(parse({{"repoURL", repo_->url()}, {"path", "web"}}));
    EXPECT_NE(err.find("outside the repository"), std::string::npos) << err;
}

TEST_F(SourceTest, AnObjectAboveTheApiServersSizeLimitIsRefused) {
    repo_->write("big/Chart.yaml", kChartYaml);
    repo_->write("big/templates/cm.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: huge}\n"
                 "data: {blob: {{ repeat 2000000 \"x\" | quote }}}\n");
    repo_->commit("big");
    std::string err = renderError(parse({{"repoURL", repo_->url()}, {"path", "big"}}));
    EXPECT_NE(err.find("ConfigMap huge"), std::string::npos) << err.substr(0, 300);
    EXPECT_NE(err.find("1.5 MiB"), std::string::npos) << err.substr(0, 300);
    EXPECT_NE(err.find("templates/cm.yaml"), std::string::npos) << err.substr(0, 300);
}

TEST_F(SourceTest, AMissingToolIsAClearError) {
    writeChart("web");
    repo_->commit("chart");
    settings_.helmPath = (dir_.path() / "no-such" / "helm").string();
    std::string err = renderError(parse({{"repoURL", repo_->url()}, {"path", "web"}}));
    EXPECT_NE(err.find("helm not found at " + settings_.helmPath), std::string::npos) << err;
}

TEST_F(SourceTest, ARenderThatRunsTooLongIsKilled) {
    writeChart("web");
    repo_->commit("chart");
    const fs::path slow = dir_.path() / "slow-helm";
    std::ofstream(slow) << "#!/bin/sh\n[ \"$1\" = version ] && { echo v0; exit 0; }\nsleep 30\n";
    fs::permissions(slow, fs::perms::owner_all);
    settings_.helmPath = slow.string();
    settings_.timeout = std::chrono::milliseconds(500);
    const auto start = std::chrono::steady_clock::now();
    std::string err = renderError(parse({{"repoURL", repo_->url()}, {"path", "web"}}));
    EXPECT_NE(err.find("timed out"), std::string::npos) << err;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(SourceTest, ToolsSeeNoneOfTheControllersEnvironment) {
    writeChart("web");
    repo_->commit("chart");
    // A stand-in helm that reports what it sees (the real helm has no env function).
    const fs::path spy = dir_.path() / "spy-helm";
    std::ofstream(spy) << "#!/bin/sh\n[ \"$1\" = version ] && { echo v0; exit 0; }\n"
                          "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: env}\\n"
                          "data: {token: \"%s\", k8s: \"%s\", home: \"%s\"}\\n' "
                          "\"$SLUICE_TEST_SECRET\" \"$KUBERNETES_SERVICE_HOST\" \"$HOME\"\n";
    fs::permissions(spy, fs::perms::owner_all);
    settings_.helmPath = spy.string();
    setenv("SLUICE_TEST_SECRET", "leaked", 1);
    setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
    auto r = render(parse({{"repoURL", repo_->url()}, {"path", "web"}}));
    unsetenv("SLUICE_TEST_SECRET");
    unsetenv("KUBERNETES_SERVICE_HOST");
    const json* cm = findObject(*r, "ConfigMap", "env");
    ASSERT_NE(cm, nullptr);
    EXPECT_EQ((*cm)["data"]["token"], "");
    EXPECT_EQ((*cm)["data"]["k8s"], "");
    EXPECT_NE((*cm)["data"]["home"].get<std::string>().find(settings_.workDir.string()),
              std::string::npos);
}

TEST_F(SourceTest, TheSameSourceAtOneCommitRendersOnce) {
    writeChart("web");
    repo_->commit("chart");
    appengine::Source s = parse({{"repoURL", repo_->url()}, {"path", "web"}});
    auto first = render(s);
    auto second = render(s);
    EXPECT_EQ(first.get(), second.get());
    EXPECT_EQ(service().renders(), 1u);
    RenderContext other;
    other.appName = "another";
    render({s}, other);  // another release name: another render
    EXPECT_EQ(service().renders(), 2u);

    // With the release name given, Applications that differ in name share one render.
    appengine::Source named =
        parse({{"repoURL", repo_->url()}, {"path", "web"}, {"helm", {{"releaseName", "shared"}}}});
    for (const char* app : {"a", "b", "c"}) {
        RenderContext ctx;
        ctx.appName = app;
        EXPECT_NE(findObject(*render({named}, ctx), "Deployment", "shared-web"), nullptr);
    }
    EXPECT_EQ(service().renders(), 3u);
}

// Two controllers may share a --render-dir: neither removes the other's trees.
TEST_F(SourceTest, TwoServicesShareARenderDirectory) {
    writeChart("web");
    repo_->commit("chart");
    appengine::Source s = parse({{"repoURL", repo_->url()}, {"path", "web"}});
    const std::string sha = service().resolve(s, "").sha;
    SourceService other(*git_, settings_, hooks_);
    RenderContext ctx;
    ctx.appName = "demo";
    EXPECT_EQ(other.render({s}, {sha}, ctx)->objects.size(), 2u);
    ctx.appName = "again";  // another render key: a render of its own, after `other` started
    EXPECT_EQ(service().render({s}, {sha}, ctx)->objects.size(), 2u);
}

// A Helm repository on loopback: `helm package` + `helm repo index`, served over HTTP,
// optionally behind basic auth.
class HelmRepoTest : public SourceTest {
  protected:
    void packageChart(const std::string& version, int replicas) {
        const fs::path src = dir_.path() / ("src-" + version) / "web";
        fs::create_directories(src / "templates");
        std::ofstream(src / "Chart.yaml")
            << "apiVersion: v2\nname: web\nversion: " << version << "\n";
        std::ofstream(src / "values.yaml") << "replicas: " << replicas << "\nimage: web:1\n";
        std::ofstream(src / "templates/deployment.yaml") << kDeployment;
        runHelm({"package", src.string(), "-d", (dir_.path() / "repo-www").string()});
        runHelm({"repo", "index", (dir_.path() / "repo-www").string()});
    }
    void runHelm(const std::vector<std::string>& args) {
        std::string cmd = "HOME='" + dir_.path().string() + "' '" + testing::helmPath() + "'";
        for (const auto& a : args) cmd += " '" + a + "'";
        testing::sh(dir_.path(), cmd);
    }
    void serve(const std::string& user = "", const std::string& password = "") {
        server_.start(
            [this, user, password](const testing::HttpRequest& req, testing::ResponseWriter& w) {
                if (!user.empty() && req.header("authorization") !=
                                         "Basic " + testing::base64Encode(user + ":" + password)) {
                    w.respond(401, {{"WWW-Authenticate", "Basic realm=\"charts\""}}, "");
                    return;
                }
                std::ifstream f(dir_.path() / "repo-www" / req.path.substr(1), std::ios::binary);
                if (!f) return w.respond(404, {}, "not found");
                w.respond(200, {}, std::string(std::istreambuf_iterator<char>(f), {}));
            });
    }
    testing::HttpServer server_{testing::HttpServerOptions{}};
};

TEST_F(HelmRepoTest, ChartFromAHelmRepositoryByExactVersionAndRange) {
    packageChart("1.0.0", 1);
    packageChart("1.2.0", 2);
    packageChart("2.0.0", 3);
    serve();
    appengine::Source exact =
        parse({{"repoURL", server_.url()}, {"chart", "web"}, {"targetRevision", "1.0.0"}});
    EXPECT_EQ(service().resolve(exact, "1.0.0").sha, "1.0.0");
    EXPECT_EQ((*findObject(*render(exact), "Deployment", "demo-web"))["spec"]["replicas"], 1);
    appengine::Source range =
        parse({{"repoURL", server_.url()}, {"chart", "web"}, {"targetRevision", "^1.0.0"}});
    EXPECT_EQ(service().resolve(range, "^1.0.0").sha, "1.2.0");
    EXPECT_EQ((*findObject(*render(range), "Deployment", "demo-web"))["spec"]["replicas"], 2);
    appengine::Source latest = parse({{"repoURL", server_.url()}, {"chart", "web"}});
    EXPECT_EQ(service().resolve(latest, "").sha, "2.0.0");
    appengine::Source missing =
        parse({{"repoURL", server_.url()}, {"chart", "web"}, {"targetRevision", "9.9.9"}});
    EXPECT_THROW(service().resolve(missing, "9.9.9"), git::GitError);
}

TEST_F(HelmRepoTest, BasicAuthCredentialsFromTheHooks) {
    packageChart("1.0.0", 1);
    serve("chartuser", "s3cret");
    appengine::Source s =
        parse({{"repoURL", server_.url()}, {"chart", "web"}, {"targetRevision", "1.0.0"}});
    try {
        service().resolve(s, "1.0.0");
        FAIL() << "pulled without credentials";
    } catch (const git::GitError& e) {
        EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos);
    }
    hooks_.helmCredentials = [](const std::string&) {
        HelmCredentials c;
        c.username = "chartuser";
        c.password = "s3cret";
        return c;
    };
    service_.reset();
    EXPECT_EQ(service().resolve(s, "1.0.0").sha, "1.0.0");
    EXPECT_NE(findObject(*render(s), "Deployment", "demo-web"), nullptr);
}

TEST_F(HelmRepoTest, ChartLockDependenciesAreFetchedFromTheirRepository) {
    packageChart("1.0.0", 2);
    serve();
    repo_->write("umbrella/Chart.yaml",
                 "apiVersion: v2\nname: umbrella\nversion: 0.1.0\ndependencies:\n"
                 "  - name: web\n    version: 1.0.0\n    repository: " +
                     server_.url() + "\n");
    repo_->write("umbrella/templates/cm.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: umbrella}\n");
    repo_->commit("umbrella");
    auto r = render(parse({{"repoURL", repo_->url()}, {"path", "umbrella"}}));
    EXPECT_NE(findObject(*r, "ConfigMap", "umbrella"), nullptr);
    const json* d = findObject(*r, "Deployment", "demo-web");
    ASSERT_NE(d, nullptr);
    EXPECT_EQ((*d)["spec"]["replicas"], 2);
}

TEST_F(HelmRepoTest, ChartLockDependenciesFromAPrivateRepositoryUseItsSecret) {
    packageChart("1.0.0", 4);
    serve("depuser", "dep-pass");
    repo_->write("umbrella/Chart.yaml",
                 "apiVersion: v2\nname: umbrella\nversion: 0.1.0\ndependencies:\n"
                 "  - name: web\n    version: 1.0.0\n    repository: " +
                     server_.url() + "\n");
    repo_->commit("umbrella");
    const appengine::Source s = parse({{"repoURL", repo_->url()}, {"path", "umbrella"}});
    const std::string refused = renderError(s);  // no credentials: 401
    EXPECT_NE(refused, "(no error)");
    EXPECT_EQ(refused.find("dep-pass"), std::string::npos);
    hooks_.helmCredentials = [this](const std::string& url) {
        HelmCredentials c;
        if (url == server_.url()) {
            c.username = "depuser";
            c.password = "dep-pass";
        }
        return c;
    };
    service_.reset();
    const json* d = findObject(*render(s), "Deployment", "demo-web");
    ASSERT_NE(d, nullptr);
    EXPECT_EQ((*d)["spec"]["replicas"], 4);
}

TEST_F(HelmRepoTest, KustomizeHelmChartsWithEnableHelm) {
    packageChart("1.0.0", 6);
    serve();
    repo_->write("inflate/kustomization.yaml",
                 "helmCharts:\n  - name: web\n    repo: " + server_.url() +
                     "\n    version: 1.0.0\n    releaseName: inflated\n");
    repo_->commit("helmCharts");
    settings_.kustomizeBuildOptions = {"--enable-helm"};
    auto r = render(parse({{"repoURL", repo_->url()}, {"path", "inflate"}}));
    const json* d = findObject(*r, "Deployment", "inflated-web");
    ASSERT_NE(d, nullptr) << r->objects.size();
    EXPECT_EQ((*d)["spec"]["replicas"], 6);
}

}  // namespace
}  // namespace sluice::source
