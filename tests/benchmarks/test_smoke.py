"""Keeps the benchmark harness working: every workload, tiny, against this checkout only.

Each case runs in a fresh worker process exactly as `python -m benchmarks` runs it, with this
interpreter instead of a benchmark environment (no peers, no network). Only shapes and counts
are asserted, never timings. A workload this checkout cannot run yet must come back as the
"n/a (not implemented: ...)" marker rather than as an error. Real-server cases are left out.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks.runner import run_case
from benchmarks.workloads import CASES, CROSS_CHECK, Case

REPO_ROOT = Path(__file__).resolve().parents[2]
SCALE = 0.01
LOCAL_CASES = [c for c in CASES if c.server is None]

# What a successful run must have verified, per workload: (count that must be > 0, equal to).
EXPECTED_COUNTS = {
    "add_many": ("added", "stored"),
    "dispatch": ("due", "executed"),
    "latency": ("planned", "executed"),
    "idle": ("tasks", "stored"),
    "sql_store": ("added", "loaded_due"),
}


def _check_na(result: dict[str, Any]) -> None:
    # Missing features are fine; a checkout that does not import at all is not.
    assert "is not importable" not in result["reason"]
    assert result["reason"].startswith("not implemented: ")
    assert len(result["reason"]) > len("not implemented: ")
    assert result["metrics"] == {}


def _check_cron(result: dict[str, Any], case: Case) -> None:
    extra = result["extra"]
    fires, unsupported = extra["fires"], extra["unsupported"]
    expressions = {m.key for m in case.metrics} - {"all"}
    # Every expression is either measured or explained.
    assert set(fires) | set(unsupported) == expressions
    assert set(result["metrics"]) == {"all", *fires}
    assert result["counts"]["expressions"] == len(fires)
    for name, instants in fires.items():
        assert 0 < len(instants) <= CROSS_CHECK, name
        if name not in extra["not_increasing"]:
            assert instants == sorted(set(instants)), name
    for reason in unsupported.values():
        assert reason


@pytest.mark.parametrize("case", LOCAL_CASES, ids=[c.id for c in LOCAL_CASES])
def test_workload_runs_tiny_against_this_checkout(case: Case) -> None:
    result = run_case(sys.executable, "asyncz", case, SCALE, timeout=60, repo_root=REPO_ROOT)

    assert {"lib", "case", "status", "reason", "metrics", "counts", "extra"} <= set(result)
    assert (result["lib"], result["case"]) == ("asyncz", case.id)
    assert result["status"] in ("ok", "n/a"), result["reason"]
    if result["status"] == "n/a":
        _check_na(result)
        return
    assert Path(result["origin"]).resolve().is_relative_to(REPO_ROOT)
    for key, value in result["metrics"].items():
        assert isinstance(value, int | float), key
        assert math.isfinite(value), key
    if case.workload == "cron_next":
        _check_cron(result, case)
        return
    expected = {m.key for m in case.metrics}
    if case.workload == "idle":
        # Wake-ups are counted through CPython loop internals, absent on other loops.
        expected -= {"wakeups", "iterations"}
    assert expected <= set(result["metrics"])
    total, done = EXPECTED_COUNTS[case.workload]
    assert result["counts"][total] > 0
    assert result["counts"][done] == result["counts"][total]


def test_report_marks_missing_features_and_compares_with_the_best_peer() -> None:
    dispatch = next(c for c in CASES if c.workload == "dispatch")
    metric = dispatch.metrics[0]

    def ok(lib: str, value: float) -> dict[str, Any]:
        return {
            "lib": lib,
            "case": dispatch.id,
            "status": "ok",
            "reason": "",
            "metrics": {metric.key: value},
            "counts": {},
            "extra": {},
        }

    na = {
        "lib": "asyncz",
        "case": dispatch.id,
        "status": "n/a",
        "metrics": {},
        "reason": "not implemented: UnknownAliasError: no 'threadpool'",
        "counts": {},
        "extra": {},
    }
    labels = {"asyncz": "ours", "apscheduler": "aps", "asyncz-peer": "peer"}
    libs = list(labels)
    summary = report.Summary(
        {
            (dispatch.id, "asyncz"): [
                ok("asyncz", 300.0),
                ok("asyncz", 100.0),
                ok("asyncz", 200.0),
            ],
            (dispatch.id, "apscheduler"): [ok("apscheduler", 100.0)],
            (dispatch.id, "asyncz-peer"): [ok("asyncz-peer", 50.0)],
        }
    )
    row = report.render_table(summary, [dispatch], libs, labels)[2]
    # Median and range over the repeats; higher is better here, and the best peer made 100/s.
    assert f"200 (100{report.DASH}300)" in row
    assert row.rstrip(" |").endswith(f"2.00{report.TIMES} better")

    summary = report.Summary({(dispatch.id, "asyncz"): [na]})
    row = report.render_table(summary, [dispatch], libs, labels)[2]
    assert "n/a (not implemented: UnknownAliasError: no 'threadpool')" in row
