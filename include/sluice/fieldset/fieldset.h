#pragma once
// Field ownership as server-side apply tracks it (structured-merge-diff): sets of field paths,
// their "fieldsV1" encoding in metadata.managedFields, and the apply / update merge rules.
// Pure logic: used by the test API server to implement SSA and by the controller to read who
// owns what (drift attribution, ignoreDifferences.managedFieldsManagers).
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::fieldset {

using nlohmann::json;

// The JSON text a "k:"/"v:" element stores: keys sorted, integral floats written as integers
// (1.0 and 1 are the same value, so they must name the same path).
std::string canonicalJson(const json& v);

// One step of a path: "f:<name>" field, "k:<json>" associative-list key, "v:<json>" set
// value, "i:<n>" list index. Stored in its fieldsV1 spelling so ordering and equality are
// those of the text.
struct PathElement {
    std::string encoded;
    static PathElement field(const std::string& name) { return {"f:" + name}; }
    static PathElement key(const json& keyFields) { return {"k:" + canonicalJson(keyFields)}; }
    static PathElement value(const json& v) { return {"v:" + canonicalJson(v)}; }
    static PathElement index(size_t i) { return {"i:" + std::to_string(i)}; }
    auto operator<=>(const PathElement&) const = default;
};
using Path = std::vector<PathElement>;
std::string toString(const Path& p);  // ".spec.replicas", ".spec.containers[name=\"app\"].image"

// A set of paths. A path may be a leaf or an interior node that is itself "owned" (the "."
// entry in fieldsV1: e.g. a list item as a whole).
class FieldSet {
  public:
    void insert(const Path& p);
    bool contains(const Path& p) const;
    bool empty() const { return paths_.empty(); }
    size_t size() const { return paths_.size(); }
    const std::set<Path>& paths() const { return paths_; }

    FieldSet unionWith(const FieldSet& o) const;
    FieldSet difference(const FieldSet& o) const;
    FieldSet intersection(const FieldSet& o) const;
    // Paths that are, or lie below, prefix.
    FieldSet under(const Path& prefix) const;

    // {"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"k:{\"name\":\"a\"}":{".":{},...}}}
    json toFieldsV1() const;
    static FieldSet fromFieldsV1(const json& fieldsV1);

    bool operator==(const FieldSet&) const = default;

  private:
    std::set<Path> paths_;
};

// How lists and maps merge, per path, as the OpenAPI extensions say:
// x-kubernetes-list-type (atomic | set | map) with x-kubernetes-list-map-keys, and
// x-kubernetes-map-type (granular | atomic).
struct ListType {
    enum class Kind { Atomic, Set, Map } kind = Kind::Atomic;
    std::vector<std::string> keys;  // for Map
    // Defaults applied to missing key fields before matching (e.g. protocol: TCP for ports).
    std::map<std::string, json> keyDefaults;
};

// Merge strategy knowledge for one kind. Paths are written with field names only, list items
// as "[]": e.g. "spec.template.spec.containers[].ports".
class Schema {
  public:
    void setList(const std::string& path, ListType type);
    void setAtomicMap(const std::string& path);
    std::optional<ListType> listAt(const std::string& path) const;
    bool isAtomicMap(const std::string& path) const;
    // A map whose keys are data, not field names (OpenAPI additionalProperties): the schema of
    // its values is registered under "<path>.*".
    void setDynamicMap(const std::string& path);
    bool isDynamicMap(const std::string& path) const;
    // Whether the kind serves a /status subresource. kube-apiserver then resets status on
    // writes to the main resource and everything but status on writes to /status, so those
    // fields are neither merged nor owned by such writes. Default true (all built-in kinds
    // with a status have it); set false for a CRD version without subresources.status.
    void setStatusSubresource(bool has) { statusSubresource_ = has; }
    bool hasStatusSubresource() const { return statusSubresource_; }

    // Built-in knowledge of the core/apps/batch/networking kinds' list keys (containers by
    // name, ports by containerPort+protocol, env by name, ...), mirroring the
    // patchMergeKey/listType markers of the upstream Go types. Unknown kinds: lists atomic.
    // Built once per group and kind and kept (a Deployment's takes thousands of allocations,
    // and every compare needs one).
    static const Schema& forKind(const std::string& apiVersion, const std::string& kind);
    // From a CRD version's openAPIV3Schema (reads x-kubernetes-* extensions).
    static Schema fromOpenApi(const json& openApiV3Schema);

  private:
    std::string canonicalPath(const std::string& path) const;

    std::map<std::string, ListType> lists_;
    std::set<std::string> atomicMaps_;
    std::set<std::string> dynamicMaps_;
    bool statusSubresource_ = true;
};

// The fields an object sets (leaves, plus list items of map/set lists as owned nodes).
// metadata.name/namespace/uid/resourceVersion/generation/creationTimestamp/managedFields and
// apiVersion/kind are not counted, as upstream. Also skipped: metadata.selfLink,
// deletionTimestamp and deletionGracePeriodSeconds. Scalars, nulls, empty maps/lists and
// atomic maps/lists are leaves. With the default subresource "" status is left out when the
// schema says the kind has a status subresource; with "status" only status is counted.
FieldSet fieldsOf(const json& obj, const Schema& schema);
FieldSet fieldsOf(const json& obj, const Schema& schema, const std::string& subresource);

// Value at path in obj, or nullopt.
std::optional<json> valueAt(const json& obj, const Path& path, const Schema& schema);

// One metadata.managedFields entry.
struct ManagedFieldsEntry {
    std::string manager;
    std::string operation;  // "Apply" or "Update"
    std::string apiVersion;
    std::string time;         // RFC 3339
    std::string subresource;  // "" or "status"
    FieldSet fields;

    json toJson() const;
    static ManagedFieldsEntry fromJson(const json& j);
};
std::vector<ManagedFieldsEntry> parseManagedFields(const json& obj);  // from obj.metadata

struct Conflict {
    std::string manager;
    Path path;
    // The owning entry, for the message ("conflict with \"m\" using apps/v1: .spec.replicas").
    std::string operation = {};
    std::string apiVersion = {};
    std::string subresource = {};
};

class ApplyConflict : public std::runtime_error {
  public:
    explicit ApplyConflict(std::vector<Conflict> conflicts);
    const std::vector<Conflict>& conflicts() const { return conflicts_; }

  private:
    std::vector<Conflict> conflicts_;
};

struct MergeResult {
    json object;  // the new object, metadata.managedFields set
};

// Server-side apply of `applied` by `manager` onto `live` (null when the object is new).
// - A field the applied config sets that another manager owns with a different value is a
//   conflict (throws ApplyConflict) unless force, which takes ownership from them.
// - Same value: ownership is shared.
// - Fields this manager applied last time but no longer sets, and nobody else owns, are removed.
// - Associative lists merge item by item by their keys; atomic lists/maps are replaced whole.
// now is the RFC 3339 time recorded in the entry.
// Entries are identified as upstream: Apply by (manager, subresource), Update by (manager,
// apiVersion, subresource); a live object without managedFields gets a "before-first-apply"
// Update entry owning its fields first. Null values in `applied` are treated as unset.
MergeResult apply(const json& live, const json& applied, const std::string& manager, bool force,
                  const Schema& schema, const std::string& now,
                  const std::string& subresource = "");

// Ownership after a non-apply write (create, update, patch) by `manager`: fields whose values
// changed or appeared between oldObj (null on create) and newObj become owned by manager
// (operation Update) and are taken from the others; fields that vanished leave every set.
// Returns newObj with metadata.managedFields set. As kube-apiserver: managedFields sent in
// newObj (non-empty, main resource) replace the old ones; a list of entries that are all empty
// ("[{}]") clears them.
json recordUpdate(const json& oldObj, const json& newObj, const std::string& manager,
                  const Schema& schema, const std::string& now,
                  const std::string& subresource = "");

}  // namespace sluice::fieldset
