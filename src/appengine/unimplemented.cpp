// The Application fields accepted without effect, and which of them an Application sets.
#include "sluice/appengine/spec.h"

namespace sluice::appengine {

// None today: spec.project is enforced through AppProjects (project.h), whose own fields
// without effect are projectFieldsWithoutEffect().
const std::vector<std::string>& fieldsWithoutEffect() {
    static const std::vector<std::string> kFields;
    return kFields;
}

std::vector<std::string> unimplementedFieldsIn(const nlohmann::json& app) {
    std::vector<std::string> out;
    static const nlohmann::json::json_pointer kSpec("/spec");
    for (const std::string& field : fieldsWithoutEffect())
        if (app.contains(kSpec) && app.at(kSpec).contains(field.substr(5))) out.push_back(field);
    return out;
}

}  // namespace sluice::appengine
