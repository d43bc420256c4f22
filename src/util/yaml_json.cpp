#include "sluice/util/yaml_json.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <sstream>
#include <string_view>

namespace sluice {
namespace {

using nlohmann::json;

bool isOneOf(const std::string& s, std::initializer_list<const char*> options) {
    for (const char* o : options)
        if (s == o) return true;
    return false;
}

// Resolves a plain (unquoted) scalar the way go-yaml v2 does for interface{} targets.
json resolvePlainScalar(const std::string& s) {
    if (s.empty() || isOneOf(s, {"~", "null", "Null", "NULL"})) return nullptr;
    if (isOneOf(s, {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"}))
        return true;
    if (isOneOf(s, {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"}))
        return false;
    auto stripUnderscores = [](std::string v) {
        v.erase(std::remove(v.begin(), v.end(), '_'), v.end());
        return v;
    };
    size_t signLen = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    std::string_view body(s);
    body.remove_prefix(signLen);
    auto allOf = [](std::string_view v, auto pred) {
        return !v.empty() && std::all_of(v.begin(), v.end(), pred);
    };
    auto isDigitOrUnderscore = [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) || c == '_';
    };
    try {
        // Decimal integer: 0 or a non-zero digit followed by digits/underscores.
        if (allOf(body, isDigitOrUnderscore) && std::isdigit(static_cast<unsigned char>(body[0])) &&
            (body[0] != '0' || body.size() == 1)) {
            std::string v = stripUnderscores(s);
            if (v[0] == '-') return static_cast<int64_t>(std::stoll(v));
            uint64_t u = std::stoull(v[0] == '+' ? v.substr(1) : v);
            if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                return static_cast<int64_t>(u);
            return u;
        }
        // Hexadecimal: 0x...
        if (body.size() > 2 && body[0] == '0' && body[1] == 'x' &&
            allOf(body.substr(2), [](char c) {
                return std::isxdigit(static_cast<unsigned char>(c)) || c == '_';
            })) {
            int64_t n = static_cast<int64_t>(
                std::stoull(stripUnderscores(std::string(body.substr(2))), nullptr, 16));
            return s[0] == '-' ? -n : n;
        }
        // Octal: 0o... or a leading 0 followed by octal digits (YAML 1.1).
        std::string_view oct = body.substr(0, 2) == "0o" ? body.substr(2) : body;
        if (body.size() > 1 && body[0] == '0' &&
            allOf(oct, [](char c) { return (c >= '0' && c <= '7') || c == '_'; })) {
            int64_t n =
                static_cast<int64_t>(std::stoull(stripUnderscores(std::string(oct)), nullptr, 8));
            return s[0] == '-' ? -n : n;
        }
        // Float: digits with an optional fraction and exponent, or a leading-dot fraction.
        {
            size_t i = 0;
            size_t intDigits = 0, fracDigits = 0;
            while (i < body.size() && isDigitOrUnderscore(body[i])) ++i, ++intDigits;
            bool dot = i < body.size() && body[i] == '.';
            if (dot) {
                ++i;
                while (i < body.size() && isDigitOrUnderscore(body[i])) ++i, ++fracDigits;
            }
            bool mantissaOk =
                (intDigits > 0 && std::isdigit(static_cast<unsigned char>(body[0]))) ||
                (intDigits == 0 && dot && fracDigits > 0);
            bool expOk = true;
            if (mantissaOk && i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
                ++i;
                if (i < body.size() && (body[i] == '+' || body[i] == '-')) ++i;
                size_t expStart = i;
                while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i]))) ++i;
                expOk = i > expStart;
            }
            if (mantissaOk && expOk && i == body.size()) return std::stod(stripUnderscores(s));
        }
    } catch (const std::out_of_range&) {
        return s;  // too large for a number: keep the text
    }
    if (isOneOf(s, {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"}))
        return std::numeric_limits<double>::infinity();
    if (isOneOf(s, {"-.inf", "-.Inf", "-.INF"})) return -std::numeric_limits<double>::infinity();
    if (isOneOf(s, {".nan", ".NaN", ".NAN"})) return std::numeric_limits<double>::quiet_NaN();
    return s;
}

json toJson(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined:
            return nullptr;
        case YAML::NodeType::Scalar: {
            const std::string& tag = node.Tag();
            if (tag == "!" || tag == "tag:yaml.org,2002:str") return node.Scalar();
            if (tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float" ||
                tag == "tag:yaml.org,2002:bool" || tag == "tag:yaml.org,2002:null")
                return resolvePlainScalar(node.Scalar());
            return resolvePlainScalar(node.Scalar());
        }
        case YAML::NodeType::Sequence: {
            json arr = json::array();
            for (const auto& item : node) arr.push_back(toJson(item));
            return arr;
        }
        case YAML::NodeType::Map: {
            json obj = json::object();
            for (const auto& kv : node) {
                // Keys keep their text: a key spelled "on" or "n" is a field name, not a bool.
                std::string k = kv.first.IsScalar() ? kv.first.Scalar() : toJson(kv.first).dump();
                if (obj.contains(k)) {
                    throw YamlError("duplicate key \"" + k + "\"", kv.first.Mark().line + 1);
                }
                obj[k] = toJson(kv.second);
            }
            return obj;
        }
    }
    return nullptr;
}

int lineOf(const YAML::Exception& e) {
    return e.mark.is_null() ? 0 : e.mark.line + 1;
}

void emit(YAML::Emitter& out, const json& v) {
    switch (v.type()) {
        case json::value_t::object:
            out << YAML::BeginMap;
            for (auto it = v.begin(); it != v.end(); ++it) {
                out << YAML::Key << it.key() << YAML::Value;
                emit(out, it.value());
            }
            out << YAML::EndMap;
            break;
        case json::value_t::array:
            out << YAML::BeginSeq;
            for (const auto& item : v) emit(out, item);
            out << YAML::EndSeq;
            break;
        case json::value_t::string: {
            const std::string& s = v.get_ref<const std::string&>();
            // Quote strings that would otherwise read back as another type.
            json back = resolvePlainScalar(s);
            if (!back.is_string() || s.empty()) {
                out << YAML::DoubleQuoted << s;
            } else {
                out << s;
            }
            break;
        }
        case json::value_t::boolean:
            out << (v.get<bool>() ? "true" : "false");
            break;
        case json::value_t::null:
            out << YAML::Null;
            break;
        default:
            out << v.dump();
            break;
    }
}

}  // namespace

json yamlToJson(const std::string& text) {
    try {
        return toJson(YAML::Load(text));
    } catch (const YAML::Exception& e) {
        throw YamlError(e.msg, lineOf(e));
    }
}

std::vector<json> yamlDocumentsToJson(const std::string& text) {
    std::vector<json> docs;
    try {
        for (const auto& node : YAML::LoadAll(text)) {
            if (node.IsNull() || !node.IsDefined()) continue;
            docs.push_back(toJson(node));
        }
    } catch (const YAML::Exception& e) {
        throw YamlError(e.msg, lineOf(e));
    }
    return docs;
}

std::string jsonToYaml(const json& value) {
    YAML::Emitter out;
    out.SetIndent(2);
    out.SetSeqFormat(YAML::Block);
    out.SetMapFormat(YAML::Block);
    emit(out, value);
    return std::string(out.c_str()) + "\n";
}

}  // namespace sluice
