#pragma once
// Discovery documents (/api, /apis, APIResourceList), /version and the OpenAPI documents
// kubectl reads before `apply` to learn that the server validates fields itself.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "apiserver/resources.h"

namespace sluice::testing::discovery {

using nlohmann::json;

json apiVersions(const std::string& serverAddress);
json apiGroupList(const std::vector<ResourcePtr>& resources);
std::optional<json> apiGroup(const std::vector<ResourcePtr>& resources, const std::string& group);
// nullopt when no resource is served in that group version.
std::optional<json> apiResourceList(const std::vector<ResourcePtr>& resources,
                                    const std::string& group, const std::string& version);
json version();

// /openapi/v3: {"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}}}
json openApiV3Root(const std::vector<ResourcePtr>& resources);
// /openapi/v3/apis/<group>/<version> (or api/v1): one path per resource with the PATCH
// operation declaring the fieldValidation query parameter, and the CRD schemas.
std::optional<json> openApiV3GroupVersion(const std::vector<ResourcePtr>& resources,
                                          const std::string& gvPath);
// /openapi/v2 as JSON (kubectl asks for protobuf; an empty body is a valid empty document).
json openApiV2();

}  // namespace sluice::testing::discovery
