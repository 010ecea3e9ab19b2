#!/usr/bin/env bash
# The transparent proxy against the real cluster: kubectl and client-go work
# through it over HTTP/2 and HTTP/1.1 exactly as directly, errors are kube
# Status objects, /metrics parses, /readyz follows upstream, and a slow
# reader cannot make the proxy buffer a large response.
source "$(dirname "$0")/lib.sh"
PROXY_BIN=${PROXY_BIN:-$ROOT/build/kube-cache-proxy}
state=$(mktemp -d)
port=$(free_port) iport=$(free_port) aport=$(free_port)
# The transparent proxy: no lazy caching (a cached resource's memory would
# blur the streaming-memory bounds measured below).
"$PROXY_BIN" --upstream-kubeconfig "$ADMIN_KUBECONFIG" --state-dir "$state" --listen "127.0.0.1:$port" \
  --listen-insecure "127.0.0.1:$iport" --admin-listen "127.0.0.1:$aport" --shutdown-grace-period 2s --cache-lazy=false \
  --upstream-keepalive 2s \
  --write-kubeconfig "$state/proxy.kubeconfig" --write-kubeconfig-user-from "$ADMIN_KUBECONFIG" -v 1 \
  --client-ca-file "$CA_FILE" \
  >"$state/proxy.log" 2>&1 &
proxy=$!
cleanup() {
  kill "$proxy" 2>/dev/null; wait "$proxy" 2>/dev/null
  rm -rf "$state"
}
trap 'cleanup; rm -f "$_log"' EXIT
P=$state/proxy.kubeconfig
H1=$state/insecure.kubeconfig
ready() { for _ in $(seq 150); do [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$aport/readyz") == 200 ]] && return 0; sleep 0.2; done; return 1; }
unready() { for _ in $(seq 150); do [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$aport/readyz") == 503 ]] && return 0; sleep 0.2; done; return 1; }
check "the proxy starts and becomes ready" ready
cp "$P" "$H1" && kubectl --kubeconfig "$H1" config use-context kube-cache-proxy-insecure >/dev/null

# kubectl: the same answers through the proxy as directly.
same() { # same KUBECTL-ARGS...: identical stdout+stderr and exit code, proxy vs direct
  local a b ra rb
  a=$(kubectl --kubeconfig "$P" "$@" 2>&1); ra=$?
  b=$(kubectl --kubeconfig "$ADMIN_KUBECONFIG" "$@" 2>&1); rb=$?
  if [[ $a != "$b" || $ra != "$rb" ]]; then echo "proxy ($ra): $a"; echo "direct ($rb): $b"; return 1; fi
}
ns=proxy-e2e
kubectl --kubeconfig "$ADMIN_KUBECONFIG" create ns $ns >/dev/null 2>&1
cat >"$state/cm.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: via-proxy, namespace: $ns, labels: {app: e2e}}
data: {greeting: hello}
YAML
check "kubectl apply through the proxy" kubectl --kubeconfig "$P" apply -f "$state/cm.yaml"
check "kubectl get -o json: identical through the proxy" same -n $ns get configmap via-proxy -o json
check "kubectl get -A: identical through the proxy" same get configmaps -A -l app=e2e \
  -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name,RV:.metadata.resourceVersion
check "kubectl get of a missing object: identical error" same -n $ns get configmap nope
check "kubectl apply again (update) through the proxy" bash -c \
  "sed 's/hello/bonjour/' '$state/cm.yaml' | kubectl --kubeconfig '$P' apply -f - && \
   [[ \$(kubectl --kubeconfig '$ADMIN_KUBECONFIG' -n $ns get cm via-proxy -o jsonpath='{.data.greeting}') == bonjour ]]"
watch_sees() { # PROTOCOL-KUBECONFIG: kubectl get -w through it sees a create made directly
  local out=$state/watch.out name=w-$RANDOM
  timeout 20 kubectl --kubeconfig "$1" -n $ns get configmaps -w -o name >"$out" 2>&1 &
  local w=$!
  # The initial list is printed first; create once the watch is under way.
  for _ in $(seq 50); do [[ -s $out ]] && break; sleep 0.2; done
  sleep 0.5
  kubectl --kubeconfig "$ADMIN_KUBECONFIG" -n $ns create configmap "$name" >/dev/null
  for _ in $(seq 50); do grep -q "configmap/$name" "$out" && { kill $w; wait $w; return 0; }; sleep 0.2; done
  kill $w; wait $w; cat "$out"; return 1
}
check "kubectl get -w streams events through the proxy (HTTP/2)" watch_sees "$P"
check "kubectl get -w streams events through the proxy (HTTP/1.1 cleartext)" watch_sees "$H1"
check "kubectl delete through the proxy" kubectl --kubeconfig "$P" -n $ns delete configmap via-proxy
kubectl --kubeconfig "$ADMIN_KUBECONFIG" -n $ns run pending --image=registry.example.com/none:1 >/dev/null 2>&1
check "kubectl logs of a pod without a node: identical answer" same -n $ns logs pending
check "kubectl exec: identical answer from kube-apiserver" same -n $ns exec pending -- true
check "kubectl port-forward: identical answer from kube-apiserver" \
  same -n $ns port-forward pod/pending 0:80 --pod-running-timeout=2s

# client-go through the proxy, HTTP/2 and HTTP/1.1, while objects change.
check "client-go writes (create/update/delete) through the proxy over HTTP/2" \
  "$KCLUSTER" churn --kubeconfig "$P" --resource configmaps --rate 40 --duration 4s --namespace-prefix proxy-h2
check "client-go writes through the proxy over HTTP/1.1" env DISABLE_HTTP2=1 \
  "$KCLUSTER" churn --kubeconfig "$P" --resource configmaps --rate 40 --duration 4s --namespace-prefix proxy-h1
"$KCLUSTER" churn --kubeconfig "$ADMIN_KUBECONFIG" --resource configmaps --rate 30 --duration 8s \
  --namespace-prefix proxy-h2 >/dev/null 2>&1 &
churn=$!
check "client-go informers through the proxy (HTTP/2, protobuf) equal ground truth during churn" \
  "$KCLUSTER" informer --kubeconfig "$P" --resource configmaps --protobuf --count 2 --verify-against "$ADMIN_KUBECONFIG"
check "client-go informers through the proxy (HTTP/1.1 cleartext, watch-list) equal ground truth" \
  "$KCLUSTER" informer --kubeconfig "$H1" --resource configmaps --watch-list true --verify-against "$ADMIN_KUBECONFIG"
wait $churn

# Client disconnects cancel the upstream stream: kube-apiserver's own gauge
# of open watches goes up with clients and back down when they leave.
upstream_watches() {
  kubectl --kubeconfig "$ADMIN_KUBECONFIG" get --raw /metrics |
    awk '/^apiserver_longrunning_requests\{/ && /resource="configmaps"/ && /verb="WATCH"/ {s += $2} END {print s + 0}'
}
watches_follow_clients() { # CURL-FLAGS...
  local base; base=$(upstream_watches)
  local pids=()
  for _ in 1 2 3 4 5; do
    curl -sN "$@" "http://127.0.0.1:$iport/api/v1/namespaces/$ns/configmaps?watch=1" >/dev/null &
    pids+=($!)
  done
  local up=1 down=1
  for _ in $(seq 50); do (($(upstream_watches) >= base + 5)) && { up=0; break; }; sleep 0.2; done
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null
  for _ in $(seq 50); do (($(upstream_watches) <= base)) && { down=0; break; }; sleep 0.2; done
  echo "upstream watches: before $base, with clients reached: $((1 - up)), after: $(upstream_watches)"
  ((up == 0 && down == 0))
}
check "HTTP/1.1 clients that hang up end their upstream watches" watches_follow_clients
check "HTTP/2 clients that hang up end their upstream watches" watches_follow_clients --http2-prior-knowledge

# Identity: a client's own token is what kube-apiserver judges.
reader=$(token_of "$TEAM_A_READER_KUBECONFIG")
code_via() { curl -s -o /dev/null -w '%{http_code}' --cacert "$state/pki/ca.crt" -H "Authorization: Bearer $2" "https://127.0.0.1:$port$1"; }
expect_via() { local got; got=$(code_via "$2" "$3"); [[ $got == "$1" ]] || { echo "GET $2: HTTP $got, want $1"; return 1; }; }
check "team-a-reader's own token through the proxy: 200 in team-a" expect_via 200 /api/v1/namespaces/team-a/configmaps "$reader"
check "team-a-reader's own token through the proxy: 403 in default" expect_via 403 /api/v1/namespaces/default/configmaps "$reader"

# Errors are kube Status objects.
raw_h1() { # send raw bytes to the cleartext listener, print the response
  python3 - "$iport" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
print(data.decode("latin-1"))
PY
}
bad_request_is_400() {
  local out; out=$(raw_h1 'GET /api HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'); echo "$out"
  grep -q '^HTTP/1.1 400' <<<"$out" && grep -q '"reason":"BadRequest"' <<<"$out"
}
check "a malformed request gets 400 with a Status body" bad_request_is_400
big_headers_are_431() {
  local out; out=$(python3 - "$iport" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
try:
    s.sendall(b"GET /api HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1100000 + b"\r\n\r\n")
except OSError:
    pass  # the proxy may answer and close before reading it all
print(s.recv(65536).decode("latin-1"))
PY
)
  echo "$out"; grep -q '^HTTP/1.1 431' <<<"$out"
}
check "oversized headers get 431" big_headers_are_431

# /metrics: valid Prometheus text, with the requests above.
check "/metrics parses as Prometheus text, counts forwarded requests and upstream connections" /usr/bin/python3 -c "
import sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen('http://127.0.0.1:$aport/metrics').read().decode()
fams = {f.name: f for f in text_string_to_metric_families(text)}
reqs = sum(s.value for s in fams['kube_cache_proxy_requests'].samples if s.labels.get('served_from') == 'upstream')
assert reqs > 50, reqs
assert fams['kube_cache_proxy_upstream_ready'].samples[0].value == 1
assert fams['kube_cache_proxy_upstream_connections'].samples[0].value >= 1
print(len(fams), 'families,', int(reqs), 'forwarded requests')"

# Upstream down: 503 Status, /readyz unready; back up: ready again.
check "stop kube-apiserver" "$KCLUSTER" stop "$KCLUSTER_DIR" apiserver
check "/readyz turns unready when upstream stops" unready
down_is_503() {
  local out; out=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$iport/api/v1/namespaces"); echo "$out"
  grep -q '"reason":"ServiceUnavailable"' <<<"$out" && [[ $(tail -1 <<<"$out") == 503 ]]
}
check "a request while upstream is down gets 503 with a Status body" down_is_503
check "start kube-apiserver again" "$KCLUSTER" up "$KCLUSTER_DIR"
check "/readyz turns ready when upstream returns" ready
check "requests work again" kubectl --kubeconfig "$P" get ns default

# A frozen upstream (SIGSTOP: the TCP connection stays up, nothing answers):
# the keepalive PING fails the connection, so watches through it end (and
# the client can re-watch) instead of hanging forever.
frozen_upstream_ends_watch() {
  source "$KCLUSTER_DIR/env"  # the apiserver was restarted above: a new pid
  curl -sN "http://127.0.0.1:$iport/api/v1/namespaces/$ns/configmaps?watch=1" >/dev/null &
  local w=$!
  sleep 1
  kill -STOP "$APISERVER_PID"
  local ended=1
  for _ in $(seq 100); do kill -0 $w 2>/dev/null || { ended=0; break; }; sleep 0.2; done
  kill -CONT "$APISERVER_PID"
  kill $w 2>/dev/null; wait $w 2>/dev/null
  grep -q "did not answer a PING" "$state/proxy.log" || { echo "no PING timeout logged"; return 1; }
  return $ended
}
check "a watch through a frozen upstream ends within seconds (keepalive PING)" frozen_upstream_ends_watch
check "ready again once upstream resumes" ready
check "requests work after the freeze" kubectl --kubeconfig "$P" get ns default

# A slow reader of a large response: proxy memory stays bounded.
mb=${SLOW_READER_MB:-100}
check "load ${mb} MB of widgets (100 KB each)" \
  "$KCLUSTER" load --kubeconfig "$ADMIN_KUBECONFIG" --resource widgets --count $((mb * 10)) --size 100000 \
  --namespace-prefix slow --concurrency 16
# Memory is measured on the release build (a sanitizer's quarantine would
# swamp the figure), as a second proxy next to the first.
rport=$(free_port)
"$ROOT/build/kube-cache-proxy" --upstream-kubeconfig "$ADMIN_KUBECONFIG" --state-dir "$state/release" --cache-lazy=false \
  --listen "127.0.0.1:$(free_port)" --listen-insecure "127.0.0.1:$rport" --admin-listen "" \
  --write-kubeconfig "$state/release.kubeconfig" --write-kubeconfig-user-from "$ADMIN_KUBECONFIG" \
  --client-ca-file "$CA_FILE" \
  >"$state/release.log" 2>&1 &
release=$!
for _ in $(seq 50); do curl -s "http://127.0.0.1:$rport/version" >/dev/null && break; sleep 0.2; done
check "HTTP/1.1: a reader that pauses 20 s after 1 MB gets every byte, proxy RSS < 64 MB above idle" \
  /usr/bin/python3 "$ROOT/tests/e2e/slow_reader.py" --port "$rport" --pid "$release" \
  --path /apis/example.com/v1/namespaces/slow-0/widgets --expect-items $((mb * 10)) --pause 20 --max-rss-growth-mb 64
check "HTTP/2 (client-go transport): the same, through HTTP/2 flow control" \
  "$KCLUSTER" slowread --kubeconfig "$state/release.kubeconfig" --pid "$release" \
  --path /apis/example.com/v1/namespaces/slow-0/widgets --expect-items $((mb * 10)) --pause 20s --max-rss-growth-mb 64
kill "$release"; wait "$release"
# The same LIST answered from the cache, ten readers at once: the cache holds
# the objects already, each response only references them as it goes.
cport=$(free_port) caport=$(free_port)
"$ROOT/build/kube-cache-proxy" --upstream-kubeconfig "$ADMIN_KUBECONFIG" --state-dir "$state/cached" \
  --listen "127.0.0.1:$(free_port)" --listen-insecure "127.0.0.1:$cport" --admin-listen "127.0.0.1:$caport" \
  --cache-resources widgets.example.com >"$state/cached.log" 2>&1 &
cached=$!
# The cache synced (its first LIST: 100 MB in pages of 50 MB) before the
# readers' baseline is taken: /readyz says so (a 200 from the listener could
# be a forwarded answer while the sync still runs, as CI saw).
for _ in $(seq 300); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$caport/readyz") == 200 ]] && break
  sleep 0.2
done
sleep 2
check "from the cache: a reader that pauses 20 s after 1 MB gets every byte, proxy RSS < 64 MB above its level" \
  /usr/bin/python3 "$ROOT/tests/e2e/slow_reader.py" --port "$cport" --pid "$cached" \
  --path "/apis/example.com/v1/namespaces/slow-0/widgets?resourceVersion=0" --expect-items $((mb * 10)) \
  --pause 20 --max-rss-growth-mb 64
cached_slow_readers() {
  local pids=() i failed=0
  for i in $(seq 10); do
    /usr/bin/python3 "$ROOT/tests/e2e/slow_reader.py" --port "$cport" --pid "$cached" \
      --path "/apis/example.com/v1/namespaces/slow-0/widgets?resourceVersion=0" --expect-items $((mb * 10)) \
      --pause 20 --max-rss-growth-mb 640 >"$state/reader.$i" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed=$((failed + 1)); done
  cat "$state"/reader.* | sort | uniq -c | head -5
  local from_cache
  from_cache=$(proxy_requests "$caport" cache list)
  echo "LISTs served from the cache: $from_cache"
  ((failed == 0 && from_cache >= 10))
}
check "10 readers pausing 20 s in the same cached LIST: every byte, proxy RSS < 10 x 64 MB above its level" \
  cached_slow_readers
kill "$cached"; wait "$cached"

check "the proxy logged no crash or sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' '$state/proxy.log'"
check "SIGTERM stops the proxy cleanly" bash -c "kill -TERM $proxy; for i in \$(seq 50); do kill -0 $proxy 2>/dev/null || exit 0; sleep 0.2; done; exit 1"
wait "$proxy"; rc=$?
check "and it exits 0" test "$rc" = 0
finish
