#pragma once
// Shared by the router tests: the example Canaries and contexts built from them.
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "sluice/router/context.h"
#include "sluice/util/yaml_json.h"
#include "testutil/testutil.h"

namespace sluice::router::testutil {

using nlohmann::json;
using sluice::testing::examplePath;
using sluice::testing::readFile;

// The Canary document of tests/data/examples/<file>.
inline json exampleCanary(const std::string& file) {
    for (json& doc : yamlDocumentsToJson(readFile(examplePath(file)))) {
        if (doc.value("kind", "") == "Canary") return doc;
    }
    throw std::runtime_error("no Canary in " + file);
}

// A context for a Canary whose target's pods are labelled app: <targetRef.name>.
inline RouteContext contextOf(json canary, const std::string& uid = "uid-1") {
    canary["metadata"]["uid"] = uid;
    std::string target = canary["spec"]["targetRef"]["name"];
    return makeRouteContext(canary, PodSelector{"app", target});
}

}  // namespace sluice::router::testutil
