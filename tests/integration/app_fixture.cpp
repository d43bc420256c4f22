#include "app_fixture.h"

#include <fstream>
#include <sstream>
#include <thread>

#include "git_http_server.h"
#include "sluice/kube/config.h"
#include "sluice/util/yaml_json.h"

namespace sluice::apptest {

namespace {

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string annotationsYaml(const std::map<std::string, std::string>& annotations) {
    if (annotations.empty()) return "";
    std::string out = "  annotations:\n";
    for (const auto& [k, v] : annotations) out += "    " + k + ": \"" + v + "\"\n";
    return out;
}

}  // namespace

std::string configMapYaml(const std::string& name, const std::map<std::string, std::string>& data,
                          const std::map<std::string, std::string>& annotations) {
    std::string out = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n" +
                      annotationsYaml(annotations) + "data:\n";
    for (const auto& [k, v] : data) out += "  " + k + ": \"" + v + "\"\n";
    return out;
}

std::string deploymentYaml(const std::string& name,
                           const std::map<std::string, std::string>& annotations) {
    return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name + "\n" +
           annotationsYaml(annotations) +
           "spec:\n"
           "  replicas: 1\n"
           "  selector:\n"
           "    matchLabels:\n"
           "      app: " +
           name +
           "\n"
           "  template:\n"
           "    metadata:\n"
           "      labels:\n"
           "        app: " +
           name +
           "\n"
           "    spec:\n"
           "      containers:\n"
           "      - name: main\n"
           "        image: registry.example/web:1.0\n";
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) return cond();
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

// ---- ChangeLog ------------------------------------------------------------------------------

ChangeLog::ChangeLog(kube::KubeClient& client, const kube::GroupVersionKind& gvk,
                     const std::string& ns) {
    cache::InformerOptions o;
    o.ns = ns;
    informer_ = std::make_unique<cache::Informer>(client, gvk, o);
    informer_->addEventHandler(
        {[this](const cache::ObjectPtr& obj) { record(*obj, false); },
         [this](const cache::ObjectPtr&, const cache::ObjectPtr& obj) { record(*obj, false); },
         [this](const cache::ObjectPtr& obj) { record(*obj, true); }});
    informer_->start();
    if (!informer_->waitForSync(30s)) throw std::runtime_error("change log did not sync");
}

ChangeLog::~ChangeLog() {
    informer_->stop();
}

void ChangeLog::record(const json& obj, bool deleted) {
    std::lock_guard lock(mu_);
    uint64_t rv = 0;
    try {
        rv = std::stoull(obj["metadata"].value("resourceVersion", "0"));
    } catch (const std::exception&) {
    }
    entries_.push_back({entries_.size(), rv, deleted, obj});
}

std::optional<ChangeLog::Entry> ChangeLog::first(
    const std::string& name, const std::function<bool(const Entry&)>& pred) const {
    std::lock_guard lock(mu_);
    for (const auto& e : entries_)
        if (e.object["metadata"].value("name", "") == name && pred(e)) return e;
    return std::nullopt;
}

std::optional<ChangeLog::Entry> ChangeLog::created(const std::string& name) const {
    return first(name, [](const Entry& e) { return !e.deleted; });
}

std::optional<ChangeLog::Entry> ChangeLog::deletionStarted(const std::string& name) const {
    return first(name, [](const Entry& e) {
        return e.deleted || e.object["metadata"].contains("deletionTimestamp");
    });
}

std::string ChangeLog::dump(const std::function<std::string(const json&)>& detail) const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& e : entries_)
        out += "#" + std::to_string(e.seq) + " rv=" + std::to_string(e.rv) + " " +
               (e.deleted ? "DELETED " : "") + e.object["metadata"].value("name", "") +
               (e.object["metadata"].contains("deletionTimestamp") ? " (deleting)" : "") +
               (detail ? " " + detail(e.object) : "") + "\n";
    return out;
}

// ---- AppIntegration ---------------------------------------------------------------------------

AppIntegration::AppIntegration() = default;
AppIntegration::~AppIntegration() = default;

void AppIntegration::SetUp() {
    server_.start();
    // The CRD under test, exactly as shipped.
    for (const auto& doc :
         yamlDocumentsToJson(readFile(SLUICE_SOURCE_DIR "/crds/sluice.io_applications.yaml")))
        server_.create(doc);
    for (const char* ns : {kControlNs, kDestNs})
        server_.create({{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});

    auto cfg = kube::loadKubeconfig(server_.writeKubeconfig((tmp_.path() / "kubeconfig").string()));
    cfg.qps = 0;  // no client-side throttle in tests
    client_ = std::make_unique<kube::RestClient>(cfg);
    user_ = std::make_unique<kube::RestClient>(cfg);
    ASSERT_TRUE(eventually([&] {
        try {
            client_->resourceFor(kApplication);
            return true;
        } catch (const std::exception&) {
            return false;
        }
    })) << "Application CRD not served";

    repo_ = std::make_unique<testing::TestRepo>(tmp_.path() / "root" / "repo");
    git_ = std::make_unique<git::LibGit2Source>(tmp_.path() / "git-cache");
    informers_ = std::make_unique<cache::SharedInformerFactory>(*client_);

    options_.controlNamespace = kControlNs;
    options_.concurrency = 2;
    // Nothing re-fetches git by itself within a test unless the test asks for it.
    options_.pollInterval = 10min;
    options_.healthPollInterval = 50ms;
    options_.syncTimeout = 60s;
}

void AppIntegration::TearDown() {
    changeLogs_.clear();
    if (controller_) controller_->stop();
    controller_.reset();
    if (informers_) informers_->stopAll();
    informers_.reset();
    user_.reset();
    client_.reset();
    git_.reset();
    server_.stop();
}

void AppIntegration::startController() {
    controller_ = std::make_unique<appcontroller::ApplicationController>(*client_, *informers_,
                                                                         *git_, options_);
    controller_->setObserver([this](const appcontroller::ReconcileRecord& r) {
        std::lock_guard lock(recordsMu_);
        ++reconciles_[r.key];
    });
    controller_->start();
    ASSERT_TRUE(controller_->waitForSync(30s)) << "Application cache did not sync";
}

json AppIntegration::application(const std::string& name, const std::string& repoUrl,
                                 const std::string& path, json syncPolicy) const {
    json app = {{"apiVersion", "sluice.io/v1alpha1"},
                {"kind", "Application"},
                {"metadata", {{"name", name}, {"namespace", kControlNs}}},
                {"spec",
                 {{"project", "default"},
                  {"source", {{"repoURL", repoUrl}, {"targetRevision", "main"}, {"path", path}}},
                  {"destination",
                   {{"server", "https://kubernetes.default.svc"}, {"namespace", kDestNs}}}}}};
    if (!syncPolicy.is_null()) app["spec"]["syncPolicy"] = std::move(syncPolicy);
    return app;
}

void AppIntegration::createApp(const json& app) {
    user_->create(app);
}

std::optional<json> AppIntegration::getApp(const std::string& name) {
    return server_.get("sluice.io/v1alpha1", "Application", kControlNs, name);
}

json AppIntegration::appStatus(const std::string& name) {
    auto app = getApp(name);
    if (!app || !app->contains("status") || !(*app)["status"].is_object()) return json::object();
    return (*app)["status"];
}

void AppIntegration::patchApp(const std::string& name, const json& mergePatch) {
    user_->patch(kApplication, kControlNs, name, kube::PatchType::Merge, mergePatch.dump());
}

std::optional<json> AppIntegration::getObject(const std::string& apiVersion,
                                              const std::string& kind, const std::string& ns,
                                              const std::string& name) {
    return server_.get(apiVersion, kind, ns, name);
}

std::string AppIntegration::configMapValue(const std::string& name, const std::string& key) {
    auto cm = configMap(name);
    if (!cm) return "";
    return (*cm).value("data", json::object()).value(key, "");
}

std::vector<json> AppIntegration::appEvents(const std::string& name) {
    std::vector<json> out;
    for (auto& e : server_.list("v1", "Event")) {
        const json inv = e.value("involvedObject", json::object());
        if (inv.value("kind", "") == "Application" && inv.value("name", "") == name)
            out.push_back(e);
    }
    return out;
}

bool AppIntegration::hasEvent(const std::string& name, const std::string& reason,
                              const std::string& contains) {
    for (const auto& e : appEvents(name))
        if (e.value("reason", "") == reason &&
            e.value("message", "").find(contains) != std::string::npos)
            return true;
    return false;
}

std::string AppIntegration::describe(const std::string& name) {
    std::string out = "\n--- application " + name + " ---\n";
    auto app = getApp(name);
    out += app ? app->dump(2) : "(absent)";
    out += "\n--- events ---\n";
    for (const auto& e : appEvents(name))
        out += e.value("type", "") + " " + e.value("reason", "") + ": " + e.value("message", "") +
               "\n";
    return out;
}

std::optional<json> AppIntegration::condition(const json& status, const std::string& type) {
    for (const auto& c : status.value("conditions", json::array()))
        if (c.value("type", "") == type) return c;
    return std::nullopt;
}

std::string AppIntegration::annotation(const json& obj, const std::string& key) {
    return obj["metadata"].value("annotations", json::object()).value(key, "");
}

bool AppIntegration::waitSynced(const std::string& name, const std::string& sha) {
    return eventually([&] {
        json st = appStatus(name);
        json sync = st.value("sync", json::object());
        json op = st.value("operationState", json::object());
        return sync.value("status", "") == "Synced" && sync.value("revision", "") == sha &&
               op.value("phase", "") == "Succeeded";
    });
}

int AppIntegration::reconcilesOf(const std::string& key) const {
    std::lock_guard lock(recordsMu_);
    auto it = reconciles_.find(key);
    return it == reconciles_.end() ? 0 : it->second;
}

bool AppIntegration::reconcileAgain(const std::string& name) {
    const std::string key = std::string(kControlNs) + "/" + name;
    int before = reconcilesOf(key);
    controller_->refresh(kControlNs, name);
    return eventually([&] { return reconcilesOf(key) > before; });
}

ChangeLog& AppIntegration::watchChanges(const kube::GroupVersionKind& gvk, const std::string& ns) {
    changeLogs_.push_back(std::make_unique<ChangeLog>(*user_, gvk, ns));
    return *changeLogs_.back();
}

void AppIntegration::createRepoSecret(const std::string& name, const std::string& url,
                                      const std::string& username, const std::string& password,
                                      const std::string& type) {
    json data = {{"url", testing::base64Encode(url)},
                 {"password", testing::base64Encode(password)}};
    if (!username.empty()) data["username"] = testing::base64Encode(username);
    user_->create({{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata",
                    {{"name", name},
                     {"namespace", kControlNs},
                     {"labels", {{"sluice.io/secret-type", type}}}}},
                   {"type", "Opaque"},
                   {"data", data}});
}

json AppIntegration::widgetCrd(const std::string& kind, const std::string& plural) {
    std::string lowerKind = kind;
    for (auto& c : lowerKind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    json schema = {
        {"type", "object"},
        {"properties",
         {{"spec", {{"type", "object"}, {"properties", {{"size", {{"type", "integer"}}}}}}}}}};
    return {{"apiVersion", "apiextensions.k8s.io/v1"},
            {"kind", "CustomResourceDefinition"},
            {"metadata", {{"name", plural + ".example.com"}}},
            {"spec",
             {{"group", "example.com"},
              {"scope", "Namespaced"},
              {"names",
               {{"plural", plural},
                {"singular", lowerKind},
                {"kind", kind},
                {"listKind", kind + "List"}}},
              {"versions", json::array({{{"name", "v1"},
                                         {"served", true},
                                         {"storage", true},
                                         {"schema", {{"openAPIV3Schema", schema}}}}})}}}};
}

}  // namespace sluice::apptest
