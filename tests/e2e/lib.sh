# Sourced by every tests/e2e/*_test.sh. The runner (tools/test) sets
# KCLUSTER_DIR to a live cluster and E2E_RESULTS to a file collecting counts.
# A test is a sequence of `check "what it shows" command...` lines.
set -uo pipefail
# shellcheck source=/dev/null
source "$KCLUSTER_DIR/env"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KCLUSTER="$BIN_DIR/kcluster"
export PATH="$BIN_DIR:$PATH"  # the pinned kubectl first
_pass=0 _fail=0
_log=$(mktemp)
trap 'rm -f "$_log"' EXIT

check() {
  local what=$1; shift
  if "$@" >"$_log" 2>&1; then
    echo "  ok    $what"
    # Differential tests' "N/N identical" tallies are shown on success too.
    grep -E '^[0-9]+/[0-9]+ identical' "$_log" | sed 's/^/        /'
    _pass=$((_pass + 1))
  else
    echo "  FAIL  $what"
    echo "        command: $*"
    tail -n 25 "$_log" | sed 's/^/        | /'
    _fail=$((_fail + 1))
  fi
}

# Runs "$@", succeeds when it fails (and prints what it said).
fails() { ! "$@"; }

# http_code TOKEN PATH: the HTTP status kube-apiserver answers to a GET with a bearer token.
http_code() {
  curl -s -o /dev/null -w '%{http_code}' --cacert "$CA_FILE" -H "Authorization: Bearer $1" "$APISERVER_URL$2"
}
expect_code() { # WANT TOKEN PATH
  local got; got=$(http_code "$2" "$3")
  [[ $got == "$1" ]] || { echo "GET $3: HTTP $got, want $1"; return 1; }
}

token_of() { kubectl --kubeconfig "$1" config view --raw -o jsonpath='{.users[0].user.token}'; }

finish() {
  echo "$_pass $_fail" >>"$E2E_RESULTS"
  ((_fail == 0))
}

# running PID: the process exists and is not a zombie awaiting its reaper.
running() { [[ -r /proc/$1/stat ]] && ! grep -q ') Z ' "/proc/$1/stat"; }

# cleartext_kubeconfig FILE PORT: a kubeconfig for a proxy's cleartext
# listener, without credentials (its requests act as the proxy).
cleartext_kubeconfig() {
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters: [{name: proxy, cluster: {server: "http://127.0.0.1:$2"}}]
users: [{name: none, user: {}}]
contexts: [{name: proxy, context: {cluster: proxy, user: none}}]
current-context: proxy
KC
}

# proxy_requests ADMIN-PORT cache|upstream [VERBS [RESOURCES]]: how many
# requests the proxy on ADMIN-PORT answered from its cache, or forwarded;
# VERBS and RESOURCES are alternatives ("list|watch", "configmaps"), all when
# not given.
proxy_requests() {
  curl -s "http://127.0.0.1:$1/metrics" |
    awk -v from="$2" -v verb="${3:-[a-z]+}" -v res="${4:-[^\"]*}" '
      /^kube_cache_proxy_requests_total\{/ && $0 ~ ("verb=\"(" verb ")\"") && $0 ~ ("resource=\"(" res ")\"") &&
        $0 ~ ("served_from=\"" from "\"") {s += $2}
      END {print s + 0}'
}

# free_port: a TCP port free on loopback right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
