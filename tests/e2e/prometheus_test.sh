#!/usr/bin/env bash
# A real Prometheus (Debian's) on loopback scrapes the proxy through a short
# churn and LIST load, with the chart's alert rules loaded: every query of
# the Grafana dashboard and every series of the alert rules returns data,
# the cache-served LIST rate moves, staleness is 0; then kube-apiserver is
# stopped past --max-staleness, KubeCacheProxyCacheStale fires, and it
# resolves once kube-apiserver is back.
source "$(dirname "$0")/lib.sh"
PROXY_BIN=${PROXY_BIN:-$ROOT/build/kube-cache-proxy}
K=$ADMIN_KUBECONFIG
RULES=$ROOT/docker/chart/files/kube-cache-proxy.rules.yaml
DASHBOARD=$ROOT/docker/chart/files/kube-cache-proxy-dashboard.json
work=$(mktemp -d)
aport=$(free_port) iport=$(free_port) pport=$(free_port)
prom=http://127.0.0.1:$pport
pids=()
cgroup=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  [[ -n $cgroup ]] && rmdir "$cgroup" 2>/dev/null
  "$KCLUSTER" up "$KCLUSTER_DIR" >/dev/null 2>&1  # kube-apiserver back, whatever happened
  rm -rf "$work"; rm -f "$_log"
}
trap cleanup EXIT
wait_for() { # SECONDS COMMAND...: until COMMAND succeeds
  local until=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do ((SECONDS < until)) || { "$@"; return 1; }; sleep 0.5; done
}
promql() { # EXPR: the query's result vector as JSON
  curl -sf --get --data-urlencode "query=$1" "$prom/api/v1/query" | jq -c '.data.result'
}
has_data() { [[ $(promql "$1") != "[]" ]] || { echo "no data for $1"; return 1; }; }

"$KCLUSTER" load --kubeconfig "$K" --resource configmaps --count 200 --namespaces 2 --namespace-prefix prom >/dev/null 2>&1

# The proxy under a memory limit, as in a pod, where this machine lets a test
# make a memory cgroup (v1 or v2); its limit is then a series too.
for dir in /sys/fs/cgroup/memory /sys/fs/cgroup; do
  cg=$dir/kcp-prometheus-test-$$
  limit_file=$cg/memory.limit_in_bytes; [[ $dir == /sys/fs/cgroup ]] && limit_file=$cg/memory.max
  if mkdir "$cg" 2>/dev/null; then
    if echo 8589934592 >"$limit_file" 2>/dev/null; then cgroup=$cg; break; fi
    rmdir "$cg"
  fi
done
may_be_empty=()
if [[ -z $cgroup ]]; then
  echo "  (no memory cgroup can be made here: the memory limit series is not required)"
  may_be_empty=(--may-be-empty kube_cache_proxy_memory_limit_bytes)
fi
# shellcheck disable=SC2016
sh -c '[ -z "$1" ] || echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh "$cgroup" \
  "$PROXY_BIN" --upstream-kubeconfig "$K" --state-dir "$work" --listen "127.0.0.1:$(free_port)" \
  --listen-insecure "127.0.0.1:$iport" --admin-listen "127.0.0.1:$aport" \
  --cache-resources configmaps,pods --max-staleness 5s --upstream-keepalive 2s \
  --max-request-header-bytes 16384 >"$work/proxy.log" 2>&1 &
pids+=($!)
cat >"$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$RULES"]
scrape_configs:
- job_name: kube-cache-proxy
  static_configs: [{targets: ["127.0.0.1:$aport"]}]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$pport" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)

ready() { curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null; }
check "the proxy is ready" wait_for 60 ready
check "Prometheus scrapes the proxy" wait_for 60 has_data 'up{job="kube-cache-proxy"} == 1'

# Load: writes to the cached configmaps, LISTs from the cache, a watch,
# forwarded requests, and one request refused by a limit.
"$KCLUSTER" churn --kubeconfig "$K" --resource configmaps --rate 20 --duration 12s --namespaces 2 \
  --namespace-prefix prom --seed 3 >/dev/null 2>&1 &
churn=$!
curl -s -A kcp-prometheus-test --max-time 30 \
  "http://127.0.0.1:$iport/api/v1/configmaps?watch=1&resourceVersion=0" >/dev/null &
pids+=($!)
big=$(head -c 20000 /dev/zero | tr '\0' a)
refused=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big" "http://127.0.0.1:$iport/api/v1/namespaces")
for _ in $(seq 40); do
  curl -sf -A kcp-prometheus-test -o /dev/null "http://127.0.0.1:$iport/api/v1/configmaps?resourceVersion=0"
  curl -sf -A kcp-prometheus-test -o /dev/null "http://127.0.0.1:$iport/api/v1/namespaces/prom-0/configmaps?limit=50"
  curl -sf -A kcp-prometheus-test -o /dev/null "http://127.0.0.1:$iport/api/v1/namespaces"
  sleep 0.25
done
wait $churn
check "a request over --max-request-header-bytes was refused (HTTP $refused)" test "$refused" = 431
check "the cache-served LIST rate moves" wait_for 30 has_data \
  'sum(rate(kube_cache_proxy_requests_total{verb="list",served_from="cache"}[30s])) > 0'
check "the cached resources' objects are counted" has_data 'kube_cache_proxy_cache_objects{resource="configmaps"} >= 200'
check "staleness is 0 while kube-apiserver is up" has_data 'max(kube_cache_proxy_cache_staleness_seconds) == 0'
check "a watch fed by the cache is open" has_data 'kube_cache_proxy_watches{served_from="cache"} > 0'
check "the limit rejection is counted" has_data 'kube_cache_proxy_limit_rejections_total{limit="header_bytes"} > 0'
check "every dashboard query and every alert rule's series returns data" \
  python3 "$ROOT/tests/monitoring/dashboard.py" query "$DASHBOARD" "$prom" --rules "$RULES" "${may_be_empty[@]}"
if [[ -n $cgroup ]]; then
  check "the memory limit of the proxy's cgroup is a series" has_data 'kube_cache_proxy_memory_limit_bytes == 8589934592'
fi
rules_loaded() { curl -sf "$prom/api/v1/rules" | jq -e '[.data.groups[].rules[].name] | length == 8'; }
check "Prometheus loaded the 8 alert rules" rules_loaded
stale_alert() { # STATE: firing or none
  local got; got=$(curl -sf "$prom/api/v1/alerts" |
    jq -r '[.data.alerts[] | select(.labels.alertname == "KubeCacheProxyCacheStale") | .state] | first // "none"')
  [[ $got == "$1" ]] || { echo "KubeCacheProxyCacheStale: $got"; return 1; }
}
check "no alert while kube-apiserver is up" stale_alert none

# The outage.
"$KCLUSTER" stop "$KCLUSTER_DIR" apiserver >/dev/null
check "kube-apiserver down: KubeCacheProxyCacheStale fires past --max-staleness (5s)" wait_for 60 stale_alert firing
check "... naming the stale resource (configmaps)" bash -c \
  "curl -sf '$prom/api/v1/alerts' | jq -e '[.data.alerts[] | select(.labels.alertname == \"KubeCacheProxyCacheStale\") | .labels.resource] | index(\"configmaps\") != null'"
"$KCLUSTER" up "$KCLUSTER_DIR" >/dev/null
check "kube-apiserver back: the alert resolves" wait_for 90 stale_alert none
check "staleness is 0 again" wait_for 30 has_data 'max(kube_cache_proxy_cache_staleness_seconds) == 0'
finish
