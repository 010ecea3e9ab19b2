#!/usr/bin/python3
"""Consistent reads through the proxy see every write acknowledged before
them: creates configmaps directly on kube-apiserver, and after each one
LISTs (resourceVersion unset, as kubectl does) through the proxy, which may
answer from its cache only once the cache has caught up. With --readers N,
N LISTs go at once after each create (each on its own connection), so they
share the proxy's probes: every one of them must still see the write.

  read_your_writes.py PROXY_PORT ADMIN_KUBECONFIG NAMESPACE COUNT [--readers N]"""
import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from list_conformance import Proxy, Upstream


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("kubeconfig")
    ap.add_argument("namespace")
    ap.add_argument("count", type=int)
    ap.add_argument("--readers", type=int, default=1)
    args = ap.parse_args()
    proxy, upstream = Proxy(args.port), Upstream(args.kubeconfig)
    ns = args.namespace
    missing = 0
    run = os.urandom(3).hex()  # names unique to this run
    pool = ThreadPoolExecutor(args.readers)
    for i in range(args.count):
        name = f"ryw-{run}-{i:04d}"
        body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                           "data": {"i": str(i)}}).encode()
        status, created = upstream.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body)
        if status != 201:
            print(f"create {name}: HTTP {status} {created[:200]!r}")
            return 1
        rv = json.loads(created)["metadata"]["resourceVersion"]
        for status, listed in pool.map(lambda _: proxy.get(f"/api/v1/namespaces/{ns}/configmaps"),
                                       range(args.readers)):
            items = {o["metadata"]["name"]: o["metadata"]["resourceVersion"]
                     for o in json.loads(listed)["items"]} if status == 200 else {}
            if items.get(name) != rv:
                missing += 1
                print(f"LIST after creating {name} (resourceVersion {rv}): HTTP {status}, saw {items.get(name)}")
    reads = args.count * args.readers
    print(f"{reads - missing}/{reads} consistent LISTs through the proxy saw the write before them")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
