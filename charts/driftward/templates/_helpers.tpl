{{/* The chart's name, or nameOverride. */}}
{{- define "driftward.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object's name. */}}
{{- define "driftward.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object of the release. */}}
{{- define "driftward.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "driftward.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: driftward
{{- end }}

{{/* Labels on the operator's own objects. */}}
{{- define "driftward.labels" -}}
{{ include "driftward.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels on the monitoring objects (ServiceMonitor, PodMonitor, rules, dashboard). */}}
{{- define "driftward.monitoringLabels" -}}
{{ include "driftward.commonLabels" . }}
app.kubernetes.io/component: monitoring
{{- end }}

{{/* The operator pods' selector. */}}
{{- define "driftward.selectorLabels" -}}
app.kubernetes.io/name: {{ include "driftward.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "driftward.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "driftward.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "driftward.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "driftward.peeringName" -}}
{{- default (include "driftward.fullname" .) .Values.operator.peering.name }}
{{- end }}

{{/* The operator's RBAC rules, declared once in files/operator-rbac.yaml. */}}
{{- define "driftward.rbacRules" -}}
{{- .Files.Get "files/operator-rbac.yaml" | fromYaml | toJson }}
{{- end }}

{{/*
Cross-field rules that values.schema.json cannot say clearly. Each message
names the field, the value and what is allowed.
*/}}
{{- define "driftward.validate" -}}
{{- $op := .Values.operator }}
{{- if and (not $op.peering.enabled) (gt (int $op.replicas) 1) }}
{{- fail (printf "operator.replicas is %d but operator.peering.enabled is false: without peering every replica would act on every model; set operator.replicas: 1 or operator.peering.enabled: true" (int $op.replicas)) }}
{{- end }}
{{- if eq (int $op.livenessPort) (int $op.httpPort) }}
{{- fail (printf "operator.livenessPort and operator.httpPort are both %d; they must differ" (int $op.livenessPort)) }}
{{- end }}
{{- if ne (len $op.watchNamespaces) (len (uniq $op.watchNamespaces)) }}
{{- fail (printf "operator.watchNamespaces lists a namespace twice: %v; list each namespace once" $op.watchNamespaces) }}
{{- end }}
{{- end }}
