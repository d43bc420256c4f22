#include "apiserver/status_errors.h"

namespace sluice::testing::errors {

json status(int code, const std::string& reason, const std::string& message, json details) {
    json s = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
              {"status", "Failure"}, {"message", message}, {"reason", reason}};
    if (!details.is_null() && !details.empty()) s["details"] = std::move(details);
    s["code"] = code;
    return s;
}

json successStatus(const ResourceInfo& res, const std::string& name, const std::string& uid) {
    json details = {{"name", name}, {"kind", res.plural}, {"uid", uid}};
    if (!res.group.empty()) details["group"] = res.group;
    return {{"kind", "Status"},
            {"apiVersion", "v1"},
            {"metadata", json::object()},
            {"status", "Success"},
            {"details", details}};
}

void throwStatus(int code, const std::string& reason, const std::string& message, json details) {
    throw ApiError(status(code, reason, message, std::move(details)));
}

static json resDetails(const ResourceInfo& res, const std::string& name) {
    json d = json::object();
    if (!name.empty()) d["name"] = name;
    if (!res.group.empty()) d["group"] = res.group;
    d["kind"] = res.plural;
    return d;
}

void notFound(const ResourceInfo& res, const std::string& name) {
    throwStatus(404, "NotFound", res.groupResource() + " \"" + name + "\" not found",
                resDetails(res, name));
}

void namespaceNotFound(const std::string& ns) {
    throwStatus(404, "NotFound", "namespaces \"" + ns + "\" not found",
                {{"name", ns}, {"kind", "namespaces"}});
}

void alreadyExists(const ResourceInfo& res, const std::string& name) {
    throwStatus(409, "AlreadyExists", res.groupResource() + " \"" + name + "\" already exists",
                resDetails(res, name));
}

void conflict(const ResourceInfo& res, const std::string& name, const std::string& why) {
    throwStatus(
        409, "Conflict",
        "Operation cannot be fulfilled on " + res.groupResource() + " \"" + name + "\": " + why,
        resDetails(res, name));
}

void conflictModified(const ResourceInfo& res, const std::string& name) {
    conflict(res, name,
             "the object has been modified; please apply your changes to the latest version "
             "and try again");
}

json invalidCause(const std::string& reason, const std::string& field, const std::string& msg) {
    return {{"reason", reason}, {"message", msg}, {"field", field}};
}

void invalid(const ResourceInfo& res, const std::string& name, json causes) {
    // Upstream joins "field: message" for each cause; a single cause is not bracketed.
    std::vector<std::string> parts;
    for (const auto& c : causes) {
        std::string field = c.value("field", "");
        std::string msg = c.value("message", "");
        parts.push_back(field.empty() ? msg : field + ": " + msg);
    }
    std::string joined;
    if (parts.size() == 1) {
        joined = parts[0];
    } else {
        joined = "[";
        for (size_t i = 0; i < parts.size(); ++i) joined += (i ? ", " : "") + parts[i];
        joined += "]";
    }
    json d = {{"name", name}, {"kind", res.kind}, {"causes", causes}};
    if (!res.group.empty()) d["group"] = res.group;
    std::string gk = res.group.empty() ? res.kind : res.kind + "." + res.group;
    throwStatus(422, "Invalid", gk + " \"" + name + "\" is invalid: " + joined, d);
}

void badRequest(const std::string& message) {
    throwStatus(400, "BadRequest", message);
}

void forbidden(const ResourceInfo& res, const std::string& name, const std::string& why,
               json causes) {
    json d = resDetails(res, name);
    if (!causes.is_null()) d["causes"] = std::move(causes);
    throwStatus(403, "Forbidden", res.groupResource() + " \"" + name + "\" is forbidden: " + why,
                d);
}

void methodNotSupported(const ResourceInfo& res, const std::string& verb) {
    throwStatus(405, "MethodNotAllowed",
                verb + " is not supported on resources of kind \"" + res.groupResource() + "\"",
                resDetails(res, ""));
}

void unsupportedMediaType(const std::string& contentType) {
    throwStatus(415, "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml (got " +
                    contentType + ")");
}

void expired(const std::string& message) {
    throwStatus(410, "Expired", message);
}

json unauthorized() {
    return status(401, "Unauthorized", "Unauthorized");
}

json resourceNotFoundGeneric() {
    return status(404, "NotFound", "the server could not find the requested resource",
                  json::object());
}

}  // namespace sluice::testing::errors
