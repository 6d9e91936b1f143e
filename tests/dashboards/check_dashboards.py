#!/usr/bin/env python3
"""Static check of connscope's Grafana dashboards (python3 stdlib only).

    check_dashboards.py [--metrics FILE]... [--metrics-doc FILE] [DASHBOARD.json ...]

Dashboards default to dashboards/*.json. Metric names and label names are
checked against every source given: --metrics takes a Prometheus text
exposition (e.g. `curl -s 127.0.0.1:9464/metrics > m.txt` from a running
`connscope run`), --metrics-doc the contract in docs/metrics.md. With
neither, docs/metrics.md is used, so the check runs before the agent exists.

Checks: valid JSON; schemaVersion 39; no import inputs (`__inputs`,
`${DS_...}`); a `datasource` variable of type prometheus, and multi/all `job`
and `instance` variables built from connscope_build_info; unique panel ids;
grid positions inside 24 columns and not overlapping; every panel, target and
query variable on `${datasource}`; every range selector `[$__rate_interval]`;
heatmaps: `calculate: false`, targets `format: heatmap` and
`sum by (le) (increase(..._bucket{...}[$__rate_interval]))`, y axis in
seconds (`percentunit` for a `_ratio` histogram); a unit on every graph;
every `$variable` defined; every metric name and label matcher known to the
sources; links to /d/<uid> pointing at one of the checked dashboards.

Exit status 0 when clean, 1 with one line per problem.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE_INTERVAL = "$__rate_interval"
# Labels a scrape adds to every series.
TARGET_LABELS = {"job", "instance"}
GRAPH_TYPES = {"timeseries", "stat", "gauge", "bargauge", "barchart", "state-timeline", "heatmap", "table",
               "histogram", "piechart", "status-history"}
UNIT_TYPES = {"timeseries", "stat", "gauge", "bargauge", "barchart"}
UNITS = {"s", "ms", "percentunit", "percent", "cps", "ops", "reqps", "pps", "short", "none"}
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms",
                    "__dashboard", "__from", "__to", "__org", "__user", "__all_variables", "__url_time_range",
                    "__field", "__series", "__value", "__data", "__name", "timeFilter", "__timeFilter"}

AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "atan2", "inf", "nan", "start", "end"}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


# --------------------------------------------------------------------------- metric sources

class MetricSource:
    """Metric names and, where known, their label names."""

    def __init__(self, name: str):
        self.name = name
        self.labels: dict[str, set[str] | None] = {}  # metric -> label names (None: unknown)

    def add(self, metric: str, labels: set[str] | None):
        if labels is None:
            self.labels.setdefault(metric, None)
            return
        cur = self.labels.get(metric)
        self.labels[metric] = (cur or set()) | labels

    def has(self, metric: str) -> bool:
        return metric in self.labels

    def label_names(self, metric: str) -> set[str] | None:
        names = self.labels.get(metric)
        return None if names is None else names | TARGET_LABELS | {"__name__"}


def _histogram_series(family: str, labels: set[str] | None):
    yield family + "_bucket", None if labels is None else labels | {"le"}
    yield family + "_sum", labels
    yield family + "_count", labels


def _parse_label_names(body: str) -> set[str]:
    names = set()
    i = 0
    while i < len(body):
        m = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"').match(body, i)
        if not m:
            break
        names.add(m.group(1))
        i = m.end()
        while i < len(body) and body[i] != '"':
            i += 2 if body[i] == "\\" else 1
        i += 1
        m = re.compile(r"\s*,?").match(body, i)
        i = m.end()
    return names


def load_metrics_text(path: str) -> MetricSource:
    """A Prometheus text exposition (format 0.0.4)."""
    src = MetricSource(path)
    types: dict[str, str] = {}
    seen: dict[str, set[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                m = re.match(r"#\s*TYPE\s+(\S+)\s+(\S+)", line)
                if m:
                    types[m.group(1)] = m.group(2)
                continue
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+", line)
            if not m:
                continue
            seen.setdefault(m.group(1), set()).update(_parse_label_names(m.group(3) or ""))
    for family, typ in types.items():
        if typ in ("histogram", "summary"):
            if typ == "summary":
                src.add(family, None)
            for name, labels in _histogram_series(family, None):
                src.add(name, seen.get(name))
        else:
            src.add(family, seen.get(family))
    for name, labels in seen.items():
        src.add(name, labels)
    return src


def load_metrics_doc(path: str) -> MetricSource:
    """docs/metrics.md: tables of `metric | type | labels | meaning` under
    headings that may name the labels every row shares, e.g.
    '## Destinations (`netns`, `src`, `dst`)'."""
    src = MetricSource(path)
    base: set[str] = set()
    header: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#"):
                base = set(re.findall(r"`([a-zA-Z_][a-zA-Z0-9_]*)`", line))
                header = []
                continue
            if not line.startswith("|"):
                header = [] if not line.strip() else header
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not header:
                header = [c.lower() for c in cells]
                continue
            if set("".join(cells)) <= set("-: "):
                continue
            if "metric" not in header:
                continue
            row = dict(zip(header, cells))
            m = re.fullmatch(r"`(connscope_[a-zA-Z0-9_]+)`", row.get("metric", ""))
            if not m:
                continue
            metric = m.group(1)
            typ_cell = row.get("type", "")
            typ = typ_cell.split()[0] if typ_cell else "untyped"
            labels = set(base)
            for col in ("labels", "extra labels"):
                labels |= set(re.findall(r"`([a-zA-Z_][a-zA-Z0-9_]*)`", row.get(col, "")))
            if re.search(r"\bno\b", typ_cell):  # "histogram (no `listen`/`netns` labels)"
                labels -= set(re.findall(r"`([a-zA-Z_][a-zA-Z0-9_]*)`", typ_cell))
            if typ == "histogram":
                for name, lbls in _histogram_series(metric, labels):
                    src.add(name, lbls)
            else:
                src.add(metric, labels)
    return src


# --------------------------------------------------------------------------- PromQL scanning

TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<var>\$\{[^}]*\}|\$\w+|\[\[\w+(?::\w+)?\]\])
  | (?P<dur>(?:\d+(?:ms|[smhdwy]))+(?![\w.]))
  | (?P<num>(?:0x[0-9a-fA-F]+|\d*\.?\d+(?:[eE][+-]?\d+)?))
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}\[\],:@])
""", re.VERBOSE)


class PromQLError(Exception):
    pass


def tokenize(expr: str):
    out = []
    i = 0
    while i < len(expr):
        m = TOKEN_RE.match(expr, i)
        if not m:
            raise PromQLError(f"cannot scan at {expr[i:i + 20]!r}")
        i = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def _unquote(s: str) -> str:
    if s[0] == "`":
        return s[1:-1]
    try:
        return json.loads('"' + s[1:-1].replace("\\'", "'") + '"')
    except ValueError:
        return s[1:-1]


def variable_name(token: str) -> str:
    if token.startswith("[["):
        return token[2:-2].split(":")[0]
    if token.startswith("${"):
        return token[2:-1].split(":")[0].split(".")[0]
    return token[1:]


class ExprInfo:
    def __init__(self):
        self.selectors: list[tuple[str | None, list[tuple[str, str, str]]]] = []  # (metric, [(label, op, value)])
        self.ranges: list[str] = []
        self.variables: set[str] = set()
        self.functions: set[str] = set()


def scan(expr: str) -> ExprInfo:
    """Find selectors, range selectors, variables and function calls."""
    toks = tokenize(expr)
    info = ExprInfo()
    for kind, text in toks:
        if kind == "var":
            info.variables.add(variable_name(text))
        elif kind == "str":
            for v in re.findall(r"\$\{[^}]*\}|\$\w+|\[\[\w+(?::\w+)?\]\]", text):
                info.variables.add(variable_name(v))
    n = len(toks)
    i = 0
    depth = 0

    def parse_matchers(j):
        matchers = []
        while j < n and toks[j][1] != "}":
            if toks[j][1] == ",":
                j += 1
                continue
            if j + 2 >= n or toks[j][0] != "ident" or toks[j + 1][1] not in ("=", "!=", "=~", "!~") \
                    or toks[j + 2][0] not in ("str", "var"):
                raise PromQLError(f"bad label matcher near {' '.join(t for _, t in toks[j:j + 3])!r}")
            matchers.append((toks[j][1], toks[j + 1][1], _unquote(toks[j + 2][1]) if toks[j + 2][0] == "str" else toks[j + 2][1]))
            j += 3
        if j >= n:
            raise PromQLError("unclosed {")
        return matchers, j + 1

    while i < n:
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < n else None
        if kind == "ident":
            if text in LABEL_LIST_KEYWORDS and nxt == "(":
                j = i + 2
                while j < n and toks[j][1] != ")":
                    j += 1
                i = j + 1
                continue
            if text in KEYWORDS:
                i += 1
                continue
            if text in AGGREGATIONS and nxt in ("by", "without", "("):
                i += 1
                continue
            if nxt == "(":
                info.functions.add(text)
                i += 1
                continue
            if nxt == "{":
                matchers, i = parse_matchers(i + 2)
                info.selectors.append((text, matchers))
                continue
            info.selectors.append((text, []))
            i += 1
            continue
        if text == "{":
            matchers, i = parse_matchers(i + 1)
            info.selectors.append((None, matchers))
            continue
        if text == "[":
            j = i + 1
            while j < n and toks[j][1] != "]":
                j += 1
            if j >= n:
                raise PromQLError("unclosed [")
            info.ranges.append("".join(t for _, t in toks[i + 1:j]))
            i = j + 1
            continue
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
            if depth < 0:
                raise PromQLError("unbalanced )")
        i += 1
    if depth:
        raise PromQLError("unbalanced (")
    return info


def selector_metrics(metric: str | None, matchers) -> list[str]:
    """Metric names a selector can match: its name, or the alternatives of a
    literal `__name__=~"a|b"` matcher."""
    if metric:
        return [metric]
    for label, op, value in matchers:
        if label == "__name__" and op == "=":
            return [value]
        if label == "__name__" and op == "=~" and re.fullmatch(r"[a-zA-Z0-9_:|]+", value):
            return value.split("|")
    return []


# --------------------------------------------------------------------------- dashboards

def iter_panels(panels, parent=None):
    """Every panel, rows' collapsed children included: (panel, is_nested)."""
    for p in panels or []:
        yield p, parent is not None
        if p.get("type") == "row" and p.get("panels"):
            yield from iter_panels(p["panels"], p)


def dashboard_targets(dash):
    """(panel, target) for every query of every panel."""
    for p, _ in iter_panels(dash.get("panels")):
        for t in p.get("targets") or []:
            yield p, t


def variables(dash):
    return (dash.get("templating") or {}).get("list") or []


def variable_query(v) -> str:
    q = v.get("query")
    if isinstance(q, dict):
        q = q.get("query", "")
    return q or v.get("definition") or ""


def parse_label_values(q: str):
    """label_values(selector, label) -> (selector, label); label_values(label) -> (None, label)."""
    m = re.fullmatch(r"\s*label_values\(\s*(.*?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*", q, re.S)
    if m:
        return m.group(1), m.group(2)
    m = re.fullmatch(r"\s*label_values\(\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*", q)
    if m:
        return None, m.group(1)
    return None


def is_heatmap_expr(expr: str):
    """`sum by (le) (increase(X_bucket{...}[$__rate_interval]))` -> X_bucket."""
    flat = re.sub(r"\s+", "", expr)
    m = re.fullmatch(r"sumby\(le\)\(increase\(([a-zA-Z_:][a-zA-Z0-9_:]*_bucket)(\{.*\})?\[\$__rate_interval\]\)\)", flat)
    return m.group(1) if m else None


def links_of(obj):
    """Every link url in a dashboard (dashboard links, panel links, data links)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "url" and isinstance(v, str):
                yield v
            else:
                yield from links_of(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from links_of(v)


class Checker:
    def __init__(self, sources: list[MetricSource], uids: set[str]):
        self.sources = sources
        self.uids = uids
        self.errors: list[str] = []
        self.queries = 0

    def err(self, where: str, msg: str):
        self.errors.append(f"{where}: {msg}")

    def check_expr(self, where: str, expr: str, defined_vars: set[str], ranges_allowed=True):
        self.queries += 1
        if not expr or not expr.strip():
            self.err(where, "empty expression")
            return None
        try:
            info = scan(expr)
        except PromQLError as e:
            self.err(where, f"cannot parse expression: {e}: {expr}")
            return None
        for r in info.ranges:
            if r != RATE_INTERVAL and r != "${__rate_interval}":
                self.err(where, f"range [{r}] is not [{RATE_INTERVAL}]: {expr}")
        if not ranges_allowed and info.ranges:
            self.err(where, "range selector in a variable query")
        for v in sorted(info.variables - defined_vars - GRAFANA_BUILTINS):
            self.err(where, f"undefined variable ${v}")
        if "$__interval" in expr or "${__interval}" in expr:
            self.err(where, "uses $__interval: use $__rate_interval")
        for metric, matchers in info.selectors:
            names = selector_metrics(metric, matchers)
            if metric is None and not names:
                self.err(where, "selector without a metric name")
            for name in names:
                for src in self.sources:
                    if not src.has(name):
                        self.err(where, f"metric {name} is not in {src.name}")
                        continue
                    known = src.label_names(name)
                    if known is None:
                        continue
                    for label, _, _ in matchers:
                        if label not in known:
                            self.err(where, f"{name} has no label {label!r} in {src.name}")
        return info

    def check_dashboard(self, path: str, dash: dict):
        name = os.path.basename(path)
        if dash.get("schemaVersion") != 39:
            self.err(name, f"schemaVersion is {dash.get('schemaVersion')!r}, not 39")
        if "__inputs" in dash or "__requires" in dash:
            self.err(name, "has __inputs/__requires: import inputs break file provisioning")
        text = json.dumps(dash)
        if "${DS_" in text or "$DS_" in text:
            self.err(name, "references a ${DS_...} import input")
        if not dash.get("uid"):
            self.err(name, "no uid (links and provisioning need a stable one)")
        if not dash.get("title"):
            self.err(name, "no title")

        # templating
        vars_ = variables(dash)
        defined = {v.get("name") for v in vars_}
        by_name = {v.get("name"): v for v in vars_}
        ds = by_name.get("datasource")
        if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            self.err(name, "needs a variable `datasource` of type datasource with query prometheus")
        for vn in ("job", "instance"):
            v = by_name.get(vn)
            if not v:
                self.err(name, f"needs a `{vn}` variable")
                continue
            if v.get("type") != "query" or not v.get("multi") or not v.get("includeAll"):
                self.err(name, f"variable {vn}: must be a multi-value query variable with All")
            if "connscope_build_info" not in variable_query(v):
                self.err(name, f"variable {vn}: must be built from connscope_build_info")
        for v in vars_:
            where = f"{name}: variable {v.get('name')}"
            if v.get("type") != "query":
                continue
            if v.get("datasource") != DATASOURCE:
                self.err(where, f"datasource is {v.get('datasource')!r}, not {DATASOURCE}")
            q = variable_query(v)
            lv = parse_label_values(q)
            if lv is None:
                m = re.fullmatch(r"\s*query_result\((.*)\)\s*", q, re.S)
                if not m:
                    self.err(where, f"unsupported variable query {q!r}")
                    continue
                self.check_expr(where, m.group(1), defined)
                continue
            selector, label = lv
            if selector is None:
                self.err(where, "label_values(label) scans every series: give a metric selector")
                continue
            info = self.check_expr(where, selector, defined, ranges_allowed=False)
            if info:
                for metric, matchers in info.selectors:
                    for mname in selector_metrics(metric, matchers):
                        for src in self.sources:
                            known = src.label_names(mname) if src.has(mname) else None
                            if known is not None and label not in known:
                                self.err(where, f"{mname} has no label {label!r} in {src.name}")

        # panels
        ids: dict[object, str] = {}
        boxes = []
        for p, nested in iter_panels(dash.get("panels")):
            title = p.get("title", "")
            where = f"{name}: panel {p.get('id')} {title!r}"
            pid = p.get("id")
            if not isinstance(pid, int):
                self.err(where, "panel id is not an integer")
            elif pid in ids:
                self.err(where, f"duplicate panel id {pid} (also {ids[pid]!r})")
            else:
                ids[pid] = title
            gp = p.get("gridPos") or {}
            x, y, w, h = (gp.get(k) for k in ("x", "y", "w", "h"))
            if not all(isinstance(v, int) for v in (x, y, w, h)):
                self.err(where, f"gridPos {gp} needs integer x, y, w, h")
            else:
                if x < 0 or y < 0 or w < 1 or h < 1 or x + w > 24:
                    self.err(where, f"gridPos {gp} is outside 24 columns")
                if not nested:
                    for (bx, by, bw, bh, bwhere) in boxes:
                        if x < bx + bw and bx < x + w and y < by + bh and by < y + h:
                            self.err(where, f"overlaps {bwhere}")
                    boxes.append((x, y, w, h, f"panel {pid} {title!r}"))
            ptype = p.get("type")
            if ptype == "row":
                if "datasource" in p and p["datasource"] not in (None, DATASOURCE):
                    self.err(where, f"row datasource {p['datasource']!r}")
                continue
            if p.get("datasource") != DATASOURCE:
                self.err(where, f"datasource is {p.get('datasource')!r}, not {DATASOURCE}")
            targets = p.get("targets") or []
            if ptype in GRAPH_TYPES and not targets:
                self.err(where, "no targets")
            if ptype in UNIT_TYPES:
                unit = ((p.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
                if unit not in UNITS:
                    self.err(where, f"unit {unit!r} is not one of {sorted(UNITS)}")
            for link in (p.get("links") or []):
                if "datasource" in link:
                    self.err(where, "panel link with a datasource")
            refids = set()
            for t in targets:
                twhere = f"{where} target {t.get('refId')}"
                if t.get("refId") in refids:
                    self.err(twhere, "duplicate refId")
                refids.add(t.get("refId"))
                if t.get("datasource") != DATASOURCE:
                    self.err(twhere, f"datasource is {t.get('datasource')!r}, not {DATASOURCE}")
                expr = t.get("expr", "")
                self.check_expr(twhere, expr, defined)
                if ptype == "heatmap":
                    if t.get("format") != "heatmap":
                        self.err(twhere, "heatmap target needs format: heatmap")
                    bucket = is_heatmap_expr(expr)
                    if not bucket:
                        self.err(twhere, "heatmap target must be sum by (le) (increase(<histogram>_bucket{...}[$__rate_interval]))")
                    else:
                        want = "percentunit" if bucket.endswith("_ratio_bucket") else "s" if bucket.endswith("_seconds_bucket") else None
                        got = ((p.get("options") or {}).get("yAxis") or {}).get("unit")
                        if want and got != want:
                            self.err(where, f"heatmap of {bucket} needs yAxis unit {want!r}, has {got!r}")
                elif t.get("format") == "heatmap":
                    self.err(twhere, "format: heatmap outside a heatmap panel")
            if ptype == "heatmap":
                if (p.get("options") or {}).get("calculate") is not False:
                    self.err(where, "heatmap needs calculate: false (the buckets come from Prometheus)")
        for url in links_of(dash):
            m = re.match(r"/d/([^/?]+)", url)
            if m and m.group(1) not in self.uids:
                self.err(name, f"link to /d/{m.group(1)}: no checked dashboard has that uid")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dashboards", nargs="*", help="dashboard JSON files (default: dashboards/*.json)")
    ap.add_argument("--metrics", action="append", default=[], metavar="FILE",
                    help="a /metrics scrape (Prometheus text format); repeatable")
    ap.add_argument("--metrics-doc", metavar="FILE", help="the metrics contract (docs/metrics.md)")
    args = ap.parse_args(argv)

    files = args.dashboards or sorted(glob.glob(os.path.join(REPO, "dashboards", "*.json")))
    if not files:
        print("check_dashboards: no dashboards found", file=sys.stderr)
        return 1
    sources = [load_metrics_text(p) for p in args.metrics]
    if args.metrics_doc or not sources:
        sources.append(load_metrics_doc(args.metrics_doc or os.path.join(REPO, "docs", "metrics.md")))
    for s in sources:
        if not s.labels:
            print(f"check_dashboards: no metrics found in {s.name}", file=sys.stderr)
            return 1

    loaded = []
    errors = []
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                loaded.append((path, json.load(f)))
        except (OSError, ValueError) as e:
            errors.append(f"{os.path.basename(path)}: not valid JSON: {e}")
    checker = Checker(sources, {d.get("uid") for _, d in loaded if isinstance(d, dict)})
    checker.errors = errors
    for path, dash in loaded:
        if not isinstance(dash, dict):
            checker.err(os.path.basename(path), "not a JSON object")
            continue
        checker.check_dashboard(path, dash)
    for e in checker.errors:
        print(e)
    names = ", ".join(s.name for s in sources)
    if checker.errors:
        print(f"check_dashboards: {len(checker.errors)} problem(s) in {len(files)} dashboard(s) (metrics: {names})")
        return 1
    print(f"check_dashboards: {len(files)} dashboard(s), {checker.queries} queries OK (metrics: {names})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
