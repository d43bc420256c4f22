// The Application fields accepted without effect, and which of them an Application sets.
#include "sluice/appengine/spec.h"

namespace sluice::appengine {

const std::vector<std::string>& fieldsWithoutEffect() {
    static const std::vector<std::string> kFields = {"spec.project"};
    return kFields;
}

std::vector<std::string> unimplementedFieldsIn(const nlohmann::json& app) {
    std::vector<std::string> out;
    static const nlohmann::json::json_pointer kProject("/spec/project");
    // The default project allows everything in Argo CD too: only another one promises rules.
    if (app.contains(kProject) && app.at(kProject).is_string() &&
        app.at(kProject).get<std::string>() != "default")
        out.push_back("spec.project");
    return out;
}

}  // namespace sluice::appengine
