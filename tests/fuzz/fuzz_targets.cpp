// libFuzzer targets for every parser that takes outside input, one per executable (selected by
// SLUICE_FUZZ_TARGET at compile time): manifest YAML to JSON and render, Helm/Kustomize output
// read back, kubeconfig, git webhook payloads, Prometheus responses, known_hosts. Each must
// only ever return or throw its documented exceptions: a crash, a sanitizer report, a leak or a
// timeout is a bug. Built by scripts/fuzz.sh with clang; seeds in tests/fuzz/corpus/<target>.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>

#include "sluice/git/known_hosts.h"
#include "sluice/gitwebhook/webhook.h"
#include "sluice/kube/config.h"
#include "sluice/kube/errors.h"
#include "sluice/metricprovider/client.h"
#include "sluice/render/render.h"
#include "sluice/source/source.h"
#include "sluice/util/base64.h"
#include "sluice/util/yaml_json.h"

namespace {

[[maybe_unused]] void yaml(const std::string& in) {
    try {
        sluice::yamlDocumentsToJson(in);
    } catch (const sluice::YamlError&) {
    }
    try {
        sluice::render::renderStream(in, "fuzz.yaml");
    } catch (const sluice::render::RenderError&) {
    }
}

[[maybe_unused]] void toolOutput(const std::string& in) {
    try {
        sluice::source::parseToolOutput(in, "helm template");
    } catch (const sluice::render::RenderError&) {
    }
}

[[maybe_unused]] void kubeconfig(const std::string& in) {
    static const std::string path = "/tmp/sluice-fuzz-kubeconfig-" + std::to_string(getpid());
    std::ofstream(path, std::ios::binary | std::ios::trunc) << in;
    try {
        sluice::kube::loadKubeconfig(path);
    } catch (const sluice::kube::ConfigError&) {
    }
}

[[maybe_unused]] void webhook(const std::string& in) {
    // Token-checked (GitLab) and signature-checked (GitHub) pushes, so the payload is parsed.
    sluice::gitwebhook::Secrets secrets;
    secrets.gitlab = "token";
    secrets.github = "secret";
    const std::string signature = "sha256=" + sluice::gitwebhook::hmacSha256Hex("secret", in);
    for (const char* type : {"application/json", "application/x-www-form-urlencoded", ""}) {
        sluice::gitwebhook::handle(
            {{"x-gitlab-event", "Push Hook"}, {"x-gitlab-token", "token"}, {"content-type", type}},
            in, secrets);
        sluice::gitwebhook::handle({{"x-github-event", "push"},
                                    {"x-hub-signature-256", signature},
                                    {"content-type", type}},
                                   in, secrets);
    }
}

[[maybe_unused]] void prometheus(const std::string& in) {
    for (int status : {200, 400, 503}) sluice::metricprovider::interpretQueryResponse(status, in);
}

[[maybe_unused]] void knownHosts(const std::string& in) {
    sluice::git::KnownHosts hosts(in);
    hosts.check("github.com", 22, "\x00\x00\x00\x0bssh-ed25519");
    for (auto whitespace : {sluice::Base64Whitespace::Reject, sluice::Base64Whitespace::Skip})
        if (auto decoded = sluice::base64Decode(in, whitespace))
            if (sluice::base64Decode(sluice::base64Encode(*decoded)) != decoded) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    SLUICE_FUZZ_TARGET(in);
    return 0;
}
