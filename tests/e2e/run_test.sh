#!/usr/bin/env bash
# The README's main command: tools/run brings up a cluster and the proxy in
# front of it, kubectl works through both, and Ctrl-C (SIGINT) stops
# everything it started.
source "$(dirname "$0")/lib.sh"
state=$(mktemp -d)
out=$state/run.out
port=$(free_port)
admin_port=$(free_port)

# A shell started in the background ignores SIGINT; start tools/run the way a
# terminal does, with SIGINT at its default, in its own process group.
python3 - "$ROOT/tools/run" "$state" "$out" "$port" "$admin_port" <<'PY' &
import os, signal, subprocess, sys
run, state, out, port, admin = sys.argv[1:]
p = subprocess.Popen([run, "--state-dir", state, "--", "--listen", "127.0.0.1:" + port,
                      "--admin-listen", "127.0.0.1:" + admin],
                     stdout=open(out, "w"), stderr=subprocess.STDOUT,
                     preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL), os.setpgrp()))
open(state + "/run.pid", "w").write(str(p.pid))
p.wait()
PY
launcher=$!

wait_for_line() { for _ in $(seq 600); do grep -q "$1" "$out" 2>/dev/null && return 0; sleep 0.5; done; cat "$out"; return 1; }
check "tools/run prints how to use the proxy" wait_for_line "Press Ctrl-C"
check "kubectl works with the cluster's kubeconfig" kubectl --kubeconfig "$state/cluster/admin.kubeconfig" get ns
check "kubectl works through the proxy with the kubeconfig it wrote" \
  kubectl --kubeconfig "$state/proxy.kubeconfig" get ns default
check "the proxy's admin port answers /readyz" bash -c "for i in \$(seq 50); do curl -sf http://127.0.0.1:$admin_port/readyz && exit 0; sleep 0.2; done; exit 1"
source "$state/cluster/env"
proxy_pid=$(pgrep -f -- "--state-dir $state/proxy" | head -1)
check "Ctrl-C (SIGINT to its process group) stops tools/run" bash -c \
  "kill -INT -- -\$(cat '$state/run.pid'); for i in \$(seq 300); do kill -0 $launcher 2>/dev/null || exit 0; sleep 0.2; done; exit 1"
gone() { [[ -n $1 ]] || { echo "no pid to watch"; return 1; }; for _ in $(seq 100); do running "$1" || return 0; sleep 0.2; done; ps -o pid,stat,cmd -p "$1"; return 1; }
check "the proxy it started is gone" gone "$proxy_pid"
check "kube-apiserver it started is gone" gone "$APISERVER_PID"
check "etcd it started is gone" gone "$ETCD_PID"
# Ctrl-C reaches the proxy once (not again from tools/run): it drains and stops.
check "the proxy stopped gracefully (one signal, not two)" \
  bash -c "grep -q '\] stopped\$' '$out' && ! grep -q 'second signal' '$out'"
((_fail == 0)) || { echo "tools/run said (its last 30 lines):"; tail -n 30 "$out" | sed 's/^/        | /'; }
"$KCLUSTER" down "$state/cluster" >/dev/null 2>&1
rm -rf "$state"
finish
