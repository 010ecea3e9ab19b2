#!/usr/bin/env bash
# Clients that hold connections without using them: an HTTP/1.1 request head
# dripped a byte at a time (slowloris) is cut off at --request-header-timeout,
# connections with no request in progress (HTTP/1.1, and HTTP/2 after a
# GOAWAY) at --client-idle-timeout, while requests in progress (a watch) are
# not, and a well-behaved client is served throughout.
source "$(dirname "$0")/lib.sh"
PROXY_BIN=${PROXY_BIN:-$ROOT/build/kube-cache-proxy}
state=$(mktemp -d)
iport=$(free_port) aport=$(free_port)
"$PROXY_BIN" --upstream-kubeconfig "$ADMIN_KUBECONFIG" --state-dir "$state" --listen "127.0.0.1:$(free_port)" \
  --listen-insecure "127.0.0.1:$iport" --admin-listen "127.0.0.1:$aport" --cache-resources configmaps \
  --client-idle-timeout 2s --request-header-timeout 2s >"$state/proxy.log" 2>&1 &
proxy=$!
pids=()
trap 'kill "${pids[@]}" $proxy 2>/dev/null; wait $proxy 2>/dev/null; rm -rf "$state"; rm -f "$_log"' EXIT
ready() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null && return 0; sleep 0.2; done; return 1; }
check "the proxy syncs its cache" ready
hostile() { (cd "$ROOT/tests/e2e" && /usr/bin/python3 hostile_clients.py "$1" "$iport"); }
# Ten slowloris clients at once, while a normal client keeps being served.
slowloris() {
  local i
  for i in $(seq 10); do hostile slowloris >"$state/slow.$i" 2>&1 & pids+=($!); done
  local served=0
  for _ in $(seq 6); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' -A kcp-e2e "http://127.0.0.1:$iport/api/v1/namespaces/default/configmaps?resourceVersion=0") == 200 ]] &&
      served=$((served + 1))
    sleep 0.5
  done
  local failed=0
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed=$((failed + 1)); done
  pids=()
  cat "$state"/slow.* | sort | uniq -c
  echo "a well-behaved client meanwhile: $served of 6 LISTs answered"
  ((failed == 0 && served == 6))
}
check "slowloris (10 clients dripping a request head): cut off at the header timeout; others served" slowloris
check "and counted in /metrics" bash -c "(( \$(curl -s 'http://127.0.0.1:$aport/metrics' | awk '/^kube_cache_proxy_limit_rejections_total.*header_timeout/ {print int(\$2)}') >= 10 ))"
check "an idle HTTP/1.1 connection is closed at the idle timeout" hostile idle-h1
check "an idle HTTP/2 connection gets a GOAWAY and is closed" hostile idle-h2
long_watch() { # a watch outlives the idle timeout: it is a request in progress
  local t0=$SECONDS
  curl -s -A kcp-e2e -o /dev/null "http://127.0.0.1:$iport/api/v1/configmaps?watch=1&resourceVersion=0&timeoutSeconds=5"
  echo "the watch lasted $((SECONDS - t0)) s"
  ((SECONDS - t0 >= 4))
}
check "a watch longer than the idle timeout is not cut off (HTTP/1.1)" long_watch
finish
