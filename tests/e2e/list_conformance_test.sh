#!/usr/bin/env bash
# Differential LIST conformance: hundreds of LIST requests (configmaps,
# secrets, pods, a custom resource, a cluster-scoped resource; namespaced and
# across namespaces; label and field selectors, valid and not; every
# resourceVersion mode; limit/continue walks, tokens carried between the
# proxy and kube-apiserver) sent to the proxy and directly to kube-apiserver:
# identical answers, and kube-apiserver's own metrics show that the requests
# the proxy served from its cache never reached it.
source "$(dirname "$0")/lib.sh"
PROXY_BIN=${PROXY_BIN:-$ROOT/build/kube-cache-proxy}
state=$(mktemp -d)
K=$ADMIN_KUBECONFIG
for r in configmaps secrets pods widgets; do
  "$KCLUSTER" load --kubeconfig "$K" --resource "$r" --count 60 --namespaces 2 --namespace-prefix conf --size 1500 >/dev/null 2>&1
done
# A namespace whose LIST is large enough (over 128 KiB) for consistent reads to be served from the cache.
"$KCLUSTER" load --kubeconfig "$K" --resource configmaps --count 100 --namespaces 1 --namespace-prefix ryw --size 2000 >/dev/null 2>&1
iport=$(free_port) aport=$(free_port)
"$PROXY_BIN" --upstream-kubeconfig "$K" --state-dir "$state" --listen "127.0.0.1:$(free_port)" \
  --listen-insecure "127.0.0.1:$iport" --admin-listen "127.0.0.1:$aport" \
  --cache-resources configmaps,secrets,pods,widgets.example.com,namespaces >"$state/proxy.log" 2>&1 &
proxy=$!
trap 'kill $proxy 2>/dev/null; wait $proxy 2>/dev/null; rm -rf "$state"; rm -f "$_log"' EXIT
synced() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null && return 0; sleep 0.2; done; return 1; }
conformance() { # SEED
  (cd "$ROOT/tests/e2e" && /usr/bin/python3 list_conformance.py "$iport" "$aport" "$K" --count 320 --seed "$1")
}
check "the proxy syncs its cache" synced
check "320 random LISTs and their page walks: identical to kube-apiserver's, cached ones never reach it" conformance 1
"$KCLUSTER" churn --kubeconfig "$K" --resource configmaps --rate 20 --duration 3s --namespaces 2 --namespace-prefix conf --seed 5 >/dev/null 2>&1
check "after writes: another 320, identical" conformance 2
cached_consistent() {
  curl -s "http://127.0.0.1:$aport/metrics" |
    awk '/^kube_cache_proxy_consistent_reads_total\{resource="configmaps",encoding="json",served_from="cache"\}/ {print int($2)}'
}
read_your_writes() { (cd "$ROOT/tests/e2e" && /usr/bin/python3 read_your_writes.py "$iport" "$K" ryw-0 50); }
mostly_from_cache() { local after; after=$(cached_consistent); echo "cache-served consistent reads: $before -> $after"; ((after - before >= 45)); }
before=$(cached_consistent)
check "read your writes: a consistent LIST through the proxy after each of 50 creates sees it" read_your_writes
check "and those consistent LISTs were answered from the cache (it caught up with each write)" mostly_from_cache
probes() {
  curl -s "http://127.0.0.1:$aport/metrics" |
    awk '/^kube_cache_proxy_consistent_read_probes_total\{resource="configmaps",encoding="json"/ {print int($2)}'
}
# Reads that arrive together share a probe (one that was sent after each of them arrived).
shared_probes() {
  local p0 c0; p0=$(probes) c0=$(cached_consistent)
  (cd "$ROOT/tests/e2e" && /usr/bin/python3 read_your_writes.py "$iport" "$K" ryw-0 20 --readers 8) || return 1
  local reads=$(($(cached_consistent) - c0)) sent=$(($(probes) - p0))
  echo "consistent reads answered from the cache: $reads of 160; probes sent: $sent"
  ((reads >= 144 && sent < reads))
}
check "8 consistent LISTs at once after each of 20 creates: all see it, sharing probes" shared_probes
forwarded_lists() { proxy_requests "$aport" upstream list configmaps; }
small_forwarded() {
  local f0 c0; f0=$(forwarded_lists) c0=$(cached_consistent)
  curl -sf -A kcp-e2e "http://127.0.0.1:$iport/api/v1/namespaces/conf-1/configmaps?labelSelector=tier%3Dfrontend" >/dev/null || return 1
  echo "forwarded LISTs: $f0 -> $(forwarded_lists); cache-served consistent reads: $c0 -> $(cached_consistent)"
  (($(forwarded_lists) == f0 + 1 && $(cached_consistent) == c0))
}
check "a consistent LIST with a small answer is forwarded (kube-apiserver answers it as cheaply as the probe)" small_forwarded
python_client() { (cd "$ROOT/tests/e2e" && /usr/bin/python3 python_client.py "$iport" "$K" conf-1); }
check "the Python kubernetes client lists the same objects through the proxy as directly" python_client
check "the proxy logged no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' '$state/proxy.log'"
finish
