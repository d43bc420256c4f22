// Write paths of the store: create, update (PUT), the four patch formats, delete.
#include <algorithm>
#include <random>

#include "apilogic/apilogic.h"
#include "apiserver/status_errors.h"
#include "apiserver/store.h"
#include "sluice/util/yaml_json.h"

namespace sluice::testing {

namespace {

const char* kSubdomainMsg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const char* kLabelMsg =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const char* kDns1035Msg =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

// Name rules per kind, as the upstream validation functions for each type choose them.
json nameCauses(const ResourceInfo& res, const std::string& name) {
    json causes = json::array();
    auto bad = [&](const std::string& msg) {
        causes.push_back(errors::invalidCause("FieldValueInvalid", "metadata.name",
                                              "Invalid value: \"" + name + "\": " + msg));
    };
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    // [a-z0-9]([-a-z0-9]*[a-z0-9])? ; DNS-1035 additionally starts with a letter.
    auto isLabel = [&](const std::string& l, bool dns1035) {
        if (l.empty() || !alnum(l.front()) || !alnum(l.back())) return false;
        if (dns1035 && !(l.front() >= 'a' && l.front() <= 'z')) return false;
        for (char c : l)
            if (!alnum(c) && c != '-') return false;
        return true;
    };
    auto isSubdomain = [&](const std::string& n) {
        size_t start = 0;
        while (true) {
            size_t dot = n.find('.', start);
            if (!isLabel(n.substr(start, dot - start), false)) return false;
            if (dot == std::string::npos) return true;
            start = dot + 1;
        }
    };
    if (res.group == "rbac.authorization.k8s.io") {
        // RBAC names are path segments ("system:controller:foo" is valid).
        if (name == "." || name == "..") bad("may not be '" + name + "'");
        if (name.find('/') != std::string::npos) bad("may not contain '/'");
        if (name.find('%') != std::string::npos) bad("may not contain '%'");
    } else if (res.kind == "Namespace") {
        if (name.size() > 63) bad("must be no more than 63 characters");
        if (!isLabel(name, false)) bad(kLabelMsg);
    } else if (res.kind == "Service" && res.group.empty()) {
        if (name.size() > 63) bad("must be no more than 63 characters");
        if (!isLabel(name, true)) bad(kDns1035Msg);
    } else {
        if (name.size() > 253) bad("must be no more than 253 characters");
        if (!isSubdomain(name)) bad(kSubdomainMsg);
    }
    return causes;
}

std::string randomSuffix() {
    thread_local std::mt19937 rng{std::random_device{}()};
    const std::string alphabet =
        "bcdfghjklmnpqrstvwxz2456789";  // as upstream's SimpleNameGenerator
    std::string s;
    for (int i = 0; i < 5; ++i) s += alphabet[rng() % alphabet.size()];
    return s;
}

// The parts of an object that count for metadata.generation.
json generationRelevant(const ResourceInfo& res, json obj) {
    obj.erase("metadata");
    obj.erase("apiVersion");
    obj.erase("kind");
    if (res.hasStatus) obj.erase("status");
    return obj;
}

// managedFields without timestamps, for deciding whether a write changed anything.
json withoutTimes(json obj) {
    if (obj.contains("metadata") && obj["metadata"].contains("managedFields"))
        for (auto& e : obj["metadata"]["managedFields"]) e.erase("time");
    if (obj.contains("metadata")) obj["metadata"].erase("resourceVersion");
    return obj;
}

bool isCrdKind(const ResourceInfo& res) {
    return res.group == "apiextensions.k8s.io" && res.kind == "CustomResourceDefinition";
}

void checkTypeMeta(const ResourceInfo& res, json& obj) {
    if (!obj.is_object()) errors::badRequest("the body of the request must be a JSON object");
    std::string av = obj.value("apiVersion", "");
    std::string kind = obj.value("kind", "");
    if (av.empty()) obj["apiVersion"] = res.apiVersion();
    if (kind.empty()) obj["kind"] = res.kind;
    // Custom resources may be written through any served version; stored as given.
    std::string group = av.find('/') == std::string::npos ? "" : av.substr(0, av.find('/'));
    if (!av.empty() && group != res.group)
        errors::badRequest("the API version in the data (" + av +
                           ") does not match the expected API version (" + res.apiVersion() + ")");
    if (!kind.empty() && kind != res.kind)
        errors::badRequest("the kind in the data (" + kind +
                           ") does not match the expected kind (" + res.kind + ")");
    if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = json::object();
}

// The CRD's status as apiextensions-apiserver sets it once names are accepted.
void establishCrd(json& crd) {
    const std::string now = nowRfc3339();
    json names = crd["spec"].value("names", json::object());
    if (!names.contains("singular") && names.contains("kind")) {
        std::string s = names["kind"].get<std::string>();
        std::transform(s.begin(), s.end(), s.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        names["singular"] = s;
    }
    if (!names.contains("listKind") && names.contains("kind"))
        names["listKind"] = names["kind"].get<std::string>() + "List";
    json stored = json::array();
    for (const auto& v : crd["spec"].value("versions", json::array()))
        if (v.value("storage", false)) stored.push_back(v.value("name", ""));
    json& st = crd["status"];
    st["acceptedNames"] = names;
    if (!st.contains("storedVersions")) st["storedVersions"] = stored;
    st["conditions"] = json::array({{{"type", "NamesAccepted"},
                                     {"status", "True"},
                                     {"lastTransitionTime", now},
                                     {"reason", "NoConflicts"},
                                     {"message", "no conflicts found"}},
                                    {{"type", "Established"},
                                     {"status", "True"},
                                     {"lastTransitionTime", now},
                                     {"reason", "InitialNamesAccepted"},
                                     {"message", "the initial names have been accepted"}}});
}

void validateCrd(const ResourceInfo& res, const json& crd) {
    const std::string name = crd["metadata"].value("name", "");
    json causes = json::array();
    const json spec = crd.value("spec", json::object());
    std::string group = spec.value("group", "");
    json names = spec.value("names", json::object());
    std::string plural = names.value("plural", "");
    if (group.empty())
        causes.push_back(
            errors::invalidCause("FieldValueRequired", "spec.group", "Required value"));
    if (plural.empty())
        causes.push_back(
            errors::invalidCause("FieldValueRequired", "spec.names.plural", "Required value"));
    if (names.value("kind", "").empty())
        causes.push_back(
            errors::invalidCause("FieldValueRequired", "spec.names.kind", "Required value"));
    if (!group.empty() && !plural.empty() && name != plural + "." + group)
        causes.push_back(errors::invalidCause(
            "FieldValueInvalid", "metadata.name",
            "Invalid value: \"" + name + "\": must be spec.names.plural+\".\"+spec.group"));
    std::string scope = spec.value("scope", "");
    if (scope != "Namespaced" && scope != "Cluster")
        causes.push_back(errors::invalidCause(
            "FieldValueNotSupported", "spec.scope",
            "Unsupported value: \"" + scope + "\": supported values: \"Cluster\", \"Namespaced\""));
    int storage = 0;
    for (const auto& v : spec.value("versions", json::array()))
        if (v.value("storage", false)) ++storage;
    if (storage != 1)
        causes.push_back(errors::invalidCause("FieldValueInvalid", "spec.versions",
                                              "Invalid value: must have exactly one version "
                                              "marked as storage version"));
    if (!causes.empty()) errors::invalid(res, name, causes);
}

// The desired replicas of a Scale sent to /scale: decoded as the int32 it is upstream, then
// validated (422 on a negative count, as autoscaling's ValidateScale).
int64_t scaleReplicas(const std::string& name, const json& scale) {
    const json spec = scale.value("spec", json::object());
    if (!spec.is_object())
        errors::badRequest("json: cannot unmarshal " + std::string(spec.type_name()) +
                           " into Go struct field Scale.spec of type v1.ScaleSpec");
    if (!spec.contains("replicas") || spec["replicas"].is_null()) return 0;
    const json& r = spec["replicas"];
    if (!r.is_number_integer() || r.get<int64_t>() > 2147483647 || r.get<int64_t>() < -2147483648LL)
        errors::badRequest("json: cannot unmarshal " +
                           std::string(r.is_number() ? "number " + r.dump() : r.type_name()) +
                           " into Go struct field ScaleSpec.spec.replicas of type int32");
    const int64_t n = r.get<int64_t>();
    if (n < 0) {
        ResourceInfo scaleKind;
        scaleKind.group = "autoscaling";
        scaleKind.kind = "Scale";
        errors::invalid(
            scaleKind, name,
            json::array({errors::invalidCause(
                "FieldValueInvalid", "spec.replicas",
                "Invalid value: " + std::to_string(n) + ": must be greater than or equal to 0")}));
    }
    return n;
}

}  // namespace

void Store::checkNamespaceLocked(const ResourceInfo& res, const std::string& ns,
                                 const std::string& name) const {
    if (!res.namespaced) return;
    auto nsRes = registry_.find("", "v1", "namespaces");
    const json* nsObj = findLocked(*nsRes, "", ns);
    if (!nsObj) errors::namespaceNotFound(ns);
    if ((*nsObj)["metadata"].contains("deletionTimestamp"))
        errors::forbidden(
            res, name,
            "unable to create new content in namespace " + ns + " because it is being terminated",
            json::array({{{"reason", "NamespaceTerminating"},
                          {"message", "namespace " + ns + " is being terminated"},
                          {"field", "metadata.namespace"}}}));
}

void Store::validateCustomLocked(const ResourceInfo& res, json& obj, const WriteOptions& opts,
                                 std::vector<std::string>& warnings) const {
    if (!res.isCustom || res.schema.is_null()) return;
    auto vr = apilogic::validateCustomResource(obj, res.schema);
    const std::string name = obj["metadata"].value("name", "");
    if (!vr.errors.empty()) {
        json causes = json::array();
        for (const auto& e : vr.errors) {
            std::string field = e.field;
            if (!field.empty() && field[0] == '.') field.erase(0, 1);
            // Status causes carry the field separately from the message.
            std::string msg = e.message;
            if (!field.empty() && msg.rfind(field + ": ", 0) == 0) msg.erase(0, field.size() + 2);
            causes.push_back(errors::invalidCause(e.reason, field, msg));
        }
        errors::invalid(res, name, causes);
    }
    if (!vr.unknownFields.empty()) {
        std::string mode = opts.fieldValidation.empty() ? "Warn" : opts.fieldValidation;
        if (mode == "Strict") {
            std::string msg = "strict decoding error: ";
            for (size_t i = 0; i < vr.unknownFields.size(); ++i) {
                std::string f = vr.unknownFields[i];
                if (!f.empty() && f[0] == '.') f.erase(0, 1);
                msg += (i ? ", " : "") + std::string("unknown field \"") + f + "\"";
            }
            errors::badRequest(msg);
        }
        if (mode == "Warn")
            for (std::string f : vr.unknownFields) {
                if (!f.empty() && f[0] == '.') f.erase(0, 1);
                warnings.push_back("unknown field \"" + f + "\"");
            }
    }
    obj = std::move(vr.object);
}

WriteResult Store::create(const ResourceInfo& res, const std::string& ns, json body,
                          const WriteOptions& opts) {
    std::lock_guard<std::mutex> lk(mu_);
    return createLocked(res, ns, std::move(body), opts, false);
}

WriteResult Store::createLocked(const ResourceInfo& res, const std::string& ns, json obj,
                                const WriteOptions& opts, bool managedFieldsSet) {
    checkTypeMeta(res, obj);
    json& meta = obj["metadata"];
    std::string objNs = meta.value("namespace", "");
    if (res.namespaced) {
        if (!objNs.empty() && objNs != ns)
            errors::badRequest(
                "the namespace of the provided object does not match the namespace sent on the "
                "request");
        meta["namespace"] = ns;
    } else {
        meta.erase("namespace");
    }
    std::string name = meta.value("name", "");
    if (name.empty() && !meta.value("generateName", "").empty())
        name = meta["generateName"].get<std::string>() + randomSuffix();
    if (name.empty())
        errors::invalid(res, name,
                        json::array({errors::invalidCause(
                            "FieldValueRequired", "metadata.name",
                            "Required value: name or generateName is required")}));
    json causes = nameCauses(res, name);
    if (!causes.empty()) errors::invalid(res, name, causes);
    meta["name"] = name;
    checkNamespaceLocked(res, ns, name);
    if (findLocked(res, ns, name)) errors::alreadyExists(res, name);

    // Server-owned metadata.
    for (const char* k : {"uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "selfLink", "generation"})
        meta.erase(k);
    meta["uid"] = newUid();
    meta["creationTimestamp"] = nowRfc3339();
    meta["generation"] = 1;
    if (res.hasStatus) obj.erase("status");

    std::vector<std::string> warnings;
    validateCustomLocked(res, obj, opts, warnings);
    if (res.kind == "Namespace" && res.group.empty()) {
        obj["spec"]["finalizers"] = json::array({"kubernetes"});
        obj["status"] = {{"phase", "Active"}};
    }
    if (isCrdKind(res)) {
        validateCrd(res, obj);
        auto& fins = obj["metadata"]["finalizers"];
        if (!fins.is_array()) fins = json::array();
        if (std::find(fins.begin(), fins.end(), "customresourcecleanup.apiextensions.k8s.io") ==
            fins.end())
            fins.push_back("customresourcecleanup.apiextensions.k8s.io");
        establishCrd(obj);
    }
    if (!managedFieldsSet) {
        obj["metadata"].erase("managedFields");
        obj = fieldset::recordUpdate(nullptr, obj, opts.manager, *res.mergeSchema, nowRfc3339());
    }
    WriteResult r;
    r.code = 201;
    r.warnings = std::move(warnings);
    if (opts.dryRun) {
        r.body = std::move(obj);
        return r;
    }
    r.body = commitLocked(res, "ADDED", std::move(obj), nullptr, false);
    return r;
}

WriteResult Store::update(const ResourceInfo& res, const std::string& ns, const std::string& name,
                          const std::string& subresource, json body, const WriteOptions& opts) {
    std::lock_guard<std::mutex> lk(mu_);
    if (subresource == "scale") {
        const json* cur = findLocked(res, ns, name);
        if (!cur) errors::notFound(res, name);
        json old = *cur;
        return writeScaleLocked(res, old, body, opts);
    }
    checkTypeMeta(res, body);
    const json* cur = findLocked(res, ns, name);
    if (!cur) errors::notFound(res, name);
    if (body["metadata"].value("name", "") != name)
        errors::badRequest("the name of the object (" + body["metadata"].value("name", "") +
                           ") does not match the name on the URL (" + name + ")");
    // PUT requires the client to send a resourceVersion for CRs; built-ins allow unconditional.
    json old = *cur;
    return finishUpdateLocked(res, old, std::move(body), subresource, opts, false, false);
}

WriteResult Store::writeScaleLocked(const ResourceInfo& res, const json& old, const json& scale,
                                    const WriteOptions& opts) {
    const std::string name = old["metadata"].value("name", "");
    if (!scale.is_object()) errors::badRequest("the body of the request must be a JSON object");
    const std::string kind = scale.value("kind", "");
    if (!kind.empty() && kind != "Scale")
        errors::badRequest("the kind in the data (" + kind +
                           ") does not match the expected kind (Scale)");
    const json meta = scale.value("metadata", json::object());
    const std::string sentName = meta.is_object() ? meta.value("name", "") : "";
    if (!sentName.empty() && sentName != name)
        errors::badRequest("the name of the object (" + sentName +
                           ") does not match the name on the URL (" + name + ")");
    // The Scale's resourceVersion is its object's: a precondition, as for the object itself.
    const std::string wantRv = meta.is_object() ? meta.value("resourceVersion", "") : "";
    if (!wantRv.empty() && wantRv != old["metadata"].value("resourceVersion", ""))
        errors::conflictModified(res, name);
    const int64_t replicas = scaleReplicas(name, scale);
    json candidate = apilogic::withScaleReplicas(old, *res.scale, replicas);
    WriteResult r = finishUpdateLocked(res, old, std::move(candidate), "scale", opts, false, false);
    r.body = apilogic::scaleOf(r.body, *res.scale);
    return r;
}

WriteResult Store::finishUpdateLocked(const ResourceInfo& res, const json& old, json candidate,
                                      const std::string& subresource, const WriteOptions& opts,
                                      bool managedFieldsSet, bool fromController) {
    const std::string name = old["metadata"].value("name", "");
    checkTypeMeta(res, candidate);
    json& cmeta = candidate["metadata"];
    if (res.namespaced && !cmeta.value("namespace", "").empty() &&
        cmeta.value("namespace", "") != old["metadata"].value("namespace", ""))
        errors::badRequest(
            "the namespace of the provided object does not match the namespace sent on the "
            "request");
    std::string wantRv = cmeta.value("resourceVersion", "");
    if (!wantRv.empty() && wantRv != old["metadata"].value("resourceVersion", ""))
        errors::conflictModified(res, name);

    json obj;
    if (subresource == "finalize") {
        // namespaces/finalize: only spec.finalizers changes.
        obj = old;
        obj["spec"]["finalizers"] =
            candidate.value("spec", json::object()).value("finalizers", json::array());
    } else if (subresource == "status") {
        obj = old;
        if (candidate.contains("status"))
            obj["status"] = candidate["status"];
        else
            obj.erase("status");
        if (managedFieldsSet) obj["metadata"]["managedFields"] = cmeta["managedFields"];
    } else {
        obj = std::move(candidate);
        json& meta = obj["metadata"];
        const json& ometa = old["metadata"];
        for (const char* k : {"name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                              "deletionGracePeriodSeconds", "generation"}) {
            if (ometa.contains(k))
                meta[k] = ometa[k];
            else
                meta.erase(k);
        }
        meta.erase("selfLink");
        if (res.hasStatus) {
            if (old.contains("status"))
                obj["status"] = old["status"];
            else
                obj.erase("status");
        }
        if (!managedFieldsSet) {
            // Clients send back what they read; ownership is recomputed below.
            if (ometa.contains("managedFields"))
                meta["managedFields"] = ometa["managedFields"];
            else
                meta.erase("managedFields");
        }
    }
    obj["apiVersion"] = old.value("apiVersion", res.apiVersion());
    if (res.isCustom) obj["apiVersion"] = res.apiVersion();

    if (!res.isCustom && !fromController && subresource != "status" && subresource != "finalize") {
        apilogic::prepareBuiltinUpdate(res.group, res.kind, old, obj);
        auto immutable = apilogic::validateBuiltinUpdate(res.group, res.kind, old, obj);
        if (!immutable.empty()) {
            json causes = json::array();
            for (const auto& c : immutable) {
                std::string field = c.field;
                if (!field.empty() && field[0] == '.') field.erase(0, 1);
                causes.push_back(errors::invalidCause(c.reason, field, c.message));
            }
            errors::invalid(res, name, causes);
        }
    }

    std::vector<std::string> warnings;
    validateCustomLocked(res, obj, opts, warnings);
    if (isCrdKind(res) && subresource.empty()) {
        validateCrd(res, obj);
        if (old.contains("status")) {
            obj["status"] = old["status"];
            json names = obj["spec"].value("names", json::object());
            if (!names.contains("listKind") && names.contains("kind"))
                names["listKind"] = names["kind"].get<std::string>() + "List";
            obj["status"]["acceptedNames"] = names;
        }
    }
    if (res.kind == "Namespace" && res.group.empty() && old.contains("spec") && subresource.empty())
        obj["spec"] = old["spec"];  // spec.finalizers is only writable through /finalize

    // No new finalizers once deletion has started.
    if (old["metadata"].contains("deletionTimestamp")) {
        json oldF = old["metadata"].value("finalizers", json::array());
        std::vector<std::string> added;
        for (const auto& f : obj["metadata"].value("finalizers", json::array()))
            if (std::find(oldF.begin(), oldF.end(), f) == oldF.end())
                added.push_back(f.get<std::string>());
        if (!added.empty()) {
            std::string list;
            for (size_t i = 0; i < added.size(); ++i)
                list += (i ? ", " : "") + std::string("\"") + added[i] + "\"";
            errors::invalid(res, name,
                            json::array({errors::invalidCause(
                                "FieldValueForbidden", "metadata.finalizers",
                                "Forbidden: no new finalizers can be added if the object is "
                                "being deleted, found new finalizers []string{" +
                                    list + "}")}));
        }
    }

    int64_t gen = old["metadata"].value("generation", int64_t{1});
    if (generationRelevant(res, obj) != generationRelevant(res, old)) ++gen;
    obj["metadata"]["generation"] = gen;

    if (!managedFieldsSet)
        obj = fieldset::recordUpdate(old, obj, opts.manager, *res.mergeSchema, nowRfc3339(),
                                     subresource);

    WriteResult r;
    r.warnings = std::move(warnings);
    if (withoutTimes(obj) == withoutTimes(old)) {
        r.body = old;  // nothing changed: no new revision, no event
        return r;
    }
    if (opts.dryRun) {
        r.body = std::move(obj);
        return r;
    }
    bool finished = obj["metadata"].contains("deletionTimestamp") &&
                    obj["metadata"].value("finalizers", json::array()).empty();
    // Status writes (by tests or the simulator) must not be overwritten by simulated status.
    const bool noSimulation = fromController || subresource == "status";
    r.body = commitLocked(res, "MODIFIED", std::move(obj), &old, noSimulation);
    if (finished) r.body = commitLocked(res, "DELETED", r.body, nullptr, noSimulation);
    return r;
}

WriteResult Store::patch(const ResourceInfo& res, const std::string& ns, const std::string& name,
                         const std::string& subresource, PatchType type, const std::string& body,
                         const WriteOptions& opts) {
    json patchDoc;
    if (type == PatchType::Apply) {
        try {
            patchDoc = yamlToJson(body);
        } catch (const std::exception& e) {
            errors::badRequest(std::string("error decoding YAML: ") + e.what());
        }
        if (!patchDoc.is_object()) errors::badRequest("apply patch must be an object");
    } else {
        patchDoc = json::parse(body, nullptr, false);
        if (patchDoc.is_discarded()) errors::badRequest("error decoding patch: invalid JSON");
    }
    std::lock_guard<std::mutex> lk(mu_);
    const json* cur = findLocked(res, ns, name);
    try {
        if (subresource == "scale") {
            if (!cur) errors::notFound(res, name);
            json old = *cur;
            if (type == PatchType::Apply) {
                if (opts.manager.empty())
                    errors::badRequest("fieldManager is required for apply patch");
                // Applying a Scale applies the parent's replicas field, owned with
                // subresource "scale".
                json applied = {{"apiVersion", old.value("apiVersion", res.apiVersion())},
                                {"kind", res.kind},
                                {"metadata", {{"name", name}}}};
                const json spec = patchDoc.value("spec", json::object());
                if (spec.is_object() && spec.contains("replicas"))
                    applied = apilogic::withScaleReplicas(applied, *res.scale,
                                                          scaleReplicas(name, patchDoc));
                auto merged = fieldset::apply(old, applied, opts.manager, opts.force,
                                              *res.mergeSchema, nowRfc3339(), "scale");
                merged.object["metadata"].erase("resourceVersion");
                auto r = finishUpdateLocked(res, old, merged.object, "scale", opts, true, false);
                r.body = apilogic::scaleOf(r.body, *res.scale);
                return r;
            }
            const json current = apilogic::scaleOf(old, *res.scale);
            json updated;
            if (type == PatchType::Merge)
                updated = apilogic::applyMergePatch(current, patchDoc);
            else if (type == PatchType::Json)
                updated = apilogic::applyJsonPatch(current, patchDoc);
            else
                updated = apilogic::applyStrategicMergePatch(current, patchDoc, fieldset::Schema());
            return writeScaleLocked(res, old, updated, opts);
        }
        if (type == PatchType::Apply) {
            if (opts.manager.empty())
                errors::throwStatus(
                    422, "Invalid",
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is "
                    "required for apply patch",
                    {{"group", "meta.k8s.io"},
                     {"kind", "PatchOptions"},
                     {"causes", json::array({errors::invalidCause(
                                    "FieldValueRequired", "fieldManager",
                                    "Required value: is required for apply patch")})}});
            checkTypeMeta(res, patchDoc);
            std::string pname = patchDoc["metadata"].value("name", "");
            if (pname != name)
                errors::badRequest("the name of the object (" + pname +
                                   ") does not match the name on the URL (" + name + ")");
            const std::string now = nowRfc3339();
            if (!cur) {
                if (!subresource.empty()) errors::notFound(res, name);
                auto merged = fieldset::apply(nullptr, patchDoc, opts.manager, opts.force,
                                              *res.mergeSchema, now);
                return createLocked(res, ns, merged.object, opts, true);
            }
            json old = *cur;
            std::string wantRv = patchDoc["metadata"].value("resourceVersion", "");
            if (!wantRv.empty() && wantRv != old["metadata"].value("resourceVersion", ""))
                errors::conflictModified(res, name);
            auto merged = fieldset::apply(old, patchDoc, opts.manager, opts.force, *res.mergeSchema,
                                          now, subresource);
            merged.object["metadata"].erase("resourceVersion");
            return finishUpdateLocked(res, old, merged.object, subresource, opts, true, false);
        }
        if (!cur) errors::notFound(res, name);
        json old = *cur;
        json updated;
        switch (type) {
            case PatchType::Merge:
                updated = apilogic::applyMergePatch(old, patchDoc);
                break;
            case PatchType::Json:
                updated = apilogic::applyJsonPatch(old, patchDoc);
                break;
            case PatchType::Strategic:
                updated = apilogic::applyStrategicMergePatch(old, patchDoc, *res.mergeSchema);
                break;
            case PatchType::Apply:
                break;
        }
        // A resourceVersion in the patch is a precondition; the copied one from `old` is not.
        return finishUpdateLocked(res, old, std::move(updated), subresource, opts, false, false);
    } catch (const fieldset::ApplyConflict& c) {
        // "conflict with \"mgr\" using apps/v1": Update managers are named with their version.
        std::vector<fieldset::ManagedFieldsEntry> entries;
        if (cur) entries = fieldset::parseManagedFields(*cur);
        auto describe = [&](const fieldset::Conflict& cf) {
            std::string who = "\"" + cf.manager + "\"";
            for (const auto& e : entries)
                if (e.manager == cf.manager && e.fields.contains(cf.path)) {
                    if (!e.subresource.empty())
                        who += " with subresource \"" + e.subresource + "\"";
                    if (e.operation == "Update") who += " using " + e.apiVersion;
                    break;
                }
            return who;
        };
        json causes = json::array();
        for (const auto& cf : c.conflicts())
            causes.push_back({{"type", "FieldManagerConflict"},
                              {"message", "conflict with " + describe(cf)},
                              {"field", fieldset::toString(cf.path)}});
        std::string msg;
        const auto& cs = c.conflicts();
        if (cs.size() == 1) {
            msg = "Apply failed with 1 conflict: conflict with " + describe(cs[0]) + ": " +
                  fieldset::toString(cs[0].path);
        } else {
            std::map<std::string, std::vector<std::string>> byManager;
            for (const auto& cf : cs)
                byManager[describe(cf)].push_back(fieldset::toString(cf.path));
            std::string lines;
            for (const auto& [m, paths] : byManager) {
                if (!lines.empty()) lines += "\n";
                lines += "conflicts with " + m;
                for (const auto& p : paths) lines += "\n- " + p;
            }
            msg = "Apply failed with " + std::to_string(cs.size()) + " conflicts: " + lines;
        }
        json d = {{"name", name}, {"kind", res.plural}, {"causes", causes}};
        if (!res.group.empty()) d["group"] = res.group;
        errors::throwStatus(409, "Conflict", msg, d);
    } catch (const apilogic::InvalidError& e) {
        if (e.badRequest) errors::badRequest(e.what());
        // A JSON patch that cannot be applied (a failed "test", a missing path): upstream
        // answers 422 Invalid with its generic message, the patch's own error dropped.
        if (e.causes.empty())
            errors::throwStatus(422, "Invalid",
                                "the server rejected our request due to an error in our request");
        json causes = json::array();
        for (const auto& c : e.causes)
            causes.push_back(errors::invalidCause(c.reason, c.field, c.message));
        errors::invalid(res, name, causes);
    }
}

WriteResult Store::remove(const ResourceInfo& res, const std::string& ns, const std::string& name,
                          const DeleteOptions& opts) {
    std::lock_guard<std::mutex> lk(mu_);
    const json* cur = findLocked(res, ns, name);
    if (!cur) errors::notFound(res, name);
    json obj = *cur;
    const json& meta = obj["metadata"];
    if (!opts.preconditionUid.empty() && opts.preconditionUid != meta.value("uid", ""))
        errors::conflict(res, name,
                         "Precondition failed: UID in precondition: " + opts.preconditionUid +
                             ", UID in object meta: " + meta.value("uid", ""));
    if (!opts.preconditionResourceVersion.empty() &&
        opts.preconditionResourceVersion != meta.value("resourceVersion", ""))
        errors::conflict(
            res, name,
            "Precondition failed: ResourceVersion in precondition: " +
                opts.preconditionResourceVersion +
                ", ResourceVersion in object meta: " + meta.value("resourceVersion", ""));
    if (res.kind == "Namespace" && res.group.empty() && meta.contains("deletionTimestamp"))
        errors::conflict(res, name,
                         "The system is ensuring all content is removed from this namespace.  Upon "
                         "completion, this namespace will automatically be purged by the system.");
    const std::string& p = opts.propagationPolicy;
    if (!p.empty() && p != "Background" && p != "Foreground" && p != "Orphan")
        errors::throwStatus(
            422, "Invalid",
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"" +
                p + "\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
            {{"group", "meta.k8s.io"}, {"kind", "DeleteOptions"}});
    return deleteLocked(res, obj, opts, false);
}

WriteResult Store::deleteLocked(const ResourceInfo& res, const json& obj, const DeleteOptions& opts,
                                bool fromController) {
    WriteResult r;
    json next = obj;
    json& meta = next["metadata"];
    const bool isNamespace = res.kind == "Namespace" && res.group.empty();
    if (meta.contains("deletionTimestamp")) {
        r.body = obj;  // already being deleted: nothing more to do
        return r;
    }
    auto fins = meta.value("finalizers", json::array());
    auto addFin = [&](const std::string& f) {
        if (std::find(fins.begin(), fins.end(), f) == fins.end()) fins.push_back(f);
    };
    if (opts.propagationPolicy == "Foreground") addFin("foregroundDeletion");
    if (opts.propagationPolicy == "Orphan") addFin("orphan");
    if (!fins.empty() || isNamespace) {
        // Graceful: mark and keep until the finalizers (or namespace cleanup) are done.
        if (!fins.empty()) meta["finalizers"] = fins;
        meta["deletionTimestamp"] = nowRfc3339();
        meta["deletionGracePeriodSeconds"] = opts.gracePeriodSeconds.value_or(0);
        if (isNamespace) next["status"]["phase"] = "Terminating";
        if (opts.dryRun) {
            r.body = next;
            return r;
        }
        r.body = commitLocked(res, "MODIFIED", std::move(next), &obj, fromController);
        return r;
    }
    if (opts.dryRun) {
        r.body = res.isCustom || res.kind == "Pod"
                     ? obj
                     : errors::successStatus(res, meta.value("name", ""), meta.value("uid", ""));
        return r;
    }
    json gone = commitLocked(res, "DELETED", obj, nullptr, fromController);
    // Like upstream, custom resources and pods answer with the object, others with a Status.
    r.body = res.isCustom || res.kind == "Pod"
                 ? gone
                 : errors::successStatus(res, meta.value("name", ""), meta.value("uid", ""));
    return r;
}

}  // namespace sluice::testing
