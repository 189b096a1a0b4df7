{{- define "sqrt.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sqrt.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sqrt.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sqrt.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sqrt.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "sqrt.labels" -}}
helm.sh/chart: {{ include "sqrt.chart" .root }}
{{ include "sqrt.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: resilience-lab
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{- define "sqrt.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "sqrt.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{- define "sqrt.kubeMonkeyLabels" -}}
{{- if .Values.kubeMonkey.enabled }}
kube-monkey/enabled: enabled
kube-monkey/identifier: {{ include "sqrt.fullname" . }}
kube-monkey/mtbf: {{ .Values.kubeMonkey.mtbf | quote }}
kube-monkey/kill-mode: {{ .Values.kubeMonkey.killMode | quote }}
kube-monkey/kill-value: {{ .Values.kubeMonkey.killValue | quote }}
{{- end }}
{{- end }}

{{- define "sqrt.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}
