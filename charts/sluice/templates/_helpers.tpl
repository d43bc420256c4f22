{{/*
tests/install renders this chart with the real helm (the pinned copy scripts/install-deps.sh
installs) and compares the default output with manifests/install.yaml: a change here needs the
same change there.
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
