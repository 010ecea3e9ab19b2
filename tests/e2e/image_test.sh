#!/usr/bin/env bash
# The container image (tools/image): it builds with no registry, runs as a
# non-root user in front of the test cluster, turns healthy by its own
# health check (the HEALTHCHECK of docker/Dockerfile, told the test's
# admin port), and serves a LIST from its cache to a client in another
# container. Both containers share the host's network namespace, so all
# traffic stays on loopback. Skipped (not failed) where no Docker engine runs.
source "$(dirname "$0")/lib.sh"
if ! docker info >/dev/null 2>&1; then
  echo "  skip  no Docker engine here"
  finish
  exit
fi
state=$(mktemp -d)
chmod 755 "$state"
name=kcp-image-test-$$
trap 'docker rm -f "$name" >/dev/null 2>&1; rm -rf "$state"; rm -f "$_log"' EXIT
check "tools/image builds the image" "$ROOT/tools/image" kube-cache-proxy:e2e
# The upstream kubeconfig with its certificates inline, readable by the image's user.
kubectl --kubeconfig "$ADMIN_KUBECONFIG" config view --raw --flatten >"$state/upstream.kubeconfig"
chmod 644 "$state/upstream.kubeconfig"
"$KCLUSTER" load --kubeconfig "$ADMIN_KUBECONFIG" --resource configmaps --count 40 --namespaces 1 --namespace-prefix image >/dev/null 2>&1
port=$(free_port) iport=$(free_port) aport=$(free_port)
run() {
  docker run -d --name "$name" --network host -v "$state/upstream.kubeconfig:/config/upstream.kubeconfig:ro" \
    -e "KCP_ADMIN_PORT=$aport" --health-interval 1s --health-start-period 1s \
    kube-cache-proxy:e2e --upstream-kubeconfig /config/upstream.kubeconfig --listen "127.0.0.1:$port" \
    --listen-insecure "127.0.0.1:$iport" --admin-listen "127.0.0.1:$aport" --cache-resources configmaps
}
check "the image runs in front of the test cluster" run
healthy() {
  for _ in $(seq 60); do
    [[ $(docker inspect -f '{{.State.Health.Status}}' "$name") == healthy ]] && return 0
    sleep 0.5
  done
  docker logs "$name" 2>&1 | tail -20
  return 1
}
check "the image's own health check reports healthy" healthy
check "it runs as a non-root user" bash -c "[[ \$(docker inspect -f '{{.Config.User}}' '$name') == 65532:65532 ]]"
served_from_cache() { proxy_requests "$aport" cache list; }
client_lists() {
  local before out; before=$(served_from_cache)
  out=$(docker run --rm --network host --entrypoint /bin/busybox kube-cache-proxy:e2e \
    wget -q -U kcp-image-client -O - "http://127.0.0.1:$iport/api/v1/namespaces/image-0/configmaps?resourceVersion=0") || return 1
  local n; n=$(jq '.items | length' <<<"$out")
  echo "a client container listed $n configmaps; the proxy served $(( $(served_from_cache) - before )) LIST from its cache"
  ((n == 40 && $(served_from_cache) - before == 1))
}
check "a client in another container gets a LIST from the cache" client_lists
finish
