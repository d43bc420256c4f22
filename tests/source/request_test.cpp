// One render of an Application's sources as the controller and `kubectl sluice` build it: the
// context from the Application and its destination cluster, the key the render is cached under,
// and the rendered objects readied for compare.
#include <gtest/gtest.h>

#include "sluice/appengine/spec.h"
#include "sluice/git/fake_source.h"
#include "sluice/source/service.h"
#include "tempdir/tempdir.h"
#include "test_repo.h"

namespace sluice::source {
namespace {

using nlohmann::json;

const char* kRepo = "https://git.example.com/org/app.git";
const char* kConfigMap = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n";

appengine::ApplicationSpec specOf(const json& source, const std::string& destinationNamespace) {
    const json application = {
        {"apiVersion", "argoproj.io/v1alpha1"},
        {"kind", "Application"},
        {"metadata", {{"name", "web"}, {"namespace", "apps"}}},
        {"spec",
         {{"project", "default"},
          {"source", source},
          {"destination",
           {{"server", "https://kubernetes.default.svc"}, {"namespace", destinationNamespace}}}}}};
    appengine::ParseResult parsed = appengine::parseApplication(application);
    for (const auto& e : parsed.errors) ADD_FAILURE() << e;
    return parsed.spec;
}

class RenderRequestTest : public ::testing::Test {
  protected:
    RenderRequestTest() {
        sha_ = git_.commit(kRepo, {{"app/settings.yaml", kConfigMap}});
        settings_.helmPath = dir_.path() / "no-helm";  // tool versions: "unknown"
        settings_.kubectlPath = dir_.path() / "no-kubectl";
        settings_.workDir = dir_.path() / "work";
        service_ = std::make_unique<SourceService>(git_, settings_, ServiceHooks{});
    }

    testing::TempDir dir_;
    git::FakeGitSource git_;
    Settings settings_;
    std::unique_ptr<SourceService> service_;
    std::string sha_;
    const ClusterVersions cluster_{"v1.32.3-gke.1", {"v1", "apps/v1"}};
};

TEST_F(RenderRequestTest, ContextFromTheApplicationAndItsDestination) {
    const appengine::ApplicationSpec spec = specOf({{"repoURL", kRepo}, {"path", "app"}}, "prod");
    const RenderRequest r = service_->request("web", "apps", spec, {sha_}, cluster_);
    EXPECT_EQ(&r.sources, &spec.sources);
    EXPECT_EQ(r.revisions, std::vector<std::string>{sha_});
    EXPECT_EQ(r.context.appName, "web");
    EXPECT_EQ(r.context.appNamespace, "apps");
    EXPECT_EQ(r.context.destinationNamespace, "prod");
    EXPECT_EQ(r.context.kubeVersion, "1.32.3");
    EXPECT_EQ(r.context.apiVersions, (std::vector<std::string>{"v1", "apps/v1"}));
    EXPECT_TRUE(r.context.revision.empty()) << "each source's revision is set at its render";
    EXPECT_EQ(r.key, service_->cacheKey(spec.sources, r.revisions, r.context));

    // A server that has not said: the tools' defaults.
    const RenderRequest unknown = service_->request("web", "apps", spec, {sha_}, {});
    EXPECT_TRUE(unknown.context.kubeVersion.empty());
    EXPECT_TRUE(unknown.context.apiVersions.empty());
}

TEST_F(RenderRequestTest, TheKeyHoldsWhatTheRenderReads) {
    // A directory of plain manifests reads nothing of the context: Applications share its
    // render. An undetected type may read all of it.
    const json directory = {{"repoURL", kRepo}, {"path", "app"}, {"directory", json::object()}};
    const appengine::ApplicationSpec plain = specOf(directory, "prod");
    const std::string key = service_->request("web", "apps", plain, {sha_}, cluster_).key;
    EXPECT_EQ(service_->request("api", "other", specOf(directory, "staging"), {sha_}, {}).key, key);
    const appengine::ApplicationSpec undetected =
        specOf({{"repoURL", kRepo}, {"path", "app"}}, "prod");
    EXPECT_NE(service_->request("web", "apps", undetected, {sha_}, cluster_).key,
              service_->request("web", "apps", undetected, {sha_}, {}).key);
    EXPECT_NE(service_->request("web", "apps", plain, {"another-sha"}, cluster_).key, key);

    // A chart takes its release name from the Application and its namespace from the
    // destination, unless it names them.
    const appengine::ApplicationSpec helm =
        specOf({{"repoURL", kRepo}, {"path", "app"}, {"helm", json::object()}}, "prod");
    const std::string helmKey = service_->request("web", "apps", helm, {sha_}, cluster_).key;
    EXPECT_NE(service_->request("api", "apps", helm, {sha_}, cluster_).key, helmKey);
    EXPECT_NE(service_->request("web", "apps", helm, {sha_}, {}).key, helmKey);
    EXPECT_NE(service_
                  ->request("web", "apps",
                            specOf({{"repoURL", kRepo}, {"path", "app"}, {"helm", json::object()}},
                                   "staging"),
                            {sha_}, cluster_)
                  .key,
              helmKey);
    const appengine::ApplicationSpec named = specOf({{"repoURL", kRepo},
                                                     {"path", "app"},
                                                     {"helm",
                                                      {{"releaseName", "shared"},
                                                       {"namespace", "shared"},
                                                       {"kubeVersion", "1.30.0"},
                                                       {"apiVersions", json::array({"v1"})}}}},
                                                    "prod");
    EXPECT_EQ(service_->request("api", "other", named, {sha_}, {}).key,
              service_->request("web", "apps", named, {sha_}, cluster_).key);
}

TEST_F(RenderRequestTest, RendersOnceUnderItsKeyAndIsPreparedForItsDestination) {
    const appengine::ApplicationSpec spec = specOf({{"repoURL", kRepo}, {"path", "app"}}, "prod");
    const RenderRequest r = service_->request("web", "apps", spec, {sha_}, cluster_);
    RenderedPtr rendered = service_->render(r);
    ASSERT_EQ(rendered->objects.size(), 1u);
    EXPECT_EQ(rendered->sourceTypes, std::vector<std::string>{"Directory"});
    EXPECT_EQ(service_->render(r.sources, r.revisions, r.context).get(), rendered.get());
    EXPECT_EQ(service_->renders(), 1u);

    auto namespaced = [](const std::string&, const std::string&) -> std::optional<bool> {
        return true;
    };
    appengine::PreparedObjects prepared =
        prepareRendered(rendered->objects, "prod", "web", namespaced);
    EXPECT_TRUE(prepared.errors.empty());
    ASSERT_EQ(prepared.objects.size(), 1u);
    EXPECT_EQ(prepared.objects[0]["metadata"]["namespace"], "prod");

    // Problems name the file and line they come from.
    auto unknown = [](const std::string&, const std::string&) -> std::optional<bool> {
        return std::nullopt;
    };
    prepared = prepareRendered(rendered->objects, "prod", "web", unknown);
    ASSERT_EQ(prepared.errors.size(), 1u);
    EXPECT_EQ(prepared.errors[0].rfind("app/settings.yaml:1", 0), 0u) << prepared.errors[0];
}

}  // namespace
}  // namespace sluice::source
