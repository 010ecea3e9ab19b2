#!/usr/bin/python3
"""Impersonation, selector and node-identity matrix: every case is sent
through the proxy and to kube-apiserver directly with the same credentials
and headers; status codes must be equal, refusals the same bytes (JSON or
protobuf), and allowed JSON lists and objects must name the same objects.

  impersonation_matrix.py CONFIG_JSON

CONFIG_JSON: {"apiserver": URL, "cluster_ca": FILE, "proxies": {NAME: {"port": P, "ca": FILE}},
              "identities": {NAME: {"proxy": NAME, "token": T | "cert": CRT, "key": KEY,
                                    "direct": {"token": T | "cert": CRT, "key": KEY}}},
              "node": NODE_NAME, "rv": {RESOURCE: RV}}
An identity's "direct" credentials are those kube-apiserver sees for it
(the proxy's own for a trust-local proxy); by default the same. "skip" lists
header sets whose answer kube-apiserver itself makes depend on history: a
user allowed every mode impersonating a node becomes one with or without
group system:nodes, by the mode that last worked for it (which requests
through other proxies, or none, may have set).
Each identity's cases run in order on a thread of its own (kube-apiserver
remembers which impersonation mode last worked per user, and so does the
proxy for certificate users). Prints one line per difference and
`N/N identical (A allowed, R refused)`."""
import concurrent.futures
import http.client
import json
import ssl
import sys
import urllib.parse

PROTOBUF = "application/vnd.kubernetes.protobuf, application/json"

# Impersonation header sets: (label, [(header, value), ...]).
HEADER_SETS = [
    ("none", []),
    ("user", [("Impersonate-User", "team-a-reader")]),
    ("user no-access", [("Impersonate-User", "no-access")]),
    ("user+group", [("Impersonate-User", "team-a-reader"), ("Impersonate-Group", "team-a-devs")]),
    ("user+uid", [("Impersonate-User", "team-a-reader"), ("Impersonate-Uid", "uid-1")]),
    ("user+extra", [("Impersonate-User", "team-a-reader"), ("Impersonate-Extra-Scopes", "view"),
                    ("Impersonate-Extra-Example.com%2fteam", "a")]),
    ("serviceaccount", [("Impersonate-User", "system:serviceaccount:authz-b:reader")]),
    ("node", [("Impersonate-User", "system:node:NODE")]),
    ("node+group", [("Impersonate-User", "system:node:NODE"), ("Impersonate-Group", "system:nodes")]),
    ("anonymous", [("Impersonate-User", "system:anonymous")]),
    ("group without user", [("Impersonate-Group", "team-a-devs")]),
]


def requests_for(rv):
    """(label, path) of the reads: LIST, GET, WATCH; rv=0, rv=N, consistent."""
    out = []
    for res in ("configmaps", "pods"):
        for ns in ("team-a", "default"):
            base = f"/api/v1/namespaces/{ns}/{res}"
            out.append((f"list {ns}/{res} rv=0", base + "?resourceVersion=0"))
            out.append((f"list {ns}/{res} rv=N", f"{base}?resourceVersion={rv[res]}&resourceVersionMatch=NotOlderThan"))
            out.append((f"list {ns}/{res} consistent", base))
        out.append((f"list all {res} rv=0", f"/api/v1/{res}?resourceVersion=0"))
        out.append((f"watch team-a/{res} rv=0",
                    f"/api/v1/namespaces/team-a/{res}?watch=1&resourceVersion=0&timeoutSeconds=1"))
    out.append(("get team-a/configmaps/authz-probe", "/api/v1/namespaces/team-a/configmaps/authz-probe?resourceVersion=0"))
    out.append(("get default/configmaps/authz-probe", "/api/v1/namespaces/default/configmaps/authz-probe"))
    return out


def node_requests(node, rv):
    """A kubelet's reads: its pods by field selector, and secrets."""
    out = []
    for sel in (f"spec.nodeName={node}", "spec.nodeName=kcp-node-2", ""):
        q = "&fieldSelector=" + urllib.parse.quote(sel) if sel else ""
        out.append((f"list pods [{sel}] rv=0", f"/api/v1/pods?resourceVersion=0{q}"))
        out.append((f"list pods [{sel}] rv=N", f"/api/v1/pods?resourceVersion={rv['pods']}{q}"))
        out.append((f"list pods [{sel}] consistent", f"/api/v1/pods?limit=500{q}"))
        out.append((f"watch pods [{sel}] rv=0", f"/api/v1/pods?watch=1&resourceVersion=0&timeoutSeconds=1{q}"))
    for name in ("node-secret", "authz-probe"):
        out.append((f"get secret {name}", f"/api/v1/namespaces/node-pods/secrets/{name}?resourceVersion=0"))
        out.append((f"list secret {name} by name",
                    f"/api/v1/namespaces/node-pods/secrets?resourceVersion=0&fieldSelector=metadata.name%3D{name}"))
    return out


def send(host, port, ca, creds, path, accept, headers):
    ctx = ssl.create_default_context(cafile=ca)
    if "cert" in creds:
        ctx.load_cert_chain(creds["cert"], creds["key"])
    c = http.client.HTTPSConnection(host, port, context=ctx, timeout=60)
    c.putrequest("GET", path, skip_accept_encoding=True)
    c.putheader("User-Agent", "kcp-impersonation")
    c.putheader("Accept", accept)
    if "token" in creds:
        c.putheader("Authorization", "Bearer " + creds["token"])
    for name, value in headers:
        c.putheader(name, value)
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def names(body):
    """What an allowed JSON answer holds: the objects' namespace/name."""
    try:
        if body.lstrip().startswith(b'{"type"'):  # watch events, one per line
            docs = [json.loads(line)["object"] for line in body.splitlines() if line.strip()]
        else:
            doc = json.loads(body)
            docs = doc.get("items", [doc]) if isinstance(doc, dict) else []
    except ValueError:
        return None
    return sorted(f"{d.get('metadata', {}).get('namespace', '')}/{d.get('metadata', {}).get('name', '')}"
                  for d in docs)


def main():
    cfg = json.load(open(sys.argv[1]))
    up = urllib.parse.urlparse(cfg["apiserver"])
    node = cfg["node"]
    plain = requests_for(cfg["rv"])
    per_identity = {}
    for ident, spec in cfg["identities"].items():
        cases = []
        reads = node_requests(node, cfg["rv"]) if spec.get("node_reads") else plain
        for hlabel, headers in HEADER_SETS:
            if (spec.get("node_reads") and hlabel != "none") or hlabel in spec.get("skip", []):
                continue
            headers = [(h, v.replace("NODE", node)) for h, v in headers]
            for rlabel, path in reads:
                for accept in ("application/json", PROTOBUF):
                    cases.append((ident, hlabel, rlabel, path, accept, headers))
        per_identity[ident] = cases

    def run(cases):
        results = []
        for ident, hlabel, rlabel, path, accept, headers in cases:
            spec = cfg["identities"][ident]
            proxy = cfg["proxies"][spec["proxy"]]
            creds = {k: spec[k] for k in ("token", "cert", "key") if k in spec}
            a = send("127.0.0.1", proxy["port"], proxy["ca"], creds, path, accept, headers)
            b = send(up.hostname, up.port, cfg["cluster_ca"], spec.get("direct", creds), path, accept, headers)
            results.append(((ident, hlabel, rlabel, accept), a, b))
        return results

    with concurrent.futures.ThreadPoolExecutor(len(per_identity)) as pool:
        results = [r for rs in pool.map(run, per_identity.values()) for r in rs]
    bad = allowed = refused = 0
    for (ident, hlabel, rlabel, accept), a, b in results:
        same = a[0] == b[0]
        if same and a[0] != 200:
            same = a[1] == b[1]
        elif same and accept == "application/json":
            same = names(a[1]) == names(b[1])
        allowed += b[0] == 200
        refused += b[0] in (400, 401, 403)
        if not same:
            bad += 1
            print(f"DIFF {ident} [{hlabel}] {rlabel} ({accept.split(',')[0]}): "
                  f"proxy {a[0]} {a[1][:300]!r} | kube-apiserver {b[0]} {b[1][:300]!r}")
    print(f"{len(results) - bad}/{len(results)} identical ({allowed} allowed, {refused} refused by kube-apiserver)")
    return 1 if bad or not allowed or not refused else 0


if __name__ == "__main__":
    sys.exit(main())
