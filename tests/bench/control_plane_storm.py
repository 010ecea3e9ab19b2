#!/usr/bin/python3
"""A control plane's restart storm, directly and through the proxy (issue 18).

A cluster of its own (kcluster up --control-plane) with KWOK nodes, pods from
Deployments and custom resources of several CRDs; then kube-controller-manager,
kube-scheduler and KWOK are restarted at once, first talking to kube-apiserver,
then through a warm kube-cache-proxy. For each restart, from kube-apiserver's
own metrics and /proc: the LIST and WATCH requests it served, the bytes of its
LIST responses and watch events, its CPU seconds and peak RSS over the
restart, and how long each controller took until its last informer synced
(the last "Caches are synced" of its log, from its start).

Then the Grove-shaped scale test of our operator (kcluster operator), through
the proxy and directly: --sets PodSets of 2 pods created, Running, deleted.

Usage: tests/bench/control_plane_storm.py [--nodes N] [--pods P] [--crds C]
       [--objects M] [--sets S] [--out DIR]   (writes DIR/control-plane-storm.{json,md})
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Sampler, cpu_seconds, free_port  # noqa: E402  (the main benchmark's helpers)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "tests/cluster/bin")


def run(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


class Cluster:
    def __init__(self, dir):
        self.dir = dir
        run(os.path.join(ROOT, "tools/kcluster"), "up", dir, "--control-plane")
        self.kubeconfig = self.env()["ADMIN_KUBECONFIG"]

    def env(self):
        """DIR/env as kcluster last wrote it (controlplane adds to it)."""
        env = {}
        for line in open(os.path.join(self.dir, "env")):
            k, _, v = line.strip().partition("=")
            if not k.startswith("#"):
                env[k] = v.strip("'")
        return env

    def kubectl(self, *args, input=None):
        return run(os.path.join(BIN, "kubectl"), "--kubeconfig", self.kubeconfig, *args, input=input)

    def apiserver_pid(self):
        return int(self.env()["APISERVER_PID"])

    def controlplane(self, nodes, server=None, ca=None):
        args = [os.path.join(BIN, "kcluster"), "controlplane", self.dir, "--nodes", str(nodes)]
        if server:
            args += ["--server", server, "--server-ca", ca]
        run(*args)

    def metrics(self):
        """kube-apiserver's LIST/WATCH requests and the bytes it sent for them."""
        text = self.kubectl("get", "--raw", "/metrics")
        m = {"list": 0, "watch": 0, "list_bytes": 0, "watch_bytes": 0}
        for line in text.splitlines():
            if line.startswith("apiserver_request_total{"):
                verb = re.search(r'verb="([A-Z]+)"', line).group(1)
                if verb in ("LIST", "WATCH"):
                    m[verb.lower()] += float(line.rsplit(" ", 1)[1])
            elif line.startswith("apiserver_response_sizes_sum{") and 'verb="LIST"' in line:
                m["list_bytes"] += float(line.rsplit(" ", 1)[1])
            elif line.startswith("apiserver_watch_events_sizes_sum{"):
                m["watch_bytes"] += float(line.rsplit(" ", 1)[1])
        return m


def last_sync_seconds(log):
    """From the last start marker of a component's log to its last "Caches are synced"."""
    start, last = None, None
    for line in open(log, errors="replace"):
        if line.startswith("==== ") and "kcluster starting" in line:
            # RFC 3339 in local time, as klog's lines below: compare wall clocks.
            start = datetime.datetime.fromisoformat(line.split()[1]).replace(tzinfo=None)
            last = None
        elif start and "Caches are synced" in line:
            last = line
    if not start or not last:
        return None
    # klog: I1207 12:00:53.410184 (local time, no year)
    t = datetime.datetime.strptime(last[1:5] + " " + last.split()[1], "%m%d %H:%M:%S.%f")
    return round((t.replace(year=start.year) - start).total_seconds(), 1)


def idle(cluster, seconds=45):
    """kube-apiserver's CPU seconds per second with the control plane running and nothing restarted
    (KWOK's node heartbeats, leader leases, controllers' resyncs): the floor under every restart."""
    pid = cluster.apiserver_pid()
    cpu0 = cpu_seconds(pid)
    time.sleep(seconds)
    rate = (cpu_seconds(pid) - cpu0) / seconds
    print(f"storm: idle: {rate:.3f} CPU s/s", file=sys.stderr)
    return rate


def storm(cluster, label, nodes, server=None, ca=None, proxy_pid=None, settle=45):
    """Restarts the control plane; kube-apiserver's share of it (and the proxy's CPU), measured."""
    pid = cluster.apiserver_pid()
    before, cpu0 = cluster.metrics(), cpu_seconds(pid)
    proxy_cpu0 = cpu_seconds(proxy_pid) if proxy_pid else 0
    peak = Sampler({"kube-apiserver": pid})
    peak.start()
    t0 = time.time()
    cluster.controlplane(nodes, server, ca)
    time.sleep(settle)  # every controller started and synced (KCM's garbage collector takes ~30 s)
    peak.stop()
    cpu = cpu_seconds(pid) - cpu0
    after = cluster.metrics()
    logs = os.path.join(cluster.dir, "logs")
    r = {k: after[k] - before[k] for k in before}
    r.update(side=label, apiserver_cpu_seconds=round(cpu, 2),
             apiserver_cpu_above_idle=round(cpu - cluster.idle_rate * (time.time() - t0), 2),
             proxy_cpu_seconds=round(cpu_seconds(proxy_pid) - proxy_cpu0, 2) if proxy_pid else 0,
             apiserver_peak_rss_mb=round(peak.peak("kube-apiserver")),
             window_seconds=round(time.time() - t0, 1),
             kcm_synced_seconds=last_sync_seconds(os.path.join(logs, "kube-controller-manager.log")),
             scheduler_synced_seconds=last_sync_seconds(os.path.join(logs, "kube-scheduler.log")))
    print(f"storm: {label}: {json.dumps(r)}", file=sys.stderr)
    return r


def operator_scale(cluster, label, sets, proxy_pid=None):
    """The Grove-shaped scale test: our operator, through the control plane's
    server, makes SETS x 2 pods; they run; the sets are deleted and the
    garbage collector removes the pods. kube-apiserver's CPU over it."""
    operator = subprocess.Popen([os.path.join(BIN, "kcluster"), "operator", "--kubeconfig",
                                 cluster.env()["CONTROL_PLANE_ADMIN_KUBECONFIG"]],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)  # its informers synced
        pid = cluster.apiserver_pid()
        cpu0 = cpu_seconds(pid)
        proxy_cpu0 = cpu_seconds(proxy_pid) if proxy_pid else 0
        phases = json.loads(run(os.path.join(BIN, "kcluster"), "podsets", "--kubeconfig", cluster.kubeconfig,
                                "--sets", str(sets), "--namespace", f"podsets-{label}"))
        phases.update(side=label, apiserver_cpu_seconds=round(cpu_seconds(pid) - cpu0, 2),
                      proxy_cpu_seconds=round(cpu_seconds(proxy_pid) - proxy_cpu0, 2) if proxy_pid else 0)
    finally:
        operator.terminate()
        operator.wait()
    print(f"storm: operator {label}: {json.dumps(phases)}", file=sys.stderr)
    return phases


def load(cluster, nodes, pods, crds, objects):
    cluster.controlplane(nodes)
    cluster.kubectl("create", "namespace", "storm")
    per = 100
    for i in range(max(1, pods // per)):
        cluster.kubectl("-n", "storm", "create", "deployment", f"d{i}", "--image=busybox", f"--replicas={min(per, pods)}")
    for c in range(crds):
        group = f"storm{c}.example.com"
        crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": f"things.{group}"},
               "spec": {"group": group, "scope": "Namespaced",
                        "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
                        "versions": [{"name": "v1", "served": True, "storage": True,
                                      "schema": {"openAPIV3Schema": {"type": "object",
                                                 "x-kubernetes-preserve-unknown-fields": True}}}]}}
        cluster.kubectl("apply", "-f", "-", input=json.dumps(crd))
        cluster.kubectl("wait", "--for", "condition=established", "--timeout=60s", f"crd/things.{group}")
        items = [{"apiVersion": f"{group}/v1", "kind": "Thing",
                  "metadata": {"name": f"t{i}", "namespace": "storm", "labels": {"n": str(i % 10)}},
                  "spec": {"data": "x" * 800}} for i in range(objects)]
        for chunk in range(0, objects, 500):
            cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                   "items": items[chunk:chunk + 500]}))
    deadline = time.time() + 1800
    while time.time() < deadline:
        running = cluster.kubectl("-n", "storm", "get", "pods", "--field-selector=status.phase=Running",
                                  "-o", "name").count("\n")
        print(f"storm: {running}/{pods} pods Running", file=sys.stderr)
        if running >= pods:
            return
        time.sleep(10)
    raise SystemExit("pods did not all run")


def ratio(a, b):
    return f"{a / b:.3f}" if b else "-"


def report(res, out):
    d, p = res["direct"], res["proxy"]
    rows = [("LIST requests", "list"), ("WATCH requests", "watch"), ("LIST response bytes", "list_bytes"),
            ("watch event bytes (watch-lists' initial events included)", "watch_bytes"),
            ("CPU seconds", "apiserver_cpu_seconds"),
            ("CPU seconds above its idle rate (the same window with nothing restarted)", "apiserver_cpu_above_idle"),
            ("peak RSS, MB", "apiserver_peak_rss_mb"),
            ("the proxy's CPU seconds", "proxy_cpu_seconds"),
            ("kube-controller-manager: last informer synced, s from start", "kcm_synced_seconds"),
            ("kube-scheduler: last informer synced, s from start", "scheduler_synced_seconds")]
    lines = [f"# Control-plane restart storm ({res['when']})", "",
             f"{res['scale']}. Restarted at once: kube-controller-manager, kube-scheduler and KWOK. "
             "kube-apiserver's own metrics and /proc over the restart "
             f"({d['window_seconds']} s window; idle, it spends {res['idle_cpu_per_second']:.3f} CPU s/s). Command: `{res['command']}`.", "",
             "| kube-apiserver during the restart | directly | through the proxy | proxy / direct |",
             "| --- | ---: | ---: | ---: |"]
    for name, key in rows:
        lines.append(f"| {name} | {d[key]:,.0f} | {p[key]:,.0f} | {ratio(p[key] or 0, d[key] or 0)} |"
                     if key.endswith("bytes") or key in ("list", "watch")
                     else f"| {name} | {d[key]} | {p[key]} | {ratio(p[key] or 0, d[key] or 0)} |")
    od, op = res["operator"]["direct"], res["operator"]["proxy"]
    lines += ["", f"Operator scale test: {od['sets']} PodSets x 2 pods ({od['pods']} pods) made by "
              "`kcluster operator` (controller-runtime; a label-selected LIST from the server each reconcile), "
              "scheduled and run on the KWOK nodes, then deleted (the garbage collector removes the pods); "
              "the operator and the control plane talk to kube-apiserver directly or through the proxy.", "",
              "| phase | directly | through the proxy | proxy / direct |", "| --- | ---: | ---: | ---: |"]
    for name, key in [("create the sets, s", "create_seconds"), ("until every pod is Running, s", "running_seconds"),
                      ("delete, until every pod is gone, s", "delete_seconds"), ("total, s", "total_seconds"),
                      ("kube-apiserver's CPU seconds", "apiserver_cpu_seconds"),
                      ("the proxy's CPU seconds", "proxy_cpu_seconds")]:
        lines.append(f"| {name} | {od[key]:.2f} | {op[key]:.2f} | {ratio(op[key], od[key])} |")
    open(os.path.join(out, "control-plane-storm.md"), "w").write("\n".join(lines) + "\n")
    json.dump(res, open(os.path.join(out, "control-plane-storm.json"), "w"), indent=1)
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--crds", type=int, default=20)
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--sets", type=int, default=500, help="the operator's PodSets (2 pods each)")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/bench"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    run("ninja", "-C", os.path.join(ROOT, "build"))
    state = tempfile.mkdtemp(prefix="storm-")
    cluster = Cluster(os.path.join(state, "cluster"))
    proxy = None
    try:
        load(cluster, a.nodes, a.pods, a.crds, a.objects)
        cluster.idle_rate = idle(cluster)
        direct = storm(cluster, "direct", a.nodes)
        port, aport = free_port(), free_port()
        proxy = subprocess.Popen([os.path.join(ROOT, "build/kube-cache-proxy"), "--upstream-kubeconfig",
                                  cluster.kubeconfig, "--state-dir", os.path.join(state, "proxy"),
                                  "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{aport}",
                                  "--client-ca-file", os.path.join(cluster.dir, "pki/ca.crt")],
                                 stdout=open(os.path.join(state, "proxy.log"), "w"), stderr=subprocess.STDOUT)
        server, ca = f"https://127.0.0.1:{port}", os.path.join(state, "proxy/pki/ca.crt")
        for _ in range(300):
            if os.path.exists(ca):
                break
            time.sleep(0.2)
        # The first start through the proxy caches what the controllers read (its first requests are forwarded).
        storm(cluster, "warm-up", a.nodes, server, ca, proxy.pid)
        through = storm(cluster, "proxy", a.nodes, server, ca, proxy.pid)
        op_proxy = operator_scale(cluster, "proxy", a.sets, proxy.pid)
        cluster.controlplane(a.nodes)  # directly again
        time.sleep(45)  # settled, as after a storm (a restarted kube-controller-manager waits ~15 s for its lease)
        op_direct = operator_scale(cluster, "direct", a.sets)
        report({"when": time.strftime("%Y-%m-%d"), "direct": direct, "proxy": through,
                "operator": {"direct": op_direct, "proxy": op_proxy}, "idle_cpu_per_second": cluster.idle_rate,
                "scale": f"{a.nodes} KWOK nodes, {a.pods} pods from Deployments, {a.crds} CRDs x {a.objects} objects",
                "command": "tests/bench/control_plane_storm.py " + " ".join(sys.argv[1:])}, a.out)
    finally:
        if proxy:
            proxy.terminate()
            proxy.wait()
        run(os.path.join(BIN, "kcluster"), "down", cluster.dir)


if __name__ == "__main__":
    main()
