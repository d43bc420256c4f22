// cluster list | get: the destination clusters as `argocd cluster list|get` shows them. The
// clusters come from the cluster Secrets of the control namespace; what the controller sees of
// each (connection, version, Applications, cached objects) from the ConfigMap it publishes
// (appengine::kClusterStateConfigMap). Without that ConfigMap the state is Unknown.
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

// One cluster as shown: the Secret's declaration, with the controller's view merged in.
json clusterView(const appengine::ClusterEntry& e, const json& published) {
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
    if (auto it = published.find(key); it != published.end() && it->is_string()) {
        const json seen = json::parse(it->get<std::string>(), nullptr, false);
        if (seen.is_object() && seen.value("server", "") == e.server)
            for (const char* k :
                 {"connectionState", "message", "serverVersion", "applications", "cachedObjects"})
                if (seen.contains(k)) v[k] = seen[k];
    }
    return v;
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
    json published = json::object();
    try {
        const json cm = ctx.client.get(kConfigMapGvk, ns, appengine::kClusterStateConfigMap);
        if (cm.contains("data") && cm["data"].is_object()) published = cm["data"];
    } catch (const kube::ApiError& e) {
        if (!e.isNotFound()) throw;
    }
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
