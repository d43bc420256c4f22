#include "sluice/metricprovider/builtin.h"

#include <cctype>

#include "sluice/router/providers.h"

namespace sluice::metricprovider {
namespace {

// Success rate and p99 latency over the same selector; `scale` turns the histogram's unit into
// milliseconds.
std::string successRate(const std::string& metric, const std::string& selector,
                        const std::string& statusLabel) {
    std::string total = "sum(rate(" + metric + "{" + selector + "}[{{ interval }}]))";
    std::string ok =
        "sum(rate(" + metric + "{" + selector + ", " + statusLabel + "!~\"5.*\"}[{{ interval }}]))";
    return ok + "\n/\n" + total + "\n* 100";
}

std::string p99(const std::string& bucketMetric, const std::string& selector, bool seconds) {
    std::string q = "histogram_quantile(0.99, sum(rate(" + bucketMetric + "{" + selector +
                    "}[{{ interval }}])) by (le))";
    return seconds ? q + " * 1000" : q;
}

// The providers of the table that have built-in queries, for the error message.
std::string providersWithQueries() {
    std::string out;
    for (const router::ProviderEntry& entry : router::providerTable()) {
        if (entry.observer.empty()) continue;
        if (!out.empty()) out += ", ";
        out += entry.name;
    }
    return out;
}

// Skipper names its routes from the Ingress with every non-word character replaced by '_'
// (kube_<namespace>__<ingress>__<host>__<path>__<service>), so its queries need the names so.
TemplateModel skipperRouteNames(TemplateModel model) {
    for (std::string* name :
         {&model.name, &model.namespaceName, &model.target, &model.service, &model.ingress}) {
        for (char& c : *name) {
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
        }
    }
    return model;
}

}  // namespace

std::optional<BuiltinMetric> parseBuiltinMetric(std::string_view name) {
    if (name == "request-success-rate") return BuiltinMetric::RequestSuccessRate;
    if (name == "request-duration") return BuiltinMetric::RequestDuration;
    return std::nullopt;
}

std::string_view toString(BuiltinMetric metric) {
    return metric == BuiltinMetric::RequestSuccessRate ? "request-success-rate"
                                                       : "request-duration";
}

std::optional<Observer> observerForProvider(std::string_view provider) {
    // As Flagger: a Canary without a provider is analysed as a plain Kubernetes one.
    if (provider.empty()) provider = "kubernetes";
    const router::ProviderEntry* entry = router::findProvider(provider);
    if (!entry) return std::nullopt;
    for (Observer observer : kObservers) {
        if (toString(observer) == entry->observer) return observer;
    }
    return std::nullopt;
}

std::string_view toString(Observer observer) {
    switch (observer) {
        case Observer::Istio:
            return "istio";
        case Observer::Nginx:
            return "nginx";
        case Observer::Envoy:
            return "envoy";
        case Observer::Http:
            return "http";
        case Observer::Linkerd:
            return "linkerd";
        case Observer::Traefik:
            return "traefik";
        case Observer::Gloo:
            return "gloo";
        case Observer::Kuma:
            return "kuma";
        case Observer::Skipper:
            return "skipper";
        case Observer::Apisix:
            return "apisix";
        case Observer::AppMesh:
            return "appmesh";
    }
    return "?";
}

std::string builtinQueryTemplate(Observer observer, BuiltinMetric metric) {
    bool rate = metric == BuiltinMetric::RequestSuccessRate;
    switch (observer) {
        case Observer::Istio: {
            std::string sel =
                "reporter=\"destination\", destination_workload_namespace=\"{{ namespace }}\", "
                "destination_workload=~\"{{ target }}\"";
            return rate ? successRate("istio_requests_total", sel, "response_code")
                        : p99("istio_request_duration_milliseconds_bucket", sel, false);
        }
        case Observer::Nginx: {
            std::string sel = "namespace=\"{{ namespace }}\", ingress=\"{{ ingress }}\"";
            return rate
                       ? successRate("nginx_ingress_controller_requests", sel, "status")
                       : p99("nginx_ingress_controller_request_duration_seconds_bucket", sel, true);
        }
        case Observer::Envoy: {
            std::string sel =
                "envoy_cluster_name=~\"{{ namespace }}_{{ target }}-canary_[0-9a-zA-Z-]+\"";
            return rate ? successRate("envoy_cluster_upstream_rq", sel, "envoy_response_code")
                        : p99("envoy_cluster_upstream_rq_time_bucket", sel, false);
        }
        case Observer::Http: {
            std::string sel =
                "kubernetes_namespace=\"{{ namespace }}\", "
                "kubernetes_pod_name=~\"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\"";
            return rate ? successRate("http_requests_total", sel, "status")
                        : p99("http_request_duration_seconds_bucket", sel, true);
        }
        case Observer::Linkerd: {
            // The proxies' inbound metrics; failures are classified by the proxy, not by status.
            std::string sel =
                "namespace=\"{{ namespace }}\", deployment=~\"{{ target }}\", "
                "direction=\"inbound\"";
            if (!rate) return p99("response_latency_ms_bucket", sel, false);
            std::string total = "sum(rate(response_total{" + sel + "}[{{ interval }}]))";
            std::string ok = "sum(rate(response_total{" + sel +
                             ", classification!=\"failure\"}[{{ interval }}]))";
            return ok + "\n/\n" + total + "\n* 100";
        }
        case Observer::Gloo: {
            // Gloo names an Envoy cluster <upstream>_<upstream namespace>, and the canary's
            // upstream <namespace>-<apex>-canaryupstream-<port> (see router/gloo.cpp).
            std::string sel =
                "envoy_cluster_name=~\"{{ namespace }}-{{ target }}-canaryupstream-[0-9]+_{{ "
                "namespace }}\"";
            return rate ? successRate("envoy_cluster_upstream_rq", sel, "envoy_response_code")
                        : p99("envoy_cluster_upstream_rq_time_bucket", sel, false);
        }
        case Observer::Kuma: {
            // Kuma tags the Envoy stats with the mesh service <service>_<namespace>_svc_<port>.
            std::string sel = "service=~\"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+\"";
            return rate ? successRate("envoy_cluster_upstream_rq", sel, "envoy_response_code")
                        : p99("envoy_cluster_upstream_rq_time_bucket", sel, false);
        }
        case Observer::Skipper: {
            // The routes of the canary Ingress to the canary Service; the duration is the mean,
            // as Flagger's.
            const std::string route =
                "route=~\"kube(ew)?_{{ namespace }}__{{ ingress }}_canary__.*__{{ service "
                "}}_canary(_[0-9]+)?\"";
            if (!rate) {
                return "sum(rate(skipper_serve_route_duration_seconds_sum{" + route +
                       "}[{{ interval }}]))\n/\nsum(rate(skipper_serve_route_duration_seconds_"
                       "count{" +
                       route + "}[{{ interval }}]))\n* 1000";
            }
            const std::string metric = "skipper_response_duration_seconds_bucket";
            return "sum(rate(" + metric + "{" + route +
                   ", code!~\"5..\", le=\"+Inf\"}[{{ interval }}]))" + "\n/\nsum(rate(" + metric +
                   "{" + route + ", le=\"+Inf\"}[{{ interval }}]))\n* 100";
        }
        case Observer::Apisix: {
            // APISIX names the canary route <namespace>_<routeRef>-canary_<http route name>.
            std::string sel = "route=~\"{{ namespace }}_{{ route }}-canary_.+\"";
            if (!rate) {
                return "histogram_quantile(0.99, "
                       "sum(rate(apisix_http_latency_bucket{type=~\"request\", " +
                       sel + "}[{{ interval }}])) by (le))";
            }
            return successRate("apisix_http_status", sel, "code");
        }
        case Observer::AppMesh: {
            // The Envoy sidecars of the canary's pods (never <target>-primary's).
            std::string sel =
                "kubernetes_namespace=\"{{ namespace }}\", "
                "kubernetes_pod_name=~\"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\"";
            return rate ? successRate("envoy_cluster_upstream_rq", sel, "envoy_response_code")
                        : p99("envoy_cluster_upstream_rq_time_bucket", sel, false);
        }
        case Observer::Traefik: {
            // The canary's TraefikService backend; the +Inf bucket counts every request.
            std::string sel =
                "service=~\"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd\"";
            const std::string metric = "traefik_service_request_duration_seconds_bucket";
            if (!rate) return p99(metric, sel, true);
            std::string total =
                "sum(rate(" + metric + "{" + sel + ", le=\"+Inf\"}[{{ interval }}]))";
            std::string ok = "sum(rate(" + metric + "{" + sel +
                             ", code!~\"5..\", le=\"+Inf\"}[{{ interval }}]))";
            return ok + "\n/\n" + total + "\n* 100";
        }
    }
    return "";
}

RenderResult analysisQuery(const canaryengine::MetricSpec& metric, std::string_view provider,
                           TemplateModel model, const std::string* templateQuery) {
    model.interval = promDuration(metric.interval);
    auto failed = [&](const std::string& why) {
        RenderResult r;
        r.error = "metric " + metric.name + ": " + why;
        return r;
    };
    auto rendered = [&](std::string_view text) {
        RenderResult r = renderQuery(text, model);
        if (!r.ok()) r.error = "metric " + metric.name + ": " + r.error;
        return r;
    };
    if (metric.templateRef) {
        std::string ref =
            (metric.templateRef->namespaceName.empty() ? ""
                                                       : metric.templateRef->namespaceName + "/") +
            metric.templateRef->name;
        if (!templateQuery) return failed("MetricTemplate " + ref + " not found");
        if (templateQuery->empty()) return failed("MetricTemplate " + ref + " has no query");
        return rendered(*templateQuery);
    }
    if (!metric.query.empty()) return rendered(metric.query);
    auto builtin = parseBuiltinMetric(metric.name);
    if (!builtin)
        return failed(
            "no templateRef or query, and not a built-in metric (request-success-rate, "
            "request-duration)");
    auto observer = observerForProvider(provider);
    if (!observer)
        return failed("provider \"" + std::string(provider) + "\" has no built-in queries (" +
                      providersWithQueries() + "); use a MetricTemplate");
    if (*observer == Observer::Skipper) model = skipperRouteNames(std::move(model));
    return rendered(builtinQueryTemplate(*observer, *builtin));
}

}  // namespace sluice::metricprovider
