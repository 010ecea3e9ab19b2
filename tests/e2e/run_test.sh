#!/usr/bin/env bash
# The README's main command: tools/run brings up a cluster that kubectl can use,
# and Ctrl-C (SIGINT) stops everything it started.
source "$(dirname "$0")/lib.sh"
state=$(mktemp -d)
out=$state/run.out

# A shell started in the background ignores SIGINT; start tools/run the way a
# terminal does, with SIGINT at its default, in its own process group.
python3 - "$ROOT/tools/run" "$state" "$out" <<'PY' &
import signal, subprocess, sys
run, state, out = sys.argv[1:]
p = subprocess.Popen([run, "--state-dir", state], stdout=open(out, "w"), stderr=subprocess.STDOUT,
                     preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL), __import__("os").setpgrp()))
open(state + "/run.pid", "w").write(str(p.pid))
p.wait()
PY
launcher=$!

wait_for_line() { for _ in $(seq 600); do grep -q "$1" "$out" 2>/dev/null && return 0; sleep 0.5; done; cat "$out"; return 1; }
check "tools/run prints how to use the cluster" wait_for_line "Ctrl-C"
check "kubectl works with the kubeconfig it wrote" kubectl --kubeconfig "$state/cluster/admin.kubeconfig" get ns
source "$state/cluster/env"
check "Ctrl-C (SIGINT to its process group) stops tools/run" bash -c \
  "kill -INT -- -\$(cat '$state/run.pid'); for i in \$(seq 100); do kill -0 $launcher 2>/dev/null || exit 0; sleep 0.2; done; exit 1"
check "kube-apiserver it started is gone" fails running "$APISERVER_PID"
check "etcd it started is gone" fails running "$ETCD_PID"
"$KCLUSTER" down "$state/cluster" >/dev/null 2>&1
rm -rf "$state"
finish
