{{/*
The templates of this chart keep to a small subset of Helm's template language, so that
tests/install can render them without Helm and compare the result with manifests/install.yaml:
  - fields: .Values.*, .Release.Name, .Release.Namespace, .Release.Service, .Chart.Name,
    .Chart.Version, .Chart.AppVersion, .Files.Get "path", "." and "$"
  - actions: define, include, if / else / end, with / end, range / end (over lists),
    comments, and "{{-" / "-}}" whitespace trimming
  - functions: toYaml, nindent, indent, quote, default, not, and, or, eq, ne, gt, int
Anything else (printf, tpl, lookup, sprig functions, else-if, variables) is not understood by
that renderer: the test fails rather than guessing.
*/}}

{{/* Name of every object of a release: <release>-controller. */}}
{{- define "sluice.fullname" -}}
{{ .Release.Name }}-controller
{{- end }}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-controller
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sluice.labels" -}}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: sluice
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/* "true" when the controller runs with --leader-elect: asked for, or more than one replica. */}}
{{- define "sluice.leaderElect" -}}
{{ or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}
{{- end }}
