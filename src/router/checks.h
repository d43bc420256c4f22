#pragma once
// Spec checks several routers share, and the session-affinity cookies the routers that keep
// sticky sessions (Istio, Gateway API) write alike.
#include <chrono>
#include <string>
#include <string_view>

#include "sluice/router/context.h"
#include "sluice/router/router.h"

namespace sluice::router {

// A router that cannot mirror says so when the spec asks for it (analysis.mirror), before
// anything is routed, not at the first mirrored iteration.
inline void refuseMirroring(const RouteContext& ctx, const std::string& provider) {
    if (ctx.spec.mirrors())
        throw RouterError("the " + provider + " provider cannot mirror traffic (analysis.mirror)");
}

// A router that cannot keep users on the canary by cookie says so (analysis.sessionAffinity).
inline void refuseSessionAffinity(const RouteContext& ctx, const std::string& provider) {
    if (ctx.spec.analysis.sessionAffinity) {
        throw RouterError("the " + provider +
                          " provider cannot route by session affinity cookie "
                          "(analysis.sessionAffinity)");
    }
}

// The routers that keep sticky sessions route A/B tests by analysis.match alone: the two do
// not combine (Flagger's Istio router drops the sticky routes of an A/B test).
inline void checkSessionAffinity(const RouteContext& ctx) {
    if (ctx.spec.analysis.sessionAffinity && ctx.abTesting()) {
        throw RouterError(
            "analysis.sessionAffinity cannot be combined with A/B testing (analysis.match)");
    }
}

namespace detail {

// The session-affinity cookies to route by, or nullptr when the spec asks for none.
inline const canaryengine::SessionAffinitySpec* sessionAffinity(const RouteContext& ctx) {
    const auto& affinity = ctx.spec.analysis.sessionAffinity;
    return affinity && !ctx.abTesting() ? &*affinity : nullptr;
}

// A regular expression for a Cookie request header that carries `cookie` ("name=value"):
// the name and value side by side, the name's regex characters escaped.
inline std::string cookieRegex(const std::string& cookie) {
    std::string out = ".*";
    for (char ch : cookie) {
        if (std::string_view("\\.+*?()|[]{}^$").find(ch) != std::string_view::npos) out += '\\';
        out += ch;
    }
    out += ".*";
    return out;
}

// The Set-Cookie value that keeps `cookie` for `maxAge` seconds (-1: expires it now).
inline std::string setCookie(const std::string& cookie, long long maxAge) {
    return cookie + "; Max-Age=" + std::to_string(maxAge);
}

// The primary cookie lives one analysis interval (Flagger).
inline long long primaryCookieMaxAge(const RouteContext& ctx) {
    return std::chrono::duration_cast<std::chrono::seconds>(ctx.spec.analysis.interval).count();
}

}  // namespace detail

}  // namespace sluice::router
