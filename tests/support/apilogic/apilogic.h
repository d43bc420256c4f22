#pragma once
// Pure pieces of the Kubernetes API test server: patch formats, CRD schema validation,
// server-side Table printing, and the stand-in for kube-controller-manager's workload status.
// No I/O, no locking: the server calls these under its own lock.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sluice/fieldset/fieldset.h"

#include "sluice/util/base64.h"

namespace sluice::apilogic {

using sluice::base64Encode;

using nlohmann::json;

// A patch or object the server must refuse with 422 Invalid (or 400 BadRequest for malformed
// patches). `causes` become Status.details.causes ({reason, message, field}).
struct FieldCause {
    std::string reason;  // "FieldValueInvalid", "FieldValueRequired", "FieldValueNotSupported",
                         // "FieldValueTypeInvalid", "FieldValueDuplicate", "FieldValueForbidden"
    std::string message;
    std::string field;  // ".spec.rules[0].backendRefs[1].weight" style
};
class InvalidError : public std::runtime_error {
  public:
    InvalidError(std::string message, std::vector<FieldCause> causes, bool badRequest = false)
        : std::runtime_error(std::move(message)),
          causes(std::move(causes)),
          badRequest(badRequest) {}
    std::vector<FieldCause> causes;
    bool badRequest;  // true: 400 BadRequest (undecodable patch), false: 422 Invalid
};

// RFC 7386 JSON merge patch.
json applyMergePatch(const json& target, const json& patch);
// RFC 6902 JSON patch (add, remove, replace, move, copy, test). Throws InvalidError.
json applyJsonPatch(const json& target, const json& patch);
// Kubernetes strategic merge patch: maps merge, lists the schema knows as associative merge
// item by item on their keys, other lists are replaced; null deletes; the directives
// $patch: replace|delete|merge, $retainKeys, $deleteFromPrimitiveList/<field> and
// $setElementOrder/<field> are honoured. Throws InvalidError.
json applyStrategicMergePatch(const json& target, const json& patch,
                              const fieldset::Schema& schema);

// Validation of a custom resource against its CRD version's openAPIV3Schema, as
// kube-apiserver does for structural schemas:
// - type checks (object, array, string, integer, number, boolean), nullable,
//   x-kubernetes-int-or-string, x-kubernetes-preserve-unknown-fields,
//   x-kubernetes-embedded-resource
// - required, enum, minimum/maximum (+exclusive), minLength/maxLength, pattern (ECMA regex),
//   minItems/maxItems, uniqueItems, minProperties/maxProperties, format (int32, int64, date-time:
//   best effort), additionalProperties (bool or schema), x-kubernetes-list-type map/set uniqueness
// - default values are applied (defaulting) before validation
// - unknown fields: pruned; returned in `unknownFields` (".spec.foo") so the server can reject
//   them with fieldValidation=Strict or warn with Warn.
// x-kubernetes-validations (CEL) rules are not evaluated; they are counted in `skippedCelRules`.
struct ValidationResult {
    json object;  // defaulted and pruned
    std::vector<FieldCause> errors;
    std::vector<std::string> unknownFields;
    int skippedCelRules = 0;
    // ECMA patterns std::regex could not compile: left unchecked instead of failing the object.
    std::vector<std::string> uncheckedPatterns;
};
// apiVersion, kind and metadata are checked only for shape; metadata is never pruned.
ValidationResult validateCustomResource(const json& obj, const json& openApiV3Schema);

// A meta.k8s.io/v1 Table for `kubectl get`. columns: a CRD version's additionalPrinterColumns
// ({name, type, jsonPath, description, priority, format}); empty means built-in columns for
// the kind (NAME, AGE for unknown kinds; kubectl's usual columns for Pods, Deployments,
// Services, Namespaces, ConfigMaps, Secrets, Events, ReplicaSets, StatefulSets, Jobs,
// CustomResourceDefinitions, Leases). Rows carry `object` as PartialObjectMetadata when
// includeObject == "Metadata" (kubectl's default), the full object for "Object", none for "None".
// nowRfc3339 is used to render ages.
json buildTable(const std::vector<json>& objects, const json& printerColumns,
                const std::string& includeObject, const std::string& nowRfc3339,
                const std::string& listResourceVersion, const std::string& continueToken);

// Same, for a list whose kind is known even when it is empty (built-in columns of `kind`).
json buildTable(const std::vector<json>& objects, const json& printerColumns,
                const std::string& includeObject, const std::string& nowRfc3339,
                const std::string& listResourceVersion, const std::string& continueToken,
                const std::string& kind);

// kubectl's AGE: "5s", "3m2s", "4h", "2d"; "<unknown>" when a timestamp does not parse.
std::string formatAge(const std::string& timestampRfc3339, const std::string& nowRfc3339);
// k8s.io/apimachinery duration.HumanDuration of a number of seconds.
std::string humanDuration(long long seconds);
// Seconds since the epoch of an RFC 3339 timestamp ("2024-05-01T10:00:00Z", offsets and
// fractions accepted), or nullopt.
std::optional<long long> parseRfc3339(const std::string& timestamp);

// A subset of kubectl's JSONPath, enough for printer columns: ".a.b", ".a[0]", ".a[*].b",
// ".a[?(@.type==\"Ready\")].status", "{.a}" braces optional. Returns every match.
// Also ['key'], [-1], .*, ..name and filters with != < > <= >=. Throws std::invalid_argument on
// a path it cannot parse.
std::vector<json> evalJsonPath(const json& obj, const std::string& path);

// The status kube-controller-manager (and the kubelet) would eventually write for a workload,
// so controllers under test see Deployments etc. become ready: observedGeneration, replicas,
// updatedReplicas, readyReplicas, availableReplicas and the Available/Progressing conditions
// for Deployment; the equivalent fields for StatefulSet, DaemonSet, ReplicaSet; Job succeeded;
// Pod phase Running with Ready condition; Service LoadBalancer ingress IP; PVC Bound.
// Returns the new status, or null when the kind is not simulated. nowRfc3339 for timestamps.
json simulatedStatus(const json& obj, const std::string& nowRfc3339);

// kube-apiserver's update rules for built-in kinds (its registry strategies and
// Validate*Update functions), applied to PUT, PATCH and apply of the main resource:
// - prepareBuiltinUpdate: what the registry carries over before validation. A Service keeps
//   its spec.clusterIP / clusterIPs when the update leaves them empty (a replace with the
//   manifest from Git keeps the addresses), and clusterIPs follows a changed clusterIP.
// - validateBuiltinUpdate: the immutable fields, as causes for a 422 Invalid (fields without a
//   leading dot, messages without the field):
//   apps/v1 Deployment, ReplicaSet, DaemonSet spec.selector ("Invalid value:
//   v1.LabelSelector{...}: field is immutable"); StatefulSet: any spec field other than
//   replicas, ordinals, template, updateStrategy, revisionHistoryLimit,
//   persistentVolumeClaimRetentionPolicy, minReadySeconds ("spec: Forbidden: updates to
//   statefulset spec for fields other than ... are forbidden"); batch/v1 Job spec.selector,
//   spec.template (scheduling directives excepted while suspended and never started),
//   spec.completionMode, spec.podFailurePolicy; Service spec.clusterIPs[i] ("may not change
//   once set"); ConfigMap/Secret with immutable: true: immutable, data, binaryData
//   ("Forbidden: field is immutable when `immutable` is set"); Secret type.
//   Values are rendered as Go's %#v for label selectors and strings; large structs (pod
//   templates) as the Go type name followed by their JSON.
void prepareBuiltinUpdate(const std::string& group, const std::string& kind, const json& oldObj,
                          json& newObj);
std::vector<FieldCause> validateBuiltinUpdate(const std::string& group, const std::string& kind,
                                              const json& oldObj, const json& newObj);

// labels.Selector.String() of a metav1.LabelSelector ("app=web,tier in (a,b)"), requirements
// sorted by key; "" for an empty or missing selector.
std::string formatLabelSelector(const json& selector);
// Go's %#v of a metav1.LabelSelector, as validation messages print it; "\"null\"" for none.
std::string goLabelSelector(const json& selector);

// Where a resource keeps what its autoscaling/v1 Scale shows (a CRD's subresources.scale, or
// the built-in workloads' .spec.replicas, .status.replicas and .spec.selector). Paths are
// simple ".a.b" paths.
struct ScaleSubresource {
    std::string specReplicasPath = ".spec.replicas";
    std::string statusReplicasPath = ".status.replicas";
    std::string labelSelectorPath = ".spec.selector";  // "" = no selector
    int64_t defaultSpecReplicas = 1;                   // built-in workloads default replicas to 1
};
// The Scale for an object: metadata (name, namespace, uid, resourceVersion,
// creationTimestamp), spec.replicas, status.replicas (0 when unset) and status.selector (the
// label selector as a string; a LabelSelector object is formatted, a string taken as is).
json scaleOf(const json& obj, const ScaleSubresource& scale);
// obj with its spec replicas path set.
json withScaleReplicas(json obj, const ScaleSubresource& scale, int64_t replicas);

}  // namespace sluice::apilogic
