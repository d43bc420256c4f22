#include "projection.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "sluice/fieldset/fieldset.h"

namespace sluice::plugin {

namespace {

namespace fs = sluice::fieldset;

bool isEmptyValue(const json& v) {
    return v.is_null() || (v.is_object() && v.empty()) || (v.is_array() && v.empty()) ||
           (v.is_string() && v.get_ref<const std::string&>().empty());
}

std::optional<long double> asNumber(const json& v) {
    if (v.is_number()) return v.get<long double>();
    if (v.is_string()) return diff::parseQuantity(v.get<std::string>());
    return std::nullopt;
}

// The equality diff::compare() uses for scalars.
bool scalarsEqual(const json& d, const json& l) {
    if (d == l) return true;
    if ((d.is_number() || d.is_string()) && (l.is_number() || l.is_string())) {
        auto a = asNumber(d), b = asNumber(l);
        if (a && b) {
            long double scale = std::max<long double>(1.0L, std::fabs(*a));
            return std::fabs(*a - *b) <= scale * 1e-12L;
        }
    }
    return false;
}

void stripServerFields(json& obj) {
    if (!obj.is_object()) return;
    obj.erase("status");
    auto md = obj.find("metadata");
    if (md == obj.end() || !md->is_object()) return;
    for (const char* f :
         {"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
          "deletionTimestamp", "deletionGracePeriodSeconds"})
        md->erase(f);
    auto ann = md->find("annotations");
    if (ann != md->end() && ann->is_object()) {
        ann->erase("kubectl.kubernetes.io/last-applied-configuration");
        if (ann->empty()) md->erase("annotations");
    }
}

class Projector {
  public:
    explicit Projector(const fs::Schema& schema) : schema_(schema) {}

    // live's counterpart of d; nullopt when live has nothing there.
    std::optional<json> project(const json& d, const json& l, const std::string& schemaPath) {
        if (d.is_object()) {
            if (!l.is_object()) {
                if (l.is_null()) return isEmptyValue(d) ? std::optional<json>(d) : std::nullopt;
                return l;
            }
            json out = json::object();
            for (auto it = d.begin(); it != d.end(); ++it) {
                if (it.value().is_null()) continue;
                const std::string child =
                    schemaPath.empty() ? it.key() : schemaPath + "." + it.key();
                auto found = l.find(it.key());
                if (found == l.end()) {
                    if (isEmptyValue(it.value())) out[it.key()] = it.value();
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
                    for (const auto& lv : l) found = found || scalarsEqual(v, lv);
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
        if (l.is_null()) return isEmptyValue(d) ? std::optional<json>(d) : std::nullopt;
        return scalarsEqual(d, l) ? d : l;
    }

  private:
    std::optional<json> projectAssociative(const json& d, const json& l,
                                           const std::string& schemaPath,
                                           const fs::ListType& type) {
        json out = json::array();
        for (const auto& item : d) {
            if (!item.is_object()) return l;
            const json* match = nullptr;
            for (const auto& candidate : l) {
                if (!candidate.is_object()) continue;
                bool same = true;
                for (const auto& k : type.keys) {
                    json cv = candidate.contains(k) ? candidate[k] : json();
                    json dv = item.contains(k) ? item[k] : json();
                    if (auto def = type.keyDefaults.find(k); def != type.keyDefaults.end()) {
                        if (cv.is_null()) cv = def->second;
                        if (dv.is_null()) dv = def->second;
                    }
                    if (!scalarsEqual(dv, cv) && !(dv.is_null() && cv.is_null())) same = false;
                }
                if (same) {
                    match = &candidate;
                    break;
                }
            }
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
                match = item.contains(it.key()) && scalarsEqual(it.value(), item[it.key()]);
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
    stripServerFields(l);
    return l;
}

ProjectedPair project(const json& desired, const json& live,
                      const std::vector<diff::IgnoreRule>& ignore, const std::string& manager) {
    ProjectedPair out;
    json d = diff::normalizeDesired(desired);
    if (live.is_null()) {
        stripServerFields(d);
        out.desired = std::move(d);
        return out;
    }
    json l = live;
    diff::removeIgnoredFields(d, live, ignore);
    diff::removeIgnoredFields(l, live, ignore);
    stripServerFields(d);
    stripServerFields(l);
    const fs::Schema schema =
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
