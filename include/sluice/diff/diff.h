#pragma once
// Desired (git) against live (cluster) comparison, as Argo CD users expect: only the fields the
// manifest sets count, values are compared after normalisation (resource quantities, numbers
// written as strings, empty values the API server drops), fields the server owns are ignored,
// and ignoreDifferences rules take fields out of the comparison.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "sluice/fieldset/fieldset.h"

namespace sluice::diff {

using nlohmann::json;

// One spec.ignoreDifferences entry (Argo CD's field names). Empty group/kind/name/namespace
// match anything; group "" also matches the core group when kind is set.
struct IgnoreRule {
    std::string group;
    std::string kind;
    std::string name;
    std::string ns;
    std::vector<std::string> jsonPointers;           // RFC 6901, e.g. "/spec/replicas"
    std::vector<std::string> managedFieldsManagers;  // fields these managers own are ignored
    bool matches(const json& obj) const;
};

struct FieldDifference {
    std::string path;             // ".spec.template.spec.containers[name=app].image"
    std::optional<json> desired;  // nullopt: desired no longer sets it
    std::optional<json> live;     // nullopt: absent in live
};

struct Result {
    bool modified = false;
    std::vector<FieldDifference> differences;
};

// Compares desired against live. Both are full objects (apiVersion, kind, metadata...).
// With a manager name, fields that manager server-side-applied before (live managedFields) but
// desired no longer sets are differences too: the next apply would remove them.
Result compare(const json& desired, const json& live, const std::vector<IgnoreRule>& ignore = {},
               const std::string& manager = "");

// The desired object as it will be compared and applied: Secret stringData folded into data
// (base64), nulls removed. Idempotent.
json normalizeDesired(const json& desired);

// Resource quantities ("500m", "0.5", "1Gi", "1024Mi", "2e3") as a number, or nullopt.
std::optional<long double> parseQuantity(const std::string& text);

// The normalisation compare() applies, for code that must show what it compares (kubectl
// sluice app diff).

// A value the API server drops (null, {}, [], ""): desired setting it matches live without it.
bool isEmptyValue(const json& v);

// compare()'s equality of two values: equal JSON, or both numbers or quantities of the same
// value (1 vs 1.0, "500m" vs "0.5", 8080 vs "8080": the API server may rewrite either form).
bool scalarsEqual(const json& desired, const json& live);

// The live item of an associative list that the desired item names: the first object whose
// key fields (type.keys; a missing or null one counts as its type.keyDefaults value) are
// scalarsEqual to the item's. nullptr when none is.
const json* findListItem(const json& item, const json& liveList, const fieldset::ListType& type);

// Removes the fields the server writes or that never belong to a comparison: status, the
// server's metadata (uid, resourceVersion, managedFields, ...) and the last-applied annotation.
// Anything but an object is left as it is.
void stripServerFields(json& obj);

// Removes from obj every field named by the ignore rules that match it (jsonPointers and the
// fields owned by the listed managers, read from live's metadata.managedFields).
void removeIgnoredFields(json& obj, const json& live, const std::vector<IgnoreRule>& ignore);

}  // namespace sluice::diff
