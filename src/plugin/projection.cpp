#include "projection.h"

#include <algorithm>
#include <optional>

#include "sluice/fieldset/fieldset.h"

namespace sluice::plugin {

namespace {

namespace fs = sluice::fieldset;

class Projector {
  public:
    explicit Projector(const fs::Schema& schema) : schema_(schema) {}

    // live's counterpart of d; nullopt when live has nothing there.
    std::optional<json> project(const json& d, const json& l, const std::string& schemaPath) {
        if (d.is_object()) {
            if (!l.is_object()) {
                if (l.is_null())
                    return diff::isEmptyValue(d) ? std::optional<json>(d) : std::nullopt;
                return l;
            }
            json out = json::object();
            for (auto it = d.begin(); it != d.end(); ++it) {
                if (it.value().is_null()) continue;
                const std::string child =
                    schemaPath.empty() ? it.key() : schemaPath + "." + it.key();
                auto found = l.find(it.key());
                if (found == l.end()) {
                    if (diff::isEmptyValue(it.value())) out[it.key()] = it.value();
                    continue;
                }
                if (auto v = project(it.value(), *found, child)) out[it.key()] = std::move(*v);
            }
            return out;
        }
        if (d.is_array()) {
            if (!l.is_array()) {
                if (l.is_null()) return d.empty() ? std::optional<json>(d) : std::nullopt;
                return l;
            }
            auto listType = schema_.listAt(schemaPath);
            if (listType && listType->kind == fs::ListType::Kind::Map)
                return projectAssociative(d, l, schemaPath, *listType);
            if (listType && listType->kind == fs::ListType::Kind::Set) {
                for (const auto& v : d) {
                    bool found = false;
                    for (const auto& lv : l) found = found || diff::scalarsEqual(v, lv);
                    if (!found) return l;
                }
                return d;
            }
            // Atomic: item by item; extra live items as they are.
            json out = json::array();
            for (std::size_t i = 0; i < l.size(); ++i) {
                if (i < d.size()) {
                    auto v = project(d[i], l[i], schemaPath + "[]");
                    out.push_back(v ? *v : json());
                } else {
                    out.push_back(l[i]);
                }
            }
            return out;
        }
        if (l.is_null()) return diff::isEmptyValue(d) ? std::optional<json>(d) : std::nullopt;
        return diff::scalarsEqual(d, l) ? d : l;
    }

  private:
    std::optional<json> projectAssociative(const json& d, const json& l,
                                           const std::string& schemaPath,
                                           const fs::ListType& type) {
        json out = json::array();
        for (const auto& item : d) {
            if (!item.is_object()) return l;
            const json* match = diff::findListItem(item, l, type);
            if (!match) continue;
            if (auto v = project(item, *match, schemaPath + "[]")) out.push_back(std::move(*v));
        }
        return out;
    }

    const fs::Schema& schema_;
};

// Sets value at a field path in obj, creating what is missing ("k:" items are found by their
// key fields or appended).
void setPath(json& obj, const fs::Path& path, std::size_t at, const json& value) {
    if (at >= path.size()) {
        obj = value;
        return;
    }
    const std::string& e = path[at].encoded;
    if (e.rfind("f:", 0) == 0) {
        if (!obj.is_object()) obj = json::object();
        setPath(obj[e.substr(2)], path, at + 1, value);
        return;
    }
    if (!obj.is_array()) obj = json::array();
    if (e.rfind("k:", 0) == 0) {
        json key = json::parse(e.substr(2), nullptr, false);
        if (!key.is_object()) return;
        for (auto& item : obj) {
            bool match = item.is_object();
            for (auto it = key.begin(); match && it != key.end(); ++it)
                match = item.contains(it.key()) && diff::scalarsEqual(it.value(), item[it.key()]);
            if (match) {
                setPath(item, path, at + 1, value);
                return;
            }
        }
        obj.push_back(key);
        setPath(obj.back(), path, at + 1, value);
    } else if (e.rfind("v:", 0) == 0) {
        json v = json::parse(e.substr(2), nullptr, false);
        if (std::find(obj.begin(), obj.end(), v) == obj.end()) obj.push_back(v);
    } else if (e.rfind("i:", 0) == 0) {
        std::size_t i = std::stoul(e.substr(2));
        while (obj.size() <= i) obj.push_back(json());
        setPath(obj[i], path, at + 1, value);
    }
}

}  // namespace

json withoutServerFields(const json& live) {
    json l = live;
    diff::stripServerFields(l);
    return l;
}

ProjectedPair project(const json& desired, const json& live,
                      const std::vector<diff::IgnoreRule>& ignore, const std::string& manager) {
    ProjectedPair out;
    json d = diff::normalizeDesired(desired);
    if (live.is_null()) {
        diff::stripServerFields(d);
        out.desired = std::move(d);
        return out;
    }
    json l = live;
    diff::removeIgnoredFields(d, live, ignore);
    diff::removeIgnoredFields(l, live, ignore);
    diff::stripServerFields(d);
    diff::stripServerFields(l);
    const fs::Schema& schema =
        fs::Schema::forKind(desired.value("apiVersion", ""), desired.value("kind", ""));
    json projected = Projector(schema).project(d, l, "").value_or(json::object());
    // Identity fields are never differences worth showing when present on both sides.
    for (const char* f : {"apiVersion", "kind"})
        if (d.contains(f) && l.contains(f)) projected[f] = l[f];
    if (!manager.empty()) {
        fs::FieldSet owned;
        for (const auto& entry : fs::parseManagedFields(live))
            if (entry.manager == manager && entry.operation == "Apply" && entry.subresource.empty())
                owned = owned.unionWith(entry.fields);
        const fs::FieldSet stale = owned.difference(fs::fieldsOf(d, schema));
        for (const auto& p : stale.paths()) {
            auto value = fs::valueAt(l, p, schema);
            if (value) setPath(projected, p, 0, *value);
        }
    }
    out.desired = std::move(d);
    out.live = std::move(projected);
    return out;
}

}  // namespace sluice::plugin
