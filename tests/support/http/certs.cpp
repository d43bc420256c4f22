#include "http/certs.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace sluice::testing {
namespace {

template <auto Free>
struct Deleter {
    template <typename T>
    void operator()(T* p) const {
        Free(p);
    }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;

[[noreturn]] void fail(const std::string& what) {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    std::string msg = "certs: " + what;
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        msg += ": ";
        msg += buf;
    }
    throw std::runtime_error(msg);
}

// EC P-256: generated in microseconds (RSA takes ~100 ms) and accepted by OpenSSL and Go.
PkeyPtr newKey() {
    PkeyPtr key(EVP_EC_gen("P-256"));
    if (!key) fail("key generation");
    return key;
}

std::string toPem(X509* cert) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) fail("PEM_write_bio_X509");
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

std::string toPem(EVP_PKEY* key) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    // PKCS#8 ("BEGIN PRIVATE KEY"): read by OpenSSL, boost.asio and Go alike.
    if (!bio ||
        PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        fail("PEM_write_bio_PrivateKey");
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

void addNameEntry(X509_NAME* name, const char* field, const std::string& value) {
    if (value.empty()) return;
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                   0) != 1)
        fail(std::string("subject ") + field);
}

void addExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
    ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value.c_str()));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
        fail(std::string("extension ") + OBJ_nid2sn(nid) + "=" + value);
}

// The parts both certificate kinds share: serial, validity, names and key.
X509Ptr newCertificate(EVP_PKEY* subjectKey, const std::string& commonName,
                       const std::string& organization, X509* issuer) {
    X509Ptr cert(X509_new());
    if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) fail("X509_new");
    // 127 random bits with the top one set: positive, non-zero and unique per certificate,
    // so clients caching by issuer+serial never confuse two test runs.
    BnPtr serial(BN_new());
    if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1 ||
        !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())))
        fail("serial number");
    // Backdated an hour so clocks slightly apart (containers, VMs) still accept it.
    if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600))
        fail("validity");
    X509_NAME* subject = X509_get_subject_name(cert.get());
    addNameEntry(subject, "O", organization);
    addNameEntry(subject, "CN", commonName);
    X509_NAME* issuerName = issuer ? X509_get_subject_name(issuer) : subject;
    if (X509_set_issuer_name(cert.get(), issuerName) != 1) fail("issuer name");
    if (X509_set_pubkey(cert.get(), subjectKey) != 1) fail("public key");
    return cert;
}

void sign(X509* cert, EVP_PKEY* key) {
    if (X509_sign(cert, key, EVP_sha256()) <= 0) fail("X509_sign");
}

std::string subjectAltNames(const std::vector<std::string>& sans) {
    std::string out;
    for (const std::string& san : sans) {
        if (san.empty() || san.find_first_of(",\r\n") != std::string::npos)
            throw std::invalid_argument("certs: bad subjectAltName '" + san + "'");
        unsigned char buf[sizeof(in6_addr)];
        bool ip =
            inet_pton(AF_INET, san.c_str(), buf) == 1 || inet_pton(AF_INET6, san.c_str(), buf) == 1;
        if (!out.empty()) out += ",";
        out += (ip ? "IP:" : "DNS:") + san;
    }
    return out;
}

}  // namespace

KeyPair generateCa(const std::string& commonName) {
    PkeyPtr key = newKey();
    X509Ptr cert = newCertificate(key.get(), commonName, "", nullptr);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    addExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
    addExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign");
    addExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
    // Self-signed: the issuer's key identifier is the SKI just added.
    addExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
    sign(cert.get(), key.get());
    return {toPem(cert.get()), toPem(key.get())};
}

KeyPair issueCertificate(const KeyPair& ca, const std::string& commonName,
                         const std::vector<std::string>& sans, bool forClient,
                         const std::string& organization) {
    BioPtr certBio(BIO_new_mem_buf(ca.certPem.data(), static_cast<int>(ca.certPem.size())));
    X509Ptr caCert(certBio ? PEM_read_bio_X509(certBio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!caCert) fail("CA certificate");
    BioPtr keyBio(BIO_new_mem_buf(ca.keyPem.data(), static_cast<int>(ca.keyPem.size())));
    PkeyPtr caKey(keyBio ? PEM_read_bio_PrivateKey(keyBio.get(), nullptr, nullptr, nullptr)
                         : nullptr);
    if (!caKey) fail("CA key");
    if (X509_check_private_key(caCert.get(), caKey.get()) != 1) fail("CA key does not match");

    PkeyPtr key = newKey();
    X509Ptr cert = newCertificate(key.get(), commonName, organization, caCert.get());
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, caCert.get(), cert.get(), nullptr, nullptr, 0);
    addExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
    // EC keys sign (ECDHE key exchange); keyEncipherment would only apply to RSA.
    addExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
    addExtension(cert.get(), &ctx, NID_ext_key_usage, forClient ? "clientAuth" : "serverAuth");
    addExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
    addExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
    // Go ignores the CN for host names: servers must list every name and IP here.
    if (!sans.empty()) addExtension(cert.get(), &ctx, NID_subject_alt_name, subjectAltNames(sans));
    sign(cert.get(), caKey.get());
    return {toPem(cert.get()), toPem(key.get())};
}

}  // namespace sluice::testing
