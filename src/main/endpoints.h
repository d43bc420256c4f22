#pragma once
// What sluice-controller serves over HTTP: probes, /metrics and the git webhook receiver.
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "observability.h"
#include "sluice/appcontroller/controller.h"
#include "sluice/gitwebhook/webhook.h"
#include "sluice/kube/client.h"
#include "sluice/server/http_server.h"

namespace sluice {

// Shared between main and the probe handlers.
struct ProcessState {
    std::atomic<bool> cachesSynced{false};
    std::atomic<bool> leaderElection{false};
    std::atomic<bool> leading{false};
    std::mutex mu;
    std::string leaderIdentity;  // the Lease holder as last seen
    std::string ownIdentity;
};

// /healthz: the process answers. /readyz: 200 once the caches are synced (or, on a standby
// replica, once it is campaigning), saying whether this replica leads; 503 before.
std::vector<server::Route> probeRoutes(ProcessState& state);
// GET /metrics.
std::vector<server::Route> metricsRoutes(ControllerMetrics& metrics);

// POST /api/webhook. Verifies the push against the webhook Secret (re-read at most every few
// seconds, so a rotated secret applies without a restart) and refreshes the Applications of
// the pushed repository and branch: on the leader directly through the controller, on a
// standby by annotating them with sluice.io/refresh so the leader picks them up.
class WebhookReceiver {
  public:
    WebhookReceiver(kube::KubeClient& client, std::string secretNamespace, std::string secretName,
                    std::string watchNamespace, ControllerMetrics& metrics);
    // Set once the Application controller runs on this replica (leader); nullptr = standby.
    void setController(appcontroller::ApplicationController* controller);
    server::Response handle(const server::Request& request);
    std::vector<server::Route> routes();

  private:
    gitwebhook::Secrets secrets(bool forceReload);
    int refreshByAnnotation(const std::vector<std::string>& urls,
                            const std::vector<std::string>& refs);

    kube::KubeClient& client_;
    std::string secretNamespace_, secretName_, watchNamespace_;
    ControllerMetrics& metrics_;
    std::atomic<appcontroller::ApplicationController*> controller_{nullptr};
    std::mutex mu_;
    gitwebhook::Secrets cached_;
    std::chrono::steady_clock::time_point cachedAt_{};
    bool haveCache_ = false;
};

}  // namespace sluice
