// Patch formats accepted by kube-apiserver: JSON merge patch, JSON patch and strategic merge
// patch. Error classes follow the apiserver's patch handler: undecodable patches are 400,
// patches that cannot be applied are 422.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "apilogic/apilogic.h"

namespace sluice::apilogic {

json applyMergePatch(const json& target, const json& patch) {
    if (!patch.is_object()) return patch;
    json result = target.is_object() ? target : json::object();
    for (const auto& [key, value] : patch.items()) {
        if (value.is_null()) {
            result.erase(key);
        } else {
            auto it = result.find(key);
            result[key] = applyMergePatch(it == result.end() ? json() : *it, value);
        }
    }
    return result;
}

namespace {

[[noreturn]] void badPatch(const std::string& msg) {
    throw InvalidError(msg, {}, true);
}
[[noreturn]] void unprocessable(const std::string& msg) {
    throw InvalidError(msg, {}, false);
}

// RFC 6901: "/a~1b/~0c" -> {"a/b", "~c"}.
std::vector<std::string> parsePointer(const std::string& ptr) {
    std::vector<std::string> tokens;
    if (ptr.empty()) return tokens;
    if (ptr[0] != '/') badPatch("invalid JSON pointer \"" + ptr + "\": must start with '/'");
    size_t pos = 1;
    while (true) {
        size_t next = ptr.find('/', pos);
        std::string raw =
            ptr.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
        std::string tok;
        for (size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] != '~') {
                tok += raw[i];
                continue;
            }
            if (i + 1 < raw.size() && raw[i + 1] == '0') {
                tok += '~';
            } else if (i + 1 < raw.size() && raw[i + 1] == '1') {
                tok += '/';
            } else {
                badPatch("invalid JSON pointer \"" + ptr + "\": bad escape");
            }
            ++i;
        }
        tokens.push_back(std::move(tok));
        if (next == std::string::npos) break;
        pos = next + 1;
    }
    return tokens;
}

// Array index per RFC 6901: digits without leading zeros; "-" only where allowed.
std::optional<size_t> parseIndex(const std::string& tok) {
    if (tok.empty() || tok.size() > 18) return std::nullopt;
    if (tok.size() > 1 && tok[0] == '0') return std::nullopt;
    for (char c : tok)
        if (c < '0' || c > '9') return std::nullopt;
    return static_cast<size_t>(std::stoull(tok));
}

// The container holding the last token of `tokens` (which must exist).
json* resolveParent(json& doc, const std::vector<std::string>& tokens, const std::string& path) {
    json* cur = &doc;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
        const std::string& t = tokens[i];
        if (cur->is_object()) {
            auto it = cur->find(t);
            if (it == cur->end()) unprocessable("path \"" + path + "\" does not exist");
            cur = &*it;
        } else if (cur->is_array()) {
            auto idx = parseIndex(t);
            if (!idx || *idx >= cur->size()) unprocessable("path \"" + path + "\" does not exist");
            cur = &(*cur)[*idx];
        } else {
            unprocessable("path \"" + path + "\" does not exist");
        }
    }
    return cur;
}

json& resolve(json& doc, const std::string& path) {
    auto tokens = parsePointer(path);
    if (tokens.empty()) return doc;
    json* parent = resolveParent(doc, tokens, path);
    const std::string& last = tokens.back();
    if (parent->is_object()) {
        auto it = parent->find(last);
        if (it == parent->end()) unprocessable("path \"" + path + "\" does not exist");
        return *it;
    }
    if (parent->is_array()) {
        auto idx = parseIndex(last);
        if (!idx || *idx >= parent->size()) unprocessable("path \"" + path + "\" does not exist");
        return (*parent)[*idx];
    }
    unprocessable("path \"" + path + "\" does not exist");
}

void addAt(json& doc, const std::string& path, json value) {
    auto tokens = parsePointer(path);
    if (tokens.empty()) {
        doc = std::move(value);
        return;
    }
    json* parent = resolveParent(doc, tokens, path);
    const std::string& last = tokens.back();
    if (parent->is_object()) {
        (*parent)[last] = std::move(value);
    } else if (parent->is_array()) {
        if (last == "-") {
            parent->push_back(std::move(value));
            return;
        }
        auto idx = parseIndex(last);
        if (!idx || *idx > parent->size())
            unprocessable("add operation: index out of bounds at \"" + path + "\"");
        parent->insert(parent->begin() + static_cast<std::ptrdiff_t>(*idx), std::move(value));
    } else {
        unprocessable("add operation: parent of \"" + path + "\" is not a container");
    }
}

json removeAt(json& doc, const std::string& path) {
    auto tokens = parsePointer(path);
    if (tokens.empty()) unprocessable("remove operation: cannot remove the whole document");
    json* parent = resolveParent(doc, tokens, path);
    const std::string& last = tokens.back();
    if (parent->is_object()) {
        auto it = parent->find(last);
        if (it == parent->end())
            unprocessable("remove operation: path \"" + path + "\" does not exist");
        json old = std::move(*it);
        parent->erase(it);
        return old;
    }
    if (parent->is_array()) {
        auto idx = parseIndex(last);
        if (!idx || *idx >= parent->size())
            unprocessable("remove operation: path \"" + path + "\" does not exist");
        json old = std::move((*parent)[*idx]);
        parent->erase(*idx);
        return old;
    }
    unprocessable("remove operation: path \"" + path + "\" does not exist");
}

std::string stringMember(const json& op, const char* name) {
    auto it = op.find(name);
    if (it == op.end() || !it->is_string())
        badPatch(std::string("JSON patch operation is missing string member \"") + name + "\"");
    return it->get<std::string>();
}

const json& valueMember(const json& op) {
    auto it = op.find("value");
    if (it == op.end()) badPatch("JSON patch operation is missing member \"value\"");
    return *it;
}

}  // namespace

json applyJsonPatch(const json& target, const json& patch) {
    if (!patch.is_array()) badPatch("JSON patch must be an array of operations");
    // Decode every operation first: a malformed patch is a 400 even if earlier ops would apply.
    for (const auto& op : patch) {
        if (!op.is_object()) badPatch("JSON patch operation must be an object");
        std::string name = stringMember(op, "op");
        parsePointer(stringMember(op, "path"));
        if (name == "add" || name == "replace" || name == "test") {
            valueMember(op);
        } else if (name == "move" || name == "copy") {
            parsePointer(stringMember(op, "from"));
        } else if (name != "remove") {
            badPatch("unexpected JSON patch operation \"" + name + "\"");
        }
    }
    json doc = target;
    for (const auto& op : patch) {
        std::string name = op["op"].get<std::string>();
        std::string path = op["path"].get<std::string>();
        if (name == "add") {
            addAt(doc, path, op["value"]);
        } else if (name == "remove") {
            removeAt(doc, path);
        } else if (name == "replace") {
            json& slot = resolve(doc, path);
            slot = op["value"];
        } else if (name == "move") {
            std::string from = op["from"].get<std::string>();
            if (path.size() > from.size() && path.compare(0, from.size(), from) == 0 &&
                path[from.size()] == '/')
                unprocessable("move operation: \"" + path + "\" is a child of \"" + from + "\"");
            json v = removeAt(doc, from);
            addAt(doc, path, std::move(v));
        } else if (name == "copy") {
            json v = resolve(doc, op["from"].get<std::string>());
            addAt(doc, path, std::move(v));
        } else {  // test
            if (resolve(doc, path) != op["value"])
                unprocessable("testing value " + path + " failed: test failed");
        }
    }
    return doc;
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch.

namespace {

const std::string kPatch = "$patch";
const std::string kRetainKeys = "$retainKeys";
const std::string kDeletePrefix = "$deleteFromPrimitiveList/";
const std::string kOrderPrefix = "$setElementOrder/";

bool startsWith(const std::string& s, const std::string& p) {
    return s.compare(0, p.size(), p) == 0;
}

std::string childPath(const std::string& base, const std::string& field) {
    return base.empty() ? field : base + "." + field;
}

class StrategicMerger {
  public:
    explicit StrategicMerger(const fieldset::Schema& schema) : schema_(schema) {}

    // Returns nullopt when the map is deleted by "$patch: delete".
    std::optional<json> mergeMap(const json& original, const json& patch, const std::string& path) {
        if (!patch.is_object())
            badPatch("strategic merge patch: expected a map at \"" + path + "\"");
        auto directive = patch.find(kPatch);
        if (directive != patch.end()) {
            std::string d = directive->is_string() ? directive->get<std::string>() : "";
            if (d == "delete") return std::nullopt;
            if (d == "replace") return stripDirectives(patch);
            if (d != "merge")
                badPatch("strategic merge patch: unknown $patch directive \"" + directive->dump() +
                         "\" at \"" + path + "\"");
        }
        json result = original.is_object() ? original : json::object();

        if (auto rk = patch.find(kRetainKeys); rk != patch.end()) {
            if (!rk->is_array()) badPatch("$retainKeys must be a list at \"" + path + "\"");
            std::vector<std::string> keep;
            for (const auto& k : *rk) {
                if (!k.is_string())
                    badPatch("$retainKeys must be a list of strings at \"" + path + "\"");
                keep.push_back(k.get<std::string>());
            }
            for (const auto& [key, _] : patch.items()) {
                if (startsWith(key, "$") || patch[key].is_null()) continue;
                if (std::find(keep.begin(), keep.end(), key) == keep.end())
                    unprocessable("strategic merge patch: patch content at \"" + path +
                                  "\" does not match $retainKeys (missing \"" + key + "\")");
            }
            json kept = json::object();
            for (const auto& [key, value] : result.items())
                if (std::find(keep.begin(), keep.end(), key) != keep.end()) kept[key] = value;
            result = std::move(kept);
        }

        for (const auto& [key, value] : patch.items()) {
            if (key == kPatch || key == kRetainKeys || startsWith(key, kOrderPrefix)) continue;
            if (startsWith(key, kDeletePrefix)) {
                applyDeleteFromPrimitiveList(result, key.substr(kDeletePrefix.size()), value, path);
                continue;
            }
            if (startsWith(key, "$"))
                badPatch("strategic merge patch: unknown directive \"" + key + "\" at \"" + path +
                         "\"");
            if (value.is_null()) {
                result.erase(key);
                continue;
            }
            std::string sub = childPath(path, key);
            auto existing = result.find(key);
            const json orig = existing == result.end() ? json() : *existing;
            if (value.is_object()) {
                // Maps always merge: mapType=atomic is a server-side apply marker that strategic
                // merge patch (driven by patchStrategy tags) does not honour.
                auto merged = mergeMap(orig.is_object() ? orig : json::object(), value, sub);
                if (merged)
                    result[key] = std::move(*merged);
                else
                    result.erase(key);
            } else if (value.is_array()) {
                result[key] = mergeList(orig, value, sub);
            } else {
                result[key] = value;
            }
        }

        // Orders are applied last so that items added by this patch are placed too.
        for (const auto& [key, value] : patch.items()) {
            if (!startsWith(key, kOrderPrefix)) continue;
            std::string field = key.substr(kOrderPrefix.size());
            if (!value.is_array()) badPatch("$setElementOrder must be a list at \"" + path + "\"");
            auto it = result.find(field);
            if (it != result.end() && it->is_array())
                *it = applyOrder(*it, value, childPath(path, field));
        }
        return result;
    }

  private:
    const fieldset::Schema& schema_;

    static json stripDirectives(const json& v) {
        if (v.is_object()) {
            json out = json::object();
            for (const auto& [k, x] : v.items())
                if (!startsWith(k, "$")) out[k] = stripDirectives(x);
            return out;
        }
        if (v.is_array()) {
            json out = json::array();
            for (const auto& x : v) {
                if (x.is_object() && x.contains(kPatch) && x.size() == 1) continue;
                out.push_back(stripDirectives(x));
            }
            return out;
        }
        return v;
    }

    std::optional<fieldset::ListType> listType(const std::string& path) const {
        return schema_.listAt(path);
    }

    // Merge keys of a list item, with the schema's key defaults filled in.
    static json keyOf(const json& item, const fieldset::ListType& lt) {
        json k = json::object();
        for (const auto& name : lt.keys) {
            auto it = item.find(name);
            if (it != item.end() && !it->is_null()) {
                k[name] = *it;
            } else if (auto d = lt.keyDefaults.find(name); d != lt.keyDefaults.end()) {
                k[name] = d->second;
            }
        }
        return k;
    }

    json mergeList(const json& original, const json& patch, const std::string& path) {
        auto lt = listType(path);
        for (const auto& item : patch)
            if (item.is_array())
                unprocessable("strategic merge patch: lists of lists are not supported at \"" +
                              path + "\"");
        // A "$patch: replace" item replaces the whole list with the other items.
        for (const auto& item : patch) {
            if (item.is_object() && item.contains(kPatch) && item[kPatch] == "replace")
                return stripDirectives(patch);
        }
        if (!lt || lt->kind == fieldset::ListType::Kind::Atomic) return stripDirectives(patch);
        json result = original.is_array() ? original : json::array();

        if (lt->kind == fieldset::ListType::Kind::Set || lt->keys.empty()) {
            for (const auto& item : patch) {
                if (item.is_object())
                    badPatch("strategic merge patch: map item in primitive list at \"" + path +
                             "\"");
                if (std::find(result.begin(), result.end(), item) == result.end())
                    result.push_back(item);
            }
            return result;
        }

        for (const auto& item : patch) {
            if (!item.is_object())
                badPatch("strategic merge patch: list at \"" + path + "\" expects map items");
            json key = keyOf(item, *lt);
            bool isDelete = item.contains(kPatch) && item[kPatch] == "delete";
            if (item.contains(kPatch) && !isDelete && item[kPatch] != "merge")
                badPatch("strategic merge patch: unknown $patch directive in list at \"" + path +
                         "\"");
            if (key.size() != lt->keys.size() && !(isDelete && !key.empty()))
                badPatch("strategic merge patch: item in \"" + path +
                         "\" does not contain merge key(s)");
            auto match = [&](const json& existing) {
                if (!existing.is_object()) return false;
                json ek = keyOf(existing, *lt);
                for (const auto& [k, v] : key.items())
                    if (!ek.contains(k) || ek[k] != v) return false;
                return true;
            };
            if (isDelete) {
                result.erase(std::remove_if(result.begin(), result.end(), match), result.end());
                continue;
            }
            auto it = std::find_if(result.begin(), result.end(), match);
            std::string itemPath = path + "[]";
            if (it == result.end()) {
                auto merged = mergeMap(json::object(), item, itemPath);
                if (merged) result.push_back(std::move(*merged));
            } else {
                auto merged = mergeMap(*it, item, itemPath);
                if (merged)
                    *it = std::move(*merged);
                else
                    result.erase(it);
            }
        }
        return result;
    }

    void applyDeleteFromPrimitiveList(json& result, const std::string& field, const json& values,
                                      const std::string& path) {
        if (!values.is_array())
            badPatch("$deleteFromPrimitiveList must be a list at \"" + childPath(path, field) +
                     "\"");
        auto it = result.find(field);
        if (it == result.end() || !it->is_array()) return;
        json kept = json::array();
        for (const auto& v : *it)
            if (std::find(values.begin(), values.end(), v) == values.end()) kept.push_back(v);
        *it = std::move(kept);
    }

    // Items named in `order` come first, in that order; the rest keep their relative order.
    json applyOrder(const json& list, const json& order, const std::string& path) {
        auto lt = listType(path);
        bool keyed = lt && lt->kind == fieldset::ListType::Kind::Map && !lt->keys.empty();
        auto matches = [&](const json& item, const json& o) {
            if (!keyed) return item == o;
            if (!item.is_object() || !o.is_object()) return false;
            return keyOf(item, *lt) == keyOf(o, *lt);
        };
        std::vector<bool> used(list.size(), false);
        json out = json::array();
        for (const auto& o : order) {
            for (size_t i = 0; i < list.size(); ++i) {
                if (!used[i] && matches(list[i], o)) {
                    used[i] = true;
                    out.push_back(list[i]);
                    break;
                }
            }
        }
        for (size_t i = 0; i < list.size(); ++i)
            if (!used[i]) out.push_back(list[i]);
        return out;
    }
};

}  // namespace

json applyStrategicMergePatch(const json& target, const json& patch,
                              const fieldset::Schema& schema) {
    if (!patch.is_object()) badPatch("strategic merge patch must be a JSON object");
    StrategicMerger merger(schema);
    auto merged = merger.mergeMap(target, patch, "");
    if (!merged) badPatch("strategic merge patch: \"$patch: delete\" at the root is not allowed");
    return *merged;
}

}  // namespace sluice::apilogic
