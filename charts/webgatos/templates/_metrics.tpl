{{/* Prometheus' conventional Pod annotations (metrics.annotations): where a Prometheus with the
usual kubernetes_sd relabelling finds each Pod's /metrics. */}}
{{- define "webgatos.metricsAnnotations" -}}
{{- if .Values.metrics.annotations.enabled }}
prometheus.io/scrape: "true"
prometheus.io/port: "8080"
prometheus.io/path: /metrics
{{- end }}
{{- end }}
