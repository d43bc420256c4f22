// sluice-test-apiserver: the test API server as a standalone process (README demo, manual
// kubectl sessions). Prints its URL, runs until SIGTERM/SIGINT.
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "apiserver/api_server.h"
#include "sluice/util/yaml_json.h"

namespace {

volatile std::sig_atomic_t gStop = 0;
void onSignal(int) {
    gStop = 1;
}

void usage() {
    std::cerr << "usage: sluice-test-apiserver [--host H] [--port P] [--no-tls] [--token T]...\n"
                 "       [--user-token TOKEN=USERNAME]... [--authorize]\n"
                 "       [--kubeconfig-out PATH] [--crds FILE...] [--no-simulate]\n"
                 "  --token T          superuser bearer token (replaces the default test-token)\n"
                 "  --user-token T=U   bearer token T (up to the last =) of user U, e.g.\n"
                 "                     system:serviceaccount:NAMESPACE:NAME\n"
                 "  --authorize        RBAC-authorize --user-token users against the Roles,\n"
                 "                     ClusterRoles and bindings created in the server\n";
}

}  // namespace

int main(int argc, char** argv) {
    sluice::testing::ApiServerOptions opts;
    std::string kubeconfig;
    std::vector<std::string> crdFiles;
    bool tokensGiven = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--host") {
            opts.host = value();
        } else if (a == "--port") {
            opts.port = std::stoi(value());
        } else if (a == "--no-tls") {
            opts.tls = false;
        } else if (a == "--token") {
            if (!tokensGiven) opts.tokens.clear();
            tokensGiven = true;
            opts.tokens.push_back(value());
        } else if (a == "--user-token") {
            std::string v = value();
            size_t eq = v.rfind('=');  // tokens may end in base64 '=' padding
            if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) {
                std::cerr << "sluice-test-apiserver: --user-token wants TOKEN=USERNAME\n";
                return 2;
            }
            opts.userTokens[v.substr(0, eq)] = v.substr(eq + 1);
        } else if (a == "--authorize") {
            opts.authorize = true;
        } else if (a == "--kubeconfig-out") {
            kubeconfig = value();
        } else if (a == "--crds") {
            while (i + 1 < argc && std::strncmp(argv[i + 1], "--", 2) != 0)
                crdFiles.push_back(argv[++i]);
        } else if (a == "--no-simulate") {
            opts.simulateWorkloads = false;
        } else if (a == "-h" || a == "--help") {
            usage();
            return 0;
        } else {
            usage();
            return 2;
        }
    }
    try {
        sluice::testing::ApiServer server(opts);
        for (const auto& file : crdFiles) {
            std::ifstream in(file);
            if (!in) throw std::runtime_error("cannot read " + file);
            std::stringstream ss;
            ss << in.rdbuf();
            for (const auto& doc : sluice::yamlDocumentsToJson(ss.str()))
                if (doc.value("kind", "") == "CustomResourceDefinition") server.create(doc);
        }
        server.start();
        if (!kubeconfig.empty()) server.writeKubeconfig(kubeconfig);
        std::signal(SIGINT, onSignal);
        std::signal(SIGTERM, onSignal);
        std::cout << server.url() << std::endl;
        while (!gStop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        server.stop();
    } catch (const std::exception& e) {
        std::cerr << "sluice-test-apiserver: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
