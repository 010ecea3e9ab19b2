#!/usr/bin/python3
"""Compares the proxy's cache of a resource with kube-apiserver: takes the
cache's contents (admin /debug/cache/RESOURCE: resourceVersion R and items)
and a direct LIST at exactly R (resourceVersionMatch=Exact), and requires the
same keys, the same resourceVersions and byte-identical items. Retries while
the cache is behind a moving apiserver; prints a one-line summary."""
import json
import ssl
import subprocess
import sys
import time
import urllib.request


def items_bytes(body):
    """The raw bytes of a list body's items array ("null" or "[...]")."""
    start = body.index(b'"items":') + len(b'"items":')
    end = body.rstrip().rindex(b"}")
    tail = body[start:end]
    # The cache's debug body ends the array last; a LIST may put metadata or
    # kind after it (custom resources sort keys), so cut at the matching bracket.
    if tail.startswith(b"null"):
        return b"[]"
    depth = 0
    in_str = esc = False
    for i, c in enumerate(tail):
        ch = chr(c)
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return tail[:i + 1]
    raise ValueError("unterminated items array")


def same_list_body(a, b):
    """Two LIST bodies are the same list: identical item bytes and identical
    framing, except the list's own resourceVersion (a resourceVersion=0 read
    may be answered at any state, so the proxy's and kube-apiserver's caches
    may stand at different points with the same items)."""
    import re
    ia, ib = items_bytes(a), items_bytes(b)
    if ia != ib:
        return False, "items differ"
    mask = lambda body, items: re.sub(rb'"resourceVersion":"\d+"', b'"resourceVersion":"*"', body.replace(items, b"<items>", 1))
    return (mask(a, ia) == mask(b, ib)), "framing differs"


def main():
    if sys.argv[1] == "--bodies":
        a, b = (open(p, "rb").read() for p in sys.argv[2:4])
        same, why = same_list_body(a, b)
        print(f"{len(a)} bytes, items byte-identical" + ("" if a == b else ", list resourceVersion differs")
              if same else f"bodies differ: {why}")
        return 0 if same else 1
    admin_port, resource, list_path, kubectl, kubeconfig = sys.argv[1:6]
    deadline = time.time() + 60
    last = ""
    while time.time() < deadline:
        cache = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/debug/cache/{resource}").read()
        doc = json.loads(cache)
        rv = doc["resourceVersion"]
        cached = [json.dumps(i, separators=(",", ":"), ensure_ascii=False) for i in doc["items"]]
        direct = subprocess.run([kubectl, "--kubeconfig", kubeconfig, "get", "--raw",
                                 f"{list_path}?resourceVersion={rv}&resourceVersionMatch=Exact"],
                                capture_output=True)
        if direct.returncode != 0:
            last = direct.stderr.decode()[:300]
            time.sleep(1)
            continue
        upstream = json.loads(direct.stdout)
        items = [json.dumps(i, separators=(",", ":"), ensure_ascii=False) for i in (upstream["items"] or [])]
        # Byte comparison: both bodies list the items in key order, so their
        # "items" arrays must be the same bytes.
        if items_bytes(cache) == items_bytes(direct.stdout):
            print(f"{resource}: {len(items)} objects byte-identical at resourceVersion {rv} "
                  f"({len(items_bytes(cache))} bytes)")
            return 0
        key = lambda s: (json.loads(s)["metadata"].get("namespace", ""), json.loads(s)["metadata"]["name"])
        ck = {key(s): s for s in cached}
        uk = {key(s): s for s in items}
        missing = sorted(set(uk) - set(ck))[:3]
        extra = sorted(set(ck) - set(uk))[:3]
        differ = [k for k in set(ck) & set(uk) if ck[k] != uk[k]][:3]
        last = f"at {rv}: {len(cached)} cached vs {len(items)} upstream; missing {missing}, extra {extra}, differ {differ}"
        time.sleep(1)
    print("cache differs from kube-apiserver:", last)
    return 1


if __name__ == "__main__":
    sys.exit(main())
