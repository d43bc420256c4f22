// project list | get: AppProjects as `argocd proj list|get` shows them, with the state of each
// sync window evaluated as the controller does (appengine/project.h) at the plugin's clock.
#include <ostream>

#include "commands.h"
#include "format.h"
#include "sluice/appengine/project.h"
#include "sluice/util/strings.h"

namespace sluice::plugin {

namespace {

// AppProjects live in the controller's namespace, not in the kubeconfig context's: -n and -A
// still choose, otherwise --control-namespace (sluice).
std::string projectNamespace(const Context& ctx) {
    if (ctx.inv.allNamespaces) return "";
    return ctx.inv.ns.empty() ? ctx.inv.controlNamespace : ctx.inv.ns;
}

std::vector<std::string> strings(const json& v) {
    std::vector<std::string> out;
    if (v.is_array())
        for (const json& s : v)
            if (s.is_string()) out.push_back(s.get<std::string>());
    return out;
}

std::string orNone(const std::string& s) {
    return s.empty() ? "<none>" : s;
}

json specOf(const json& p) {
    return p.contains("spec") && p["spec"].is_object() ? p["spec"] : json::object();
}

std::string destinations(const json& spec) {
    std::vector<std::string> out;
    for (const json& d : spec.value("destinations", json::array())) {
        if (!d.is_object()) continue;
        const std::string server = d.value("server", "");
        out.push_back((server.empty() ? d.value("name", "") : server) + "," +
                      d.value("namespace", ""));
    }
    return join(out, ";");
}

// "group/kind" items, as argocd prints them.
std::string groupKinds(const json& list, bool absentIsAll) {
    if (!list.is_array()) return absentIsAll ? "<all>" : "<none>";
    std::vector<std::string> out;
    for (const json& gk : list)
        if (gk.is_object()) out.push_back(gk.value("group", "") + "/" + gk.value("kind", ""));
    return orNone(join(out, ", "));
}

void printValue(Context& ctx, const json& value) {
    ctx.out << (ctx.inv.output == "yaml" ? toYamlText(value) : toJsonText(value));
}

void field(std::ostream& out, const std::string& label, const std::string& value) {
    std::string l = label;
    if (l.size() < 30) l.append(30 - l.size(), ' ');
    out << l << value << "\n";
}

void windowsTable(Context& ctx, const json& project) {
    const appengine::ProjectParse parsed = appengine::parseProject(project);
    const json windows = specOf(project).value("syncWindows", json::array());
    if (!windows.is_array() || windows.empty()) {
        field(ctx.out, "Sync Windows:", "<none>");
        return;
    }
    ctx.out << "Sync Windows:\n";
    Table t({"ID", "STATUS", "KIND", "SCHEDULE", "DURATION", "TIMEZONE", "APPLICATIONS",
             "NAMESPACES", "CLUSTERS", "MANUALSYNC"});
    for (std::size_t i = 0; i < windows.size(); ++i) {
        const json& w = windows[i];
        std::string state = "Inactive";
        if (i < parsed.project.syncWindows.size() &&
            appengine::windowActive(parsed.project.syncWindows[i], ctx.now()))
            state = "Active";
        const std::string at = "spec.syncWindows[" + std::to_string(i) + "].";
        for (const std::string& e : parsed.errors)
            if (e.rfind(at, 0) == 0) state = "Invalid";
        const bool manual = w.value("manualSync", false);
        t.addRow({std::to_string(i), state, w.value("kind", ""), w.value("schedule", ""),
                  w.value("duration", ""), orNone(w.value("timeZone", "")),
                  orNone(join(strings(w.value("applications", json())), ",")),
                  orNone(join(strings(w.value("namespaces", json())), ",")),
                  orNone(join(strings(w.value("clusters", json())), ",")),
                  manual ? "Enabled" : "Disabled"});
    }
    ctx.out << t.str();
    for (const std::string& e : parsed.errors) ctx.out << "  invalid: " << e << "\n";
}

}  // namespace

int projectList(Context& ctx) {
    const std::string ns = projectNamespace(ctx);
    const auto items = ctx.client.listAll(kAppProjectGvk, ns).items;
    if (ctx.inv.output == "json" || ctx.inv.output == "yaml") {
        printValue(ctx, json{{"apiVersion", "v1"},
                             {"kind", "List"},
                             {"items", items},
                             {"metadata", {{"resourceVersion", ""}}}});
        return kExitOk;
    }
    if (items.empty()) {
        ctx.err << (ns.empty() ? std::string("No resources found\n")
                               : "No resources found in " + ns + " namespace.\n");
        return kExitOk;
    }
    if (ctx.inv.output == "name") {
        for (const auto& p : items) ctx.out << "appproject.sluice.io/" << kube::nameOf(p) << "\n";
        return kExitOk;
    }
    std::vector<std::string> headers;
    if (ns.empty()) headers.push_back("NAMESPACE");
    for (const char* h :
         {"NAME", "DESCRIPTION", "DESTINATIONS", "SOURCES", "CLUSTER-RESOURCE-WHITELIST",
          "NAMESPACE-RESOURCE-BLACKLIST", "SYNC-WINDOWS"})
        headers.push_back(h);
    Table t(headers);
    for (const auto& p : items) {
        const json spec = specOf(p);
        std::vector<std::string> row;
        if (ns.empty()) row.push_back(kube::namespaceOf(p));
        row.push_back(kube::nameOf(p));
        row.push_back(spec.value("description", ""));
        row.push_back(orNone(destinations(spec)));
        row.push_back(orNone(join(strings(spec.value("sourceRepos", json())), ",")));
        row.push_back(groupKinds(spec.value("clusterResourceWhitelist", json()), false));
        row.push_back(groupKinds(spec.value("namespaceResourceBlacklist", json()), false));
        const json windows = spec.value("syncWindows", json::array());
        row.push_back(windows.is_array() ? std::to_string(windows.size()) : "0");
        t.addRow(row);
    }
    ctx.out << t.str();
    return kExitOk;
}

int projectGet(Context& ctx, const std::string& name) {
    const json p = ctx.client.get(kAppProjectGvk, projectNamespace(ctx), name);
    if (!ctx.inv.output.empty()) {
        printValue(ctx, p);
        return kExitOk;
    }
    const json spec = specOf(p);
    std::ostream& out = ctx.out;
    field(out, "Name:", kube::namespaceOf(p) + "/" + kube::nameOf(p));
    field(out, "Description:", orNone(spec.value("description", "")));
    field(out, "Destinations:", orNone(destinations(spec)));
    field(out, "Repositories:", orNone(join(strings(spec.value("sourceRepos", json())), ",")));
    field(out,
          "Source Namespaces:", orNone(join(strings(spec.value("sourceNamespaces", json())), ",")));
    field(out, "Allowed Cluster Resources:",
          groupKinds(spec.value("clusterResourceWhitelist", json()), false));
    if (spec.contains("clusterResourceBlacklist"))
        field(out,
              "Denied Cluster Resources:", groupKinds(spec["clusterResourceBlacklist"], false));
    field(out, "Allowed Namespaced Resources:",
          groupKinds(spec.value("namespaceResourceWhitelist", json()), true));
    field(out, "Denied Namespaced Resources:",
          groupKinds(spec.value("namespaceResourceBlacklist", json()), false));
    if (spec.value("permitOnlyProjectScopedClusters", false))
        field(out, "Project Scoped Clusters Only:",
              "true (only clusters whose Secret names this project)");
    const auto ignored = appengine::unimplementedProjectFieldsIn(p);
    if (!ignored.empty()) field(out, "Not Implemented (ignored):", join(ignored, ", "));
    windowsTable(ctx, p);
    return kExitOk;
}

}  // namespace sluice::plugin
