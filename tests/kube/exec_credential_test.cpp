// Exec credential plugins (client-go's client.authentication.k8s.io ExecCredential), run by
// TokenSource: small shell scripts written by each test stand in for the plugins.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "sluice/kube/config.h"
#include "sluice/kube/errors.h"
#include "sluice/util/base64.h"
#include "sluice/util/clock.h"
#include "tempdir/tempdir.h"
#include "test_util.h"

namespace sluice::kube {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
using sluice::testing::TempDir;
using testutil::ScopedEnv;

const std::string kV1beta1 = "client.authentication.k8s.io/v1beta1";
const std::string kV1 = "client.authentication.k8s.io/v1";

std::string readAll(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// A plugin in a temp dir. The default one counts its runs in $DIR/count and prints token
// "tok-<run>", with status.expirationTimestamp from $DIR/expiry when that file exists.
class ExecPluginTest : public ::testing::Test {
  protected:
    std::string script(const std::string& name, const std::string& body) {
        auto path = dir_.write(name, "#!/bin/sh\n" + body);
        ::chmod(path.c_str(), 0755);
        return path;
    }

    std::string countingScript(const std::string& apiVersion = kV1beta1) {
        return script("plugin.sh",
                      "n=$(cat \"$DIR/count\" 2>/dev/null || echo 0)\n"
                      "n=$((n+1))\n"
                      "echo $n > \"$DIR/count\"\n"
                      "exp=''\n"
                      "if [ -f \"$DIR/expiry\" ]; then\n"
                      "  exp=\",\\\"expirationTimestamp\\\":\\\"$(cat \"$DIR/expiry\")\\\"\"\n"
                      "fi\n"
                      "printf '{\"apiVersion\":\"" +
                          apiVersion +
                          "\",\"kind\":\"ExecCredential\","
                          "\"status\":{\"token\":\"tok-%s\"%s}}\\n' \"$n\" \"$exp\"\n");
    }

    ClusterConfig config(const std::string& command, const std::string& apiVersion = kV1beta1) {
        ClusterConfig cfg;
        cfg.server = "https://127.0.0.1:6443";
        cfg.exec.command = command;
        cfg.exec.apiVersion = apiVersion;
        cfg.exec.env = {{"DIR", dir_.str()}};
        cfg.exec.timeout = 10s;
        return cfg;
    }

    int runs() const {
        auto text = readAll(dir_.file("count"));
        return text.empty() ? 0 : std::stoi(text);
    }

    void setExpiry(const std::string& rfc3339) { dir_.write("expiry", rfc3339); }

    TempDir dir_;
};

// The TransportError's message, checked to be one line naming the command.
template <typename Fn>
std::string expectPluginError(Fn fn, const std::string& command,
                              std::initializer_list<std::string> fragments) {
    try {
        fn();
    } catch (const TransportError& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("exec credential plugin \"" + command + "\""), std::string::npos) << msg;
        for (const auto& f : fragments)
            EXPECT_NE(msg.find(f), std::string::npos) << msg << "\n  missing: " << f;
        return msg;
    }
    ADD_FAILURE() << "no TransportError thrown";
    return {};
}

TEST_F(ExecPluginTest, TokenIsReturnedAndCachedWithoutExpiry) {
    auto cmd = countingScript();
    TokenSource ts(config(cmd));
    EXPECT_TRUE(ts.usesExec());
    EXPECT_EQ(ts.token(), "tok-1");
    EXPECT_EQ(ts.token(), "tok-1");
    EXPECT_EQ(runs(), 1);
    // A 401 for an older token does not throw away the current one...
    EXPECT_TRUE(ts.invalidate("tok-0"));
    EXPECT_EQ(ts.token(), "tok-1");
    EXPECT_EQ(runs(), 1);
    // ...a 401 for the current one runs the plugin again.
    EXPECT_TRUE(ts.invalidate("tok-1"));
    EXPECT_EQ(ts.token(), "tok-2");
    EXPECT_EQ(runs(), 2);
}

TEST_F(ExecPluginTest, V1IsAccepted) {
    TokenSource ts(config(countingScript(kV1), kV1));
    EXPECT_EQ(ts.token(), "tok-1");
}

TEST_F(ExecPluginTest, CachedUntilExpiryThenRunAgain) {
    auto cmd = countingScript();
    // Far ahead, with a fraction and an offset: kept.
    setExpiry("2200-01-01T00:00:00.250+02:00");
    {
        TokenSource ts(config(cmd));
        EXPECT_EQ(ts.token(), "tok-1");
        EXPECT_EQ(ts.token(), "tok-1");
    }
    // Beyond what system_clock holds (2262): kept too.
    dir_.write("count", "0");
    setExpiry("9999-12-31T23:59:59Z");
    {
        TokenSource ts(config(cmd));
        EXPECT_EQ(ts.token(), "tok-1");
        EXPECT_EQ(ts.token(), "tok-1");
        EXPECT_EQ(runs(), 1);
    }
    // Already past: every call runs the plugin.
    setExpiry("2020-01-01T00:00:00Z");
    {
        TokenSource ts(config(cmd));
        EXPECT_EQ(ts.token(), "tok-2");
        EXPECT_EQ(ts.token(), "tok-3");
    }
    // Two seconds ahead (second precision): kept, then run again once it has passed.
    setExpiry(formatRfc3339(std::chrono::system_clock::now() + 2s));
    TokenSource ts(config(cmd));
    EXPECT_EQ(ts.token(), "tok-4");
    EXPECT_EQ(ts.token(), "tok-4");
    std::this_thread::sleep_for(2100ms);
    EXPECT_EQ(ts.token(), "tok-5");
    EXPECT_EQ(runs(), 5);
}

TEST_F(ExecPluginTest, ConcurrentCallersShareOneRun) {
    auto cmd = script("slow.sh",
                      "sleep 0.3\n"
                      "n=$(cat \"$DIR/count\" 2>/dev/null || echo 0)\n"
                      "echo $((n+1)) > \"$DIR/count\"\n"
                      "echo '{\"apiVersion\":\"" +
                          kV1beta1 +
                          "\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"shared\"}}'\n");
    TokenSource ts(config(cmd));
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int i = 0; i < 6; ++i)
        threads.emplace_back([&] {
            if (ts.token() == "shared") ++ok;
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok, 6);
    EXPECT_EQ(runs(), 1);
}

TEST_F(ExecPluginTest, ArgsEnvAndExecInfoArePassed) {
    auto cmd = script("env.sh",
                      "printf '%s\\n' \"$@\" > \"$DIR/args\"\n"
                      "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$DIR/info\"\n"
                      "printf '%s|%s' \"$FROM_PARENT\" \"$OVERRIDDEN\" > \"$DIR/env\"\n"
                      "test -t 0 && echo tty > \"$DIR/stdin\"\n"
                      "echo '{\"apiVersion\":\"" +
                          kV1 + "\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\"}}'\n");
    ScopedEnv parent("FROM_PARENT", "inherited");
    ScopedEnv overridden("OVERRIDDEN", "parent-value");
    auto cfg = config(cmd, kV1);
    cfg.exec.args = {"get-token", "--cluster", "a b"};
    cfg.exec.env.push_back({"OVERRIDDEN", "plugin-value"});
    {
        TokenSource ts(cfg);
        EXPECT_EQ(ts.token(), "t");
    }
    EXPECT_EQ(readAll(dir_.file("args")), "get-token\n--cluster\na b\n");
    EXPECT_EQ(readAll(dir_.file("env")), "inherited|plugin-value");
    EXPECT_FALSE(std::filesystem::exists(dir_.file("stdin")));
    EXPECT_EQ(json::parse(readAll(dir_.file("info"))),
              json::parse(R"({"apiVersion":"client.authentication.k8s.io/v1",
                              "kind":"ExecCredential","spec":{"interactive":false}})"));

    // provideClusterInfo: the cluster (no credentials) in spec.cluster.
    cfg.exec.provideClusterInfo = true;
    cfg.exec.apiVersion = kV1;
    cfg.caPem = "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n";
    cfg.tlsServerName = "kubernetes.default";
    cfg.username = "u";
    cfg.password = "secret";
    TokenSource ts(cfg);
    EXPECT_EQ(ts.token(), "t");
    auto info = json::parse(readAll(dir_.file("info")));
    EXPECT_EQ(info["spec"]["interactive"], false);
    EXPECT_EQ(info["spec"]["cluster"],
              json({{"server", "https://127.0.0.1:6443"},
                    {"tls-server-name", "kubernetes.default"},
                    {"certificate-authority-data", base64Encode(cfg.caPem)}}));
}

TEST_F(ExecPluginTest, StaticTokenWinsOverExec) {
    auto cfg = config(countingScript());
    cfg.token = "static";
    TokenSource ts(cfg);
    EXPECT_FALSE(ts.usesExec());
    EXPECT_EQ(ts.token(), "static");
    EXPECT_FALSE(ts.invalidate("static"));
    EXPECT_EQ(runs(), 0);
}

TEST_F(ExecPluginTest, NonZeroExitReportsLastStderrLine) {
    auto cmd = script("fail.sh",
                      "echo '{\"status\":{\"token\":\"half-written\"}}'\n"
                      "echo 'first line' >&2\n"
                      "echo 'error: the SSO session has expired, run login' >&2\n"
                      "exit 3\n");
    TokenSource ts(config(cmd));
    auto msg =
        expectPluginError([&] { ts.token(); }, cmd,
                          {"exit status 3", "error: the SSO session has expired, run login"});
    EXPECT_EQ(msg.find("first line"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("half-written"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST_F(ExecPluginTest, InvalidOutputIsRefusedWithoutShowingIt) {
    struct Case {
        std::string output;
        std::string fragment;
    };
    const std::string head = "{\"apiVersion\":\"" + kV1beta1 + "\",\"kind\":\"ExecCredential\",";
    std::vector<Case> cases = {
        {"secret-token-not-json", "invalid JSON"},
        {"[\"secret\"]", "not an object"},
        {"{\"apiVersion\":\"" + kV1 +
             "\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"secret\"}}",
         "apiVersion \"" + kV1 + "\", want \"" + kV1beta1 + "\""},
        {"{\"apiVersion\":\"" + kV1beta1 + "\",\"kind\":\"Secret\",\"status\":{\"token\":\"x\"}}",
         "kind \"Secret\""},
        {head + "\"status\":{}}", "without status.token"},
        {head + "\"spec\":{}}", "without status"},
        {head + "\"status\":{\"clientCertificateData\":\"c\",\"clientKeyData\":\"k\"}}",
         "client certificates from exec plugins are not supported"},
        {head + "\"status\":{\"token\":\"secret\",\"expirationTimestamp\":\"tomorrow\"}}",
         "expirationTimestamp is not an RFC 3339 time"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.output);
        dir_.write("out.json", c.output);
        auto cmd = script("bad.sh", "cat \"$DIR/out.json\"\n");
        TokenSource ts(config(cmd));
        auto msg = expectPluginError([&] { ts.token(); }, cmd, {c.fragment});
        EXPECT_EQ(msg.find("secret"), std::string::npos) << msg;
    }
}

TEST_F(ExecPluginTest, CommandNotFound) {
    auto cfg = config("sluice-no-such-credential-plugin");
    cfg.exec.installHint = "install it with: brew install sluice-auth";
    TokenSource ts(cfg);
    expectPluginError([&] { ts.token(); }, "sluice-no-such-credential-plugin",
                      {"not found", "brew install sluice-auth"});

    auto missing = dir_.file("bin/missing");
    TokenSource ts2(config(missing));
    expectPluginError([&] { ts2.token(); }, missing, {"not found"});

    // Found in $PATH by its bare name.
    countingScript();
    ScopedEnv path("PATH", dir_.str() + ":" + std::getenv("PATH"));
    TokenSource ts3(config("plugin.sh"));
    EXPECT_EQ(ts3.token(), "tok-1");
}

bool processGone(const std::string& pid) {
    std::ifstream stat("/proc/" + pid + "/stat");
    if (!stat) return true;
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

TEST_F(ExecPluginTest, TimeoutKillsThePluginAndWhatItStarted) {
    auto cmd = script("hang.sh",
                      "sleep 60 &\n"
                      "echo $! > \"$DIR/child\"\n"
                      "wait\n");
    auto cfg = config(cmd);
    cfg.exec.timeout = 1s;
    TokenSource ts(cfg);
    auto start = Clock::now();
    expectPluginError([&] { ts.token(); }, cmd, {"timed out after 1000ms"});
    auto took = Clock::now() - start;
    EXPECT_GE(took, 900ms);
    EXPECT_LT(took, 5s);
    auto child = readAll(dir_.file("child"));
    while (!child.empty() && child.back() == '\n') child.pop_back();
    ASSERT_FALSE(child.empty());
    // The sleep was in the plugin's process group: killed too (or reaped already).
    auto deadline = Clock::now() + 5s;
    while (!processGone(child) && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
    EXPECT_TRUE(processGone(child)) << "sleep " << child << " still runs";
}

size_t openFds() {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

TEST_F(ExecPluginTest, NoDescriptorOrChildLeftBehind) {
    auto good = countingScript();
    auto bad = script("bad.sh", "echo oops >&2\nexit 1\n");
    auto hang = script("hang.sh", "sleep 60\n");
    size_t before = openFds();
    for (int i = 0; i < 3; ++i) {
        TokenSource ts(config(good));
        EXPECT_EQ(ts.token(), "tok-" + std::to_string(i + 1));
        EXPECT_THROW(TokenSource(config(bad)).token(), TransportError);
        EXPECT_THROW(TokenSource(config(dir_.file("absent"))).token(), TransportError);
    }
    auto cfg = config(hang);
    cfg.exec.timeout = 300ms;
    EXPECT_THROW(TokenSource(cfg).token(), TransportError);
    EXPECT_EQ(openFds(), before);
    // Every child was reaped.
    errno = 0;
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
}

}  // namespace
}  // namespace sluice::kube
