{{/*
The kubeconfig a client of the proxy uses. Shared mode: the Service, with the
client's own credentials (here a projected service-account token, as in a
pod; mount the proxy's serving CA at /etc/kube-cache-proxy/ca.crt). Sidecar
mode: the proxy's cleartext loopback listener in the same pod, without
credentials (the proxy acts as the pod's service account).
*/}}
{{- define "kube-cache-proxy.clientKubeconfig" -}}
apiVersion: v1
kind: Config
clusters:
- name: kube-cache-proxy
  cluster:
    {{- if eq .Values.mode "shared" }}
    server: https://{{ include "kube-cache-proxy.fullname" . }}.{{ .Release.Namespace }}.svc:{{ .Values.service.port }}
    certificate-authority: /etc/kube-cache-proxy/ca.crt
    {{- else }}
    server: http://127.0.0.1:{{ .Values.sidecar.insecurePort }}
    {{- end }}
users:
{{- if eq .Values.mode "shared" }}
- name: in-cluster
  user:
    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
{{- else }}
- name: in-cluster
  user: {}
{{- end }}
contexts:
- name: kube-cache-proxy
  context: {cluster: kube-cache-proxy, user: in-cluster}
current-context: kube-cache-proxy
{{- end -}}
