#pragma once
// Turns an Application's sources into objects: resolves each source's revision (a git commit or
// a chart version), lays the files on disk once per (repository, revision), renders with the
// source type's Renderer on a bounded pool, and caches the result by everything that can change
// it. Used by the controller and by `kubectl sluice` alike.
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sluice/appengine/plan.h"
#include "sluice/appengine/spec.h"
#include "sluice/git/git.h"
#include "sluice/source/repository.h"
#include "sluice/source/source.h"
#include "sluice/util/lru_cache.h"

namespace sluice::source {

// Whether a chart source's repoURL names an OCI registry (oci://, or no scheme, as Argo CD takes).
bool isOciRepository(const std::string& repoURL, bool enableOCI);

// An exact chart version ("1.2.3", "v1.2.3-rc.1"); anything else is a constraint to resolve.
bool isExactVersion(const std::string& version);

struct ServiceHooks {
    // Repository (URL and credentials) for a git repoURL.
    std::function<git::Repository(const std::string& repoURL)> gitRepository;
    // Credentials for a Helm repository URL.
    std::function<HelmCredentials(const std::string& repoURL)> helmCredentials;
};

// The rendered objects of all sources, and each source's type ("" for a ref-only source).
struct RenderedSources {
    std::vector<render::Object> objects;
    std::vector<std::string> sourceTypes;
};
using RenderedPtr = std::shared_ptr<const RenderedSources>;

// The destination cluster as renders see it (Helm's --kube-version and --api-versions): the
// server's /version gitVersion ("v1.32.3-gke.1") and served group/versions; empty when the
// server has not said, and the tools take their defaults.
struct ClusterVersions {
    std::string gitVersion;
    std::vector<std::string> apiVersions;
};

// One render of an Application's sources: sources[i] at revisions[i] in `context`, and the key
// SourceService caches the result under. Refers to the spec's sources: valid while they are.
struct RenderRequest {
    const std::vector<appengine::Source>& sources;
    std::vector<std::string> revisions;
    RenderContext context;
    std::string key;
};

// The rendered objects readied for compare and apply (appengine::prepareDesired with "file:line"
// sources), for an Application whose destination namespace is destinationNamespace and whose
// instance name is `instance` (appengine::instanceName()).
appengine::PreparedObjects prepareRendered(const std::vector<render::Object>& rendered,
                                           const std::string& destinationNamespace,
                                           const std::string& instance,
                                           const appengine::ScopeLookup& scope);

class SourceService {
  public:
    SourceService(git::GitSource& git, Settings settings, ServiceHooks hooks, int concurrency = 4);
    ~SourceService();

    const Settings& settings() const { return settings_; }

    // The revision targetRevision names now: a commit of a git source (GitError when it
    // cannot be fetched), or the chart version a constraint selects (GitError too, so a chart
    // repository that is down is reported and retried like a git remote).
    git::Revision resolve(const appengine::Source& source, const std::string& targetRevision);

    // The render of the Application appNamespace/appName's sources (spec.sources) at
    // `revisions`, in its context, with the key render() caches it under: the controller and
    // `kubectl sluice app diff/manifests` render an Application alike.
    RenderRequest request(const std::string& appName, const std::string& appNamespace,
                          const appengine::ApplicationSpec& spec,
                          std::vector<std::string> revisions, const ClusterVersions& cluster);

    // Renders every source at its revision (revisions[i] for sources[i]). Throws
    // render::RenderError / git::GitError; never returns a partial result.
    RenderedPtr render(const RenderRequest& request);
    RenderedPtr render(const std::vector<appengine::Source>& sources,
                       const std::vector<std::string>& revisions, const RenderContext& context);

    // What render() caches under: repository, revision, source spec, refs, context, tool.
    std::string cacheKey(const std::vector<appengine::Source>& sources,
                         const std::vector<std::string>& revisions, const RenderContext& context);

    // Renders actually run (cache misses), for tests and benchmarks.
    uint64_t renders() const;

  private:
    RenderedPtr renderKeyed(const std::string& key, const std::vector<appengine::Source>& sources,
                            const std::vector<std::string>& revisions,
                            const RenderContext& context);

    struct Impl;
    std::unique_ptr<Impl> impl_;
    Settings settings_;
};

// A digest (hex SHA-256) of text, for cache keys.
std::string digest(const std::string& text);

}  // namespace sluice::source
