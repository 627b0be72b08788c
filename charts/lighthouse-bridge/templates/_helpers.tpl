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

{{/* The Secret and key holding the Redis URL: the user's, or the chart's (redis-secret.yaml). */}}
{{- define "lhb.redisUrlSecret" -}}{{ .Values.redis.existingSecret | default (printf "%s-redis" (include "lhb.fullname" .)) }}{{- end -}}

{{/*
The Redis URL as environment variable .name (the operator and backup read LHB_REDIS_URL, the node
plugin LHB_STORE), and with redis.tls.caSecret the CA file's path in LHB_REDIS_CA_FILE.
*/}}
{{- define "lhb.redisEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "lhb.redisUrlSecret" .root }}
      key: {{ if .root.Values.redis.existingSecret }}{{ .root.Values.redis.existingSecretKey }}{{ else }}url{{ end }}
{{- if .root.Values.redis.tls.caSecret }}
- name: LHB_REDIS_CA_FILE
  value: /etc/lighthouse-bridge/redis-ca/ca.crt
{{- end }}
{{- end -}}

{{/* The CA's volumeMount and volume, when redis.tls.caSecret is set (else nothing). */}}
{{- define "lhb.redisCaMount" -}}
{{- if .Values.redis.tls.caSecret }}
- { name: redis-ca, mountPath: /etc/lighthouse-bridge/redis-ca, readOnly: true }
{{- end }}
{{- end -}}
{{- define "lhb.redisCaVolume" -}}
{{- if .Values.redis.tls.caSecret }}
- name: redis-ca
  secret:
    secretName: {{ .Values.redis.tls.caSecret }}
    items: [{ key: {{ .Values.redis.tls.caSecretKey }}, path: ca.crt }]
{{- end }}
{{- end -}}

{{/* nodeSelector, tolerations and priorityClassName of a pod spec, from a component's values. */}}
{{- define "lhb.placement" -}}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
