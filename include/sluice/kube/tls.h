#pragma once
// System trust without a per-connection parse of the CA bundle.

namespace sluice::kube {

// cpprest gives every new HTTPS connection a fresh OpenSSL context loaded with the default
// verify paths: the CA bundle file, parsed whole (about 20 ms of CPU for Debian's ~140 CAs),
// and the hashed CA directory, read lazily, one certificate per lookup. When SSL_CERT_FILE is
// unset or names OpenSSL's default bundle, and the directory holds hashed certificates
// (Debian's ca-certificates keeps both in step), this points SSL_CERT_FILE at /dev/null so
// that trust comes from the directory alone; a bundle of one's own stays in force. Returns
// whether it did. Call before other threads start (it uses setenv). CAs configured for a
// cluster (kubeconfig, the in-cluster ca.crt) never depend on it.
bool preferHashedCaDirectory();

}  // namespace sluice::kube
