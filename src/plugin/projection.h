#pragma once
// What `app diff` prints for one resource: the desired object and the live object cut down to
// the fields the manifest sets, both normalised the way sluice::diff::compare() compares them,
// so that the two texts differ exactly where the controller sees a difference.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/diff/diff.h"

namespace sluice::plugin {

using nlohmann::json;

struct ProjectedPair {
    json desired;  // normalised (Secret stringData folded, nulls dropped), ignored fields removed
    json live;     // null when there is no live object
};

// - desired: diff::normalizeDesired, then ignoreDifferences fields removed, then server-owned
//   fields (status, uid, resourceVersion, managedFields, ...) dropped, as compare() does.
// - live: only the fields desired sets (associative list items matched by their keys, set
//   lists by value, atomic lists item by item); a value compare() counts as equal ("500m" vs
//   "0.5", 8080 vs "8080", an empty value the server dropped) is shown as desired writes it;
//   fields `manager` applied before that desired no longer sets are kept (the next apply
//   removes them).
// Keys come out sorted (the YAML of both sides lines up).
ProjectedPair project(const json& desired, const json& live,
                      const std::vector<diff::IgnoreRule>& ignore, const std::string& manager);

// A live object without the fields the server writes (for prune candidates).
json withoutServerFields(const json& live);

}  // namespace sluice::plugin
