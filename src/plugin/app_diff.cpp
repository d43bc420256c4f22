// app diff: desired state rendered from git exactly as the Application controller renders it,
// compared with the live objects exactly as the controller compares them.
#include <ostream>
#include <set>

#include "commands.h"
#include "format.h"
#include "projection.h"
#include "sluice/appengine/plan.h"
#include "sluice/appengine/spec.h"
#include "sluice/appengine/tracking.h"
#include "sluice/render/render.h"
#include "sluice/source/repository.h"
#include "sluice/source/service.h"
#include "sluice/util/strings.h"
#include "sluice/util/yaml_json.h"
#include "unified_diff.h"

namespace sluice::plugin {

namespace {

constexpr const char* kFieldManager = "sluice";  // the controller's default field manager

std::vector<std::shared_ptr<const json>> repositorySecrets(Context& ctx) {
    std::vector<std::shared_ptr<const json>> secrets;
    const kube::GroupVersionKind secretGvk{"", "v1", "Secret"};
    for (const char* label : {source::kSecretTypeLabel, source::kArgoSecretTypeLabel}) {
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

// The revisions to render: --revision (one source); otherwise those the controller last
// compared, when compared for the current sources; otherwise the targets resolved now.
std::vector<std::string> wantedRevisions(const Context& ctx, const json& application,
                                         const appengine::ApplicationSpec& spec) {
    std::vector<std::string> targets;
    for (const auto& s : spec.sources) targets.push_back(s.targetRevision);
    if (!ctx.inv.revision.empty() && !spec.multiSource) return {ctx.inv.revision};
    if (ctx.inv.refresh) return targets;
    const json sync = application.contains("status") && application["status"].is_object()
                          ? application["status"].value("sync", json::object())
                          : json::object();
    const json compared = sync.value("comparedTo", json::object());
    const char* field = spec.multiSource ? "sources" : "source";
    if (!compared.is_object() ||
        compared.value(field, json()) !=
            source::redactedSources(application["spec"].value(field, json())))
        return targets;
    if (spec.multiSource) {
        auto revisions = sync.value("revisions", json::array());
        if (!revisions.is_array() || revisions.size() != targets.size()) return targets;
        std::vector<std::string> out;
        for (const auto& r : revisions) out.push_back(r.is_string() ? r.get<std::string>() : "");
        return out;
    }
    const std::string revision = sync.value("revision", "");
    return revision.empty() ? targets : std::vector<std::string>{revision};
}

}  // namespace

bool renderApplication(Context& ctx, const json& application,
                       const appengine::ApplicationSpec& spec, source::RenderedPtr& out,
                       std::string& revisionShown) {
    auto secrets = repositorySecrets(ctx);
    source::ServiceHooks hooks;
    hooks.gitRepository = [&](const std::string& url) {
        return source::repositoryFromSecrets(url, secrets);
    };
    hooks.helmCredentials = [&](const std::string& url) {
        return source::helmCredentialsFromSecrets(url, secrets);
    };
    source::Settings settings;
    // The controller's flags have no command line here: the same names as environment variables.
    for (auto [var, field] : {std::pair{"SLUICE_HELM_PATH", &settings.helmPath},
                              std::pair{"SLUICE_KUBECTL_PATH", &settings.kubectlPath},
                              std::pair{"SLUICE_KUSTOMIZE_PATH", &settings.kustomizePath}})
        if (const char* v = std::getenv(var); v && *v) *field = v;
    settings.plugins = [&ctx] {
        std::vector<source::PluginDefinition> plugins;
        try {
            json cm = ctx.client.get(kube::GroupVersionKind{"", "v1", "ConfigMap"},
                                     ctx.inv.controlNamespace, "sluice-cmp");
            std::vector<std::string> errors;
            plugins = source::parsePluginConfigMap(cm, errors);
        } catch (const kube::ApiError&) {
            // No plugin ConfigMap (or no access to it): no plugins, as for the controller.
        }
        return plugins;
    };
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    settings.workDir = !ctx.inv.repoCacheDir.empty()
                           ? std::filesystem::path(ctx.inv.repoCacheDir).parent_path() / "sources"
                       : xdg && *xdg ? std::filesystem::path(xdg) / "sluice" / "sources"
                       : home && *home
                           ? std::filesystem::path(home) / ".cache" / "sluice" / "sources"
                           : std::filesystem::temp_directory_path() / "sluice-sources";
    source::SourceService service(ctx.git(), settings, hooks);
    const std::vector<std::string> wanted = wantedRevisions(ctx, application, spec);
    std::vector<std::string> revisions;
    try {
        for (size_t i = 0; i < spec.sources.size(); ++i)
            revisions.push_back(service.resolve(spec.sources[i], wanted.at(i)).sha);
        source::ClusterVersions cluster;
        try {
            kube::ServerInfo info = ctx.client.serverInfo();
            cluster = {info.version, info.groupVersions};
        } catch (const std::exception&) {
            // As the controller: Helm's defaults when the server does not say.
        }
        out = service.render(service.request(
            kube::nameOf(application), kube::namespaceOf(application), spec, revisions, cluster));
    } catch (const git::GitError& e) {
        ctx.err << "error: " << git::scrubUrl(e.what()) << "\n";
        return false;
    } catch (const render::RenderError& e) {
        ctx.err << "error: rendering at " << join(revisions, ",") << ": " << git::scrubUrl(e.what())
                << "\n";
        return false;
    }
    revisionShown = join(revisions, ",");
    return true;
}

int appManifests(Context& ctx, const std::string& name) {
    json application = ctx.client.get(kApplicationGvk, ctx.ns, name);
    appengine::ParseResult parsed = appengine::parseApplication(application);
    for (const auto& e : parsed.errors)
        if (e.rfind("operation", 0) != 0) {
            ctx.err << "error: application " << name << " has an invalid spec: " << e << "\n";
            return kExitError;
        }
    source::RenderedPtr rendered;
    std::string revision;
    if (!renderApplication(ctx, application, parsed.spec, rendered, revision)) return kExitError;
    for (const auto& obj : rendered->objects) ctx.out << "---\n" << jsonToYaml(obj.manifest);
    return kExitOk;
}

namespace {

std::string header(const appengine::ResourceKey& k) {
    return "===== " + k.group + "/" + k.kind + " " + k.ns + "/" + k.name + " ======";
}

std::string fileLabel(const appengine::ResourceKey& k, const std::string& version) {
    std::string g = k.group.empty() ? "" : k.group + ".";
    return g + version + "." + k.kind + "." + (k.ns.empty() ? "" : k.ns + ".") + k.name;
}

// Live objects: one GET per desired object and per inventory entry (prune candidates); null
// for those that do not exist.
std::map<appengine::ResourceKey, std::shared_ptr<const json>> liveObjects(
    Context& ctx, const appengine::PreparedObjects& prepared,
    const std::vector<appengine::InventoryEntry>& inventory) {
    std::map<appengine::ResourceKey, std::string> versions;
    for (const auto& e : inventory) versions.emplace(e.key(), e.version);
    for (const auto& o : prepared.objects)
        versions[appengine::ResourceKey::of(o)] = kube::GroupVersionKind::of(o).version;
    std::map<appengine::ResourceKey, std::shared_ptr<const json>> live;
    for (const auto& [key, version] : versions) {
        kube::GroupVersionKind gvk{key.group, version, key.kind};
        try {
            live[key] = std::make_shared<const json>(ctx.client.get(gvk, key.ns, key.name));
        } catch (const kube::ApiError& e) {
            if (!e.isNotFound()) throw;
            live[key] = nullptr;
        }
    }
    return live;
}

// A unified diff (live -> desired) of each resource out of sync or to prune; whether any is.
bool printDifferences(Context& ctx, const appengine::CompareResult& compared,
                      const appengine::ApplicationSpec& spec) {
    UnifiedOptions uo;
    uo.color = ctx.color;
    bool different = false;
    for (const auto& r : compared.resources) {
        const bool prune = !r.desired && r.requiresPruning;
        if (!prune && (r.state == appengine::SyncState::Synced || !r.desired)) continue;
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
    return different;
}

}  // namespace

int appDiff(Context& ctx, const std::string& name) {
    json application = ctx.client.get(kApplicationGvk, ctx.ns, name);
    const std::string appNs = kube::namespaceOf(application);
    appengine::ParseResult parsed = appengine::parseApplication(application);
    std::vector<std::string> specErrors;
    for (const auto& e : parsed.errors)
        if (e.rfind("operation", 0) != 0) specErrors.push_back(e);
    if (!specErrors.empty()) {
        ctx.err << "error: application " << appNs << "/" << name << " has an invalid spec:\n";
        for (const auto& e : specErrors) ctx.err << "  " << e << "\n";
        return kExitDiffError;
    }
    const appengine::ApplicationSpec& spec = parsed.spec;
    const std::string instance = appengine::instanceName(appNs, name, ctx.inv.controlNamespace);

    source::RenderedPtr renderedSources;
    std::string revisionShown;
    if (!renderApplication(ctx, application, spec, renderedSources, revisionShown))
        return kExitDiffError;
    const std::vector<render::Object>& rendered = renderedSources->objects;
    git::Revision revision{revisionShown, ""};

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
    appengine::PreparedObjects prepared =
        source::prepareRendered(rendered, spec.destination.namespace_, instance, scope);
    if (!prepared.errors.empty()) {
        ctx.err << "error: the manifests at " << revision.sha << " cannot be compared:\n";
        for (const auto& e : prepared.errors) ctx.err << "  " << e << "\n";
        return kExitDiffError;
    }

    const json statusInventory = application.contains("status") && application["status"].is_object()
                                     ? application["status"].value("inventory", json::array())
                                     : json::array();
    std::vector<appengine::InventoryEntry> inventory = appengine::parseInventory(statusInventory);
    const auto live = liveObjects(ctx, prepared, inventory);
    appengine::CompareInput in;
    in.instance = instance;
    in.desired = std::make_shared<const std::vector<json>>(prepared.objects);
    in.inventory = inventory;
    in.ignore = spec.ignoreDifferences;
    in.manager = kFieldManager;
    in.live = [&](const appengine::ResourceKey& k) -> std::shared_ptr<const json> {
        auto it = live.find(k);
        return it == live.end() ? nullptr : it->second;
    };
    const appengine::CompareResult compared = appengine::compare(in);

    return printDifferences(ctx, compared, spec) ? kExitError : kExitOk;
}

}  // namespace sluice::plugin
