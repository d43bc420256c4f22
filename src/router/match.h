#pragma once
// Flagger's request matching: Canary specs write Istio HTTPMatchRequests (service.match,
// analysis.match); Istio takes them as they are, Gateway API gets them translated.
#include <nlohmann/json.hpp>

namespace sluice::router::detail {

// Istio HTTPMatchRequests -> Gateway API HTTPRouteMatches (path from uri, method, headers,
// queryParams). Throws RouterError for selectors Gateway API cannot express (prefix header
// matches, non-exact methods, uri without exact/prefix/regex). Empty matches are dropped.
nlohmann::json toGatewayMatches(const nlohmann::json& istioMatches);

// A/B testing: each analysis match combined with each service match, the analysis match's
// headers/queryParams replacing the service match's (Flagger's mergeMatchConditions).
nlohmann::json mergeGatewayMatches(const nlohmann::json& analysis, const nlohmann::json& service);
// Same for Istio: headers and sourceLabels come from the analysis match.
nlohmann::json mergeIstioMatches(const nlohmann::json& analysis, const nlohmann::json& service);

}  // namespace sluice::router::detail
