{{/*
Values that lack this chart's own keys: `helm upgrade --reuse-values` of a release of the Go
provider's chart renders with that release's values only (Helm drops this chart's defaults then).
"provider.defaults" fills in every missing key from defaults.yaml (a link to values.yaml, so the
defaults are written once) and is included at the top of every template.
*/}}
{{- define "provider.defaults" -}}
{{- if not (hasKey .Values "__defaults") }}
{{- $merged := mergeOverwrite (fromYaml (.Files.Get "defaults.yaml")) (deepCopy .Values) }}
{{- $_ := set $merged "__defaults" true }}
{{- $_ := set . "Values" $merged }}
{{- end }}
{{- end }}

{{/*
A release of the Go provider's chart being upgraded to this one (or already upgraded): its DaemonSet,
named as that chart names it, exists in this release. This chart then keeps the Go chart's names
and the DaemonSet's selector (immutable), so that Helm updates the DaemonSet and its RBAC in place
(a rolling update, one node at a time) instead of deleting them and creating differently named ones.
Empty where the cluster is not asked (`helm template`, dry runs).
*/}}
{{- define "provider.goFullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := .Values.nameOverride | default "secrets-store-csi-driver-provider-aws" }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "provider.adopted" -}}
{{- $found := lookup "apps/v1" "DaemonSet" .Release.Namespace (include "provider.goFullname" .) }}
{{- if $found }}
{{- $annotations := $found.metadata.annotations | default dict }}
{{- if eq (index $annotations "meta.helm.sh/release-name" | default "") .Release.Name }}
{{- toJson $found }}
{{- end }}
{{- end }}
{{- end }}

{{/* The adopted DaemonSet still runs the Go provider: its pods need the Go chart's RBAC until replaced. */}}
{{- define "provider.goPodsRunning" -}}
{{- with include "provider.adopted" . }}
{{- $containers := (fromJson .).spec.template.spec.containers }}
{{- if eq (index $containers 0).name "provider-aws-installer" }}true{{ end }}
{{- end }}
{{- end }}

{{/* The chart's name, or nameOverride; 63 characters at most (a DNS label). */}}
{{- define "provider.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* fullnameOverride, else RELEASE-NAME (just RELEASE when it already holds NAME); the Go chart's
full name for an adopted release. */}}
{{- define "provider.fullname" -}}
{{- if include "provider.adopted" . }}
{{- include "provider.goFullname" . }}
{{- else if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "provider.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "provider.selectorLabels" -}}
{{- with include "provider.adopted" . }}
{{- toYaml (fromJson .).spec.selector.matchLabels }}
{{- else }}
app.kubernetes.io/name: {{ include "provider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
{{- end }}

{{- define "provider.labels" -}}
{{- $labels := dict
  "app.kubernetes.io/name" (include "provider.name" .)
  "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/version" (.Chart.AppVersion | toString)
  "app.kubernetes.io/managed-by" .Release.Service
  "app.kubernetes.io/part-of" "secrets-store-csi-driver"
  "helm.sh/chart" (printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-") }}
{{- toYaml (mergeOverwrite $labels (fromYaml (include "provider.selectorLabels" .)) (.Values.commonLabels | default dict)) }}
{{- end }}

{{- define "provider.serviceAccountName" -}}
{{- .Values.rbac.serviceAccountName | default (include "provider.fullname" .) }}
{{- end }}

{{/*
A Go chart release holds the Secrets Store CSI driver itself (its secrets-store-csi-driver.install,
true by default). This chart does not install the driver, so upgrading such a release would make
Helm delete the driver's DaemonSet, CSIDriver and RBAC. Refuse, unless they are marked to be kept.
*/}}
{{- define "provider.driverGuard" -}}
{{- $own := include "provider.fullname" . }}
{{- range (lookup "apps/v1" "DaemonSet" .Release.Namespace "").items | default list }}
{{- $annotations := .metadata.annotations | default dict }}
{{- if and (eq (index $annotations "meta.helm.sh/release-name" | default "") $.Release.Name) (ne .metadata.name $own) (ne (index $annotations "helm.sh/resource-policy" | default "") "keep") }}
{{- fail (printf "release %s also holds DaemonSet %s (the Secrets Store CSI driver, installed by the Go chart's secrets-store-csi-driver.install), which this chart does not install: this upgrade would delete it. Mark the driver's objects helm.sh/resource-policy=keep first (README: Moving from the Go chart's release)" $.Release.Name .metadata.name) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The container's environment: NODE_NAME, the Go chart's AWS_REGION and AWS_USE_FIPS_ENDPOINT, extraEnv. */}}
{{- define "provider.env" -}}
{{- if .Values.setNodeName }}
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
{{- end }}
{{- with .Values.awsRegion }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- if .Values.useFipsEndpoint }}
- name: AWS_USE_FIPS_ENDPOINT
  value: "true"
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* An HTTP probe on the `http` port, with the timings of its values (all but `enabled`). */}}
{{- define "provider.probe" -}}
httpGet:
  path: {{ .path }}
  port: http
{{- with omit .probe "enabled" }}
{{ toYaml . }}
{{- end }}
{{- end }}
