{{/* The release's name for its objects: the release name, with the chart's appended unless it holds it. */}}
{{- define "kube-cache-proxy.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kube-cache-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kube-cache-proxy.labels" -}}
{{ include "kube-cache-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kube-cache-proxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kube-cache-proxy.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kube-cache-proxy.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The flags both modes share, one list item per line. */}}
{{- define "kube-cache-proxy.commonArgs" -}}
{{- if .Values.maxStaleness }}
- --max-staleness={{ .Values.maxStaleness }}
{{- end }}
{{- if .Values.warmRestart }}
- --warm-restart=true
{{- end }}
{{- if .Values.logVerbosity }}
- -v={{ .Values.logVerbosity }}
{{- end }}
{{- if and .Values.logFormat (ne .Values.logFormat "text") }}
- --log-format={{ .Values.logFormat }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Restricted Pod Security on the container itself: a sidecar's pod may not set it. */}}
{{- define "kube-cache-proxy.securityContext" -}}
runAsNonRoot: true
seccompProfile: {type: RuntimeDefault}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}
