// Applications deploying to other clusters named by cluster Secrets (Argo CD's format): each
// remote cluster is another in-process API server with its own credentials.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "harness.h"
#include "http/certs.h"
#include "sluice/util/base64.h"

namespace sluice::apptest {
namespace {

// A cluster Secret as Argo CD's documentation writes it (data base64, config JSON).
json clusterSecret(const std::string& secretName, const std::string& clusterName,
                   const std::string& server, const json& config,
                   const std::string& namespaces = "") {
    json data = {{"name", base64Encode(clusterName)},
                 {"server", base64Encode(server)},
                 {"config", base64Encode(config.dump())}};
    if (!namespaces.empty()) data["namespaces"] = base64Encode(namespaces);
    return {{"apiVersion", "v1"},
            {"kind", "Secret"},
            {"metadata",
             {{"name", secretName},
              {"namespace", kControlNs},
              {"labels", {{"argocd.argoproj.io/secret-type", "cluster"}}}}},
            {"type", "Opaque"},
            {"data", data}};
}

class RemoteClustersTest : public ControllerTest {
  protected:
    void SetUp() override {
        ControllerTest::SetUp();
        // east: bearer tokens (two, so one can be revoked and the other rotated in).
        testing::ApiServerOptions eo = serverOptions();
        eo.tokens = {"east-token-1", "east-token-2"};
        east_ = std::make_unique<testing::ApiServer>(eo);
        east_->start();
        // west: client certificates only (mTLS).
        clientCa_ = testing::generateCa("west-client-ca");
        testing::ApiServerOptions wo = serverOptions();
        wo.tokens = {};
        wo.clientCaPem = clientCa_.certPem;
        west_ = std::make_unique<testing::ApiServer>(wo);
        west_->start();
        for (auto* s : {east_.get(), west_.get()}) s->create(testing::namespaceObject(kDestNs));
    }
    void TearDown() override {
        controller_.reset();
        if (east_) east_->stop();
        if (west_) west_->stop();
        ControllerTest::TearDown();
    }

    json eastConfig(const std::string& token) const {
        return {{"bearerToken", token},
                {"tlsClientConfig", {{"caData", base64Encode(east_->caPem())}}}};
    }
    json westConfig() const {
        const auto cert =
            testing::issueCertificate(clientCa_, "sluice", {}, true, "system:masters");
        return {{"tlsClientConfig",
                 {{"caData", base64Encode(west_->caPem())},
                  {"certData", base64Encode(cert.certPem)},
                  {"keyData", base64Encode(cert.keyPem)}}}};
    }
    static json toCluster(json app, const std::string& key, const std::string& value) {
        app["spec"]["destination"] = {{key, value}, {"namespace", kDestNs}};
        return app;
    }
    static std::optional<json> remoteConfigMap(testing::ApiServer& s, const std::string& name) {
        return s.get("v1", "ConfigMap", kDestNs, name);
    }

    testing::KeyPair clientCa_;
    std::unique_ptr<testing::ApiServer> east_, west_;
};

TEST_F(RemoteClustersTest, DeploysToEachClusterByNameOrServerWithItsCredentials) {
    git_.commit(kRepo, {{"east/config.yaml", configMapYaml("east-settings", "a")},
                        {"west/config.yaml", configMapYaml("west-settings", "b")}});
    server_->create(
        clusterSecret("cluster-east", "east", east_->url(), eastConfig("east-token-1")));
    server_->create(clusterSecret("cluster-west", "west", west_->url() + "/", westConfig()));
    startController(defaultOptions());
    server_->create(toCluster(application("to-east", "east", automated()), "name", "east"));
    server_->create(toCluster(application("to-west", "west", automated()), "server", west_->url()));

    ASSERT_TRUE(eventually([&] { return statusAt("to-east", "/sync/status") == "Synced"; }))
        << status("to-east").dump(2);
    ASSERT_TRUE(eventually([&] { return statusAt("to-west", "/sync/status") == "Synced"; }))
        << status("to-west").dump(2);
    EXPECT_TRUE(remoteConfigMap(*east_, "east-settings")) << "token";
    EXPECT_TRUE(remoteConfigMap(*west_, "west-settings")) << "client certificate";
    EXPECT_FALSE(object("v1", "ConfigMap", "east-settings")) << "nothing in the local cluster";
    EXPECT_FALSE(remoteConfigMap(*west_, "east-settings"));

    // What the controller sees of each cluster (kubectl sluice cluster, /metrics).
    std::map<std::string, appcontroller::ClusterState> seen;
    for (auto& c : controller_->clusters()) seen[c.name] = c;
    ASSERT_EQ(seen.size(), 3u) << "east, west and in-cluster";
    EXPECT_EQ(seen["east"].connectionState, "Successful");
    EXPECT_EQ(seen["east"].applications, std::vector<std::string>{"sluice/to-east"});
    EXPECT_EQ(seen["east"].secret, "cluster-east");
    EXPECT_GE(seen["east"].cachedObjects, 1u);
    EXPECT_FALSE(seen["east"].serverVersion.empty());
    EXPECT_EQ(seen["west"].server, west_->url()) << "without the trailing slash";
    EXPECT_EQ(seen["in-cluster"].connectionState, "Unknown") << "no Application targets it";
    // ... and publishes in a ConfigMap of the control namespace for the plugin.
    ASSERT_TRUE(eventually(
        [&] { return object("v1", "ConfigMap", "sluice-clusters", kControlNs).has_value(); }, 30s));
    json published = json::parse(
        at(*object("v1", "ConfigMap", "sluice-clusters", kControlNs), "/data/cluster-east"));
    EXPECT_EQ(published["connectionState"], "Successful");
    EXPECT_EQ(published["applications"], json::array({"sluice/to-east"}));

    // Drift on a remote cluster is seen through its own watch and shows as OutOfSync.
    json drifted = *remoteConfigMap(*east_, "east-settings");
    drifted["data"]["value"] = "by hand";
    kube::ClusterConfig ec;
    ec.server = east_->url();
    ec.caPem = east_->caPem();
    ec.token = "east-token-1";
    kube::RestClient eastClient(ec);
    eastClient.update(drifted);
    EXPECT_TRUE(eventually([&] { return statusAt("to-east", "/sync/status") == "OutOfSync"; }))
        << status("to-east").dump(2);

    // Pruning on the remote cluster.
    git_.commit(kRepo, {{"east/other.yaml", configMapYaml("east-other", "c")},
                        {"west/config.yaml", configMapYaml("west-settings", "b")}});
    controller_->refresh(kControlNs, "to-east");
    EXPECT_TRUE(eventually([&] {
        return remoteConfigMap(*east_, "east-other") && !remoteConfigMap(*east_, "east-settings");
    })) << status("to-east").dump(2);
}

TEST_F(RemoteClustersTest, AnUnknownClusterIsAnInvalidSpecAndNothingIsApplied) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")}});
    startController(defaultOptions());
    server_->create(toCluster(application("lost", "app", automated()), "name", "prod-east"));
    ASSERT_TRUE(eventually([&] {
        return status("lost").dump().find(
                   "unable to find destination server: there are no clusters with this name: "
                   "prod-east") != std::string::npos;
    })) << status("lost").dump(2);
    EXPECT_EQ(statusAt("lost", "/conditions/0/type"), "InvalidSpecError");
    EXPECT_EQ(statusAt("lost", "/sync/status"), "Unknown");
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));

    // The Secret arrives: the same Application deploys there.
    server_->create(
        clusterSecret("cluster-east", "prod-east", east_->url(), eastConfig("east-token-1")));
    EXPECT_TRUE(eventually([&] { return statusAt("lost", "/sync/status") == "Synced"; }))
        << status("lost").dump(2);
    EXPECT_TRUE(remoteConfigMap(*east_, "settings"));
    EXPECT_FALSE(object("v1", "ConfigMap", "settings"));
}

TEST_F(RemoteClustersTest, AClusterDownIsAComparisonErrorUntilItIsBack) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")},
                        {"local/config.yaml", configMapYaml("local-settings", "l")}});
    server_->create(
        clusterSecret("cluster-east", "east", east_->url(), eastConfig("east-token-1")));
    startController(defaultOptions());
    server_->create(toCluster(application("remote", "app", automated()), "name", "east"));
    server_->create(application("local", "local", automated()));
    ASSERT_TRUE(eventually([&] { return statusAt("remote", "/sync/status") == "Synced"; }));

    std::thread outage([&] { east_->restart(4s); });
    EXPECT_TRUE(eventually([&] {
        return status("remote").dump().find("is unreachable") != std::string::npos;
    })) << status("remote").dump(2);
    EXPECT_EQ(statusAt("remote", "/sync/status"), "Unknown");
    // The other Applications carry on.
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")},
                        {"local/config.yaml", configMapYaml("local-settings", "l2")}});
    controller_->refresh(kControlNs, "local");
    EXPECT_TRUE(eventually([&] {
        auto cm = object("v1", "ConfigMap", "local-settings");
        return cm && at(*cm, "/data/value") == "l2";
    }));
    outage.join();

    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "b")},
                        {"local/config.yaml", configMapYaml("local-settings", "l2")}});
    controller_->refresh(kControlNs, "remote");
    EXPECT_TRUE(eventually(
        [&] {
            auto cm = remoteConfigMap(*east_, "settings");
            return cm && at(*cm, "/data/value") == "b" &&
                   statusAt("remote", "/sync/status") == "Synced";
        },
        30s))
        << status("remote").dump(2);
}

TEST_F(RemoteClustersTest, ARotatedTokenIsPickedUpWithoutARestart) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")}});
    server_->create(
        clusterSecret("cluster-east", "east", east_->url(), eastConfig("east-token-1")));
    startController(defaultOptions());
    // A sync that meets the revoked token before the new Secret is seen fails: retried.
    json policy = automated();
    policy["retry"] = {{"limit", 5}, {"backoff", {{"duration", "200ms"}, {"factor", 1}}}};
    server_->create(toCluster(application("rotating", "app", policy), "name", "east"));
    ASSERT_TRUE(eventually([&] { return statusAt("rotating", "/sync/status") == "Synced"; }));

    east_->revokeToken("east-token-1");
    kube::GroupVersionKind secretGvk{"", "v1", "Secret"};
    json secret = client_->get(secretGvk, kControlNs, "cluster-east");
    secret["data"]["config"] = base64Encode(eastConfig("east-token-2").dump());
    client_->update(secret);
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "b")}});
    controller_->refresh(kControlNs, "rotating");
    EXPECT_TRUE(eventually([&] {
        auto cm = remoteConfigMap(*east_, "settings");
        return cm && at(*cm, "/data/value") == "b";
    })) << status("rotating").dump(2);
}

TEST_F(RemoteClustersTest, AnExecPluginPrintsTheToken) {
    // Argo CD's execProviderConfig: the command prints an ExecCredential with the token.
    const std::string plugin = dir_.file("print-token.sh");
    {
        std::ofstream out(plugin);
        out << "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
               "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"'\"$TOKEN\"'\"}}'\n";
    }
    std::filesystem::permissions(plugin, std::filesystem::perms::owner_all);
    json config = {{"execProviderConfig",
                    {{"command", plugin},
                     {"env", {{"TOKEN", "east-token-2"}}},
                     {"apiVersion", "client.authentication.k8s.io/v1beta1"}}},
                   {"tlsClientConfig", {{"caData", base64Encode(east_->caPem())}}}};
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")}});
    server_->create(clusterSecret("cluster-east", "east", east_->url(), config));
    startController(defaultOptions());
    server_->create(toCluster(application("exec", "app", automated()), "name", "east"));
    EXPECT_TRUE(eventually([&] { return statusAt("exec", "/sync/status") == "Synced"; }))
        << status("exec").dump(2);
    EXPECT_TRUE(remoteConfigMap(*east_, "settings"));
}

TEST_F(RemoteClustersTest, DeletingAnApplicationDeletesItsResourcesInItsCluster) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")}});
    server_->create(
        clusterSecret("cluster-east", "east", east_->url(), eastConfig("east-token-1")));
    startController(defaultOptions());
    json leaving = toCluster(application("leaving", "app", automated()), "name", "east");
    leaving["metadata"]["finalizers"] = {"resources-finalizer.argocd.argoproj.io"};
    server_->create(leaving);
    ASSERT_TRUE(eventually([&] { return remoteConfigMap(*east_, "settings").has_value(); }));
    client_->remove(kAppGvk, kControlNs, "leaving");
    EXPECT_TRUE(eventually([&] { return !remoteConfigMap(*east_, "settings"); }))
        << "deleted in the remote cluster";
    EXPECT_TRUE(eventually([&] { return app("leaving").is_null(); }));
}

// As Argo CD: with its cluster Secret gone, the Application goes without deleting anything (it
// cannot), and says so.
TEST_F(RemoteClustersTest, WithItsClusterGoneADeletedApplicationLeavesItsResources) {
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")}});
    server_->create(
        clusterSecret("cluster-east", "east", east_->url(), eastConfig("east-token-1")));
    startController(defaultOptions());
    json orphan = toCluster(application("orphan", "app", automated()), "name", "east");
    orphan["metadata"]["finalizers"] = {"resources-finalizer.argocd.argoproj.io"};
    server_->create(orphan);
    ASSERT_TRUE(eventually([&] { return statusAt("orphan", "/sync/status") == "Synced"; }));
    client_->remove(kube::GroupVersionKind{"", "v1", "Secret"}, kControlNs, "cluster-east");
    ASSERT_TRUE(eventually([&] {
        return statusAt("orphan", "/conditions/0/type") == "InvalidSpecError";
    })) << status("orphan").dump(2);
    client_->remove(kAppGvk, kControlNs, "orphan");
    EXPECT_TRUE(eventually([&] { return app("orphan").is_null(); }));
    EXPECT_TRUE(remoteConfigMap(*east_, "settings")) << "left in place";
    EXPECT_TRUE(eventually([&] { return !eventsFor("ResourcesNotDeleted").empty(); }));
}

TEST_F(RemoteClustersTest, AProjectScopedClusterServesOnlyItsProject) {
    // permitOnlyProjectScopedClusters: only clusters whose Secret names the project.
    git_.commit(kRepo, {{"app/config.yaml", configMapYaml("settings", "a")}});
    json scoped = clusterSecret("cluster-east", "east", east_->url(), eastConfig("east-token-1"));
    scoped["data"]["project"] = base64Encode("team-a");
    server_->create(scoped);
    server_->create(clusterSecret("cluster-west", "west", west_->url(), westConfig()));
    server_->createFromFile(testing::sourcePath("crds/sluice.io_appprojects.yaml"));
    server_->create(json{{"apiVersion", "sluice.io/v1alpha1"},
                         {"kind", "AppProject"},
                         {"metadata", {{"name", "team-a"}, {"namespace", kControlNs}}},
                         {"spec",
                          {{"sourceRepos", {"*"}},
                           {"destinations", {{{"server", "*"}, {"namespace", "*"}}}},
                           {"permitOnlyProjectScopedClusters", true}}}});
    startController(defaultOptions());
    json toEast = toCluster(application("scoped", "app", automated()), "name", "east");
    toEast["spec"]["project"] = "team-a";
    json toWest = toCluster(application("unscoped", "app", automated()), "name", "west");
    toWest["spec"]["project"] = "team-a";
    server_->create(toEast);
    server_->create(toWest);
    EXPECT_TRUE(eventually([&] { return statusAt("scoped", "/sync/status") == "Synced"; }))
        << status("scoped").dump(2);
    EXPECT_TRUE(eventually([&] {
        return statusAt("unscoped", "/conditions/0/type") == "InvalidSpecError";
    })) << status("unscoped").dump(2);
    EXPECT_FALSE(remoteConfigMap(*west_, "settings"));
}

}  // namespace
}  // namespace sluice::apptest
