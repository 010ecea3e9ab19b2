#!/usr/bin/env bash
# Proxies in front of proxies, and side by side. A proxy speaks
# kube-apiserver's protocol, so one can feed from another (a node-local proxy
# from a shared one): informers through the lower one equal ground truth and
# kube-apiserver keeps one watch per resource and encoding. Two replicas in
# front of the same kube-apiserver are interchangeable as kube-apiserver
# replicas are: a paged LIST's pages may alternate between them, and a watch
# resumes on the other one, because continue tokens and resourceVersions are
# upstream's.
source "$(dirname "$0")/lib.sh"
PROXY_BIN=${PROXY_BIN:-$ROOT/build/kube-cache-proxy}
state=$(mktemp -d)
K=$ADMIN_KUBECONFIG
"$KCLUSTER" load --kubeconfig "$K" --resource configmaps --count 300 --namespaces 2 --namespace-prefix ch --size 600 >/dev/null 2>&1
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; rm -rf "$state"; rm -f "$_log"' EXIT

start_proxy() { # NAME UPSTREAM-KUBECONFIG: starts a proxy caching configmaps; sets <NAME>_iport/_aport
  # Its kubeconfig carries the admin's certificate, which it authenticates against the cluster's CA.
  local name=$1 upstream=$2 port iport aport
  port=$(free_port) iport=$(free_port) aport=$(free_port)
  mkdir -p "$state/$name"
  "$PROXY_BIN" --upstream-kubeconfig "$upstream" --state-dir "$state/$name" --listen "127.0.0.1:$port" \
    --listen-insecure "127.0.0.1:$iport" --admin-listen "127.0.0.1:$aport" --cache-resources configmaps \
    --write-kubeconfig "$state/$name.kubeconfig" --write-kubeconfig-user-from "$K" --client-ca-file "$CA_FILE" \
    --shutdown-grace-period 1s >"$state/$name.log" 2>&1 &
  pids+=($!)
  printf -v "${name}_iport" %s "$iport"
  printf -v "${name}_aport" %s "$aport"
}
ready() { # ADMIN-PORT
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return 0; sleep 0.2; done
  return 1
}
upstream_watches() {
  kubectl --kubeconfig "$K" get --raw /metrics |
    awk '/^apiserver_longrunning_requests\{/ && /resource="configmaps"/ && /verb="WATCH"/ {s += $2} END {print s + 0}'
}
# A kubeconfig for a proxy's cleartext port, without credentials (requests act as the proxy).
insecure_kubeconfig() { # NAME
  cp "$state/$1.kubeconfig" "$state/$1-insecure.kubeconfig"
  kubectl --kubeconfig "$state/$1-insecure.kubeconfig" config use-context kube-cache-proxy-insecure >/dev/null
}
verified() { # MIN ARGS...: `kcluster informer ARGS` compared at least MIN objects with ground truth
  local min=$1; shift
  local out; out=$("$KCLUSTER" informer "$@") || return 1
  echo "$out"
  jq -e --argjson min "$min" '.verified_objects >= $min' <<<"$out" >/dev/null
}

base=$(upstream_watches)
start_proxy upper "$K"
check "the upper proxy syncs from kube-apiserver" ready "$upper_aport"
# The lower proxy's upstream is the upper proxy's TLS port, with the CA it
# wrote and the admin's certificate: the upper proxy authorizes its reads.
start_proxy lower "$state/upper.kubeconfig"
check "the lower proxy syncs from the upper proxy" ready "$lower_aport"
insecure_kubeconfig lower
"$KCLUSTER" churn --kubeconfig "$K" --resource configmaps --rate 30 --duration 15s --namespaces 2 --namespace-prefix ch --seed 7 >/dev/null 2>&1 &
churn=$!
check "JSON informers through the lower proxy equal ground truth during churn" \
  verified 300 --kubeconfig "$state/lower-insecure.kubeconfig" --resource configmaps --count 2 --verify-against "$K"
check "protobuf informers through the lower proxy equal ground truth during churn" \
  verified 300 --kubeconfig "$state/lower-insecure.kubeconfig" --resource configmaps --protobuf --watch-list true --verify-against "$K"
wait $churn
served_from_cache() { proxy_requests "$1" cache "$2"; }  # ADMIN-PORT VERB
one_watch_per_encoding() {
  # The upper proxy caches configmaps in JSON and (once asked) protobuf: one
  # watch each; everything below it is served from its cache.
  local encodings now
  encodings=$(curl -s "http://127.0.0.1:$upper_aport/metrics" | grep -c '^kube_cache_proxy_cache_synced{resource="configmaps".* 1$')
  for _ in $(seq 50); do now=$(upstream_watches); ((now - base == encodings)) && break; sleep 0.2; done
  # The lower proxy's two reflector watches are in flight on the upper one.
  local inflight; inflight=$(curl -s "http://127.0.0.1:$upper_aport/metrics" | awk '/^kube_cache_proxy_inflight_requests / {print $2}')
  echo "kube-apiserver configmap watches: $base before the proxies, $now now; the upper proxy caches $encodings encodings" \
    "and has $inflight requests in flight"
  ((now - base == encodings && inflight >= 2))
}
check "kube-apiserver sees one watch per encoding: the lower proxy's watches are served by the upper one" one_watch_per_encoding

# Two replicas: the upper proxy and a second one, both in front of kube-apiserver.
start_proxy replica "$K"
check "a second replica syncs" ready "$replica_aport"
insecure_kubeconfig replica
alternating_pages() {
  # Pages of one LIST alternate between the replicas; the first, a
  # consistent read of 40 small objects, is forwarded (a small answer is),
  # so its continue token is kube-apiserver's; every later page is answered
  # from a cache (the token's snapshot is held on both). The items equal
  # kube-apiserver's own list at the first page's resourceVersion.
  local ports=("$upper_iport" "$replica_iport") cont="" rv="" i=0 page before
  before=$(( $(served_from_cache "$upper_aport" list) + $(served_from_cache "$replica_aport" list) ))
  : >"$state/walk"
  while :; do
    page=$(curl -sf -A kcp-e2e "http://127.0.0.1:${ports[i % 2]}/api/v1/configmaps?limit=40${cont:+&continue=$cont}") || return 1
    [[ -n $rv ]] || rv=$(jq -r .metadata.resourceVersion <<<"$page")
    jq -c '.items[]' <<<"$page" >>"$state/walk"
    cont=$(jq -r '.metadata.continue // ""' <<<"$page")
    i=$((i + 1))
    [[ -n $cont ]] || break
  done
  kubectl --kubeconfig "$K" get --raw "/api/v1/configmaps?resourceVersion=$rv&resourceVersionMatch=Exact" |
    jq -c '.items[]' >"$state/direct"
  local cached; cached=$(( $(served_from_cache "$upper_aport" list) + $(served_from_cache "$replica_aport" list) - before ))
  echo "$i pages at resourceVersion $rv across both replicas ($cached from their caches): $(wc -l <"$state/walk") items, kube-apiserver $(wc -l <"$state/direct")"
  cmp -s "$state/walk" "$state/direct" && ((i > 2 && cached == i - 1))
}
"$KCLUSTER" churn --kubeconfig "$K" --resource configmaps --rate 30 --duration 8s --namespaces 2 --namespace-prefix ch --seed 8 >/dev/null 2>&1 &
churn=$!
sleep 1
check "a paged LIST alternating between replicas during churn equals kube-apiserver's list at its resourceVersion" alternating_pages
wait $churn
resumed_watch() {
  # A watch resumed on the other replica from a resourceVersion the first
  # one gave: the same events as kube-apiserver sends from it.
  local rv churn
  rv=$(curl -sf -A kcp-e2e "http://127.0.0.1:$upper_iport/api/v1/namespaces/ch-0/configmaps?resourceVersion=0" | jq -r .metadata.resourceVersion)
  "$KCLUSTER" churn --kubeconfig "$K" --resource configmaps --rate 30 --duration 5s --namespaces 2 --namespace-prefix ch --seed 9 >/dev/null 2>&1 &
  churn=$!
  sleep 2  # the churn moves on from rv
  local q="/api/v1/namespaces/ch-0/configmaps?watch=1&resourceVersion=$rv&timeoutSeconds=3"
  curl -sN -A kcp-e2e "http://127.0.0.1:$replica_iport$q" >"$state/resumed" &
  local c=$!
  kubectl --kubeconfig "$K" get --raw "$q" >"$state/direct-watch"
  wait $c
  wait $churn
  # Both ran the same 3 s; compare the events both saw (up to the shorter's last).
  local n; n=$(( $(wc -l <"$state/resumed") < $(wc -l <"$state/direct-watch") ? $(wc -l <"$state/resumed") : $(wc -l <"$state/direct-watch") ))
  echo "watch from $rv: $(wc -l <"$state/resumed") events via the other replica, $(wc -l <"$state/direct-watch") directly; comparing $n"
  ((n > 10)) && cmp -s <(head -n "$n" "$state/resumed") <(head -n "$n" "$state/direct-watch")
}
check "a watch resumed on the other replica sends the same events as kube-apiserver" resumed_watch
check "no proxy logged a sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' '$state'/*.log"
finish
