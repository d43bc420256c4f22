// The Canary fields accepted without effect, and which of them a spec sets.
#include <algorithm>

#include "sluice/canaryengine/spec.h"

namespace sluice::canaryengine {

using nlohmann::json;

namespace {

// Whether a value would make Flagger do something: true, a non-zero number, a non-empty
// string, object or list.
bool matters(const json& v) {
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_number()) return v.get<double>() != 0;
    if (v.is_string() || v.is_object() || v.is_array()) return !v.empty();
    return false;
}

// The value at a dotted path below `node`, descending into every item of lists: each value
// found, for `fn`.
template <class Fn>
void valuesAt(const json& node, std::string_view path, Fn&& fn) {
    if (node.is_array()) {
        for (const json& item : node) valuesAt(item, path, fn);
        return;
    }
    if (!node.is_object()) return;
    const std::size_t dot = path.find('.');
    const std::string key(path.substr(0, dot));
    auto it = node.find(key);
    if (it == node.end() || it->is_null()) return;
    if (dot == std::string_view::npos) {
        fn(*it);
    } else {
        valuesAt(*it, path.substr(dot + 1), fn);
    }
}

}  // namespace

const std::vector<std::string>& fieldsWithoutEffect() {
    static const std::vector<std::string> kFields = {
        "spec.upstreamRef",
        "spec.service.delegation",
        "spec.analysis.webhooks.retries",
    };
    return kFields;
}

std::vector<std::string> unimplementedFieldsIn(const json& spec) {
    std::vector<std::string> out;
    for (const std::string& path : fieldsWithoutEffect()) {
        const std::string_view below = std::string_view(path).substr(5);  // after "spec."
        bool set = false;
        auto check = [&](const json& v) { set = set || matters(v); };
        valuesAt(spec, below, check);
        if (below.rfind("analysis.", 0) == 0)
            valuesAt(spec, "canaryAnalysis." + std::string(below.substr(9)), check);
        if (set) out.push_back(path);
    }
    return out;
}

}  // namespace sluice::canaryengine
