#include <algorithm>
#include <cctype>

#include "sluice/appcontroller/controller.h"

namespace sluice::appcontroller {

std::string normaliseRepoUrl(const std::string& url) {
    std::string rest = url;
    while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.back()))) rest.pop_back();
    std::string scheme;
    if (auto pos = rest.find("://"); pos != std::string::npos) {
        scheme = rest.substr(0, pos);
        std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        rest = rest.substr(pos + 3);
    } else if (auto colon = rest.find(':'); colon != std::string::npos && rest.find('/') > colon) {
        // scp form "user@host:path": the colon separates host and path.
        rest = rest.substr(0, colon) + "/" + rest.substr(colon + 1);
        scheme = "ssh";
    }
    if (scheme == "file") {
        // Local paths keep their case; only the trailing ".git" and slashes are noise.
    } else {
        auto slash = rest.find('/');
        std::string authority = rest.substr(0, slash);
        std::string path = slash == std::string::npos ? "" : rest.substr(slash);
        if (auto at = authority.rfind('@'); at != std::string::npos)
            authority = authority.substr(at + 1);
        std::transform(authority.begin(), authority.end(), authority.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        if (auto colon = authority.rfind(':'); colon != std::string::npos) {
            std::string port = authority.substr(colon + 1);
            bool isDefault = port == "22" || port == "443" || (scheme == "http" && port == "80");
            if (isDefault || port.empty()) authority = authority.substr(0, colon);
        }
        rest = authority + path;
    }
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    if (rest.size() > 4 && rest.compare(rest.size() - 4, 4, ".git") == 0)
        rest.resize(rest.size() - 4);
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    return rest;
}

}  // namespace sluice::appcontroller
