#!/usr/bin/python3
"""Differential WATCH conformance: the same watches opened on the proxy
(served from its cache) and directly on kube-apiserver while `kcluster churn`
writes, compared event by event.

  watch_conformance.py PROXY_PORT ADMIN_PORT ADMIN_KUBECONFIG KCLUSTER [--seconds N]

For watches from a resourceVersion both sides must send byte-identical
events (bookmarks aside, whose timing is each server's own). Watches that
start with the current state (resourceVersion 0, watch-list) may start at
different points, so there the initial events plus the changes must
reconstruct the same final state, with no duplicate and no gap, and the
watch-list must end its initial events with the annotated bookmark.
Both must end the initial events with the k8s.io/initial-events-end
bookmark, or neither. Prints one line per watch and a summary `N/N identical`."""
import argparse
import json
import re
import http.client
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import zlib

from list_conformance import Proxy, Upstream, pb_fields

MARKERS = {  # path suffix (not sent) -> Accept
    "&metadataOnly": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    "&protobufMetadataOnly": "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    "&protobuf": "application/vnd.kubernetes.protobuf, application/json",
}
GZIP = "&gzip"  # path suffix (not sent): Accept-Encoding: gzip, as client-go sends it


class Watch(threading.Thread):
    """Reads one watch response event by event until it ends or is stopped;
    a gzipped one (members one after another) is inflated as it comes."""

    def __init__(self, conn_factory, path):
        super().__init__(daemon=True)
        self.conn, self.path = conn_factory(), path
        self.lines, self.status, self.encoding = [], None, None

    def run(self):
        accept, headers = "application/json", {"User-Agent": "kcp-conformance"}
        if self.path.endswith(GZIP):
            self.path, headers["Accept-Encoding"] = self.path[:-len(GZIP)], "gzip"
        for marker, a in MARKERS.items():
            if self.path.endswith(marker):
                self.path, accept = self.path[:-len(marker)], a
                break
        headers["Accept"] = accept
        self.conn.request("GET", self.path, headers=headers)
        r = self.conn.getresponse()
        self.status = r.status
        self.encoding = r.getheader("Content-Encoding", "")
        protobuf = "protobuf" in r.getheader("Content-Type", "")
        buf, inflater = b"", zlib.decompressobj(31)
        try:
            while True:
                chunk = r.read1(65536)
                if not chunk:
                    return
                if self.encoding == "gzip":
                    out = b""
                    while chunk:
                        out += inflater.decompress(chunk)
                        chunk = inflater.unused_data if inflater.eof else b""
                        if inflater.eof:
                            inflater = zlib.decompressobj(31)
                    chunk = out
                buf += chunk
                while True:
                    if protobuf:  # frames: a 4-byte big-endian length, then a WatchEvent
                        if len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
                            break
                        n = 4 + int.from_bytes(buf[:4], "big")
                    else:
                        nl = buf.find(b"\n")
                        if nl < 0:
                            break
                        n = nl + 1
                    self.lines.append(buf[:n])
                    buf = buf[n:]
        except Exception:  # closed by stop()
            return

    def stop(self):
        try:
            self.conn.sock.shutdown(2)
        except Exception:
            pass


def pb_event(frame):
    """A protobuf watch frame as the JSON form's dict: type, and the object's
    metadata (name, namespace, resourceVersion, annotations); None when cut off."""
    if len(frame) < 4 or len(frame) - 4 != int.from_bytes(frame[:4], "big"):
        return None
    event = dict(pb_fields(frame[4:]))
    envelope = dict(pb_fields(event[2]))[1]
    obj = pb_fields(dict(pb_fields(envelope[4:]))[2])
    md = {}
    for number, v in pb_fields(dict(obj).get(1, b"")):
        if number in (1, 3, 6) and v:
            md[{1: "name", 3: "namespace", 6: "resourceVersion"}[number]] = v.decode()
        if number == 12:
            entry = dict(pb_fields(v))
            md.setdefault("annotations", {})[entry[1].decode()] = entry[2].decode()
    return {"type": event[1].decode(), "object": {"metadata": md}}


def pb_bookmark_shape(frame):
    """A protobuf bookmark with its resourceVersion masked: what must match kube-apiserver's bytes."""
    event = dict(pb_fields(frame[4:]))
    envelope = dict(pb_fields(event[2]))[1]
    unknown = pb_fields(envelope[4:])
    obj = pb_fields(dict(unknown)[2])
    meta = [(n, b"*" if n == 6 else v) for n, v in pb_fields(dict(obj)[1])]
    return event[1], [f for f in unknown if f[0] != 2], meta, [f for f in obj if f[0] != 1]


def decode(line):
    if line.endswith(b"\n") and line.startswith(b"{"):
        return json.loads(line)
    return pb_event(line) if not line.startswith(b"{") else None


def events(lines):
    out = []
    for line in lines:
        e = decode(line)
        if e is None:
            continue  # cut off when the watch was stopped
        if e["type"] == "BOOKMARK":
            continue
        md = e["object"].get("metadata", {})
        out.append((e["type"], md.get("namespace", "") + "/" + md.get("name", ""), md.get("resourceVersion"), line))
    return out


def final_state(evs):
    """Replays events: name -> resourceVersion; None when a replay is inconsistent."""
    state = {}
    for t, key, rv, _ in evs:
        if t == "ADDED":
            if key in state:
                return None, f"ADDED twice: {key}"
            state[key] = rv
        elif t == "MODIFIED":
            if key not in state:
                return None, f"MODIFIED before ADDED: {key}"
            state[key] = rv
        elif t == "DELETED":
            if state.pop(key, None) is None:
                return None, f"DELETED unknown: {key}"
        else:
            return None, f"unexpected {t}"
    return state, ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("proxy_port", type=int)
    ap.add_argument("admin_port", type=int)
    ap.add_argument("kubeconfig")
    ap.add_argument("kcluster")
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    proxy, upstream = Proxy(args.proxy_port), Upstream(args.kubeconfig)

    def served(where):
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{args.admin_port}/metrics").read().decode()
        return sum(int(float(m)) for m in re.findall(
            r'^kube_cache_proxy_requests_total\{verb="watch".*served_from="%s"\} (\S+)$' % where, metrics, re.M))

    # The protobuf cache starts on the first protobuf request, and serves
    # watches with bookmarks once kube-apiserver has sent it one: wait for that.
    for _ in range(50):
        before = served("cache")
        proxy.get("/api/v1/namespaces/wc-0/configmaps?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                  "&allowWatchBookmarks=true&timeoutSeconds=1", accept=MARKERS["&protobuf"])
        if served("cache") > before:
            break
        time.sleep(0.5)
    forwarded_before = served("upstream")

    # A resourceVersion both stores (JSON and protobuf, each with its own
    # upstream watch) can resume from: a watch from a later one, the future
    # to a store, is forwarded, as designed; so is a protobuf watch from
    # before the protobuf store began (its history starts at its LIST, etcd's
    # revision then, which the JSON store passes only with a later configmap
    # change). So: one change now, and both stores past it.
    def store_rv(encoding):
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{args.admin_port}/metrics").read().decode()
        return int(float(re.search(r'^kube_cache_proxy_cache_resource_version\{resource="configmaps",encoding="%s"\} (\S+)$'
                                   % encoding, metrics, re.M).group(1)))
    status, body = upstream.request("POST", "/api/v1/namespaces/wc-0/configmaps", json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "wc-mark-"}}).encode())
    if status != 201:
        sys.exit(f"creating the marker configmap: {status} {body[:200]}")
    mark = int(json.loads(body)["metadata"]["resourceVersion"])
    for _ in range(100):
        if min(store_rv("json"), store_rv("protobuf")) >= mark:
            break
        time.sleep(0.1)
    rv = str(min(store_rv("json"), store_rv("protobuf")))
    watches = {
        # name: (query, exact)
        "all namespaces from a resourceVersion": (f"resourceVersion={rv}", True),
        "one namespace from a resourceVersion": (f"resourceVersion={rv}", True),
        "label selector (objects move in and out)": (f"resourceVersion={rv}&labelSelector=tier%3Dfrontend", True),
        "label set selector": (f"resourceVersion={rv}&labelSelector=tier+in+%28backend%2Ccache%29", True),
        "field selector": (f"resourceVersion={rv}&fieldSelector=metadata.namespace%3Dwc-1", True),
        "bookmarks allowed": (f"resourceVersion={rv}&allowWatchBookmarks=true", True),
        "resourceVersion 0 (current state, then changes)": ("resourceVersion=0", False),
        "resourceVersion 0 with bookmarks (a watch-list by default)": ("resourceVersion=0&allowWatchBookmarks=true", False),
        "sendInitialEvents=false from 0": ("resourceVersion=0&sendInitialEvents=false&resourceVersionMatch=NotOlderThan",
                                          True),
        "watch-list (sendInitialEvents)": ("resourceVersion=&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                                           "&allowWatchBookmarks=true", False),
        "watch-list with a label selector": ("sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                                             "&allowWatchBookmarks=true&labelSelector=tier%3Dbackend", False),
        "no resourceVersion (consistent state, then changes)": ("", False),
        "metadata only from a resourceVersion": (f"resourceVersion={rv}&metadataOnly", True),
        "protobuf from a resourceVersion": (f"resourceVersion={rv}&protobuf", True),
        "protobuf, label selector": (f"resourceVersion={rv}&labelSelector=tier%3Dfrontend&protobuf", True),
        "protobuf metadata only": (f"resourceVersion={rv}&protobufMetadataOnly", True),
        "protobuf watch-list": ("sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
                                "&protobuf", False),
        "protobuf metadata-only watch-list": ("sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                                              "&allowWatchBookmarks=true&protobufMetadataOnly", False),
        # kube-apiserver 1.37 gzips watch-lists (WatchListCompression) for clients that take gzip, not plain watches.
        "watch-list, gzip accepted": ("sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                                      "&allowWatchBookmarks=true&gzip", False),
        "protobuf watch-list, gzip accepted": ("sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                                               "&allowWatchBookmarks=true&protobuf&gzip", False),
        "resourceVersion 0 with bookmarks, gzip accepted (a watch-list by default)":
            ("resourceVersion=0&allowWatchBookmarks=true&gzip", False),
        "from a resourceVersion, gzip accepted (not compressed)": (f"resourceVersion={rv}&gzip", True),
    }
    def open_upstream():
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{args.admin_port}/metrics").read().decode()
        return int(float(re.search(r'^kube_cache_proxy_watches\{served_from="upstream"\} (\S+)$', metrics, re.M).group(1)))

    opened, forwarded_names = [], []
    for name, (query, exact) in watches.items():
        # Watches that start with the current state stay in one namespace: the
        # cluster may hold large unrelated data elsewhere.
        base = "/api/v1/namespaces/wc-0/configmaps" if name.startswith("one namespace") or not exact \
            else "/api/v1/configmaps"
        path = f"{base}?watch=1&timeoutSeconds=120" + ("&" + query if query else "")
        pw = Watch(lambda: http.client.HTTPConnection("127.0.0.1", args.proxy_port, timeout=300), path)
        dw = Watch(lambda: http.client.HTTPSConnection(upstream.host, upstream.port,
                                                                           context=upstream.ctx, timeout=300), path)
        pw.start()
        dw.start()
        opened.append((name, exact, query, pw, dw))
        # Which watch went upstream, for the failure message.
        for _ in range(100):
            if pw.status is not None:
                break
            time.sleep(0.05)
        if open_upstream() > len(forwarded_names):
            forwarded_names.append(name)
    time.sleep(1)
    subprocess.run([args.kcluster, "churn", "--kubeconfig", args.kubeconfig, "--resource", "configmaps",
                    "--rate", "40", "--duration", f"{args.seconds}s", "--namespaces", "2",
                    "--namespace-prefix", "wc", "--seed", str(args.seed)], check=True, capture_output=True)
    time.sleep(2)  # let both deliver the last events
    for _, _, _, pw, dw in opened:
        pw.stop()
        dw.stop()
    for _, _, _, pw, dw in opened:
        pw.join(5)
        dw.join(5)

    bad = 0
    for name, exact, query, pw, dw in opened:
        problem = ""
        try:
            pe = events(pw.lines)
        except ValueError as e:
            pe, problem = [], f"the proxy sent a line that is not JSON: {e}"
        try:
            de = events(dw.lines)
        except ValueError as e:
            de, problem = [], problem or f"kube-apiserver sent a line that is not JSON: {e}"
        if problem:
            pass
        elif pw.status != dw.status:
            problem = f"status {pw.status} vs {dw.status}"
        elif pw.encoding != dw.encoding:
            problem = f"Content-Encoding {pw.encoding!r} vs {dw.encoding!r}"
        elif exact:
            if [e[3] for e in pe] != [e[3] for e in de]:
                first = next((i for i, (a, b) in enumerate(zip(pe, de)) if a[3] != b[3]), min(len(pe), len(de)))
                problem = (f"{len(pe)} vs {len(de)} events; first difference at #{first}: "
                           f"{pe[first][:3] if first < len(pe) else None} vs {de[first][:3] if first < len(de) else None}")
        else:
            ps, why_p = final_state(pe)
            ds, why_d = final_state(de)
            if ps is None or ds is None:
                problem = f"replay: proxy {why_p or 'ok'}, kube-apiserver {why_d or 'ok'}"
            elif ps != ds:
                diff = sorted(set(ps.items()) ^ set(ds.items()))[:4]
                problem = f"final states differ ({len(ps)} vs {len(ds)} objects): {diff}"
            def bookmarks(lines):
                return [l for l in lines if (decode(l) or {}).get("type") == "BOOKMARK"]

            def ends_initial_events(lines):
                marks = [decode(l) for l in bookmarks(lines)]
                return bool(marks) and marks[0]["object"]["metadata"].get("annotations", {}).get(
                    "k8s.io/initial-events-end") == "true"
            if not problem and ends_initial_events(dw.lines) != ends_initial_events(pw.lines):
                problem = (f"initial-events-end bookmark: kube-apiserver {ends_initial_events(dw.lines)}, "
                           f"proxy {ends_initial_events(pw.lines)}")
            pb_marks = [bookmarks(w.lines)[:1] for w in (pw, dw)]
            if not problem and "protobuf" in query and (
                    not all(pb_marks) or pb_bookmark_shape(pb_marks[0][0]) != pb_bookmark_shape(pb_marks[1][0])):
                problem = f"protobuf bookmarks differ: {pb_marks}"
        changes = sum(1 for e in de)
        print(f"{'ok  ' if not problem else 'DIFF'} {name}: {len(pe)} events via the proxy, {changes} direct"
              + (f"\n     {problem}" if problem else ""))
        bad += bool(problem)
    forwarded = served("upstream") - forwarded_before
    print(f"{len(opened) - bad}/{len(opened)} identical; {forwarded} of them forwarded rather than served from the cache"
          + (f" ({', '.join(forwarded_names)})" if forwarded else ""))
    return 1 if bad or forwarded else 0


if __name__ == "__main__":
    sys.exit(main())
