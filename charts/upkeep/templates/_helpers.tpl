{{/*
The chart name, or nameOverride.
*/}}
{{- define "upkeep.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's resources: fullnameOverride, else the release name, plus
the chart name unless the release name already contains it. Truncated to 63 characters
(the DNS label limit).
*/}}
{{- define "upkeep.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "upkeep.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "upkeep.labels" -}}
helm.sh/chart: {{ include "upkeep.chart" . }}
{{ include "upkeep.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: upkeep
{{- end }}

{{/*
Labels that select the operator's pods (immutable once deployed).
*/}}
{{- define "upkeep.selectorLabels" -}}
app.kubernetes.io/name: {{ include "upkeep.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the operator runs as.
*/}}
{{- define "upkeep.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "upkeep.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image reference; the tag defaults to the chart's appVersion.
*/}}
{{- define "upkeep.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The rules the operator needs in every namespace it watches. Least privilege: the
user-facing kinds are read and patched (finalizers, annotations) but never created or
deleted; UpgradeTasks are the operator's own children; Secrets are read by name only.
*/}}
{{- define "upkeep.operatorRules" -}}
- apiGroups: ["upkeep.dev"]
  resources: ["maintenancewindows", "devices", "firmwareupgrades", "devicepatches", "patchjobs"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["upkeep.dev"]
  resources: ["maintenancewindows/status", "devices/status", "firmwareupgrades/status", "devicepatches/status", "patchjobs/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["upkeep.dev"]
  resources: ["upgradetasks"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["upkeep.dev"]
  resources: ["upgradetasks/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
{{- end }}
