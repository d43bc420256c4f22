#include "sluice/kube/tls.h"

#include <openssl/x509.h>

#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <system_error>

namespace sluice::kube {
namespace {

// OpenSSL's hashed-directory names: eight hex digits of the subject hash, a dot, a counter.
bool holdsHashedCertificates(const std::string& dirs) {
    static const std::regex kHashed("[0-9a-f]{8}\\.[0-9]+");
    std::size_t start = 0;
    while (start <= dirs.size()) {
        std::size_t end = dirs.find(':', start);
        if (end == std::string::npos) end = dirs.size();
        const std::string dir = dirs.substr(start, end - start);
        std::error_code ec;
        if (!dir.empty())
            for (std::filesystem::directory_iterator it(dir, ec), last; !ec && it != last;
                 it.increment(ec))
                if (std::regex_match(it->path().filename().string(), kHashed)) return true;
        start = end + 1;
    }
    return false;
}

}  // namespace

bool preferHashedCaDirectory() {
    // A bundle of the user's own is used as given; the distribution's (what OpenSSL reads by
    // default anyway) is what the hashed directory mirrors.
    if (const char* file = std::getenv(X509_get_default_cert_file_env())) {
        std::error_code ec;
        if (!std::filesystem::equivalent(file, X509_get_default_cert_file(), ec) || ec)
            return false;
    }
    const char* dirEnv = std::getenv(X509_get_default_cert_dir_env());
    const std::string dirs = dirEnv != nullptr ? dirEnv : X509_get_default_cert_dir();
    if (!holdsHashedCertificates(dirs)) return false;
    return setenv(X509_get_default_cert_file_env(), "/dev/null", 1) == 0;
}

}  // namespace sluice::kube
