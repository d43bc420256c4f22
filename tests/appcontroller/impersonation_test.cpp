// AppProject destinationServiceAccounts (Argo CD's sync with impersonation) against the API test
// server with RBAC on: the sync's writes (dry run, apply) go as the service account the project
// names for the destination, and that account's RBAC decides what is applied.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace sluice::apptest {
namespace {

using ::testing::HasSubstr;

const std::string kDeployer = "system:serviceaccount:demo:deployer";

std::string secretYaml(const std::string& name) {
    return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name +
           "\ntype: Opaque\ndata:\n  password: c2VjcmV0\n";
}

class ImpersonationTest : public ControllerTest {
  protected:
    testing::ApiServerOptions serverOptions() override {
        auto o = ControllerTest::serverOptions();
        o.authorize = true;  // the controller's token is a superuser's; impersonated users are not
        return o;
    }
    void SetUp() override {
        ControllerTest::SetUp();
        server_->createFromFile(testing::sourcePath("crds/sluice.io_appprojects.yaml"));
        // demo:deployer may manage ConfigMaps in demo, and nothing else.
        server_->create({{"apiVersion", "v1"},
                         {"kind", "ServiceAccount"},
                         {"metadata", {{"name", "deployer"}, {"namespace", kDestNs}}}});
        server_->create(
            {{"apiVersion", "rbac.authorization.k8s.io/v1"},
             {"kind", "Role"},
             {"metadata", {{"name", "configmaps"}, {"namespace", kDestNs}}},
             {"rules",
              {{{"apiGroups", {""}},
                {"resources", {"configmaps"}},
                {"verbs", {"get", "list", "watch", "create", "update", "patch", "delete"}}}}}});
        server_->create(
            {{"apiVersion", "rbac.authorization.k8s.io/v1"},
             {"kind", "RoleBinding"},
             {"metadata", {{"name", "deployer-configmaps"}, {"namespace", kDestNs}}},
             {"roleRef",
              {{"apiGroup", "rbac.authorization.k8s.io"},
               {"kind", "Role"},
               {"name", "configmaps"}}},
             {"subjects",
              {{{"kind", "ServiceAccount"}, {"name", "deployer"}, {"namespace", kDestNs}}}}});
        git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")},
                            {"app/secret.yaml", secretYaml("creds")}});
    }
    void createProject(const std::string& name, const json& serviceAccounts) {
        json spec = {{"sourceRepos", {"*"}},
                     {"destinations", {{{"server", "*"}, {"namespace", "*"}}}}};
        if (!serviceAccounts.is_null()) spec["destinationServiceAccounts"] = serviceAccounts;
        ControllerTest::createProject(name, spec);
    }
    json inProject(const std::string& name, const std::string& project, json syncPolicy) {
        json a = application(name, "app", std::move(syncPolicy));
        a["spec"]["project"] = project;
        return a;
    }
    bool finished(const std::string& app) {
        return eventually([&] {
            const std::string phase = statusAt(app, "/operationState/phase");
            return phase == "Failed" || phase == "Error" || phase == "Succeeded";
        });
    }
    json resultFor(const std::string& app, const std::string& kind) {
        json resources = status(app)["operationState"]["syncResult"]["resources"];
        if (resources.is_string()) resources = json::parse(resources.get<std::string>());
        for (const json& r : resources)
            if (r.value("kind", "") == kind) return r;
        ADD_FAILURE() << "no result for " << kind << ": " << status(app).dump(2);
        return json::object();
    }
    // The writes (apply) of `resource` the server saw, with their user.
    std::vector<testing::AuditEvent> applies(const std::string& resource) {
        std::vector<testing::AuditEvent> out;
        for (const auto& e : server_->auditLog())
            if (e.resource == resource && e.verb == "patch") out.push_back(e);
        return out;
    }
    static json deployerFor(const std::string& server, const std::string& ns) {
        return json::array(
            {{{"server", server}, {"namespace", ns}, {"defaultServiceAccount", "deployer"}}});
    }
};

TEST_F(ImpersonationTest, WritesGoAsTheServiceAccountAndItsRbacDecides) {
    createProject("team", deployerFor("https://kubernetes.default.svc", "de*"));
    startController(defaultOptions());
    json policy = automated();
    policy["syncOptions"] = {"Validate=false"};  // no dry run: each object is applied
    server_->create(inProject("app", "team", policy));
    ASSERT_TRUE(finished("app")) << status("app").dump(2);
    EXPECT_EQ(statusAt("app", "/operationState/phase"), "Failed") << status("app").dump(2);
    // The ConfigMap was applied as demo:deployer; the Secret is its 403.
    EXPECT_TRUE(object("v1", "ConfigMap", "settings"));
    EXPECT_FALSE(object("v1", "Secret", "creds"));
    EXPECT_EQ(resultFor("app", "ConfigMap").value("status", ""), "Synced");
    const json secret = resultFor("app", "Secret");
    EXPECT_EQ(secret.value("status", ""), "SyncFailed");
    EXPECT_THAT(secret.value("message", ""),
                HasSubstr("secrets \"creds\" is forbidden: User \"" + kDeployer +
                          "\" cannot patch resource \"secrets\" in API group \"\" in the "
                          "namespace \"demo\""));
    EXPECT_THAT(statusAt("app", "/operationState/message"), HasSubstr("forbidden"));
    // The server saw both applies from the service account, impersonated by the controller.
    auto cm = applies("configmaps");
    ASSERT_FALSE(cm.empty());
    for (const auto& e : cm) {
        EXPECT_EQ(e.user, kDeployer);
        EXPECT_EQ(e.impersonatedBy, "admin");
        EXPECT_TRUE(e.allowed);
    }
    auto sec = applies("secrets");
    ASSERT_FALSE(sec.empty());
    EXPECT_EQ(sec.front().user, kDeployer);
    EXPECT_FALSE(sec.front().allowed);
}

TEST_F(ImpersonationTest, TheDryRunIsImpersonatedToo) {
    createProject("team", deployerFor("*", "demo"));
    startController(defaultOptions());
    server_->create(inProject("app", "team", automated()));
    ASSERT_TRUE(finished("app")) << status("app").dump(2);
    EXPECT_EQ(statusAt("app", "/operationState/phase"), "Failed");
    EXPECT_THAT(statusAt("app", "/operationState/message"),
                HasSubstr("failed validation (dry run), nothing was applied"));
    EXPECT_THAT(resultFor("app", "Secret").value("message", ""), HasSubstr("is forbidden"));
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
    EXPECT_FALSE(object("v1", "Secret", "creds"));
    for (const auto& e : applies("secrets")) EXPECT_EQ(e.user, kDeployer);
}

TEST_F(ImpersonationTest, NoMatchingItemFailsTheSyncAsArgoCD) {
    createProject("team", deployerFor("https://kubernetes.default.svc", "other"));
    startController(defaultOptions());
    server_->create(inProject("app", "team", automated()));
    ASSERT_TRUE(finished("app")) << status("app").dump(2);
    EXPECT_EQ(statusAt("app", "/operationState/phase"), "Failed");
    EXPECT_EQ(statusAt("app", "/operationState/message"),
              "failed to find a matching service account to impersonate: no matching service "
              "account found for destination server https://kubernetes.default.svc and "
              "namespace demo");
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
    EXPECT_TRUE(applies("configmaps").empty());
    EXPECT_TRUE(applies("secrets").empty());
}

TEST_F(ImpersonationTest, WithoutServiceAccountsTheControllerSyncsAsItself) {
    createProject("team", json());
    startController(defaultOptions());
    server_->create(inProject("app", "team", automated()));
    ASSERT_TRUE(eventually([&] { return statusAt("app", "/operationState/phase") == "Succeeded"; }))
        << status("app").dump(2);
    EXPECT_TRUE(object("v1", "ConfigMap", "settings"));
    EXPECT_TRUE(object("v1", "Secret", "creds"));
    auto sec = applies("secrets");
    ASSERT_FALSE(sec.empty());
    for (const auto& e : sec) {
        EXPECT_EQ(e.user, "admin");
        EXPECT_EQ(e.impersonatedBy, "");
    }
}

}  // namespace
}  // namespace sluice::apptest
