#pragma once
// Notifications to chat services and webhooks, shared by the Application controller (Argo CD's
// subscription annotations and triggers) and the Canary controller (Flagger's AlertProviders).
//
// A controller builds a service-neutral Message and a Destination (credentials already read from
// their Secret) and hands both to Notifier::send, which returns at once. Delivery runs on the
// notifier's own small pool of threads: a bounded queue, retries with backoff, counted in
// /metrics by service and result. A receiver that is down never blocks or fails a sync or an
// analysis, and one that hangs holds up only its own messages: a destination (receiver host and
// proxy) has at most one call in flight and a bounded share of the queue.
//
// A service (Slack, Teams, ...) is one file implementing Service (a pure renderer of the HTTP
// call its API expects) plus one line in builtinServices().
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice {
class Clock;
}
namespace sluice::telemetry {
class Registry;
}

namespace sluice::notify {

// Flagger's alert severities; an alert subscribed at `warn` gets warn and error messages.
enum class Severity { Info, Warn, Error };
const char* toString(Severity s);                           // "info", "warn", "error"
std::optional<Severity> parseSeverity(const std::string&);  // nullopt when unknown
// Whether a message of `message` severity reaches a subscription at `subscribed`.
bool reaches(Severity message, Severity subscribed);

// What happened, in words a person needs and no service's format.
struct Message {
    std::string title;  // "Application guestbook synced", "Canary podinfo.test rolled back"
    std::string text;   // plain text, one or more lines, no links
    Severity severity = Severity::Info;
    // Ordered facts ("Revision", "4f2c1e0"), ("Metric", "request-success-rate 92.1 < 99").
    std::vector<std::pair<std::string, std::string>> fields;
};

// Where a message goes, credentials included (never logged: see label()).
struct Destination {
    // A name from serviceNames(): "slack", "msteams", "discord", "rocket", "gchat", "generic".
    // Aliases used by Argo CD's notification services resolve too ("teams", "googlechat",
    // "rocketchat", "webhook").
    std::string service;
    std::string address;   // webhook URL; for Slack with a token, the API base ("" = slack.com)
    std::string token;     // Slack bot token: chat.postMessage instead of an incoming webhook
    std::string channel;   // Slack/Rocket.Chat/Discord channel, as the service reads it
    std::string username;  // display name, where the service has one
    std::string proxy;     // "http://host:port", "" = direct
    std::map<std::string, std::string> headers;  // extra headers (generic webhook)
    // "slack (hooks.slack.com)": service and host only, for logs and Events.
    std::string label() const;
};

// One HTTP request as a service's API expects it.
struct HttpCall {
    std::string method = "POST";
    std::string url;
    std::map<std::string, std::string> headers;  // Content-Type included
    std::string body;
};

struct HttpAnswer {
    int status = 0;  // 0 = no answer (connection failed, timeout); see error
    std::string body;
    std::string error;
    std::chrono::milliseconds retryAfter{0};  // from a Retry-After header, 0 when absent
};

// One chat service. Pure: renders, and reads the answer.
class Service {
  public:
    virtual ~Service() = default;
    // Throws std::invalid_argument when the destination lacks what the service needs.
    virtual HttpCall render(const Destination& to, const Message& message) const = 0;
    // nullopt when `answer` means delivered. The default: any 2xx. (Slack's chat.postMessage
    // answers 200 with {"ok":false,"error":...} on failure.)
    virtual std::optional<std::string> failure(const HttpAnswer& answer) const;
};

// The built-in services by canonical name. Aliases are resolved by findService.
const std::map<std::string, std::unique_ptr<Service>>& builtinServices();
const Service* findService(const std::string& name);  // null when unknown
std::vector<std::string> serviceNames();              // canonical names, sorted

// Sends one HTTP call. The real one (makeHttpTransport) uses cpprestsdk; tests may fake it.
class Transport {
  public:
    virtual ~Transport() = default;
    virtual HttpAnswer send(const HttpCall& call, const std::string& proxy,
                            std::chrono::milliseconds timeout) = 0;
};
std::unique_ptr<Transport> makeHttpTransport();

struct NotifierOptions {
    std::size_t queueCapacity = 1000;  // when full, the new message is dropped and counted
    // Per destination (receiver host and proxy), the one in flight included: a receiver that
    // hangs cannot fill the queue that the others share. (All of Slack is one destination, so
    // this is a share, not a small per-receiver limit.)
    std::size_t destinationCapacity = 500;
    // Delivery threads. One destination occupies at most one of them, so a hanging receiver
    // delays only its own messages (unless `workers` receivers hang at once).
    std::size_t workers = 8;
    int maxAttempts = 5;                             // per message, the first included
    std::chrono::milliseconds initialBackoff{1000};  // doubled per attempt (or Retry-After)
    std::chrono::milliseconds maxBackoff{60000};
    std::chrono::milliseconds timeout{10000};  // per HTTP call
};

// Delivers messages on its own threads. Thread-safe. Metrics (when a registry is given):
//   sluice_notifications_total{service, result}  result: delivered | failed | dropped | invalid
//   sluice_notification_queue_length
// Retries transport errors, 429 (after Retry-After when given) and 5xx; a 4xx other than 429
// is final. Logs name the destination by label() only.
class Notifier {
  public:
    Notifier(NotifierOptions options, std::unique_ptr<Transport> transport,
             telemetry::Registry* metrics = nullptr);
    ~Notifier();  // stops the threads; what is still queued is dropped
    Notifier(const Notifier&) = delete;
    Notifier& operator=(const Notifier&) = delete;

    // Queues one message; false (and counted as invalid or dropped) when the service is
    // unknown, the destination cannot be rendered, or the queue (or the destination's share of
    // it) is full. Never blocks.
    bool send(Destination to, Message message);
    // Waits until the queue is empty and nothing is in flight, or `timeout` passes (tests,
    // shutdown). True when drained.
    bool drain(std::chrono::milliseconds timeout);

    struct Stats {
        std::size_t delivered = 0, failed = 0, dropped = 0, invalid = 0, attempts = 0;
    };
    Stats stats() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::notify
