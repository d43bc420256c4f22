#include "heal.h"

#include <cctype>

#include "sluice/diff/diff.h"
#include "sluice/router/apply.h"

namespace sluice::canarycontroller::detail {

using nlohmann::json;

namespace {

// At most this many differing fields are named per object (an Event message stays short).
constexpr size_t kPathsNamed = 3;

std::string refOf(const json& object) {
    return object.value("kind", "") + " " + kube::namespaceOf(object) + "/" + kube::nameOf(object);
}

// The live object, nullopt when it does not exist.
std::optional<json> getLive(kube::KubeClient& client, const json& desired) {
    const auto gvk = kube::GroupVersionKind::fromApiVersion(desired.value("apiVersion", ""),
                                                            desired.value("kind", ""));
    try {
        return client.get(gvk, kube::namespaceOf(desired), kube::nameOf(desired));
    } catch (const kube::ApiError& error) {
        if (error.isNotFound()) return std::nullopt;
        throw;
    }
}

bool isWeightsObject(const json& object, const router::ObjectRef& ref) {
    return object.value("kind", "") == ref.kind && kube::nameOf(object) == ref.name;
}

bool cookieChar(char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
}

// The cookie value after `name=` at `at` in `text` (letters, as randomCookieValue makes).
std::optional<std::string> cookieAt(const std::string& text, const std::string& name) {
    const std::string needle = name + "=";
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
        if (at > 0 && cookieChar(text[at - 1])) continue;  // the tail of a longer name
        size_t end = at + needle.size();
        while (end < text.size() && std::isalpha(static_cast<unsigned char>(text[end]))) ++end;
        if (end > at + needle.size()) return text.substr(at, end - at);
    }
    return std::nullopt;
}

}  // namespace

std::string RouteHealing::found() const {
    std::string out;
    for (const RestoredObject& r : restored) {
        if (!out.empty()) out += "; ";
        out += r.object + " " + r.found;
    }
    return out;
}

std::optional<std::string> cookieIn(const json& live, const std::string& name) {
    if (name.empty()) return std::nullopt;
    if (live.is_string()) return cookieAt(live.get_ref<const std::string&>(), name);
    if (!live.is_object() && !live.is_array()) return std::nullopt;
    for (const json& child : live) {
        if (auto found = cookieIn(child, name)) return found;
    }
    return std::nullopt;
}

std::string routeObjectDrift(const json& desired, const json* live) {
    if (live == nullptr) return "missing";
    const diff::Result result = diff::compare(desired, *live);
    if (!result.modified) return "";
    std::string paths;
    for (size_t i = 0; i < result.differences.size() && i < kPathsNamed; ++i) {
        if (!paths.empty()) paths += ", ";
        paths += result.differences[i].path;
    }
    if (result.differences.size() > kPathsNamed) {
        paths += " and " + std::to_string(result.differences.size() - kPathsNamed) + " more";
    }
    return "with " + paths + " changed";
}

RouteHealing healRouting(kube::KubeClient& client, const router::Router& router,
                         const router::RouteContext& ctx, const router::Weights& weights,
                         const std::string& fieldManager, const AdjustContext& adjust) {
    const std::vector<kube::Object> inputs = router::readInputs(client, router, ctx);
    const router::ObjectRef weightsRef = router.weightsObject(ctx);
    // The weights object first: what it routes by now may shape the objects (session affinity).
    std::optional<json> liveWeights = getLive(
        client,
        json{{"apiVersion", weightsRef.apiVersion},
             {"kind", weightsRef.kind},
             {"metadata", {{"name", weightsRef.name}, {"namespace", weightsRef.namespaceName}}}});
    router::RouteContext built = ctx;
    if (adjust) adjust(built, liveWeights ? &*liveWeights : nullptr);
    std::vector<kube::Object> desired = router::desiredObjects(router, built, weights, inputs);
    // Owner references first, so a missing uid fails before anything is written.
    for (kube::Object& object : desired) object = router::withOwner(std::move(object), built);

    kube::ApplyOptions apply;
    apply.fieldManager = fieldManager;
    apply.force = true;
    RouteHealing out;
    for (const kube::Object& object : desired) {
        std::optional<json> live =
            isWeightsObject(object, weightsRef) ? liveWeights : getLive(client, object);
        std::string drift = routeObjectDrift(object, live ? &*live : nullptr);
        if (drift.empty()) continue;
        if (live && isWeightsObject(object, weightsRef)) {
            // What the proxy routes by now, when the object is still in a shape it reads.
            try {
                const router::Weights found = router.readWeights(built, *live);
                if (found != weights) drift += " (routing " + router::toString(found) + ")";
            } catch (const router::RouterError& e) {
                drift += " (" + std::string(e.what()) + ")";
            }
        }
        client.apply(object, apply);
        out.restored.push_back({refOf(object), std::move(drift)});
    }
    return out;
}

}  // namespace sluice::canarycontroller::detail
