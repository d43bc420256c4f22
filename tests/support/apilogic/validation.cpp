// Structural-schema handling of custom resources the way apiextensions-apiserver does it:
// defaulting, pruning of unknown fields, then OpenAPI v3 validation whose messages copy
// go-openapi's wording as kube-apiserver surfaces it ("<path>: Invalid value: ...: <path> in
// body ...").
#include <arpa/inet.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <vector>

#include "apilogic/apilogic.h"

namespace sluice::apilogic {
namespace {

// Go's fmt %v for float64: shortest digits, exponent form when exp < -4 || exp >= 6. Schema
// limits reach go-openapi as float64, so kube-apiserver prints maximum 1000000 as "1e+06".
std::string goFloat(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == 0) return "0";
    char buf[64];
    for (int prec = 1; prec <= 17; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    std::string s = buf;  // [-]d.ddde[+-]XX
    size_t e = s.find('e');
    int exp = std::stoi(s.substr(e + 1));
    std::string mant = s.substr(0, e);
    bool neg = mant[0] == '-';
    if (neg) mant.erase(0, 1);
    std::string digits;
    for (char c : mant)
        if (c != '.') digits += c;
    std::string out;
    if (exp < -4 || exp >= 6) {
        out = digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        char eb[16];
        std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
        out += eb;
    } else if (exp < 0) {
        out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
        out = digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0');
    } else {
        out = digits.substr(0, static_cast<size_t>(exp) + 1) + "." +
              digits.substr(static_cast<size_t>(exp) + 1);
    }
    return (neg ? "-" : "") + out;
}

// The JSON type name go-openapi reports for a value.
std::string typeName(const json& v) {
    switch (v.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::boolean:
            return "boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
            return "integer";
        case json::value_t::number_float:
            return "number";
        case json::value_t::string:
            return "string";
        case json::value_t::array:
            return "array";
        default:
            return "object";
    }
}

// field.Error's rendering of a bad value: strings quoted, scalars plain, the rest as JSON.
std::string renderValue(const json& v) {
    if (v.is_string()) return v.dump();
    if (v.is_number_float()) return goFloat(v.get<double>());
    return v.dump();
}

bool isInteger(const json& v) {
    if (v.is_number_integer() || v.is_number_unsigned()) return true;
    if (v.is_number_float()) {
        double d = v.get<double>();
        return std::isfinite(d) && std::floor(d) == d;
    }
    return false;
}

double numberOf(const json& v) {
    return v.get<double>();
}

size_t runeCount(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s)
        if ((c & 0xC0) != 0x80) ++n;
    return n;
}

// Patterns compile once per process; a pattern std::regex cannot compile is left unchecked.
struct PatternCache {
    std::mutex mu;
    std::map<std::string, std::shared_ptr<const std::regex>> compiled;  // null: uncompilable
};
PatternCache& patternCache() {
    static PatternCache cache;
    return cache;
}
std::shared_ptr<const std::regex> compilePattern(const std::string& pattern) {
    auto& cache = patternCache();
    std::lock_guard<std::mutex> lock(cache.mu);
    auto it = cache.compiled.find(pattern);
    if (it != cache.compiled.end()) return it->second;
    std::shared_ptr<const std::regex> re;
    try {
        re = std::make_shared<const std::regex>(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error&) {
        re = nullptr;
    }
    cache.compiled.emplace(pattern, re);
    return re;
}

bool checkFormat(const std::string& format, const json& v) {
    if (format == "int32" || format == "int64") {
        if (!v.is_number()) return true;
        double d = v.get<double>();
        if (format == "int32") return d >= -2147483648.0 && d <= 2147483647.0;
        return d >= -9223372036854775808.0 && d < 9223372036854775808.0;
    }
    if (!v.is_string()) return true;
    const std::string s = v.get<std::string>();
    if (format == "date-time") {
        static const std::regex re(
            R"(^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$)");
        return std::regex_match(s, re);
    }
    if (format == "date") {
        static const std::regex re(R"(^\d{4}-\d{2}-\d{2}$)");
        return std::regex_match(s, re);
    }
    if (format == "byte") {
        static const std::regex re(
            R"(^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$)");
        return std::regex_match(s, re);
    }
    if (format == "uuid") {
        static const std::regex re(
            R"(^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$)");
        return std::regex_match(s, re);
    }
    if (format == "ipv4") {
        unsigned char buf[16];
        return inet_pton(AF_INET, s.c_str(), buf) == 1;
    }
    if (format == "ipv6") {
        unsigned char buf[16];
        return inet_pton(AF_INET6, s.c_str(), buf) == 1;
    }
    return true;  // formats kube-apiserver does not check (double, float, password, ...)
}

class Validator {
  public:
    explicit Validator(ValidationResult& result) : result_(result) {}

    // mutate: apply defaults, prune, record unknown fields and CEL rules (the real pass);
    // false for the trial evaluation of anyOf/oneOf/allOf/not branches.
    void visit(json& v, const json& s, const std::string& path, std::vector<FieldCause>& errs,
               bool mutate) {
        if (!s.is_object()) return;
        if (mutate) countCel(s);

        if (v.is_null()) {
            if (s.value("nullable", false)) return;
            if (s.contains("type") || s.value("x-kubernetes-int-or-string", false)) {
                typeError(v,
                          s.contains("type") ? s["type"].get<std::string>() : "integer-or-string",
                          path, errs);
            }
            return;
        }

        if (!checkType(v, s, path, errs)) return;

        if (v.is_object()) {
            visitObject(v, s, path, errs, mutate);
        } else if (v.is_array()) {
            visitArray(v, s, path, errs, mutate);
        } else {
            checkScalar(v, s, path, errs);
        }
        if (s.contains("enum") && s["enum"].is_array()) checkEnum(v, s["enum"], path, errs);
        checkCombinators(v, s, path, errs);
    }

    void visitRoot(json& obj, const json& s) {
        std::vector<FieldCause>& errs = result_.errors;
        if (!obj.is_object()) {
            errs.push_back(
                {"FieldValueTypeInvalid",
                 ": Invalid value: \"" + typeName(obj) + "\": body must be of type object", ""});
            return;
        }
        countCel(s);
        checkEmbeddedShape(obj, "", errs);
        applyDefaults(obj, s);
        pruneAndVisitChildren(obj, s, "", errs, true, /*skipMeta=*/true);
        checkObjectConstraints(obj, s, "", errs);
        checkCombinators(obj, s, "", errs);
    }

  private:
    ValidationResult& result_;

    static std::string child(const std::string& path, const std::string& key) {
        return path.empty() ? key : path + "." + key;
    }
    static std::string index(const std::string& path, size_t i) {
        return path + "[" + std::to_string(i) + "]";
    }
    static std::string fieldOf(const std::string& path) { return "." + path; }

    void countCel(const json& s) {
        auto it = s.find("x-kubernetes-validations");
        if (it != s.end() && it->is_array())
            result_.skippedCelRules += static_cast<int>(it->size());
    }

    static void add(std::vector<FieldCause>& errs, const std::string& reason,
                    const std::string& path, const std::string& body) {
        errs.push_back({reason, path + ": " + body, fieldOf(path)});
    }
    static void invalid(std::vector<FieldCause>& errs, const std::string& path, const json& value,
                        const std::string& detail) {
        add(errs, "FieldValueInvalid", path,
            "Invalid value: " + renderValue(value) + ": " + path + " in body " + detail);
    }
    static void typeError(const json& v, const std::string& type, const std::string& path,
                          std::vector<FieldCause>& errs) {
        std::string actual = typeName(v);
        add(errs, "FieldValueTypeInvalid", path,
            "Invalid value: \"" + actual + "\": " + path + " in body must be of type " + type +
                ": \"" + actual + "\"");
    }

    bool checkType(const json& v, const json& s, const std::string& path,
                   std::vector<FieldCause>& errs) {
        if (s.value("x-kubernetes-int-or-string", false)) {
            if (isInteger(v) || v.is_string()) return true;
            typeError(v, "integer-or-string", path, errs);  // apiextensions' wording for this case
            return false;
        }
        auto t = s.find("type");
        if (t == s.end() || !t->is_string()) return true;
        const std::string& type = t->get_ref<const std::string&>();
        bool ok = (type == "object" && v.is_object()) || (type == "array" && v.is_array()) ||
                  (type == "string" && v.is_string()) || (type == "integer" && isInteger(v)) ||
                  (type == "number" && v.is_number()) || (type == "boolean" && v.is_boolean());
        if (!ok) typeError(v, type, path, errs);
        return ok;
    }

    // Defaults of missing (or null, non-nullable) properties, as the defaulting pass does.
    static void applyDefaults(json& obj, const json& s) {
        auto props = s.find("properties");
        if (props == s.end() || !props->is_object()) return;
        for (const auto& [name, ps] : props->items()) {
            auto it = obj.find(name);
            bool nullable = ps.value("nullable", false);
            if (it != obj.end() && !(it->is_null() && !nullable)) continue;
            if (ps.contains("default")) {
                obj[name] = ps["default"];
            } else if (it != obj.end()) {
                // A null in a non-nullable field without default is dropped before validation.
                obj.erase(name);
            }
        }
    }

    void checkEmbeddedShape(const json& obj, const std::string& path,
                            std::vector<FieldCause>& errs) {
        for (const char* k : {"apiVersion", "kind"}) {
            auto it = obj.find(k);
            if (it != obj.end() && !it->is_string()) typeError(*it, "string", child(path, k), errs);
        }
        auto md = obj.find("metadata");
        if (md != obj.end() && !md->is_object())
            typeError(*md, "object", child(path, "metadata"), errs);
    }

    void pruneAndVisitChildren(json& obj, const json& s, const std::string& path,
                               std::vector<FieldCause>& errs, bool mutate, bool skipMeta) {
        const json* props =
            s.contains("properties") && s["properties"].is_object() ? &s["properties"] : nullptr;
        const json* addl =
            s.contains("additionalProperties") ? &s["additionalProperties"] : nullptr;
        bool preserve = s.value("x-kubernetes-preserve-unknown-fields", false) ||
                        (addl && addl->is_boolean() && addl->get<bool>());
        std::vector<std::string> unknown;
        for (auto it = obj.begin(); it != obj.end(); ++it) {
            const std::string& key = it.key();
            std::string p = child(path, key);
            if (skipMeta && (key == "apiVersion" || key == "kind" || key == "metadata")) continue;
            if (props && props->contains(key)) {
                visit(it.value(), (*props)[key], p, errs, mutate);
            } else if (addl && addl->is_object()) {
                visit(it.value(), *addl, p, errs, mutate);
            } else if (!preserve) {
                unknown.push_back(key);
            }
        }
        if (!mutate) return;
        for (const auto& key : unknown) {
            result_.unknownFields.push_back(fieldOf(child(path, key)));
            obj.erase(key);
        }
    }

    void checkObjectConstraints(const json& obj, const json& s, const std::string& path,
                                std::vector<FieldCause>& errs) {
        if (auto req = s.find("required"); req != s.end() && req->is_array()) {
            for (const auto& r : *req) {
                if (r.is_string() && !obj.contains(r.get<std::string>()))
                    add(errs, "FieldValueRequired", child(path, r.get<std::string>()),
                        "Required value");
            }
        }
        if (auto m = s.find("minProperties");
            m != s.end() && m->is_number() && obj.size() < m->get<size_t>())
            invalid(errs, path, obj,
                    "should have at least " + std::to_string(m->get<size_t>()) + " properties");
        if (auto m = s.find("maxProperties");
            m != s.end() && m->is_number() && obj.size() > m->get<size_t>())
            add(errs, "FieldValueTooMany", path,
                "Too many: " + std::to_string(obj.size()) + ": must have at most " +
                    std::to_string(m->get<size_t>()) + " items");
    }

    void visitObject(json& obj, const json& s, const std::string& path,
                     std::vector<FieldCause>& errs, bool mutate) {
        bool embedded = s.value("x-kubernetes-embedded-resource", false);
        if (embedded) checkEmbeddedShape(obj, path, errs);
        if (mutate) applyDefaults(obj, s);
        pruneAndVisitChildren(obj, s, path, errs, mutate, embedded);
        checkObjectConstraints(obj, s, path, errs);
    }

    void visitArray(json& arr, const json& s, const std::string& path,
                    std::vector<FieldCause>& errs, bool mutate) {
        if (auto items = s.find("items"); items != s.end() && items->is_object()) {
            for (size_t i = 0; i < arr.size(); ++i)
                visit(arr[i], *items, index(path, i), errs, mutate);
        }
        if (auto m = s.find("minItems");
            m != s.end() && m->is_number() && arr.size() < m->get<size_t>())
            invalid(errs, path, arr,
                    "should have at least " + std::to_string(m->get<size_t>()) + " items");
        if (auto m = s.find("maxItems");
            m != s.end() && m->is_number() && arr.size() > m->get<size_t>())
            add(errs, "FieldValueTooMany", path,
                "Too many: " + std::to_string(arr.size()) + ": must have at most " +
                    std::to_string(m->get<size_t>()) + " items");
        if (s.value("uniqueItems", false)) {
            for (size_t i = 0; i < arr.size(); ++i)
                for (size_t j = 0; j < i; ++j)
                    if (arr[i] == arr[j]) {
                        invalid(errs, path, arr, "shouldn't contain duplicates");
                        i = arr.size();
                        break;
                    }
        }
        std::string listType = s.value("x-kubernetes-list-type", "");
        if (listType == "set") {
            for (size_t i = 0; i < arr.size(); ++i)
                for (size_t j = 0; j < i; ++j)
                    if (arr[i] == arr[j]) {
                        add(errs, "FieldValueDuplicate", index(path, i),
                            "Duplicate value: " + renderValue(arr[i]));
                        break;
                    }
        } else if (listType == "map" && s.contains("x-kubernetes-list-map-keys")) {
            const json& keys = s["x-kubernetes-list-map-keys"];
            std::vector<json> seen;
            for (size_t i = 0; i < arr.size(); ++i) {
                if (!arr[i].is_object()) continue;
                json k = json::object();
                for (const auto& name : keys) {
                    std::string n = name.get<std::string>();
                    if (arr[i].contains(n)) k[n] = arr[i][n];
                }
                if (std::find(seen.begin(), seen.end(), k) != seen.end())
                    add(errs, "FieldValueDuplicate", index(path, i),
                        "Duplicate value: " + k.dump());
                else
                    seen.push_back(std::move(k));
            }
        }
    }

    void checkScalar(const json& v, const json& s, const std::string& path,
                     std::vector<FieldCause>& errs) {
        if (v.is_string()) {
            const std::string& str = v.get_ref<const std::string&>();
            size_t len = runeCount(str);
            if (auto m = s.find("maxLength");
                m != s.end() && m->is_number() && len > m->get<size_t>())
                add(errs, "FieldValueTooLong", path,
                    "Too long: may not be longer than " + std::to_string(m->get<size_t>()));
            if (auto m = s.find("minLength");
                m != s.end() && m->is_number() && len < m->get<size_t>())
                invalid(errs, path, v,
                        "should be at least " + std::to_string(m->get<size_t>()) + " chars long");
            if (auto p = s.find("pattern"); p != s.end() && p->is_string()) {
                const std::string& pattern = p->get_ref<const std::string&>();
                auto re = compilePattern(pattern);
                if (!re) {
                    recordUnchecked(pattern);
                } else if (!std::regex_search(str, *re)) {
                    invalid(errs, path, v, "should match '" + pattern + "'");
                }
            }
        }
        if (v.is_number()) {
            double d = numberOf(v);
            if (auto m = s.find("minimum"); m != s.end() && m->is_number()) {
                double lim = m->get<double>();
                bool excl = s.value("exclusiveMinimum", false);
                if (excl ? d <= lim : d < lim)
                    invalid(errs, path, v,
                            std::string("should be greater than ") + (excl ? "" : "or equal to ") +
                                goFloat(lim));
            }
            if (auto m = s.find("maximum"); m != s.end() && m->is_number()) {
                double lim = m->get<double>();
                bool excl = s.value("exclusiveMaximum", false);
                if (excl ? d >= lim : d > lim)
                    invalid(errs, path, v,
                            std::string("should be less than ") + (excl ? "" : "or equal to ") +
                                goFloat(lim));
            }
            if (auto m = s.find("multipleOf");
                m != s.end() && m->is_number() && m->get<double>() > 0) {
                double q = d / m->get<double>();
                if (std::fabs(q - std::round(q)) > 1e-9)
                    invalid(errs, path, v, "should be a multiple of " + goFloat(m->get<double>()));
            }
        }
        if (auto f = s.find("format"); f != s.end() && f->is_string()) {
            const std::string& format = f->get_ref<const std::string&>();
            if (!checkFormat(format, v))
                add(errs, "FieldValueInvalid", path,
                    "Invalid value: " + renderValue(v) + ": " + path + " in body must be of type " +
                        format + ": " + (v.is_string() ? v.dump() : "\"" + renderValue(v) + "\""));
        }
    }

    void recordUnchecked(const std::string& pattern) {
        auto& u = result_.uncheckedPatterns;
        if (std::find(u.begin(), u.end(), pattern) == u.end()) u.push_back(pattern);
    }

    static void checkEnum(const json& v, const json& values, const std::string& path,
                          std::vector<FieldCause>& errs) {
        for (const auto& allowed : values) {
            if (allowed == v) return;
            if (allowed.is_number() && v.is_number() && allowed.get<double>() == v.get<double>())
                return;
        }
        std::string list;
        for (const auto& allowed : values) {
            if (!list.empty()) list += ", ";
            // Appended piecewise: g++ 12 reports a false -Wrestrict on "\"" + std::string.
            if (allowed.is_string()) {
                list += allowed.dump();
            } else {
                list += '"';
                list += renderValue(allowed);
                list += '"';
            }
        }
        add(errs, "FieldValueNotSupported", path,
            "Unsupported value: " + renderValue(v) + ": supported values: " + list);
    }

    // A value passes a branch when the branch, evaluated without side effects, finds nothing.
    bool passes(const json& v, const json& branch, const std::string& path) {
        json copy = v;
        std::vector<FieldCause> scratch;
        visit(copy, branch, path, scratch, false);
        if (copy.is_object() && branch.is_object())
            checkObjectConstraints(copy, branch, path, scratch);
        return scratch.empty();
    }

    void checkCombinators(const json& v, const json& s, const std::string& path,
                          std::vector<FieldCause>& errs) {
        if (auto all = s.find("allOf"); all != s.end() && all->is_array()) {
            for (const auto& b : *all)
                if (!passes(v, b, path)) {
                    invalid(errs, path, v, "must validate all the schemas (allOf)");
                    break;
                }
        }
        if (auto any = s.find("anyOf"); any != s.end() && any->is_array()) {
            bool ok = false;
            for (const auto& b : *any) ok = ok || passes(v, b, path);
            if (!ok) invalid(errs, path, v, "must validate at least one schema (anyOf)");
        }
        if (auto one = s.find("oneOf"); one != s.end() && one->is_array()) {
            int n = 0;
            for (const auto& b : *one) n += passes(v, b, path) ? 1 : 0;
            if (n != 1) invalid(errs, path, v, "must validate one and only one schema (oneOf)");
        }
        if (auto no = s.find("not"); no != s.end() && no->is_object()) {
            if (passes(v, *no, path)) invalid(errs, path, v, "must not validate the schema (not)");
        }
    }
};

}  // namespace

ValidationResult validateCustomResource(const json& obj, const json& openApiV3Schema) {
    ValidationResult result;
    result.object = obj;
    Validator(result).visitRoot(result.object, openApiV3Schema);
    return result;
}

}  // namespace sluice::apilogic
