"""The benchmark report's charts: one PNG per workload, drawn from the same medians as its
tables (benchmarks/charts.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.adapters import ADAPTERS
from benchmarks.charts import write_charts
from benchmarks.workloads import CASES

pytest.importorskip("matplotlib")


def test_a_chart_per_workload_from_the_repeats(tmp_path: Path) -> None:
    dispatch = [c for c in CASES if c.workload == "dispatch"][:2]
    cron = [c for c in CASES if c.workload == "cron_next"]

    def ok(case: Any, lib: str, value: float) -> dict[str, Any]:
        metrics = {m.key: value for m in case.metrics}
        return {"lib": lib, "case": case.id, "status": "ok", "reason": "", "metrics": metrics}

    results = {
        (case.id, lib): [ok(case, lib, v), ok(case, lib, v * 1.2)]
        for case in [*dispatch, *cron]
        for lib, v in (("asyncz", 300.0), ("apscheduler", 100.0), ("croniter", 80.0))
    }
    labels = {lib: ADAPTERS[lib].label for lib in ("asyncz", "apscheduler", "croniter")}
    written = write_charts(results, [*dispatch, *cron], list(labels), labels, tmp_path)
    assert set(written) == {"dispatch", "cron_next"}
    for path in written.values():
        assert path.read_bytes().startswith(b"\x89PNG")
