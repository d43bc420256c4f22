#pragma once
// Kubernetes objects that tests and benchmarks create, written once so they stay alike.
#include <nlohmann/json.hpp>

#include <string>

namespace sluice::testing {

inline nlohmann::json namespaceObject(const std::string& name) {
    return {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
}

// A Deployment of one container "app" listening on 9898 (podinfo's port, as in the shared
// examples), its pods labelled app: <name>, which is how the canary routers select them.
inline nlohmann::json deploymentObject(const std::string& name, const std::string& image,
                                       int replicas, const std::string& ns) {
    using nlohmann::json;
    return {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app", name}}}}},
            {"spec",
             {{"replicas", replicas},
              {"selector", {{"matchLabels", {{"app", name}}}}},
              {"template",
               {{"metadata", {{"labels", {{"app", name}}}}},
                {"spec",
                 {{"containers",
                   json::array({{{"name", "app"},
                                 {"image", image},
                                 {"ports", json::array({{{"containerPort", 9898}}})}}})}}}}}}}};
}

}  // namespace sluice::testing
