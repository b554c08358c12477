"""``make bench-server`` cannot rot: its harness runs end to end at a tiny size (real PostgreSQL,
real crm-server processes, real HAProxy), and the report and figures have the promised shape.

Nothing here asserts a time: only counts (every acknowledged write arrived exactly once, no 5xx,
one row per server variant and client count) and that each section of bench/SERVER.md is there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.pgcluster import haproxy_config

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = {"sqlite", "pg1", "pgn"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench-server")
    output = work / "SERVER.md"
    done = subprocess.run([sys.executable, "-m", "bench.server", "--tiny", "--work", str(work / "run"),
                           "--output", str(output)], cwd=ROOT, capture_output=True, text=True, timeout=840)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((work / "run" / "results.json").read_text()), output.read_text()


@pytest.mark.timeout(900)
def test_every_variant_serves_every_client_count_and_loses_no_write(tiny_run):
    results, _ = tiny_run
    plan = results["plan"]
    runs = {(r["variant"], r["clients"]) for r in results["sync"]}
    assert runs == {(v, c) for v in VARIANTS for c in plan["clients"]}
    for r in results["sync"]:
        assert r["status_5xx"] == 0 and r["client_errors"] == [], r
        assert r["acked_creates"] > 0 and r["db_created"] == r["acked_creates"], "every acknowledged create stored once"
        assert r["feed_missing"] == 0, "every acknowledged create reached the territory's other clients"
        assert r["bootstrap_records"] >= r["clients"] * plan["per_territory"] * 8
        assert r["sample"]["cpu"]["crm-server"] > 0
    assert all(r["locked"] == 0 for r in results["sync"] if r["variant"] == "sqlite")
    pgn = [r for r in results["sync"] if r["variant"] == "pgn"]
    assert all("haproxy" in r["sample"]["cpu"] and "postgresql" in r["sample"]["cpu"] for r in pgn)
    assert results["variants"]["pgn"]["processes"] == plan["workers"] == 2


@pytest.mark.timeout(900)
def test_order_intake_is_followed_by_the_feed_on_every_variant(tiny_run):
    results, _ = tiny_run
    assert {r["variant"] for r in results["intake"]} == VARIANTS
    for r in results["intake"]:
        assert r["orders"] > 0 and r["db_created"] == r["orders"], r
        assert r["feed_missing"] == 0 and r["redelivered"] == 0 and r["status_5xx"] == 0, r


@pytest.mark.timeout(900)
def test_revenue_scope_and_report_have_their_figures(tiny_run):
    results, report = tiny_run
    assert not results["errors"], results["errors"]
    pg = [r for r in results["revenue"] if r["variant"] == "pg1"]
    assert {(r["range"].split(" (")[0], r["pruning"]) for r in pg} == {
        (rng, p) for rng in ("whole data set", "one quarter") for p in (True, False)}
    quarter = {r["pruning"]: r for r in pg if r["range"].startswith("one quarter")}
    assert quarter[True]["partitions_read_per_query"] == 3, "pruning reads the quarter's three months"
    assert quarter[False]["partitions_read_per_query"] > 3
    assert quarter[True]["result_rows"] == quarter[False]["result_rows"] > 0
    assert [r["other_customers"] for r in results["scope"]] == results["plan"]["scope_sizes"]
    assert all(r["records"] == 200 and r["rows_examined"] > 0 for r in results["scope"])
    for heading in ("## Machine", "## Budgets (issue 8)", "## Sync clients", "**Same-run ratios**", "## Order intake",
                    "## Revenue by month by territory", "## A rep's incremental pull", "## What bounds the missed budgets"):
        assert heading in report
    budget_rows = [line for line in report.splitlines() if line.startswith("| ") and ("met |" in line or "missed** |" in line)]
    assert len(budget_rows) == 11, "5xx and lost writes per variant, locks on SQLite, throughput, writes ×2, scope"
    sync_rows = [line for line in report.split("## Sync clients")[1].split("**Same-run")[0].splitlines()
                 if line[:3].strip("| ").isdigit()]
    assert len(sync_rows) == 3 * len(results["plan"]["clients"])


def test_the_generated_haproxy_config_is_valid_for_haproxy(tmp_path):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy_config(18080, ["127.0.0.1:18081", "127.0.0.1:18082"]))
    done = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert cfg.read_text().count(" check") == 2 and "option httpchk GET /health" in cfg.read_text()
