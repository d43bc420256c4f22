// cluster list | get: the destination clusters as `argocd cluster list|get` shows them. The
// clusters come from the cluster Secrets of the control namespace; what the controller sees of
// each (connection, version, Applications, cached objects) from the ConfigMaps its replicas
// publish (appengine::kClusterStateConfigMap). Without one the state is Unknown.
#include <ostream>

#include "commands.h"
#include "format.h"
#include "sluice/appengine/clusters.h"
#include "sluice/appengine/project.h"
#include "sluice/util/strings.h"

namespace sluice::plugin {

namespace {

const kube::GroupVersionKind kSecretGvk{"", "v1", "Secret"};
const kube::GroupVersionKind kConfigMapGvk{"", "v1", "ConfigMap"};

std::string orNone(const std::string& s) {
    return s.empty() ? "<none>" : s;
}

// What one replica published of a cluster, merged into v: Applications and cached objects
// add up over the replicas (--shards), a Failed connection wins over Successful over Unknown.
void mergeSeen(json& v, const json& seen) {
    if (!seen.is_object()) return;
    for (const auto& a : seen.value("applications", json::array())) v["applications"].push_back(a);
    v["cachedObjects"] = v["cachedObjects"].get<std::size_t>() + seen.value("cachedObjects", 0u);
    if (v["serverVersion"] == "") v["serverVersion"] = seen.value("serverVersion", "");
    auto rank = [](const std::string& state) {
        return state == "Failed" ? 3 : state == "Successful" ? 2 : state == "Unknown" ? 1 : 0;
    };
    const std::string state = seen.value("connectionState", "");
    if (!v.contains("seen") || rank(state) > rank(v["connectionState"])) {
        v["connectionState"] = state;
        v["message"] = seen.value("message", "");
    }
    v["seen"] = true;
}

// One cluster as shown: the Secret's declaration, with the controller's view merged in.
json clusterView(const appengine::ClusterEntry& e, const std::vector<json>& published) {
    json v = {{"name", e.name},
              {"server", e.server},
              {"secret", e.secretName},
              {"project", e.project},
              {"namespaces", e.namespaces},
              {"clusterResources", e.clusterResources},
              {"connectionState", "Unknown"},
              {"message", "the controller has not published this cluster's state"},
              {"serverVersion", ""},
              {"applications", json::array()},
              {"cachedObjects", 0}};
    const std::string key =
        e.secretName.empty() ? std::string(appengine::kInClusterName) : e.secretName;
    for (const json& data : published)
        if (auto it = data.find(key); it != data.end() && it->is_string()) {
            const json seen = json::parse(it->get<std::string>(), nullptr, false);
            if (seen.is_object() && seen.value("server", "") == e.server) mergeSeen(v, seen);
        }
    v.erase("seen");
    return v;
}

// The ConfigMaps the replicas publish: sluice-clusters, sluice-clusters-<shard> each (--shards)
// or sluice-clusters-member-<replica> each (--sharding leases).
bool isStateConfigMap(const std::string& name) {
    const std::string base = appengine::kClusterStateConfigMap;
    if (name == base) return true;
    if (name.rfind(base + "-member-", 0) == 0) return true;
    if (name.rfind(base + "-", 0) != 0 || name.size() == base.size() + 1) return false;
    return name.find_first_not_of("0123456789", base.size() + 1) == std::string::npos;
}

// Every cluster the controller can deploy to (the local one included), in Secret order.
std::vector<json> clusters(Context& ctx, std::vector<std::string>& problems) {
    const std::string ns = ctx.inv.controlNamespace;
    std::vector<appengine::ClusterEntry> entries;
    for (const json& s : ctx.client.listAll(kSecretGvk, ns).items) {
        if (!appengine::isClusterSecret(s)) continue;
        try {
            entries.push_back(appengine::parseClusterSecret(s));
        } catch (const std::invalid_argument& e) {
            problems.push_back(e.what());
        }
    }
    std::vector<json> published;
    for (const json& cm : ctx.client.listAll(kConfigMapGvk, ns).items)
        if (isStateConfigMap(kube::nameOf(cm)) && cm.contains("data") && cm["data"].is_object())
            published.push_back(cm["data"]);
    std::vector<json> out;
    for (const auto& e : appengine::knownClusters(std::move(entries)))
        out.push_back(clusterView(e, published));
    return out;
}

std::string applicationsCell(const json& v) {
    return std::to_string(v.value("applications", json::array()).size());
}

}  // namespace

int clusterList(Context& ctx) {
    std::vector<std::string> problems;
    const std::vector<json> items = clusters(ctx, problems);
    for (const auto& p : problems) ctx.err << "warning: " << p << "\n";
    if (ctx.inv.output == "json" || ctx.inv.output == "yaml") {
        const json list = {{"items", items}};
        ctx.out << (ctx.inv.output == "yaml" ? toYamlText(list) : toJsonText(list));
        return kExitOk;
    }
    if (ctx.inv.output == "name") {
        for (const auto& c : items) ctx.out << c.value("name", "") << "\n";
        return kExitOk;
    }
    Table t({"SERVER", "NAME", "VERSION", "STATUS", "MESSAGE", "PROJECT", "APPLICATIONS",
             "CACHED OBJECTS"});
    for (const auto& c : items)
        t.addRow({c.value("server", ""), c.value("name", ""), c.value("serverVersion", ""),
                  c.value("connectionState", ""), c.value("message", ""), c.value("project", ""),
                  applicationsCell(c), std::to_string(c.value("cachedObjects", 0))});
    ctx.out << t.str();
    return kExitOk;
}

// NAME is a cluster's name or its server URL, as `argocd cluster get` takes either.
int clusterGet(Context& ctx, const std::string& name) {
    std::vector<std::string> problems;
    const std::vector<json> items = clusters(ctx, problems);
    const std::string wanted = appengine::normaliseServer(name);
    for (const json& c : items) {
        if (c.value("name", "") != name && c.value("server", "") != wanted) continue;
        if (!ctx.inv.output.empty()) {
            ctx.out << (ctx.inv.output == "yaml" ? toYamlText(c) : toJsonText(c));
            return kExitOk;
        }
        auto field = [&](const std::string& label, const std::string& value) {
            std::string l = label;
            if (l.size() < 20) l.append(20 - l.size(), ' ');
            ctx.out << l << value << "\n";
        };
        field("Name:", c.value("name", ""));
        field("Server:", c.value("server", ""));
        field("Secret:", orNone(c.value("secret", "")));
        field("Project:", orNone(c.value("project", "")));
        std::vector<std::string> namespaces;
        for (const auto& n : c["namespaces"]) namespaces.push_back(n.get<std::string>());
        field("Namespaces:", namespaces.empty() ? "<all>" : join(namespaces, ","));
        field("Server Version:", orNone(c.value("serverVersion", "")));
        field("Connection State:", c.value("connectionState", ""));
        field("Message:", orNone(c.value("message", "")));
        field("Cached Objects:", std::to_string(c.value("cachedObjects", 0)));
        field("Applications:", applicationsCell(c));
        for (const auto& a : c["applications"]) ctx.out << "  " << a.get<std::string>() << "\n";
        return kExitOk;
    }
    for (const auto& p : problems) ctx.err << "warning: " << p << "\n";
    ctx.err << "Error: cluster \"" << name << "\" not found (no cluster Secret names it in "
            << ctx.inv.controlNamespace << ")\n";
    return kExitError;
}

}  // namespace sluice::plugin
