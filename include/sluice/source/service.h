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

#include "sluice/app/spec.h"
#include "sluice/git/git.h"
#include "sluice/source/source.h"
#include "sluice/util/lru_cache.h"

namespace sluice::source {

// Credentials of a Helm (HTTP or OCI) repository, from a repository Secret of type helm.
struct HelmCredentials {
    std::string username;
    std::string password;
    std::string tlsClientCertData;  // PEM
    std::string tlsClientCertKey;   // PEM
    bool insecure = false;          // skip TLS verification
    bool plainHttp = false;         // OCI over HTTP (Argo CD's insecureOCIForceHttp)
    bool passCredentials = false;
    bool enableOCI = false;  // a repository Secret said the URL is an OCI registry
};

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

class SourceService {
  public:
    SourceService(git::GitSource& git, Settings settings, ServiceHooks hooks, int concurrency = 4);
    ~SourceService();

    const Settings& settings() const { return settings_; }

    // The revision targetRevision names now: a commit of a git source (GitError when it
    // cannot be fetched), or the chart version a constraint selects (GitError too, so a chart
    // repository that is down is reported and retried like a git remote).
    git::Revision resolve(const app::Source& source, const std::string& targetRevision);

    // Renders every source at its revision (revisions[i] for sources[i]). Throws
    // render::RenderError / git::GitError; never returns a partial result.
    RenderedPtr render(const std::vector<app::Source>& sources,
                       const std::vector<std::string>& revisions, const RenderContext& context);

    // What render() caches under: repository, revision, source spec, refs, context, tool.
    std::string cacheKey(const std::vector<app::Source>& sources,
                         const std::vector<std::string>& revisions, const RenderContext& context);

    // Renders actually run (cache misses), for tests and benchmarks.
    uint64_t renders() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    Settings settings_;
};

// A digest (hex SHA-256) of text, for cache keys.
std::string digest(const std::string& text);

}  // namespace sluice::source
