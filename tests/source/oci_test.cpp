// Charts from an OCI registry on loopback (Debian's docker-registry, pushed with the real
// `helm push`), addressed as Argo CD addresses them: oci:// or a scheme-less repoURL, an exact
// version or a range, with and without basic auth.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "process/process.h"
#include "sluice/git/fake_source.h"
#include "sluice/source/service.h"
#include "tempdir/tempdir.h"
#include "testutil/tools.h"

namespace sluice::source {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

// bcrypt of "chart-pass" (the registry's htpasswd takes bcrypt only).
const char* kHtpasswd = "chartuser:$2b$12$VEt1AmrB5Iko.p5ZA3mAvemaAMoYcU.pgWlGv9lP6j36ww5/Stpsm\n";

class OciRegistry {
  public:
    explicit OciRegistry(bool auth) : port_(testing::freeLoopbackPort()) {
        std::string config =
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: " + dir_.file("data") +
            "\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n";
        if (auth) {
            dir_.write("htpasswd", kHtpasswd);
            config +=
                "auth:\n  htpasswd:\n    realm: charts\n    path: " + dir_.file("htpasswd") + "\n";
        }
        dir_.write("config.yml", config);
        process_ = std::make_unique<testing::ChildProcess>(
            std::vector<std::string>{"docker-registry", "serve", dir_.file("config.yml")});
        ready_ = process_->waitForOutput("listening on", 20s);
    }
    bool ready() const { return ready_; }
    std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string log() const { return process_->stderrText() + process_->stdoutText(); }

    // helm package + helm push of a chart `web` at `version` whose ConfigMap says `marker`.
    void push(const std::string& version, const std::string& marker, const std::string& user = "",
              const std::string& password = "") {
        const std::string src = dir_.file("src-" + version) + "/web";
        fs::create_directories(src + "/templates");
        std::ofstream(src + "/Chart.yaml")
            << "apiVersion: v2\nname: web\nversion: " << version << "\n";
        std::ofstream(src + "/templates/cm.yaml") << "apiVersion: v1\nkind: ConfigMap\nmetadata: "
                                                     "{name: {{ .Release.Name }}}\ndata: {marker: "
                                                  << marker << "}\n";
        const std::map<std::string, std::string> env = {{"HOME", dir_.file("home")}};
        const std::string helm = testing::helmPath();
        auto pkg = testing::runProcess({helm, "package", src, "-d", dir_.str()}, env);
        ASSERT_EQ(pkg.exitCode, 0) << pkg.err;
        if (!user.empty()) {
            auto login = testing::runProcess(
                {helm, "registry", "login", host(), "-u", user, "-p", password, "--insecure"}, env);
            ASSERT_EQ(login.exitCode, 0) << login.err;
        }
        auto push = testing::runProcess({helm, "push", dir_.file("web-" + version + ".tgz"),
                                         "oci://" + host() + "/charts", "--plain-http"},
                                        env);
        ASSERT_EQ(push.exitCode, 0) << push.err;
    }

  private:
    testing::TempDir dir_;
    int port_;
    std::unique_ptr<testing::ChildProcess> process_;
    bool ready_ = false;
};

class OciTest : public ::testing::Test {
  protected:
    SourceService& service() {
        if (!service_) {
            Settings settings;
            settings.helmPath = testing::helmPath();
            settings.workDir = work_.file("work");
            service_ = std::make_unique<SourceService>(git_, settings, hooks_);
        }
        return *service_;
    }
    appengine::Source chart(const std::string& repoURL, const std::string& version) {
        appengine::Source s;
        s.repoURL = repoURL;
        s.chart = "web";
        s.targetRevision = version;
        s.raw = {{"repoURL", repoURL}, {"chart", "web"}, {"targetRevision", version}};
        return s;
    }
    std::string markerOf(const appengine::Source& s) {
        const std::string version = service().resolve(s, s.targetRevision).sha;
        RenderContext ctx;
        ctx.appName = "demo";
        ctx.destinationNamespace = "prod";
        auto rendered = service().render({s}, {version}, ctx);
        EXPECT_EQ(rendered->objects.size(), 1u);
        return rendered->objects.empty()
                   ? ""
                   : rendered->objects[0].manifest["data"].value("marker", "");
    }
    void plainHttp(const std::string& user = "", const std::string& password = "") {
        hooks_.helmCredentials = [user, password](const std::string&) {
            HelmCredentials c;
            c.plainHttp = true;  // Argo CD's insecureOCIForceHttp: the test registry has no TLS
            c.username = user;
            c.password = password;
            return c;
        };
        service_.reset();
    }

    testing::TempDir work_;
    git::FakeGitSource git_;
    ServiceHooks hooks_;
    std::unique_ptr<SourceService> service_;
};

TEST_F(OciTest, ChartsByOciAndSchemeLessUrlsExactVersionsAndRanges) {
    OciRegistry registry(false);
    ASSERT_TRUE(registry.ready()) << registry.log();
    registry.push("1.0.0", "one");
    registry.push("1.4.0", "four");
    registry.push("2.0.0", "two");
    plainHttp();
    EXPECT_EQ(markerOf(chart("oci://" + registry.host() + "/charts", "1.0.0")), "one");
    // Argo CD takes a scheme-less repoURL of a chart source as an OCI registry.
    auto range = chart(registry.host() + "/charts", "~1.0");
    EXPECT_EQ(service().resolve(range, "~1.0").sha, "1.0.0");
    range = chart(registry.host() + "/charts", "^1.0.0");
    EXPECT_EQ(service().resolve(range, "^1.0.0").sha, "1.4.0");
    EXPECT_EQ(markerOf(range), "four");
    EXPECT_THROW(service().resolve(chart(registry.host() + "/charts", "3.0.0"), "3.0.0"),
                 git::GitError);
}

TEST_F(OciTest, BasicAuthCredentialsAreUsedAndNeverShown) {
    OciRegistry registry(true);
    ASSERT_TRUE(registry.ready()) << registry.log();
    registry.push("1.0.0", "private", "chartuser", "chart-pass");
    plainHttp("chartuser", "wrong-pass");
    try {
        service().resolve(chart(registry.host() + "/charts", "1.0.0"), "1.0.0");
        ADD_FAILURE() << "pulled with a wrong password";
    } catch (const git::GitError& e) {
        EXPECT_EQ(std::string(e.what()).find("wrong-pass"), std::string::npos) << e.what();
    }
    plainHttp("chartuser", "chart-pass");
    EXPECT_EQ(markerOf(chart(registry.host() + "/charts", "1.0.0")), "private");
}

}  // namespace
}  // namespace sluice::source
