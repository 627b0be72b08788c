{{- define "lhb.name" -}}lighthouse-bridge{{- end -}}

{{- define "lhb.fullname" -}}
{{- if contains "lighthouse-bridge" .Release.Name -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}{{- else -}}{{ printf "%s-lighthouse-bridge" .Release.Name | trunc 50 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "lhb.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end -}}

{{- define "lhb.labels" -}}
app.kubernetes.io/name: {{ include "lhb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "lhb.selector" -}}
app.kubernetes.io/name: {{ include "lhb.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The Redis URL as environment variable .name (the operator reads LHB_REDIS_URL, the node plugin LHB_STORE). */}}
{{- define "lhb.redisEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.redis.existingSecret | default (printf "%s-redis" (include "lhb.fullname" .root)) }}
      key: {{ if .root.Values.redis.existingSecret }}{{ .root.Values.redis.existingSecretKey }}{{ else }}url{{ end }}
{{- end -}}
