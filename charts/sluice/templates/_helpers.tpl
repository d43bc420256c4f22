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

{{/*
Number of controller pods: controller.replicas, or the deprecated top-level replicas when it is
set and controller.replicas is left at 1.
*/}}
{{- define "sluice.replicas" -}}
{{- if and (hasKey .Values "replicas") (eq (int .Values.controller.replicas) 1) -}}
{{ int .Values.replicas }}
{{- else -}}
{{ int .Values.controller.replicas }}
{{- end -}}
{{- end }}

{{/* "true" when the replicas split the work through Leases (--sharding leases). */}}
{{- define "sluice.sharding" -}}
{{ and (gt (int (include "sluice.replicas" .)) 1) (eq (toString .Values.controller.sharding) "leases") }}
{{- end }}

{{/*
"true" when the controller runs with --leader-elect: asked for with one replica, or several
replicas with controller.sharding=none (one active, the others standbys). Never with sharding.
*/}}
{{- define "sluice.leaderElect" -}}
{{ and (ne (include "sluice.sharding" .) "true") (or .Values.leaderElection.enabled (gt (int (include "sluice.replicas" .)) 1)) }}
{{- end }}
