#include "sluice/kube/events.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <exception>

namespace sluice::kube {

namespace {

// client-go's EventCorrelator aggregates repeats seen within ten minutes.
constexpr auto kAggregationWindow = std::chrono::minutes(10);
// Bounded memory: entries older than the window are dropped once the map grows past this.
constexpr std::size_t kMaxSeen = 4096;

std::string str(const Object& obj, const char* section, const char* field) {
    if (!obj.is_object()) return {};
    auto s = obj.find(section);
    if (s == obj.end() || !s->is_object()) return {};
    auto f = s->find(field);
    return f != s->end() && f->is_string() ? f->get<std::string>() : std::string();
}

std::string top(const Object& obj, const char* field) {
    if (!obj.is_object()) return {};
    auto f = obj.find(field);
    return f != obj.end() && f->is_string() ? f->get<std::string>() : std::string();
}

}  // namespace

KubeEventRecorder::KubeEventRecorder(KubeClient& client, std::string component,
                                     std::string defaultNamespace, const Clock* clock)
    : client_(client),
      component_(std::move(component)),
      defaultNamespace_(std::move(defaultNamespace)),
      clock_(clock ? clock : &SystemClock::instance()) {}

void KubeEventRecorder::setSink(std::function<void(const Object& event)> sink) {
    std::lock_guard lock(mu_);
    sink_ = std::move(sink);
}

void KubeEventRecorder::record(const Object& involved, EventType type, const std::string& reason,
                               const std::string& message) {
    try {
        const std::string name = str(involved, "metadata", "name");
        const std::string involvedNs = str(involved, "metadata", "namespace");
        const std::string ns = involvedNs.empty() ? defaultNamespace_ : involvedNs;
        const std::string uid = str(involved, "metadata", "uid");
        const std::string kind = top(involved, "kind");
        const std::string typeName = type == EventType::Warning ? "Warning" : "Normal";
        // Kubernetes limits Event messages to 1 KiB in practice (kubectl truncates); keep the
        // head, which names what failed.
        std::string msg = message.size() > 1024 ? message.substr(0, 1021) + "..." : message;

        const auto now = clock_->now();
        const std::string stamp = formatRfc3339(clock_->wallNow());
        const std::string seenKey = (uid.empty() ? kind + "/" + involvedNs + "/" + name : uid) +
                                    "\n" + typeName + "\n" + reason + "\n" + msg;

        bool repeat = false;
        Seen entry;
        std::function<void(const Object&)> sink;
        {
            std::lock_guard lock(mu_);
            sink = sink_;
            auto it = seen_.find(seenKey);
            if (it != seen_.end() && now - it->second.last < kAggregationWindow) {
                repeat = true;
                ++it->second.count;
                it->second.last = now;
                entry = it->second;
            } else {
                if (seen_.size() >= kMaxSeen) {
                    for (auto s = seen_.begin(); s != seen_.end();)
                        s = now - s->second.last >= kAggregationWindow ? seen_.erase(s)
                                                                       : std::next(s);
                    if (seen_.size() >= kMaxSeen) seen_.clear();
                }
                // client-go names Events "<object>.<hex nanoseconds>"; a counter keeps two
                // Events recorded in the same nanosecond apart.
                static std::atomic<uint64_t> sequence{0};
                char suffix[40];
                std::snprintf(suffix, sizeof suffix, ".%llx",
                              static_cast<unsigned long long>(
                                  std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      clock_->wallNow().time_since_epoch())
                                      .count() +
                                  sequence.fetch_add(1)));
                entry = Seen{(name.empty() ? std::string("event") : name) + suffix, ns, 1, now};
                seen_[seenKey] = entry;
            }
        }

        Object involvedRef = {
            {"apiVersion", top(involved, "apiVersion")}, {"kind", kind}, {"name", name}};
        if (!involvedNs.empty()) involvedRef["namespace"] = involvedNs;
        if (!uid.empty()) involvedRef["uid"] = uid;
        if (auto rv = str(involved, "metadata", "resourceVersion"); !rv.empty())
            involvedRef["resourceVersion"] = rv;

        Object event = {{"apiVersion", "v1"},
                        {"kind", "Event"},
                        {"metadata", {{"name", entry.name}, {"namespace", entry.ns}}},
                        {"involvedObject", involvedRef},
                        {"reason", reason},
                        {"message", msg},
                        {"type", typeName},
                        {"source", {{"component", component_}}},
                        {"reportingComponent", component_},
                        {"count", entry.count},
                        {"lastTimestamp", stamp}};
        if (!repeat) event["firstTimestamp"] = stamp;
        if (sink) sink(event);

        const GroupVersionKind eventGvk{"", "v1", "Event"};
        if (repeat) {
            Object patch = {{"count", entry.count}, {"lastTimestamp", stamp}};
            try {
                client_.patch(eventGvk, entry.ns, entry.name, PatchType::Merge, patch.dump());
                return;
            } catch (const ApiError& e) {
                if (!e.isNotFound()) throw;
                // The Event expired (or was deleted): start a new series under a fresh name.
            }
            event["firstTimestamp"] = stamp;
        }
        client_.create(event);
    } catch (const std::exception& e) {
        spdlog::warn("could not record event {} about {} {}/{}: {}", reason, top(involved, "kind"),
                     str(involved, "metadata", "namespace"), str(involved, "metadata", "name"),
                     e.what());
    }
}

}  // namespace sluice::kube
