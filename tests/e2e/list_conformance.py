#!/usr/bin/python3
"""Differential LIST conformance: the same LIST requests sent to the proxy
(cleartext port, acting as the proxy's identity) and directly to
kube-apiserver (admin certificate), compared response by response.

  list_conformance.py PROXY_PORT ADMIN_PORT ADMIN_KUBECONFIG [--seed N] [--count N]

Identical means: same HTTP status; for errors, the same Status body; for
lists, byte-identical items and framing. Where kube-apiserver may answer at
a point of its own choosing (resourceVersion 0, NotOlderThan, consistent
reads), the list's resourceVersion and the resourceVersion inside continue
tokens are allowed to differ; such differences are counted and listed. Paged
requests are walked to the end on both sides, each following its own
continue tokens, and once with the other side's token.
Prints one line per difference and a summary `N/N identical`."""
import argparse
import base64
import http.client
import json
import os
import random
import re
import ssl
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import yaml

from compare_cache import items_bytes


class Upstream:
    """kube-apiserver, reached with the admin kubeconfig's client certificate."""

    def __init__(self, kubeconfig):
        cfg = yaml.safe_load(open(kubeconfig))
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"]
        files = {}
        for key in ("certificate-authority", "client-certificate", "client-key"):
            section = cluster if key == "certificate-authority" else user
            if key in section:
                files[key] = section[key]
            else:  # embedded as KEY-data
                fd, files[key] = tempfile.mkstemp()
                os.write(fd, base64.b64decode(section[key + "-data"]))
                os.close(fd)
        self.ctx = ssl.create_default_context(cafile=files["certificate-authority"])
        self.ctx.load_cert_chain(files["client-certificate"], files["client-key"])
        url = urllib.parse.urlparse(cluster["server"])
        self.host, self.port = url.hostname, url.port

    def get(self, path, gzip=False, accept="application/json"):
        return self.request("GET", path, gzip=gzip, accept=accept)

    def request(self, method, path, body=None, gzip=False, accept="application/json"):
        c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
        r = request(c, path, method, body, gzip, accept)
        return r if gzip else r[:2]


class Proxy:
    def __init__(self, port):
        self.port = port

    def get(self, path, gzip=False, accept="application/json"):
        r = request(http.client.HTTPConnection("127.0.0.1", self.port, timeout=60), path, gzip=gzip, accept=accept)
        return r if gzip else r[:2]


METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_OBJECT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
# client-go's defaults: protobuf first for built-in types (custom resources answer JSON).
PROTOBUF = "application/vnd.kubernetes.protobuf, application/json"
PROTOBUF_METADATA_LIST = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1," + \
    METADATA_LIST + ",application/json"
PROTOBUF_METADATA_OBJECT = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1," + \
    METADATA_OBJECT + ",application/json"


def pb_fields(b):
    """A protobuf message's fields as (number, value): bytes for length-delimited, int for varints."""
    def varint(i):
        v = shift = 0
        while True:
            c = b[i]
            i += 1
            v |= (c & 0x7F) << shift
            shift += 7
            if c < 0x80:
                return v, i
    out, i = [], 0
    while i < len(b):
        tag, i = varint(i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            v, i = varint(i)
        elif wire == 2:
            n, i = varint(i)
            v, i = b[i:i + n], i + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            v, i = b[i:i + n], i + n
        else:
            raise ValueError(f"wire type {wire}")
        out.append((number, v))
    return out


def pb_list(body):
    """A protobuf list body as (type meta, ListMeta as a dict, items)."""
    assert body.startswith(b"k8s\x00"), body[:20]
    unknown = dict(pb_fields(body[4:]))
    fields = pb_fields(unknown[2])
    meta = {}
    for number, v in pb_fields(dict(fields).get(1, b"")):
        if number == 2:
            meta["resourceVersion"] = v.decode()
        elif number == 3 and v:
            meta["continue"] = v.decode()
        elif number == 4:
            meta["remainingItemCount"] = v
    return unknown[1], meta, [v for number, v in fields if number == 2]


def request(conn, path, method="GET", body=None, gzip=False, accept="application/json"):
    """(status, body, Content-Encoding); a gzip body is inflated (and must inflate)."""
    # Not curl's user agent: kube-apiserver pretty-prints for curl.
    headers = {"User-Agent": "kcp-conformance", "Accept": accept}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if gzip:
        headers["Accept-Encoding"] = "gzip"
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    body = r.read()
    encoding = r.getheader("Content-Encoding", "")
    conn.close()
    if encoding == "gzip":
        body = __import__("gzip").decompress(body)
    return r.status, body, encoding


def decode_token(token):
    if not token:
        return None
    t = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return t["rv"], t["start"].lstrip("/")  # the watch cache writes a leading '/', etcd not


def list_meta(body):
    if body.startswith(b"k8s\x00"):
        return pb_list(body)[1]
    return json.loads(body).get("metadata", {})


def masked(body, token):
    """The items' bytes, and the framing around them with the list's
    resourceVersion and continue token masked."""
    if body.startswith(b"k8s\x00"):
        type_meta, meta, items = pb_list(body)
        return items, (type_meta, meta.get("remainingItemCount"))
    items = items_bytes(body)
    frame = re.sub(rb'"resourceVersion":"\d+"', b'"resourceVersion":"*"', body.replace(items, b"<items>", 1))
    return items, frame.replace(token.encode(), b"<continue>") if token else frame


def compare(what, a, b, exact):
    """Compares two responses to the same request; returns None or a reason."""
    (sa, ba), (sb, bb) = a, b
    if sa != sb:
        return f"status {sa} vs {sb}: {ba[:200]!r} | {bb[:200]!r}"
    if sa != 200:
        return None if ba == bb else f"error bodies differ: {ba[:300]!r} | {bb[:300]!r}"
    if ba == bb:
        return None
    ma, mb = list_meta(ba), list_meta(bb)
    ta, tb = ma.get("continue", ""), mb.get("continue", "")
    if exact:
        # Exact reads: the only freedom is the continue token's spelling (watch
        # cache vs etcd); its meaning must be the same.
        if ba.startswith(b"k8s\x00") and bb.startswith(b"k8s\x00"):
            same = masked(ba, ta) == masked(bb, tb) and ma.get("resourceVersion") == mb.get("resourceVersion")
        else:
            same = ba.replace(ta.encode(), b"") == bb.replace(tb.encode(), b"")
        if decode_token(ta) != decode_token(tb) or not same:
            return f"exact read differs: {ba[:300]!r} | {bb[:300]!r}"
        return None
    da, db = decode_token(ta), decode_token(tb)
    if (da is None) != (db is None) or (da and da[1] != db[1]):
        return f"continue tokens differ: {da} vs {db}"
    if ma.get("remainingItemCount") != mb.get("remainingItemCount"):
        return f"remainingItemCount {ma.get('remainingItemCount')} vs {mb.get('remainingItemCount')}"
    if masked(ba, ta) != masked(bb, tb):
        return f"bodies differ: {ba[:300]!r} | {bb[:300]!r}"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("proxy_port", type=int)
    ap.add_argument("admin_port", type=int)
    ap.add_argument("kubeconfig")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=320)
    ap.add_argument("--namespaces", default="conf-0,conf-1")
    args = ap.parse_args()
    proxy, upstream = Proxy(args.proxy_port), Upstream(args.kubeconfig)
    rnd = random.Random(args.seed)
    namespaces = args.namespaces.split(",")

    def cache_rv(resource):
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{args.admin_port}/metrics").read().decode()
        m = re.search(r'^kube_cache_proxy_cache_resource_version\{resource="%s",encoding="json"\} (\S+)$' % re.escape(resource),
                      metrics, re.M)
        return str(int(float(m.group(1))))

    labels = ["", "app=alpha", "app in (alpha,bravo,charlie)", "app!=alpha", "tier", "!tier",
              "tier notin (cache)", "app=alpha,tier=frontend", "tier=backend", "app in (", "app>1"]
    common_fields = ["", "metadata.namespace=conf-1", "metadata.name!=x", "metadata.name=configmap-000003",
                     "no.such.field=1", r"metadata.name=a\x"]
    resources = {
        # name as cached: (collection path prefix, namespaced, extra field selectors)
        "configmaps": ("/api/v1", True, []),
        "secrets": ("/api/v1", True, ["type=Opaque", "type!=Opaque"]),
        "pods": ("/api/v1", True, ["spec.nodeName=node-1", "spec.nodeName=", "status.phase=Pending",
                                    "spec.restartPolicy=OnFailure", "spec.nodeName=node-2,status.phase!=Running"]),
        "widgets.example.com": ("/apis/example.com/v1", True, []),
        "namespaces": ("/api/v1", False, ["status.phase=Active"]),
    }
    results = []  # (description, reason or None)
    plurals = {name.split(".")[0] for name in resources}

    def apiserver_lists():
        status, body = upstream.get("/metrics")
        total = 0
        for line in body.decode().splitlines():
            m = re.match(r'apiserver_request_total\{(.*)\} (\S+)$', line)
            # A LIST selecting metadata.name in a namespace counts as a GET there.
            if m and re.search(r'verb="(LIST|GET)"', m.group(1)) and re.search(r'resource="(%s)"' % "|".join(plurals), m.group(1)):
                total += float(m.group(2))
        return int(total)

    def proxy_served():
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{args.admin_port}/metrics").read().decode()
        out = {"cache": 0, "upstream": 0, "probes": 0}
        for line in metrics.splitlines():
            m = re.match(r'kube_cache_proxy_consistent_read_probes_total\{.*\} (\S+)$', line)
            if m:
                out["probes"] += int(float(m.group(1)))
            m = re.match(r'kube_cache_proxy_requests_total\{.*verb="(?:list|get)".*served_from="(\w+)"\} (\S+)$', line)
            if m:
                out[m.group(1)] += int(float(m.group(2)))
        return out

    # Object names for GETs, read before counting kube-apiserver's requests.
    names = {}  # (resource, namespace) -> object names
    for name, (prefix, namespaced, _) in resources.items():
        for namespace in namespaces if namespaced else [""]:
            path = prefix + (f"/namespaces/{namespace}" if namespace else "") + "/" + name.split(".")[0]
            status, body = upstream.get(path)
            names[(name, namespace)] = [o["metadata"]["name"] for o in json.loads(body)["items"]] if status == 200 else []

    # The protobuf cache is built on the first protobuf request: ask per
    # resource until the cache answers it (custom resources have no protobuf
    # form: once the proxy has found that out, it answers them in JSON).
    for name, (prefix, namespaced, _) in resources.items():
        for _ in range(100):
            before = proxy_served()["cache"]
            proxy.get(prefix + "/" + name.split(".")[0] + "?resourceVersion=0&limit=1", accept=PROTOBUF)
            if proxy_served()["cache"] > before:
                break
            time.sleep(0.1)

    lists_before, served_before = apiserver_lists(), proxy_served()

    def run(desc, path, exact, accept="application/json"):
        a, b = proxy.get(path, accept=accept), upstream.get(path, accept=accept)
        results.append((desc, compare(desc, a, b, exact)))
        return a, b

    for i in range(args.count):
        name = rnd.choice(list(resources))
        prefix, namespaced, extra = resources[name]
        plural = name.split(".")[0]
        if rnd.random() < 0.25:
            # A GET of one object (or of one that is not there).
            namespace = rnd.choice(namespaces) if namespaced else ""
            path = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{plural}/" + \
                rnd.choice(names[(name, namespace)] + ["no-such-object"])
            q = rnd.choice(["?resourceVersion=0", "", "?resourceVersion=" + cache_rv(name), "?resourceVersion=x",
                            "?resourceVersion=0&pretty=true"])
            if rnd.random() < 0.2:  # metadata only, as metadata informers ask
                p = path + q
                accept = rnd.choice([METADATA_OBJECT, PROTOBUF_METADATA_OBJECT])
                results.append((p + f" ({accept})", compare(p, proxy.get(p, accept=accept),
                                                            upstream.get(p, accept=accept), True)))
                continue
            accept = rnd.choice(["application/json", PROTOBUF])
            run(path + q + f" ({accept})", path + q, True, accept)
            continue
        scope = rnd.choice(["all"] + (namespaces + ["conf-none"] if namespaced else []))
        path = prefix + ("" if scope == "all" else f"/namespaces/{scope}") + "/" + plural
        q = {}
        sel = rnd.random()
        if sel < 0.35:
            q["labelSelector"] = rnd.choice(labels)
        elif sel < 0.7:
            q["fieldSelector"] = rnd.choice(common_fields + extra * 2)
        mode = rnd.choice(["0", "0", "notolderthan", "exact", "legacy", "consistent"])
        limit = rnd.choice([0, 1, 3, 25, 500])
        exact = mode in ("exact", "legacy")
        if mode == "0":
            q["resourceVersion"] = "0"
        elif mode == "notolderthan":
            q["resourceVersion"], q["resourceVersionMatch"] = cache_rv(name), "NotOlderThan"
        elif mode == "exact":
            q["resourceVersion"], q["resourceVersionMatch"] = cache_rv(name), "Exact"
        elif mode == "legacy":
            q["resourceVersion"], limit = cache_rv(name), limit or 3
        if limit:
            q["limit"] = str(limit)
        full = path + ("?" + urllib.parse.urlencode(q) if q else "")
        accept = rnd.choice(["application/json", PROTOBUF])
        if rnd.random() < 0.1:
            # Metadata only (as=PartialObjectMetadataList), as metadata informers ask.
            accept = rnd.choice([METADATA_LIST, PROTOBUF_METADATA_LIST])
            results.append((full + f" ({accept})", compare(full, proxy.get(full, accept=accept),
                                                           upstream.get(full, accept=accept), exact)))
            continue
        if rnd.random() < 0.15:
            # gzip asked for: both compress (over 128 KiB) or neither, and inflate to the same bytes.
            ga, gb = proxy.get(full, gzip=True, accept=accept), upstream.get(full, gzip=True, accept=accept)
            reason = compare(full, ga[:2], gb[:2], exact)
            if not reason and ga[2] != gb[2]:
                reason = f"Content-Encoding {ga[2]!r} vs {gb[2]!r}"
            results.append((full + f" (gzip, {accept})", reason))
            continue
        a, b = run(full + f" ({accept})", full, exact, accept)
        # Walk the pages: each side with its own tokens; the first step also
        # with the other side's token (a client may move between them).
        crossed = False
        for _ in range(200):
            if a[0] != 200 or b[0] != 200:
                break
            ta, tb = list_meta(a[1]).get("continue", ""), list_meta(b[1]).get("continue", "")
            if not ta or not tb:
                break
            nq = {k: v for k, v in q.items() if k not in ("resourceVersion", "resourceVersionMatch")}
            if not crossed:
                crossed = True
                nq["continue"] = tb
                p = path + "?" + urllib.parse.urlencode(nq)
                results.append((p + " (kube-apiserver's token to both)",
                                compare(p, proxy.get(p, accept=accept), upstream.get(p, accept=accept), True)))
            nq["continue"] = ta
            pa = path + "?" + urllib.parse.urlencode(nq)
            nq["continue"] = tb
            pb = path + "?" + urllib.parse.urlencode(nq)
            a, b = proxy.get(pa, accept=accept), upstream.get(pb, accept=accept)
            results.append((pa + f" (next page, {accept})", compare(pa, a, b, exact)))

    # kube-apiserver counts a request just after answering it: let the last settle.
    served_after = proxy_served()
    probes = served_after["probes"] - served_before["probes"]
    expected = lists_before + len(results) + served_after["upstream"] - served_before["upstream"] + probes
    for _ in range(20):
        lists_after = apiserver_lists()
        if lists_after >= expected:
            break
        time.sleep(0.1)
    cached = served_after["cache"] - served_before["cache"]
    forwarded = served_after["upstream"] - served_before["upstream"]
    bad = [(d, r) for d, r in results if r]
    for d, r in bad:
        print(f"DIFF {d}\n     {r}")
    print(f"{len(results) - len(bad)}/{len(results)} identical; the proxy served {cached} from its cache and "
          f"forwarded {forwarded}")
    # Every request went once to each side: kube-apiserver saw the direct
    # ones and the forwarded ones, never the cached ones.
    reached = lists_after - lists_before
    print(f"kube-apiserver LISTs (and single-name GETs) of these resources: {reached} = {len(results)} direct + "
          f"{forwarded} forwarded + {probes} consistent-read probes")
    ok = not bad and reached == len(results) + forwarded + probes and cached + forwarded == len(results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
