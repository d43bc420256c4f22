// The Application status in Argo CD's shape (resources, history, conditions) plus Sluice's
// inventory of what it applied.
#include "sluice/appengine/status.h"

#include <algorithm>
#include <tuple>

namespace sluice::appengine {

json resourcesStatus(const CompareResult& compared) {
    json out = json::array();
    for (const auto& r : compared.resources) {
        json item = json::object();
        // Empty group and namespace are left out, as Argo CD's omitempty does.
        if (!r.key.group.empty()) item["group"] = r.key.group;
        item["version"] = r.version;
        item["kind"] = r.key.kind;
        if (!r.key.ns.empty()) item["namespace"] = r.key.ns;
        item["name"] = r.key.name;
        item["status"] = r.state == SyncState::Synced ? "Synced" : "OutOfSync";
        json health = {{"status", health::toString(r.health.status)}};
        if (!r.health.message.empty()) health["message"] = r.health.message;
        item["health"] = std::move(health);
        if (r.requiresPruning) item["requiresPruning"] = true;
        out.push_back(std::move(item));
    }
    return out;
}

json inventoryStatus(const std::vector<InventoryEntry>& entries) {
    std::vector<InventoryEntry> sorted = entries;
    auto key = [](const InventoryEntry& e) {
        return std::tie(e.group, e.kind, e.ns, e.name, e.version);
    };
    std::sort(sorted.begin(), sorted.end(),
              [&](const InventoryEntry& a, const InventoryEntry& b) { return key(a) < key(b); });
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    json out = json::array();
    for (const auto& e : sorted) out.push_back(e.toJson());
    return out;
}

void appendHistory(json& history, const std::string& revision, const json& source,
                   const std::string& deployStartedAt, const std::string& deployedAt, int limit) {
    appendHistory(history, json{{"revision", revision}, {"source", source}}, deployStartedAt,
                  deployedAt, limit);
}

void appendHistory(json& history, const json& revisionRecord, const std::string& deployStartedAt,
                   const std::string& deployedAt, int limit) {
    if (!history.is_array()) history = json::array();
    long next = 0;
    if (!history.empty() && history.back().is_object()) {
        auto id = history.back().find("id");
        if (id != history.back().end() && id->is_number_integer()) next = id->get<long>() + 1;
    }
    json entry = {{"id", next}, {"deployedAt", deployedAt}, {"deployStartedAt", deployStartedAt}};
    entry.update(revisionRecord);
    history.push_back(std::move(entry));
    const size_t keep = static_cast<size_t>(std::max(limit, 0));
    if (history.size() > keep)
        history.erase(history.begin(),
                      history.begin() + static_cast<std::ptrdiff_t>(history.size() - keep));
}

json historyEntry(const json& history, long id) {
    if (!history.is_array()) return nullptr;
    for (const auto& entry : history) {
        if (!entry.is_object()) continue;
        auto it = entry.find("id");
        if (it != entry.end() && it->is_number_integer() && it->get<long>() == id) return entry;
    }
    return nullptr;
}

bool setCondition(json& conditions, const std::string& type, const std::string& message,
                  const std::string& now) {
    if (!conditions.is_array()) conditions = json::array();
    for (auto& c : conditions) {
        if (!c.is_object() || c.value("type", "") != type) continue;
        if (c.value("message", "") == message && c.contains("lastTransitionTime")) return false;
        c = {{"type", type}, {"message", message}, {"lastTransitionTime", now}};
        return true;
    }
    conditions.push_back({{"type", type}, {"message", message}, {"lastTransitionTime", now}});
    return true;
}

bool removeCondition(json& conditions, const std::string& type) {
    if (!conditions.is_array()) return false;
    const size_t before = conditions.size();
    json kept = json::array();
    for (auto& c : conditions)
        if (!(c.is_object() && c.value("type", "") == type)) kept.push_back(std::move(c));
    conditions = std::move(kept);
    return conditions.size() != before;
}

namespace {

// Where packStatus keeps text instead of a JSON tree; each a path of object members.
const std::vector<std::vector<const char*>>& packedPaths() {
    static const std::vector<std::vector<const char*>> paths = {
        {"resources"}, {"inventory"}, {"history"}, {"operationState", "syncResult", "resources"}};
    return paths;
}

// The value at path, or null when an intermediate member is missing or not an object.
json* valueAt(json& status, const std::vector<const char*>& path) {
    json* at = &status;
    for (const char* member : path) {
        if (!at->is_object()) return nullptr;
        auto it = at->find(member);
        if (it == at->end()) return nullptr;
        at = &*it;
    }
    return at;
}

}  // namespace

void packStatus(json& status) {
    for (const auto& path : packedPaths())
        if (json* v = valueAt(status, path); v && v->is_array()) {
            std::string text = v->dump();
            text.shrink_to_fit();  // dump() grows by doubling: half the buffer could be slack
            *v = std::move(text);
        }
}

std::vector<std::vector<std::string>> packedStatusMembers() {
    std::vector<std::vector<std::string>> out;
    for (const auto& path : packedPaths()) {
        out.push_back({"status"});
        out.back().insert(out.back().end(), path.begin(), path.end());
    }
    return out;
}

void unpackStatus(json& status) {
    for (const auto& path : packedPaths())
        if (json* v = valueAt(status, path); v && v->is_string()) *v = unpackedField(*v);
}

json unpackedField(const json& value) {
    if (!value.is_string()) return value;
    json parsed = json::parse(value.get_ref<const std::string&>(), nullptr, false);
    return parsed.is_discarded() ? value : parsed;
}

bool sameStatus(const json& a, const json& b) {
    if (!a.is_object() || !b.is_object()) return a == b;
    json x = a;
    json y = b;
    x.erase("reconciledAt");
    y.erase("reconciledAt");
    return x == y;
}

}  // namespace sluice::appengine
