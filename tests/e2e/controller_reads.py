#!/usr/bin/python3
"""What Kubernetes 1.37's controllers send, against a freshly started proxy:
each request is sent to the proxy (cleartext port) until its cache answers
it (the protobuf caches start with the proxy, and must serve within seconds,
not after the minute kube-apiserver may take to send a bookmark), then to
the proxy and directly to kube-apiserver, compared.

  controller_reads.py PROXY_PORT ADMIN_PORT ADMIN_KUBECONFIG NODE

LISTs and GETs must be identical (items and objects byte for byte; the
list's resourceVersion may differ at resourceVersion 0). Watch-lists must
announce the same Content-Type and Content-Encoding, hold the same initial
objects (protobuf frames byte for byte) and end them with the
k8s.io/initial-events-end bookmark. Prints one line per request and
`N/N identical, all from the cache`."""
import gzip
import http.client
import json
import re
import sys
import threading
import time
import urllib.parse
import urllib.request
import zlib

from list_conformance import PROTOBUF, Upstream, compare, pb_fields

PROTOBUF_META_LIST = ("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
                      "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json")
PROTOBUF_META = ("application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,"
                 "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json")
JSON_META_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
JSON_META = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
WATCH_LIST = "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=2"


def get(conn, path, accept, gzip_ok):
    """(status, body as it arrived, Content-Type, Content-Encoding)."""
    headers = {"User-Agent": "kcp-controller-reads", "Accept": accept}
    if gzip_ok:
        headers["Accept-Encoding"] = "gzip"  # client-go's transport asks for it
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body, r.getheader("Content-Type", ""), r.getheader("Content-Encoding", "")


def gunzip_members(body):
    """A body of gzip members one after another (kube-apiserver 1.37's watch-lists)."""
    out, members = b"", 0
    while body:
        d = zlib.decompressobj(31)
        out += d.decompress(body)
        if not d.eof:
            raise ValueError("a gzip member cut short")
        members += 1
        body = d.unused_data
    return out, members


def watch_events(body, content_type):
    """(type, key, bytes) per event, from JSON lines or protobuf frames."""
    out = []
    if "protobuf" in content_type:
        i = 0
        while i + 4 <= len(body):
            n = int.from_bytes(body[i:i + 4], "big")
            frame = body[i + 4:i + 4 + n]
            i += 4 + n
            event = dict(pb_fields(frame))
            envelope = dict(pb_fields(event[2]))[1]
            obj = dict(pb_fields(dict(pb_fields(envelope[4:]))[2]))
            md = dict((k, v) for k, v in pb_fields(obj.get(1, b"")) if k in (1, 3))
            annotations = [dict(pb_fields(v)) for k, v in pb_fields(obj.get(1, b"")) if k == 12]
            end = any(a.get(1) == b"k8s.io/initial-events-end" for a in annotations)
            out.append((event[1].decode(), md.get(3, b"").decode() + "/" + md.get(1, b"").decode(),
                        None if event[1] == b"BOOKMARK" else frame, end))
    else:
        for line in body.splitlines():
            e = json.loads(line)
            md = e["object"].get("metadata", {})
            end = md.get("annotations", {}).get("k8s.io/initial-events-end") == "true"
            out.append((e["type"], md.get("namespace", "") + "/" + md.get("name", ""),
                        None if e["type"] == "BOOKMARK" else line, end))
    return out


def compare_watch(a, b, expect_end):
    (sa, ba, ta, ea), (sb, bb, tb, eb) = a, b
    if (sa, ta, ea) != (sb, tb, eb):
        return f"status/Content-Type/Content-Encoding {(sa, ta, ea)} vs {(sb, tb, eb)}"
    members = ""
    if ea == "gzip":
        (ba, ma), (bb, mb) = gunzip_members(ba), gunzip_members(bb)
        members = f" ({ma} vs {mb} gzip members)"
    pa, pb = watch_events(ba, ta), watch_events(bb, tb)
    initial = lambda evs: sorted(e[2] for e in evs if e[0] == "ADDED")
    if initial(pa) != initial(pb):
        return f"initial events differ: {len(initial(pa))} vs {len(initial(pb))}"
    ends = lambda evs: [e[3] for e in evs if e[0] == "BOOKMARK"][:1]
    if expect_end and (ends(pa) != [True] or ends(pb) != [True]):
        return f"initial-events-end bookmark: proxy {ends(pa)}, kube-apiserver {ends(pb)}"
    return None, f"{len(initial(pa))} objects{members}"


def main():
    proxy_port, admin_port, kubeconfig, node = sys.argv[1:5]
    upstream = Upstream(kubeconfig)

    def served():
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics").read().decode()
        out = {"cache": 0, "upstream": 0}
        for m in re.finditer(r'^kube_cache_proxy_requests_total\{.*served_from="(cache|upstream)"\} (\S+)$', metrics, re.M):
            out[m.group(1)] += int(float(m.group(2)))
        return out

    def proxy_get(path, accept, gzip_ok):
        return get(http.client.HTTPConnection("127.0.0.1", int(proxy_port), timeout=60), path, accept, gzip_ok)

    def direct_get(path, accept, gzip_ok):
        return get(http.client.HTTPSConnection(upstream.host, upstream.port, context=upstream.ctx, timeout=60),
                   path, accept, gzip_ok)

    widget = json.loads(upstream.get("/apis/example.com/v1/namespaces/cr-0/widgets?limit=1")[1])["items"][0]["metadata"]["name"]
    sel = lambda s: urllib.parse.quote(s, safe="")
    cases = [
        # (who sends it, path, Accept, Accept-Encoding gzip, watch)
        ("kube-controller-manager: protobuf watch-list of pods", "/api/v1/pods?" + WATCH_LIST, PROTOBUF, True, True),
        ("kube-scheduler: protobuf watch-list of unfinished pods",
         "/api/v1/pods?fieldSelector=" + sel("status.phase!=Succeeded,status.phase!=Failed") + "&" + WATCH_LIST,
         PROTOBUF, True, True),
        ("kubelet: protobuf LIST of its pods", f"/api/v1/pods?resourceVersion=0&fieldSelector=" + sel(f"spec.nodeName={node}"),
         PROTOBUF, True, False),
        ("kubelet: protobuf watch-list of its pods", "/api/v1/pods?fieldSelector=" + sel(f"spec.nodeName={node}") + "&" + WATCH_LIST,
         PROTOBUF, True, True),
        ("protobuf LIST of secrets by type", "/api/v1/secrets?resourceVersion=0&fieldSelector=" + sel("type=Opaque"),
         PROTOBUF, True, False),
        ("garbage collector: metadata-only LIST of a custom resource", "/apis/example.com/v1/widgets?resourceVersion=0",
         PROTOBUF_META_LIST, True, False),
        ("garbage collector: metadata-only watch-list of a custom resource", "/apis/example.com/v1/widgets?" + WATCH_LIST,
         PROTOBUF_META, True, True),
        ("metadata-only GET of a custom resource", f"/apis/example.com/v1/namespaces/cr-0/widgets/{widget}?resourceVersion=0",
         PROTOBUF_META, False, False),
        ("metadata-only JSON LIST of a custom resource", "/apis/example.com/v1/widgets?resourceVersion=0",
         JSON_META_LIST, False, False),
        ("metadata-only JSON GET of a custom resource", f"/apis/example.com/v1/namespaces/cr-0/widgets/{widget}?resourceVersion=0",
         JSON_META, False, False),
        ("controller-runtime: JSON watch-list of configmaps, gzip", "/api/v1/configmaps?" + WATCH_LIST,
         "application/json", True, True),
        ("a plain watch with gzip accepted: not compressed",
         "/api/v1/namespaces/cr-0/configmaps?watch=1&resourceVersion=0&sendInitialEvents=true"
         "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1", "application/json", True, True),
    ]
    bad = 0
    for name, path, accept, gzip_ok, watch in cases:
        # Until the cache answers (a fresh proxy's protobuf caches are syncing).
        t0, first = time.time(), None
        while time.time() - t0 < 20:
            before = served()
            proxy_get(path, accept, gzip_ok)
            after = served()
            if after["cache"] > before["cache"]:
                first = time.time() - t0
                break
            time.sleep(0.2)
        problem, detail = None, ""
        if first is None:
            problem = "never served from the cache in 20 s"
        else:
            before = served()
            results = {}
            threads = [threading.Thread(target=lambda k, f: results.__setitem__(k, f(path, accept, gzip_ok)), args=(k, f))
                       for k, f in (("proxy", proxy_get), ("direct", direct_get))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            after = served()
            a, b = results["proxy"], results["direct"]
            if watch:
                r = compare_watch(a, b, "allowWatchBookmarks=true" in path)
                problem, detail = r if isinstance(r, tuple) else (r, "")
            else:
                if a[3] != b[3]:
                    problem = f"Content-Encoding {a[3]!r} vs {b[3]!r}"
                else:
                    unz = lambda r: gzip.decompress(r[1]) if r[3] == "gzip" else r[1]
                    problem = compare(path, (a[0], unz(a)), (b[0], unz(b)), False)
                    if not problem and a[2] != b[2]:
                        problem = f"Content-Type {a[2]!r} vs {b[2]!r}"
                detail = f"{len(b[1])} bytes"
            if not problem and after["cache"] - before["cache"] != 1:
                problem = f"forwarded ({after['upstream'] - before['upstream']} upstream)"
        bad += problem is not None
        when = f"served from the cache after {first:.1f} s" if first is not None else ""
        print(f"{'ok  ' if not problem else 'DIFF'} {name}: {when}; {detail}" + (f"\n     {problem}" if problem else ""))
    print(f"{len(cases) - bad}/{len(cases)} identical, all from the cache")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
