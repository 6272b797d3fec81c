"""Charts of the report's side-by-side figures: one PNG per workload, one panel per table row.

Each panel is a row of the workload's table (a case and a metric): a bar per library at its
median, a line over the bar from the minimum to the maximum of the repeats, and the value
written beside it. Nothing is computed here that the table does not show. matplotlib is
optional: without it the report is written without charts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .adapters import ADAPTERS
from .report import SELF, Results, Summary, _fmt
from .workloads import Case

#: this checkout first, in the project's colour; peers in greys and a third colour
COLOURS = {SELF: "#3f51b5", "asyncz-peer": "#9e9e9e", "apscheduler": "#616161"}
OTHER = "#c0a060"


def write_charts(
    results: Results,
    cases: Sequence[Case],
    libs: Sequence[str],
    labels: dict[str, str],
    folder: Path,
) -> dict[str, Path]:
    """Draw one chart per workload into `folder`; return {workload: path} (empty without
    matplotlib or without figures)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    summary = Summary(results)
    by_workload: dict[str, list[Case]] = {}
    for case in cases:
        by_workload.setdefault(case.workload, []).append(case)
    written: dict[str, Path] = {}
    for workload, case_list in by_workload.items():
        shown = [
            lib for lib in libs if not case_list[0].schedulers_only or ADAPTERS[lib].is_scheduler
        ]
        rows = [
            (case, metric)
            for case in case_list
            for metric in case.metrics
            if any(summary.values(case, lib, metric) for lib in shown)
        ]
        if not rows:
            continue
        height = sum(0.32 * len(shown) + 0.55 for _ in rows) + 0.6
        fig, axes = plt.subplots(len(rows), 1, figsize=(8, height), squeeze=False)
        for ax, (case, metric) in zip(axes[:, 0], rows, strict=True):
            _panel(ax, summary, case, metric, shown, labels)
        fig.suptitle(f"{workload} (median of the repeats; line: min to max)", fontsize=10)
        fig.tight_layout()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{workload}.png"
        fig.savefig(path, dpi=110, metadata={"Software": None})
        plt.close(fig)
        written[workload] = path
    return written


def _panel(ax, summary: Summary, case: Case, metric, shown: list[str], labels) -> None:  # type: ignore[no-untyped-def]
    names, medians, lows, highs, colours = [], [], [], [], []
    for lib in shown:
        values = summary.values(case, lib, metric)
        if not values:
            continue
        med = summary.median(case, lib, metric)
        names.append(labels.get(lib, lib))
        medians.append(med)
        lows.append(med - min(values))
        highs.append(max(values) - med)
        colours.append(COLOURS.get(lib, OTHER))
    positions = list(range(len(names)))[::-1]
    ax.barh(positions, medians, color=colours, xerr=[lows, highs], capsize=2, height=0.7)
    ax.set_yticks(positions, names, fontsize=8)
    arrow = "lower is better" if metric.better == "lower" else "higher is better"
    unit = f" ({metric.unit})" if metric.unit else ""
    ax.set_title(f"{case.name}: {metric.label}{unit}, {arrow}", fontsize=8, loc="left")
    ax.tick_params(axis="x", labelsize=7)
    top = max(m + h for m, h in zip(medians, highs, strict=True)) or 1.0
    ax.set_xlim(0, top * 1.3)
    for pos, med in zip(positions, medians, strict=True):
        ax.text(med, pos, " " + _fmt(med, metric), va="center", fontsize=7)
