// sluice-controller as a process: flags, configuration errors, and its watch caches against the
// Kubernetes API test server over HTTPS.
#include <gtest/gtest.h>
#include <signal.h>

#include "apiserver/api_server.h"
#include "process/process.h"
#include "sluice/kube/client.h"

using namespace std::chrono_literals;
using sluice::testing::ChildProcess;
using sluice::testing::runProcess;
using sluice::testing::TempDir;

namespace {

const std::string kController = SLUICE_CONTROLLER_BIN;

nlohmann::json configMap(const std::string& ns, const std::string& name) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}, {"namespace", ns}}},
            {"data", {{"k", "v"}}}};
}

}  // namespace

TEST(ControllerProcess, HelpVersionAndBadFlags) {
    auto help = runProcess({kController, "--help"});
    EXPECT_EQ(help.exitCode, 0);
    EXPECT_NE(help.out.find("--kubeconfig"), std::string::npos);

    auto version = runProcess({kController, "--version"});
    EXPECT_EQ(version.exitCode, 0);
    EXPECT_NE(version.out.find("sluice-controller "), std::string::npos);

    auto bad = runProcess({kController, "--bogus"});
    EXPECT_EQ(bad.exitCode, 2);
    EXPECT_NE(bad.err.find("unknown flag --bogus"), std::string::npos);

    auto badEnv = runProcess({kController}, {{"SLUICE_LOG_FORMAT", "xml"}});
    EXPECT_EQ(badEnv.exitCode, 2);
    EXPECT_NE(badEnv.err.find("--log-format"), std::string::npos);

    auto badQps = runProcess({kController, "--qps=fast"});
    EXPECT_EQ(badQps.exitCode, 2);
}

TEST(ControllerProcess, MissingKubeconfigNamesTheFile) {
    TempDir dir;
    auto r = runProcess({kController, "--kubeconfig", dir.file("nope")});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find(dir.file("nope")), std::string::npos) << r.err;
}

TEST(ControllerProcess, UnreachableServerIsAClearError) {
    TempDir dir;
    sluice::testing::ApiServer server;
    server.start();
    std::string kubeconfig = server.writeKubeconfig(dir.file("kubeconfig"));
    server.stop();  // the port is now closed
    auto r =
        runProcess({kController, "--kubeconfig", kubeconfig, "--log-format", "json"}, {}, 120s);
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("cannot reach the API server"), std::string::npos) << r.err;
}

TEST(ControllerProcess, CachesFollowTheClusterAndShutDownOnSigterm) {
    TempDir dir;
    sluice::testing::ApiServer server;
    server.start();
    std::string kubeconfig = server.writeKubeconfig(dir.file("kubeconfig"));
    server.create({{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "demo"}}}});
    server.create(configMap("demo", "before"));

    ChildProcess controller({kController, "--kubeconfig", kubeconfig, "--namespace", "demo",
                             "--watch", "v1/ConfigMap", "--log-format", "json"});
    ASSERT_TRUE(controller.waitForOutput("caches synced: 1 objects", 30s))
        << controller.stderrText();

    sluice::kube::RestClient client(sluice::kube::loadKubeconfig(kubeconfig));
    client.create(configMap("demo", "after"));
    EXPECT_TRUE(controller.waitForOutput("added ConfigMap demo/after", 10s))
        << controller.stderrText();
    client.remove({"", "v1", "ConfigMap"}, "demo", "before");
    EXPECT_TRUE(controller.waitForOutput("deleted ConfigMap demo/before", 10s))
        << controller.stderrText();

    controller.signal(SIGTERM);
    auto code = controller.wait(15s);
    ASSERT_TRUE(code.has_value()) << "controller did not stop on SIGTERM";
    EXPECT_EQ(*code, 0) << controller.stderrText();

    // --log-format json: every line is one JSON object.
    std::istringstream lines(controller.stderrText());
    std::string line;
    int parsed = 0;
    while (std::getline(lines, line)) {
        if (line.empty()) continue;
        auto j = nlohmann::json::parse(line, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << line;
        ++parsed;
    }
    EXPECT_GE(parsed, 4);
    // No credential ever reaches the logs.
    EXPECT_EQ(controller.stderrText().find(server.token()), std::string::npos);
}

TEST(ControllerProcess, UnknownKindIsRejectedWithTheApiMessage) {
    TempDir dir;
    sluice::testing::ApiServer server;
    server.start();
    std::string kubeconfig = server.writeKubeconfig(dir.file("kubeconfig"));
    auto r =
        runProcess({kController, "--kubeconfig", kubeconfig, "--watch", "example.com/v1/Widget"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("Widget"), std::string::npos) << r.err;
}
