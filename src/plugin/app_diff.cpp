// app diff: desired state rendered from git exactly as the Application controller renders it,
// compared with the live objects exactly as the controller compares them.
#include <ostream>
#include <set>

#include "commands.h"
#include "format.h"
#include "projection.h"
#include "sluice/app/plan.h"
#include "sluice/app/spec.h"
#include "sluice/app/tracking.h"
#include "sluice/appcontroller/source.h"
#include "sluice/render/render.h"
#include "sluice/util/yaml_json.h"
#include "unified_diff.h"

namespace sluice::plugin {

namespace {

constexpr const char* kFieldManager = "sluice";  // the controller's default field manager

std::vector<std::shared_ptr<const json>> repositorySecrets(Context& ctx) {
    std::vector<std::shared_ptr<const json>> secrets;
    const kube::GroupVersionKind secretGvk{"", "v1", "Secret"};
    for (const char* label :
         {appcontroller::kSecretTypeLabel, appcontroller::kArgoSecretTypeLabel}) {
        kube::ListOptions lo;
        lo.labelSelector = label;
        try {
            for (auto& s : ctx.client.listAll(secretGvk, ctx.inv.controlNamespace, lo).items)
                secrets.push_back(std::make_shared<const json>(std::move(s)));
        } catch (const kube::ApiError& e) {
            if (!e.isForbidden() && !e.isNotFound()) throw;
            ctx.err << "warning: cannot list repository Secrets in namespace "
                    << ctx.inv.controlNamespace << " (" << e.what()
                    << "); fetching without credentials\n";
            return {};
        }
    }
    return secrets;
}

std::string header(const app::ResourceKey& k) {
    return "===== " + k.group + "/" + k.kind + " " + k.ns + "/" + k.name + " ======";
}

std::string fileLabel(const app::ResourceKey& k, const std::string& version) {
    std::string g = k.group.empty() ? "" : k.group + ".";
    return g + version + "." + k.kind + "." + (k.ns.empty() ? "" : k.ns + ".") + k.name;
}

}  // namespace

int appDiff(Context& ctx, const std::string& name) {
    json application = ctx.client.get(kApplicationGvk, ctx.ns, name);
    const std::string appNs = kube::namespaceOf(application);
    app::ParseResult parsed = app::parseApplication(application);
    std::vector<std::string> specErrors;
    for (const auto& e : parsed.errors)
        if (e.rfind("operation", 0) != 0) specErrors.push_back(e);
    if (!specErrors.empty()) {
        ctx.err << "error: application " << appNs << "/" << name << " has an invalid spec:\n";
        for (const auto& e : specErrors) ctx.err << "  " << e << "\n";
        return kExitDiffError;
    }
    const app::ApplicationSpec& spec = parsed.spec;
    const std::string instance = app::instanceName(appNs, name, ctx.inv.controlNamespace);

    // Which revision: --revision; otherwise the one the controller last compared (when it was
    // compared for the current source); otherwise (or with --refresh) the target resolved now.
    std::string wanted = ctx.inv.revision;
    if (wanted.empty() && !ctx.inv.refresh) {
        const std::string compared = textAt(application, "/status/sync/revision");
        json comparedSource;
        try {
            comparedSource = application.at("status").at("sync").at("comparedTo").at("source");
        } catch (const std::exception&) {
        }
        if (!compared.empty() && comparedSource == application["spec"].value("source", json()))
            wanted = compared;
    }
    if (wanted.empty()) wanted = spec.source.targetRevision;

    git::GitSource& git = ctx.git();
    const git::Repository repo =
        appcontroller::repositoryFromSecrets(spec.source.repoURL, repositorySecrets(ctx));
    std::vector<render::Object> rendered;
    git::Revision revision;
    try {
        revision = git.resolve(repo, wanted);
        render::Options ropts;
        ropts.path = spec.source.path;
        ropts.recurse = spec.source.recurse;
        rendered = render::renderRevision(git, repo, revision.sha, ropts);
    } catch (const git::GitError& e) {
        ctx.err << "error: " << git::scrubUrl(e.what()) << "\n";
        return kExitDiffError;
    } catch (const render::RenderError& e) {
        ctx.err << "error: rendering " << spec.source.repoURL << " at " << revision.sha << ": "
                << e.what() << "\n";
        return kExitDiffError;
    }

    auto scope = [&](const std::string& apiVersion,
                     const std::string& kind) -> std::optional<bool> {
        try {
            return ctx.client.resourceFor(kube::GroupVersionKind::fromApiVersion(apiVersion, kind))
                .namespaced;
        } catch (const kube::ApiError& e) {
            if (!e.isNotFound()) throw;
            return std::nullopt;
        }
    };
    app::PreparedObjects prepared =
        appcontroller::prepareRendered(rendered, spec.destination.namespace_, instance, scope);
    if (!prepared.errors.empty()) {
        ctx.err << "error: the manifests at " << revision.sha << " cannot be compared:\n";
        for (const auto& e : prepared.errors) ctx.err << "  " << e << "\n";
        return kExitDiffError;
    }

    // Live objects: one GET per desired object and per inventory entry (prune candidates).
    const json statusInventory = application.contains("status") && application["status"].is_object()
                                     ? application["status"].value("inventory", json::array())
                                     : json::array();
    std::vector<app::InventoryEntry> inventory = app::parseInventory(statusInventory);
    std::map<app::ResourceKey, std::string> versions;
    for (const auto& e : inventory) versions.emplace(e.key(), e.version);
    for (const auto& o : prepared.objects)
        versions[app::ResourceKey::of(o)] = kube::GroupVersionKind::of(o).version;
    std::map<app::ResourceKey, std::shared_ptr<const json>> live;
    for (const auto& [key, version] : versions) {
        kube::GroupVersionKind gvk{key.group, version, key.kind};
        try {
            live[key] = std::make_shared<const json>(ctx.client.get(gvk, key.ns, key.name));
        } catch (const kube::ApiError& e) {
            if (!e.isNotFound()) throw;
            live[key] = nullptr;
        }
    }
    app::CompareInput in;
    in.instance = instance;
    in.desired = std::make_shared<const std::vector<json>>(prepared.objects);
    in.inventory = inventory;
    in.ignore = spec.ignoreDifferences;
    in.manager = kFieldManager;
    in.live = [&](const app::ResourceKey& k) -> std::shared_ptr<const json> {
        auto it = live.find(k);
        return it == live.end() ? nullptr : it->second;
    };
    const app::CompareResult compared = app::compare(in);

    UnifiedOptions uo;
    uo.color = ctx.color;
    bool different = false;
    for (const auto& r : compared.resources) {
        const bool prune = !r.desired && r.requiresPruning;
        if (!prune && (r.state == app::SyncState::Synced || !r.desired)) continue;
        different = true;
        std::string liveText, desiredText;
        if (prune) {
            liveText = toYamlText(withoutServerFields(*r.live));
        } else {
            ProjectedPair p = project(*r.desired, r.live ? *r.live : json(), spec.ignoreDifferences,
                                      kFieldManager);
            desiredText = toYamlText(p.desired);
            if (!p.live.is_null()) liveText = toYamlText(p.live);
        }
        const std::string label = fileLabel(r.key, r.version);
        uo.oldLabel = "live/" + label;
        uo.newLabel = "desired/" + label;
        ctx.out << header(r.key) << "\n";
        if (!r.ownedBy.empty())
            ctx.out << "# tracked by " << r.ownedBy << ": the controller does not apply it\n";
        std::string text = unifiedDiff(liveText, desiredText, uo);
        if (text.empty()) {
            // compare() saw a difference the YAML does not show (e.g. a value of equal text
            // but another type); name the fields instead.
            for (const auto& d : r.diff.differences) text += "# differs: " + d.path + "\n";
        }
        ctx.out << text;
    }
    return different ? kExitError : kExitOk;
}

}  // namespace sluice::plugin
