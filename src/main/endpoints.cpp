#include "endpoints.h"

#include <set>
#include <stdexcept>
#include <utility>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "sluice/kube/errors.h"
#include "sluice/kube/types.h"
#include "sluice/source/repository.h"
#include "sluice/util/base64.h"

namespace sluice {

using nlohmann::json;

std::vector<server::Route> probeRoutes(ProcessState& state) {
    return {
        {"GET", "/healthz",
         [](const server::Request&) {
             return server::Response{200, "text/plain; charset=utf-8", "ok\n"};
         }},
        {"GET", "/readyz",
         [&state](const server::Request&) {
             std::string role;
             if (state.leaderElection) {
                 std::lock_guard lock(state.mu);
                 role = state.leading ? "leader"
                                      : "standby (leader: " +
                                            (state.leaderIdentity.empty() ? std::string("none")
                                                                          : state.leaderIdentity) +
                                            ")";
             }
             // A standby has no controller caches to sync: it is ready while it campaigns, so a
             // rolling update can proceed.
             if (!state.cachesSynced && !(state.leaderElection && !state.leading))
                 return server::Response{503, "text/plain; charset=utf-8", "caches not synced\n"};
             return server::Response{200, "text/plain; charset=utf-8",
                                     role.empty() ? "ready\n" : "ready: " + role + "\n"};
         }},
    };
}

std::vector<server::Route> metricsRoutes(ControllerMetrics& metrics) {
    return {
        {"GET", "/metrics", [&metrics](const server::Request&) {
             return server::Response{200, telemetry::kExpositionContentType, metrics.exposition()};
         }}};
}

WebhookReceiver::WebhookReceiver(kube::KubeClient& client, std::string secretNamespace,
                                 std::string secretName, std::string watchNamespace,
                                 ControllerMetrics& metrics)
    : client_(client),
      secretNamespace_(std::move(secretNamespace)),
      secretName_(std::move(secretName)),
      watchNamespace_(std::move(watchNamespace)),
      metrics_(metrics) {}

void WebhookReceiver::setController(appcontroller::ApplicationController* controller) {
    controller_ = controller;
}

gitwebhook::Secrets WebhookReceiver::secrets(bool forceReload) {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    if (haveCache_ && !forceReload && now - cachedAt_ < std::chrono::seconds(5)) return cached_;
    std::map<std::string, std::string> data;
    try {
        json secret = client_.get({"", "v1", "Secret"}, secretNamespace_, secretName_);
        const json encoded = secret.value("data", json::object());
        for (const auto& [key, value] : encoded.items()) {
            if (!value.is_string()) continue;
            auto decoded = base64Decode(value.get<std::string>());
            if (!decoded) throw std::invalid_argument("data." + key + " is not valid base64");
            data[key] = std::move(*decoded);
        }
        const json plain = secret.value("stringData", json::object());
        for (const auto& [key, value] : plain.items())
            if (value.is_string()) data[key] = value.get<std::string>();
    } catch (const kube::ApiError& e) {
        if (!e.isNotFound()) throw;  // answered as 503 by handle()
    }
    cached_ = gitwebhook::Secrets::fromSecretData(data);
    cachedAt_ = now;
    haveCache_ = true;
    return cached_;
}

int WebhookReceiver::refreshByAnnotation(const std::vector<std::string>& urls,
                                         const std::vector<std::string>& refs) {
    std::set<std::string> wanted;
    for (const auto& u : urls) wanted.insert(source::normaliseRepoUrl(u));
    int queued = 0;
    auto apps = client_.listAll({"sluice.io", "v1alpha1", "Application"}, watchNamespace_);
    for (const auto& a : apps.items) {
        auto spec = a.value("spec", json::object());
        auto source = spec.value("source", json::object());
        std::string url = source.value("repoURL", "");
        if (url.empty() || !wanted.count(source::normaliseRepoUrl(url))) continue;
        std::string target = source.value("targetRevision", "");
        bool matches = refs.empty() || target.empty() || target == "HEAD";
        for (const auto& r : refs) matches |= target == r || target == "refs/heads/" + r;
        if (!matches) continue;
        client_.patch({"sluice.io", "v1alpha1", "Application"}, kube::namespaceOf(a),
                      kube::nameOf(a), kube::PatchType::Merge,
                      R"({"metadata":{"annotations":{"sluice.io/refresh":"normal"}}})");
        ++queued;
    }
    return queued;
}

server::Response WebhookReceiver::handle(const server::Request& request) {
    gitwebhook::Result result;
    try {
        result = gitwebhook::handle(request.headers, request.body, secrets(false));
        // A secret rotated in the last few seconds: look again before refusing.
        if (result.unauthorized())
            result = gitwebhook::handle(request.headers, request.body, secrets(true));
    } catch (const std::exception& e) {
        spdlog::error("webhook: cannot read Secret {}/{}: {}", secretNamespace_, secretName_,
                      e.what());
        metrics_.observeWebhook("", 503);
        return {503, "text/plain; charset=utf-8", "cannot read the webhook secret\n"};
    }
    if (!result.push) {
        metrics_.observeWebhook(result.provider, result.status);
        if (result.status >= 400)
            spdlog::warn("webhook: {} refused ({}): {}",
                         result.provider.empty() ? "request" : result.provider, result.status,
                         result.message);
        return {result.status, "text/plain; charset=utf-8", result.message + "\n"};
    }
    const auto& push = *result.push;
    int queued = 0;
    try {
        if (auto* apps = controller_.load()) {
            // Each URL form and ref; the work queue folds duplicates.
            for (const auto& url : push.repoUrls)
                for (const auto& ref : push.refs.empty() ? std::vector<std::string>{""} : push.refs)
                    queued += apps->refreshRepository(url, ref);
        } else {
            queued = refreshByAnnotation(push.repoUrls, push.refs);
        }
    } catch (const std::exception& e) {
        spdlog::error("webhook: refreshing Applications: {}", e.what());
        metrics_.observeWebhook(result.provider, 503);
        return {503, "text/plain; charset=utf-8",
                std::string("refresh failed: ") + e.what() + "\n"};
    }
    std::string refs;
    for (const auto& r : push.refs) refs += (refs.empty() ? "" : ",") + r;
    spdlog::info("webhook: {} push to {} ({}): {} Application refresh(es) queued", push.provider,
                 push.repoUrls.empty() ? "?" : push.repoUrls.front(), refs, queued);
    metrics_.observeWebhook(result.provider, 202);
    json body = {{"provider", push.provider}, {"refs", push.refs}, {"refreshed", queued}};
    return {202, "application/json", body.dump() + "\n"};
}

std::vector<server::Route> WebhookReceiver::routes() {
    return {{"POST", "/api/webhook", [this](const server::Request& r) { return handle(r); }}};
}

}  // namespace sluice
