// Field sets of objects, comparison, and the apply / update ownership rules of
// structured-merge-diff as kube-apiserver runs them.
#include <algorithm>
#include <unordered_map>

#include "sluice/fieldset/fieldset.h"

namespace sluice::fieldset {

namespace {

std::string join(const std::string& prefix, const std::string& name) {
    return prefix.empty() ? name : prefix + "." + name;
}

std::string childSchemaPath(const Schema& s, const std::string& sp, const std::string& key) {
    return s.isDynamicMap(sp) ? join(sp, "*") : join(sp, key);
}

bool startsWith(const Path& p, const Path& prefix) {
    return p.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), p.begin());
}

// True when the set holds p or a path below it.
bool ownsAtOrBelow(const std::set<Path>& set, const Path& p) {
    auto it = set.lower_bound(p);
    return it != set.end() && startsWith(*it, p);
}

bool isMergeableMapList(const json& list, const std::optional<ListType>& t) {
    if (!t || t->kind != ListType::Kind::Map || t->keys.empty()) return false;
    for (const auto& item : list)
        if (!item.is_object()) return false;
    return true;
}

// The key of an associative-list item: its key fields, missing ones from the defaults.
json itemKey(const json& item, const ListType& t) {
    json key = json::object();
    for (const auto& k : t.keys) {
        if (auto it = item.find(k); it != item.end() && !it->is_null()) {
            key[k] = *it;
        } else if (auto d = t.keyDefaults.find(k); d != t.keyDefaults.end()) {
            key[k] = d->second;
        }
    }
    return key;
}

// Which top-level parts of an object a write to `subresource` may own.
struct Scope {
    bool statusOnly = false;
    bool includeStatus = true;
};

Scope scopeFor(const Schema& s, const std::string& subresource) {
    Scope sc;
    sc.statusOnly = subresource == "status";
    sc.includeStatus = sc.statusOnly || !s.hasStatusSubresource();
    return sc;
}

bool serverMetadataField(const std::string& name) {
    static const std::set<std::string> kSkipped{"name",
                                                "namespace",
                                                "uid",
                                                "resourceVersion",
                                                "generation",
                                                "creationTimestamp",
                                                "managedFields",
                                                "deletionTimestamp",
                                                "deletionGracePeriodSeconds",
                                                "selfLink"};
    return kSkipped.count(name) != 0;
}

struct Item {
    enum Kind { Leaf, Node, Interior };
    const json* value;
    // Leaf: owned whole. Node: an associative-list item, its fields listed apart. Interior: a
    // map or list field holding other fields; not part of an object's field set, but a
    // comparison reports it when it appears or vanishes, as upstream does (the ".": {} of
    // "f:labels" in an Update entry).
    Kind kind;
};
using Collected = std::map<Path, Item>;

class Collector {
  public:
    Collector(const Schema& s, Collected& out) : s_(s), out_(out) {}

    void root(const json& obj, const Scope& scope) {
        if (!obj.is_object()) return;
        for (auto it = obj.begin(); it != obj.end(); ++it) {
            const std::string& k = it.key();
            if (k == "apiVersion" || k == "kind") continue;
            if (scope.statusOnly ? k != "status" : (k == "status" && !scope.includeStatus))
                continue;
            path_.push_back(PathElement::field(k));
            if (k == "metadata" && it->is_object() && !it->empty()) {
                for (auto m = it->begin(); m != it->end(); ++m) {
                    if (serverMetadataField(m.key())) continue;
                    path_.push_back(PathElement::field(m.key()));
                    value(m.value(), std::string("metadata.").append(m.key()));
                    path_.pop_back();
                }
            } else {
                value(it.value(), k);
            }
            path_.pop_back();
        }
    }

    void value(const json& v, const std::string& sp) {
        if (v.is_object() && !v.empty() && !s_.isAtomicMap(sp)) {
            interior(v);
            for (auto it = v.begin(); it != v.end(); ++it) {
                path_.push_back(PathElement::field(it.key()));
                value(it.value(), childSchemaPath(s_, sp, it.key()));
                path_.pop_back();
            }
            return;
        }
        if (v.is_array() && !v.empty()) {
            auto t = s_.listAt(sp);
            if (t && t->kind == ListType::Kind::Set) {
                interior(v);
                for (const auto& e : v) {
                    path_.push_back(PathElement::value(e));
                    out_[path_] = {&e, Item::Leaf};
                    path_.pop_back();
                }
                return;
            }
            if (isMergeableMapList(v, t)) {
                const std::string itemSp = sp + "[]";
                const bool atomicItems = s_.isAtomicMap(itemSp);
                interior(v);
                for (const auto& e : v) {
                    path_.push_back(PathElement::key(itemKey(e, *t)));
                    out_[path_] = {&e, atomicItems ? Item::Leaf : Item::Node};
                    if (!atomicItems) {
                        for (auto it = e.begin(); it != e.end(); ++it) {
                            path_.push_back(PathElement::field(it.key()));
                            value(it.value(), childSchemaPath(s_, itemSp, it.key()));
                            path_.pop_back();
                        }
                    }
                    path_.pop_back();
                }
                return;
            }
        }
        // Scalars, null, empty maps/lists, atomic maps and atomic lists are owned whole.
        out_[path_] = {&v, Item::Leaf};
    }

  private:
    void interior(const json& v) {
        // Top-level fields (spec, metadata) always exist in a typed object, so upstream never
        // reports them as added.
        if (path_.size() >= 2 && path_.back().encoded.rfind("f:", 0) == 0)
            out_[path_] = {&v, Item::Interior};
    }

    const Schema& s_;
    Collected& out_;
    Path path_;
};

Collected collect(const json& obj, const Schema& s, const Scope& scope) {
    Collected out;
    Collector(s, out).root(obj, scope);
    return out;
}

FieldSet keysOf(const Collected& c) {
    FieldSet fs;
    for (const auto& [p, item] : c)
        if (item.kind != Item::Interior) fs.insert(p);
    return fs;
}

struct Comparison {
    FieldSet added, removed, modified;
};

Comparison compare(const json& oldObj, const json& newObj, const Schema& s, const Scope& scope) {
    Collected a = collect(oldObj, s, scope), b = collect(newObj, s, scope);
    Comparison c;
    // Both maps are sorted by path: one merge pass.
    auto ia = a.begin();
    auto ib = b.begin();
    while (ia != a.end() || ib != b.end()) {
        if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
            c.removed.insert(ia->first);
            ++ia;
        } else if (ia == a.end() || ib->first < ia->first) {
            c.added.insert(ib->first);
            ++ib;
        } else {
            const Item& x = ia->second;
            const Item& y = ib->second;
            if ((x.kind == Item::Leaf || y.kind == Item::Leaf) &&
                (x.kind != y.kind || *x.value != *y.value))
                c.modified.insert(ia->first);
            ++ia;
            ++ib;
        }
    }
    return c;
}

// Index of the item of `list` an element names, or -1.
long findItem(const json& list, const PathElement& e, const std::optional<ListType>& t) {
    if (!list.is_array()) return -1;
    const std::string& enc = e.encoded;
    if (enc.rfind("i:", 0) == 0) {
        size_t i = std::strtoul(enc.c_str() + 2, nullptr, 10);
        return i < list.size() ? static_cast<long>(i) : -1;
    }
    const std::string want = enc.substr(2);
    for (size_t i = 0; i < list.size(); ++i) {
        const json& item = list[i];
        if (enc.rfind("v:", 0) == 0) {
            if (canonicalJson(item) == want) return static_cast<long>(i);
        } else if (enc.rfind("k:", 0) == 0 && item.is_object()) {
            json key = t && t->kind == ListType::Kind::Map ? itemKey(item, *t) : json();
            if (key.is_null()) {
                // No schema knowledge: match on the fields the key names.
                json k = json::parse(want, nullptr, false);
                if (!k.is_object()) return -1;
                bool same = true;
                for (auto it = k.begin(); same && it != k.end(); ++it)
                    same = item.contains(it.key()) && item[it.key()] == it.value();
                if (same) return static_cast<long>(i);
            } else if (canonicalJson(key) == want) {
                return static_cast<long>(i);
            }
        }
    }
    return -1;
}

// Walks to the value at path[0..n); nullptr when absent. sp receives its schema path.
template <typename J>
J* locate(J& root, const Path& path, size_t n, const Schema& s, std::string& sp) {
    J* cur = &root;
    sp.clear();
    for (size_t i = 0; i < n; ++i) {
        const std::string& enc = path[i].encoded;
        if (enc.rfind("f:", 0) == 0) {
            if (!cur->is_object()) return nullptr;
            auto it = cur->find(enc.substr(2));
            if (it == cur->end()) return nullptr;
            sp = childSchemaPath(s, sp, enc.substr(2));
            cur = &*it;
        } else {
            long idx = findItem(*cur, path[i], s.listAt(sp));
            if (idx < 0) return nullptr;
            sp += "[]";
            cur = &(*cur)[static_cast<size_t>(idx)];
        }
    }
    return cur;
}

// Removes the field or list item at path; false when it is not there.
bool removeAt(json& root, const Path& path, const Schema& s) {
    if (path.empty()) return false;
    std::string sp;
    json* parent = locate(root, path, path.size() - 1, s, sp);
    if (!parent) return false;
    const PathElement& last = path.back();
    if (last.encoded.rfind("f:", 0) == 0) {
        return parent->is_object() && parent->erase(last.encoded.substr(2)) > 0;
    }
    long idx = findItem(*parent, last, s.listAt(sp));
    if (idx < 0) return false;
    parent->erase(static_cast<size_t>(idx));
    return true;
}

void stripNulls(json& v) {
    if (v.is_object()) {
        for (auto it = v.begin(); it != v.end();) {
            if (it->is_null()) {
                it = v.erase(it);
            } else {
                stripNulls(*it);
                ++it;
            }
        }
    } else if (v.is_array()) {
        for (auto& e : v) stripNulls(e);
    }
}

// Merges an applied configuration into target (the live value, or null when absent).
void mergeInto(json& target, const json& cfg, const std::string& sp, const Schema& s) {
    if (cfg.is_object() && !s.isAtomicMap(sp)) {
        if (!target.is_object()) target = json::object();
        for (auto it = cfg.begin(); it != cfg.end(); ++it)
            mergeInto(target[it.key()], it.value(), childSchemaPath(s, sp, it.key()), s);
        return;
    }
    if (cfg.is_array()) {
        auto t = s.listAt(sp);
        if (t && t->kind == ListType::Kind::Set) {
            if (!target.is_array()) target = json::array();
            std::set<std::string> have;
            for (const auto& e : target) have.insert(canonicalJson(e));
            for (const auto& e : cfg)
                if (have.insert(canonicalJson(e)).second) target.push_back(e);
            return;
        }
        if (isMergeableMapList(cfg, t) && (!target.is_array() || isMergeableMapList(target, t))) {
            if (!target.is_array()) target = json::array();
            const std::string itemSp = sp + "[]";
            std::unordered_map<std::string, size_t> index;
            for (size_t i = 0; i < target.size(); ++i)
                index.emplace(canonicalJson(itemKey(target[i], *t)), i);
            for (const auto& item : cfg) {
                std::string key = canonicalJson(itemKey(item, *t));
                if (auto found = index.find(key); found != index.end()) {
                    mergeInto(target[found->second], item, itemSp, s);
                    continue;
                }
                // New items go after the live ones, with defaulted key fields filled in as
                // kube-apiserver's defaulting would.
                json fresh;
                mergeInto(fresh, item, itemSp, s);
                for (const auto& [k, d] : t->keyDefaults)
                    if (!fresh.contains(k)) fresh[k] = d;
                index.emplace(std::move(key), target.size());
                target.push_back(std::move(fresh));
            }
            return;
        }
    }
    target = cfg;
}

// Removes the fields the applier set last time but sets no more, unless someone (the applier
// included, with its new set) still owns them or something below them.
void prune(json& obj, const FieldSet& last, const std::set<Path>& owned, const Schema& s) {
    const Path* removedPrefix = nullptr;
    std::vector<Path> removed;
    for (const auto& p : last.paths()) {
        if (removedPrefix && startsWith(p, *removedPrefix)) continue;
        if (ownsAtOrBelow(owned, p)) continue;
        if (removeAt(obj, p, s)) {
            removed.push_back(p);
            removedPrefix = &removed.back();
        } else {
            removedPrefix = nullptr;
        }
    }
    // Maps and lists emptied by the removal go too (the applier had set something in them),
    // unless someone owns them as such; metadata itself always stays.
    std::string sp;
    for (const auto& p : removed) {
        Path q = p;
        while (q.size() > 1) {
            q.pop_back();
            if (q.back().encoded.rfind("f:", 0) != 0 || ownsAtOrBelow(owned, q)) break;
            const json* v = locate(std::as_const(obj), q, q.size(), s, sp);
            if (!v || !v->is_structured() || !v->empty()) break;
            removeAt(obj, q, s);
        }
    }
}

bool sameEntry(const ManagedFieldsEntry& e, const std::string& manager,
               const std::string& operation, const std::string& apiVersion,
               const std::string& subresource) {
    // Upstream identifies Apply entries without their apiVersion.
    return e.manager == manager && e.operation == operation && e.subresource == subresource &&
           (operation == "Apply" || e.apiVersion == apiVersion);
}

void sortEntries(std::vector<ManagedFieldsEntry>& entries) {
    std::stable_sort(
        entries.begin(), entries.end(),
        [](const ManagedFieldsEntry& a, const ManagedFieldsEntry& b) {
            return std::tie(a.operation, a.time, a.manager, a.apiVersion, a.subresource) <
                   std::tie(b.operation, b.time, b.manager, b.apiVersion, b.subresource);
        });
}

void writeEntries(json& obj, std::vector<ManagedFieldsEntry> entries) {
    entries.erase(std::remove_if(entries.begin(), entries.end(),
                                 [](const ManagedFieldsEntry& e) { return e.fields.empty(); }),
                  entries.end());
    sortEntries(entries);
    if (!obj.is_object()) return;
    json& meta = obj["metadata"];
    if (!meta.is_object()) meta = json::object();
    if (entries.empty()) {
        meta.erase("managedFields");
        return;
    }
    json arr = json::array();
    for (const auto& e : entries) arr.push_back(e.toJson());
    meta["managedFields"] = std::move(arr);
}

void eraseManagedFields(json& obj) {
    if (!obj.is_object()) return;
    auto meta = obj.find("metadata");
    if (meta != obj.end() && meta->is_object()) meta->erase("managedFields");
}

std::string apiVersionOf(const json& obj) {
    if (!obj.is_object()) return "";
    auto it = obj.find("apiVersion");
    return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

FieldSet fieldsOf(const json& obj, const Schema& schema) {
    return fieldsOf(obj, schema, "");
}

FieldSet fieldsOf(const json& obj, const Schema& schema, const std::string& subresource) {
    return keysOf(collect(obj, schema, scopeFor(schema, subresource)));
}

std::optional<json> valueAt(const json& obj, const Path& path, const Schema& schema) {
    std::string sp;
    const json* v = locate(obj, path, path.size(), schema, sp);
    if (!v) return std::nullopt;
    return *v;
}

MergeResult apply(const json& live, const json& applied, const std::string& manager, bool force,
                  const Schema& schema, const std::string& now, const std::string& subresource) {
    const Scope scope = scopeFor(schema, subresource);

    // What the write may touch: kube-apiserver resets the rest (see Schema::hasStatusSubresource).
    json cfg = applied.is_object() ? applied : json::object();
    eraseManagedFields(cfg);
    stripNulls(cfg);
    if (scope.statusOnly) {
        json only = json::object();
        if (cfg.contains("status")) only["status"] = cfg["status"];
        cfg = std::move(only);
    } else if (!scope.includeStatus) {
        cfg.erase("status");
    }

    std::vector<ManagedFieldsEntry> entries = parseManagedFields(live);
    json base = live.is_object() ? live : json::object();
    eraseManagedFields(base);
    if (live.is_object() && entries.empty()) {
        // An object written before anyone tracked ownership: upstream hands its fields to a
        // placeholder manager so the first apply can conflict with them.
        ManagedFieldsEntry before{"before-first-apply",      "Update", apiVersionOf(live), now, "",
                                  fieldsOf(base, schema, "")};
        if (!before.fields.empty()) entries.push_back(std::move(before));
    }

    json merged = base;
    mergeInto(merged, cfg, "", schema);
    const FieldSet appliedSet = fieldsOf(cfg, schema, subresource);

    long self = -1;
    for (size_t i = 0; i < entries.size(); ++i)
        if (sameEntry(entries[i], manager, "Apply", "", subresource)) self = static_cast<long>(i);

    if (self >= 0) {
        std::set<Path> owned = appliedSet.paths();
        for (size_t i = 0; i < entries.size(); ++i)
            if (static_cast<long>(i) != self)
                owned.insert(entries[i].fields.paths().begin(), entries[i].fields.paths().end());
        prune(merged, entries[static_cast<size_t>(self)].fields, owned, schema);
    }

    const Comparison cmp = compare(base, merged, schema, scope);
    const FieldSet changed = cmp.added.unionWith(cmp.modified);
    std::vector<Conflict> conflicts;
    std::vector<FieldSet> taken(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
        if (static_cast<long>(i) == self) continue;
        taken[i] = entries[i].fields.intersection(changed);
        for (const auto& p : taken[i].paths())
            conflicts.push_back({entries[i].manager, p, entries[i].operation, entries[i].apiVersion,
                                 entries[i].subresource});
    }
    if (!force && !conflicts.empty()) throw ApplyConflict(std::move(conflicts));

    for (size_t i = 0; i < entries.size(); ++i) {
        if (static_cast<long>(i) == self) continue;
        if (!taken[i].empty()) entries[i].fields = entries[i].fields.difference(taken[i]);
        if (!cmp.removed.empty()) entries[i].fields = entries[i].fields.difference(cmp.removed);
    }
    ManagedFieldsEntry mine{manager, "Apply", apiVersionOf(applied), now, subresource, appliedSet};
    if (self >= 0) {
        entries[static_cast<size_t>(self)] = std::move(mine);
    } else {
        entries.push_back(std::move(mine));
    }
    writeEntries(merged, std::move(entries));
    return MergeResult{std::move(merged)};
}

json recordUpdate(const json& oldObj, const json& newObj, const std::string& manager,
                  const Schema& schema, const std::string& now, const std::string& subresource) {
    json result = newObj;
    std::vector<ManagedFieldsEntry> entries;
    const json* sent = nullptr;
    if (newObj.is_object() && newObj.contains("metadata") && newObj["metadata"].is_object())
        if (auto it = newObj["metadata"].find("managedFields"); it != newObj["metadata"].end())
            sent = &*it;
    if (sent && sent->is_array() && subresource.empty()) {
        bool reset = true;
        for (const auto& e : *sent) reset = reset && e.is_object() && e.empty();
        if (reset) {
            // "managedFields: []" or "[{}]": the client asks to clear ownership.
            eraseManagedFields(result);
            return result;
        }
        entries = parseManagedFields(newObj);
    } else {
        entries = parseManagedFields(oldObj);
    }

    json before = oldObj.is_object() ? oldObj : json::object();
    eraseManagedFields(before);
    eraseManagedFields(result);
    const Comparison cmp = compare(before, result, schema, scopeFor(schema, subresource));
    const FieldSet changed = cmp.added.unionWith(cmp.modified);

    const std::string apiVersion = apiVersionOf(newObj);
    long self = -1;
    for (size_t i = 0; i < entries.size(); ++i) {
        if (sameEntry(entries[i], manager, "Update", apiVersion, subresource)) {
            self = static_cast<long>(i);
            continue;
        }
        entries[i].fields = entries[i].fields.difference(changed).difference(cmp.removed);
    }
    if (self < 0 && !changed.empty()) {
        entries.push_back({manager, "Update", apiVersion, now, subresource, {}});
        self = static_cast<long>(entries.size() - 1);
    }
    if (self >= 0) {
        auto& mine = entries[static_cast<size_t>(self)];
        mine.fields = mine.fields.difference(cmp.removed).unionWith(changed);
        if (!changed.empty()) mine.time = now;
    }
    writeEntries(result, std::move(entries));
    return result;
}

}  // namespace sluice::fieldset
