#!/usr/bin/env bash
# The Helm chart (docker/chart): helm lint is clean in both modes; the
# deployment examples (docker/examples) are what it renders; and the real
# kube-apiserver accepts it by server-side dry run (schema, defaults,
# admission) in shared mode with every option on (ServiceMonitor,
# PrometheusRule against prometheus-operator's CRDs, Grafana dashboard) and in
# sidecar mode, included by a controller's chart.
source "$(dirname "$0")/lib.sh"
K=$ADMIN_KUBECONFIG
helm() { "$ROOT/tools/helm" "$@"; }
work=$(mktemp -d)
crds=()
cleanup() {
  ((${#crds[@]})) && kubectl --kubeconfig "$K" delete --ignore-not-found -f "${crds[0]}" -f "${crds[1]}" >/dev/null 2>&1
  rm -rf "$work"; rm -f "$_log"
}
trap cleanup EXIT
chart=$ROOT/docker/chart
all_on=(--set metrics.serviceMonitor.enabled=true --set metrics.prometheusRule.enabled=true
  --set metrics.grafanaDashboard.enabled=true)

check "helm lint --strict: shared mode, defaults" helm lint --strict "$chart"
check "helm lint --strict: shared mode, every option on" helm lint --strict "$chart" "${all_on[@]}" \
  --set warmRestart=true --set maxStaleness=2m --set podAntiAffinity=hard --set tls.secretName=
check "helm lint --strict: sidecar mode" helm lint --strict "$chart" --set mode=sidecar
check "helm template refuses an unknown podAntiAffinity" fails helm template "$chart" --set podAntiAffinity=maybe
check "docker/examples/{shared,sidecar}.yaml are what the chart renders (tools/chart-examples)" \
  "$ROOT/tools/chart-examples" --check

# prometheus-operator's CRDs, from its Go module, for the dry run of the
# ServiceMonitor and the PrometheusRule (removed again at the end).
operator=github.com/prometheus-operator/prometheus-operator@v0.94.0
crd_dir=$(cd "$work" && go mod download -json "$operator" | jq -r .Dir)/example/prometheus-operator-crd
crds=("$crd_dir/monitoring.coreos.com_servicemonitors.yaml" "$crd_dir/monitoring.coreos.com_prometheusrules.yaml")
crds_established() {
  kubectl --kubeconfig "$K" apply --server-side -f "${crds[0]}" -f "${crds[1]}" &&
    kubectl --kubeconfig "$K" wait --for condition=established --timeout 60s \
      crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com
}
check "prometheus-operator's ServiceMonitor and PrometheusRule CRDs ($operator)" crds_established
# A dry run cannot create into a namespace that does not exist yet.
check "the shared proxy's namespace exists" bash -c \
  "kubectl --kubeconfig '$K' create namespace kube-cache-proxy --dry-run=client -o yaml | kubectl --kubeconfig '$K' apply -f -"

dry_run() { # FILE: every object accepted by kube-apiserver's server-side dry run
  kubectl --kubeconfig "$K" apply --dry-run=server -f "$1"
}
helm template kube-cache-proxy "$chart" --namespace kube-cache-proxy "${all_on[@]}" >"$work/shared.yaml"
check "shared mode, every option on: kubectl apply --dry-run=server accepts it" dry_run "$work/shared.yaml"
kinds() { # FILE KIND...: FILE holds each KIND
  local f=$1; shift
  for k in "$@"; do grep -q "^kind: $k$" "$f" || { echo "no $k"; return 1; }; done
}
check "... which holds the Deployment, Service, RBAC, PDB, ServiceMonitor, PrometheusRule and dashboard" \
  kinds "$work/shared.yaml" Deployment Service ServiceAccount ClusterRole ClusterRoleBinding \
  PodDisruptionBudget ServiceMonitor PrometheusRule ConfigMap
check "shared mode: helm install --dry-run=server against the cluster" \
  helm install kube-cache-proxy "$chart" --namespace kube-cache-proxy --dry-run=server --kubeconfig "$K" "${all_on[@]}"

# Sidecar mode: the example controller chart including the sidecar.
mkdir -p "$work/docker/examples"
cp -r "$chart" "$work/docker/"
cp -r "$ROOT/docker/examples/sidecar-chart" "$work/docker/examples/"
helm dependency update "$work/docker/examples/sidecar-chart" >/dev/null
helm template my-controller "$work/docker/examples/sidecar-chart" --namespace default \
  --set kube-cache-proxy.metrics.prometheusRule.enabled=true >"$work/sidecar.yaml"
check "sidecar mode, in a controller's chart: kubectl apply --dry-run=server accepts it" dry_run "$work/sidecar.yaml"
sidecar_pod() {
  /usr/bin/python3 - "$work/sidecar.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dep = next(d for d in docs if d["kind"] == "Deployment")
spec = dep["spec"]["template"]["spec"]
names = [c["name"] for c in spec["containers"]]
proxy = next(c for c in spec["containers"] if c["name"] == "kube-cache-proxy")
cm = next(d for d in docs if d["kind"] == "ConfigMap")
vols = {v["name"]: v for v in spec["volumes"]}
assert names == ["controller", "kube-cache-proxy"], names
assert "--auth-mode=trust-local" in proxy["args"], proxy["args"]
assert vols["kube-cache-proxy-client"]["configMap"]["name"] == cm["metadata"]["name"], (vols, cm)
assert "http://127.0.0.1:8080" in cm["data"]["kubeconfig.yaml"]
assert any(d["kind"] == "PrometheusRule" for d in docs)
assert not any(d["kind"] in ("Service", "ClusterRole") for d in docs), "shared-mode objects in sidecar mode"
print("controller + sidecar, kubeconfig", cm["metadata"]["name"])
PY
}
check "... the controller's pod has the proxy container and the kubeconfig pointing at it, nothing of shared mode" sidecar_pod
check "sidecar mode: helm install --dry-run=server against the cluster" \
  helm install my-controller "$work/docker/examples/sidecar-chart" --namespace default --dry-run=server --kubeconfig "$K"
finish
