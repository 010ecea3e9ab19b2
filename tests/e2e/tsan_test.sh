#!/usr/bin/env bash
# The proxy's threaded parts (worker loops, shared metrics and credentials,
# the admin loop with the cache's reflector writing while workers serve
# cached LISTs and watches, shutdown) under ThreadSanitizer: concurrent clients on
# several workers, /metrics scraped meanwhile, then SIGTERM. No data race may
# be reported.
source "$(dirname "$0")/lib.sh"
BIN=${PROXY_TSAN_BIN:-$ROOT/build-tsan/kube-cache-proxy}
state=$(mktemp -d)
port=$(free_port) iport=$(free_port) aport=$(free_port)
TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1" "$BIN" --upstream-kubeconfig "$ADMIN_KUBECONFIG" \
  --state-dir "$state" --listen "127.0.0.1:$port" --listen-insecure "127.0.0.1:$iport" \
  --admin-listen "127.0.0.1:$aport" --workers 3 --shutdown-grace-period 3s --cache-resources configmaps \
  --write-kubeconfig "$state/proxy.kubeconfig" --write-kubeconfig-user-from "$ADMIN_KUBECONFIG" \
  --client-ca-file "$CA_FILE" \
  >"$state/proxy.log" 2>&1 &
proxy=$!
trap 'kill $proxy 2>/dev/null; wait $proxy 2>/dev/null; rm -rf "$state"; rm -f "$_log"' EXIT
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null && break; sleep 0.2; done

load() {
  local pids=()
  for i in $(seq 8); do
    "$KCLUSTER" informer --kubeconfig "$state/proxy.kubeconfig" --resource configmaps --timeout 60s >/dev/null &
    pids+=($!)
    curl -s "http://127.0.0.1:$iport/api/v1/namespaces?limit=1" >/dev/null &
    pids+=($!)
    curl -s -A kcp-tsan "http://127.0.0.1:$iport/api/v1/configmaps?resourceVersion=0" >/dev/null &  # from the cache
    pids+=($!)
    curl -s -A kcp-tsan "http://127.0.0.1:$iport/api/v1/configmaps?limit=5" >/dev/null &  # consistent, from the cache
    pids+=($!)
    timeout 5 curl -s -A kcp-tsan "http://127.0.0.1:$iport/api/v1/configmaps?watch=1&resourceVersion=0" >/dev/null &
    pids+=($!)
    curl -s "http://127.0.0.1:$aport/metrics" >/dev/null &
    pids+=($!)
  done
  local rc=0
  local s
  for p in "${pids[@]}"; do wait "$p"; s=$?; ((s == 0 || s == 124)) || rc=1; done  # 124: a watch timed out
  return $rc
}
"$KCLUSTER" churn --kubeconfig "$ADMIN_KUBECONFIG" --resource configmaps --rate 40 --duration 6s --namespace-prefix tsan >/dev/null 2>&1 &
churn=$!
check "concurrent informers, requests, cached LISTs during churn, and scrapes across 3 workers" load
wait $churn
check "SIGTERM with requests in flight drains and exits" bash -c \
  "timeout 5 curl -s -A kcp-tsan 'http://127.0.0.1:$iport/api/v1/configmaps?watch=1' >/dev/null & sleep 0.5; kill -TERM $proxy; \
   for i in \$(seq 100); do kill -0 $proxy 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
check "ThreadSanitizer reported no data race" bash -c "! grep -A30 'WARNING: ThreadSanitizer' '$state/proxy.log'"
finish
