#include "sluice/util/yaml_json.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <regex>
#include <sstream>

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
    static const std::regex intRe(R"([-+]?(0|[1-9][0-9_]*))");
    static const std::regex hexRe(R"([-+]?0x[0-9a-fA-F_]+)");
    static const std::regex octRe(R"([-+]?0o?[0-7_]+)");
    static const std::regex floatRe(
        R"([-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?)");
    auto stripUnderscores = [](std::string v) {
        v.erase(std::remove(v.begin(), v.end(), '_'), v.end());
        return v;
    };
    try {
        if (std::regex_match(s, intRe)) {
            std::string v = stripUnderscores(s);
            if (v[0] == '-') return static_cast<int64_t>(std::stoll(v));
            uint64_t u = std::stoull(v[0] == '+' ? v.substr(1) : v);
            if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                return static_cast<int64_t>(u);
            return u;
        }
        if (std::regex_match(s, hexRe)) {
            std::string v = stripUnderscores(s);
            bool neg = v[0] == '-';
            size_t start = (v[0] == '-' || v[0] == '+') ? 3 : 2;
            int64_t n = static_cast<int64_t>(std::stoull(v.substr(start), nullptr, 16));
            return neg ? -n : n;
        }
        if (s.size() > 1 && std::regex_match(s, octRe) &&
            s.find_first_of("89") == std::string::npos) {
            std::string v = stripUnderscores(s);
            bool neg = v[0] == '-';
            size_t start = (v[0] == '-' || v[0] == '+') ? 1 : 0;
            if (v.compare(start, 2, "0o") == 0) start += 2;
            int64_t n = static_cast<int64_t>(std::stoull(v.substr(start), nullptr, 8));
            return neg ? -n : n;
        }
        if (std::regex_match(s, floatRe)) return std::stod(stripUnderscores(s));
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
