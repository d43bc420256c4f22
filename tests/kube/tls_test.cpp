// preferHashedCaDirectory(): system trust from the hashed CA directory, the bundle left alone.
// Each test runs in its own process (gtest_discover_tests), so the environment it sets stays
// its own.
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <cstdio>
#include <memory>

#include "apiserver/api_server.h"
#include "sluice/kube/client.h"
#include "sluice/kube/tls.h"
#include "tempdir/tempdir.h"
#include "test_util.h"

namespace sluice::kube {
namespace {

using namespace std::chrono_literals;
using sluice::testing::TempDir;

// The file name OpenSSL's hash-directory lookup expects for this certificate.
std::string hashedName(const std::string& pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), int(pem.size())),
                                                  &BIO_free);
    std::unique_ptr<X509, decltype(&X509_free)> cert(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
    if (!cert) throw std::runtime_error("bad test CA");
    char name[32];
    std::snprintf(name, sizeof name, "%08lx.0", X509_subject_name_hash(cert.get()));
    return name;
}

TEST(PreferHashedCaDirectory, LeavesAnExplicitBundleAlone) {
    TempDir dir;
    dir.write("0123abcd.0", "not read");
    setenv("SSL_CERT_FILE", "/etc/my-bundle.pem", 1);
    setenv("SSL_CERT_DIR", dir.path().c_str(), 1);
    EXPECT_FALSE(preferHashedCaDirectory());
    EXPECT_STREQ(getenv("SSL_CERT_FILE"), "/etc/my-bundle.pem");
}

TEST(PreferHashedCaDirectory, ReplacesTheDistributionBundleNamedExplicitly) {
    TempDir dir;
    dir.write("0123abcd.0", "not read");
    setenv("SSL_CERT_FILE", X509_get_default_cert_file(), 1);
    setenv("SSL_CERT_DIR", dir.path().c_str(), 1);
    EXPECT_TRUE(preferHashedCaDirectory());
    EXPECT_STREQ(getenv("SSL_CERT_FILE"), "/dev/null");
}

TEST(PreferHashedCaDirectory, KeepsTheBundleWhenNoDirectoryHoldsHashedCertificates) {
    TempDir empty, unhashed;
    unhashed.write("ca-certificates.crt", "bundle");
    unsetenv("SSL_CERT_FILE");
    setenv("SSL_CERT_DIR", (empty.path().string() + ":" + unhashed.path().string()).c_str(), 1);
    EXPECT_FALSE(preferHashedCaDirectory());
    EXPECT_EQ(getenv("SSL_CERT_FILE"), nullptr);
}

TEST(PreferHashedCaDirectory, SystemTrustStillVerifiesThroughTheDirectory) {
    testing::ApiServerOptions o;
    o.simulateWorkloads = false;
    testing::ApiServer server(o);
    server.start();
    // The server's CA as the only "system" CA, in the second directory of the list.
    TempDir empty, system;
    system.write(hashedName(server.caPem()), server.caPem());
    unsetenv("SSL_CERT_FILE");
    setenv("SSL_CERT_DIR", (empty.path().string() + ":" + system.path().string()).c_str(), 1);
    ASSERT_TRUE(preferHashedCaDirectory());
    EXPECT_STREQ(getenv("SSL_CERT_FILE"), "/dev/null");

    ClusterConfig cfg;
    cfg.server = server.url();
    cfg.token = server.token();  // no caPem: the default verify paths decide
    cfg.requestTimeout = 5s;
    cfg.maxRetries = 0;
    cfg.qps = 0;
    cfg.source = "test";
    RestClient client(cfg);
    EXPECT_NO_THROW(client.get({"", "v1", "Namespace"}, "", "default"));

    // And a CA that is not in the directory is still refused.
    std::filesystem::remove(system.path() / hashedName(server.caPem()));
    RestClient untrusted(cfg);
    EXPECT_ANY_THROW(untrusted.get({"", "v1", "Namespace"}, "", "default"));
    server.stop();
}

}  // namespace
}  // namespace sluice::kube
