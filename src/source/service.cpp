#include "sluice/source/service.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <regex>

#include "trees.h"

namespace sluice::source {

namespace fs = std::filesystem;
using nlohmann::json;

std::string digest(const std::string& text) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        out.push_back(hex[md[i] >> 4]);
        out.push_back(hex[md[i] & 15]);
    }
    return out;
}

bool isOciRepository(const std::string& repoURL, bool enableOCI) {
    if (repoURL.rfind("oci://", 0) == 0) return true;
    return enableOCI || repoURL.find("://") == std::string::npos;
}

bool isExactVersion(const std::string& version) {
    static const std::regex exact(R"(^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$)");
    return std::regex_match(version, exact);
}

appengine::PreparedObjects prepareRendered(const std::vector<render::Object>& rendered,
                                           const std::string& destinationNamespace,
                                           const std::string& instance,
                                           const appengine::ScopeLookup& scope) {
    std::vector<json> manifests;
    std::vector<std::string> where;
    manifests.reserve(rendered.size());
    where.reserve(rendered.size());
    for (const auto& obj : rendered) {
        manifests.push_back(obj.manifest);
        where.push_back(obj.line > 0 ? obj.sourceFile + ":" + std::to_string(obj.line)
                                     : obj.sourceFile);
    }
    return appengine::prepareDesired(manifests, where, destinationNamespace, instance, scope);
}

namespace {

// At most `limit` renders at once: a slow chart holds one slot, never the others.
class Slots {
  public:
    explicit Slots(int limit) : free_(std::max(limit, 1)) {}
    void acquire() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return free_ > 0; });
        --free_;
    }
    void release() {
        {
            std::lock_guard lock(mu_);
            ++free_;
        }
        cv_.notify_one();
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    int free_;
};

std::vector<std::string> fileNamesIn(const std::vector<git::File>& files) {
    std::vector<std::string> names;
    for (const auto& f : files) names.push_back(f.path.substr(f.path.rfind('/') + 1));
    return names;
}

}  // namespace

struct SourceService::Impl {
    git::GitSource& git;
    ServiceHooks hooks;
    TreeCache trees;
    ChartCache charts;
    Slots slots;
    util::LruCache<RenderedPtr> cache{4096};
    std::mutex mu;
    std::map<std::string, std::shared_future<RenderedPtr>> inFlight;
    std::atomic<uint64_t> renders{0};

    Impl(git::GitSource& g, const Settings& s, ServiceHooks h, int concurrency)
        : git(g),
          hooks(std::move(h)),
          trees(g, s.workDir / "trees"),
          charts(s, s.workDir / "charts"),
          slots(concurrency) {}

    git::Repository repositoryFor(const std::string& url) {
        return hooks.gitRepository ? hooks.gitRepository(url) : git::Repository{url, {}};
    }
    // The Secret's credentials, passed to other domains when the Secret or the Application's
    // helm.passCredentials says so.
    HelmCredentials helmCredentialsFor(const appengine::Source& source) {
        HelmCredentials c =
            hooks.helmCredentials ? hooks.helmCredentials(source.repoURL) : HelmCredentials{};
        if (source.helm && source.helm->passCredentials) c.passCredentials = true;
        return c;
    }

    RenderedPtr renderAll(const Settings& settings, const std::vector<appengine::Source>& sources,
                          const std::vector<std::string>& revisions, const RenderContext& ctx);
    std::vector<render::Object> renderOne(const Settings& settings, const appengine::Source& source,
                                          const std::string& revision, const RenderContext& ctx,
                                          const std::map<std::string, fs::path>& refs,
                                          std::string& type);
};

SourceService::SourceService(git::GitSource& git, Settings settings, ServiceHooks hooks,
                             int concurrency)
    : settings_(std::move(settings)) {
    if (settings_.workDir.empty())
        settings_.workDir =
            fs::temp_directory_path() / ("sluice-sources-" + std::to_string(getpid()));
    fs::create_directories(settings_.workDir);
    // Tools run in other directories: every path handed to them must be absolute.
    settings_.workDir = fs::absolute(settings_.workDir);
    impl_ = std::make_unique<Impl>(git, settings_, std::move(hooks), concurrency);
}

SourceService::~SourceService() = default;

uint64_t SourceService::renders() const {
    return impl_->renders.load();
}

git::Revision SourceService::resolve(const appengine::Source& source,
                                     const std::string& targetRevision) {
    if (!source.isHelmRepository())
        return impl_->git.resolve(impl_->repositoryFor(source.repoURL), targetRevision);
    HelmCredentials creds = impl_->helmCredentialsFor(source);
    std::string version =
        impl_->charts.resolve(source.repoURL, source.chart, targetRevision, creds);
    return git::Revision{version, targetRevision};
}

namespace {

// The part of the context a source's output can depend on, so that Applications that differ
// only in what their renderer never reads share one render: a Helm chart with an explicit
// release name and namespace renders the same for every Application.
json contextKey(const appengine::Source& s, const RenderContext& ctx) {
    const auto type = explicitType(s);
    if (type == SourceType::Helm) {
        const appengine::HelmSource helm = s.helm ? *s.helm : appengine::HelmSource{};
        return {helm.releaseName.empty() ? ctx.appName : "",
                helm.namespace_.empty() ? ctx.destinationNamespace : "",
                helm.kubeVersion.empty() ? ctx.kubeVersion : "",
                helm.apiVersions.empty() ? json(ctx.apiVersions) : json()};
    }
    if (type == SourceType::Directory && !s.jsonnet) return json();
    // Kustomize (envsubst, helmCharts), plugins, Jsonnet and undetected types may read all.
    return {ctx.appName, ctx.appNamespace, ctx.destinationNamespace, ctx.kubeVersion,
            ctx.apiVersions};
}

}  // namespace

std::string SourceService::cacheKey(const std::vector<appengine::Source>& sources,
                                    const std::vector<std::string>& revisions,
                                    const RenderContext& ctx) {
    json key = json::array();
    for (size_t i = 0; i < sources.size(); ++i) {
        const appengine::Source& s = sources[i];
        std::string tool;
        if (auto type = explicitType(s)) tool = rendererFor(*type).version(settings_);
        key.push_back({s.raw, i < revisions.size() ? revisions[i] : "", tool, contextKey(s, ctx)});
    }
    // Every Helm or Kustomize tool version counts: the type may only be known after listing.
    key.push_back({rendererFor(SourceType::Helm).version(settings_),
                   rendererFor(SourceType::Kustomize).version(settings_)});
    return digest(key.dump());
}

namespace {

// The context of an Application's render: the Application, its destination namespace and the
// destination cluster's versions (Helm's defaults when the server has not said).
RenderContext applicationContext(const std::string& appName, const std::string& appNamespace,
                                 const appengine::ApplicationSpec& spec,
                                 const ClusterVersions& cluster) {
    RenderContext ctx;
    ctx.appName = appName;
    ctx.appNamespace = appNamespace;
    ctx.destinationNamespace = spec.destination.namespace_;
    ctx.kubeVersion = helmKubeVersion(cluster.gitVersion);
    ctx.apiVersions = cluster.apiVersions;
    return ctx;
}

}  // namespace

RenderRequest SourceService::request(const std::string& appName, const std::string& appNamespace,
                                     const appengine::ApplicationSpec& spec,
                                     std::vector<std::string> revisions,
                                     const ClusterVersions& cluster) {
    RenderRequest r{spec.sources, std::move(revisions),
                    applicationContext(appName, appNamespace, spec, cluster), ""};
    r.key = cacheKey(r.sources, r.revisions, r.context);
    return r;
}

RenderedPtr SourceService::render(const RenderRequest& request) {
    return renderKeyed(request.key, request.sources, request.revisions, request.context);
}

RenderedPtr SourceService::render(const std::vector<appengine::Source>& sources,
                                  const std::vector<std::string>& revisions,
                                  const RenderContext& context) {
    return renderKeyed(cacheKey(sources, revisions, context), sources, revisions, context);
}

RenderedPtr SourceService::renderKeyed(const std::string& key,
                                       const std::vector<appengine::Source>& sources,
                                       const std::vector<std::string>& revisions,
                                       const RenderContext& context) {
    if (auto hit = impl_->cache.get(key)) return hit;
    std::promise<RenderedPtr> promise;
    std::shared_future<RenderedPtr> future;
    bool leader = false;
    {
        std::lock_guard lock(impl_->mu);
        auto it = impl_->inFlight.find(key);
        if (it != impl_->inFlight.end()) {
            future = it->second;
        } else {
            future = promise.get_future().share();
            impl_->inFlight.emplace(key, future);
            leader = true;
        }
    }
    if (!leader) return future.get();  // the same render is running: share its result
    try {
        impl_->slots.acquire();
        RenderedPtr result;
        try {
            result = impl_->renderAll(settings_, sources, revisions, context);
        } catch (...) {
            impl_->slots.release();
            throw;
        }
        impl_->slots.release();
        impl_->cache.put(key, result, std::max<size_t>(result->objects.size(), 1));
        promise.set_value(result);
    } catch (...) {
        promise.set_exception(std::current_exception());
    }
    {
        std::lock_guard lock(impl_->mu);
        impl_->inFlight.erase(key);
    }
    return future.get();
}

RenderedPtr SourceService::Impl::renderAll(const Settings& settings,
                                           const std::vector<appengine::Source>& sources,
                                           const std::vector<std::string>& revisions,
                                           const RenderContext& ctx) {
    ++renders;
    // Trees of the ref sources, named for "$ref/..." value files.
    std::map<std::string, std::shared_ptr<const Tree>> refTrees;
    std::map<std::string, fs::path> refs;
    for (size_t i = 0; i < sources.size(); ++i) {
        const appengine::Source& s = sources[i];
        if (s.ref.empty() || s.isHelmRepository()) continue;
        auto tree = trees.acquire(repositoryFor(s.repoURL), revisions.at(i));
        refs[s.ref] = tree->path;
        refTrees[s.ref] = std::move(tree);
    }
    auto out = std::make_shared<RenderedSources>();
    size_t bytes = 0;
    for (size_t i = 0; i < sources.size(); ++i) {
        std::string type;
        if (sources[i].rendersManifests()) {
            RenderContext c = ctx;
            c.revision = revisions.at(i);
            for (auto& obj : renderOne(settings, sources[i], revisions.at(i), c, refs, type)) {
                const size_t size = obj.manifest.dump().size();
                if (size > kMaxObjectBytes)
                    throw render::RenderError(
                        obj.sourceFile, obj.line,
                        obj.manifest.value("kind", "") + " " +
                            obj.manifest["metadata"].value("name", "") + " is " +
                            std::to_string(size / 1024) +
                            " KiB, above the API server's limit of 1.5 MiB per object; refused");
                bytes += size;
                out->objects.push_back(std::move(obj));
            }
            if (bytes > settings.maxOutputBytes)
                throw render::RenderError(sources[i].path.empty() ? "." : sources[i].path, 0,
                                          "the rendered manifests exceed " +
                                              std::to_string(settings.maxOutputBytes >> 20) +
                                              " MiB; refused");
        }
        out->sourceTypes.push_back(type);
    }
    return out;
}

std::vector<render::Object> SourceService::Impl::renderOne(
    const Settings& settings, const appengine::Source& source, const std::string& revision,
    const RenderContext& ctx, const std::map<std::string, fs::path>& refs, std::string& typeOut) {
    std::shared_ptr<const Tree> tree;
    fs::path root;
    fs::path appDir;
    SourceType type = SourceType::Helm;
    if (source.isHelmRepository()) {
        root = charts.pull(source.repoURL, source.chart, revision, helmCredentialsFor(source));
        appDir = root / source.chart.substr(source.chart.rfind('/') + 1);
    } else {
        const git::Repository repo = repositoryFor(source.repoURL);
        auto explicitT = explicitType(source);
        std::vector<git::File> listed;
        if (!explicitT || *explicitT == SourceType::Directory)
            listed = git.listFiles(repo, revision, source.path, source.recurse);
        type = explicitT ? *explicitT : detectType(source, fileNamesIn(listed));
        bool jsonnet = false;
        for (const auto& f : listed)
            if (f.path.size() > 8 && f.path.compare(f.path.size() - 8, 8, ".jsonnet") == 0)
                jsonnet = true;
        if (type == SourceType::Directory && !jsonnet) {
            // Plain manifests are read straight from git: no tree on disk needed.
            typeOut = typeName(type);
            render::Options o;
            o.path = source.path;
            o.recurse = source.recurse;
            o.include = source.include;
            o.exclude = source.exclude;
            o.maxBytes = settings.maxOutputBytes;
            return render::renderRevision(git, repo, revision, o);
        }
        tree = trees.acquire(repo, revision);
        root = tree->path;
        appDir = root / git::normalisePath(source.path);
    }
    typeOut = typeName(type);
    ScratchDir scratch(settings.workDir / "scratch");
    RenderInput input{source,
                      type,
                      root,
                      appDir,
                      refs,
                      ctx,
                      settings,
                      scratch.path,
                      [this](const std::string& url) {
                          HelmCredentials c = hooks.helmCredentials ? hooks.helmCredentials(url)
                                                                    : HelmCredentials{};
                          return std::make_pair(c.username, c.password);
                      }};
    try {
        return rendererFor(type).render(input);
    } catch (const fs::filesystem_error& e) {
        throw render::RenderError(source.path.empty() ? "." : source.path, 0, e.what());
    }
}

}  // namespace sluice::source
