#!/usr/bin/env python3
"""End-to-end check of the dashboards and alert rules against a real Prometheus
(python3 stdlib only; no Grafana needed).

    sudo prometheus_e2e.py build/connscope        # the real thing (root)
    prometheus_e2e.py --fake-agent tests/dashboards/fixtures/metrics.txt
    sudo prometheus_e2e.py --traffic-only         # only the namespaces and traffic

Real mode: starts `connscope run --listen 127.0.0.1:<free port> --interval 1`,
Debian's Prometheus on 127.0.0.1:<free port> (scrape and evaluation interval
1 s, TSDB in a temp dir) with the shipped rules, and traffic between two
network namespaces joined by a veth pair (10.231.0.1 client, 10.231.0.2
server):
  - port exhaustion: the client netns has ip_local_port_range "40000 40199"
    and tcp_tw_reuse=0; a client connects to :8080 and closes first (so it
    holds the port in TIME_WAIT) at ~20/s until connect() fails with
    EADDRNOTAVAIL, then keeps trying for a few seconds;
  - accept-queue overflow: a listener on :8082 with backlog 1 that never
    accepts, and a client opening a few connections a second to it (SYN
    retransmits, overflows);
  - handshakes: a client connecting to :8081 at ~10/s, where the server
    closes first (no client TIME_WAIT).
Every client and the server are bounded in time (--duration, 60 s) and count.

Fake mode (--fake-agent FILE, no root): serves FILE, a /metrics text, with
every counter growing over time, instead of running the agent and traffic.
It proves the query substitution and the assertions.

Traffic-only mode (--traffic-only, root): runs the namespaces and traffic
without agent or Prometheus, and checks with `ss` and the namespaces'
/proc/net counters that they produce EADDRNOTAVAIL, ~200 TIME_WAIT ports,
listen overflows and SYN retransmits.

Then, in both modes:
  1. waits for the scrape target to be up;
  2. waits for --alert (ConnscopeEphemeralPortsCritical) to be firing; the
     rules are loaded from a temp copy with every `for:` rewritten to --for
     (5s), since the shipped durations (30s..5m) are longer than a test;
  3. runs every dashboard target's expression through /api/v1/query_range
     over the test window (what Grafana sends for a panel), with
     $__rate_interval = --rate-interval (15s), multi-value/All variables
     ($job, $instance, $netns) = .*, and single-value variables ($dst,
     $listen) = each value their label_values() query returns, until one
     gives data; asserts a non-NaN sample, and for heatmap targets only
     `le` series including le="+Inf";
  4. asserts every variable query returns values and every rule's health is
     "ok" in /api/v1/rules.
It always cleans up: processes it started, namespaces, the temp dir (kept
with --keep or on failure, for the logs).
"""
from __future__ import annotations

import argparse
import glob
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import check_dashboards as cd  # noqa: E402

REPO = cd.REPO
CLIENT_IP, SERVER_IP = "10.231.0.1", "10.231.0.2"
PORT_EXHAUST, PORT_HANDSHAKE, PORT_BACKLOG = 8080, 8081, 8082


def log(msg):
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


# --------------------------------------------------------------------------- fake agent

class FakeAgent:
    """Serves a /metrics text; counters (and histogram series) grow by their
    file value every 10 s, so rate() and increase() see traffic."""

    def __init__(self, path, port):
        self.start = time.time()
        counters = set()
        lines = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                m = re.match(r"#\s*TYPE\s+(\S+)\s+(counter|histogram)", line)
                if m:
                    if m.group(2) == "counter":
                        counters.add(m.group(1))
                    else:
                        counters.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
                lines.append(line)
        self.lines = lines
        self.counters = counters
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = agent.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def render(self):
        now = time.time()
        factor = 1 + (now - self.start) / 10
        out = []
        for line in self.lines:
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$", line)
            if m and not line.startswith("#"):
                name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
                if name in self.counters:
                    value = round(value * factor, 6)
                elif name == "connscope_last_interval_timestamp_seconds":
                    value = now
                line = f"{name}{labels} {value!r}"
            out.append(line)
        return "\n".join(out) + "\n"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- traffic

SERVER_CODE = r"""
import selectors, socket, sys, time
ip, p_exh, p_hs, p_bl, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
def listen(port, backlog):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port))
    s.listen(backlog)
    return s
exh = listen(p_exh, 4096)      # the client closes first: read to EOF, then close
hs = listen(p_hs, 4096)        # the server closes first: one byte, close
full = listen(p_bl, 1)         # never accepted: its accept queue overflows
sel = selectors.DefaultSelector()
sel.register(exh, selectors.EVENT_READ, "exh")
sel.register(hs, selectors.EVENT_READ, "hs")
print("ready", flush=True)
deadline = time.time() + duration
open_conns = 0
while time.time() < deadline:
    for key, _ in sel.select(0.2):
        if key.data == "exh":
            c, _ = exh.accept()
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ, "conn")
        elif key.data == "hs":
            c, _ = hs.accept()
            try:
                c.sendall(b"x")
            except OSError:
                pass
            c.close()
        else:
            c = key.fileobj
            try:
                data = c.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(c)
                c.close()
"""

CLIENT_CODE = r"""
import errno, json, socket, sys, threading, time
ip, p_exh, p_hs, p_bl, duration, rate, after = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
                                               float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7]))
start = time.time()
deadline = start + duration
stats = {"exhaust": {}, "handshake": {}, "backlog": {}}
lock = threading.Lock()
def count(kind, what):
    with lock:
        stats[kind][what] = stats[kind].get(what, 0) + 1

def exhaust():
    # connect and close first (TIME_WAIT on this side) until EADDRNOTAVAIL,
    # then keep trying for `after` seconds so the error counter keeps growing.
    first_fail = None
    n = 0
    while time.time() < deadline and n < 3000:
        if first_fail is not None and time.time() - first_fail > after:
            break
        n += 1
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect((ip, p_exh))
            count("exhaust", "ok")
        except OSError as e:
            name = errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__
            count("exhaust", name)
            if e.errno in (errno.EADDRNOTAVAIL, errno.EADDRINUSE) and first_fail is None:
                first_fail = time.time()
                with lock:
                    stats["exhaust"]["first_failure_s"] = round(first_fail - start, 1)
        finally:
            s.close()
        time.sleep(1 / rate)

def handshake():
    n = 0
    while time.time() < deadline and n < 1000:
        n += 1
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect((ip, p_hs))
            while s.recv(64):
                pass
            count("handshake", "ok")
        except OSError as e:
            count("handshake", errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__)
        finally:
            s.close()
        time.sleep(0.1)

def backlog():
    # non-blocking connects to a listener whose queue is full, each kept 3 s.
    pending = []
    n = 0
    while time.time() < deadline and n < 400:
        n += 1
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect_ex((ip, p_bl))
            pending.append((time.time(), s))
            count("backlog", "started")
        except OSError as e:
            count("backlog", errno.errorcode.get(e.errno, str(e.errno)))
            s.close()
        while pending and time.time() - pending[0][0] > 3:
            pending.pop(0)[1].close()
        time.sleep(0.25)
    for _, s in pending:
        s.close()

threads = [threading.Thread(target=f) for f in (exhaust, handshake, backlog)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(stats), flush=True)
"""


class Scenario:
    """Two namespaces joined by a veth pair, a server and bounded clients."""

    def __init__(self, tmp, duration, rate, after):
        tag = f"{os.getpid() % 100000}"
        self.ns_c, self.ns_s = f"cse2e-c-{tag}", f"cse2e-s-{tag}"
        self.veth_c, self.veth_s = f"cse2e{tag}c", f"cse2e{tag}s"
        self.tmp = tmp
        self.duration, self.rate, self.after = duration, rate, after
        self.procs: list[subprocess.Popen] = []
        self.created: list[str] = []
        self.client = None
        self.started = None

    def sh(self, *cmd):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
        return r.stdout

    def setup(self):
        for ns in (self.ns_c, self.ns_s):
            self.sh("ip", "netns", "add", ns)
            self.created.append(ns)
        self.sh("ip", "link", "add", self.veth_c, "type", "veth", "peer", "name", self.veth_s)
        self.sh("ip", "link", "set", self.veth_c, "netns", self.ns_c)
        self.sh("ip", "link", "set", self.veth_s, "netns", self.ns_s)
        for ns, dev, ip in ((self.ns_c, self.veth_c, CLIENT_IP), (self.ns_s, self.veth_s, SERVER_IP)):
            self.sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            self.sh("ip", "-n", ns, "link", "set", dev, "up")
            self.sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.sh("ip", "netns", "exec", self.ns_c, "sysctl", "-qw",
                "net.ipv4.ip_local_port_range=40000 40199", "net.ipv4.tcp_tw_reuse=0")
        log(f"namespaces {self.ns_c} ({CLIENT_IP}, ports 40000-40199, tcp_tw_reuse=0) "
            f"and {self.ns_s} ({SERVER_IP})")

    def start(self):
        srv = subprocess.Popen(
            ["ip", "netns", "exec", self.ns_s, sys.executable, "-c", SERVER_CODE, SERVER_IP,
             str(PORT_EXHAUST), str(PORT_HANDSHAKE), str(PORT_BACKLOG), str(self.duration + 30)],
            stdout=subprocess.PIPE, stderr=open(os.path.join(self.tmp, "server.log"), "w"), text=True)
        self.procs.append(srv)
        line = srv.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"server did not start (see {self.tmp}/server.log)")
        self.client = subprocess.Popen(
            ["ip", "netns", "exec", self.ns_c, sys.executable, "-c", CLIENT_CODE, SERVER_IP,
             str(PORT_EXHAUST), str(PORT_HANDSHAKE), str(PORT_BACKLOG), str(self.duration),
             str(self.rate), str(self.after)],
            stdout=subprocess.PIPE, stderr=open(os.path.join(self.tmp, "client.log"), "w"), text=True)
        self.procs.append(self.client)
        self.started = time.time()
        log(f"traffic: :{PORT_EXHAUST} at {self.rate:g}/s until EADDRNOTAVAIL (+{self.after:g}s), "
            f":{PORT_HANDSHAKE} handshakes, :{PORT_BACKLOG} backlog 1 never accepted; at most {self.duration:g}s")

    def client_stats(self, timeout):
        if not self.client:
            return None
        try:
            out, _ = self.client.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return None

    def time_wait(self) -> int:
        """TIME_WAIT sockets in the client namespace."""
        r = subprocess.run(["ip", "netns", "exec", self.ns_c, "ss", "-Htan", "state", "time-wait"],
                           capture_output=True, text=True)
        return len(r.stdout.splitlines())

    def counters(self, ns) -> dict[str, int]:
        """/proc/net/netstat and /proc/net/snmp of a namespace, as {TcpExtListenOverflows: n, ...}."""
        out = {}
        for f in ("/proc/net/netstat", "/proc/net/snmp"):
            r = subprocess.run(["ip", "netns", "exec", ns, "cat", f], capture_output=True, text=True)
            lines = r.stdout.splitlines()
            for head, vals in zip(lines[::2], lines[1::2]):
                prefix, names = head.split(":", 1)
                for k, v in zip(names.split(), vals.split(":", 1)[1].split()):
                    out[prefix + k] = int(v)
        return out

    def cleanup(self):
        for p in self.procs:
            stop(p)
        for ns in self.created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.created = []


def stop(p: subprocess.Popen, grace=5.0):
    if p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


# --------------------------------------------------------------------------- Prometheus

class Prometheus:
    def __init__(self, binary, tmp, port, agent_addr, rules):
        self.base = f"http://127.0.0.1:{port}"
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: connscope
    static_configs:
      - targets: ["{agent_addr}"]
""")
        self.log_path = os.path.join(tmp, "prometheus.log")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={cfg}", f"--storage.tsdb.path={os.path.join(tmp, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
            stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"))

    def api(self, path, params=None, post=False, timeout=10.0):
        """GET (or POST, for long queries) an HTTP API path; its `data`."""
        query = urllib.parse.urlencode(params or {}, doseq=True)
        if post:
            req = urllib.request.Request(self.base + path, data=query.encode())
        else:
            req = urllib.request.Request(self.base + path + ("?" + query if query else ""))
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
        try:
            body = json.loads(raw)
        except ValueError:
            raise RuntimeError(f"{path}: not JSON: {raw[:200]!r}") from None
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def wait_ready(self, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}, see {self.log_path}")
            try:
                if http_get(self.base + "/-/ready")[0] == 200:
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"prometheus not ready after {timeout}s, see {self.log_path}")

    def wait_up(self, timeout):
        end = time.time() + timeout
        last = None
        while time.time() < end:
            for t in self.api("/api/v1/targets")["activeTargets"]:
                last = t
                if t.get("health") == "up":
                    return
            time.sleep(0.5)
        raise RuntimeError(f"scrape target not up after {timeout}s: {last and last.get('lastError')}")

    def wait_alert(self, name, timeout):
        end = time.time() + timeout
        states = set()
        while time.time() < end:
            alerts = [a for a in self.api("/api/v1/alerts")["alerts"] if a["labels"].get("alertname") == name]
            for a in alerts:
                states.add(a["state"])
                if a["state"] == "firing":
                    return a
            time.sleep(1)
        raise RuntimeError(f"alert {name} not firing after {timeout}s (states seen: {sorted(states) or 'none'})")

    def rules(self, timeout):
        """All rules once each has been evaluated."""
        end = time.time() + timeout
        while True:
            rules = [r for g in self.api("/api/v1/rules")["groups"] for r in g["rules"]]
            if all(r.get("health") != "unknown" for r in rules) or time.time() > end:
                return rules
            time.sleep(0.5)


def rewrite_for(src, dst, duration):
    with open(src, encoding="utf-8") as f:
        text = f.read()
    text, n = re.subn(r"(?m)^(\s+)for:\s*\S+", lambda m: f"{m.group(1)}for: {duration}", text)
    with open(dst, "w", encoding="utf-8") as f:
        f.write(text)
    return n


# --------------------------------------------------------------------------- dashboard queries

VAR_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")


def substitute(expr, values: dict[str, str]):
    missing = set()

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in values:
            return values[name]
        missing.add(name)
        return m.group(0)

    return VAR_RE.sub(repl, expr), missing


def prom_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class DashboardRun:
    def __init__(self, prom: Prometheus, rate_interval: str, start: float, end: float, allow_empty=None):
        self.prom = prom
        self.allow_empty = re.compile(allow_empty) if allow_empty else None
        self.rate_interval = rate_interval
        self.start, self.end = start, end
        self.failures: list[str] = []
        self.passed = 0

    def fail(self, msg):
        self.failures.append(msg)
        print(f"  FAIL {msg}", flush=True)

    def ok(self, msg):
        self.passed += 1
        print(f"  ok   {msg}", flush=True)

    def label_values(self, selector, label):
        data = self.prom.api(f"/api/v1/label/{label}/values",
                             {"match[]": selector, "start": f"{self.start:.3f}", "end": f"{self.end:.3f}"})
        return sorted(data)

    def resolve_variables(self, name, dash):
        """Multi/All variables -> '.*'; single-value query variables -> their values."""
        fixed = {"__rate_interval": self.rate_interval, "datasource": "unused"}
        single: dict[str, list[str]] = {}
        for v in cd.variables(dash):
            vn = v.get("name")
            if v.get("type") == "datasource":
                continue
            if v.get("type") == "query":
                lv = cd.parse_label_values(cd.variable_query(v))
                values = []
                if lv and lv[0]:
                    sel, _ = substitute(lv[0], {**fixed, **{k: prom_escape(c[0]) for k, c in single.items() if c}})
                    try:
                        values = self.label_values(sel, lv[1])
                    except RuntimeError as e:
                        self.fail(f"{name} variable {vn}: {e}")
                if values:
                    self.ok(f"{name} variable {vn}: {len(values)} value(s): {', '.join(values[:6])}")
                else:
                    self.fail(f"{name} variable {vn}: {cd.variable_query(v)} returned no values")
                if v.get("multi") or v.get("includeAll"):
                    fixed[vn] = v.get("allValue") or ".*"
                else:
                    single[vn] = values[:10]
            elif v.get("type") in ("custom", "constant", "textbox", "interval"):
                fixed[vn] = str((v.get("current") or {}).get("value") or v.get("query") or "")
        return fixed, single

    def query_range(self, expr):
        return self.prom.api("/api/v1/query_range", {
            "query": expr, "start": f"{self.start:.3f}", "end": f"{self.end:.3f}", "step": "1"}, post=True)

    def check_result(self, data, heatmap):
        series = data.get("result") or []
        if not series:
            return "no series"
        finite = [s for s in series if any(v[1] != "NaN" for v in s["values"])]
        if not finite:
            return f"{len(series)} series, every sample NaN"
        if heatmap:
            extra = {k for s in series for k in s["metric"] if k != "le"}
            if extra:
                return f"heatmap series carry labels besides le: {sorted(extra)}"
            if not any(s["metric"].get("le") == "+Inf" for s in series):
                return 'no le="+Inf" series'
        return None

    def run(self, path):
        name = os.path.basename(path)
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
        print(f"{name}:", flush=True)
        fixed, single = self.resolve_variables(name, dash)
        for panel, target in cd.dashboard_targets(dash):
            heatmap = panel.get("type") == "heatmap"
            what = f"{name} #{panel.get('id')} {panel.get('title')!r} {target.get('refId')}"
            expr = target.get("expr", "")
            used = [v for v in single if re.search(r"\$\{?" + v + r"\b|\[\[" + v + r"\b", expr)]
            choices = [single[v] for v in used]
            if any(not c for c in choices):
                self.fail(f"{what}: no value for {', '.join(v for v in used if not single[v])}")
                continue
            problem = None
            for combo in itertools.product(*choices) if used else [()]:
                values = {**fixed, **{v: prom_escape(c) for v, c in zip(used, combo)}}
                q, missing = substitute(expr, values)
                if missing:
                    problem = f"undefined variables {sorted(missing)}"
                    break
                try:
                    data = self.query_range(q)
                except RuntimeError as e:
                    problem = str(e)
                    break
                problem = self.check_result(data, heatmap)
                if problem is None:
                    n = len(data["result"])
                    via = f" with {', '.join(f'{v}={c}' for v, c in zip(used, combo))}" if used else ""
                    extra = ' incl. le="+Inf"' if heatmap else ""
                    self.ok(f"{what}: {n} series{extra}{via}")
                    break
            if problem is not None:
                if self.allow_empty and problem == "no series" and self.allow_empty.search(what):
                    print(f"  skip {what}: no series (--allow-empty)", flush=True)
                    continue
                self.fail(f"{what}: {problem}\n         expr: {q}")


# --------------------------------------------------------------------------- main

def traffic_only(args, tmp):
    """Run the namespaces and traffic alone and check, with ss and the
    kernel's counters, that they produce what the dashboards need."""
    scenario = Scenario(tmp, args.duration, args.rate, args.after)
    try:
        scenario.setup()
        scenario.start()
        peak = last = 0
        while scenario.client.poll() is None:
            tw = scenario.time_wait()
            peak = max(peak, tw)
            if tw != last:
                log(f"client TIME_WAIT sockets: {tw}")
                last = tw
            time.sleep(1)
        stats = scenario.client_stats(timeout=5)
        cli, srv = scenario.counters(scenario.ns_c), scenario.counters(scenario.ns_s)
    finally:
        scenario.cleanup()
    log(f"client: {json.dumps(stats)}")
    wanted = {
        "client saw EADDRNOTAVAIL": bool(stats and stats["exhaust"].get("EADDRNOTAVAIL")),
        f"TIME_WAIT peak {peak} >= 190 of 200 ports": peak >= 190,
        f"server TcpExtListenOverflows {srv.get('TcpExtListenOverflows')} > 0": srv.get("TcpExtListenOverflows", 0) > 0,
        f"client TcpExtTCPSynRetrans {cli.get('TcpExtTCPSynRetrans')} > 0": cli.get("TcpExtTCPSynRetrans", 0) > 0,
        f"client TcpActiveOpens {cli.get('TcpActiveOpens')} > 0": cli.get("TcpActiveOpens", 0) > 0,
    }
    log(f"server TcpRetransSegs (SYN-ACK retransmits) {srv.get('TcpRetransSegs')}, "
        f"TcpExtListenDrops {srv.get('TcpExtListenDrops')}")
    for what, good in wanted.items():
        print(f"  {'ok  ' if good else 'FAIL'} {what}", flush=True)
    return all(wanted.values())


def main(argv=None):
    ap = argparse.ArgumentParser(description="Dashboards and alert rules against a live Prometheus.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("connscope", nargs="?", help="path to the connscope binary (real mode, root)")
    ap.add_argument("--fake-agent", metavar="METRICS_TXT", help="serve this /metrics text instead of the agent")
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    ap.add_argument("--rules", default=os.path.join(REPO, "dashboards", "alerts", "connscope.rules.yml"))
    ap.add_argument("--dashboards", nargs="+", default=sorted(glob.glob(os.path.join(REPO, "dashboards", "*.json"))))
    ap.add_argument("--for", dest="for_", default="5s", help="every rule's for: in the test copy (default 5s)")
    ap.add_argument("--alert", default="ConnscopeEphemeralPortsCritical", help="alert that must reach firing")
    ap.add_argument("--rate-interval", default="15s", help="value of $__rate_interval (default 15s)")
    ap.add_argument("--duration", type=float, default=60, help="traffic time bound in seconds (default 60)")
    ap.add_argument("--rate", type=float, default=20, help="exhaustion client connects/s (default 20)")
    ap.add_argument("--after", type=float, default=10, help="seconds the exhaustion client keeps trying after EADDRNOTAVAIL")
    ap.add_argument("--settle", type=float, default=35,
                    help="seconds of data before the dashboard queries run (default 35: SYN retransmits at 1, 3, 7 s, rate windows)")
    ap.add_argument("--alert-timeout", type=float, default=90)
    ap.add_argument("--agent-arg", action="append", default=[], help="extra argument for `connscope run` (repeatable)")
    ap.add_argument("--allow-empty", metavar="REGEX",
                    help="targets (matched against 'file #id \'title\' refId') allowed to return no series")
    ap.add_argument("--traffic-only", action="store_true",
                    help="root: run only the namespaces and traffic, and check them with ss and /proc/net counters")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, TSDB)")
    args = ap.parse_args(argv)

    if args.traffic_only:
        if os.geteuid() != 0:
            ap.error("--traffic-only needs root (network namespaces)")
        tmp = tempfile.mkdtemp(prefix="connscope-e2e-")
        signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(KeyboardInterrupt()))
        good = traffic_only(args, tmp)
        if good and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp} (client.log, server.log)")
        return 0 if good else 1
    if bool(args.connscope) == bool(args.fake_agent):
        ap.error("give the connscope binary, or --fake-agent METRICS_TXT")
    if args.connscope and os.geteuid() != 0:
        ap.error("real mode needs root (BPF, network namespaces)")
    if args.connscope and not os.access(args.connscope, os.X_OK):
        ap.error(f"{args.connscope}: not an executable")
    if not os.access(args.prometheus, os.X_OK):
        ap.error(f"{args.prometheus}: not an executable (apt-get install prometheus)")

    tmp = tempfile.mkdtemp(prefix="connscope-e2e-")
    cleanups = []
    ok = False

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        log(f"temp dir {tmp}")
        agent_port, prom_port = free_port(), free_port()
        agent_addr = f"127.0.0.1:{agent_port}"
        scenario = None
        if args.fake_agent:
            fake = FakeAgent(args.fake_agent, agent_port)
            cleanups.append(fake.stop)
            log(f"fake agent serving {args.fake_agent} on {agent_addr}")
        else:
            cmd = [os.path.abspath(args.connscope), "run", "--listen", agent_addr, "--interval", "1", *args.agent_arg]
            agent_log = os.path.join(tmp, "agent.log")
            agent = subprocess.Popen(cmd, stdout=open(agent_log, "w"), stderr=subprocess.STDOUT)
            cleanups.append(lambda: stop(agent))
            log(f"started {' '.join(cmd)} (log {agent_log})")
            end = time.time() + 30
            while True:
                if agent.poll() is not None:
                    raise RuntimeError(f"connscope run exited with {agent.returncode}, see {agent_log}")
                try:
                    if http_get(f"http://{agent_addr}/metrics")[0] == 200:
                        break
                except (OSError, urllib.error.URLError):
                    pass
                if time.time() > end:
                    raise RuntimeError(f"connscope run does not serve /metrics after 30s, see {agent_log}")
                time.sleep(0.3)
            scenario = Scenario(tmp, args.duration, args.rate, args.after)
            cleanups.append(scenario.cleanup)
            scenario.setup()

        rules = os.path.join(tmp, "connscope.rules.yml")
        n = rewrite_for(args.rules, rules, args.for_)
        log(f"rules: {args.rules} with {n} for: durations rewritten to {args.for_}")
        prom = Prometheus(args.prometheus, tmp, prom_port, agent_addr, rules)
        cleanups.append(lambda: stop(prom.proc))
        prom.wait_ready(60)
        log(f"prometheus ready on {prom.base}")
        prom.wait_up(30)
        t_up = time.time()
        log("scrape target up")

        if scenario:
            scenario.start()
        t0 = scenario.started if scenario else t_up
        alert = prom.wait_alert(args.alert, args.alert_timeout)
        log(f"{args.alert} firing after {time.time() - t0:.0f}s: {alert['labels']}")
        wait = t0 + args.settle - time.time()
        if wait > 0:
            log(f"letting {wait:.0f}s more data in")
            time.sleep(wait)

        failures = []
        end = time.time()
        run = DashboardRun(prom, args.rate_interval, t_up, end, args.allow_empty)
        for path in args.dashboards:
            run.run(path)
        failures += run.failures

        print("rules:", flush=True)
        for r in prom.rules(15):
            label = r.get("name")
            if r.get("health") == "ok":
                print(f"  ok   {r.get('type')} {label}: health ok, state {r.get('state', '-')}", flush=True)
            else:
                msg = f"rule {label}: health {r.get('health')}: {r.get('lastError')}"
                failures.append(msg)
                print(f"  FAIL {msg}", flush=True)

        if scenario:
            stats = scenario.client_stats(timeout=max(0.0, scenario.started + args.duration + 15 - time.time()))
            log(f"client: {json.dumps(stats) if stats else 'no summary (still running; stopped)'}")
            if stats and not stats["exhaust"].get("EADDRNOTAVAIL"):
                failures.append("the exhaustion client never saw EADDRNOTAVAIL")
            with open(os.path.join(tmp, "metrics-after.txt"), "wb") as f:
                f.write(http_get(f"http://{agent_addr}/metrics")[1])
            log(f"agent's /metrics saved to {tmp}/metrics-after.txt "
                f"(check_dashboards.py --metrics takes it)")
            # The static check once more, now against what the agent really serves.
            if cd.main(list(args.dashboards) + ["--metrics", os.path.join(tmp, "metrics-after.txt")]) != 0:
                failures.append("check_dashboards.py --metrics: the dashboards reference metrics the agent lacks")

        if failures:
            log(f"FAILED: {len(failures)} problem(s), {run.passed} checks passed")
            for f_ in failures:
                print(f"  - {f_.splitlines()[0]}")
        else:
            log(f"PASSED: {run.passed} dashboard checks, every rule healthy, {args.alert} fired")
            ok = True
    except KeyboardInterrupt as e:
        log(f"interrupted ({e})")
    except (RuntimeError, OSError) as e:
        log(f"ERROR: {e}")
    finally:
        for c in reversed(cleanups):
            try:
                c()
            except Exception as e:  # keep cleaning up
                log(f"cleanup: {e}")
        if ok and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp} (prometheus.log, agent.log, client.log, server.log)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
