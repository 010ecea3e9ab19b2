#!/usr/bin/env bash
# The controllers the proxy exists for (issue 18): kube-controller-manager,
# kube-scheduler and KWOK's fake nodes run against a cluster of their own,
# first talking to kube-apiserver directly, then through the proxy. The same
# jobs are done each way and must end the same: a Deployment rolls out to
# Running pods on the nodes and scales, foreground and background cascading
# deletion of built-ins and of custom resources, a namespace holding custom
# resources terminates, a quota counts custom resources. Through the proxy,
# leader election holds, a restart of both controllers (a restart storm:
# every informer's LIST or watch-list at once) is answered from the cache,
# and a controller-runtime operator does its job through it too.
source "$(dirname "$0")/lib.sh"
PROXY_BIN=${PROXY_BIN:-$ROOT/build/kube-cache-proxy}
NODES=10 REPLICAS=200
state=$(mktemp -d)
cp=$state/cluster
proxy=""
cleanup() {
  [[ -n ${operator:-} ]] && kill "$operator" 2>/dev/null
  [[ -n $proxy ]] && kill "$proxy" 2>/dev/null && wait "$proxy" 2>/dev/null
  "$KCLUSTER" down "$cp" >/dev/null 2>&1
  rm -rf "$state" "$_log"
}
trap cleanup EXIT

check "a cluster of its own for the control plane (ServiceAccount admission on)" "$KCLUSTER" up "$cp" --control-plane
K=$cp/admin.kubeconfig
k() { kubectl --kubeconfig "$K" "$@"; }

# until SECONDS CMD...: CMD succeeds within SECONDS (what it said last is shown when not).
until_ok() {
  local limit=$1; shift
  local t0=$SECONDS
  until "$@" >"$state/until.log" 2>&1; do
    ((SECONDS - t0 < limit)) || { cat "$state/until.log"; return 1; }
    sleep 1
  done
}
count_is() { # WANT CMD...: CMD prints WANT lines
  local n; n=$("${@:2}" | wc -l)
  [[ $n == "$1" ]] || { echo "$n, want $1"; return 1; }
}
running_pods() { k -n "$1" get pods -l "app=$2" --field-selector=status.phase=Running -o name; }
pods_of() { k -n "$1" get pods -l "app=$2" -o name; }
rollout() { # NS NAME REPLICAS
  k -n "$1" rollout status "deployment/$2" --timeout=240s &&
    until_ok 120 count_is "$3" running_pods "$1" "$2" &&
    until_ok 120 count_is "$3" pods_of "$1" "$2"
}
gone() { ! k get "$@" >/dev/null 2>&1; }
none_left() { [[ -z $(k get "$@" -o name 2>/dev/null) ]]; }

widget() { # NS NAME [OWNER-KIND OWNER-NAME OWNER-UID]
  local owner=""
  [[ -n ${3:-} ]] && owner="ownerReferences: [{apiVersion: example.com/v1, kind: $3, name: $4, uid: $5, blockOwnerDeletion: true}]"
  printf 'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: %s, namespace: %s, %s}\nspec: {size: 1}\n' \
    "$2" "$1" "$owner" | k apply -f -
}
uid_of() { k get "$@" -o jsonpath='{.metadata.uid}'; }
quota_used() { k -n "$1" get resourcequota widgets -o jsonpath='{.status.used.count/widgets\.example\.com}'; }
quota_is() { local u; u=$(quota_used "$1"); [[ $u == "$2" ]] || { echo "quota used: '$u', want $2"; return 1; }; }

# jobs NS: the control plane's work in namespace NS, each step checked; its
# last line is the end state, which must be the same directly and through the proxy.
jobs() {
  local ns=$1
  k create namespace "$ns" && until_ok 60 k -n "$ns" get serviceaccount default || return 1
  # A Deployment: ReplicaSet, pods scheduled onto the fake nodes, reported Running.
  k -n "$ns" create deployment web --image=busybox --replicas="$REPLICAS" || return 1
  rollout "$ns" web "$REPLICAS" || { echo "rollout"; return 1; }
  local spread; spread=$(k -n "$ns" get pods -l app=web -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort -u | wc -l)
  ((spread == NODES)) || { echo "pods on $spread nodes, want $NODES"; return 1; }
  k -n "$ns" scale deployment web --replicas=$((REPLICAS + 50)) && rollout "$ns" web $((REPLICAS + 50)) || { echo "scale up"; return 1; }
  k -n "$ns" scale deployment web --replicas=20 && rollout "$ns" web 20 || { echo "scale down"; return 1; }
  # A rolling update: a new ReplicaSet takes over.
  k -n "$ns" set image deployment/web busybox=busybox:1.36 && rollout "$ns" web 20 || { echo "rolling update"; return 1; }
  # Foreground cascading deletion: the Deployment goes last, after its ReplicaSets and pods.
  k -n "$ns" delete deployment web --cascade=foreground --wait=false &&
    until_ok 120 gone -n "$ns" deployment web && until_ok 120 none_left -n "$ns" replicasets,pods -l app=web ||
    { echo "foreground deletion"; return 1; }
  # Background: the garbage collector removes what the Deployment owned.
  k -n "$ns" create deployment bg --image=busybox --replicas=10 && rollout "$ns" bg 10 &&
    k -n "$ns" delete deployment bg --cascade=background &&
    until_ok 120 none_left -n "$ns" replicasets,pods -l app=bg || { echo "background deletion"; return 1; }
  # Custom resources: a quota counting them, owners and dependents, both
  # deletion modes (the garbage collector sees custom resources by their metadata only).
  k -n "$ns" create quota widgets --hard=count/widgets.example.com=5 &&
    widget "$ns" owner && local uid && uid=$(uid_of -n "$ns" widgets owner) &&
    widget "$ns" dep-1 Widget owner "$uid" && widget "$ns" dep-2 Widget owner "$uid" &&
    k -n "$ns" create configmap dep-3 && k -n "$ns" patch configmap dep-3 --type=merge \
    -p "{\"metadata\":{\"ownerReferences\":[{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\",\"name\":\"owner\",\"uid\":\"$uid\"}]}}" &&
    until_ok 60 quota_is "$ns" 3 || { echo "quota of custom resources"; return 1; }
  k -n "$ns" delete widget owner --cascade=background &&
    until_ok 120 gone -n "$ns" widget dep-1 && until_ok 120 gone -n "$ns" widget dep-2 &&
    until_ok 120 gone -n "$ns" configmap dep-3 && until_ok 60 quota_is "$ns" 0 ||
    { echo "background deletion of a custom resource's dependents"; return 1; }
  widget "$ns" fg-owner && uid=$(uid_of -n "$ns" widgets fg-owner) && widget "$ns" fg-dep Widget fg-owner "$uid" &&
    k -n "$ns" delete widget fg-owner --cascade=foreground --wait=false &&
    until_ok 120 gone -n "$ns" widget fg-owner && gone -n "$ns" widget fg-dep ||
    { echo "foreground deletion of a custom resource"; return 1; }
  # A namespace holding custom resources terminates.
  k create namespace "$ns-gone" && widget "$ns-gone" w1 && widget "$ns-gone" w2 &&
    k -n "$ns-gone" create configmap c1 && k delete namespace "$ns-gone" --wait=false &&
    until_ok 180 gone namespace "$ns-gone" || { echo "namespace termination"; return 1; }
  # The end state, the same both ways.
  echo "end state: $(k -n "$ns" get deployments,replicasets,pods,widgets -o name | wc -l) objects left;" \
    "quota used $(quota_used "$ns"); namespace $ns-gone gone"
}
# The Widget CRD, for both runs.
crd() { "$KCLUSTER" load --kubeconfig "$K" --resource widgets --count 1 --namespaces 1 --namespace-prefix crd; }
check "the widgets custom resource" crd

check "kube-controller-manager, kube-scheduler and $NODES KWOK nodes, talking to kube-apiserver" \
  "$KCLUSTER" controlplane "$cp" --nodes "$NODES"
jobs direct >"$state/direct.out" 2>&1
check "directly: rollout, scaling, cascading deletions, custom resources' quota and garbage, namespace termination" \
  grep -q '^end state:' "$state/direct.out"
[[ -s $state/direct.out ]] && tail -3 "$state/direct.out" | sed 's/^/        /'

# The proxy in front, authenticating the components' certificates and tokens itself.
port=$(free_port) aport=$(free_port)
"$PROXY_BIN" --upstream-kubeconfig "$K" --state-dir "$state/proxy" --listen "127.0.0.1:$port" \
  --admin-listen "127.0.0.1:$aport" --client-ca-file "$cp/pki/ca.crt" >"$state/proxy.log" 2>&1 &
proxy=$!
ready() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null && return 0; sleep 0.2; done; return 1; }
check "the proxy starts in front of the control plane's cluster" ready
through_proxy() { "$KCLUSTER" controlplane "$cp" --nodes "$NODES" --server "https://127.0.0.1:$port" --server-ca "$state/proxy/pki/ca.crt"; }
check "the same components restarted through the proxy: leader leases taken, nodes Ready" through_proxy
jobs proxied >"$state/proxied.out" 2>&1
check "through the proxy: the same jobs done" grep -q '^end state:' "$state/proxied.out"
[[ -s $state/proxied.out ]] && tail -3 "$state/proxied.out" | sed 's/^/        /'
same_end() {
  diff <(grep '^end state:' "$state/direct.out" | sed 's/direct/NS/g') <(grep '^end state:' "$state/proxied.out" | sed 's/proxied/NS/g')
}
check "the same end state directly and through the proxy" same_end

# What the controllers read through the proxy was served from its cache.
open_watches() { # cache|upstream: watch streams open now
  curl -s "http://127.0.0.1:$aport/metrics" | awk -v from="$1" '$1 == "kube_cache_proxy_watches{served_from=\"" from "\"}" {print $2}'
}
cached_reads() {
  local n; n=$(proxy_requests "$aport" cache "list|watch|get")
  echo "list/watch/get served from the cache: $n; watches open: $(open_watches cache) from the cache, $(open_watches upstream) forwarded"
  ((n > 0 && $(open_watches cache) > 0))
}
check "the controllers' reads were served from the cache" cached_reads
# A restart storm: both controllers (and KWOK) restart at once through the
# warm proxy. Each resource's first request was forwarded (it is cached on
# a first request); now every informer's watch-list is answered by the cache.
storm() {
  local lists_before total
  lists_before=$(proxy_requests "$aport" upstream list)
  total=$(($(open_watches cache) + $(open_watches upstream)))
  through_proxy || return 1
  # Until the controllers have started their informers again (90% of the watches before).
  local t0=$SECONDS
  while (($(open_watches cache) + $(open_watches upstream) < total * 9 / 10 && SECONDS - t0 < 90)); do sleep 1; done
  sleep 5
  echo "watches open before the restart: $total; after: $(open_watches cache) from the cache, $(open_watches upstream) forwarded;" \
    "LISTs forwarded meanwhile: $(($(proxy_requests "$aport" upstream list) - lists_before)) (KWOK's small paged pod LISTs by node)"
  # A consistent read (a watch-list) that waits past --consistent-read-wait
  # for the cache to catch up is forwarded instead: a few may be, on a loaded machine.
  (($(open_watches upstream) <= total / 10 && $(open_watches cache) >= total * 9 / 10))
}
check "a restart of kube-controller-manager, kube-scheduler and KWOK through the proxy: its watches from the cache" storm
# A controller-runtime operator through the proxy (the Grove operator's
# shape): PodSets of 2 pods, the set's pods listed by label from the server
# at every reconcile. Its label-selected LISTs are small consistent reads,
# which the proxy forwards while its cache is current (kube-apiserver answers
# them from its own cache for about what the proxy's probe would cost).
# PodSets are a resource new to the proxy (the operator defines the CRD), so
# its first watch of them is forwarded; its pod informer (protobuf) is fed
# by the cache.
operator=""
cache_watches_since() { # N: the operator's watches served from the cache went past N
  (($(proxy_requests "$aport" cache watch "podsets|pods") > $1))
}
podsets() {
  local before; before=$(proxy_requests "$aport" cache watch "podsets|pods")
  "$KCLUSTER" operator --kubeconfig "$(source "$cp/env" && echo "$CONTROL_PLANE_ADMIN_KUBECONFIG")" \
    >"$state/operator.log" 2>&1 &
  operator=$!
  "$KCLUSTER" podsets --kubeconfig "$K" --sets 25 --replicas 2 --timeout 3m || return 1
  kill "$operator" && wait "$operator"
  operator=""
  # A watch is counted once it has ended, which the proxy sees shortly after the operator exits.
  until_ok 15 cache_watches_since "$before"
  echo "the operator's watches answered by the cache: $(($(proxy_requests "$aport" cache watch "podsets|pods") - before))"
  cache_watches_since "$before"
}
check "a controller-runtime operator through the proxy: 25 PodSets' 50 pods run, then are collected; its pod informer fed by the cache" podsets
leader() { # the lease is held and renewed through the proxy
  local a b
  a=$(k -n kube-system get lease kube-controller-manager -o jsonpath='{.spec.renewTime}')
  sleep 3
  b=$(k -n kube-system get lease kube-controller-manager -o jsonpath='{.spec.renewTime}')
  echo "renewTime $a -> $b"; [[ -n $a && $a != "$b" ]]
}
check "leader election through the proxy: kube-controller-manager renews its lease" leader
finish
