#pragma once
// The one list of routing providers. Each row names a provider as spec.provider and
// --mesh-provider spell it, its router and the key of its built-in metric queries
// (metricprovider/builtin.h), so a new router is its file plus one row here: makeRouter, the
// --mesh-provider check and the built-in queries all read this table.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/router/router.h"

namespace sluice::router {

struct ProviderEntry {
    // The canonical spelling, what the router's provider() returns.
    std::string_view name;
    // Other spellings of the same provider ("gatewayapi" for "gatewayapi:v1").
    std::vector<std::string_view> aliases;
    // Also accept "<name>:<anything>" (Flagger's "smi:v1alpha2:<mesh>"); the router gets the
    // whole spelling.
    bool acceptsSuffix = false;
    // Builds the router for the spelling found; nullptr when the provider only has built-in
    // queries (it cannot route, so makeRouter and --mesh-provider refuse it).
    std::unique_ptr<Router> (*makeRouter)(std::string_view spelling) = nullptr;
    // Key of the built-in request-success-rate / request-duration queries ("istio", "envoy"...),
    // empty when the provider has none.
    std::string_view observer;
};

// Every provider, in the order the messages and docs list them.
const std::vector<ProviderEntry>& providerTable();
// The row for a spelling (name, alias, or name:suffix where allowed); nullptr when unknown.
const ProviderEntry* findProvider(std::string_view spelling);
// "gatewayapi:v1, gatewayapi:v1beta1, istio, ..." (the providers with a router), for messages.
std::string routableProviders();

}  // namespace sluice::router
