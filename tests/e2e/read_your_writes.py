#!/usr/bin/python3
"""Consistent reads through the proxy see every write acknowledged before
them: creates configmaps directly on kube-apiserver, and after each one
LISTs (resourceVersion unset, as kubectl does) through the proxy, which may
answer from its cache only once the cache has caught up.

  read_your_writes.py PROXY_PORT ADMIN_KUBECONFIG NAMESPACE COUNT"""
import json
import os
import sys

from list_conformance import Proxy, Upstream


def main():
    port, kubeconfig, namespace, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    proxy, upstream = Proxy(port), Upstream(kubeconfig)
    missing = 0
    run = os.urandom(3).hex()  # names unique to this run
    for i in range(count):
        name = f"ryw-{run}-{i:04d}"
        body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                           "data": {"i": str(i)}}).encode()
        status, created = upstream.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body)
        if status != 201:
            print(f"create {name}: HTTP {status} {created[:200]!r}")
            return 1
        rv = json.loads(created)["metadata"]["resourceVersion"]
        status, listed = proxy.get(f"/api/v1/namespaces/{namespace}/configmaps")
        items = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in json.loads(listed)["items"]}
        if status != 200 or items.get(name) != rv:
            missing += 1
            print(f"LIST after creating {name} (resourceVersion {rv}): HTTP {status}, saw {items.get(name)}")
    print(f"{count - missing}/{count} consistent LISTs through the proxy saw the write before them")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
