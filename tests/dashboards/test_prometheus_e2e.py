#!/usr/bin/env python3
"""Unit tests of prometheus_e2e.py's pieces that need neither root nor a
running Prometheus (the fake-agent run covers the rest).

    python3 tests/dashboards/test_prometheus_e2e.py
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import prometheus_e2e as e2e  # noqa: E402

RULES = os.path.join(e2e.REPO, "dashboards", "alerts", "connscope.rules.yml")
FIXTURE = os.path.join(HERE, "fixtures", "metrics.txt")


class SubstituteTest(unittest.TestCase):
    def test_forms(self):
        vals = {"job": ".*", "dst": "10.0.0.2:443", "__rate_interval": "15s"}
        q, missing = e2e.substitute('rate(x{job=~"$job",a="${dst}",b="${dst:raw}",c="[[dst]]"}[$__rate_interval])', vals)
        self.assertEqual(q, 'rate(x{job=~".*",a="10.0.0.2:443",b="10.0.0.2:443",c="10.0.0.2:443"}[15s])')
        self.assertEqual(missing, set())

    def test_whole_names_only(self):
        q, missing = e2e.substitute('x{a="$jobs"}', {"job": ".*"})
        self.assertEqual(q, 'x{a="$jobs"}')
        self.assertEqual(missing, {"jobs"})

    def test_escape(self):
        self.assertEqual(e2e.prom_escape('a"b\\c'), 'a\\"b\\\\c')


class CheckResultTest(unittest.TestCase):
    def setUp(self):
        self.run = e2e.DashboardRun(None, "15s", 0, 1)

    def test_empty(self):
        self.assertEqual(self.run.check_result({"result": []}, False), "no series")

    def test_nan_only(self):
        data = {"result": [{"metric": {}, "values": [[1, "NaN"], [2, "NaN"]]}]}
        self.assertIn("every sample NaN", self.run.check_result(data, False))

    def test_ok(self):
        data = {"result": [{"metric": {}, "values": [[1, "NaN"], [2, "0"]]}]}
        self.assertIsNone(self.run.check_result(data, False))

    def test_heatmap_needs_inf(self):
        data = {"result": [{"metric": {"le": "0.001"}, "values": [[1, "3"]]}]}
        self.assertEqual(self.run.check_result(data, True), 'no le="+Inf" series')
        data["result"].append({"metric": {"le": "+Inf"}, "values": [[1, "3"]]})
        self.assertIsNone(self.run.check_result(data, True))

    def test_heatmap_only_le(self):
        data = {"result": [{"metric": {"le": "+Inf", "dst": "x"}, "values": [[1, "3"]]}]}
        self.assertIn("labels besides le", self.run.check_result(data, True))


class RewriteForTest(unittest.TestCase):
    def test_every_for_rewritten(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "rules.yml")
            n = e2e.rewrite_for(RULES, out, "5s")
            with open(RULES) as f:
                want = len(re.findall(r"(?m)^\s+for:", f.read()))
            self.assertEqual(n, want)
            self.assertGreaterEqual(n, 8)
            with open(out) as f:
                fors = re.findall(r"(?m)^\s+for:\s*(\S+)", f.read())
            self.assertEqual(set(fors), {"5s"})
            if shutil.which("promtool"):
                r = subprocess.run(["promtool", "check", "rules", out], capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class FakeAgentTest(unittest.TestCase):
    def test_counters_grow_gauges_stay(self):
        port = e2e.free_port()
        agent = e2e.FakeAgent(FIXTURE, port)
        try:
            agent.start -= 10  # as if 10 s had passed: counters doubled
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
                text = r.read().decode()
        finally:
            agent.stop()
        def value(prefix):
            for line in text.splitlines():
                if line.startswith(prefix):
                    return float(line.rsplit(" ", 1)[1])
            raise AssertionError(prefix)
        self.assertAlmostEqual(value('connscope_connect_attempts_total{netns="4026532464",src="10.231.0.1",dst="10.231.0.2:8080"}'), 520, delta=2)
        self.assertEqual(value('connscope_port_utilization_ratio{netns="4026532464",src="10.231.0.1",dst="10.231.0.2:8080"}'), 1.0)
        self.assertAlmostEqual(value("connscope_last_interval_timestamp_seconds"), time.time(), delta=5)
        # histogram buckets stay cumulative
        buckets = [float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                   if l.startswith('connscope_port_search_duration_seconds_bucket{netns="4026532464",src="10.231.0.1",dst="10.231.0.2:8080"')]
        self.assertEqual(len(buckets), 23)
        self.assertEqual(buckets, sorted(buckets))


if __name__ == "__main__":
    unittest.main(verbosity=1)
