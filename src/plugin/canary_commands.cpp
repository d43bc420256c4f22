// canary list | status | promote | abort | retry
#include <algorithm>
#include <ostream>

#include "commands.h"
#include "format.h"

namespace sluice::plugin {

namespace {

json statusOf(const json& c) {
    return c.contains("status") && c["status"].is_object() ? c["status"] : json::object();
}

json analysisOf(const json& c) {
    if (!c.contains("spec") || !c["spec"].is_object()) return json::object();
    const json& spec = c["spec"];
    if (spec.contains("analysis") && spec["analysis"].is_object()) return spec["analysis"];
    if (spec.contains("canaryAnalysis") && spec["canaryAnalysis"].is_object())
        return spec["canaryAnalysis"];
    return json::object();
}

void printValue(Context& ctx, const json& value) {
    ctx.out << (ctx.inv.output == "yaml" ? toYamlText(value) : toJsonText(value));
}

void field(std::ostream& out, const std::string& label, const std::string& value) {
    std::string l = label;
    if (l.size() < 22) l.append(22 - l.size(), ' ');
    out << l << value << "\n";
}

// Phases in which each request makes sense.
const std::vector<std::string>& acceptedPhases(const std::string& action) {
    static const std::vector<std::string> promote = {"Progressing", "Waiting", "WaitingPromotion"};
    static const std::vector<std::string> abort = {"Progressing", "Waiting", "WaitingPromotion",
                                                   "Promoting"};
    static const std::vector<std::string> retry = {"Failed"};
    if (action == "promote") return promote;
    if (action == "abort") return abort;
    return retry;
}

}  // namespace

int canaryList(Context& ctx) {
    auto result = ctx.client.listAll(kCanaryGvk, ctx.ns);
    const auto& items = result.items;
    if (ctx.inv.output == "json" || ctx.inv.output == "yaml") {
        json list = {{"apiVersion", "v1"},
                     {"kind", "List"},
                     {"items", items},
                     {"metadata", {{"resourceVersion", ""}}}};
        printValue(ctx, list);
        return kExitOk;
    }
    if (items.empty()) {
        if (ctx.ns.empty()) {
            ctx.err << "No resources found\n";
        } else {
            ctx.err << "No resources found in " << ctx.ns << " namespace.\n";
        }
        return kExitOk;
    }
    if (ctx.inv.output == "name") {
        for (const auto& c : items) ctx.out << "canary.sluice.io/" << kube::nameOf(c) << "\n";
        return kExitOk;
    }
    const bool wide = ctx.inv.output == "wide";
    std::vector<std::string> headers;
    if (ctx.ns.empty()) headers.push_back("NAMESPACE");
    for (const char* h : {"NAME", "STATUS", "WEIGHT", "FAILEDCHECKS", "LASTTRANSITIONTIME"})
        headers.push_back(h);
    if (wide)
        for (const char* h : {"INTERVAL", "MIRROR", "STEPWEIGHT", "STEPWEIGHTS", "MAXWEIGHT"})
            headers.push_back(h);
    Table t(headers);
    for (const auto& c : items) {
        std::vector<std::string> row;
        if (ctx.ns.empty()) row.push_back(kube::namespaceOf(c));
        row.push_back(kube::nameOf(c));
        const json st = statusOf(c);
        row.push_back(textAt(st, "/phase"));
        row.push_back(textAt(st, "/canaryWeight"));
        row.push_back(textAt(st, "/failedChecks"));
        row.push_back(textAt(st, "/lastTransitionTime"));
        if (wide) {
            const json a = analysisOf(c);
            for (const char* f :
                 {"/interval", "/mirror", "/stepWeight", "/stepWeights", "/maxWeight"})
                row.push_back(textAt(a, f));
        }
        t.addRow(row);
    }
    ctx.out << t.str();
    return kExitOk;
}

int canaryStatus(Context& ctx, const std::string& name) {
    json c = ctx.client.get(kCanaryGvk, ctx.ns, name);
    if (!ctx.inv.output.empty()) {
        printValue(ctx, c);
        return kExitOk;
    }
    const json st = statusOf(c);
    const json analysis = analysisOf(c);
    std::ostream& out = ctx.out;
    field(out, "Name:", kube::namespaceOf(c) + "/" + kube::nameOf(c));
    const std::string targetKind = textAt(c, "/spec/targetRef/kind");
    const std::string targetName = textAt(c, "/spec/targetRef/name");
    if (!targetName.empty()) field(out, "Target:", targetKind + "/" + targetName);
    std::string phase = textAt(st, "/phase");
    field(out, "Phase:", phase.empty() ? "<none>" : phase);
    int weight = st.value("canaryWeight", 0);
    if (!st.contains("canaryWeight") || !st["canaryWeight"].is_number_integer()) weight = 0;
    field(out, "Canary Weight:", std::to_string(weight));
    field(out, "Primary Weight:", std::to_string(100 - weight));
    std::string checks = st.contains("failedChecks") ? textAt(st, "/failedChecks") : "0";
    if (analysis.contains("threshold"))
        checks += " (threshold " + textAt(analysis, "/threshold") + ")";
    field(out, "Failed Checks:", checks);
    std::string iterations = st.contains("iterations") ? textAt(st, "/iterations") : "0";
    if (analysis.contains("iterations"))
        iterations += " (of " + textAt(analysis, "/iterations") + ")";
    field(out, "Iterations:", iterations);
    const std::string last = textAt(st, "/lastTransitionTime");
    field(out, "Last Transition:",
          last.empty() ? "<none>" : last + " (" + age(last, ctx.now()) + " ago)");
    // Requests written by promote/abort/retry that the controller has not taken yet.
    std::vector<std::string> pending;
    for (const char* a : {kPromoteAnnotation, kAbortAnnotation, kRetryAnnotation}) {
        try {
            const json& ann = c.at("metadata").at("annotations");
            auto it = ann.find(a);
            if (it != ann.end())
                pending.push_back(std::string(a) + "=" +
                                  (it->is_string() ? it->get<std::string>() : it->dump()));
        } catch (const std::exception&) {
        }
    }
    if (!pending.empty()) {
        std::string text;
        for (const auto& p : pending) text += (text.empty() ? "" : ", ") + p;
        field(out, "Pending Requests:", text);
    }
    const json conditions = st.value("conditions", json::array());
    if (conditions.is_array() && !conditions.empty()) {
        out << "\n";
        Table t({"TYPE", "STATUS", "REASON", "MESSAGE", "LAST TRANSITION"});
        for (const auto& cond : conditions)
            t.addRow({cond.value("type", ""), cond.value("status", ""), cond.value("reason", ""),
                      cond.value("message", ""), cond.value("lastTransitionTime", "")});
        out << t.str();
    }
    return kExitOk;
}

int canaryRequest(Context& ctx, const std::string& name, const std::string& action) {
    json c = ctx.client.get(kCanaryGvk, ctx.ns, name);
    const std::string phase = textAt(statusOf(c), "/phase");
    const auto& accepted = acceptedPhases(action);
    if (std::find(accepted.begin(), accepted.end(), phase) == accepted.end()) {
        std::string list;
        for (const auto& p : accepted) list += (list.empty() ? "" : ", ") + p;
        ctx.err << "error: canary " << kube::namespaceOf(c) << "/" << name << " is "
                << (phase.empty() ? "not initialised yet" : "in phase " + phase) << ": " << action
                << " applies only in phase " << list << "\n";
        return kExitError;
    }
    const char* annotation = action == "promote" ? kPromoteAnnotation
                             : action == "abort" ? kAbortAnnotation
                                                 : kRetryAnnotation;
    const std::string now = formatRfc3339(ctx.now());
    json patch = {
        {"metadata",
         {{"resourceVersion", kube::resourceVersionOf(c)}, {"annotations", {{annotation, now}}}}}};
    ctx.client.patch(kCanaryGvk, kube::namespaceOf(c), name, kube::PatchType::Merge, patch.dump());
    ctx.out << "canary.sluice.io/" << name << " " << action << " requested (" << annotation << "="
            << now << ")\n";
    return kExitOk;
}

}  // namespace sluice::plugin
