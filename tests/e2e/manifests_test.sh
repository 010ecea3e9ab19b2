#!/usr/bin/env bash
# The deployment examples (docker/examples: a sidecar, and a shared proxy
# with its RBAC, Service, PodDisruptionBudget and client kubeconfig) are
# accepted by the real kube-apiserver (server-side dry run: schema, defaults
# and admission).
source "$(dirname "$0")/lib.sh"
K=$ADMIN_KUBECONFIG
# A dry run cannot create into a namespace that does not exist yet.
check "the shared proxy's namespace exists" bash -c \
  "kubectl --kubeconfig '$K' create namespace kube-cache-proxy --dry-run=client -o yaml | kubectl --kubeconfig '$K' apply -f -"
for f in "$ROOT"/docker/examples/*.yaml; do
  check "kubectl apply --dry-run=server accepts docker/examples/$(basename "$f")" \
    kubectl --kubeconfig "$K" apply --dry-run=server -f "$f"
done
finish
