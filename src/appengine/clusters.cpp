#include "sluice/appengine/clusters.h"

#include <stdexcept>

#include "sluice/appengine/project.h"
#include "sluice/util/base64.h"

namespace sluice::appengine {

using nlohmann::json;

namespace {

const char* const kArgoSecretType = "argocd.argoproj.io/secret-type";
const char* const kSluiceSecretType = "sluice.io/secret-type";

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string secretLabel(const json& secret) {
    return "Secret " + secret.value("metadata", json::object()).value("namespace", "") + "/" +
           secret.value("metadata", json::object()).value("name", "");
}

}  // namespace

bool ClusterEntry::local() const {
    return server == kInClusterServer;
}

std::string secretValue(const json& secret, const std::string& key) {
    if (auto sd = secret.find("stringData"); sd != secret.end() && sd->is_object()) {
        if (auto v = sd->find(key); v != sd->end() && v->is_string()) return v->get<std::string>();
    }
    auto data = secret.find("data");
    if (data == secret.end() || !data->is_object()) return "";
    auto v = data->find(key);
    if (v == data->end() || !v->is_string()) return "";
    auto decoded = base64Decode(v->get_ref<const std::string&>());
    if (!decoded) throw std::invalid_argument("data." + key + " is not valid base64");
    return *decoded;
}

bool isClusterSecret(const json& secret) {
    const json labels = secret.value("metadata", json::object()).value("labels", json::object());
    for (const char* label : {kArgoSecretType, kSluiceSecretType})
        if (labels.is_object() && labels.value(label, "") == "cluster") return true;
    return false;
}

std::string normaliseServer(std::string server) {
    while (server.size() > 1 && server.back() == '/') server.pop_back();
    return server;
}

ClusterEntry parseClusterSecret(const json& secret) {
    ClusterEntry e;
    const json meta = secret.value("metadata", json::object());
    e.secretName = meta.value("name", "");
    e.resourceVersion = meta.value("resourceVersion", "");
    try {
        e.server = normaliseServer(trim(secretValue(secret, "server")));
        if (e.server.empty()) throw std::invalid_argument("data.server is required");
        e.name = trim(secretValue(secret, "name"));
        if (e.name.empty()) e.name = e.server;  // Argo CD shows the URL for a nameless cluster
        const std::string namespaces = secretValue(secret, "namespaces");
        std::size_t start = 0;
        while (start <= namespaces.size()) {
            std::size_t comma = namespaces.find(',', start);
            if (comma == std::string::npos) comma = namespaces.size();
            std::string ns = trim(namespaces.substr(start, comma - start));
            if (!ns.empty()) e.namespaces.push_back(std::move(ns));
            start = comma + 1;
        }
        // As Argo CD: cluster-scoped kinds are managed unless the cluster is restricted to
        // namespaces without clusterResources: "true".
        e.clusterResources =
            e.namespaces.empty() || trim(secretValue(secret, "clusterResources")) == "true";
        e.project = trim(secretValue(secret, "project"));
        const std::string config = secretValue(secret, "config");
        if (!config.empty()) {
            e.config = json::parse(config, nullptr, false);
            if (e.config.is_discarded() || !e.config.is_object())
                throw std::invalid_argument("data.config is not a JSON object");
        }
    } catch (const std::invalid_argument& err) {
        throw std::invalid_argument("cluster " + secretLabel(secret) + ": " + err.what());
    }
    return e;
}

ClusterEntry localCluster() {
    ClusterEntry e;
    e.name = kInClusterName;
    e.server = kInClusterServer;
    return e;
}

std::vector<ClusterEntry> knownClusters(std::vector<ClusterEntry> fromSecrets) {
    bool localDeclared = false;
    for (const ClusterEntry& e : fromSecrets) localDeclared = localDeclared || e.local();
    if (!localDeclared) fromSecrets.push_back(localCluster());
    return fromSecrets;
}

std::optional<ClusterEntry> resolveCluster(const std::vector<ClusterEntry>& clusters,
                                           const std::string& server, const std::string& name,
                                           std::string& error) {
    std::vector<const ClusterEntry*> found;
    const std::string wanted = normaliseServer(server);
    for (const ClusterEntry& e : clusters)
        if (server.empty() ? e.name == name : e.server == wanted) found.push_back(&e);
    if (found.size() == 1) return *found.front();
    if (found.empty()) {
        error = server.empty() ? "unable to find destination server: there are no clusters with "
                                 "this name: " +
                                     name
                               : "unable to find destination server: there are no clusters with "
                                 "this URL: " +
                                     wanted;
        return std::nullopt;
    }
    std::string names;
    for (const ClusterEntry* e : found) names += (names.empty() ? "" : ", ") + e->secretName;
    error = "unable to find destination server: there are " + std::to_string(found.size()) +
            " clusters with the same " + (server.empty() ? "name" : "URL") + ": [" + names + "]";
    return std::nullopt;
}

}  // namespace sluice::appengine
