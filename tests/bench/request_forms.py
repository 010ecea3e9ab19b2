#!/usr/bin/python3
"""What each client sent and where the proxy served it from, read off a -v 1 log.

Usage: tests/bench/request_forms.py PROXY_LOG [--since HH:MM:SS]
(--since: requests that began then or later; a line is logged when its request ends)
Prints a markdown table: client (its User-Agent's program), read form
(verb, encoding, metadata-only, watch-list or resourceVersion, selectors),
how many, and how many the cache served. Writes are left out (always forwarded).
"""
import argparse
import collections
import datetime
import re
import shlex
import urllib.parse

READS = {"list", "watch", "get"}


def form(verb, path, accept):
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    encoding = "protobuf" if accept.startswith("application/vnd.kubernetes.protobuf") else "JSON"
    parts = [verb, encoding]
    if "as=PartialObjectMetadata" in accept:
        parts.append("metadata-only")
    if query.get("sendInitialEvents") == ["true"]:
        parts.append("watch-list")
    elif "resourceVersion" in query:
        parts.append("rv=0" if query["resourceVersion"] == ["0"] else "rv=N")
    elif verb != "watch":
        parts.append("consistent")
    if "limit" in query:
        parts.append("paged")
    for sel in ("fieldSelector", "labelSelector"):
        if sel in query:
            parts.append(f"{sel}={query[sel][0]}" if sel == "fieldSelector" else "labelSelector")
    return " ".join(parts)


def client(agent):
    return agent.split("/", 1)[0] or "(none)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--since", default="")
    a = ap.parse_args()
    counts = collections.Counter()
    cached = collections.Counter()
    for line in open(a.log, errors="replace"):
        if "] request verb=" not in line:
            continue
        fields = dict(f.split("=", 1) for f in shlex.split(line.split("] request ", 1)[1]) if "=" in f)
        ended = datetime.datetime.strptime(line.split()[1], "%H:%M:%S.%f")
        began = (ended - datetime.timedelta(milliseconds=int(fields.get("ms", 0)))).strftime("%H:%M:%S.%f")
        if began < a.since:
            continue
        verb = fields.get("verb", "")
        if verb not in READS or not re.match(r"^/apis?/", fields["path"]) or fields["path"].rstrip("/") in ("/api", "/apis"):
            continue
        key = (client(fields.get("user_agent", "")), form(verb, fields["path"], fields.get("accept", "")))
        counts[key] += 1
        cached[key] += fields.get("served_from") == "cache"
    print("| client | read | requests | from the cache |")
    print("| --- | --- | ---: | ---: |")
    for (who, what), n in sorted(counts.items()):
        print(f"| {who} | {what} | {n} | {cached[(who, what)]} |")


if __name__ == "__main__":
    main()
