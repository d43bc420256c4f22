// Cluster Secrets in Argo CD's format and the resolution of destinations to them.
#include "sluice/appengine/clusters.h"

#include <gtest/gtest.h>

#include "sluice/util/base64.h"

namespace sluice::appengine {
namespace {

using nlohmann::json;

json secret(const std::string& name, json data,
            const std::string& label = "argocd.argoproj.io/secret-type") {
    for (auto& [k, v] : data.items()) v = base64Encode(v.get<std::string>());
    return {{"apiVersion", "v1"},
            {"kind", "Secret"},
            {"metadata",
             {{"name", name},
              {"namespace", "sluice"},
              {"resourceVersion", "7"},
              {"labels", {{label, "cluster"}}}}},
            {"data", data}};
}

TEST(ClusterSecret, ParsesArgoCdFields) {
    json s =
        secret("prod", {{"name", "prod-east"},
                        {"server", "https://10.0.0.1:6443/"},
                        {"namespaces", "web, api ,"},
                        {"clusterResources", "true"},
                        {"project", "team-a"},
                        {"config", R"({"bearerToken":"t","tlsClientConfig":{"insecure":true}})"}});
    ASSERT_TRUE(isClusterSecret(s));
    ClusterEntry e = parseClusterSecret(s);
    EXPECT_EQ(e.name, "prod-east");
    EXPECT_EQ(e.server, "https://10.0.0.1:6443") << "trailing slash dropped";
    EXPECT_EQ(e.namespaces, (std::vector<std::string>{"web", "api"}));
    EXPECT_TRUE(e.clusterResources);
    EXPECT_EQ(e.project, "team-a");
    EXPECT_EQ(e.config["bearerToken"], "t");
    EXPECT_EQ(e.secretName, "prod");
    EXPECT_EQ(e.resourceVersion, "7");
    EXPECT_FALSE(e.local());
}

TEST(ClusterSecret, DefaultsAndLabels) {
    json s = secret("bare", {{"server", "https://k8s.example.com"}}, "sluice.io/secret-type");
    ASSERT_TRUE(isClusterSecret(s)) << "Sluice's label too";
    ClusterEntry e = parseClusterSecret(s);
    EXPECT_EQ(e.name, "https://k8s.example.com") << "a nameless cluster shows its URL";
    EXPECT_TRUE(e.namespaces.empty());
    EXPECT_TRUE(e.clusterResources);
    EXPECT_TRUE(e.config.empty());

    json scoped = secret("ns", {{"server", "https://k8s.example.com"}, {"namespaces", "web"}});
    EXPECT_FALSE(parseClusterSecret(scoped).clusterResources)
        << "namespaced without clusterResources: \"true\"";

    json repo = secret("repo", {{"url", "https://git.example.com"}});
    repo["metadata"]["labels"]["argocd.argoproj.io/secret-type"] = "repository";
    EXPECT_FALSE(isClusterSecret(repo));
}

TEST(ClusterSecret, StringDataWinsAsTheApiServerMergesIt) {
    json s = secret("x", {{"server", "https://old"}});
    s["stringData"] = {{"server", "https://new"}};
    EXPECT_EQ(parseClusterSecret(s).server, "https://new");
}

TEST(ClusterSecret, ProblemsNameTheSecretAndField) {
    auto problem = [](const json& s) {
        try {
            parseClusterSecret(s);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    EXPECT_EQ(problem(secret("a", {{"name", "a"}})),
              "cluster Secret sluice/a: data.server is required");
    EXPECT_EQ(problem(secret("b", {{"server", "https://b"}, {"config", "[1]"}})),
              "cluster Secret sluice/b: data.config is not a JSON object");
    json bad = secret("c", {{"server", "https://c"}});
    bad["data"]["config"] = "%%%";
    EXPECT_EQ(problem(bad), "cluster Secret sluice/c: data.config is not valid base64");
}

TEST(ResolveCluster, ByNameOrUrlAsArgoCd) {
    ClusterEntry east;
    east.name = "east";
    east.server = "https://east:6443";
    east.secretName = "s-east";
    const auto clusters = knownClusters({east});
    ASSERT_EQ(clusters.size(), 2u) << "the local cluster is added";
    std::string error;
    EXPECT_EQ(resolveCluster(clusters, "", "east", error)->server, "https://east:6443");
    EXPECT_EQ(resolveCluster(clusters, "https://east:6443/", "", error)->name, "east");
    EXPECT_TRUE(resolveCluster(clusters, "https://kubernetes.default.svc", "", error)->local());
    EXPECT_EQ(resolveCluster(clusters, "", "in-cluster", error)->server,
              "https://kubernetes.default.svc");

    EXPECT_FALSE(resolveCluster(clusters, "", "west", error));
    EXPECT_EQ(error,
              "unable to find destination server: there are no clusters with this name: west");
    EXPECT_FALSE(resolveCluster(clusters, "https://west", "", error));
    EXPECT_EQ(
        error,
        "unable to find destination server: there are no clusters with this URL: https://west");

    ClusterEntry twin = east;
    twin.server = "https://twin:6443";
    twin.secretName = "s-twin";
    EXPECT_FALSE(resolveCluster(knownClusters({east, twin}), "", "east", error));
    EXPECT_EQ(error,
              "unable to find destination server: there are 2 clusters with the same name: "
              "[s-east, s-twin]");
}

TEST(ResolveCluster, ASecretForTheLocalUrlRenamesIt) {
    ClusterEntry local;
    local.name = "management";
    local.server = "https://kubernetes.default.svc";
    const auto clusters = knownClusters({local});
    ASSERT_EQ(clusters.size(), 1u);
    std::string error;
    EXPECT_TRUE(resolveCluster(clusters, "", "management", error)->local());
    EXPECT_FALSE(resolveCluster(clusters, "", "in-cluster", error)) << "renamed, as in Argo CD";
}

}  // namespace
}  // namespace sluice::appengine
