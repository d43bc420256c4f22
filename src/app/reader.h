#pragma once
// Typed reading of the Application's JSON, shared by the spec's parsers (spec.cpp,
// source_spec.cpp): every problem is collected as one message naming the field.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::app::detail {

using nlohmann::json;

// Reads typed fields of one JSON object, collecting errors instead of throwing.
class Reader {
  public:
    Reader(const json& object, std::string path, std::vector<std::string>& errors)
        : object_(object), path_(std::move(path)), errors_(errors) {}

    std::string pathOf(std::string_view key) const { return path_ + "." + std::string(key); }
    void error(std::string_view key, const std::string& message) const {
        errors_.push_back(pathOf(key) + ": " + message);
    }

    // The field, or nullptr when absent or null.
    const json* field(std::string_view key) const {
        auto it = object_.find(std::string(key));
        if (it == object_.end() || it->is_null()) return nullptr;
        return &*it;
    }

    std::optional<std::string> string(std::string_view key) const {
        const json* value = field(key);
        if (value == nullptr) return std::nullopt;
        if (!value->is_string()) {
            error(key, "must be a string");
            return std::nullopt;
        }
        return value->get<std::string>();
    }

    std::optional<bool> boolean(std::string_view key) const {
        const json* value = field(key);
        if (value == nullptr) return std::nullopt;
        if (!value->is_boolean()) {
            error(key, "must be a boolean");
            return std::nullopt;
        }
        return value->get<bool>();
    }

    std::optional<long long> integer(std::string_view key) const {
        const json* value = field(key);
        if (value == nullptr) return std::nullopt;
        if (value->is_number_integer()) return value->get<long long>();
        if (value->is_number_float()) {
            double d = value->get<double>();
            if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15)
                return static_cast<long long>(d);
        }
        error(key, "must be an integer");
        return std::nullopt;
    }

    std::optional<double> number(std::string_view key) const {
        const json* value = field(key);
        if (value == nullptr) return std::nullopt;
        if (!value->is_number()) {
            error(key, "must be a number");
            return std::nullopt;
        }
        return value->get<double>();
    }

    // An object field; nullptr (with an error) when it has another type.
    const json* object(std::string_view key) const {
        const json* value = field(key);
        if (value == nullptr) return nullptr;
        if (!value->is_object()) {
            error(key, "must be an object");
            return nullptr;
        }
        return value;
    }

    const json* array(std::string_view key) const {
        const json* value = field(key);
        if (value == nullptr) return nullptr;
        if (!value->is_array()) {
            error(key, "must be a list");
            return nullptr;
        }
        return value;
    }

    std::vector<std::string> strings(std::string_view key) const {
        std::vector<std::string> out;
        const json* list = array(key);
        if (list == nullptr) return out;
        for (size_t i = 0; i < list->size(); ++i) {
            if (!(*list)[i].is_string()) {
                errors_.push_back(pathOf(key) + "[" + std::to_string(i) + "]: must be a string");
                continue;
            }
            out.push_back((*list)[i].get<std::string>());
        }
        return out;
    }

    // Fields outside `known` are typos or features Sluice lacks; both must be visible.
    void rejectUnknown(std::initializer_list<std::string_view> known) const {
        for (auto it = object_.begin(); it != object_.end(); ++it) {
            if (std::find(known.begin(), known.end(), it.key()) == known.end())
                error(it.key(), "unknown field");
        }
    }

    // Argo CD features Sluice does not implement: reported as such rather than as typos.
    void rejectUnsupported(std::string_view key, const std::string& why) const {
        if (object_.contains(std::string(key))) error(key, "not supported (" + why + ")");
    }

  private:
    const json& object_;
    std::string path_;
    std::vector<std::string>& errors_;
};

inline bool isDnsLabel(const std::string& s) {
    if (s.empty() || s.size() > 63) return false;
    for (char c : s)
        if (!(std::islower(static_cast<unsigned char>(c)) ||
              std::isdigit(static_cast<unsigned char>(c)) || c == '-'))
            return false;
    return s.front() != '-' && s.back() != '-';
}

// A repository path must stay inside the repository: relative, and no ".." climbing above the
// root (a ".." inside, such as "a/../b", is fine).
inline bool escapesRepository(const std::string& path) {
    if (!path.empty() && path.front() == '/') return true;
    int depth = 0;
    size_t start = 0;
    while (start <= path.size()) {
        size_t end = path.find('/', start);
        if (end == std::string::npos) end = path.size();
        std::string_view part(path.data() + start, end - start);
        if (part == "..") {
            if (--depth < 0) return true;
        } else if (!part.empty() && part != ".") {
            ++depth;
        }
        start = end + 1;
    }
    return false;
}

}  // namespace sluice::app::detail
