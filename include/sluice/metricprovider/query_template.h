#pragma once
// Rendering of MetricTemplate queries with Flagger's placeholders. Flagger runs them through Go
// text/template with one function per field; Sluice accepts the same spellings:
//   {{ name }} {{ namespace }} {{ target }} {{ service }} {{ ingress }} {{ interval }}
//   {{ variables.KEY }}   (KEY from the metric's templateVariables)
// with any whitespace inside the braces, Go's trim markers ({{- x -}} drop the whitespace
// before/after the action) and comments ({{/* ... */}}). Anything else inside {{ }}, a
// placeholder whose value is empty, or a missing variable is an error: Go would print
// "<no value>" or "" and the query would quietly measure nothing.
#include <chrono>
#include <map>
#include <string>
#include <string_view>

namespace sluice::metricprovider {

struct TemplateModel {
    std::string name;           // the Canary's name
    std::string namespaceName;  // the Canary's namespace
    std::string target;         // targetRef.name (the canary workload, e.g. "app")
    std::string service;        // service.name, else targetRef.name (as Flagger)
    std::string ingress;        // ingressRef.name (NGINX), empty when the Canary has none
    std::string route;          // routeRef.name (APISIX), empty when the Canary has none
    std::string interval;       // PromQL range, e.g. "1m" (see promDuration)
    std::map<std::string, std::string> variables;  // the metric's templateVariables
};

struct RenderResult {
    std::string query;
    std::string error;  // empty on success
    bool ok() const { return error.empty(); }
};

RenderResult renderQuery(std::string_view queryTemplate, const TemplateModel& model);

// A PromQL range duration for an analysis interval: "1m", "1m30s", "1h", "1s500ms".
std::string promDuration(std::chrono::milliseconds d);

}  // namespace sluice::metricprovider
