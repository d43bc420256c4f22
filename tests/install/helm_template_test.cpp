// The Helm-subset renderer behind the chart tests: Go template semantics for each construct
// the chart uses, and errors (not guesses) for what it does not support.
#include <gtest/gtest.h>

#include "helm_template.h"

namespace sluice::testing::helm {
namespace {

using nlohmann::json;

std::string render(const std::string& text, const json& values = json::object(),
                   std::map<std::string, std::string> extra = {}) {
    extra["t.yaml"] = text;
    Engine e(extra, values, {{"name", "demo"}, {"version", "1.2.3"}, {"appVersion", "4.5.6"}},
             Release{"rel", "ns1"}, {{"files/a.txt", "line1\nline2\n"}});
    return e.render("t.yaml");
}

TEST(HelmTemplate, FieldsOfValuesReleaseAndChart) {
    EXPECT_EQ(render("{{ .Values.a.b }}/{{ .Release.Name }}/{{ .Release.Namespace }}/"
                     "{{ .Chart.Name }}-{{ .Chart.Version }}/{{ .Chart.AppVersion }}/"
                     "{{ .Release.Service }}",
                     {{"a", {{"b", "x"}}}}),
              "x/rel/ns1/demo-1.2.3/4.5.6/Helm");
    // A missing key prints nothing (Helm drops "<no value>"); a field of it is an error.
    EXPECT_EQ(render("[{{ .Values.missing }}]"), "[]");
    EXPECT_THROW(render("{{ .Values.missing.deeper }}"), TemplateError);
    // Numbers from values are float64 and print as Go prints them.
    EXPECT_EQ(render("{{ .Values.n }} {{ .Values.f }} {{ .Values.big }}",
                     {{"n", 3}, {"f", 2.5}, {"big", 1000000}}),
              "3 2.5 1e+06");
    EXPECT_EQ(render("{{ .Values.t }} {{ .Values.s }}", {{"t", true}, {"s", "str"}}), "true str");
    EXPECT_THROW(render("{{ .Values.m }}", {{"m", {{"k", 1}}}}), TemplateError);
}

TEST(HelmTemplate, TrimMarkersAndComments) {
    EXPECT_EQ(render("a  \n  {{- \"b\" -}}  \n  c"), "abc");
    EXPECT_EQ(render("a\n{{ \"b\" }}\nc"), "a\nb\nc");
    EXPECT_EQ(render("a\n{{- /* gone */ -}}\nc"), "ac");
    EXPECT_EQ(render("a{{/* a comment with }} inside */}}c"), "ac");
    // "{{-3}}" is the number -3, not a trim marker.
    EXPECT_EQ(render("a {{-3}}"), "a -3");
}

TEST(HelmTemplate, IfElseWithRange) {
    const std::string t = "{{- if .Values.on }}yes{{- else }}no{{- end }}";
    EXPECT_EQ(render(t, {{"on", true}}), "yes");
    EXPECT_EQ(render(t, {{"on", false}}), "no");
    // Go's truth: empty strings, lists, maps and zero are false.
    for (const json& falsy : {json(""), json::array(), json::object(), json(0), json(nullptr)})
        EXPECT_EQ(render(t, {{"on", falsy}}), "no") << falsy.dump();
    EXPECT_EQ(render(t, {{"on", "x"}}), "yes");
    EXPECT_EQ(render("{{ with .Values.m }}{{ .k }}{{ else }}none{{ end }}", {{"m", {{"k", "v"}}}}),
              "v");
    EXPECT_EQ(render("{{ with .Values.m }}{{ .k }}{{ else }}none{{ end }}", {{"m", nullptr}}),
              "none");
    EXPECT_EQ(render("{{ range .Values.l }}[{{ . }}]{{ end }}", {{"l", {"a", "b"}}}), "[a][b]");
    // Maps range in key order; $ is the root inside.
    EXPECT_EQ(render("{{ range .Values.m }}{{ . }}{{ $.Release.Name }} {{ end }}",
                     {{"m", {{"b", "2"}, {"a", "1"}}}}),
              "1rel 2rel ");
    EXPECT_EQ(render("{{ range .Values.l }}x{{ else }}empty{{ end }}", {{"l", json::array()}}),
              "empty");
}

TEST(HelmTemplate, DefineIncludeAndTemplate) {
    std::map<std::string, std::string> helpers = {
        {"_h.tpl",
         "{{- define \"x.name\" -}}\n{{ .Release.Name }}-ctl\n{{- end }}\n"
         "{{- define \"x.labels\" -}}\nname: {{ include \"x.name\" . }}\nv: {{ .Chart.AppVersion "
         "| quote }}\n{{- end }}"}};
    EXPECT_EQ(render("metadata:\n  labels:\n    {{- include \"x.labels\" . | nindent 4 }}\n", {},
                     helpers),
              "metadata:\n  labels:\n    name: rel-ctl\n    v: \"4.5.6\"\n");
    EXPECT_EQ(render("{{ template \"x.name\" . }}", {}, helpers), "rel-ctl");
    EXPECT_THROW(render("{{ include \"nope\" . }}"), TemplateError);
}

TEST(HelmTemplate, Functions) {
    json v = {{"tag", ""},
              {"res", {{"limits", {{"memory", "1Gi"}}}, {"requests", {{"cpu", "100m"}}}}},
              {"env", json::array({{{"name", "A"}, {"value", "1"}}})},
              {"replicas", 2}};
    EXPECT_EQ(render("{{ .Values.tag | default .Chart.AppVersion }}", v), "4.5.6");
    EXPECT_EQ(render("{{ default \"d\" \"given\" }}"), "given");
    EXPECT_EQ(render("{{ \"a\\\"b\" | quote }}"), "\"a\\\"b\"");
    EXPECT_EQ(render("{{ quote true }}"), "\"true\"");
    EXPECT_EQ(render("r:\n  {{- toYaml .Values.res | nindent 2 }}", v),
              "r:\n  limits:\n    memory: 1Gi\n  requests:\n    cpu: 100m");
    EXPECT_EQ(render("{{ toYaml .Values.env | indent 2 }}", v), "  - name: A\n    value: \"1\"");
    EXPECT_EQ(render("{{ toYaml .Values.replicas }}", v), "2");
    EXPECT_EQ(render("{{ or false (gt (int .Values.replicas) 1) }}", v), "true");
    EXPECT_EQ(render("{{ and true 0 }} {{ or \"\" \"b\" }} {{ not \"\" }}"), "0 b true");
    EXPECT_EQ(render("{{ eq \"a\" \"b\" \"a\" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ ge 2 2 }}"),
              "true true true true");
    EXPECT_EQ(render("{{ int \"7\" }} {{ int .Values.replicas }}", v), "7 2");
    // As in Go: values are float64, literals int; comparing them is an error.
    EXPECT_THROW(render("{{ gt .Values.replicas 1 }}", v), TemplateError);
    EXPECT_EQ(render("{{ .Files.Get \"files/a.txt\" | nindent 2 }}"), "\n  line1\n  line2\n  ");
    EXPECT_THROW(render("{{ .Files.Get \"files/missing\" }}"), TemplateError);
}

TEST(HelmTemplate, UnsupportedConstructsAreErrors) {
    for (const char* t :
         {"{{ $x := 1 }}", "{{ printf \"%s\" \"a\" }}",
          "{{ if true }}a{{ else if false }}b{{ end }}", "{{ if true }}a", "{{ end }}",
          "{{ tpl \"x\" . }}", "{{ block \"b\" . }}{{ end }}", "{{ .Values.x", "{{ \"a\" \"b\" }}"})
        EXPECT_THROW(render(t), TemplateError) << t;
}

TEST(HelmTemplate, MergeValues) {
    json base = {{"a", {{"b", 1}, {"c", 2}}}, {"l", {1, 2}}};
    json merged = mergeValues(base, {{"a", {{"c", 3}}}, {"l", {9}}});
    EXPECT_EQ(merged, json({{"a", {{"b", 1}, {"c", 3}}}, {"l", {9}}}));
}

}  // namespace
}  // namespace sluice::testing::helm
