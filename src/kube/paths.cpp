#include "sluice/kube/paths.h"

namespace sluice::kube {

std::string percentEncode(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
        if (unreserved) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xF];
        }
    }
    return out;
}

QueryString& QueryString::add(const std::string& key, const std::string& value, bool keepEmpty) {
    if (!value.empty() || keepEmpty) params_.emplace_back(key, value);
    return *this;
}

std::string QueryString::str() const {
    std::string out;
    for (const auto& [k, v] : params_) {
        out += out.empty() ? '?' : '&';
        out += percentEncode(k);
        out += '=';
        out += percentEncode(v);
    }
    return out;
}

std::string groupVersionPath(const std::string& group, const std::string& version) {
    // Built with append: GCC 12 reports a false -Wrestrict for "literal" + std::string at -O3.
    std::string path;
    if (group.empty()) {
        path.append("/api/");
    } else {
        path.append("/apis/").append(percentEncode(group)).append("/");
    }
    return path.append(percentEncode(version));
}

std::string resourcePath(const ResourceInfo& ri, const std::string& ns, const std::string& name,
                         const std::string& subresource) {
    std::string path = groupVersionPath(ri.gvk.group, ri.gvk.version);
    if (ri.namespaced && !ns.empty()) path.append("/namespaces/").append(percentEncode(ns));
    path.append("/").append(percentEncode(ri.resource));
    if (!name.empty()) {
        path.append("/").append(percentEncode(name));
        if (!subresource.empty()) path.append("/").append(percentEncode(subresource));
    }
    return path;
}

}  // namespace sluice::kube
