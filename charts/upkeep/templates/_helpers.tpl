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
Hosts are the agents' (and their owners'): the PatchJob controller reads them and writes
only their status (status.heldBy, with its own field manager); it reads the agents' Leases
(upkeep-host-<name>) to tell an agent online.
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
- apiGroups: ["upkeep.dev"]
  resources: ["hosts"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["upkeep.dev"]
  resources: ["hosts/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "list", "watch"]
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

{{/*
The cluster-wide rules the PatchJob controller needs to drain nodes, whatever namespaces it
watches: a drained node's pods belong to every namespace. Nodes are read and patched (cordon,
uncordon, the annotation naming the task that cordoned it), never deleted; pods
are listed by node and evicted through the Eviction API (so PodDisruptionBudgets hold), never
read one by one or deleted; budgets are listed to name the one that refused an eviction.
src/controller/patch_task.rs and host.rs make exactly these calls.
*/}}
{{- define "upkeep.drainRules" -}}
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["pods/eviction"]
  verbs: ["create"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch"]
{{- end }}

{{/*
The host agent's names: its DaemonSet and Role, its ServiceAccount, the namespace of its Hosts
(and their Leases, PatchJobs and UpgradeTasks), and its image.
*/}}
{{- define "upkeep.agentName" -}}
{{- printf "%s-agent" (include "upkeep.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "upkeep.agentServiceAccountName" -}}
{{- default (include "upkeep.agentName" .) .Values.agent.serviceAccount.name }}
{{- end }}

{{- define "upkeep.agentNamespace" -}}
{{- default .Release.Namespace .Values.agent.namespace }}
{{- end }}

{{- define "upkeep.agentImage" -}}
{{- $repository := default .Values.image.repository .Values.agent.image.repository }}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.agent.image.tag }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/*
The username a machine outside the cluster authenticates as, without its host name:
system:serviceaccount:<release namespace>:upkeep-host-. Each external host's ServiceAccount is
upkeep-host-<name>, named like its Lease.
*/}}
{{- define "upkeep.externalHostUserPrefix" -}}
{{- printf "system:serviceaccount:%s:upkeep-host-" .Release.Namespace }}
{{- end }}

{{/*
Labels that select the agent's pods: a name of their own, so that the operator's Deployment,
Service and PodDisruptionBudget (which select upkeep.selectorLabels) never take them.
*/}}
{{- define "upkeep.agentSelectorLabels" -}}
app.kubernetes.io/name: {{ include "upkeep.name" . }}-agent
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end }}

{{- define "upkeep.agentLabels" -}}
helm.sh/chart: {{ include "upkeep.chart" . }}
{{ include "upkeep.agentSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: upkeep
{{- end }}

{{/*
Fails the render when the operator would not see the agents' Hosts: with watchNamespaces set,
the agent namespace must be one of them.
*/}}
{{- define "upkeep.checkAgentNamespace" -}}
{{- if and (or .Values.agent.enabled .Values.agent.externalHosts) .Values.watchNamespaces }}
{{- if not (has (include "upkeep.agentNamespace" .) .Values.watchNamespaces) }}
{{- fail (printf "agent.namespace %q is not in watchNamespaces %v: the operator would never see the agents' Hosts; add it to watchNamespaces, or set agent.namespace to one of them" (include "upkeep.agentNamespace" .) .Values.watchNamespaces) }}
{{- end }}
{{- end }}
{{- end }}
