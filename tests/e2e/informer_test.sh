#!/usr/bin/env bash
# kcluster load/churn/informer against the real apiserver: informers sync and
# their stores equal a direct LIST (the check every cache test relies on).
source "$(dirname "$0")/lib.sh"
K=$ADMIN_KUBECONFIG

# verified MIN ARGS...: runs `kcluster informer ARGS` and requires that at least
# MIN objects were compared (an empty store must not pass as "equal").
verified() {
  local min=$1; shift
  local out; out=$("$KCLUSTER" informer "$@") || return 1
  echo "$out"
  jq -e --argjson min "$min" '.verified_objects >= $min' <<<"$out" >/dev/null
}

check "load 5000 configmaps over 10 namespaces" \
  "$KCLUSTER" load --kubeconfig "$K" --resource configmaps --count 5000 --namespaces 10 --namespace-prefix inf
check "3 JSON informers on 5000 configmaps equal a direct LIST" \
  verified 5000 --kubeconfig "$K" --resource configmaps --count 3 --verify-against "$K"
check "a protobuf informer equals a direct LIST" \
  verified 5000 --kubeconfig "$K" --resource configmaps --protobuf --verify-against "$K"
check "load 200 pods" "$KCLUSTER" load --kubeconfig "$K" --resource pods --count 200 --namespaces 2 --namespace-prefix inf
check "load 50 widgets (a CRD) of 20 KB" \
  "$KCLUSTER" load --kubeconfig "$K" --resource widgets --count 50 --size 20000 --namespace-prefix inf
check "load 100 secrets" "$KCLUSTER" load --kubeconfig "$K" --resource secrets --count 100 --namespace-prefix inf
check "churn configmaps for 5 s" \
  "$KCLUSTER" churn --kubeconfig "$K" --resource configmaps --rate 40 --duration 5s --namespaces 10 --namespace-prefix inf
for r in pods widgets secrets; do
  check "$r informer (watch-list on) equals a direct LIST" \
    verified 50 --kubeconfig "$K" --resource "$r" --watch-list true --verify-against "$K"
done
check "informer with watch-list off equals a direct LIST after churn" \
  verified 5000 --kubeconfig "$K" --resource configmaps --watch-list false --verify-against "$K"
check "a pod is about 3 KB of JSON" bash -c \
  "n=\$(kubectl --kubeconfig '$K' -n inf-0 get pods -o json | jq -c '.items[0]' | wc -c); echo \$n; ((n > 2500 && n < 4000))"
finish
