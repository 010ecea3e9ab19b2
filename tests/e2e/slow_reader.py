#!/usr/bin/python3
"""A client that reads 1 MB of a large response, stops reading for a while,
then reads the rest: checks every byte arrives (the JSON list is whole, with
the expected item count) and that the proxy's RSS never grows by more than a
bound above its idle level, sampled from /proc while the client reads."""
import argparse
import http.client
import json
import socket
import sys
import threading
import time


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--expect-items", type=int, required=True)
    ap.add_argument("--pause", type=float, default=20)
    ap.add_argument("--max-rss-growth-mb", type=float, default=64)
    a = ap.parse_args()

    idle = rss_mb(a.pid)
    peak = [idle]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb(a.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for attempt in range(60):  # 429 while a restarted apiserver's watch cache warms up
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=300)
        conn.connect()
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        conn.request("GET", a.path, headers={"Accept": "application/json"})
        resp = conn.getresponse()
        if resp.status != 429:
            break
        resp.read()
        conn.close()
        time.sleep(1)
    if resp.status != 200:
        print("HTTP", resp.status, resp.read(2000))
        return 1
    start = time.time()
    body = bytearray(resp.read(1 << 20))
    print(f"read {len(body)} bytes, pausing {a.pause} s", flush=True)
    time.sleep(a.pause)
    while True:
        chunk = resp.read(1 << 20)
        if not chunk:
            break
        body += chunk
    stop.set()
    sampler.join()
    items = len(json.loads(body)["items"])
    growth = peak[0] - idle
    print(f"{len(body) / 1e6:.1f} MB in {time.time() - start:.1f} s, {items} items; proxy RSS idle {idle:.1f} MB, "
          f"peak {peak[0]:.1f} MB (+{growth:.1f} MB, bound {a.max_rss_growth_mb} MB)")
    if items != a.expect_items:
        print(f"expected {a.expect_items} items")
        return 1
    return 0 if growth <= a.max_rss_growth_mb else 1


if __name__ == "__main__":
    sys.exit(main())
