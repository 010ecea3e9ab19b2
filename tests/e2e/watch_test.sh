#!/usr/bin/env bash
# WATCH from the cache: the same events as kube-apiserver sends (byte for
# byte from a resourceVersion; the same replayed state for watches that
# start with the current state), client-go informers with watch-list on and
# off equal to ground truth through a kube-apiserver restart, and one
# upstream watch per resource whatever the number of client watches.
source "$(dirname "$0")/lib.sh"
PROXY_BIN=${PROXY_BIN:-$ROOT/build/kube-cache-proxy}
state=$(mktemp -d)
K=$ADMIN_KUBECONFIG
"$KCLUSTER" load --kubeconfig "$K" --resource configmaps --count 200 --namespaces 2 --namespace-prefix wc --size 800 >/dev/null 2>&1
iport=$(free_port) aport=$(free_port)
"$PROXY_BIN" --upstream-kubeconfig "$K" --state-dir "$state" --listen "127.0.0.1:$(free_port)" \
  --listen-insecure "127.0.0.1:$iport" --admin-listen "127.0.0.1:$aport" --cache-resources configmaps \
  --shutdown-grace-period 2s >"$state/proxy.log" 2>&1 &
proxy=$!
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; kill $proxy 2>/dev/null; wait $proxy 2>/dev/null; rm -rf "$state"; rm -f "$_log"' EXIT
synced() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null && return 0; sleep 0.2; done; return 1; }
check "the proxy syncs its cache" synced
cleartext_kubeconfig "$state/proxy.kubeconfig" "$iport"

watch_conformance() { (cd "$ROOT/tests/e2e" && /usr/bin/python3 watch_conformance.py "$iport" "$aport" "$K" "$KCLUSTER" --seed "$1"); }
check "18 kinds of watch (metadata-only and protobuf too) through the proxy and directly during churn: the same events" watch_conformance 1

upstream_watches() {
  kubectl --kubeconfig "$K" get --raw /metrics |
    awk '/^apiserver_longrunning_requests\{/ && /resource="configmaps"/ && /verb="WATCH"/ {s += $2} END {print s + 0}'
}
served_watches() { curl -s "http://127.0.0.1:$aport/metrics" | awk '/^kube_cache_proxy_inflight_requests / {print $2}'; }
fan_out() {
  local base; base=$(upstream_watches)
  for i in $(seq 200); do
    curl -sN -A kcp-e2e --http2-prior-knowledge "http://127.0.0.1:$iport/api/v1/namespaces/wc-$((i % 2))/configmaps?watch=1&resourceVersion=0" >/dev/null &
    pids+=($!)
  done
  for i in $(seq 50); do
    curl -sN -A kcp-e2e "http://127.0.0.1:$iport/api/v1/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=0" >/dev/null &
    pids+=($!)
  done
  for _ in $(seq 100); do (($(served_watches) >= 250)) && break; sleep 0.2; done
  echo "client watches open on the proxy: $(served_watches); kube-apiserver configmap watches: $base before, $(upstream_watches) after"
  (($(served_watches) >= 250 && $(upstream_watches) == base))
}
check "250 client watches (HTTP/2 and HTTP/1.1) cost kube-apiserver no extra watch" fan_out
kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; pids=()

verified() { # MIN ARGS...
  local min=$1; shift
  local out; out=$("$KCLUSTER" informer "$@") || return 1
  echo "$out"
  jq -e --argjson min "$min" '.verified_objects >= $min' <<<"$out" >/dev/null
}
"$KCLUSTER" churn --kubeconfig "$K" --resource configmaps --rate 30 --duration 20s --namespaces 2 --namespace-prefix wc --seed 3 >/dev/null 2>&1 &
churn=$!
check "client-go informers through the proxy, watch-list on, equal ground truth during churn" \
  verified 200 --kubeconfig "$state/proxy.kubeconfig" --resource configmaps --count 2 --watch-list true --verify-against "$K"
check "and with watch-list off" \
  verified 200 --kubeconfig "$state/proxy.kubeconfig" --resource configmaps --watch-list false --verify-against "$K"
wait $churn
restarted_informers() {
  "$KCLUSTER" informer --kubeconfig "$state/proxy.kubeconfig" --resource configmaps --watch-list true \
    --verify-against "$K" --timeout 120s --hold 30s >"$state/informer.out" 2>&1 &
  local inf=$!
  sleep 4
  "$KCLUSTER" stop "$KCLUSTER_DIR" apiserver && "$KCLUSTER" up "$KCLUSTER_DIR" >/dev/null
  "$KCLUSTER" churn --kubeconfig "$K" --resource configmaps --rate 30 --duration 3s --namespaces 2 --namespace-prefix wc --seed 4 >/dev/null 2>&1
  wait $inf; local rc=$?
  cat "$state/informer.out"
  return $rc
}
check "an informer through the proxy across a kube-apiserver restart equals ground truth" restarted_informers

kubectl_same() { # kubectl get -o json through the proxy (from its cache) and directly: the same objects
  kubectl --kubeconfig "$state/proxy.kubeconfig" get configmaps -n wc-0 -o json >"$state/kubectl-proxy.json" &&
    kubectl --kubeconfig "$K" get configmaps -n wc-0 -o json >"$state/kubectl-direct.json" || return 1
  local a b; a=$(jq -c '[.items[] | [.metadata.name, .metadata.resourceVersion]]' "$state/kubectl-proxy.json")
  b=$(jq -c '[.items[] | [.metadata.name, .metadata.resourceVersion]]' "$state/kubectl-direct.json")
  echo "kubectl through the proxy: $(jq '.items | length' "$state/kubectl-proxy.json") configmaps; directly: $(jq '.items | length' "$state/kubectl-direct.json")"
  [[ $a == "$b" ]] && cmp -s "$state/kubectl-proxy.json" "$state/kubectl-direct.json"
}
check "kubectl get -o json through the proxy prints exactly what it prints directly" kubectl_same

content_types() { # the same Content-Type on watches as kube-apiserver's, JSON and protobuf
  local accept path=/api/v1/namespaces/wc-0/configmaps?watch=1\&resourceVersion=0\&timeoutSeconds=1
  for accept in application/json application/vnd.kubernetes.protobuf; do
    local via direct
    via=$(curl -s -A kcp-e2e -H "Accept: $accept" -o /dev/null -w '%{content_type}' "http://127.0.0.1:$iport$path")
    direct=$(curl -s -A kcp-e2e -H "Accept: $accept" --cacert "$CA_FILE" --cert "$KCLUSTER_DIR/pki/admin.crt" \
      --key "$KCLUSTER_DIR/pki/admin.key" -o /dev/null -w '%{content_type}' "$APISERVER_URL$path")
    echo "Accept $accept: proxy '$via', kube-apiserver '$direct'"
    [[ -n $via && $via == "$direct" ]] || return 1
  done
}
check "watch responses carry kube-apiserver's Content-Type (JSON and protobuf)" content_types

# A watcher that stops reading falls behind the event history: the proxy ends
# it (its client resumes, gets 410 and relists, as with kube-apiserver) and
# counts it; its memory does not grow with the events it misses.
slow_watcher() {
  local p2 a2; p2=$(free_port) a2=$(free_port)
  "$PROXY_BIN" --upstream-kubeconfig "$K" --state-dir "$state/p2" --listen "127.0.0.1:$(free_port)" \
    --listen-insecure "127.0.0.1:$p2" --admin-listen "127.0.0.1:$a2" --cache-resources configmaps \
    --cache-history-events 50 >"$state/proxy2.log" 2>&1 &
  local second=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$a2/readyz" >/dev/null && break; sleep 0.2; done
  local rv; rv=$(curl -s "http://127.0.0.1:$a2/metrics" | awk '/^kube_cache_proxy_cache_resource_version\{resource="configmaps",encoding="json"/ {print int($2)}')
  /usr/bin/python3 - "$p2" "$rv" >"$state/slow.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # reads nothing meanwhile: the proxy's socket fills
s.sendall(f"GET /api/v1/configmaps?watch=1&resourceVersion={sys.argv[2]} HTTP/1.1\r\nHost: x\r\nUser-Agent: kcp-e2e\r\n\r\n".encode())
time.sleep(25)
s.settimeout(10)
data = b""
try:
    while not data.endswith(b"\r\n0\r\n\r\n"):  # the chunked response's end (the connection may stay open)
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    print(f"the proxy ended the watch; {len(data)} bytes had been sent")
except socket.timeout:
    print("the watch is still open")
    sys.exit(1)
PY
  local client=$!
  "$KCLUSTER" churn --kubeconfig "$K" --resource configmaps --rate 40 --duration 10s --namespaces 2 --namespace-prefix wc \
    --size 20000 --seed 8 >/dev/null 2>&1
  wait "$client"; local rc=$?
  local closed; closed=$(curl -s "http://127.0.0.1:$a2/metrics" | awk '/^kube_cache_proxy_watchers_closed_behind_total\{resource="configmaps",encoding="json"/ {print int($2)}')
  kill "$second"; wait "$second" 2>/dev/null
  cat "$state/slow.out"; echo "watchers closed behind the history: ${closed:-0}"
  ((rc == 0 && ${closed:-0} >= 1))
}
check "a watcher that stops reading is ended once it falls behind the history, and counted" slow_watcher
check "the proxy logged no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' '$state/proxy.log'"
finish
