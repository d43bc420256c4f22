#pragma once
// Flagger's built-in metrics, queried per routing provider with the metric names and label
// semantics of Flagger's observers:
//   request-success-rate: percent (0-100) of requests without a 5xx status
//   request-duration:     p99 latency in milliseconds (conversion done in the query)
// Observers:
//   istio       istio_requests_total / istio_request_duration_milliseconds_bucket,
//               reporter="destination", destination_workload_namespace,
//               destination_workload=~target
//   nginx       nginx_ingress_controller_requests / ..._request_duration_seconds_bucket * 1000,
//               namespace, ingress (Flagger averages the removed ingress_upstream_latency_seconds;
//               Sluice takes the p99 of the current histogram)
//   envoy       gatewayapi, gatewayapi:<version>, contour: envoy_cluster_upstream_rq /
//               envoy_cluster_upstream_rq_time_bucket of the cluster
//               "<namespace>_<target>-canary_<port>" (Contour's naming, as Flagger)
//   http        kubernetes, "" (apps exporting their own metrics): http_requests_total{status} /
//               http_request_duration_seconds_bucket * 1000, kubernetes_namespace and
//               kubernetes_pod_name=~"<target>-<rs hash>-<pod id>" (so <target>-primary pods never
//               match). Flagger counts http_request_duration_seconds_count for the rate;
//               Sluice counts http_requests_total.
//   linkerd     linkerd: response_total{classification!="failure"} / response_latency_ms_bucket,
//               namespace, deployment=~target, direction="inbound" (the Linkerd proxy's)
//   (smi:*)     Flagger's fallback observer for SMI providers: istio
//   traefik     traefik: traefik_service_request_duration_seconds_bucket of the service
//               "<namespace>-<target>-canary-<port>@kubernetescrd"; the rate counts le="+Inf",
//               code!~"5..", the p99 is * 1000 (Flagger takes the seconds as milliseconds)
//   gloo        gloo, gloo:<ns>: the envoy queries of the canary upstream's cluster
//               "<namespace>-<target>-canaryupstream-<port>_<namespace>" (Flagger's pattern
//               "-canary-" misses the upstreams it names "-canaryupstream-")
//   kuma        kuma: the envoy queries with service=~"<target>-canary_<namespace>_svc_<port>"
//   skipper     skipper: skipper_response_duration_seconds_bucket (le="+Inf", code!~"5..") and the
//               mean of skipper_serve_route_duration_seconds * 1000 of the canary Ingress's routes
//               to the canary Service, names with non-word characters as '_' (Flagger's)
//   apisix      apisix: apisix_http_status{code} / apisix_http_latency_bucket{type="request"} of
//   the
//               canary ApisixRoute, route=~"<namespace>_<routeRef>-canary_.+" ({{ route }})
//   appmesh     appmesh:v1beta2: envoy_cluster_upstream_rq / _time_bucket of the canary pods,
//               kubernetes_namespace and kubernetes_pod_name=~"<target>-<rs hash>-<pod id>"
#include <optional>
#include <string>
#include <string_view>

#include "sluice/canaryengine/spec.h"
#include "sluice/metricprovider/query_template.h"

namespace sluice::metricprovider {

enum class BuiltinMetric { RequestSuccessRate, RequestDuration };
// "request-success-rate", "request-duration"; anything else -> nullopt.
std::optional<BuiltinMetric> parseBuiltinMetric(std::string_view name);
std::string_view toString(BuiltinMetric metric);

enum class Observer {
    Istio,
    Nginx,
    Envoy,
    Http,
    Linkerd,
    Traefik,
    Gloo,
    Kuma,
    Skipper,
    Apisix,
    AppMesh
};
// Every observer, for looking one up by its name (toString).
inline constexpr Observer kObservers[] = {Observer::Istio,  Observer::Nginx,   Observer::Envoy,
                                          Observer::Http,   Observer::Linkerd, Observer::Traefik,
                                          Observer::Gloo,   Observer::Kuma,    Observer::Skipper,
                                          Observer::Apisix, Observer::AppMesh};
// The Canary's spec.provider -> observer, from the provider table (router/providers.h); nullopt
// for providers without built-in queries. An empty provider is kubernetes.
std::optional<Observer> observerForProvider(std::string_view provider);
std::string_view toString(Observer observer);

// The unrendered query, with {{ namespace }}, {{ target }}, {{ ingress }}, {{ interval }}.
std::string builtinQueryTemplate(Observer observer, BuiltinMetric metric);

// Picks and renders the query for one analysis metric:
//   1. templateRef -> `templateQuery` (the referenced MetricTemplate's spec.query; the caller
//      fetches it and passes nullptr when it does not exist, which is an error)
//   2. an inline `query`
//   3. a built-in name, for the Canary's provider
// Templates and inline queries are rendered with `model`, whose interval is replaced by the
// metric's own interval.
RenderResult analysisQuery(const canaryengine::MetricSpec& metric, std::string_view provider,
                           TemplateModel model, const std::string* templateQuery);

}  // namespace sluice::metricprovider
