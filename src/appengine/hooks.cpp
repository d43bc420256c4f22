// Resource hooks: which objects are hooks, in which phases they run, and when they are deleted.
#include "sluice/appengine/hooks.h"

#include <openssl/sha.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "sluice/appengine/tracking.h"

namespace sluice::appengine {

using nlohmann::json;

namespace {

constexpr const char* kHelmHook = "helm.sh/hook";
constexpr const char* kHelmHookWeight = "helm.sh/hook-weight";
constexpr const char* kHelmHookDeletePolicy = "helm.sh/hook-delete-policy";

const std::string* annotationOf(const json& obj, const char* name) {
    auto md = obj.find("metadata");
    if (md == obj.end() || !md->is_object()) return nullptr;
    auto an = md->find("annotations");
    if (an == md->end() || !an->is_object()) return nullptr;
    auto it = an->find(name);
    if (it == an->end() || !it->is_string()) return nullptr;
    return &it->get_ref<const std::string&>();
}

std::string_view trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

std::vector<std::string> commaList(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        std::string item(trim(std::string_view(text).substr(start, end - start)));
        if (!item.empty()) out.push_back(item);
        start = end + 1;
    }
    return out;
}

std::optional<HookType> argoHookType(const std::string& name) {
    if (name == "PreSync") return HookType::PreSync;
    if (name == "Sync") return HookType::Sync;
    if (name == "PostSync") return HookType::PostSync;
    if (name == "SyncFail") return HookType::SyncFail;
    if (name == "PostDelete") return HookType::PostDelete;
    return std::nullopt;
}

// Helm's hook names as Argo CD maps them; nullopt for the ones it does not run.
std::optional<HookType> helmHookType(const std::string& name) {
    if (name == "pre-install" || name == "pre-upgrade") return HookType::PreSync;
    if (name == "post-install" || name == "post-upgrade") return HookType::PostSync;
    if (name == "post-delete") return HookType::PostDelete;
    return std::nullopt;
}

void addType(HookInfo& info, HookType t) {
    if (!info.runsIn(t)) info.types.push_back(t);
}

bool readArgoTypes(const std::string& text, const char* annotation, HookInfo& info,
                   std::string* error) {
    for (const auto& name : commaList(text)) {
        if (name == "Skip") {
            info.skip = true;
            continue;
        }
        auto t = argoHookType(name);
        if (!t) {
            if (error)
                *error = "annotation " + std::string(annotation) + ": unknown hook type \"" + name +
                         "\" (PreSync, Sync, PostSync, SyncFail, PostDelete or Skip)";
            return false;
        }
        addType(info, *t);
    }
    return true;
}

// Argo CD's policy names, or Helm's when `helm`.
bool readDeletePolicies(const std::string& text, const char* annotation, bool helm, HookInfo& info,
                        std::string* error) {
    for (const auto& name : commaList(text)) {
        if (name == (helm ? "hook-succeeded" : "HookSucceeded")) {
            info.deleteOnSuccess = true;
        } else if (name == (helm ? "hook-failed" : "HookFailed")) {
            info.deleteOnFailure = true;
        } else if (name == (helm ? "before-hook-creation" : "BeforeHookCreation")) {
            info.deleteBeforeCreation = true;
        } else {
            if (error)
                *error = "annotation " + std::string(annotation) +
                         ": unknown hook delete policy \"" + name + "\"";
            return false;
        }
    }
    return true;
}

}  // namespace

const char* toString(HookType t) {
    switch (t) {
        case HookType::PreSync:
            return "PreSync";
        case HookType::Sync:
            return "Sync";
        case HookType::PostSync:
            return "PostSync";
        case HookType::SyncFail:
            return "SyncFail";
        case HookType::PostDelete:
            return "PostDelete";
    }
    return "Sync";
}

bool HookInfo::runsIn(HookType t) const {
    return std::find(types.begin(), types.end(), t) != types.end();
}

std::optional<HookInfo> hookOf(const json& obj, std::string* error) {
    HookInfo info;
    const char* annotation = kHookAnnotation;
    const std::string* text = annotationOf(obj, kHookAnnotation);
    if (!text) {
        annotation = kArgoHookAnnotation;
        text = annotationOf(obj, kArgoHookAnnotation);
    }
    bool helm = false;
    if (text) {
        if (!readArgoTypes(*text, annotation, info, error)) return std::nullopt;
    } else if (const std::string* helmText = annotationOf(obj, kHelmHook)) {
        const auto names = commaList(*helmText);
        // crd-install alone: an ordinary CRD, as Argo CD treats it.
        if (names.empty() || (names.size() == 1 && names[0] == "crd-install")) return std::nullopt;
        helm = true;
        for (const auto& name : names)
            if (auto t = helmHookType(name)) addType(info, *t);
    } else {
        return std::nullopt;
    }
    // Skip alone is not a hook that runs: the object is simply left out.
    if (info.skip && info.types.empty()) return info;

    const char* policyAnnotation = kHookDeletePolicyAnnotation;
    const std::string* policies = annotationOf(obj, kHookDeletePolicyAnnotation);
    if (!policies) {
        policyAnnotation = kArgoHookDeletePolicyAnnotation;
        policies = annotationOf(obj, kArgoHookDeletePolicyAnnotation);
    }
    bool helmPolicies = false;
    if (!policies) {
        policyAnnotation = kHelmHookDeletePolicy;
        policies = annotationOf(obj, kHelmHookDeletePolicy);
        helmPolicies = policies != nullptr;
    }
    if (policies && !readDeletePolicies(*policies, policyAnnotation, helmPolicies, info, error))
        return std::nullopt;
    if (!info.deleteOnSuccess && !info.deleteOnFailure && !info.deleteBeforeCreation)
        info.deleteBeforeCreation = true;

    std::string waveError;
    info.wave = syncWaveOf(obj, &waveError);
    if (!waveError.empty()) {
        if (error) *error = waveError;
        return std::nullopt;
    }
    const std::string* weight = annotationOf(obj, kHelmHookWeight);
    if (helm && weight && !annotationOf(obj, "argocd.argoproj.io/sync-wave") &&
        !annotationOf(obj, "sluice.io/sync-wave")) {
        std::string_view w = trim(*weight);
        int value = 0;
        auto [ptr, ec] = std::from_chars(w.data(), w.data() + w.size(), value);
        if (w.empty() || ec != std::errc() || ptr != w.data() + w.size()) {
            if (error)
                *error = std::string("annotation ") + kHelmHookWeight + ": \"" + *weight +
                         "\" is not an integer";
            return std::nullopt;
        }
        info.wave = value;
    }
    return info;
}

std::string hookObjectName(const json& obj, const std::string& syncId, HookType phase) {
    const json& md = obj.contains("metadata") ? obj["metadata"] : json::object();
    const std::string name = md.is_object() ? md.value("name", "") : "";
    if (!name.empty()) return name;
    std::string base = md.is_object() ? md.value("generateName", "") : "";
    std::string suffix = syncId + "-" + toString(phase);
    std::transform(suffix.begin(), suffix.end(), suffix.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (base.size() + suffix.size() > 63) base.resize(63 - suffix.size());
    return base + suffix;
}

std::string syncIdOf(const std::string& instance, const std::string& startedAt, int retryCount) {
    const std::string text = instance + "|" + startedAt + "|" + std::to_string(retryCount);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    char hex[11];
    std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x%02x", digest[0], digest[1], digest[2],
                  digest[3], digest[4]);
    return std::string(hex, 10);
}

}  // namespace sluice::appengine
