#!/usr/bin/env bash
# Hostile clients, each met by a limit with a clean answer and a metric,
# while a well-behaved client is served throughout: a request head dripped a
# byte at a time (HTTP/1.1 slowloris, and an HTTP/2 header block that never
# ends) is cut off at --request-header-timeout; connections with no request
# in progress at --client-idle-timeout, but a watch is not; 10,000 idle
# connections; HTTP/2 CONTINUATION floods and rapid resets; too many
# concurrent streams; oversized headers (431, both protocols); bodies over
# --max-request-body-bytes (kube-apiserver's own 413); more connections from
# one address than --max-connections-per-client; a client that never reads a
# large LIST (the proxy's memory stays bounded).
source "$(dirname "$0")/lib.sh"
PROXY_BIN=${PROXY_BIN:-$ROOT/build/kube-cache-proxy}
state=$(mktemp -d)
"$KCLUSTER" load --kubeconfig "$ADMIN_KUBECONFIG" --resource widgets --count 600 --size 100000 --namespaces 1 \
  --namespace-prefix hostile >/dev/null 2>&1
iport=$(free_port) aport=$(free_port)
"$PROXY_BIN" --upstream-kubeconfig "$ADMIN_KUBECONFIG" --state-dir "$state" --listen "127.0.0.1:$(free_port)" \
  --listen-insecure "127.0.0.1:$iport" --admin-listen "127.0.0.1:$aport" --cache-resources configmaps,widgets.example.com \
  --client-idle-timeout 2s --request-header-timeout 2s --max-request-header-bytes 65536 \
  --max-connections-per-client 12000 >"$state/proxy.log" 2>&1 &
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

rejections() { curl -s "http://127.0.0.1:$aport/metrics" | awk -v l="limit=\"$1\"" 'index($0, l) {print int($2)}'; }
counted() { # LIMIT BEFORE
  local now; now=$(rejections "$1"); echo "kube_cache_proxy_limit_rejections_total{limit=\"$1\"}: ${2:-0} -> ${now:-0}"
  ((${now:-0} > ${2:-0}))
}
h2_case() { # NAME LIMIT: the hostile client, then its metric
  local before; before=$(rejections "$2")
  hostile "$1" && counted "$2" "$before"
}
check "HTTP/2 slowloris (a header block that never ends): GOAWAY at the header timeout, counted" h2_case h2-slow-head header_timeout
check "HTTP/2 CONTINUATION flood: GOAWAY at once, counted" h2_case h2-continuation-flood http2_flood
check "HTTP/2 rapid reset (20,000 streams opened and reset): GOAWAY, counted" h2_case h2-rapid-reset http2_flood
h2_streams() { (cd "$ROOT/tests/e2e" && /usr/bin/python3 hostile_clients.py h2-max-streams "$iport" \
  "/api/v1/configmaps?watch=1&resourceVersion=0&timeoutSeconds=10" 260); }
check "260 watches on one HTTP/2 connection: 250 served (SETTINGS_MAX_CONCURRENT_STREAMS), the rest refused" h2_streams
big_headers() { local before; before=$(rejections header_bytes); hostile h2-big-headers && counted header_bytes "$before"; }
check "oversized headers over HTTP/2: 431, counted" big_headers
big_h1() {
  local code; code=$(curl -s -o /dev/null -w '%{http_code}' -A kcp-e2e "$(printf -- '-HX-Big-%d: %070000d' 1 0)" \
    "http://127.0.0.1:$iport/api/v1/namespaces")
  echo "HTTP/1.1 with 70 KB of headers: $code"; [[ $code == 431 ]]
}
check "oversized headers over HTTP/1.1: 431" big_h1

# Request bodies: the proxy's 413 is kube-apiserver's own, byte for byte.
/usr/bin/python3 -c 'import json; print(json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"k": "a" * 4000000}}))' >"$state/big.json"
too_large() { # CURL-PROTOCOL-FLAG
  local before; before=$(rejections request_body_bytes)
  curl -s -A kcp-e2e "$1" -X POST -H 'content-type: application/json' --data-binary @"$state/big.json" \
    -o "$state/proxy-413.json" -w '%{http_code}\n' "http://127.0.0.1:$iport/api/v1/namespaces/default/configmaps" >"$state/code"
  # (HTTP/1.1: over HTTP/2 curl may give up on the stream kube-apiserver ends
  # mid-upload; over HTTP/1.1 too, now and then: CI saw no answer once.)
  rm -f "$state/direct-413.json"
  for _ in 1 2 3; do
    curl -s --http1.1 -A kcp-e2e --cacert "$CA_FILE" --cert "$KCLUSTER_DIR/pki/admin.crt" --key "$KCLUSTER_DIR/pki/admin.key" \
      -X POST -H 'content-type: application/json' --data-binary @"$state/big.json" -o "$state/direct-413.json" \
      "$APISERVER_URL/api/v1/namespaces/default/configmaps"
    [[ -s $state/direct-413.json ]] && break
  done
  echo "proxy: HTTP $(cat "$state/code") $(cat "$state/proxy-413.json")"; echo "kube-apiserver: $(cat "$state/direct-413.json")"
  [[ $(cat "$state/code") == 413 ]] && cmp -s "$state/proxy-413.json" "$state/direct-413.json" && counted request_body_bytes "$before"
}
check "a 4 MB body over HTTP/1.1: kube-apiserver's 413 Status, without forwarding it" too_large --http1.1
check "a 4 MB body over HTTP/2: the same" too_large --http2-prior-knowledge
chunked_too_large() {
  local code; code=$(curl -s -A kcp-e2e -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
    -H 'Transfer-Encoding: chunked' --data-binary @"$state/big.json" "http://127.0.0.1:$iport/api/v1/namespaces/default/configmaps")
  echo "a chunked 4 MB body: HTTP $code"; [[ $code == 413 ]]
}
check "a chunked 4 MB body (no length) is cut off at the limit: 413" chunked_too_large

rss_mb() { awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$proxy/status"; }
idle_many() {
  local before peak=0 r; before=$(rss_mb)
  (cd "$ROOT/tests/e2e" && /usr/bin/python3 hostile_clients.py idle-many "$iport" 10000) &
  local client=$!
  while running "$client"; do r=$(rss_mb); ((r > peak)) && peak=$r; sleep 0.5; done
  wait "$client" || return 1
  echo "proxy RSS: $before MB before, at most $peak MB with 10,000 idle connections"
  ((peak - before < 256))
}
check "10,000 idle connections: closed at the timeouts, memory bounded, a well-behaved client served" idle_many

never_reads() { # CASE: never-reads (HTTP/1.1) or never-reads-h2
  local before peak=0 r; before=$(rss_mb)
  (cd "$ROOT/tests/e2e" && /usr/bin/python3 hostile_clients.py "$1" "$iport" \
    "/apis/example.com/v1/namespaces/hostile-0/widgets?resourceVersion=0") &
  local client=$! served=0 t0
  for _ in $(seq 10); do
    t0=$(date +%s%N)
    [[ $(curl -s -o /dev/null -w '%{http_code}' -A kcp-e2e "http://127.0.0.1:$iport/api/v1/namespaces/default/configmaps?resourceVersion=0") == 200 ]] &&
      (($(date +%s%N) - t0 < 1000000000)) && served=$((served + 1))
    r=$(rss_mb); ((r > peak)) && peak=$r
    sleep 1
  done
  wait "$client"
  echo "proxy RSS: $before MB before, at most $peak MB while a client never read a 60 MB LIST; others: $served of 10 LISTs in under 1 s"
  ((peak - before < 64 && served == 10))
}
check "a client that never reads a 60 MB LIST: the proxy's memory stays within 64 MB of before; others served" never_reads never-reads
check "the same over HTTP/2 (a stream window never replenished)" never_reads never-reads-h2

per_client() { # a second proxy that allows 50 connections per address
  local p2 a2; p2=$(free_port) a2=$(free_port)
  "$PROXY_BIN" --upstream-kubeconfig "$ADMIN_KUBECONFIG" --state-dir "$state/p2" --listen "127.0.0.1:$(free_port)" \
    --listen-insecure "127.0.0.1:$p2" --admin-listen "127.0.0.1:$a2" --cache-lazy=false \
    --max-connections-per-client 50 >"$state/proxy2.log" 2>&1 &
  local second=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$a2/readyz" >/dev/null && break; sleep 0.1; done
  /usr/bin/python3 - "$p2" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(60)]
time.sleep(0.5)
closed = 0
for s in held:
    try:
        closed += s.recv(1, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        pass  # still open
    except ConnectionResetError:
        closed += 1
print(f"60 connections from one address: {closed} closed at once")
sys.exit(0 if closed == 10 else 1)
PY
  local rc=$? n; n=$(curl -s "http://127.0.0.1:$a2/metrics" | awk '/limit="connections_per_client"/ {print int($2)}')
  kill "$second"; wait "$second" 2>/dev/null
  echo "counted: ${n:-0}"; ((rc == 0 && ${n:-0} == 10))
}
check "--max-connections-per-client 50: the 51st connection from an address is closed, counted" per_client
raw_status() { # REQUEST-LINE: the status line the proxy answers a raw HTTP/1.1 request with
  /usr/bin/python3 - "$iport" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(sys.argv[2].encode() + b"\r\nHost: x\r\nUser-Agent: kcp-e2e\r\n\r\n")
print(s.makefile("rb").readline().decode().strip())
PY
}
not_for_a_reverse_proxy() {
  local connect absolute
  connect=$(raw_status "CONNECT example.com:443 HTTP/1.1") absolute=$(raw_status "GET http://example.com/api HTTP/1.1")
  echo "CONNECT: $connect; absolute-form: $absolute"
  [[ $connect == "HTTP/1.1 400 Bad Request" && $absolute == "HTTP/1.1 400 Bad Request" ]]
}
check "CONNECT and absolute-form requests get a 400, not silence" not_for_a_reverse_proxy
check "the proxy logged no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' '$state/proxy.log'"
finish
