#include "sluice/diff/diff.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "sluice/fieldset/fieldset.h"
#include "sluice/util/base64.h"

namespace sluice::diff {
namespace {

namespace fs = sluice::fieldset;

std::string groupOf(const std::string& apiVersion) {
    auto slash = apiVersion.find('/');
    return slash == std::string::npos ? "" : apiVersion.substr(0, slash);
}

std::optional<long double> asNumber(const json& v) {
    if (v.is_number()) return v.get<long double>();
    if (v.is_string()) return parseQuantity(v.get<std::string>());
    return std::nullopt;
}

std::string keyLabel(const json& item, const std::vector<std::string>& keys) {
    std::string out;
    for (const auto& k : keys) {
        if (!out.empty()) out += ",";
        const json& v = item.contains(k) ? item[k] : json();
        out += k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
    }
    return out;
}

class Walker {
  public:
    Walker(const fs::Schema& schema, std::vector<FieldDifference>& out)
        : schema_(schema), out_(out) {}

    void walk(const json& d, const json& l, const std::string& path,
              const std::string& schemaPath) {
        if (d.is_null()) return;
        if (d.is_object()) {
            if (!l.is_object()) {
                if (l.is_null() && isEmptyValue(d)) return;
                report(path, d, l);
                return;
            }
            for (auto it = d.begin(); it != d.end(); ++it) {
                const std::string childSchema =
                    schemaPath.empty() ? it.key() : schemaPath + "." + it.key();
                const std::string childPath = path + "." + it.key();
                if (it.value().is_null()) continue;
                auto found = l.find(it.key());
                if (found == l.end()) {
                    if (!isEmptyValue(it.value())) report(childPath, it.value(), std::nullopt);
                    continue;
                }
                walk(it.value(), *found, childPath, childSchema);
            }
            return;
        }
        if (d.is_array()) {
            if (!l.is_array()) {
                if (l.is_null() && d.empty()) return;
                report(path, d, l.is_null() ? std::nullopt : std::optional<json>(l));
                return;
            }
            auto listType = schema_.listAt(schemaPath);
            if (listType && listType->kind == fs::ListType::Kind::Map) {
                walkAssociative(d, l, path, schemaPath, *listType);
            } else if (listType && listType->kind == fs::ListType::Kind::Set) {
                for (const auto& v : d) {
                    bool found = false;
                    for (const auto& lv : l) found = found || scalarsEqual(v, lv);
                    if (!found) report(path, d, l);
                    if (!found) return;
                }
            } else {
                // Atomic list: same length, each item matches at its index (live items may
                // carry defaulted fields the manifest leaves out).
                if (d.size() != l.size()) {
                    report(path, d, l);
                    return;
                }
                size_t before = out_.size();
                for (size_t i = 0; i < d.size(); ++i)
                    walk(d[i], l[i], path + "[" + std::to_string(i) + "]", schemaPath + "[]");
                if (out_.size() != before) {
                    // Report the whole atomic list once: that is what an apply replaces.
                    out_.resize(before);
                    report(path, d, l);
                }
            }
            return;
        }
        if (l.is_null() && isEmptyValue(d)) return;
        if (!scalarsEqual(d, l))
            report(path, d, l.is_null() ? std::nullopt : std::optional<json>(l));
    }

  private:
    void walkAssociative(const json& d, const json& l, const std::string& path,
                         const std::string& schemaPath, const fs::ListType& type) {
        for (const auto& item : d) {
            if (!item.is_object()) {
                report(path, d, l);
                return;
            }
            json key = json::object();
            for (const auto& k : type.keys) {
                if (item.contains(k)) {
                    key[k] = item[k];
                } else if (auto def = type.keyDefaults.find(k); def != type.keyDefaults.end()) {
                    key[k] = def->second;
                }
            }
            const json* match = findListItem(item, l, type);
            std::string itemPath = path + "[" + keyLabel(key, type.keys) + "]";
            if (!match) {
                report(itemPath, item, std::nullopt);
                continue;
            }
            walk(item, *match, itemPath, schemaPath + "[]");
        }
    }

    void report(const std::string& path, std::optional<json> d, std::optional<json> l) {
        out_.push_back({path.empty() ? "." : path, std::move(d), std::move(l)});
    }

    const fs::Schema& schema_;
    std::vector<FieldDifference>& out_;
};

const char* const kServerMetadata[] = {
    "uid",           "resourceVersion", "generation",        "creationTimestamp",
    "managedFields", "selfLink",        "deletionTimestamp", "deletionGracePeriodSeconds"};
constexpr const char* kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";

// Whether stripServerFields would change obj.
bool hasServerFields(const json& obj) {
    if (!obj.is_object()) return false;
    if (obj.contains("status")) return true;
    auto md = obj.find("metadata");
    if (md == obj.end() || !md->is_object()) return false;
    for (const char* f : kServerMetadata)
        if (md->contains(f)) return true;
    auto ann = md->find("annotations");
    return ann != md->end() && ann->is_object() && (ann->contains(kLastApplied) || ann->empty());
}

bool containsNull(const json& v) {
    if (v.is_null()) return true;
    if (v.is_object() || v.is_array())
        for (const auto& child : v)
            if (containsNull(child)) return true;
    return false;
}

// Whether normalizeDesired would change obj.
bool needsNormalizing(const json& obj) {
    if (obj.is_object() && obj.contains("stringData") && obj.value("kind", "") == "Secret")
        return true;
    return containsNull(obj);
}

void dropNulls(json& v) {
    if (v.is_object()) {
        for (auto it = v.begin(); it != v.end();) {
            if (it->is_null()) {
                it = v.erase(it);
            } else {
                dropNulls(*it);
                ++it;
            }
        }
    } else if (v.is_array()) {
        for (auto& item : v) dropNulls(item);
    }
}

// Removes the field a fieldset path names; paths deeper than what exists are ignored.
void removePath(json& obj, const fs::Path& path, size_t at = 0) {
    if (at >= path.size() || obj.is_null()) return;
    const std::string& e = path[at].encoded;
    bool last = at + 1 == path.size();
    if (e.rfind("f:", 0) == 0) {
        if (!obj.is_object()) return;
        std::string name = e.substr(2);
        auto it = obj.find(name);
        if (it == obj.end()) return;
        if (last) {
            obj.erase(it);
        } else {
            removePath(*it, path, at + 1);
        }
        return;
    }
    if (!obj.is_array()) return;
    for (size_t i = 0; i < obj.size(); ++i) {
        bool match = false;
        if (e.rfind("k:", 0) == 0) {
            json key = json::parse(e.substr(2), nullptr, false);
            match = key.is_object() && obj[i].is_object();
            for (auto it = key.begin(); match && it != key.end(); ++it)
                match = obj[i].contains(it.key()) && scalarsEqual(it.value(), obj[i][it.key()]);
        } else if (e.rfind("v:", 0) == 0) {
            match = json::parse(e.substr(2), nullptr, false) == obj[i];
        } else if (e.rfind("i:", 0) == 0) {
            match = std::to_string(i) == e.substr(2);
        }
        if (!match) continue;
        if (last) {
            obj.erase(i);
        } else {
            removePath(obj[i], path, at + 1);
        }
        return;
    }
}

const fs::Schema& schemaFor(const json& obj) {
    return fs::Schema::forKind(obj.value("apiVersion", ""), obj.value("kind", ""));
}

}  // namespace

bool isEmptyValue(const json& v) {
    return v.is_null() || (v.is_object() && v.empty()) || (v.is_array() && v.empty()) ||
           (v.is_string() && v.get_ref<const std::string&>().empty());
}

bool scalarsEqual(const json& desired, const json& live) {
    if (desired == live) return true;
    if ((desired.is_number() || desired.is_string()) && (live.is_number() || live.is_string())) {
        auto a = asNumber(desired), b = asNumber(live);
        if (a && b) {
            long double scale = std::max<long double>(1.0L, std::fabs(*a));
            return std::fabs(*a - *b) <= scale * 1e-12L;
        }
    }
    return false;
}

const json* findListItem(const json& item, const json& liveList, const fs::ListType& type) {
    for (const auto& candidate : liveList) {
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
        if (same) return &candidate;
    }
    return nullptr;
}

void stripServerFields(json& obj) {
    if (!obj.is_object()) return;
    obj.erase("status");
    auto md = obj.find("metadata");
    if (md == obj.end() || !md->is_object()) return;
    for (const char* f : kServerMetadata) md->erase(f);
    auto ann = md->find("annotations");
    if (ann != md->end() && ann->is_object()) {
        ann->erase(kLastApplied);
        if (ann->empty()) md->erase("annotations");
    }
}

bool IgnoreRule::matches(const json& obj) const {
    if (!kind.empty() && obj.value("kind", "") != kind) return false;
    if (!group.empty() && groupOf(obj.value("apiVersion", "")) != group) return false;
    const json md = obj.value("metadata", json::object());
    if (!name.empty() && md.value("name", "") != name) return false;
    if (!ns.empty() && md.value("namespace", "") != ns) return false;
    return true;
}

std::optional<long double> parseQuantity(const std::string& text) {
    // <sign><digits>[.<digits>][suffix], suffix a binary (Ki..Ei) or decimal (n..E) multiplier
    // or an exponent (e3, E-2), as Kubernetes' resource.Quantity accepts.
    size_t i = 0;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    size_t digits = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i, ++digits;
    if (i < text.size() && text[i] == '.') {
        ++i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i, ++digits;
    }
    if (digits == 0) return std::nullopt;
    long double value = std::stold(text.substr(0, i));
    std::string suffix = text.substr(i);
    if (suffix.empty()) return value;
    if (suffix[0] == 'e' || suffix[0] == 'E') {
        size_t j = 1;
        if (j < suffix.size() && (suffix[j] == '+' || suffix[j] == '-')) ++j;
        if (j == suffix.size()) return std::nullopt;
        for (size_t k = j; k < suffix.size(); ++k)
            if (!std::isdigit(static_cast<unsigned char>(suffix[k]))) return std::nullopt;
        return value * std::pow(10.0L, std::stold(suffix.substr(1)));
    }
    static const std::pair<const char*, long double> kSuffixes[] = {{"Ki", 1024.0L},
                                                                    {"Mi", 1048576.0L},
                                                                    {"Gi", 1073741824.0L},
                                                                    {"Ti", 1099511627776.0L},
                                                                    {"Pi", 1125899906842624.0L},
                                                                    {"Ei", 1152921504606846976.0L},
                                                                    {"n", 1e-9L},
                                                                    {"u", 1e-6L},
                                                                    {"m", 1e-3L},
                                                                    {"k", 1e3L},
                                                                    {"M", 1e6L},
                                                                    {"G", 1e9L},
                                                                    {"T", 1e12L},
                                                                    {"P", 1e15L},
                                                                    {"E", 1e18L}};
    for (const auto& [s, mult] : kSuffixes)
        if (suffix == s) return value * mult;
    return std::nullopt;
}

json normalizeDesired(const json& desired) {
    json d = desired;
    dropNulls(d);
    if (d.value("kind", "") == "Secret" && d.value("apiVersion", "") == "v1" &&
        d.contains("stringData") && d["stringData"].is_object()) {
        for (auto it = d["stringData"].begin(); it != d["stringData"].end(); ++it)
            if (it.value().is_string())
                d["data"][it.key()] = base64Encode(it.value().get<std::string>());
        d.erase("stringData");
    }
    return d;
}

void removeIgnoredFields(json& obj, const json& live, const std::vector<IgnoreRule>& ignore) {
    const json& subject = live.is_object() ? live : obj;
    for (const auto& rule : ignore) {
        if (!rule.matches(subject)) continue;
        for (const auto& ptr : rule.jsonPointers) {
            try {
                json::json_pointer p(ptr);
                if (p.empty() || !obj.contains(p)) continue;
                json& parent = obj.at(p.parent_pointer());
                if (parent.is_object()) {
                    parent.erase(p.back());
                } else if (parent.is_array()) {
                    parent.erase(std::stoul(p.back()));
                }
            } catch (const std::exception&) {
                // An invalid pointer never matches; the controller reports it when validating.
            }
        }
        if (rule.managedFieldsManagers.empty() || !live.is_object()) continue;
        std::vector<fs::Path> paths;
        for (const auto& entry : fs::parseManagedFields(live))
            for (const auto& m : rule.managedFieldsManagers)
                if (entry.manager == m)
                    paths.insert(paths.end(), entry.fields.paths().begin(),
                                 entry.fields.paths().end());
        // Deepest first so removing a child never invalidates a path still to visit.
        std::sort(paths.begin(), paths.end(), [](const fs::Path& a, const fs::Path& b) {
            return a.size() != b.size() ? a.size() > b.size() : a > b;
        });
        for (const auto& p : paths) removePath(obj, p);
    }
}

Result compare(const json& desired, const json& live, const std::vector<IgnoreRule>& ignore,
               const std::string& manager) {
    Result result;
    if (live.is_null()) {
        result.modified = true;
        result.differences.push_back({".", normalizeDesired(desired), std::nullopt});
        return result;
    }
    // The walk is driven by desired, so live's server fields are never visited: the objects
    // are copied only when desired needs normalising or stripping, or a rule ignores fields
    // (a reconcile of a thousand objects would otherwise copy two thousand).
    bool ignoring = false;
    for (const auto& rule : ignore) ignoring = ignoring || rule.matches(live);
    std::optional<json> dCopy, lCopy;
    if (ignoring || needsNormalizing(desired) || hasServerFields(desired)) {
        dCopy = normalizeDesired(desired);
        removeIgnoredFields(*dCopy, live, ignore);
        stripServerFields(*dCopy);
    }
    if (ignoring) {
        lCopy = live;
        removeIgnoredFields(*lCopy, live, ignore);
    }
    const json& d = dCopy ? *dCopy : desired;
    const json& l = lCopy ? *lCopy : live;
    const fs::Schema& schema = schemaFor(desired);
    Walker(schema, result.differences).walk(d, l, "", "");
    if (!manager.empty()) {
        // Fields this manager applied before that git no longer sets: the next apply removes
        // them, so they are a difference even though the manifest does not mention them.
        fs::FieldSet owned;
        for (const auto& entry : fs::parseManagedFields(live))
            if (entry.manager == manager && entry.operation == "Apply" && entry.subresource.empty())
                owned = owned.unionWith(entry.fields);
        fs::FieldSet stale = owned.difference(fs::fieldsOf(d, schema));
        for (const auto& p : stale.paths()) {
            auto value = fs::valueAt(l, p, schema);
            if (value) result.differences.push_back({fs::toString(p), std::nullopt, *value});
        }
    }
    result.modified = !result.differences.empty();
    return result;
}

}  // namespace sluice::diff
