// app list | get | history | sync | rollback | refresh
#include <ostream>
#include <sstream>

#include "commands.h"
#include "format.h"
#include "sluice/appengine/status.h"
#include "sluice/appengine/tracking.h"
#include "sluice/util/strings.h"

namespace sluice::plugin {

namespace {

json getApp(Context& ctx, const std::string& name) {
    return ctx.client.get(kApplicationGvk, ctx.ns, name);
}

std::string listSyncPolicy(const json& app) {
    try {
        const json& sp = app.at("spec").at("syncPolicy");
        if (!sp.contains("automated") || sp["automated"].is_null()) return "<none>";
        const json& a = sp["automated"];
        if (a.is_object() && a.value("enabled", true) == false) return "<none>";
        return a.is_object() && a.value("prune", false) ? "Auto-Prune" : "Auto";
    } catch (const std::exception&) {
        return "<none>";
    }
}

bool isAutomated(const json& app) {
    return listSyncPolicy(app) != "<none>";
}

std::string getSyncPolicy(const json& app) {
    const std::string p = listSyncPolicy(app);
    if (p == "Auto-Prune") return "Automated (Prune)";
    if (p == "Auto") return "Automated";
    return "<none>";
}

std::string destinationText(const json& app) {
    std::string server = textAt(app, "/spec/destination/server");
    if (server.empty()) server = textAt(app, "/spec/destination/name");
    return server;
}

std::string conditionsText(const json& app) {
    std::string out;
    try {
        for (const auto& c : app.at("status").at("conditions")) {
            if (!out.empty()) out += ",";
            out += c.value("type", "");
        }
    } catch (const std::exception&) {
    }
    return out.empty() ? "<none>" : out;
}

void printNoResources(Context& ctx) {
    if (ctx.ns.empty()) {
        ctx.err << "No resources found\n";
    } else {
        ctx.err << "No resources found in " << ctx.ns << " namespace.\n";
    }
}

json listObject(const std::vector<json>& items) {
    json list = {{"apiVersion", "v1"},
                 {"kind", "List"},
                 {"items", json::array()},
                 {"metadata", {{"resourceVersion", ""}}}};
    for (const auto& i : items) list["items"].push_back(i);
    return list;
}

void printValue(Context& ctx, const json& value) {
    ctx.out << (ctx.inv.output == "yaml" ? toYamlText(value) : toJsonText(value));
}

// A line of `app get`: "Label:" padded to 20 characters, as `argocd app get`.
void field(std::ostream& out, const std::string& label, const std::string& value) {
    std::string l = label;
    if (l.size() < 20) l.append(20 - l.size(), ' ');
    out << l << value << "\n";
}

std::string operationInProgress(const json& app) {
    if (app.contains("operation") && !app["operation"].is_null())
        return "an operation is already requested (operation field set)";
    const std::string phase = textAt(app, "/status/operationState/phase");
    if (phase == "Running" || phase == "Terminating")
        return "another operation is already in progress (phase " + phase + ")";
    return "";
}

// Writes `operation` with the Application's resourceVersion as precondition; returns the
// operation as the server stored it.
json requestOperation(Context& ctx, const json& app, const json& operation) {
    json patch = {{"metadata", {{"resourceVersion", kube::resourceVersionOf(app)}}},
                  {"operation", operation}};
    json stored = ctx.client.patch(kApplicationGvk, kube::namespaceOf(app), kube::nameOf(app),
                                   kube::PatchType::Merge, patch.dump());
    return stored.value("operation", operation);
}

// Polls until the controller has finished `operation` (it clears the operation field and the
// status names this operation with a final phase). Returns the exit code.
int waitOperation(Context& ctx, const std::string& name, const json& operation) {
    const auto deadline = ctx.now() + ctx.inv.timeout;
    for (;;) {
        json app = getApp(ctx, name);
        const json os = app.contains("status") && app["status"].is_object()
                            ? app["status"].value("operationState", json::object())
                            : json::object();
        const std::string phase = os.value("phase", "");
        const bool ours = os.value("operation", json()) == operation;
        if (ours && !app.contains("operation") &&
            (phase == "Succeeded" || phase == "Failed" || phase == "Error")) {
            ctx.out << "Phase:    " << phase << "\n";
            const std::string message = os.value("message", "");
            if (!message.empty()) ctx.out << "Message:  " << message << "\n";
            const std::string revision = textAt(os, "/syncResult/revision");
            if (!revision.empty()) ctx.out << "Revision: " << revision << "\n";
            return phase == "Succeeded" ? kExitOk : kExitError;
        }
        if (ctx.now() >= deadline) {
            ctx.err << "error: timed out after " << ctx.inv.timeout.count() / 1000
                    << "s waiting for the operation on application " << name << " to finish (phase "
                    << (phase.empty() ? "<none>" : phase) << ")\n";
            return kExitError;
        }
        ctx.sleep(std::chrono::milliseconds(500));
    }
}

json syncOperation(Context& ctx, const std::string& revision) {
    json sync = json::object();
    if (!revision.empty()) sync["revision"] = revision;
    if (ctx.inv.prune) sync["prune"] = true;
    if (ctx.inv.dryRun) sync["dryRun"] = true;
    if (!ctx.inv.syncOptions.empty()) sync["syncOptions"] = ctx.inv.syncOptions;
    return {{"sync", sync}, {"initiatedBy", {{"username", ctx.username}}}};
}

}  // namespace

int appList(Context& ctx) {
    auto result = ctx.client.listAll(kApplicationGvk, ctx.ns);
    const auto& items = result.items;
    if (ctx.inv.output == "json" || ctx.inv.output == "yaml") {
        printValue(ctx, listObject(items));
        return kExitOk;
    }
    if (items.empty()) {
        printNoResources(ctx);
        return kExitOk;
    }
    if (ctx.inv.output == "name") {
        for (const auto& a : items) ctx.out << "application.sluice.io/" << kube::nameOf(a) << "\n";
        return kExitOk;
    }
    const bool wide = ctx.inv.output == "wide";
    std::vector<std::string> headers;
    if (ctx.ns.empty()) headers.push_back("NAMESPACE");
    for (const char* h : {"NAME", "SYNC STATUS", "HEALTH", "REVISION", "SYNCPOLICY", "AGE"})
        headers.push_back(h);
    if (wide)
        for (const char* h : {"PROJECT", "DESTINATION", "REPO", "PATH", "TARGET", "CONDITIONS"})
            headers.push_back(h);
    Table table(headers);
    const auto now = ctx.now();
    for (const auto& a : items) {
        std::vector<std::string> row;
        if (ctx.ns.empty()) row.push_back(kube::namespaceOf(a));
        row.push_back(kube::nameOf(a));
        row.push_back(textAt(a, "/status/sync/status"));
        row.push_back(textAt(a, "/status/health/status"));
        row.push_back(shortRevision(textAt(a, "/status/sync/revision")));
        row.push_back(listSyncPolicy(a));
        row.push_back(age(textAt(a, "/metadata/creationTimestamp"), now));
        if (wide) {
            row.push_back(textAt(a, "/spec/project"));
            std::string dest = destinationText(a);
            const std::string dns = textAt(a, "/spec/destination/namespace");
            row.push_back(dns.empty() ? dest : dest + " (" + dns + ")");
            row.push_back(textAt(a, "/spec/source/repoURL"));
            row.push_back(textAt(a, "/spec/source/path"));
            const std::string target = textAt(a, "/spec/source/targetRevision");
            row.push_back(target.empty() ? "HEAD" : target);
            row.push_back(conditionsText(a));
        }
        table.addRow(row);
    }
    ctx.out << table.str();
    return kExitOk;
}

int appGet(Context& ctx, const std::string& name) {
    json a = getApp(ctx, name);
    if (!ctx.inv.output.empty()) {
        printValue(ctx, a);
        return kExitOk;
    }
    std::ostream& out = ctx.out;
    const std::string target = textAt(a, "/spec/source/targetRevision");
    field(out, "Name:", kube::namespaceOf(a) + "/" + kube::nameOf(a));
    field(out,
          "Project:", textAt(a, "/spec/project").empty() ? "default" : textAt(a, "/spec/project"));
    field(out, "Server:", destinationText(a));
    field(out, "Namespace:", textAt(a, "/spec/destination/namespace"));
    field(out, "Repo:", textAt(a, "/spec/source/repoURL"));
    field(out, "Target:", target);
    field(out, "Path:", textAt(a, "/spec/source/path"));
    const std::string sourceType = textAt(a, "/status/sourceType");
    if (!sourceType.empty()) field(out, "Source Type:", sourceType);
    if (a.contains("/spec/sources"_json_pointer) && a["spec"]["sources"].is_array()) {
        const json& sources = a["spec"]["sources"];
        for (size_t i = 0; i < sources.size(); ++i) {
            const std::string at = "/status/sourceTypes/" + std::to_string(i);
            std::string line = textAt(sources[i], "/repoURL");
            for (const char* k : {"chart", "path", "ref"})
                if (!textAt(sources[i], std::string("/") + k).empty())
                    line += std::string(" ") + k + "=" + textAt(sources[i], std::string("/") + k);
            const std::string type = textAt(a, at);
            if (!type.empty()) line += " (" + type + ")";
            field(out, i == 0 ? "Sources:" : "", line);
        }
    }
    field(out, "Sync Policy:", getSyncPolicy(a));
    std::string syncStatus = textAt(a, "/status/sync/status");
    if (syncStatus.empty()) syncStatus = "Unknown";
    const std::string revision = textAt(a, "/status/sync/revision");
    std::string syncLine = syncStatus;
    if (!revision.empty())
        syncLine += " to " + (target.empty() ? std::string("HEAD") : target) + " (" +
                    shortRevision(revision) + ")";
    field(out, "Sync Status:", syncLine);
    std::string health = textAt(a, "/status/health/status");
    field(out, "Health Status:", health.empty() ? "Unknown" : health);
    const std::string healthMessage = textAt(a, "/status/health/message");
    if (!healthMessage.empty()) field(out, "Health Message:", healthMessage);

    if (a.contains("status") && a["status"].is_object() && a["status"].contains("operationState") &&
        a["status"]["operationState"].is_object()) {
        const json& os = a["status"]["operationState"];
        out << "\n";
        field(out, "Operation:", "Sync");
        const std::string rev = textAt(os, "/syncResult/revision");
        if (!rev.empty()) field(out, "Sync Revision:", rev);
        field(out, "Phase:", os.value("phase", ""));
        if (os.contains("startedAt")) field(out, "Start:", textAt(os, "/startedAt"));
        if (os.contains("finishedAt")) field(out, "Finished:", textAt(os, "/finishedAt"));
        const std::string by = textAt(os, "/operation/initiatedBy/username");
        if (!by.empty()) field(out, "Initiated By:", by);
        if (os.contains("message")) field(out, "Message:", textAt(os, "/message"));
    }

    const json conditions = a.contains("status") && a["status"].is_object()
                                ? a["status"].value("conditions", json::array())
                                : json::array();
    if (conditions.is_array() && !conditions.empty()) {
        out << "\n";
        Table t({"CONDITION", "MESSAGE", "LAST TRANSITION"});
        for (const auto& c : conditions)
            t.addRow(
                {c.value("type", ""), c.value("message", ""), c.value("lastTransitionTime", "")});
        out << t.str();
    }

    const json resources = a.contains("status") && a["status"].is_object()
                               ? a["status"].value("resources", json::array())
                               : json::array();
    if (resources.is_array() && !resources.empty()) {
        out << "\n";
        Table t({"GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH"});
        for (const auto& r : resources) {
            std::string status = r.value("status", "");
            if (r.value("requiresPruning", false)) status += " (requires pruning)";
            t.addRow({r.value("group", ""), r.value("kind", ""), r.value("namespace", ""),
                      r.value("name", ""), status, textAt(r, "/health/status")});
        }
        out << t.str();
    }
    return kExitOk;
}

int appHistory(Context& ctx, const std::string& name) {
    json a = getApp(ctx, name);
    json history = a.contains("status") && a["status"].is_object()
                       ? a["status"].value("history", json::array())
                       : json::array();
    if (!history.is_array()) history = json::array();
    if (!ctx.inv.output.empty()) {
        printValue(ctx, history);
        return kExitOk;
    }
    if (history.empty()) {
        ctx.err << "No history for application " << kube::namespaceOf(a) << "/" << name << "\n";
        return kExitOk;
    }
    Table t({"ID", "DATE", "REVISION"});
    for (const auto& h : history) {
        t.addRow({textAt(h, "/id"), textAt(h, "/deployedAt"), textAt(h, "/revision")});
    }
    ctx.out << t.str();
    return kExitOk;
}

int appSync(Context& ctx, const std::string& name) {
    json a = getApp(ctx, name);
    if (auto busy = operationInProgress(a); !busy.empty()) {
        ctx.err << "error: application " << kube::namespaceOf(a) << "/" << name << ": " << busy
                << "\n";
        return kExitError;
    }
    json op = requestOperation(ctx, a, syncOperation(ctx, ctx.inv.revision));
    const std::string target = textAt(a, "/spec/source/targetRevision");
    ctx.out << "application.sluice.io/" << name << " sync requested (revision "
            << (ctx.inv.revision.empty() ? (target.empty() ? "HEAD" : target) : ctx.inv.revision)
            << (ctx.inv.prune ? ", prune" : "") << (ctx.inv.dryRun ? ", dry run" : "") << ")\n";
    if (ctx.inv.wait) return waitOperation(ctx, name, op);
    return kExitOk;
}

int appRollback(Context& ctx, const std::string& name, const std::string& idText) {
    long id = -1;
    try {
        std::size_t used = 0;
        id = std::stol(idText, &used);
        if (used != idText.size() || id < 0) throw std::invalid_argument("bad id");
    } catch (const std::exception&) {
        throw UsageError("history ID must be a non-negative integer, got \"" + idText + "\"");
    }
    json a = getApp(ctx, name);
    if (isAutomated(a)) {
        ctx.err << "error: rollback cannot be initiated when auto-sync is enabled (application "
                << kube::namespaceOf(a) << "/" << name
                << " has spec.syncPolicy.automated): the controller would sync it back to "
                   "the target revision\n";
        return kExitError;
    }
    const json history = a.contains("status") && a["status"].is_object()
                             ? a["status"].value("history", json::array())
                             : json::array();
    const json entry = appengine::historyEntry(history, id);
    // A multi-source entry records one revision per source (operation.sync.revisions).
    std::vector<std::string> revisions;
    if (!entry.is_null() && entry.contains("revisions") && entry["revisions"].is_array())
        for (const auto& r : entry["revisions"])
            if (r.is_string()) revisions.push_back(r.get<std::string>());
    if (entry.is_null() || (textAt(entry, "/revision").empty() && revisions.empty())) {
        ctx.err << "error: application " << kube::namespaceOf(a) << "/" << name
                << " has no history entry with ID " << id << " (see kubectl sluice app history "
                << name << ")\n";
        return kExitError;
    }
    if (auto busy = operationInProgress(a); !busy.empty()) {
        ctx.err << "error: application " << kube::namespaceOf(a) << "/" << name << ": " << busy
                << "\n";
        return kExitError;
    }
    std::string revision = textAt(entry, "/revision");
    json operation = syncOperation(ctx, revision);
    if (!revisions.empty()) {
        operation["sync"]["revisions"] = revisions;
        revision = join(revisions, ", ");
    }
    json op = requestOperation(ctx, a, operation);
    ctx.out << "application.sluice.io/" << name << " rollback to history ID " << id << " (revision "
            << revision << ") requested\n";
    if (ctx.inv.wait) return waitOperation(ctx, name, op);
    return kExitOk;
}

int appRefresh(Context& ctx, const std::string& name) {
    const std::string mode = ctx.inv.hard ? "hard" : "normal";
    json patch = {{"metadata", {{"annotations", {{appengine::kRefreshAnnotation, mode}}}}}};
    json a = ctx.client.patch(kApplicationGvk, ctx.ns, name, kube::PatchType::Merge, patch.dump());
    ctx.out << "application.sluice.io/" << name << " " << mode << " refresh requested\n";
    if (!ctx.inv.wait) return kExitOk;
    // The controller removes the annotation once it has fetched and compared.
    const auto deadline = ctx.now() + ctx.inv.timeout;
    for (;;) {
        a = getApp(ctx, name);
        if (textAt(a, "/metadata/annotations/sluice.io~1refresh").empty()) {
            std::string s = textAt(a, "/status/sync/status");
            ctx.out << "Sync Status:   " << (s.empty() ? "Unknown" : s) << "\n";
            return kExitOk;
        }
        if (ctx.now() >= deadline) {
            ctx.err << "error: timed out waiting for the controller to refresh application " << name
                    << "\n";
            return kExitError;
        }
        ctx.sleep(std::chrono::milliseconds(500));
    }
}

}  // namespace sluice::plugin
