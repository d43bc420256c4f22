#pragma once
// Base64 in the standard alphabet with '=' padding (RFC 4648 section 4): Kubernetes Secret data
// and kubeconfig *-data fields, HTTP basic authentication, OpenSSH known_hosts keys and hashes.
// The one implementation in Sluice, on OpenSSL's EVP_EncodeBlock / EVP_DecodeBlock.
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

// What base64Decode does with whitespace (' ', '\t', '\r', '\n') in its input.
enum class Base64Whitespace {
    Reject,  // invalid input, as in Secret data, which the API server writes without any
    Skip,    // ignored wherever it is, as Go's decoder ignores line breaks in kubeconfig fields
};

// The encoding of `bytes`, padded to whole 4-character groups.
std::string base64Encode(std::string_view bytes);

// The decoded bytes, or nullopt unless `text` (less skipped whitespace) is whole 4-character
// groups of the standard alphabet with '=' only as one or two final padding characters. ""
// decodes to "". Unused low bits of the last group need not be zero (as Go's StdEncoding).
std::optional<std::string> base64Decode(std::string_view text,
                                        Base64Whitespace whitespace = Base64Whitespace::Reject);

}  // namespace sluice
