#pragma once
// The resource types the server serves: the built-in kinds Sluice and kubectl use, plus the
// custom resources registered by CustomResourceDefinitions at runtime.
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include <optional>

#include "apilogic/apilogic.h"
#include "sluice/fieldset/fieldset.h"

namespace sluice::testing {

struct ResourceInfo {
    std::string group, version, kind, plural, singular;
    bool namespaced = true;
    bool hasStatus = false;
    bool isCustom = false;
    std::vector<std::string> shortNames, categories;
    nlohmann::json printerColumns = nlohmann::json::array();  // CRD additionalPrinterColumns
    nlohmann::json schema;                                    // CRD openAPIV3Schema
    std::shared_ptr<const fieldset::Schema> mergeSchema;
    std::string crdName;  // owning CRD for custom resources
    // The /scale subresource (autoscaling/v1 Scale), when the resource serves one.
    std::optional<apilogic::ScaleSubresource> scale;

    std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
    // "deployments.apps", "configmaps": how upstream names the resource in messages.
    std::string groupResource() const { return group.empty() ? plural : plural + "." + group; }
    // Objects are stored per group+resource, shared by every served version.
    std::string storageKey() const { return group + "/" + plural; }
};
using ResourcePtr = std::shared_ptr<const ResourceInfo>;

// Not thread-safe: the server guards it with its store mutex.
class ResourceRegistry {
  public:
    ResourceRegistry();  // built-in kinds

    ResourcePtr find(const std::string& group, const std::string& version,
                     const std::string& plural) const;
    ResourcePtr findKind(const std::string& apiVersion, const std::string& kind) const;
    // Any served version of the storage key (for objects of another version).
    ResourcePtr findByStorageKey(const std::string& storageKey) const;
    const std::vector<ResourcePtr>& all() const { return all_; }

    // Registers (or re-registers) the served versions of a CustomResourceDefinition object.
    void upsertCrd(const nlohmann::json& crd);
    void removeCrd(const std::string& crdName);

    // Groups in registration order, each with its versions (preferred first).
    struct GroupVersions {
        std::string group;
        std::vector<std::string> versions;
    };
    std::vector<GroupVersions> groups() const;

  private:
    std::vector<ResourcePtr> all_;
};

}  // namespace sluice::testing
