// Parsing of an Application's source (spec.source or one of spec.sources) with Argo CD's field
// names: directory, helm, kustomize and plugin blocks, a chart of a Helm repository, and the
// ref of a multi-source value file.
#include <set>

#include "sluice/appengine/spec.h"
#include "sluice/util/json_reader.h"
#include "spec_checks.h"

namespace sluice::appengine {

using detail::escapesRepository;
using Reader = util::JsonReader;
using nlohmann::json;

namespace {

// A list of objects; one error per item that is not an object.
template <class F>
void eachObject(const Reader& r, std::string_view key, F&& fn) {
    const json* list = r.array(key);
    if (list == nullptr) return;
    for (size_t i = 0; i < list->size(); ++i) {
        const std::string at = r.pathOf(key) + "[" + std::to_string(i) + "]";
        if (!(*list)[i].is_object()) {
            r.error(std::string(key) + "[" + std::to_string(i) + "]", "must be an object");
            continue;
        }
        fn((*list)[i], at);
    }
}

// A path that must stay in the repository (value files may also name a ref source).
void checkRepoPath(const Reader& r, std::string_view key, const std::string& path) {
    if (!path.empty() && path[0] == '$') return;  // "$ref/..." is checked when rendered
    if (escapesRepository(path))
        r.error(key, "must be a relative path inside the repository, got \"" + path + "\"");
}

void rejectToolVersion(const Reader& r, const std::string& allowed) {
    if (auto v = r.string("version"); v && !v->empty() && *v != allowed)
        r.error("version", "only " + std::string(allowed.empty() ? "the default" : allowed) +
                               " is available, got \"" + *v + "\"");
}

HelmSource parseHelm(const json& helm, const std::string& at, std::vector<std::string>& errors) {
    HelmSource out;
    Reader r(helm, at, errors);
    r.rejectUnknown({"valueFiles", "parameters", "releaseName", "values", "fileParameters",
                     "version", "passCredentials", "ignoreMissingValueFiles", "skipCrds",
                     "valuesObject", "namespace", "kubeVersion", "apiVersions",
                     "skipSchemaValidation", "skipTests"});
    rejectToolVersion(r, "v3");
    out.valueFiles = r.strings("valueFiles");
    for (const auto& f : out.valueFiles) checkRepoPath(r, "valueFiles", f);
    if (const json* values = r.field("values")) {
        // Argo CD takes a string; an object here is what valuesObject is for, but it is what
        // people write, so it is read as values too.
        out.values = values->is_string() ? values->get<std::string>() : values->dump();
    }
    if (const json* obj = r.object("valuesObject")) out.valuesObject = *obj;
    eachObject(r, "parameters", [&](const json& p, const std::string& pat) {
        Reader pr(p, pat, errors);
        pr.rejectUnknown({"name", "value", "forceString"});
        HelmParameter param;
        param.name = pr.string("name").value_or("");
        if (param.name.empty()) pr.error("name", "required");
        param.value = pr.string("value").value_or("");
        param.forceString = pr.boolean("forceString").value_or(false);
        out.parameters.push_back(std::move(param));
    });
    eachObject(r, "fileParameters", [&](const json& p, const std::string& pat) {
        Reader pr(p, pat, errors);
        pr.rejectUnknown({"name", "path"});
        HelmFileParameter param{pr.string("name").value_or(""), pr.string("path").value_or("")};
        if (param.name.empty()) pr.error("name", "required");
        if (param.path.empty()) pr.error("path", "required");
        checkRepoPath(pr, "path", param.path);
        out.fileParameters.push_back(std::move(param));
    });
    out.releaseName = r.string("releaseName").value_or("");
    out.namespace_ = r.string("namespace").value_or("");
    out.skipCrds = r.boolean("skipCrds").value_or(false);
    out.skipSchemaValidation = r.boolean("skipSchemaValidation").value_or(false);
    out.ignoreMissingValueFiles = r.boolean("ignoreMissingValueFiles").value_or(false);
    out.passCredentials = r.boolean("passCredentials").value_or(false);
    // skipTests: the Helm renderer always drops test hooks (Argo CD ignores them), so it
    // changes nothing.
    (void)r.boolean("skipTests");
    out.kubeVersion = r.string("kubeVersion").value_or("");
    out.apiVersions = r.strings("apiVersions");
    return out;
}

KustomizeSource parseKustomize(const json& k, const std::string& at,
                               std::vector<std::string>& errors) {
    KustomizeSource out;
    Reader r(k, at, errors);
    r.rejectUnknown({"namePrefix", "nameSuffix", "images", "commonLabels", "version",
                     "commonAnnotations", "forceCommonLabels", "forceCommonAnnotations",
                     "namespace", "commonAnnotationsEnvsubst", "replicas", "patches", "components",
                     "labelWithoutSelector", "kubeVersion", "apiVersions",
                     "ignoreMissingComponents"});
    rejectToolVersion(r, "");
    out.namePrefix = r.string("namePrefix").value_or("");
    out.nameSuffix = r.string("nameSuffix").value_or("");
    out.namespace_ = r.string("namespace").value_or("");
    out.images = r.strings("images");
    out.commonLabels = r.stringMap("commonLabels");
    out.commonAnnotations = r.stringMap("commonAnnotations");
    out.commonAnnotationsEnvsubst = r.boolean("commonAnnotationsEnvsubst").value_or(false);
    out.labelWithoutSelector = r.boolean("labelWithoutSelector").value_or(false);
    out.forceCommonLabels = r.boolean("forceCommonLabels").value_or(false);
    out.forceCommonAnnotations = r.boolean("forceCommonAnnotations").value_or(false);
    eachObject(r, "replicas", [&](const json& rep, const std::string& rat) {
        Reader rr(rep, rat, errors);
        rr.rejectUnknown({"name", "count"});
        KustomizeReplica replica;
        replica.name = rr.string("name").value_or("");
        if (replica.name.empty()) rr.error("name", "required");
        const json* count = rr.field("count");
        // Argo CD's count is an IntOrString.
        if (count && count->is_number_integer()) {
            replica.count = count->get<long long>();
        } else if (count && count->is_string() && !count->get<std::string>().empty() &&
                   count->get<std::string>().find_first_not_of("0123456789") == std::string::npos) {
            replica.count = std::stoll(count->get<std::string>());
        } else {
            rr.error("count", "must be a non-negative integer");
        }
        out.replicas.push_back(std::move(replica));
    });
    if (const json* patches = r.array("patches")) out.patches = *patches;
    out.components = r.strings("components");
    // Components are relative to the source path: whether they stay inside the repository is
    // checked when the overlay is built.
    out.ignoreMissingComponents = r.boolean("ignoreMissingComponents").value_or(false);
    out.kubeVersion = r.string("kubeVersion").value_or("");
    out.apiVersions = r.strings("apiVersions");
    return out;
}

std::vector<JsonnetVar> jsonnetVars(const Reader& r, std::string_view key,
                                    std::vector<std::string>& errors) {
    std::vector<JsonnetVar> out;
    eachObject(r, key, [&](const json& v, const std::string& vat) {
        Reader vr(v, vat, errors);
        vr.rejectUnknown({"name", "value", "code"});
        JsonnetVar var{vr.string("name").value_or(""), vr.string("value").value_or(""),
                       vr.boolean("code").value_or(false)};
        if (var.name.empty()) vr.error("name", "required");
        out.push_back(std::move(var));
    });
    return out;
}

void parseDirectory(const json& dir, const std::string& at, Source& out,
                    std::vector<std::string>& errors) {
    Reader d(dir, at, errors);
    d.rejectUnknown({"recurse", "jsonnet", "include", "exclude"});
    out.directory = true;
    if (auto recurse = d.boolean("recurse")) out.recurse = *recurse;
    out.include = d.string("include").value_or("");
    out.exclude = d.string("exclude").value_or("");
    if (const json* jsonnet = d.object("jsonnet")) {
        Reader j(*jsonnet, at + ".jsonnet", errors);
        j.rejectUnknown({"extVars", "tlas", "libs"});
        JsonnetOptions opts;
        opts.extVars = jsonnetVars(j, "extVars", errors);
        opts.tlas = jsonnetVars(j, "tlas", errors);
        opts.libs = j.strings("libs");
        for (const auto& lib : opts.libs) checkRepoPath(j, "libs", lib);
        out.jsonnet = std::move(opts);
    }
}

PluginSource parsePlugin(const json& plugin, const std::string& at,
                         std::vector<std::string>& errors) {
    PluginSource out;
    Reader r(plugin, at, errors);
    r.rejectUnknown({"name", "env", "parameters"});
    out.name = r.string("name").value_or("");
    eachObject(r, "env", [&](const json& e, const std::string& eat) {
        Reader er(e, eat, errors);
        er.rejectUnknown({"name", "value"});
        std::string name = er.string("name").value_or("");
        if (name.empty()) er.error("name", "required");
        out.env.emplace_back(std::move(name), er.string("value").value_or(""));
    });
    eachObject(r, "parameters", [&](const json& p, const std::string& pat) {
        Reader pr(p, pat, errors);
        pr.rejectUnknown({"name", "string", "array", "map"});
        if (pr.string("name").value_or("").empty()) pr.error("name", "required");
        (void)pr.string("string");
        (void)pr.strings("array");
        (void)pr.stringMap("map");
        out.parameters.push_back(p);
    });
    return out;
}

}  // namespace

bool KustomizeSource::modifiesKustomization() const {
    return !namePrefix.empty() || !nameSuffix.empty() || !namespace_.empty() || !images.empty() ||
           !commonLabels.empty() || !commonAnnotations.empty() || !replicas.empty() ||
           !patches.empty() || !components.empty();
}

Source parseSource(const json& source, const std::string& at, std::vector<std::string>& errors) {
    Source out;
    out.raw = source;
    Reader r(source, at, errors);
    r.rejectUnknown({"repoURL", "targetRevision", "path", "directory", "helm", "kustomize",
                     "plugin", "chart", "ref", "name"});
    auto repo = r.string("repoURL");
    if (repo && !repo->empty()) {
        out.repoURL = *repo;
    } else if (repo || r.field("repoURL") == nullptr) {
        r.error("repoURL", "required");
    }
    if (auto rev = r.string("targetRevision")) out.targetRevision = *rev;
    if (auto path = r.string("path")) {
        if (escapesRepository(*path)) {
            r.error("path", "must be a relative path inside the repository, got \"" + *path + "\"");
        } else {
            out.path = *path;
        }
    }
    out.chart = r.string("chart").value_or("");
    out.ref = r.string("ref").value_or("");
    out.name = r.string("name").value_or("");
    if (!out.ref.empty() && out.ref.find_first_of("/$") != std::string::npos)
        r.error("ref", "must be a plain name (used as \"$" + out.ref + "/...\")");
    if (const json* dir = r.object("directory"))
        parseDirectory(*dir, at + ".directory", out, errors);
    if (const json* helm = r.object("helm")) out.helm = parseHelm(*helm, at + ".helm", errors);
    if (const json* k = r.object("kustomize"))
        out.kustomize = parseKustomize(*k, at + ".kustomize", errors);
    if (const json* plugin = r.object("plugin"))
        out.plugin = parsePlugin(*plugin, at + ".plugin", errors);
    int blocks = int(out.directory) + int(out.helm.has_value()) + int(out.kustomize.has_value()) +
                 int(out.plugin.has_value());
    if (blocks > 1)
        errors.push_back(at + ": set at most one of directory, helm, kustomize and plugin");
    if (!out.chart.empty() && (out.directory || out.kustomize || out.plugin))
        errors.push_back(at + ": a chart source is rendered by Helm; only helm options apply");
    return out;
}

}  // namespace sluice::appengine
