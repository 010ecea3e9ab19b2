{{/*
Sidecar mode: what a controller's chart includes, with this chart as its
dependency (condition-free, mode: sidecar) and the dependency's context:

  containers:
  - name: my-controller
    ...
  {{- include "kube-cache-proxy.sidecar.container" (index .Subcharts "kube-cache-proxy") | nindent 2 }}
  volumes:
  {{- include "kube-cache-proxy.sidecar.volumes" (index .Subcharts "kube-cache-proxy") | nindent 2 }}

The controller's kubeconfig is the ConfigMap "<fullname>-client" this chart
renders ("<release>-kube-cache-proxy-client", or "<release>-client" when the
release name holds "kube-cache-proxy"). The proxy runs --auth-mode=trust-local: everything goes
upstream as the pod's service account, the controller's own; its cleartext
listener is on loopback, which only the pod's containers reach.
*/}}
{{- define "kube-cache-proxy.sidecar.container" -}}
- name: kube-cache-proxy
  image: {{ include "kube-cache-proxy.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
  - --auth-mode=trust-local
  - --listen=127.0.0.1:{{ .Values.sidecar.securePort }}
  - --listen-insecure=127.0.0.1:{{ .Values.sidecar.insecurePort }}
  - --admin-listen=0.0.0.0:{{ .Values.sidecar.adminPort }}  # probes and metrics only (the cache dump needs loopback)
  - --state-dir=/var/lib/kube-cache-proxy
  {{- if .Values.sidecar.cacheLazy }}
  - --cache-lazy=true  # caches what the controller reads, on its first read
  {{- end }}
  {{- with .Values.sidecar.cacheResources }}
  - --cache-resources={{ join "," . }}
  {{- end }}
  {{- with include "kube-cache-proxy.commonArgs" . | trim }}{{ . | nindent 2 }}{{ end }}
  ports:
  - {name: kcp-admin, containerPort: {{ .Values.sidecar.adminPort }}}
  readinessProbe:
    httpGet: {path: /readyz, port: kcp-admin}
  livenessProbe:
    httpGet: {path: /livez, port: kcp-admin}
  resources:
    {{- toYaml .Values.sidecar.resources | nindent 4 }}
  securityContext:
    {{- include "kube-cache-proxy.securityContext" . | nindent 4 }}
  volumeMounts:
  - {name: kube-cache-proxy-state, mountPath: /var/lib/kube-cache-proxy}
{{- end -}}

{{- define "kube-cache-proxy.sidecar.volumes" -}}
- name: kube-cache-proxy-state
  emptyDir: {}
- name: kube-cache-proxy-client
  configMap: {name: {{ include "kube-cache-proxy.fullname" . }}-client}
{{- end -}}
