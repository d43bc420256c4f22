#include "apiserver/authorizer.h"

#include <algorithm>
#include <set>

#include "apiserver/status_errors.h"

namespace sluice::testing {

using nlohmann::json;

namespace {

const std::string kSaPrefix = "system:serviceaccount:";
const std::string kMasters = "system:masters";
const std::string kAuthenticated = "system:authenticated";

std::vector<std::string> stringsOf(const json& obj, const char* key) {
    std::vector<std::string> out;
    if (!obj.is_object() || !obj.contains(key) || !obj[key].is_array()) return out;
    for (const auto& v : obj[key])
        if (v.is_string()) out.push_back(v.get<std::string>());
    return out;
}

std::string str(const json& obj, const char* key) {
    if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return "";
    return obj[key].get<std::string>();
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

// Go's %q for the plain strings of names and verbs.
std::string goQuote(const std::string& s) {
    return json(s).dump();
}

// The bootstrap ClusterRoles kube-apiserver binds to system:authenticated
// (system:discovery, system:public-info-viewer, system:basic-user). They are not stored as
// objects so that listing clusterroles shows only what a test created.
const std::vector<json>& bootstrapRules() {
    static const std::vector<json> rules = {
        {{"verbs", {"get"}},
         {"nonResourceURLs",
          {"/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
           "/readyz", "/version", "/version/"}}},
        {{"verbs", {"create"}},
         {"apiGroups", {"authorization.k8s.io"}},
         {"resources", {"selfsubjectaccessreviews", "selfsubjectrulesreviews"}}},
        {{"verbs", {"create"}},
         {"apiGroups", {"authentication.k8s.io"}},
         {"resources", {"selfsubjectreviews"}}},
    };
    return rules;
}

bool resourceMatches(const json& rule, const RequestAttributes& a) {
    const std::string combined =
        a.subresource.empty() ? a.resource : a.resource + "/" + a.subresource;
    for (const auto& r : stringsOf(rule, "resources")) {
        if (r == "*" || r == combined) return true;
        // "*/status" grants that subresource of every resource.
        if (!a.subresource.empty() && r == "*/" + a.subresource) return true;
    }
    return false;
}

bool resourceNameMatches(const json& rule, const std::string& name) {
    auto names = stringsOf(rule, "resourceNames");
    // An empty name (list, watch, create, deletecollection) never matches a non-empty list.
    return names.empty() || contains(names, name);
}

bool nonResourceUrlMatches(const json& rule, const std::string& path) {
    for (const auto& u : stringsOf(rule, "nonResourceURLs")) {
        if (u == "*" || u == path) return true;
        if (!u.empty() && u.back() == '*' && path.compare(0, u.size() - 1, u, 0, u.size() - 1) == 0)
            return true;
    }
    return false;
}

// A Role/ClusterRole the binding refers to, or an error text as upstream's role getters give.
const json* findRole(const json& roleRef, const std::string& bindingNs, const RbacPolicy& policy,
                     std::vector<std::string>& errs) {
    const std::string kind = str(roleRef, "kind");
    const std::string name = str(roleRef, "name");
    if (kind == "Role") {
        for (const auto& r : policy.roles)
            if (str(r["metadata"], "name") == name && str(r["metadata"], "namespace") == bindingNs)
                return &r;
        errs.push_back("roles.rbac.authorization.k8s.io " + goQuote(name) + " not found");
        return nullptr;
    }
    if (kind == "ClusterRole") {
        for (const auto& r : policy.clusterRoles)
            if (str(r["metadata"], "name") == name) return &r;
        errs.push_back("clusterroles.rbac.authorization.k8s.io " + goQuote(name) + " not found");
        return nullptr;
    }
    errs.push_back("unsupported role reference kind: " + goQuote(kind));
    return nullptr;
}

// Whether a binding applies to the user and its role has a rule allowing the request.
bool bindingAllows(const json& binding, const std::string& bindingNs,
                   const RequestAttributes& attrs, const UserInfo& user, const RbacPolicy& policy,
                   std::vector<std::string>& errs) {
    if (!binding.contains("subjects") || !binding["subjects"].is_array()) return false;
    bool applies = false;
    for (const auto& s : binding["subjects"])
        applies = applies || subjectMatches(s, user, bindingNs);
    if (!applies) return false;
    const json* role = findRole(binding.value("roleRef", json::object()), bindingNs, policy, errs);
    if (!role || !role->contains("rules") || !(*role)["rules"].is_array()) return false;
    for (const auto& rule : (*role)["rules"])
        if (ruleAllows(rule, attrs)) return true;
    return false;
}

// utilerrors.NewAggregate(...).Error(): one message as is, several deduplicated in brackets.
std::string aggregate(const std::vector<std::string>& errs) {
    if (errs.size() == 1) return errs[0];
    std::vector<std::string> seen;
    for (const auto& e : errs)
        if (!contains(seen, e)) seen.push_back(e);
    if (seen.size() == 1) return seen[0];
    std::string out = "[";
    for (size_t i = 0; i < seen.size(); ++i) out += (i ? ", " : "") + seen[i];
    return out + "]";
}

// metadata.name=<x> (or ==) in a field selector, as fields.Selector.RequiresExactMatch.
std::string exactNameOf(const std::string& fieldSelector) {
    // Escaped values (backslashes) are left alone: the name would not be a valid one anyway.
    if (fieldSelector.find('\\') != std::string::npos) return "";
    size_t i = 0;
    while (i <= fieldSelector.size()) {
        size_t j = fieldSelector.find(',', i);
        if (j == std::string::npos) j = fieldSelector.size();
        std::string term = fieldSelector.substr(i, j - i);
        for (const char* op : {"metadata.name==", "metadata.name="}) {
            const std::string prefix = op;
            if (term.compare(0, prefix.size(), prefix) == 0) return term.substr(prefix.size());
        }
        i = j + 1;
    }
    return "";
}

bool validPathSegmentName(const std::string& name) {
    return name != "." && name != ".." && name.find('/') == std::string::npos &&
           name.find('%') == std::string::npos;
}

}  // namespace

UserInfo userFromName(const std::string& name) {
    UserInfo u{name, {}};
    if (name.compare(0, kSaPrefix.size(), kSaPrefix) == 0) {
        std::string rest = name.substr(kSaPrefix.size());
        size_t colon = rest.find(':');
        if (colon != std::string::npos && colon > 0 && colon + 1 < rest.size() &&
            rest.find(':', colon + 1) == std::string::npos) {
            u.groups.push_back("system:serviceaccounts");
            u.groups.push_back("system:serviceaccounts:" + rest.substr(0, colon));
        }
    }
    u.groups.push_back(kAuthenticated);
    return u;
}

Impersonation impersonationOf(const std::string& userName, const std::vector<std::string>& groups) {
    Impersonation out;
    if (userName.empty()) {
        if (!groups.empty())
            out.error = "requested impersonation of group " + goQuote(groups.front()) +
                        " without impersonating a user";
        return out;
    }
    auto check = [&](const std::string& resource, const std::string& ns, const std::string& name) {
        RequestAttributes a;
        a.resourceRequest = true;
        a.verb = "impersonate";
        a.apiVersion = "v1";
        a.resource = resource;
        a.ns = ns;
        a.name = name;
        out.checks.push_back(std::move(a));
    };
    out.user.name = userName;
    const UserInfo asServiceAccount = userFromName(userName);
    if (asServiceAccount.groups.size() == 3) {  // a well-formed service account name
        const std::string rest = userName.substr(kSaPrefix.size());
        const size_t colon = rest.find(':');
        check("serviceaccounts", rest.substr(0, colon), rest.substr(colon + 1));
        if (groups.empty())
            out.user.groups = {asServiceAccount.groups[0], asServiceAccount.groups[1]};
    } else {
        check("users", "", userName);
    }
    for (const std::string& g : groups) {
        check("groups", "", g);
        out.user.groups.push_back(g);
    }
    if (userName != "system:anonymous" && !contains(out.user.groups, kAuthenticated))
        out.user.groups.push_back(kAuthenticated);
    return out;
}

UserInfo superUser() {
    return {"admin", {kMasters, kAuthenticated}};
}

bool isSuperUser(const UserInfo& user) {
    return contains(user.groups, kMasters);
}

RequestAttributes requestAttributes(const std::string& method, const std::string& path, bool watch,
                                    const std::string& fieldSelector) {
    RequestAttributes a;
    a.path = path;
    a.verb = method;
    std::transform(a.verb.begin(), a.verb.end(), a.verb.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto parts = splitPath(path);
    // /api/<v>/<resource>... and /apis/<group>/<v>/<resource>...; shorter is discovery.
    if (parts.size() < 3 || (parts[0] != "api" && parts[0] != "apis")) return a;
    if (parts[0] == "apis" && parts.size() < 4) return a;
    size_t i = 1;
    if (parts[0] == "apis") a.apiGroup = parts[i++];
    a.apiVersion = parts[i++];
    a.resourceRequest = true;
    parts.erase(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(i));

    if (parts[0] == "watch") {  // deprecated /watch/ prefix
        a.verb = "watch";
        parts.erase(parts.begin());
    } else if (method == "POST") {
        a.verb = "create";
    } else if (method == "GET" || method == "HEAD") {
        a.verb = "get";
    } else if (method == "PUT") {
        a.verb = "update";
    } else if (method == "PATCH") {
        a.verb = "patch";  // server-side apply included
    } else if (method == "DELETE") {
        a.verb = "delete";
    } else {
        a.verb = "";
    }
    if (!parts.empty() && parts[0] == "namespaces" && parts.size() > 1) {
        a.ns = parts[1];
        // namespaces/<n>/status and /finalize are subresources of the namespace itself.
        if (parts.size() > 2 && parts[2] != "status" && parts[2] != "finalize")
            parts.erase(parts.begin(), parts.begin() + 2);
    }
    if (!parts.empty()) a.resource = parts[0];
    if (parts.size() >= 2) a.name = parts[1];
    if (parts.size() >= 3) a.subresource = parts[2];

    if (a.name.empty() && a.verb == "get") {
        a.verb = watch ? "watch" : "list";
        std::string n = exactNameOf(fieldSelector);
        if (validPathSegmentName(n)) a.name = n;
    }
    if (a.name.empty() && a.verb == "delete") a.verb = "deletecollection";
    return a;
}

bool ruleAllows(const json& rule, const RequestAttributes& attrs) {
    auto verbs = stringsOf(rule, "verbs");
    if (!contains(verbs, "*") && !contains(verbs, attrs.verb)) return false;
    if (!attrs.resourceRequest) return nonResourceUrlMatches(rule, attrs.path);
    auto groups = stringsOf(rule, "apiGroups");
    if (!contains(groups, "*") && !contains(groups, attrs.apiGroup)) return false;
    return resourceMatches(rule, attrs) && resourceNameMatches(rule, attrs.name);
}

bool subjectMatches(const json& subject, const UserInfo& user,
                    const std::string& bindingNamespace) {
    const std::string kind = str(subject, "kind");
    const std::string name = str(subject, "name");
    if (kind == "User") return user.name == name;
    if (kind == "Group") return contains(user.groups, name);
    if (kind == "ServiceAccount") {
        std::string ns = str(subject, "namespace");
        if (ns.empty()) ns = bindingNamespace;
        if (ns.empty()) return false;
        return user.name == kSaPrefix + ns + ":" + name;
    }
    return false;
}

Decision authorize(const RequestAttributes& attrs, const UserInfo& user, const RbacPolicy& policy) {
    if (isSuperUser(user)) return {true, ""};
    if (contains(user.groups, kAuthenticated))
        for (const auto& rule : bootstrapRules())
            if (ruleAllows(rule, attrs)) return {true, ""};
    std::vector<std::string> errs;
    for (const auto& b : policy.clusterRoleBindings)
        if (bindingAllows(b, "", attrs, user, policy, errs)) return {true, ""};
    // RoleBindings grant only inside their namespace, so never at the cluster scope.
    if (!attrs.ns.empty()) {
        for (const auto& b : policy.roleBindings) {
            if (str(b.value("metadata", json::object()), "namespace") != attrs.ns) continue;
            if (bindingAllows(b, attrs.ns, attrs, user, policy, errs)) return {true, ""};
        }
    }
    return {false, errs.empty() ? "" : "RBAC: " + aggregate(errs)};
}

json forbiddenStatus(const RequestAttributes& attrs, const UserInfo& user,
                     const std::string& reason) {
    // responsewriters.forbiddenMessage
    std::string msg = "User " + goQuote(user.name) + " cannot " + attrs.verb;
    if (!attrs.resourceRequest) {
        msg += " path " + goQuote(attrs.path);
    } else {
        std::string resource =
            attrs.subresource.empty() ? attrs.resource : attrs.resource + "/" + attrs.subresource;
        msg += " resource " + goQuote(resource) + " in API group " + goQuote(attrs.apiGroup);
        msg +=
            attrs.ns.empty() ? " at the cluster scope" : " in the namespace " + goQuote(attrs.ns);
    }
    if (!reason.empty()) msg += ": " + reason;
    // apierrors.NewForbidden over the group/resource (without subresource) and the name.
    json details = json::object();
    std::string message;
    if (attrs.resource.empty() && attrs.apiGroup.empty()) {
        message = "forbidden: " + msg;
    } else {
        std::string gr =
            attrs.apiGroup.empty() ? attrs.resource : attrs.resource + "." + attrs.apiGroup;
        message =
            gr + (attrs.name.empty() ? "" : " " + goQuote(attrs.name)) + " is forbidden: " + msg;
        if (!attrs.name.empty()) details["name"] = attrs.name;
        if (!attrs.apiGroup.empty()) details["group"] = attrs.apiGroup;
        if (!attrs.resource.empty()) details["kind"] = attrs.resource;
    }
    json st = errors::status(403, "Forbidden", message);
    st["details"] = details;  // upstream sends details even when empty
    return st;
}

std::vector<std::string> splitPath(const std::string& path) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string::npos) j = path.size();
        if (j > i) out.push_back(path.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

}  // namespace sluice::testing
