#!/usr/bin/env python3
"""Unit tests of check_dashboards.py: the shipped dashboards pass, and each
kind of mistake in a copy of them is reported.

    python3 tests/dashboards/test_check_dashboards.py
"""
import copy
import io
import json
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import check_dashboards as cd  # noqa: E402

REPO = cd.REPO
OVERVIEW = os.path.join(REPO, "dashboards", "connscope-overview.json")
DETAIL = os.path.join(REPO, "dashboards", "connscope-detail.json")
DOC = os.path.join(REPO, "docs", "metrics.md")
FIXTURE = os.path.join(HERE, "fixtures", "metrics.txt")


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def first(dash, ptype):
    for p, _ in cd.iter_panels(dash["panels"]):
        if p.get("type") == ptype:
            return p
    raise AssertionError(f"no {ptype} panel")


class CheckerTest(unittest.TestCase):
    def run_check(self, dashes, metrics=None):
        """Write the dashboards to a temp dir and run main(); (rc, output)."""
        with tempfile.TemporaryDirectory() as d:
            files = []
            for name, dash in dashes.items():
                path = os.path.join(d, name)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(dash if isinstance(dash, str) else json.dumps(dash))
                files.append(path)
            args = files + (["--metrics", metrics] if metrics else ["--metrics-doc", DOC])
            out = io.StringIO()
            with redirect_stdout(out):
                rc = cd.main(args)
            return rc, out.getvalue()

    def both(self, overview=None, detail=None):
        return {"connscope-overview.json": overview or load(OVERVIEW),
                "connscope-detail.json": detail or load(DETAIL)}

    def assertProblem(self, dashes, needle, metrics=None):
        rc, out = self.run_check(dashes, metrics)
        self.assertEqual(rc, 1, out)
        self.assertIn(needle, out)

    # --- the shipped files
    def test_shipped_dashboards_pass_against_doc(self):
        rc, out = self.run_check(self.both())
        self.assertEqual(rc, 0, out)

    def test_shipped_dashboards_pass_against_metrics_fixture(self):
        rc, out = self.run_check(self.both(), metrics=FIXTURE)
        self.assertEqual(rc, 0, out)

    def test_doc_parsing(self):
        src = cd.load_metrics_doc(DOC)
        self.assertEqual(src.label_names("connscope_ports_in_use") - {"__name__"},
                         {"netns", "src", "dst", "state", "job", "instance"})
        # histogram expanded, with le on the buckets only
        self.assertIn("le", src.label_names("connscope_handshake_duration_seconds_bucket"))
        self.assertNotIn("le", src.label_names("connscope_handshake_duration_seconds_count"))
        # "histogram (no `listen`/`netns` labels)"
        self.assertEqual(src.label_names("connscope_accept_queue_fill_ratio_bucket") - {"__name__"},
                         {"le", "job", "instance"})
        self.assertEqual(src.label_names("connscope_alert_active") - {"__name__"},
                         {"rule", "severity", "target", "netns", "job", "instance"})

    def test_metrics_text_parsing(self):
        src = cd.load_metrics_text(FIXTURE)
        self.assertTrue(src.has("connscope_port_search_duration_seconds_bucket"))
        self.assertIn("errno", src.label_names("connscope_connect_errors_total"))

    # --- mistakes
    def test_invalid_json(self):
        self.assertProblem({"connscope-overview.json": "{", "connscope-detail.json": load(DETAIL)},
                           "not valid JSON")

    def test_schema_version(self):
        d = load(OVERVIEW)
        d["schemaVersion"] = 38
        self.assertProblem(self.both(overview=d), "schemaVersion is 38")

    def test_import_inputs(self):
        d = load(OVERVIEW)
        d["__inputs"] = [{"name": "DS_PROMETHEUS"}]
        d["panels"][1]["datasource"] = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        rc, out = self.run_check(self.both(overview=d))
        self.assertEqual(rc, 1)
        self.assertIn("__inputs", out)
        self.assertIn("${DS_", out)

    def test_duplicate_panel_id(self):
        d = load(OVERVIEW)
        d["panels"][2]["id"] = d["panels"][1]["id"]
        self.assertProblem(self.both(overview=d), "duplicate panel id")

    def test_grid_outside_24_columns(self):
        d = load(OVERVIEW)
        d["panels"][1]["gridPos"]["x"] = 20
        self.assertProblem(self.both(overview=d), "outside 24 columns")

    def test_overlap(self):
        d = load(OVERVIEW)
        d["panels"][2]["gridPos"]["x"] = d["panels"][1]["gridPos"]["x"]
        self.assertProblem(self.both(overview=d), "overlaps")

    def test_panel_datasource(self):
        d = load(OVERVIEW)
        d["panels"][1]["datasource"] = {"type": "prometheus", "uid": "prometheus"}
        self.assertProblem(self.both(overview=d), "datasource is")

    def test_target_datasource(self):
        d = load(DETAIL)
        first(d, "timeseries")["targets"][0]["datasource"] = None
        self.assertProblem(self.both(detail=d), "target A: datasource is None")

    def test_variable_datasource(self):
        d = load(OVERVIEW)
        d["templating"]["list"][1]["datasource"] = {"type": "prometheus", "uid": "abc"}
        self.assertProblem(self.both(overview=d), "variable job: datasource is")

    def test_missing_datasource_variable(self):
        d = load(OVERVIEW)
        d["templating"]["list"] = d["templating"]["list"][1:]
        self.assertProblem(self.both(overview=d), "needs a variable `datasource`")

    def test_job_variable_single(self):
        d = load(OVERVIEW)
        d["templating"]["list"][1]["multi"] = False
        self.assertProblem(self.both(overview=d), "variable job: must be a multi-value")

    def test_fixed_range(self):
        d = load(OVERVIEW)
        t = first(d, "timeseries")["targets"][0]
        t["expr"] = 'rate(connscope_connect_attempts_total{job=~"$job"}[5m])'
        self.assertProblem(self.both(overview=d), "range [5m] is not [$__rate_interval]")

    def test_subquery(self):
        d = load(OVERVIEW)
        t = first(d, "timeseries")["targets"][0]
        t["expr"] = 'max_over_time(connscope_connect_rate{job=~"$job"}[$__rate_interval:1s])'
        self.assertProblem(self.both(overview=d), "is not [$__rate_interval]")

    def test_interval_variable(self):
        d = load(OVERVIEW)
        t = first(d, "timeseries")["targets"][0]
        t["expr"] = 'rate(connscope_connect_attempts_total{job=~"$job"}[$__interval])'
        self.assertProblem(self.both(overview=d), "uses $__interval")

    def test_unknown_metric(self):
        d = load(OVERVIEW)
        t = first(d, "timeseries")["targets"][0]
        t["expr"] = 'topk(10, connscope_port_utilisation_ratio{job=~"$job",instance=~"$instance"})'
        self.assertProblem(self.both(overview=d), "metric connscope_port_utilisation_ratio is not in")

    def test_unknown_metric_against_scrape(self):
        d = load(OVERVIEW)
        t = first(d, "timeseries")["targets"][0]
        t["expr"] = 'connscope_nonexistent{job=~"$job",instance=~"$instance"}'
        self.assertProblem(self.both(overview=d), "metric connscope_nonexistent is not in", metrics=FIXTURE)

    def test_unknown_label(self):
        d = load(OVERVIEW)
        t = first(d, "timeseries")["targets"][0]
        t["expr"] = 'connscope_ports_in_use{job=~"$job",status="time_wait"}'
        self.assertProblem(self.both(overview=d), "has no label 'status'")

    def test_unknown_metric_in_variable(self):
        d = load(DETAIL)
        for v in d["templating"]["list"]:
            if v["name"] == "netns":
                v["query"]["query"] = v["definition"] = \
                    'label_values({__name__=~"connscope_ports_usable|connscope_listen_queue_maxx"}, netns)'
        self.assertProblem(self.both(detail=d), "connscope_listen_queue_maxx is not in")

    def test_undefined_variable(self):
        d = load(OVERVIEW)
        t = first(d, "timeseries")["targets"][0]
        t["expr"] = 'connscope_ports_usable{job=~"$job",dst="$dst"}'
        self.assertProblem(self.both(overview=d), "undefined variable $dst")

    def test_heatmap_format(self):
        d = load(OVERVIEW)
        first(d, "heatmap")["targets"][0]["format"] = "time_series"
        self.assertProblem(self.both(overview=d), "needs format: heatmap")

    def test_heatmap_not_by_le(self):
        d = load(OVERVIEW)
        t = first(d, "heatmap")["targets"][0]
        t["expr"] = t["expr"].replace("sum by (le)", "sum by (le, dst)")
        self.assertProblem(self.both(overview=d), "heatmap target must be sum by (le)")

    def test_heatmap_rate_not_increase(self):
        d = load(OVERVIEW)
        t = first(d, "heatmap")["targets"][0]
        t["expr"] = t["expr"].replace("increase(", "rate(")
        self.assertProblem(self.both(overview=d), "heatmap target must be sum by (le)")

    def test_heatmap_calculate(self):
        d = load(OVERVIEW)
        first(d, "heatmap")["options"]["calculate"] = True
        self.assertProblem(self.both(overview=d), "calculate: false")

    def test_heatmap_unit(self):
        d = load(OVERVIEW)
        first(d, "heatmap")["options"]["yAxis"]["unit"] = "short"
        self.assertProblem(self.both(overview=d), "needs yAxis unit 's'")

    def test_heatmap_format_elsewhere(self):
        d = load(OVERVIEW)
        first(d, "timeseries")["targets"][0]["format"] = "heatmap"
        self.assertProblem(self.both(overview=d), "format: heatmap outside a heatmap panel")

    def test_unit_missing(self):
        d = load(OVERVIEW)
        del first(d, "timeseries")["fieldConfig"]["defaults"]["unit"]
        self.assertProblem(self.both(overview=d), "unit None")

    def test_broken_link(self):
        rc, out = self.run_check({"connscope-overview.json": load(OVERVIEW)})
        self.assertEqual(rc, 1)
        self.assertIn("link to /d/connscope-detail", out)

    def test_unparseable_expression(self):
        d = load(OVERVIEW)
        first(d, "timeseries")["targets"][0]["expr"] = 'sum(rate(connscope_accepts_total{job=~"$job"}[$__rate_interval])'
        self.assertProblem(self.both(overview=d), "unbalanced (")


class ScanTest(unittest.TestCase):
    def test_scan(self):
        info = cd.scan('histogram_quantile(0.99, sum by (instance, le) (rate(a_bucket{x="1[2]",y=~"$v"}[$__rate_interval])))'
                       ' and on (job) b offset 5m > bool 3 unless {__name__=~"c|d"}')
        self.assertEqual([m for m, _ in info.selectors], ["a_bucket", "b", None])
        self.assertEqual(info.ranges, ["$__rate_interval"])
        self.assertEqual(info.variables, {"v", "__rate_interval"})
        self.assertEqual(cd.selector_metrics(None, info.selectors[2][1]), ["c", "d"])

    def test_heatmap_expr(self):
        self.assertEqual(cd.is_heatmap_expr('sum by (le) (increase(x_bucket{a="b"}[$__rate_interval]))'), "x_bucket")
        self.assertIsNone(cd.is_heatmap_expr('sum by (le) (increase(x_bucket{a="b"}[1m]))'))
        self.assertIsNone(cd.is_heatmap_expr('sum(increase(x_bucket{a="b"}[$__rate_interval]))'))


if __name__ == "__main__":
    unittest.main(verbosity=1)
