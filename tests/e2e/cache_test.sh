#!/usr/bin/env bash
# The watch-fed cache against the real cluster: with writes going on, the
# cache (keys, resourceVersions, object bytes) equals a direct LIST at the
# same resourceVersion; the same after a kube-apiserver restart, and after an
# etcd compaction that forces a 410 and a relist.
source "$(dirname "$0")/lib.sh"
PROXY_BIN=${PROXY_BIN:-$ROOT/build/kube-cache-proxy}
state=$(mktemp -d)
aport=$(free_port)
K=$ADMIN_KUBECONFIG
"$KCLUSTER" load --kubeconfig "$K" --resource configmaps --count 300 --namespaces 3 --namespace-prefix cache >/dev/null 2>&1
"$KCLUSTER" load --kubeconfig "$K" --resource widgets --count 30 --size 5000 --namespace-prefix cache >/dev/null 2>&1
iport=$(free_port)
"$PROXY_BIN" --upstream-kubeconfig "$K" --state-dir "$state" --listen "127.0.0.1:$(free_port)" \
  --listen-insecure "127.0.0.1:$iport" \
  --admin-listen "127.0.0.1:$aport" --cache-resources configmaps,widgets.example.com,deployments.apps \
  --upstream-keepalive 2s -v 1 >"$state/proxy.log" 2>&1 &
proxy=$!
trap 'kill -CONT $proxy 2>/dev/null; kill $proxy 2>/dev/null; wait $proxy 2>/dev/null; rm -rf "$state"; rm -f "$_log"' EXIT

synced() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null && return 0; sleep 0.2; done
  curl -s "http://127.0.0.1:$aport/readyz"; return 1; }
same_as_upstream() { # RESOURCE LIST-PATH
  /usr/bin/python3 "$ROOT/tests/e2e/compare_cache.py" "$aport" "$1" "$2" "$BIN_DIR/kubectl" "$K"
}
metric() { curl -s "http://127.0.0.1:$aport/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

check "/readyz waits for, then reports, the first sync of every cached resource" synced
check "configmaps: the cache equals a direct LIST at its resourceVersion" same_as_upstream configmaps /api/v1/configmaps
check "widgets (a CRD): the same" same_as_upstream widgets.example.com /apis/example.com/v1/widgets
check "deployments (an empty resource in a group): the same" same_as_upstream deployments.apps /apis/apps/v1/deployments

"$KCLUSTER" churn --kubeconfig "$K" --resource configmaps --rate 50 --duration 8s --namespaces 3 --namespace-prefix cache --seed 11 >/dev/null 2>&1 &
churn=$!
"$KCLUSTER" churn --kubeconfig "$K" --resource widgets --rate 10 --duration 8s --namespace-prefix cache --seed 12 --size 5000 >/dev/null 2>&1 &
churn2=$!
sleep 3
check "during churn: configmaps equal a direct LIST at the cache's resourceVersion" same_as_upstream configmaps /api/v1/configmaps
wait $churn $churn2
check "after churn: configmaps equal" same_as_upstream configmaps /api/v1/configmaps
check "after churn: widgets equal" same_as_upstream widgets.example.com /apis/example.com/v1/widgets
check "the watch history holds the churn's events" bash -c \
  "(( \$(curl -s http://127.0.0.1:$aport/metrics | awk '\$1 == \"kube_cache_proxy_cache_history_events{resource=\\\"configmaps\\\",encoding=\\\"json\\\"}\" {print \$2}') > 100 ))"

# kube-apiserver restarts: the watch resumes (or relists) and the cache is right again.
check "restart kube-apiserver" bash -c "'$KCLUSTER' stop '$KCLUSTER_DIR' apiserver && '$KCLUSTER' up '$KCLUSTER_DIR' >/dev/null"
"$KCLUSTER" churn --kubeconfig "$K" --resource configmaps --rate 50 --duration 3s --namespaces 3 --namespace-prefix cache --seed 13 >/dev/null 2>&1
check "after a kube-apiserver restart: configmaps equal" same_as_upstream configmaps /api/v1/configmaps

# Forced 410: freeze the proxy, write, compact etcd and restart the apiserver
# (its watch cache then starts after the compaction), thaw: the resumed watch
# is too old, and the reflector relists.
relists_before=$(metric 'kube_cache_proxy_cache_relists_total{resource="configmaps",encoding="json"}')
kill -STOP $proxy
"$KCLUSTER" churn --kubeconfig "$K" --resource configmaps --rate 50 --duration 3s --namespaces 3 --namespace-prefix cache --seed 14 >/dev/null 2>&1
check "compact etcd behind the cache's watch" "$KCLUSTER" compact "$KCLUSTER_DIR"
check "restart kube-apiserver" bash -c "'$KCLUSTER' stop '$KCLUSTER_DIR' apiserver && '$KCLUSTER' up '$KCLUSTER_DIR' >/dev/null"
kill -CONT $proxy
relisted() { for _ in $(seq 150); do (($(metric 'kube_cache_proxy_cache_relists_total{resource="configmaps",encoding="json"}') > relists_before)) && return 0; sleep 0.2; done; return 1; }
check "the watch got 410 and the reflector relisted" relisted
check "after the forced relist: configmaps equal" same_as_upstream configmaps /api/v1/configmaps
# LISTs served from the cache: the same bytes as kube-apiserver's answer to
# the same request, and kube-apiserver never sees them.
# Answered LISTs only: client-go retries a 429 on its own, which would count
# one kubectl call twice.
upstream_lists() {
  kubectl --kubeconfig "$K" get --raw /metrics |
    awk '/^apiserver_request_total\{/ && /code="200"/ && /resource="configmaps"/ && /verb="LIST"/ {s += $2} END {print s + 0}'
}
# LISTs still in flight (the relist's, kube-apiserver's own informers after
# its restart) settle first, so the count is this section's alone.
settled_upstream_lists() {
  local a b; a=$(upstream_lists)
  for _ in $(seq 20); do sleep 1; b=$(upstream_lists); ((a == b)) && break; a=$b; done
  echo "$a"
}
proxy_forwarded_lists() { proxy_requests "$aport" upstream list configmaps; }
list_identical() { # PATH [CURL-FLAGS...]: proxy (from cache) vs direct: same bytes but for the
                   # list's resourceVersion, which rv=0 lets each cache answer at its own point
  local path=$1; shift
  for _ in $(seq 60); do
    curl -s -A kcp-e2e "$@" "http://127.0.0.1:$iport$path" >"$state/cache.json"
    kubectl --kubeconfig "$K" get --raw "$path" >"$state/direct.json"
    [[ $path == */configmaps\?* ]] && echo "$path" >>"$state/direct_configmap_lists"
    # The two may straddle a write; the cache catches up within moments.
    /usr/bin/python3 "$ROOT/tests/e2e/compare_cache.py" --bodies "$state/cache.json" "$state/direct.json" && return 0
    sleep 0.5
  done
  return 1
}
before=$(settled_upstream_lists)
forwarded_before=$(proxy_forwarded_lists)
cached_before=$(proxy_requests "$aport" cache)
check "LIST rv=0 of all configmaps from the cache (HTTP/1.1): identical bytes" list_identical "/api/v1/configmaps?resourceVersion=0"
check "LIST rv=0 of one namespace from the cache (HTTP/2): identical bytes" \
  list_identical "/api/v1/namespaces/cache-1/configmaps?resourceVersion=0" --http2-prior-knowledge
check "LIST rv=0 of an empty namespace: identical bytes" list_identical "/api/v1/namespaces/no-such-ns/configmaps?resourceVersion=0"
check "LIST rv=0 of a custom resource (sorted keys): identical bytes" \
  list_identical "/apis/example.com/v1/namespaces/cache-0/widgets?resourceVersion=0"
check "LIST rv=0 of an empty group resource: identical bytes" list_identical "/apis/apps/v1/deployments?resourceVersion=0"
after=$(upstream_lists)
forwarded_after=$(proxy_forwarded_lists)
cached_after=$(proxy_requests "$aport" cache)
check "those LISTs were served from the cache" test $((cached_after - cached_before)) -ge 5
direct=$(wc -l <"$state/direct_configmap_lists")
check "the proxy forwarded none of them" test "$forwarded_after" -eq "$forwarded_before"
check "and none reached kube-apiserver: its configmap LIST count grew by exactly the $direct direct ones" \
  bash -c "echo \"apiserver LISTs of configmaps: $before -> $after\"; (( $after - $before == $direct ))"

check "the proxy logged no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' '$state/proxy.log'"
check "SIGTERM stops the proxy with its reflectors" bash -c "kill -TERM $proxy; for i in \$(seq 100); do kill -0 $proxy 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
finish
