"""Keeps the cluster benchmark (`python -m benchmarks.cluster`) working: one tiny run on SQLite,
one node, with and without run records, exactly as a user starts it. Only counts and shapes are
asserted, never timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cluster import Config, order, plan

pytest.importorskip("sqlalchemy")

REPO_ROOT = Path(__file__).resolve().parents[2]
TASKS = 200


def test_tiny_sqlite_run_reports_a_rate_and_every_task_once(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.cluster",
            "--backends",
            "sqlite",
            "--nodes",
            "1",
            "--tasks",
            str(TASKS),
            "--repeats",
            "1",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (raw,) = tmp_path.glob("cluster-*.json")
    (md,) = tmp_path.glob("cluster-*.md")
    results = json.loads(raw.read_text())["results"]
    # The run-record comparison: the same workload with and without records.
    assert sorted(r["run_records"] for r in results) == [False, True]
    for r in results:
        assert r["status"] == "ok", r.get("reason")
        assert r["fires_per_s"] > 0
        checks = r["checks"]
        assert checks["executed"] == TASKS
        assert checks["duplicates"] == checks["missing"] == checks["unexpected"] == 0
        assert checks["errors"] == checks["missed"] == 0
        expected = {"succeeded": TASKS} if r["run_records"] else {}
        assert checks["run_records"] == expected
    report = md.read_text()
    assert "## Fires per second by number of nodes" in report
    assert "## The cost of run records (one node)" in report


def test_pairs_stay_together_and_alternate() -> None:
    groups = plan(["postgresql", "redis"], [1, 2, 4])
    assert [Config("postgresql", 1, True), Config("postgresql", 1, False)] in groups
    for repeat in range(4):
        flat = order(groups, repeat)
        assert len(flat) == 7 and len(set(flat)) == 7
        i = flat.index(Config("postgresql", 1, True))
        j = flat.index(Config("postgresql", 1, False))
        assert abs(i - j) == 1
        assert (i < j) == (repeat % 2 == 0)
