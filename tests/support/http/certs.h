#pragma once
// Certificates made on the fly with OpenSSL for TLS and mTLS tests.
#include <string>
#include <vector>

namespace sluice::testing {

struct KeyPair {
    std::string certPem;
    std::string keyPem;
};

// A self-signed CA.
KeyPair generateCa(const std::string& commonName);

// A certificate signed by ca. For servers, sans are DNS names or IP addresses
// ("127.0.0.1", "localhost"); organization becomes O= (Kubernetes reads groups from it).
KeyPair issueCertificate(const KeyPair& ca, const std::string& commonName,
                         const std::vector<std::string>& sans, bool forClient,
                         const std::string& organization = "");

}  // namespace sluice::testing
