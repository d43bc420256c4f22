#pragma once
// The Applications' sources: which revision a source's targetRevision names now (git commit or
// chart version), the repository credentials, plugins and cluster facts a render needs, and the
// desired state rendered and prepared from a revision.
//
// It owns the caches that keep this cheap with many Applications: recent resolves (shared by
// every Application of a repository and revision, failures included for a few seconds), the
// rendered output and the prepared desired states by content, the cluster's version, and the
// plugin ConfigMap.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "clusters.h"
#include "sluice/appcontroller/controller.h"
#include "sluice/appengine/plan.h"
#include "sluice/kube/client.h"
#include "sluice/source/service.h"
#include "sluice/util/clock.h"
#include "sluice/util/lru_cache.h"
#include "types.h"

namespace sluice::appcontroller {

namespace detail {

template <class Value>
using LruCache = util::LruCache<Value>;

}  // namespace detail

class Sources {
  public:
    // gitFetches, gitErrors: counted for every resolve.
    Sources(kube::KubeClient& client, git::GitSource& git, const Clock& clock, const Options& opts,
            const BaseInformers& base, std::atomic<uint64_t>& gitFetches,
            std::atomic<uint64_t>& gitErrors);

    // Every source's revision (spec.sources order), reusing a resolve that started at or after
    // freshAfter and is younger than pollInterval. fetched: some source was fetched. Throws
    // git::GitError.
    std::vector<git::Revision> resolveTargets(const appengine::ApplicationSpec& spec,
                                              Clock::TimePoint freshAfter, bool& fetched);
    // A revision an operation names, always fetched. Throws git::GitError.
    git::Revision resolveExact(const appengine::Source& source, const std::string& revision);
    // The ref HEAD of a repository (normalised URL) resolved to when last resolved; nothing
    // when unknown.
    std::optional<std::string> defaultBranchRef(const std::string& normalisedUrl);

    // The desired state of these revisions, rendered and prepared (not compared yet). Throws
    // git::GitError / render::RenderError; problems in the manifests are returned in
    // prepared.errors.
    // Rendered for the destination cluster: its version and API versions, and its discovery
    // for which kinds are namespaced.
    Desired desiredFor(const AppRef& ref, const appengine::ApplicationSpec& spec,
                       const std::vector<git::Revision>& revisions,
                       const std::vector<appengine::InventoryEntry>& inventory, Cluster& cluster);

  private:
    struct Resolved {
        git::Revision revision;
        Clock::TimePoint resolvedAt;
        // The last resolve failed: reported again, without fetching, for a short while (a
        // broken repository is not hammered by every watch event of the Applications using it).
        std::optional<git::GitError> error;
    };

    git::Revision resolveTarget(const appengine::Source& source, Clock::TimePoint freshAfter,
                                bool& fetched);
    git::Repository repositoryFor(const std::string& repoURL);
    source::HelmCredentials helmCredentialsFor(const std::string& repoURL);
    // The config management plugins of the plugin ConfigMap (read at most every few seconds).
    std::vector<source::PluginDefinition> pluginDefinitions();

    kube::KubeClient& client_;
    const Clock& clock_;
    const Options& opts_;
    const BaseInformers& base_;
    std::atomic<uint64_t>& gitFetches_;
    std::atomic<uint64_t>& gitErrors_;

    std::mutex mu_;  // guards resolved_
    // (normalised repoURL [+ "\n" chart], targetRevision) -> its last resolve.
    std::map<std::pair<std::string, std::string>, Resolved> resolved_;
    // Desired states prepared from renders, by (render key, destination namespace, instance):
    // an unchanged source is neither rendered nor prepared again on every reconcile.
    detail::LruCache<std::shared_ptr<const appengine::PreparedObjects>> preparedStates_{1024};
    // Each render key's source types, so a prepared state found above needs no render.
    detail::LruCache<std::shared_ptr<const std::vector<std::string>>> sourceTypes_{4096};
    std::mutex pluginsMu_;
    std::optional<Clock::TimePoint> pluginsReadAt_;
    std::vector<source::PluginDefinition> plugins_;
    // Renders every source type with the real tools and caches the output by content. Last, so
    // it goes first: its hooks call the members above.
    std::unique_ptr<source::SourceService> service_;
};

}  // namespace sluice::appcontroller
