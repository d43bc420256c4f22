#pragma once
// Typed reading of a resource's JSON spec (an Application, a Canary): every problem is
// collected as one message "<path>.<key>: <what is wrong>" instead of thrown, so a spec with
// several mistakes reports all of them at once.
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::util {

// Reads the fields of one JSON object (at `path`, e.g. "spec.service"). A field that is absent
// or null reads as nothing, without an error; a field of the wrong type reads as nothing and
// records an error. The object, the errors and any child reader's object must outlive it.
class JsonReader {
  public:
    using json = nlohmann::json;

    JsonReader(const json& object, std::string path, std::vector<std::string>& errors);

    bool isObject() const { return object_.is_object(); }
    const std::string& path() const { return path_; }
    // path.key (just key at the root, where the path is empty).
    std::string pathOf(std::string_view key) const;
    // Records "path.key: message".
    void error(std::string_view key, const std::string& message) const;

    // The field, or nullptr when absent or null (or when this is not an object).
    const json* field(std::string_view key) const;

    std::optional<std::string> string(std::string_view key) const;
    std::optional<bool> boolean(std::string_view key) const;
    // Integral numbers, including floats without a fraction (YAML may give 3.0).
    std::optional<long long> integer(std::string_view key) const;
    // An integer within [lo, hi]; "must be between lo and hi, got v" otherwise.
    std::optional<int> boundedInt(std::string_view key, long long lo, long long hi) const;
    std::optional<double> number(std::string_view key) const;

    // An object field as JSON; nullptr (with an error) when it has another type.
    const json* object(std::string_view key) const;
    // A list field as JSON; nullptr (with an error) when it has another type.
    const json* array(std::string_view key) const;
    // A reader of an object field; nullopt (with an error) when it has another type.
    std::optional<JsonReader> child(std::string_view key) const;
    // Readers of the elements of a list of objects; one error per element that is not one.
    std::vector<JsonReader> objects(std::string_view key) const;
    // A list of strings; one error per element that is not a string. `notAList` is the
    // message when the field is not a list at all.
    std::vector<std::string> strings(std::string_view key,
                                     std::string_view notAList = "must be a list") const;

    // An object of strings (labels, annotations); one error per value that is not a string.
    std::map<std::string, std::string> stringMap(std::string_view key) const;

    // Fields outside `known` are typos or features not implemented; both must be visible.
    void rejectUnknown(std::initializer_list<std::string_view> known) const;
    // A feature not implemented: reported as such ("not supported (why)") rather than a typo.
    void rejectUnsupported(std::string_view key, const std::string& why) const;

  private:
    const json& object_;
    std::string path_;
    std::vector<std::string>& errors_;
};

}  // namespace sluice::util
