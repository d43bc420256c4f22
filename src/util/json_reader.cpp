#include "sluice/util/json_reader.h"

#include <algorithm>
#include <cmath>

namespace sluice::util {

JsonReader::JsonReader(const json& object, std::string path, std::vector<std::string>& errors)
    : object_(object), path_(std::move(path)), errors_(errors) {}

std::string JsonReader::pathOf(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

void JsonReader::error(std::string_view key, const std::string& message) const {
    errors_.push_back(pathOf(key) + ": " + message);
}

const JsonReader::json* JsonReader::field(std::string_view key) const {
    if (!object_.is_object()) return nullptr;
    auto it = object_.find(std::string(key));
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
}

std::optional<std::string> JsonReader::string(std::string_view key) const {
    const json* value = field(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_string()) {
        error(key, "must be a string");
        return std::nullopt;
    }
    return value->get<std::string>();
}

std::optional<bool> JsonReader::boolean(std::string_view key) const {
    const json* value = field(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_boolean()) {
        error(key, "must be a boolean");
        return std::nullopt;
    }
    return value->get<bool>();
}

std::optional<long long> JsonReader::integer(std::string_view key) const {
    const json* value = field(key);
    if (value == nullptr) return std::nullopt;
    if (value->is_number_integer()) return value->get<long long>();
    if (value->is_number_float()) {
        double d = value->get<double>();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
            return static_cast<long long>(d);
        }
    }
    error(key, "must be an integer");
    return std::nullopt;
}

std::optional<int> JsonReader::boundedInt(std::string_view key, long long lo, long long hi) const {
    auto value = integer(key);
    if (!value) return std::nullopt;
    if (*value < lo || *value > hi) {
        error(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                       ", got " + std::to_string(*value));
        return std::nullopt;
    }
    return static_cast<int>(*value);
}

std::optional<double> JsonReader::number(std::string_view key) const {
    const json* value = field(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_number()) {
        error(key, "must be a number");
        return std::nullopt;
    }
    return value->get<double>();
}

const JsonReader::json* JsonReader::object(std::string_view key) const {
    const json* value = field(key);
    if (value == nullptr) return nullptr;
    if (!value->is_object()) {
        error(key, "must be an object");
        return nullptr;
    }
    return value;
}

const JsonReader::json* JsonReader::array(std::string_view key) const {
    const json* value = field(key);
    if (value == nullptr) return nullptr;
    if (!value->is_array()) {
        error(key, "must be a list");
        return nullptr;
    }
    return value;
}

std::optional<JsonReader> JsonReader::child(std::string_view key) const {
    const json* value = object(key);
    if (value == nullptr) return std::nullopt;
    return JsonReader(*value, pathOf(key), errors_);
}

std::vector<JsonReader> JsonReader::objects(std::string_view key) const {
    std::vector<JsonReader> out;
    const json* list = array(key);
    if (list == nullptr) return out;
    for (size_t i = 0; i < list->size(); ++i) {
        std::string elementPath = pathOf(key) + "[" + std::to_string(i) + "]";
        if (!(*list)[i].is_object()) {
            errors_.push_back(elementPath + ": must be an object");
            continue;
        }
        out.emplace_back((*list)[i], std::move(elementPath), errors_);
    }
    return out;
}

std::vector<std::string> JsonReader::strings(std::string_view key,
                                             std::string_view notAList) const {
    std::vector<std::string> out;
    const json* list = field(key);
    if (list == nullptr) return out;
    if (!list->is_array()) {
        error(key, std::string(notAList));
        return out;
    }
    for (size_t i = 0; i < list->size(); ++i) {
        if (!(*list)[i].is_string()) {
            errors_.push_back(pathOf(key) + "[" + std::to_string(i) + "]: must be a string");
            continue;
        }
        out.push_back((*list)[i].get<std::string>());
    }
    return out;
}

std::map<std::string, std::string> JsonReader::stringMap(std::string_view key) const {
    std::map<std::string, std::string> out;
    const json* map = object(key);
    if (map == nullptr) return out;
    for (const auto& [name, value] : map->items()) {
        if (!value.is_string()) {
            error(std::string(key) + "." + name, "must be a string");
            continue;
        }
        out[name] = value.get<std::string>();
    }
    return out;
}

void JsonReader::rejectUnknown(std::initializer_list<std::string_view> known) const {
    if (!object_.is_object()) return;
    for (auto it = object_.begin(); it != object_.end(); ++it) {
        if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
            error(it.key(), "unknown field");
        }
    }
}

void JsonReader::rejectUnsupported(std::string_view key, const std::string& why) const {
    if (object_.is_object() && object_.contains(std::string(key))) {
        error(key, "not supported (" + why + ")");
    }
}

}  // namespace sluice::util
