#pragma once
// Tolerant JSON accessors for objects as users and servers write them.
#include <string>

#include <nlohmann/json.hpp>

#include "sluice/canaryengine/spec.h"

namespace sluice::router::detail {

using nlohmann::json;

inline const json& nullJson() {
    static const json kNull;
    return kNull;
}

// obj[key] when obj is an object holding key, else null.
inline const json& field(const json& obj, const std::string& key) {
    if (!obj.is_object()) return nullJson();
    auto it = obj.find(key);
    return it == obj.end() ? nullJson() : *it;
}

// obj[key] when it is a string, else "".
inline std::string text(const json& obj, const std::string& key) {
    const json& value = field(obj, key);
    return value.is_string() ? value.get<std::string>() : std::string();
}

// True for null, {}, [] and "".
inline bool isEmpty(const json& value) {
    if (value.is_string()) return value.get_ref<const std::string&>().empty();
    return value.is_null() || ((value.is_object() || value.is_array()) && value.empty());
}

// {labels, annotations} as string maps (other values dropped); empty maps when absent.
inline json stringMap(const json& value) {
    json out = json::object();
    if (!value.is_object()) return out;
    for (auto it = value.begin(); it != value.end(); ++it) {
        if (it->is_string()) out[it.key()] = *it;
    }
    return out;
}

// metadata for a generated object: name, namespace, and the labels/annotations of a Flagger
// CustomMetadata when it has any.
inline json objectMetadata(const std::string& name, const std::string& ns,
                           const canaryengine::CustomMetadata& custom) {
    json metadata = {{"name", name}, {"namespace", ns}};
    if (!custom.labels.empty()) metadata["labels"] = custom.labels;
    if (!custom.annotations.empty()) metadata["annotations"] = custom.annotations;
    return metadata;
}

}  // namespace sluice::router::detail
