# Sourced by tests/faults/run and tests/soak/run (after tests/e2e/lib.sh):
# a proxy whose path to kube-apiserver runs through `kcluster faultproxy`,
# churn, two `kcluster faultcheck` processes (client-go informers and raw
# watchers through the proxy), the faults themselves, and the checkpoint that
# compares everything with ground truth after each.
#
# Needs KCLUSTER_DIR (a live cluster) and PROXY_BIN.
K=$ADMIN_KUBECONFIG
work=$(mktemp -d)
churn_pid="" proxy="" fproxy=""
checker_pids=()
fault_seed=0

faults_cleanup() {
  [[ -n $churn_pid ]] && kill "$churn_pid" 2>/dev/null
  exec 7>&- 8>&- 2>/dev/null
  kill "${checker_pids[@]}" 2>/dev/null
  [[ -n $proxy ]] && { kill "$proxy" 2>/dev/null; wait "$proxy" 2>/dev/null; }
  [[ -n $fproxy ]] && kill "$fproxy" 2>/dev/null
  wait 2>/dev/null
  # The cluster outlives every fault: bring back whatever a failed run left stopped.
  "$KCLUSTER" up "$KCLUSTER_DIR" >/dev/null 2>&1
  rm -rf "$work"
}

metric() { # NAME [LABEL-FILTER]: the sum of a proxy metric's samples
  curl -s "http://127.0.0.1:$aport/metrics" | awk -v n="$1" -v f="${2:-}" \
    '$1 ~ "^"n"({|$)" && index($1, f) {s += $2} END {print s + 0}'
}
apiserver_lists() { # LIST requests of configmaps kube-apiserver has served
  kubectl --kubeconfig "$K" get --raw /metrics |
    awk '/^apiserver_request_total\{/ && /resource="configmaps"/ && /verb="LIST"/ {s += $2} END {print s + 0}'
}
faultmode() { curl -sf "http://127.0.0.1:$fctl/mode?set=$1" >/dev/null; }
wait_for() { # SECONDS COMMAND...: until COMMAND succeeds
  local until=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do ((SECONDS < until)) || return 1; sleep 0.2; done
}
ready() { curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null; }

start_proxy() {
  "$PROXY_BIN" --upstream-kubeconfig "$work/upstream.kubeconfig" --state-dir "$work/proxy-state" \
    --listen "127.0.0.1:$lport" --listen-insecure "127.0.0.1:$iport" --admin-listen "127.0.0.1:$aport" \
    --cache-resources configmaps --warm-restart --cache-save-interval 10s --max-staleness 60s \
    --upstream-keepalive 3s --upstream-dial-timeout 3s --shutdown-grace-period 2s "$@" >>"$work/proxy.log" 2>&1 7>&- 8>&- &
  proxy=$!
  local until=$((SECONDS + 120))
  until ready; do
    running "$proxy" && ((SECONDS < until)) || { echo "the proxy did not get ready"; tail -5 "$work/proxy.log"; return 1; }
    sleep 0.2
  done
}
stop_proxy() { kill -TERM "$proxy"; wait "$proxy"; local rc=$?; proxy=""; return $rc; }

faults_setup() {
  "$KCLUSTER" load --kubeconfig "$K" --resource configmaps --count 300 --namespaces 3 --namespace-prefix flt \
    --size 600 >/dev/null 2>&1 || return 1
  fport=$(free_port) fctl=$(free_port) lport=$(free_port) iport=$(free_port) aport=$(free_port)
  "$KCLUSTER" faultproxy --listen "127.0.0.1:$fport" --target "${APISERVER_URL#https://}" \
    --control "127.0.0.1:$fctl" >"$work/faultproxy.log" 2>&1 &
  fproxy=$!
  wait_for 10 faultmode pass || return 1
  # The proxy reaches kube-apiserver only through the fault proxy (the
  # serving certificate is for 127.0.0.1, whatever the port).
  sed "s#server: $APISERVER_URL#server: https://127.0.0.1:$fport#" "$K" >"$work/upstream.kubeconfig"
  grep -q "127.0.0.1:$fport" "$work/upstream.kubeconfig" || return 1
  cleartext_kubeconfig "$work/proxy.kubeconfig" "$iport"
  start_proxy || return 1
  # Two checkers: watch-list informers over JSON (controller-runtime's
  # default for custom resources), and over protobuf with gzip (how
  # kube-controller-manager and kube-scheduler run theirs in 1.37).
  mkfifo "$work/a.in" "$work/b.in"
  "$KCLUSTER" faultcheck --kubeconfig "$work/proxy.kubeconfig" --verify-against "$K" --informers 2 \
    --watch-list true --watchers 4 <"$work/a.in" >"$work/a.out" 2>"$work/a.err" &
  checker_pids+=($!)
  exec 7>"$work/a.in"
  "$KCLUSTER" faultcheck --kubeconfig "$work/proxy.kubeconfig" --verify-against "$K" --informers 2 --protobuf \
    --watch-list true --watchers 2 <"$work/b.in" >"$work/b.out" 2>"$work/b.err" &
  checker_pids+=($!)
  exec 8>"$work/b.in"
  wait_for 180 grep -q synced "$work/a.out" && wait_for 180 grep -q synced "$work/b.out"
}

churn_start() { # RATE
  fault_seed=$((fault_seed + 1))
  "$KCLUSTER" churn --kubeconfig "$K" --resource configmaps --rate "$1" --duration 1h --seed "$fault_seed" \
    --namespaces 3 --namespace-prefix flt --size 600 --tolerate-errors >>"$work/churn.log" 2>&1 7>&- 8>&- &
  churn_pid=$!
}
churn_stop() { kill "$churn_pid" 2>/dev/null; wait "$churn_pid" 2>/dev/null; churn_pid=""; }

# checkpoint NAME: both checkers compare their informers and watchers with
# ground truth; prints their lines; fails if either found a difference.
checkpoint() {
  local name=$1 c
  echo "check $name" >&7
  echo "check $name" >&8
  for c in a b; do
    wait_for 300 grep -q "^$name: " "$work/$c.out" || { echo "checker $c did not answer"; tail -5 "$work/$c.err"; return 1; }
  done
  sed -n "s/^$name: /[watch-list, json]     /p" "$work/a.out"
  sed -n "s/^$name: /[watch-list, protobuf] /p" "$work/b.out"
  ! grep "^$name: " "$work/a.out" "$work/b.out" | grep -q FAILED
}

# The faults. Each injects and heals; churn runs throughout.
fault_apiserver_restart() {
  "$KCLUSTER" stop "$KCLUSTER_DIR" apiserver --kill >/dev/null
  outage_checks
  "$KCLUSTER" up "$KCLUSTER_DIR" >/dev/null
}
fault_etcd_restart() {
  "$KCLUSTER" stop "$KCLUSTER_DIR" etcd --kill >/dev/null
  sleep 4
  "$KCLUSTER" up "$KCLUSTER_DIR" >/dev/null
}
fault_compaction() {
  # The proxy cannot reach kube-apiserver while etcd is compacted and
  # kube-apiserver restarts (its own watch cache then begins after the
  # compaction): the proxy's resumed watch gets 410 and it relists.
  local before; before=$(metric kube_cache_proxy_cache_relists_total 'encoding="json"')
  faultmode reset
  sleep 3
  "$KCLUSTER" compact "$KCLUSTER_DIR" >/dev/null
  "$KCLUSTER" stop "$KCLUSTER_DIR" apiserver >/dev/null
  "$KCLUSTER" up "$KCLUSTER_DIR" >/dev/null
  faultmode pass
  relisted() { (($(metric kube_cache_proxy_cache_relists_total 'encoding="json"') > before)); }
  check "compaction: the proxy's watch got 410 and it relisted" wait_for 90 relisted
}
fault_path() { # MODE SECONDS: the proxy-apiserver path stalled, dropped or reset
  local before; before=$(metric kube_cache_proxy_cache_reconnects_total 'encoding="json"')
  faultmode "$1"
  sleep "$2"
  faultmode pass
  reconnected() { (($(metric kube_cache_proxy_cache_reconnects_total 'encoding="json"') > before)); }
  check "path $1: the proxy noticed (its watch reconnected)" wait_for 60 reconnected
}
fault_proxy_restart() {
  check "proxy restart: SIGTERM ends the proxy cleanly" stop_proxy
  check "proxy restart: it resumes from its saved state and is ready" start_proxy
}

# While kube-apiserver is down: reads at resourceVersion=0 and (within
# --max-staleness) consistent reads come from the cache, writes get 503.
outage_checks() {
  upstream_down() { (($(metric kube_cache_proxy_upstream_ready) == 0)); }
  check "outage: the proxy sees kube-apiserver down" wait_for 20 upstream_down
  local base="http://127.0.0.1:$iport/api/v1/namespaces/flt-0/configmaps"
  served() { # QUERY: a 200 LIST with items (not as curl: kube-apiserver pretty-prints for curl, so the proxy forwards)
    local body; body=$(curl -sf -A kcp-faults --max-time 10 "$base$1") || return 1
    jq -e '.kind == "ConfigMapList" and (.items | length) > 0' <<<"$body" >/dev/null
  }
  check "outage: a resourceVersion=0 LIST is served from the cache" served "?resourceVersion=0"
  local stale; stale=$(metric kube_cache_proxy_consistent_reads_total 'served_from="stale-cache"')
  check "outage: a consistent LIST is served from the cache within --max-staleness" served ""
  stale_counted() { (($(metric kube_cache_proxy_consistent_reads_total 'served_from="stale-cache"') > stale)); }
  check "outage: ... and counted as a stale read" stale_counted
  write_refused() {
    local out; out=$(curl -s --max-time 15 -w '\n%{http_code}' -X POST -H 'content-type: application/json' \
      -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"during-outage"}}' "$base")
    echo "$out"
    [[ $(tail -1 <<<"$out") == 503 ]] && head -1 <<<"$out" | jq -e '.kind == "Status" and .code == 503' >/dev/null
  }
  check "outage: a write gets a 503 Status" write_refused
  readyz_ok() { curl -s "http://127.0.0.1:$aport/readyz" | grep -q "serving from the cache"; }
  check "outage: /readyz stays ready within --max-staleness, and says why" readyz_ok
}

# run_fault NAME RATE FUNCTION [ARGS...]: churn at RATE, the fault, churn on,
# stop, compare.
run_fault() {
  local name=$1 rate=$2; shift 2
  churn_start "$rate"
  sleep 3
  "$@"
  sleep 3
  churn_stop
  local t0=$SECONDS out
  if out=$(checkpoint "$name" 2>&1); then
    echo "  ok    fault $name: nothing lost ($((SECONDS - t0)) s to settle)"
    _pass=$((_pass + 1))
  else
    echo "  FAIL  fault $name"
    _fail=$((_fail + 1))
  fi
  sed 's/^/        /' <<<"$out"
}
