#include <gtest/gtest.h>

#include "sluice/metricprovider/query_template.h"

namespace sluice::metricprovider {
namespace {

TemplateModel model() {
    TemplateModel m;
    m.name = "api";
    m.namespaceName = "prod";
    m.target = "api-deploy";
    m.service = "api-svc";
    m.ingress = "api-ing";
    m.interval = "1m";
    m.variables = {{"direction", "inbound"}, {"code_class", "5.."}};
    return m;
}

std::string render(std::string_view t, const TemplateModel& m = model()) {
    RenderResult r = renderQuery(t, m);
    EXPECT_TRUE(r.ok()) << r.error;
    return r.query;
}

std::string renderError(std::string_view t, const TemplateModel& m = model()) {
    RenderResult r = renderQuery(t, m);
    EXPECT_FALSE(r.ok()) << "rendered: " << r.query;
    EXPECT_TRUE(r.query.empty());
    return r.error;
}

TEST(RenderQuery, EveryPlaceholder) {
    EXPECT_EQ(render("{{ name }} {{ namespace }} {{ target }} {{ service }} {{ ingress }} "
                     "{{ interval }} {{ variables.direction }} {{ variables.code_class }}"),
              "api prod api-deploy api-svc api-ing 1m inbound 5..");
}

TEST(RenderQuery, WhitespaceInsideTheBracesIsFree) {
    EXPECT_EQ(render("a{{namespace}}b{{  target\t}}c{{\nvariables.direction\n}}d"),
              "aprodbapi-deploycinboundd");
}

TEST(RenderQuery, FlaggerStyleMultiLineQuery) {
    std::string t =
        "sum(rate(http_requests_total{namespace=\"{{ namespace }}\",pod=~\"{{ target "
        "}}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\",status=~\"5..\"}[{{ interval }}]))\n/\n"
        "sum(rate(http_requests_total{namespace=\"{{ namespace }}\"}[{{ interval }}]))";
    EXPECT_EQ(
        render(t),
        "sum(rate(http_requests_total{namespace=\"prod\",pod=~\"api-deploy-[0-9a-zA-Z]+(-[0-9a-zA-"
        "Z]+)"
        "\",status=~\"5..\"}[1m]))\n/\nsum(rate(http_requests_total{namespace=\"prod\"}[1m]))");
}

TEST(RenderQuery, TrimMarkersAndComments) {
    EXPECT_EQ(render("x  \n {{- namespace -}} \n  y"), "xprody");
    EXPECT_EQ(render("x {{- namespace }} y"), "xprod y");
    EXPECT_EQ(render("x {{ namespace -}} y"), "x prody");
    EXPECT_EQ(render("a{{/* the canary's namespace */}}b"), "ab");
    EXPECT_EQ(render("a {{- /* c */ -}} b"), "ab");
}

TEST(RenderQuery, TextWithoutPlaceholdersIsUnchanged) {
    EXPECT_EQ(render(""), "");
    EXPECT_EQ(render("up{job=\"x\"} } {"), "up{job=\"x\"} } {");
}

TEST(RenderQuery, UnknownPlaceholdersAreErrors) {
    for (std::string t : {"{{ namespaces }}", "{{ .Namespace }}", "{{ routes }}", "{{ }}",
                          "{{ if true }}x{{ end }}", "{{ namespace | printf }}", "{{-3}}"}) {
        std::string e = renderError(t);
        EXPECT_NE(e.find("unknown placeholder"), std::string::npos) << t << ": " << e;
    }
    EXPECT_NE(renderError("a {{ target }} {{ bogus }}").find("offset 15"), std::string::npos);
}

TEST(RenderQuery, MissingVariableIsAnError) {
    std::string e = renderError("{{ variables.missing }}");
    EXPECT_NE(e.find("\"missing\""), std::string::npos) << e;
    e = renderError("{{ variables.bad-name }}");
    EXPECT_NE(e.find("variable names"), std::string::npos) << e;
    renderError("{{ variables. }}");
}

TEST(RenderQuery, EmptyValueIsAnError) {
    TemplateModel m = model();
    m.ingress.clear();
    std::string e = renderError("{{ ingress }}", m);
    EXPECT_NE(e.find("no ingressRef"), std::string::npos) << e;
    m = model();
    m.variables["empty"] = "";
    renderError("{{ variables.empty }}", m);
    // Unused empty fields do not matter.
    m.ingress.clear();
    EXPECT_EQ(render("{{ namespace }}", m), "prod");
}

TEST(RenderQuery, UnterminatedAction) {
    std::string e = renderError("x{{ namespace ");
    EXPECT_NE(e.find("without a closing"), std::string::npos) << e;
}

TEST(PromDuration, FormatsRanges) {
    using namespace std::chrono;
    EXPECT_EQ(promDuration(minutes(1)), "1m");
    EXPECT_EQ(promDuration(seconds(30)), "30s");
    EXPECT_EQ(promDuration(seconds(90)), "1m30s");
    EXPECT_EQ(promDuration(hours(2)), "2h");
    EXPECT_EQ(promDuration(milliseconds(1500)), "1s500ms");
    EXPECT_EQ(promDuration(hours(1) + seconds(5)), "1h5s");
    EXPECT_EQ(promDuration(milliseconds(0)), "0s");
}

}  // namespace
}  // namespace sluice::metricprovider
