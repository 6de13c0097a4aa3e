{{/* The chart's name, or nameOverride; 63 characters at most (a DNS label). */}}
{{- define "provider.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* fullnameOverride, else RELEASE-NAME (just RELEASE when it already holds NAME). */}}
{{- define "provider.fullname" -}}
{{- if .Values.fullnameOverride }}
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
app.kubernetes.io/name: {{ include "provider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "provider.labels" -}}
{{ include "provider.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: secrets-store-csi-driver
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "provider.serviceAccountName" -}}
{{- .Values.rbac.serviceAccountName | default (include "provider.fullname" .) }}
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
