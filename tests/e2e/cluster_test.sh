#!/usr/bin/env bash
# kcluster's lifecycle: idempotent up, restart of a stopped component on the
# same address, and etcd compaction (the fault tests build on these).
source "$(dirname "$0")/lib.sh"

check "a second up on a live cluster says so" bash -c "'$KCLUSTER' up '$KCLUSTER_DIR' | grep -q 'already up'"
check "stop apiserver" "$KCLUSTER" stop "$KCLUSTER_DIR" apiserver
check "the apiserver is down" fails curl -sf --max-time 2 --cacert "$CA_FILE" "$APISERVER_URL/readyz"
check "up restarts it on the same address" "$KCLUSTER" up "$KCLUSTER_DIR"
check "and it serves again" kubectl --kubeconfig "$ADMIN_KUBECONFIG" get ns default
check "compact etcd" "$KCLUSTER" compact "$KCLUSTER_DIR"
check "the apiserver's version is the pinned one" bash -c \
  "kubectl --kubeconfig '$ADMIN_KUBECONFIG' version -o json | grep -q '\"gitVersion\": \"v1.37'"
finish
