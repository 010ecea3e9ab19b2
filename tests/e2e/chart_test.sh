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
  --set warmRestart=true --set maxStaleness=2m --set podAntiAffinity=hard --set logFormat=json \
  --set logVerbosity=2 --set 'extraArgs={--consistent-read-wait=1s}'
check "helm lint --strict: sidecar mode" helm lint --strict "$chart" --set mode=sidecar
refuses() { # MESSAGE HELM-TEMPLATE-ARGS...: the chart fails to render, saying MESSAGE
  local want=$1; shift
  local out; out=$(helm template "$chart" "$@" 2>&1) && { echo "rendered"; return 1; }
  grep -F -- "$want" <<<"$out" || { echo "$out"; return 1; }
}
check "helm template refuses: an unknown mode" refuses "mode: shared or sidecar" --set mode=both
check "... an unknown podAntiAffinity" refuses "podAntiAffinity: soft, hard or none" --set podAntiAffinity=maybe
check "... shared mode without a serving certificate Secret" refuses "tls.secretName:" --set tls.secretName=
check "... the ClusterRole for the namespace's default service account" refuses "serviceAccount.name:" \
  --set serviceAccount.create=false
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
helm template kube-cache-proxy "$chart" --namespace kube-cache-proxy "${all_on[@]}" --set warmRestart=true \
  --set maxStaleness=2m --set logFormat=json --set logVerbosity=2 --set 'extraArgs={--consistent-read-wait=1s}' \
  >"$work/shared.yaml"
check "shared mode, every option on: kubectl apply --dry-run=server accepts it" dry_run "$work/shared.yaml"
kinds() { # FILE KIND...: FILE holds each KIND
  local f=$1; shift
  for k in "$@"; do grep -q "^kind: $k$" "$f" || { echo "no $k"; return 1; }; done
}
check "... which holds the Deployment, Service, RBAC, PDB, ServiceMonitor, PrometheusRule and dashboard" \
  kinds "$work/shared.yaml" Deployment Service ServiceAccount ClusterRole ClusterRoleBinding \
  PodDisruptionBudget ServiceMonitor PrometheusRule
check "... the dashboard's ConfigMap holds files/kube-cache-proxy-dashboard.json, and no pod scrape annotations beside the ServiceMonitor" \
  bash -c "grep -q '^  name: kube-cache-proxy-dashboard$' '$work/shared.yaml' && grep -q '\"uid\": \"kube-cache-proxy\"' '$work/shared.yaml' && ! grep -q 'prometheus.io/scrape' '$work/shared.yaml'"
# The proxy itself takes what the chart renders: its container's args, with
# the pod's paths and ports mapped to this machine's, start a proxy (the
# sanitizer build) in front of the test cluster that gets ready.
PROXY_BIN=${PROXY_BIN:-$ROOT/build/kube-cache-proxy}
starts_as_rendered() { # FILE CONTAINER
  local state; state=$(mktemp -d -p "$work")
  local out; out=$(/usr/bin/python3 - "$1" "$2" "$state" "$CA_FILE" "$KCLUSTER_DIR/pki" <<'PY'
import re, socket, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dep = next(d for d in docs if d["kind"] == "Deployment")
c = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == sys.argv[2])
paths = {"/var/run/secrets/kubernetes.io/serviceaccount/ca.crt": sys.argv[4],
         "/etc/kube-cache-proxy/tls/tls.crt": sys.argv[5] + "/apiserver.crt",
         "/etc/kube-cache-proxy/tls/tls.key": sys.argv[5] + "/apiserver.key",
         "/var/lib/kube-cache-proxy": sys.argv[3]}
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); return s.getsockname()[1]
args, admin = [], None
for a in c["args"]:
    m = re.match(r"^(--[a-z-]+=)(?:0\.0\.0\.0|127\.0\.0\.1):\d+$", a)
    if m:
        port = free_port()
        admin = port if m.group(1) == "--admin-listen=" else admin
        a = f"{m.group(1)}127.0.0.1:{port}"
    for pod_path, here in paths.items():
        a = a.replace(pod_path, here)
    args.append(a)
print(admin)
print("\n".join(args))
PY
  ) || return 1
  local admin; admin=$(head -1 <<<"$out")
  mapfile -t args < <(tail -n +2 <<<"$out")
  echo "kube-cache-proxy ${args[*]}"
  "$PROXY_BIN" "${args[@]}" --upstream-kubeconfig "$K" >"$state/log" 2>&1 &
  local pid=$! ok=1
  for _ in $(seq 150); do
    curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && { ok=0; break; }
    running $pid || break
    sleep 0.2
  done
  kill $pid 2>/dev/null; wait $pid 2>/dev/null
  ((ok == 0)) || tail -5 "$state/log"
  return $ok
}
check "shared mode, every option on: the proxy starts with the args the chart renders and gets ready" \
  starts_as_rendered "$work/shared.yaml" kube-cache-proxy
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
check "sidecar mode: the proxy starts with the sidecar's rendered args and gets ready" \
  starts_as_rendered "$work/sidecar.yaml" kube-cache-proxy
check "sidecar mode: helm install --dry-run=server against the cluster" \
  helm install my-controller "$work/docker/examples/sidecar-chart" --namespace default --dry-run=server --kubeconfig "$K"
finish
