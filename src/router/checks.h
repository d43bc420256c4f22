#pragma once
// Spec checks several routers share.
#include <string>

#include "sluice/router/context.h"
#include "sluice/router/router.h"

namespace sluice::router {

// A router that cannot mirror says so when the spec asks for it (analysis.mirror), before
// anything is routed, not at the first mirrored iteration.
inline void refuseMirroring(const RouteContext& ctx, const std::string& provider) {
    if (ctx.spec.mirrors())
        throw RouterError("the " + provider + " provider cannot mirror traffic (analysis.mirror)");
}

}  // namespace sluice::router
