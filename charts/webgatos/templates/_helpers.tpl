{{- define "webgatos.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name; kept short so that suffixes such as "-hazelcast-headless" still fit in 63. */}}
{{- define "webgatos.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "webgatos.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of one component (web, redis, hazelcast): never overlap between components. */}}
{{- define "webgatos.selectorLabels" -}}
app.kubernetes.io/name: {{ include "webgatos.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "webgatos.labels" -}}
helm.sh/chart: {{ include "webgatos.chart" .root }}
{{ include "webgatos.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: resilience-lab
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{- define "webgatos.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "webgatos.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "webgatos.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "webgatos.serviceHost" -}}
{{- printf "%s.%s.svc.cluster.local" (include "webgatos.fullname" .) .Release.Namespace }}
{{- end }}

{{- define "webgatos.secretName" -}}
{{- default (include "webgatos.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* The Secret holding the admin API's token: the user's, or the one the chart generates. */}}
{{- define "webgatos.adminSecretName" -}}
{{- default (printf "%s-admin" (include "webgatos.fullname" .)) .Values.adminApi.existingSecret }}
{{- end }}

{{- define "webgatos.redis.fullname" -}}
{{- printf "%s-redis" (include "webgatos.fullname" .) }}
{{- end }}

{{- define "webgatos.redis.secretName" -}}
{{- default (include "webgatos.redis.fullname" .) .Values.sessionStore.redis.existingSecret }}
{{- end }}

{{- define "webgatos.hazelcast.fullname" -}}
{{- printf "%s-hazelcast" (include "webgatos.fullname" .) }}
{{- end }}

{{- define "webgatos.redis.enabled" -}}
{{- if and (eq .Values.sessionStore.type "redis") .Values.sessionStore.redis.bundled }}true{{ end }}
{{- end }}

{{- define "webgatos.hazelcast.enabled" -}}
{{- if and (eq .Values.sessionStore.type "hazelcast") .Values.sessionStore.hazelcast.bundled }}true{{ end }}
{{- end }}

{{/* Replicas that normally run: the HPA's minimum when it is on. */}}
{{- define "webgatos.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{/*
Reuse a generated secret value across upgrades: read it back from the cluster (lookup) and only
generate a new random one on first install. `helm template` has no cluster, so it generates.
*/}}
{{- define "webgatos.persistentRandom" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name }}
{{- if and $existing (index ($existing.data | default dict) .key) }}
{{- index $existing.data .key }}
{{- else }}
{{- randAlphaNum 48 | b64enc }}
{{- end }}
{{- end }}

{{/* kube-monkey opt-in labels (Deployment and pod template). */}}
{{- define "webgatos.kubeMonkeyLabels" -}}
{{- if .Values.kubeMonkey.enabled }}
kube-monkey/enabled: enabled
kube-monkey/identifier: {{ include "webgatos.fullname" . }}
kube-monkey/mtbf: {{ .Values.kubeMonkey.mtbf | quote }}
kube-monkey/kill-mode: {{ .Values.kubeMonkey.killMode | quote }}
kube-monkey/kill-value: {{ .Values.kubeMonkey.killValue | quote }}
{{- end }}
{{- end }}

{{/* Rules no schema can express; each failure says what to change. */}}
{{- define "webgatos.validate" -}}
{{- $vs := .Values.istio.virtualService }}
{{- if and $vs.retries.enabled (or $vs.fault.abort.enabled $vs.fault.delay.enabled) }}
{{- fail "istio.virtualService.fault (abort/delay) cannot be combined with istio.virtualService.retries.enabled=true: Istio ignores retries on a route that has a fault (istio/istio#13705). To show retries masking errors, inject them in the app with faults.errorRate / faults.delaySeconds; to show a raw mesh fault, set istio.virtualService.retries.enabled=false." }}
{{- end }}
{{- if and (eq .Values.sessionStore.type "memory") (gt (int .Values.gunicorn.workers) 1) }}
{{- fail "gunicorn.workers > 1 with sessionStore.type=memory: each worker process would keep its own sessions; use gunicorn.threads to scale a replica, or sessionStore.type=redis|hazelcast." }}
{{- end }}
{{- if and (eq .Values.sessionStore.type "redis") (not .Values.sessionStore.redis.bundled) (not .Values.sessionStore.redis.external.host) }}
{{- fail "sessionStore.redis.bundled=false needs sessionStore.redis.external.host (the external Redis to use)." }}
{{- end }}
{{- if and (eq .Values.sessionStore.type "hazelcast") (not .Values.sessionStore.hazelcast.bundled) (not .Values.sessionStore.hazelcast.external.members) }}
{{- fail "sessionStore.hazelcast.bundled=false needs sessionStore.hazelcast.external.members (host:port,...)." }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas." }}
{{- end }}
{{- range .Values.istio.gateway.publicPaths }}
{{- $path := lower (trimSuffix "*" .) }}
{{- $prefix := hasSuffix "*" . }}
{{- range list "/admin" "/metrics" }}
{{- if or (hasPrefix . $path) (and $prefix (hasPrefix $path .)) }}
{{- fail (printf "istio.gateway.publicPaths: a public path must not route %s through the gateway: list only public paths, e.g. \"/\", \"/api/*\", \"/static/*\"." .) }}
{{- end }}
{{- end }}
{{- end }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and $pdb.enabled (not (kindIs "invalid" $pdb.maxUnavailable)) (not (kindIs "invalid" $pdb.minAvailable)) }}
{{- fail "podDisruptionBudget: set only one of maxUnavailable and minAvailable (set the other to null)." }}
{{- end }}
{{- if and $pdb.enabled (kindIs "invalid" $pdb.maxUnavailable) (kindIs "invalid" $pdb.minAvailable) }}
{{- fail "podDisruptionBudget.enabled=true needs maxUnavailable or minAvailable." }}
{{- end }}
{{- if and $pdb.enabled (not (kindIs "invalid" $pdb.minAvailable)) (not (kindIs "string" $pdb.minAvailable)) (ge (int $pdb.minAvailable) (int (include "webgatos.minReplicas" .))) }}
{{- fail (printf "podDisruptionBudget.minAvailable=%v would block every eviction with %s replicas: use a smaller value or maxUnavailable." $pdb.minAvailable (include "webgatos.minReplicas" .)) }}
{{- end }}
{{- if and $pdb.enabled (kindIs "string" $pdb.minAvailable) (eq $pdb.minAvailable "100%") }}
{{- fail "podDisruptionBudget.minAvailable=100% would block every eviction: use a smaller value or maxUnavailable." }}
{{- end }}
{{- if and $pdb.enabled (kindIs "string" $pdb.maxUnavailable) (eq $pdb.maxUnavailable "0%") }}
{{- fail "podDisruptionBudget.maxUnavailable=0% would block every eviction: use at least 1 or a positive percentage." }}
{{- end }}
{{- end }}
