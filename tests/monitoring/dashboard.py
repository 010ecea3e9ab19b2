#!/usr/bin/python3
"""Checks docker/chart/files/kube-cache-proxy-dashboard.json.

  dashboard.py lint DASHBOARD
      Grafana's shape: every panel has a unique id, a place on the grid, the
      ${datasource} variable and targets with PromQL over the proxy's series;
      every variable an expression uses is defined.
  dashboard.py query DASHBOARD PROMETHEUS-URL [--rules RULES] [--may-be-empty METRIC ...]
      Runs every target's expression (variables as "All", $__rate_interval as
      30s) against a real Prometheus, and every series the alert rules name;
      fails on a query error, and on no data unless the target's series is
      one that may be absent here (e.g. no memory limit outside a container);
      NaN (0/0: a ratio or quantile over no requests) is no data.
"""
import json
import re
import sys
import urllib.parse
import urllib.request

SERIES = re.compile(r"\b((?:kube_cache_proxy|process)_[a-z_]+)\b")


def targets(dashboard):
    for panel in dashboard["panels"]:
        for t in panel.get("targets", []):
            yield panel, t


def lint(dashboard):
    problems = []
    ids = [p["id"] for p in dashboard["panels"]]
    if len(ids) != len(set(ids)):
        problems.append("panel ids are not unique")
    variables = {v["name"] for v in dashboard["templating"]["list"]} | {"__rate_interval"}
    if "datasource" not in variables:
        problems.append("no datasource variable")
    for panel in dashboard["panels"]:
        name = panel.get("title", panel["id"])
        g = panel.get("gridPos", {})
        if not all(k in g for k in ("h", "w", "x", "y")) or g["x"] + g["w"] > 24:
            problems.append(f"{name}: bad gridPos {g}")
        if panel["type"] == "row":
            continue
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"{name}: not on the ${{datasource}} variable")
        if not panel.get("targets"):
            problems.append(f"{name}: no targets")
        if not panel.get("description"):
            problems.append(f"{name}: no description")
    for panel, t in targets(dashboard):
        expr = t["expr"]
        if not SERIES.search(expr):
            problems.append(f"{panel['title']}: {expr} names none of the proxy's series")
        for var in re.findall(r"\$(\w+)", expr):
            if var not in variables:
                problems.append(f"{panel['title']}: ${var} is not defined")
        if "kube_cache_proxy" in expr and '$job' not in expr:
            problems.append(f"{panel['title']}: {expr} ignores the job and instance variables")
    return problems


def query(url, expr):
    q = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]


def check_queries(dashboard, url, rules, may_be_empty):
    problems, n = [], 0
    for panel, t in targets(dashboard):
        expr = (t["expr"].replace("$__rate_interval", "30s")
                .replace('=~"$job"', '=~".*"').replace('=~"$instance"', '=~".*"'))
        n += 1
        try:
            result = query(url, expr)
        except Exception as e:  # an HTTP 400 is a PromQL error
            problems.append(f"{panel['title']}: {expr}: {e}")
            continue
        names = set(SERIES.findall(expr))
        result = [r for r in result if r["value"][1] not in ("NaN", "+Inf", "-Inf")]  # 0/0 is no data
        if not result and not names & may_be_empty:
            problems.append(f"{panel['title']}: no data for {expr}")
        print(f"{len(result):4d} series  {panel['title']} [{t['refId']}]")
    if rules:
        for name in sorted(set(SERIES.findall(open(rules).read()))):
            n += 1
            result = query(url, f"count({name})")
            if not result and name not in may_be_empty:
                problems.append(f"the alert rules' {name} has no series")
            print(f"{'yes' if result else 'no':>4s} series  {name} (alert rules)")
    return problems, n


def main(argv):
    dashboard = json.load(open(argv[2]))
    if argv[1] == "lint":
        problems = lint(dashboard)
        n = sum(1 for _ in targets(dashboard))
    elif argv[1] == "query":
        rest = argv[4:]
        rules = rest[rest.index("--rules") + 1] if "--rules" in rest else None
        may = set(rest[rest.index("--may-be-empty") + 1:]) if "--may-be-empty" in rest else set()
        problems, n = check_queries(dashboard, argv[3].rstrip("/"), rules, may)
    else:
        sys.exit(__doc__)
    for p in problems:
        print("PROBLEM:", p)
    print(f"{n} queries, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
