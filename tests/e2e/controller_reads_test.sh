#!/usr/bin/env bash
# What Kubernetes 1.37's controllers send (issue 16), against a freshly
# started proxy: protobuf watch-lists (kube-controller-manager, and
# kube-scheduler's unfinished pods), a kubelet's pods by spec.nodeName,
# secrets by type, metadata-only reads of a custom resource (the garbage
# collector's), gzipped watch-lists. Each is served from the cache within
# seconds of the start and answers as kube-apiserver does; then client-go
# informers as kube's components run them (protobuf and watch-list on) and a
# metadata-only informer of the custom resource sync without a LIST or a
# watch reaching kube-apiserver.
source "$(dirname "$0")/lib.sh"
PROXY_BIN=${PROXY_BIN:-$ROOT/build/kube-cache-proxy}
state=$(mktemp -d)
K=$ADMIN_KUBECONFIG
setup() {
  "$KCLUSTER" load --kubeconfig "$K" --resource widgets --count 40 --namespaces 1 --namespace-prefix cr --size 800 &&
    "$KCLUSTER" load --kubeconfig "$K" --resource secrets --count 20 --namespaces 1 --namespace-prefix cr --size 500 &&
    "$KCLUSTER" load --kubeconfig "$K" --resource configmaps --count 20 --namespaces 1 --namespace-prefix cr --size 500 &&
    for i in 1 2 3; do
      kubectl --kubeconfig "$K" -n cr-0 run "on-node-$i" --image=busybox --restart=Never \
        --overrides="{\"spec\":{\"nodeName\":\"$NODE_NAME\"}}" --dry-run=client -o yaml | kubectl --kubeconfig "$K" apply -f -
    done
}
check "pods on a node, secrets, configmaps and custom resources" setup
iport=$(free_port) aport=$(free_port)
"$PROXY_BIN" --upstream-kubeconfig "$K" --state-dir "$state" --listen "127.0.0.1:$(free_port)" \
  --listen-insecure "127.0.0.1:$iport" --admin-listen "127.0.0.1:$aport" \
  --cache-resources configmaps,secrets,pods,widgets.example.com >"$state/proxy.log" 2>&1 &
proxy=$!
trap 'kill $proxy 2>/dev/null; wait $proxy 2>/dev/null; rm -rf "$state"; rm -f "$_log"' EXIT
ready() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null && return 0; sleep 0.2; done; return 1; }
check "the proxy starts and syncs (JSON and protobuf caches)" ready
reads() { (cd "$ROOT/tests/e2e" && /usr/bin/python3 controller_reads.py "$iport" "$aport" "$K" "$NODE_NAME"); }
check "each request controllers send: served from the cache within seconds, as kube-apiserver answers it" reads

cleartext_kubeconfig "$state/proxy.kubeconfig" "$iport"
forwarded_reads() { proxy_requests "$aport" upstream "list|watch"; }  # forwarded so far
informers() { # ARGS...: kcluster informer through the proxy, verified, none of its reads forwarded
  local before after; before=$(forwarded_reads)
  "$KCLUSTER" informer --kubeconfig "$state/proxy.kubeconfig" --verify-against "$K" --timeout 60s "$@" || return 1
  after=$(forwarded_reads)
  echo "forwarded list/watch requests: $before -> $after"
  ((after == before))
}
check "kube's own informers (protobuf, watch-list on) sync from the cache, none forwarded" \
  informers --resource pods --protobuf --watch-list true --count 3
check "a metadata-only informer of the custom resource (the garbage collector's) syncs from the cache, none forwarded" \
  informers --resource widgets --metadata --count 2
# Resources that go away: a custom resource's CRD is deleted under a watch.
sprockets() { # create|delete
  if [[ $1 == delete ]]; then
    kubectl --kubeconfig "$K" delete crd sprockets.kcp.example.com --wait=true
    return
  fi
  kubectl --kubeconfig "$K" apply -f - <<'YAML' || return 1
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: sprockets.kcp.example.com}
spec:
  group: kcp.example.com
  scope: Namespaced
  names: {plural: sprockets, singular: sprocket, kind: Sprocket}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
YAML
  kubectl --kubeconfig "$K" wait --for condition=established --timeout=60s crd/sprockets.kcp.example.com || return 1
  for i in 1 2 3; do
    printf 'apiVersion: kcp.example.com/v1\nkind: Sprocket\nmetadata: {name: s%s, namespace: cr-0}\nspec: {teeth: %s}\n' "$i" "$i" |
      kubectl --kubeconfig "$K" apply -f - || return 1
  done
}
sprockets_path=/apis/kcp.example.com/v1/namespaces/cr-0/sprockets
served_cache() { proxy_requests "$aport" cache "" sprockets; }
cached_soon() { # a LIST of sprockets is answered from the cache within 20 s (it is cached on a first request)
  local t0=$SECONDS before
  while ((SECONDS - t0 < 20)); do
    before=$(served_cache)
    curl -s -o /dev/null -A kcp "http://127.0.0.1:$iport$sprockets_path?resourceVersion=0"
    (($(served_cache) > before)) && { echo "served from the cache after $((SECONDS - t0)) s"; return 0; }
    sleep 0.5
  done
  return 1
}
check "a custom resource (sprockets) is created and cached" sprockets create
check "and served from the cache" cached_soon
gone() {
  local direct_log=$state/gone-direct.out proxy_log=$state/gone-proxy.out
  curl -sN -A kcp --max-time 60 "http://127.0.0.1:$iport$sprockets_path?watch=1&resourceVersion=0" >"$proxy_log" &
  local pw=$!
  curl -sN -A kcp --max-time 60 --cacert "$CA_FILE" --cert "$KCLUSTER_DIR/pki/admin.crt" --key "$KCLUSTER_DIR/pki/admin.key" \
    "$APISERVER_URL$sprockets_path?watch=1&resourceVersion=0" >"$direct_log" &
  local dw=$!
  sleep 2
  sprockets delete || return 1
  local t0=$SECONDS
  while running "$pw" || running "$dw"; do
    ((SECONDS - t0 < 30)) || { echo "watches still open 30 s after the CRD was deleted (proxy $(running $pw && echo open), kube-apiserver $(running $dw && echo open))"; kill $pw $dw; return 1; }
    sleep 0.5
  done
  echo "both watches ended $((SECONDS - t0)) s after the deletion; the proxy's sent $(wc -l <"$proxy_log") events, kube-apiserver's $(wc -l <"$direct_log")"
  local p d
  for q in "?resourceVersion=0" "" "/s1"; do
    p=$(curl -s -A kcp -w ' %{http_code}' "http://127.0.0.1:$iport$sprockets_path$q")
    d=$(curl -s -A kcp -w ' %{http_code}' --cacert "$CA_FILE" --cert "$KCLUSTER_DIR/pki/admin.crt" --key "$KCLUSTER_DIR/pki/admin.key" \
      "$APISERVER_URL$sprockets_path$q")
    echo "GET sprockets$q: proxy [$p] kube-apiserver [$d]"
    [[ $p == "$d" ]] || return 1
  done
  local retries; retries=$(grep -c 'reflector retrying.*sprockets' "$state/proxy.log")
  echo "reflector retries for sprockets: $retries"; ((retries <= 2)) && grep -q 'resource gone upstream' "$state/proxy.log"
}
check "its CRD deleted: the cache stops at once (watches end as kube-apiserver's, reads get its 404), no retries" gone
back() { sprockets create && cached_soon; }
check "the CRD back: cached and served again" back
check "the proxy logged no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' '$state/proxy.log'"
finish
