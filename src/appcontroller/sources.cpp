// Resolving the Applications' sources and rendering them into desired states; how sources and
// revisions are recorded in the status.
#include "sources.h"

#include <spdlog/spdlog.h>

#include "sluice/source/repository.h"
#include "sluice/util/strings.h"
#include "util.h"

namespace sluice::appcontroller {

namespace {

// A failed resolve is reported again without fetching for this long (unless forced).
constexpr auto kFailedResolveReuse = std::chrono::seconds(5);

// The repository Secrets the controller's informers hold.
std::vector<std::shared_ptr<const json>> repositorySecrets(
    const std::vector<cache::Informer*>& secretInformers) {
    std::vector<std::shared_ptr<const json>> secrets;
    for (cache::Informer* informer : secretInformers) {
        auto listed = informer->store().list();
        secrets.insert(secrets.end(), listed.begin(), listed.end());
    }
    return secrets;
}

}  // namespace

json recordedOperation(const json& operation) {
    json out = operation;
    if (out.is_object() && out.contains("sync") && out["sync"].is_object())
        for (const char* k : {"source", "sources"})
            if (out["sync"].contains(k)) out["sync"][k] = source::redactedSources(out["sync"][k]);
    return out;
}

json revisionAndSource(const AppRef& ref, const appengine::ApplicationSpec& spec,
                       const Desired& d) {
    const json& rawSpec = ref.object.at("spec");
    if (spec.multiSource)
        return {{"revisions", d.revisions},
                {"sources", source::redactedSources(rawSpec.value("sources", json::array()))}};
    return {{"revision", d.revision.sha},
            {"source", source::redactedSources(rawSpec.value("source", json::object()))}};
}

std::string recordedRevision(const json& entry) {
    if (!entry.is_object()) return {};
    if (auto it = entry.find("revisions"); it != entry.end() && it->is_array()) {
        std::vector<std::string> parts;
        for (const auto& r : *it) parts.push_back(r.is_string() ? r.get<std::string>() : "");
        return join(parts, ",");
    }
    auto it = entry.find("revision");
    return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Sources::Sources(kube::KubeClient& client, git::GitSource& git, const Clock& clock,
                 const Options& opts, const BaseInformers& base, std::atomic<uint64_t>& gitFetches,
                 std::atomic<uint64_t>& gitErrors)
    : client_(client),
      clock_(clock),
      opts_(opts),
      base_(base),
      gitFetches_(gitFetches),
      gitErrors_(gitErrors) {
    source::Settings settings = opts.sources;
    settings.plugins = [this] { return pluginDefinitions(); };
    source::ServiceHooks hooks;
    hooks.gitRepository = [this](const std::string& url) { return repositoryFor(url); };
    hooks.helmCredentials = [this](const std::string& url) { return helmCredentialsFor(url); };
    service_ = std::make_unique<source::SourceService>(git, std::move(settings), std::move(hooks),
                                                       opts.renderConcurrency);
}

git::Repository Sources::repositoryFor(const std::string& repoURL) {
    return source::repositoryFromSecrets(repoURL, repositorySecrets(base_.secrets));
}

git::Revision Sources::resolveTarget(const appengine::Source& source, Clock::TimePoint freshAfter,
                                     bool& fetched) {
    fetched = false;
    const auto key = std::make_pair(source::normaliseRepoUrl(source.repoURL) +
                                        (source.chart.empty() ? "" : "\n" + source.chart),
                                    source.targetRevision);
    const auto now = clock_.now();
    {
        std::lock_guard lock(mu_);
        auto it = resolved_.find(key);
        if (it != resolved_.end() && it->second.resolvedAt >= freshAfter) {
            const auto age = now - it->second.resolvedAt;
            const Clock::TimePoint::duration reuse =
                std::min<Clock::TimePoint::duration>(opts_.pollInterval, kFailedResolveReuse);
            if (it->second.error && age < reuse) throw *it->second.error;
            if (!it->second.error && age < opts_.pollInterval) return it->second.revision;
        }
    }
    gitFetches_++;
    git::Revision revision;
    // Entries are stamped with the time the fetch started: a refresh asked for while it ran
    // is not satisfied by it.
    try {
        revision = service_->resolve(source, source.targetRevision);
    } catch (const git::GitError& e) {
        gitErrors_++;
        std::lock_guard lock(mu_);
        resolved_[key] = Resolved{{}, now, e};
        throw;
    } catch (...) {
        gitErrors_++;
        throw;
    }
    fetched = true;
    std::lock_guard lock(mu_);
    auto& entry = resolved_[key];
    if (entry.resolvedAt <= now) entry = Resolved{revision, now, std::nullopt};
    return revision;
}

git::Revision Sources::resolveExact(const appengine::Source& source, const std::string& revision) {
    gitFetches_++;
    try {
        return service_->resolve(source, revision);
    } catch (...) {
        gitErrors_++;
        throw;
    }
}

std::optional<std::string> Sources::defaultBranchRef(const std::string& normalisedUrl) {
    std::lock_guard lock(mu_);
    auto it = resolved_.find({normalisedUrl, "HEAD"});
    if (it == resolved_.end()) it = resolved_.find({normalisedUrl, ""});
    if (it == resolved_.end() || it->second.revision.ref.empty() ||
        it->second.revision.ref == "HEAD")
        return std::nullopt;
    return it->second.revision.ref;
}

std::vector<git::Revision> Sources::resolveTargets(const appengine::ApplicationSpec& spec,
                                                   Clock::TimePoint freshAfter, bool& fetched) {
    std::vector<git::Revision> out;
    fetched = false;
    for (const auto& source : spec.sources) {
        bool one = false;
        out.push_back(resolveTarget(source, freshAfter, one));
        fetched = fetched || one;
    }
    return out;
}

source::HelmCredentials Sources::helmCredentialsFor(const std::string& repoURL) {
    return source::helmCredentialsFromSecrets(repoURL, repositorySecrets(base_.secrets));
}

std::vector<source::PluginDefinition> Sources::pluginDefinitions() {
    std::lock_guard lock(pluginsMu_);
    const auto now = clock_.now();
    if (pluginsReadAt_ && now - *pluginsReadAt_ < std::chrono::seconds(5)) return plugins_;
    pluginsReadAt_ = now;
    plugins_.clear();
    try {
        const kube::GroupVersionKind gvk{"", "v1", "ConfigMap"};
        json cm = client_.get(gvk, opts_.controlNamespace, opts_.pluginConfigMap);
        std::vector<std::string> errors;
        plugins_ = source::parsePluginConfigMap(cm, errors);
        for (const auto& e : errors)
            spdlog::warn("plugin ConfigMap {}/{}: {}", opts_.controlNamespace,
                         opts_.pluginConfigMap, e);
    } catch (const kube::ApiError& e) {
        if (!e.isNotFound())
            spdlog::warn("cannot read the plugin ConfigMap {}/{}: {}", opts_.controlNamespace,
                         opts_.pluginConfigMap, e.what());
    }
    return plugins_;
}

Desired Sources::desiredFor(const AppRef& ref, const appengine::ApplicationSpec& spec,
                            const std::vector<git::Revision>& revisions,
                            const std::vector<appengine::InventoryEntry>& inventory,
                            Cluster& cluster) {
    Desired d;
    d.inventory = inventory;
    for (const auto& r : revisions) d.revisions.push_back(r.sha);
    d.revision =
        revisions.size() == 1 ? revisions.front() : git::Revision{join(d.revisions, ","), ""};
    const kube::ServerInfo info = cluster.serverInfo();
    const source::RenderRequest request =
        service_->request(ref.name, ref.ns, spec, d.revisions, {info.version, info.groupVersions});
    const std::string& renderKey = request.key;
    const std::string preparedKey = renderKey + "\n" + spec.destination.namespace_ + "\n" +
                                    ref.instance + "\n" + cluster.entry().server;
    auto types = sourceTypes_.get(renderKey);
    if (auto hit = preparedStates_.get(preparedKey); hit && types) {
        d.prepared = std::move(hit);
        d.preparedKey = preparedKey;
        d.sourceTypes = *types;
        return d;
    }
    source::RenderedPtr rendered = service_->render(request);
    d.sourceTypes = rendered->sourceTypes;
    sourceTypes_.put(renderKey, std::make_shared<const std::vector<std::string>>(d.sourceTypes), 1);
    auto prepared = std::make_shared<const appengine::PreparedObjects>(
        source::prepareRendered(rendered->objects, spec.destination.namespace_, ref.instance,
                                cluster.live().scopeLookup()));
    d.prepared = prepared;
    // Only a complete result is kept: a kind unknown now may be served after a CRD install.
    if (prepared->errors.empty()) {
        preparedStates_.put(preparedKey, prepared, prepared->objects.size());
        d.preparedKey = preparedKey;
    }
    return d;
}

}  // namespace sluice::appcontroller
