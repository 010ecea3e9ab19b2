#!/usr/bin/python3
"""Side-by-side benchmark of kube-cache-proxy and kube-apiserver, driven by
tests/bench/run. Every scenario runs against both servers in the same run,
alternating, several repetitions; for each side it measures the server
process's CPU seconds (/proc/PID/stat), its peak RSS (sampled at 20 Hz),
client-side latency p50/p99, bytes on the wire and requests per second.

Writes results.json (records {"scenario", "proxy", "apiserver", "ratio"}),
REPORT.md and, with gnuplot, memory-during-list-storm.png."""
import argparse
import datetime
import http.client
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from list_conformance import PROTOBUF, Upstream  # noqa: E402  (the admin-certificate client)

TICKS = os.sysconf("SC_CLK_TCK")
KEYS = ("cpu_s", "peak_rss_mb", "p50_ms", "p99_ms", "bytes", "rps")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """Samples the RSS of some processes at 20 Hz."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.samples, self.running = pids, [], True

    def run(self):
        t0 = time.time()
        while self.running:
            self.samples.append((time.time() - t0, {name: rss_mb(pid) for name, pid in self.pids.items()}))
            time.sleep(0.05)

    def stop(self):
        self.running = False
        self.join()

    def peak(self, name):
        return max((s[name] for _, s in self.samples), default=0.0)


class Side:
    """One server as a benchmark target: how to send it a GET."""

    def __init__(self, name, pid, connect):
        self.name, self.pid, self.connect = name, pid, connect

    def get(self, path, gzip=False, accept="application/json"):
        conn = self.connect()
        headers = {"User-Agent": "kcp-bench", "Accept": accept}
        if gzip:
            headers["Accept-Encoding"] = "gzip"
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        n = 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            n += len(chunk)
        conn.close()
        if r.status != 200:
            raise RuntimeError(f"{self.name} GET {path}: HTTP {r.status}")
        return time.perf_counter() - t0, n, r.getheader("Content-Encoding", "")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else 0.0


def measure(side, watch_pids, work):
    """Runs work(side) -> list of (seconds, bytes); returns the side's figures."""
    sampler = Sampler(watch_pids)
    sampler.start()
    cpu0 = {n: cpu_seconds(p) for n, p in watch_pids.items()}
    t0 = time.perf_counter()
    results = work(side)
    wall = time.perf_counter() - t0
    cpu1 = {n: cpu_seconds(p) for n, p in watch_pids.items()}
    sampler.stop()
    out = {"cpu_s": round(cpu1[side.name] - cpu0[side.name], 3), "peak_rss_mb": round(sampler.peak(side.name), 1)}
    if isinstance(results, dict):  # figures the client measured itself (watch delivery latency)
        out.update(results)
    else:
        lat = [r[0] * 1000 for r in results]
        out.update({
            "p50_ms": round(percentile(lat, 50), 2),
            "p99_ms": round(percentile(lat, 99), 2),
            "bytes": sum(r[1] for r in results) // max(1, len(results)),
            "rps": round(len(results) / wall, 2) if wall > 0 else 0.0,
        })
    if side.name == "proxy":  # what kube-apiserver still spent while the proxy served
        out["apiserver_cpu_s"] = round(cpu1["apiserver"] - cpu0["apiserver"], 3)
    return out, sampler.samples


def ratio(a, b):
    return {k: round(a[k] / b[k], 3) if b.get(k) else None for k in KEYS if k in a}


def scenario(name, sides, pids, reps, work):
    """Alternates the sides (proxy, apiserver, and maybe a static file server)
    `reps` times; keeps the median of each figure."""
    runs = {side.name: [] for side in sides}
    samples = {}
    for _ in range(reps):
        for side in sides:
            figures, samples[side.name] = measure(side, pids, work)
            runs[side.name].append(figures)
    record = {"scenario": name}
    for side in runs:
        record[side] = {k: statistics.median(r[k] for r in runs[side]) for k in runs[side][0]}
    record["ratio"] = ratio(record["proxy"], record["apiserver"])
    if "static" in record:
        record["ratio_to_static"] = ratio(record["proxy"], record["static"])
    print(f"  {name}: " + " | ".join(f"{side} {record[side]}" for side in runs), flush=True)
    return record, samples


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxy-port", type=int, required=True)
    ap.add_argument("--proxy-admin-port", type=int, required=True)
    ap.add_argument("--proxy-pid", type=int, required=True)
    ap.add_argument("--apiserver-pid", type=int, required=True)
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--proxy-kubeconfig", required=True)
    ap.add_argument("--kcluster", required=True)
    ap.add_argument("--objects", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--informers", type=int, default=100)
    ap.add_argument("--out", required=True)
    ap.add_argument("--scaled", default="")
    ap.add_argument("--proxy-tls-port", type=int, required=True)
    ap.add_argument("--token", required=True, help="a bearer token allowed to list pods and configmaps (h2load)")
    ap.add_argument("--widgets", type=int, required=True, help="how many 100 KB widgets are loaded")
    ap.add_argument("--watchers", type=int, required=True, help="HTTP/2 watchers in the fan-out (a tenth more over HTTP/1.1)")
    ap.add_argument("--cache-bench", required=True, help="build/tests/bench/cache_bench: the cache's data path on one core")
    args = ap.parse_args()
    upstream = Upstream(args.kubeconfig)
    proxy = Side("proxy", args.proxy_pid, lambda: http.client.HTTPConnection("127.0.0.1", args.proxy_port, timeout=600))
    apiserver = Side("apiserver", args.apiserver_pid,
                     lambda: http.client.HTTPSConnection(upstream.host, upstream.port, context=upstream.ctx, timeout=600))
    sides = (proxy, apiserver)
    pids = {"proxy": args.proxy_pid, "apiserver": args.apiserver_pid}
    n = args.objects
    records = []

    def repeat(path, count, gzip=False, accept="application/json"):
        return lambda side: [side.get(path, gzip, accept)[:2] for _ in range(count)]

    def protobuf_synced(resource):
        """The proxy caches a resource's protobuf form from the first protobuf request on."""
        proxy.get(f"/api/v1/{resource}?resourceVersion=0&limit=1", accept=PROTOBUF)
        for _ in range(600):
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{args.proxy_admin_port}/metrics").read().decode()
            if f'kube_cache_proxy_cache_synced{{resource="{resource}",encoding="protobuf"}} 1' in metrics:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the proxy's protobuf cache of {resource} did not sync")

    def paged(path, limit):
        def walk(side):
            out = []
            cont = ""
            while True:
                conn = side.connect()
                q = f"?limit={limit}" + (f"&continue={cont}" if cont else "")
                t0 = time.perf_counter()
                conn.request("GET", path + q, headers={"User-Agent": "kcp-bench", "Accept": "application/json"})
                body = conn.getresponse().read()
                conn.close()
                out.append((time.perf_counter() - t0, len(body)))
                cont = json.loads(body)["metadata"].get("continue", "")
                if not cont:
                    return out
        return walk

    def concurrent(path, clients, gzip=False):
        def storm(side):
            out, lock = [], threading.Lock()

            def one():
                r = side.get(path, gzip)[:2]
                with lock:
                    out.append(r)
            threads = [threading.Thread(target=one) for _ in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return out
        return storm

    k = f"{n // 1000}k" if n >= 1000 else str(n)
    print(f"bench: {n} configmaps x 10 KB and {n} pods x ~3 KB; {args.reps} repetitions per side", flush=True)
    protobuf_synced("pods")
    for name, work in [
        (f"list-configmaps-{k}-json", repeat("/api/v1/configmaps?resourceVersion=0", 3)),
        (f"list-configmaps-{k}-json-gzip", repeat("/api/v1/configmaps?resourceVersion=0", 3, gzip=True)),
        (f"list-pods-{k}-json", repeat("/api/v1/pods?resourceVersion=0", 3)),
        (f"list-pods-{k}-json-gzip", repeat("/api/v1/pods?resourceVersion=0", 3, gzip=True)),
        (f"list-pods-{k}-protobuf", repeat("/api/v1/pods?resourceVersion=0", 3, accept=PROTOBUF)),
        (f"list-pods-{k}-protobuf-gzip", repeat("/api/v1/pods?resourceVersion=0", 3, gzip=True, accept=PROTOBUF)),
        (f"list-pods-{k}-json-one-node-selector", repeat("/api/v1/pods?resourceVersion=0&fieldSelector=spec.nodeName%3Dnode-1", 10)),
        (f"list-configmaps-{k}-consistent-paged-500", paged("/api/v1/configmaps", 500)),
    ]:
        record, _ = scenario(name, sides, pids, args.reps, work)
        records.append(record)
    # LIST latency against the number of objects: namespaces of 10 and 100,
    # one of the bench namespaces, and all of them (the first scenario).
    points = []
    for ns in ("size10-0", "size100-0", "bench-0"):
        path = f"/api/v1/namespaces/{ns}/configmaps?resourceVersion=0"
        count = len(json.loads(upstream.get(path)[1])["items"])
        if any(c == count for c, _ in points):
            continue  # (a quick run's bench namespaces hold 100 too)
        record, _ = scenario(f"list-configmaps-{count}-json", sides, pids, args.reps, repeat(path, 5))
        records.append(record)
        points.append((count, record))
    count = len(json.loads(upstream.get("/api/v1/configmaps?resourceVersion=0")[1])["items"])
    points.append((count, records[0]))
    with open(os.path.join(args.out, "latency-vs-objects.dat"), "w") as f:
        f.write("# objects proxy_p50_ms apiserver_p50_ms proxy_p99_ms apiserver_p99_ms (LIST rv=0 of 10 KB configmaps)\n")
        for count, r in points:
            f.write(f"{count} {r['proxy']['p50_ms']} {r['apiserver']['p50_ms']} {r['proxy']['p99_ms']} "
                    f"{r['apiserver']['p99_ms']}\n")

    def h2load(base, path, n, conns, streams, accept, token=None):
        """h2load's requests over HTTP/2 (TLS for https:// bases); per-request times from its log."""
        def run(side):
            log = os.path.join(args.out, f".h2load-{side.name}.log")
            cmd = ["h2load", "-n", str(n), "-c", str(conns), "-m", str(streams), "-H", f"accept: {accept}",
                   "-H", "user-agent: kcp-bench-h2load", "--log-file", log]
            if token and not base[side.name].startswith("http://"):
                cmd += ["-H", f"authorization: Bearer {token}"]
            out = subprocess.run(cmd + [base[side.name] + path], capture_output=True, text=True, check=True).stdout
            m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
            if not m or int(m.group(1)) != n:
                raise RuntimeError(f"h2load against {side.name}: not every request succeeded\n{out}")
            total = int(re.search(r"traffic: .*?\((\d+)\) total", out).group(1))
            lat = [int(line.split()[2]) / 1e6 for line in open(log) if line.strip()]
            os.unlink(log)
            return [(t, total // n) for t in lat]
        return run

    tls = {"proxy": f"https://127.0.0.1:{args.proxy_tls_port}", "apiserver": f"https://{upstream.host}:{upstream.port}"}
    h2load_n = 20000 if n >= 10000 else 2000
    record, _ = scenario("h2load-list-50-pods-protobuf-tls-bearer-token", sides, pids, args.reps,
                         h2load(tls, "/api/v1/namespaces/h2load-0/pods?resourceVersion=0", h2load_n, 4, 25,
                                PROTOBUF, args.token))
    records.append(record)

    # The physical limit: the same bytes as a static file served by nghttpd,
    # fetched the same way over the same loopback (h2load, one at a time).
    static_dir = os.path.join(args.out, ".static")
    os.makedirs(static_dir, exist_ok=True)
    with open(os.path.join(static_dir, "configmaps.json"), "wb") as f:
        conn = proxy.connect()
        conn.request("GET", "/api/v1/configmaps?resourceVersion=0", headers={"User-Agent": "kcp-bench"})
        f.write(conn.getresponse().read())
        conn.close()
    static_port = free_port()
    nghttpd = subprocess.Popen(["nghttpd", "--no-tls", "-d", static_dir, str(static_port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", static_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        static = Side("static", nghttpd.pid, None)
        pids3 = dict(pids, static=nghttpd.pid)
        base = {"proxy": f"http://127.0.0.1:{args.proxy_port}", "apiserver": tls["apiserver"],
                "static": f"http://127.0.0.1:{static_port}"}
        paths = {"proxy": "/api/v1/configmaps?resourceVersion=0", "apiserver": "/api/v1/configmaps?resourceVersion=0",
                 "static": "/configmaps.json"}

        def fetch(side):
            return h2load({side.name: base[side.name]}, paths[side.name], 5, 1, 1, "application/json",
                          args.token)(side)
        record, _ = scenario(f"list-configmaps-{k}-json-h2load-vs-static-file", (proxy, apiserver, static), pids3,
                             args.reps, fetch)
        records.append(record)
    finally:
        nghttpd.terminate()
        nghttpd.wait()
        subprocess.run(["rm", "-rf", static_dir])

    def dashboard(views, every):
        # A dashboard page view: four cluster-wide consistent LISTs at once,
        # one view every `every` seconds (or as soon as the last one is done).
        def run(side):
            out = []
            start = time.perf_counter()
            for view in range(views):
                time.sleep(max(0.0, start + view * every - time.perf_counter()))
                t0, sizes, lock = time.perf_counter(), [], threading.Lock()

                def one(path):
                    n = side.get(path)[1]
                    with lock:
                        sizes.append(n)
                threads = [threading.Thread(target=one, args=(p,)) for p in
                           ("/api/v1/nodes", "/api/v1/pods", "/api/v1/namespaces", "/api/v1/services")]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                out.append((time.perf_counter() - t0, sum(sizes)))
            return out
        return run

    def reconcilers(workers, per_worker):
        # An operator's reconcile: a label-selected consistent LIST of the 2
        # pods of one of 500 groups (one label value per group), in its namespace.
        def run(side):
            out, lock = [], threading.Lock()

            def worker(seed):
                import random
                rnd = random.Random(seed)
                for _ in range(per_worker):
                    r = side.get(f"/api/v1/namespaces/operator-0/pods?labelSelector=group%3Dg-{rnd.randrange(500)}")[:2]
                    with lock:
                        out.append(r)
            threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return out
        return run

    for name, work in [(f"dashboard-4-consistent-lists-{k}-pods-1-view-per-2s", dashboard(5, 2.0)),
                       ("operator-reconcile-20-workers-2-of-1000-pods-by-label", reconcilers(20, 25))]:
        record, _ = scenario(name, sides, pids, args.reps, work)
        records.append(record)
    def memory_series(name, samples):
        with open(os.path.join(args.out, name), "w") as f:
            f.write("# seconds proxy_rss_mb apiserver_rss_mb (proxy run, then kube-apiserver run)\n")
            for side in ("proxy", "apiserver"):
                f.write(f"# {side} serving\n")
                for t, s in samples[side]:
                    f.write(f"{t:.2f} {s['proxy']:.1f} {s['apiserver']:.1f}\n")
                f.write("\n\n")

    record, samples = scenario(f"list-storm-10-configmaps-{k}", sides, pids, 1,
                               concurrent("/api/v1/configmaps?resourceVersion=0", 10))
    records.append(record)
    memory_series("memory-during-list-storm.dat", samples)
    # Large custom resources (enhancement issue 5116's setup, scaled): 10 concurrent LISTs.
    w = f"{args.widgets // 1000}k" if args.widgets >= 1000 else str(args.widgets)
    record, samples = scenario(f"list-storm-10-widgets-{w}-x-100kb-json", sides, pids, 1,
                               concurrent("/apis/example.com/v1/widgets?resourceVersion=0", 10))
    records.append(record)
    memory_series("memory-during-widget-storm.dat", samples)
    record, _ = scenario(f"list-storm-10-widgets-{w}-x-100kb-json-gzip", sides, pids, 1,
                         concurrent("/apis/example.com/v1/widgets?resourceVersion=0", 10, gzip=True))
    records.append(record)

    # Watch fan-out: many watchers of one namespace, one writer; delivery latency.
    def fanout(h2, h1, rate, seconds):
        def run(side):
            cmd = [args.kcluster, "watchfan", "--writer-kubeconfig", args.kubeconfig, "--namespace", "fanout",
                   "--h2", str(h2), "--h1", str(h1), "--rate", str(rate), "--duration", f"{seconds}s"]
            cmd += (["--url", f"http://127.0.0.1:{args.proxy_port}"] if side.name == "proxy" else
                    ["--url", tls["apiserver"], "--kubeconfig", args.kubeconfig])
            out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            return {"p50_ms": out["p50_ms"], "p99_ms": out["p99_ms"], "bytes": 0,
                    "rps": round(out["received_events"] / seconds, 1)}
        return run
    h1 = max(1, args.watchers // 10)
    record, _ = scenario(f"watch-fanout-{args.watchers}-h2-{h1}-h1-10-updates-per-s", sides, pids, 1,
                         fanout(args.watchers, h1, 10, 20))
    records.append(record)

    # Restart storm: informers (client-go defaults: watch-list, protobuf
    # preferred) started at once, through the proxy or directly.
    def requests_seen(verb):
        status, body = upstream.get("/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            m = re.match(r'apiserver_request_total\{(.*)\} (\S+)$', line)
            if m and f'verb="{verb}"' in m.group(1) and 'resource="pods"' in m.group(1):
                total += float(m.group(2))
        return int(total)

    for encoding in ("json", "protobuf"):
        storm = {}
        for side, kubeconfig in (("proxy", args.proxy_kubeconfig), ("apiserver", args.kubeconfig)):
            lists0, watches0 = requests_seen("LIST"), requests_seen("WATCH")
            cpu0 = {s: cpu_seconds(p) for s, p in pids.items()}
            sampler = Sampler(pids)
            sampler.start()
            t0 = time.perf_counter()
            subprocess.run([args.kcluster, "informer", "--kubeconfig", kubeconfig, "--resource", "pods",
                            "--count", str(args.informers), "--timeout", "10m"] +
                           (["--protobuf"] if encoding == "protobuf" else []), check=True, capture_output=True)
            wall = time.perf_counter() - t0
            sampler.stop()
            storm[side] = {
                "sync_s": round(wall, 2),
                "apiserver_cpu_s": round(cpu_seconds(pids["apiserver"]) - cpu0["apiserver"], 3),
                "apiserver_peak_rss_mb": round(sampler.peak("apiserver"), 1),
                "proxy_cpu_s": round(cpu_seconds(pids["proxy"]) - cpu0["proxy"], 3),
                "apiserver_lists": requests_seen("LIST") - lists0,
                "apiserver_watches": requests_seen("WATCH") - watches0,
            }
        records.append({"scenario": f"restart-storm-{args.informers}-informers-pods-{k}-{encoding}",
                        "through_proxy": storm["proxy"], "direct": storm["apiserver"],
                        "ratio": {key: round(storm["proxy"][key] / storm["apiserver"][key], 3) if storm["apiserver"][key]
                                  else None for key in storm["proxy"]}})
        print(f"  restart storm ({encoding}): through the proxy {storm['proxy']} | directly {storm['apiserver']}",
              flush=True)

    # The cache's data path on one core (no server involved): events applied
    # per second, memory per object against its JSON, a snapshot's cost.
    cache_path = []
    for size in (800, 2200, 10000):
        out = subprocess.run([args.cache_bench, str(min(n, 10000)), str(size)], capture_output=True, text=True, check=True)
        cache_path.append(json.loads(out.stdout))
        print(f"  cache data path, {size}-byte objects: {cache_path[-1]}", flush=True)

    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                          "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
              "scaled": args.scaled, "records": records, "cache_data_path": cache_path}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    write_report(result, args.out)
    return 0


def write_report(result, out):
    lines = [f"# Benchmark: kube-cache-proxy vs kube-apiserver", "",
             f"{result['date']}, {result['machine']['cpus']} CPUs, {result['machine']['memory_gb']} GiB. "
             f"{result['scaled']}", "",
             "Each row: the median over repetitions of one server answering the scenario's requests "
             "(the other side measured in the same run, alternating). CPU is the server process's own; "
             "latency is per request, client-side. `apiserver CPU while proxy served` is what kube-apiserver "
             "still spent meanwhile (its own background work).", "",
             "| scenario | side | CPU s | peak RSS MB | p50 ms | p99 ms | bytes/request | req/s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in result["records"]:
        if "proxy" not in r:
            continue
        for side in ("proxy", "apiserver", "static"):
            if side not in r:
                continue
            f = r[side]
            label = {"proxy": "proxy", "apiserver": "apiserver", "static": "static file (nghttpd)"}[side]
            extra = f" (apiserver CPU while proxy served: {f['apiserver_cpu_s']})" if side == "proxy" else ""
            lines.append(f"| {r['scenario']} | {label}{extra} | {f['cpu_s']} | {f['peak_rss_mb']} | {f['p50_ms']} | "
                         f"{f['p99_ms']} | {f['bytes']} | {f['rps']} |")
        for key, label in (("ratio", "proxy / apiserver"), ("ratio_to_static", "proxy / static file")):
            if key in r:
                q = r[key]
                lines.append(f"| | **{label}** | {q['cpu_s']} | {q['peak_rss_mb']} | {q['p50_ms']} | "
                             f"{q['p99_ms']} | {q['bytes']} | {q['rps']} |")
    for r in result["records"]:
        if "through_proxy" in r:
            lines += ["", f"## {r['scenario']}", "",
                      "| informers connect | sync s | kube-apiserver CPU s | kube-apiserver peak RSS MB | proxy CPU s | LISTs kube-apiserver served | WATCHes |",
                      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for label, key in (("through the proxy", "through_proxy"), ("directly", "direct")):
                s = r[key]
                lines.append(f"| {label} | {s['sync_s']} | {s['apiserver_cpu_s']} | {s['apiserver_peak_rss_mb']} | "
                             f"{s['proxy_cpu_s']} | {s['apiserver_lists']} | {s['apiserver_watches']} |")
    lines += ["", "## The cache's data path (one core, no server: `build/tests/bench/cache_bench N BYTES`)", "",
              "| objects | JSON bytes each | watch events applied/s (parse + store) | heap bytes per object | heap / JSON | RSS / JSON | snapshot ns |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in result.get("cache_data_path", []):
        lines.append(f"| {c['objects']} | {c['object_json_bytes']} | {c['events_per_second']} | {c['heap_per_object_bytes']} | "
                     f"{c['heap_over_json']} | {c['rss_over_json']} | {c['snapshot_ns']} |")
    lines += ["", "Each object costs its JSON plus about 520 bytes (key, with name and namespace as views of it; "
              "uid; labels packed in one string; selectable fields; the shared pointer and its B+tree slot): within "
              "1.5x of the JSON from about 1 KB up.", ""]
    lines += ["", "![LIST latency against the number of objects](latency-vs-objects.png)", "",
              "![memory during a storm of 10 concurrent LISTs](memory-during-list-storm.png)", "",
              "![memory during 10 concurrent LISTs of large custom resources](memory-during-widget-storm.png)", "",
              "Notes. Restart storms run twice: informers asking for JSON, and for protobuf (as kube's own "
              "components do); the proxy caches a resource's protobuf form from the first protobuf request, and "
              "the benchmark waits for that before measuring. Through the proxy, kube-apiserver still serves "
              "each informer's consistent-read probe (a one-item LIST). `h2load-...` sends a bearer token over "
              "TLS to both servers: the proxy checks it with a TokenReview and a SubjectAccessReview (cached) "
              "before answering from its cache. `...-vs-static-file` fetches the whole LIST with h2load, one at "
              "a time: the proxy over cleartext HTTP/2 like nghttpd's static file, kube-apiserver over TLS (it "
              "has no cleartext port). In `watch-fanout-...`, p50/p99 are delivery latencies (write to receipt) "
              "and req/s is events delivered per second; one writer updates one configmap 10 times a second "
              "(the issue's 100/s, scaled to what one 2-core machine can deliver to every watcher); a server too busy to "
              "keep up delivers fewer (the writer writes to kube-apiserver in both runs). Where the proxy is not ahead "
              "and why: a dashboard view's p99, when a consistent read of all pods waits about a second for the "
              "bookmark that shows the cache has reached kube-apiserver's current revision (kube-apiserver's own "
              "cache gets there by an etcd progress notification, which its clients cannot ask for); and the static "
              "file, which nghttpd sends from one buffer while the proxy assembles the response from each object's "
              "bytes."]
    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
