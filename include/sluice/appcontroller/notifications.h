#pragma once
// Argo CD's notifications for Applications: a watcher of Applications, apart from the
// reconcile path (as Argo CD's notifications controller is its own process). On every change of
// an Application that subscribes (notifications.argoproj.io/subscribe.<trigger>.<service> or
// sluice.io/...), it evaluates the built-in triggers, hands what is due to the notify::Notifier
// (which delivers on its own thread, with retries) and records what was sent in the
// Application's `notified.notifications.argoproj.io` annotation (a metadata merge patch), so
// that neither a re-reconcile of the same state nor a restart sends twice.
//
// The services come from a ConfigMap and a Secret in the control namespace (Argo CD's
// argocd-notifications-cm / argocd-notifications-secret format), re-read with `get` at most
// every configRefresh (the controller's Role may get ConfigMaps, not watch them).
// See appengine/notifications.h for triggers, records and formats.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "sluice/cache/informer.h"
#include "sluice/kube/client.h"
#include "sluice/notify/notifier.h"
#include "sluice/runtime/ownership.h"
#include "sluice/util/clock.h"

namespace sluice::appcontroller {

struct NotificationOptions {
    std::string watchNamespace;                         // Applications watched; "" = all namespaces
    std::string controlNamespace = "sluice";            // where the ConfigMap and Secret live
    std::string configMap = "sluice-notifications-cm";  // --notifications-configmap
    // "" = the ConfigMap's name with a final "-cm" replaced by "-secret" (so
    // argocd-notifications-cm reads argocd-notifications-secret).
    std::string secret;
    std::chrono::milliseconds configRefresh{30000};
    const Clock* clock = nullptr;  // nullptr = system clock (stamps of the records)
    // The Applications this replica notifies for: those it reconciles (the Application
    // controller's ownership); nullptr = all.
    std::shared_ptr<runtime::Ownership> ownership;
};

struct NotificationStats {
    uint64_t queued = 0;         // messages handed to the Notifier
    uint64_t undeliverable = 0;  // no such service configured, or the Notifier refused
    uint64_t recordWrites = 0;   // annotation patches
    uint64_t recordErrors = 0;   // failed annotation patches (retried)
};

class NotificationController {
  public:
    // The Application informer is shared through `informers` with the ApplicationController
    // (same options), so the watch is not doubled.
    NotificationController(kube::KubeClient& client, cache::SharedInformerFactory& informers,
                           notify::Notifier& notifier, NotificationOptions opts = {});
    ~NotificationController();  // stop()
    NotificationController(const NotificationController&) = delete;
    NotificationController& operator=(const NotificationController&) = delete;

    // Registers the handlers, starts the informers (if not yet) and the worker.
    void start();
    // Stops the worker (after the Application it is on); idempotent. Messages already queued
    // stay with the Notifier.
    void stop();
    bool waitForSync(std::chrono::milliseconds timeout);
    NotificationStats stats() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The Secret read with a ConfigMap of this name (see NotificationOptions::secret).
std::string notificationSecretName(const std::string& configMap);

}  // namespace sluice::appcontroller
