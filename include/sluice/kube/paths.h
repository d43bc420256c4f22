#pragma once
// URL building for the Kubernetes REST API: resource paths and percent-encoded query strings.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/kube/types.h"

namespace sluice::kube {

// Percent-encodes everything but RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~), so the
// result is safe both as a path segment and as a query key or value.
std::string percentEncode(std::string_view s);

// "?a=1&b=x%20y" in insertion order; empty values are kept only when added with keepEmpty.
class QueryString {
  public:
    QueryString& add(const std::string& key, const std::string& value, bool keepEmpty = false);
    std::string str() const;  // "" when empty, else starting with '?'
    bool empty() const { return params_.empty(); }

  private:
    std::vector<std::pair<std::string, std::string>> params_;
};

// "/api/v1" or "/apis/<group>/<version>".
std::string groupVersionPath(const std::string& group, const std::string& version);

// Collection or object path: /api/v1/namespaces/ns/pods[/name[/subresource]]. ns is ignored for
// cluster-scoped resources; for namespaced ones "" means all namespaces (lists and watches).
std::string resourcePath(const ResourceInfo& ri, const std::string& ns,
                         const std::string& name = "", const std::string& subresource = "");

}  // namespace sluice::kube
