#!/usr/bin/python3
"""RBAC matrix: every combination of user, verb, resource, namespace and
encoding sent through the proxy's TLS listener (delegate auth) and directly
to kube-apiserver must get the same allow/deny; refusals must carry the same
Status body (JSON or protobuf, as the client asked).

  authz_matrix.py PROXY_PORT PROXY_CA APISERVER_URL CLUSTER_CA USERS_JSON

USERS_JSON maps a user's name to {"token": T} or {"cert": CRT, "key": KEY}.
Prints one line per difference and `N/N identical`."""
import http.client
import json
import ssl
import sys
import urllib.parse

PROTOBUF = "application/vnd.kubernetes.protobuf, application/json"


def connect(host, port, ca, user):
    ctx = ssl.create_default_context(cafile=ca)
    if "cert" in user:
        ctx.load_cert_chain(user["cert"], user["key"])
    return http.client.HTTPSConnection(host, port, context=ctx, timeout=30)


def get(host, port, ca, user, path, accept):
    c = connect(host, port, ca, user)
    headers = {"User-Agent": "kcp-authz", "Accept": accept}
    if "token" in user:
        headers["Authorization"] = "Bearer " + user["token"]
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def main():
    proxy_port, proxy_ca, apiserver_url, cluster_ca, users_json = sys.argv[1:6]
    users = json.load(open(users_json))
    up = urllib.parse.urlparse(apiserver_url)
    cases = []
    for user in users:
        for resource in ("configmaps", "secrets", "pods"):
            for namespace in ("team-a", "authz-b", "default", ""):
                for verb in ("get", "list", "watch"):
                    if verb == "get" and not namespace:
                        continue
                    for accept in ("application/json", PROTOBUF):
                        base = f"/api/v1/namespaces/{namespace}/{resource}" if namespace else f"/api/v1/{resource}"
                        path = {"get": base + "/authz-probe?resourceVersion=0",
                                "list": base + "?resourceVersion=0",
                                "watch": base + "?watch=1&resourceVersion=0&timeoutSeconds=1"}[verb]
                        cases.append((user, verb, path, accept))
    bad = 0
    allowed = denied = 0
    for user, verb, path, accept in cases:
        a = get("127.0.0.1", int(proxy_port), proxy_ca, users[user], path, accept)
        b = get(up.hostname, up.port, cluster_ca, users[user], path, accept)
        # Allowed reads may differ in their resourceVersion (each side's
        # cache); refusals and misses must be the same bytes.
        same = a[0] == b[0] and (a[0] == 200 or a[1] == b[1])
        allowed += b[0] in (200, 404)
        denied += b[0] == 403
        if not same:
            bad += 1
            print(f"DIFF {user} {path} ({accept}): proxy {a[0]} {a[1][:200]!r} | kube-apiserver {b[0]} {b[1][:200]!r}")
    print(f"{len(cases) - bad}/{len(cases)} identical ({allowed} allowed, {denied} refused by kube-apiserver)")
    return 1 if bad or not allowed or not denied else 0


if __name__ == "__main__":
    sys.exit(main())
