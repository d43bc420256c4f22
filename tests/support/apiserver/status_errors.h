#pragma once
// metav1.Status bodies with kube-apiserver's reasons and message texts, thrown as ApiError.
#include <string>
#include <vector>

#include "apiserver/api_server.h"
#include "apiserver/resources.h"

namespace sluice::testing::errors {

using nlohmann::json;

json status(int code, const std::string& reason, const std::string& message, json details = json());
json successStatus(const ResourceInfo& res, const std::string& name, const std::string& uid);

[[noreturn]] void throwStatus(int code, const std::string& reason, const std::string& message,
                              json details = json());
[[noreturn]] void notFound(const ResourceInfo& res, const std::string& name);
[[noreturn]] void namespaceNotFound(const std::string& ns);
[[noreturn]] void alreadyExists(const ResourceInfo& res, const std::string& name);
// Optimistic-concurrency failure ("the object has been modified; ...").
[[noreturn]] void conflictModified(const ResourceInfo& res, const std::string& name);
[[noreturn]] void conflict(const ResourceInfo& res, const std::string& name,
                           const std::string& why);
// 422 Invalid: `Kind "name" is invalid: field: msg, ...` from the causes.
[[noreturn]] void invalid(const ResourceInfo& res, const std::string& name, json causes);
json invalidCause(const std::string& reason, const std::string& field, const std::string& msg);
[[noreturn]] void badRequest(const std::string& message);
[[noreturn]] void forbidden(const ResourceInfo& res, const std::string& name,
                            const std::string& why, json causes = json());
[[noreturn]] void methodNotSupported(const ResourceInfo& res, const std::string& verb);
[[noreturn]] void unsupportedMediaType(const std::string& contentType);
[[noreturn]] void expired(const std::string& message);
json unauthorized();
json resourceNotFoundGeneric();

}  // namespace sluice::testing::errors
