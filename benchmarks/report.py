"""Turns the raw per-process results into the markdown report (and the cron cross-check).

Medians, minima and maxima are over the repeats of one case and library, each repeat a separate
process. "Best peer" is the best median among the libraries other than this checkout; the last
column gives this checkout's median relative to it, oriented so the word says which way is good.
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from itertools import combinations
from typing import Any

from .adapters import ADAPTERS
from .workloads import CASES, CRON_SPECS, Case, Metric

SELF = "asyncz"
DASH, TIMES = "\N{EN DASH}", "\N{MULTIPLICATION SIGN}"
Results = dict[tuple[str, str], list[dict[str, Any]]]  # (case id, lib) -> one dict per repeat


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            memory = f"{kib / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "OS": f"{platform.system()} {platform.release()}",
        "runner python": platform.python_version(),
    }


def _fmt(value: float, metric: Metric) -> str:
    if value != value:  # NaN
        return "nan"
    if metric.digits == 0 or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{metric.digits}f}"


def _short(text: str, limit: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell_text(text: str) -> str:
    return text.replace("|", "\\|")


class Summary:
    """Per (case, lib, metric): the median, min and max over the repeats that succeeded."""

    def __init__(self, results: Results) -> None:
        self.results = results

    def runs(self, case: Case, lib: str) -> list[dict[str, Any]]:
        return self.results.get((case.id, lib), [])

    def status(self, case: Case, lib: str) -> tuple[str, str]:
        """("ok"|"n/a"|"skipped"|"error"|"", reason) — the worst status over the repeats."""
        runs = self.runs(case, lib)
        if not runs:
            return "", ""
        for status in ("error", "n/a", "skipped"):
            for run in runs:
                if run["status"] == status:
                    return status, run["reason"]
        return "ok", ""

    def values(self, case: Case, lib: str, metric: Metric) -> list[float]:
        return [
            float(run["metrics"][metric.key])
            for run in self.runs(case, lib)
            if run["status"] == "ok" and metric.key in run["metrics"]
        ]

    def median(self, case: Case, lib: str, metric: Metric) -> float | None:
        values = self.values(case, lib, metric)
        return statistics.median(values) if values else None


def _versus(ours: float | None, best: float | None, metric: Metric) -> str:
    if ours is None or best is None:
        return DASH
    if ours == best:
        return "same"
    if abs(ours - best) <= metric.noise:
        return "≈ same"
    if best == 0 or ours == 0:
        better = (ours < best) == (metric.better == "lower")
        return "better (peer 0)" if better and ours == 0 else "worse" if not better else "better"
    # Always >= 1, with the direction in words: "2x worse" reads better than "0.5x".
    factor = ours / best if metric.better == "higher" else best / ours
    if 0.97 <= factor <= 1.03:
        return f"≈ same ({factor:.2f}{TIMES})"
    return f"{factor:.2f}{TIMES} better" if factor > 1 else f"{1 / factor:.2f}{TIMES} worse"


def render_table(
    summary: Summary, case_list: Sequence[Case], libs: Sequence[str], labels: dict[str, str]
) -> list[str]:
    """One markdown table for the cases of one workload, then notes for its errors."""
    takes_part = not case_list[0].schedulers_only
    shown = [lib for lib in libs if takes_part or ADAPTERS[lib].is_scheduler]
    peers = [lib for lib in shown if lib != SELF]
    header = ["case", "metric", *(labels.get(lib, lib) for lib in shown)]
    if SELF in shown and peers:
        header.append("this checkout vs best peer")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes: list[str] = []
    for case in case_list:
        for i, metric in enumerate(case.metrics):
            arrow = "↓" if metric.better == "lower" else "↑"
            unit = f" ({metric.unit})" if metric.unit else ""
            row = [case.name if i == 0 else "", f"{metric.label}{unit} {arrow}"]
            for lib in shown:
                status, reason = summary.status(case, lib)
                if status == "error" and i == 0:
                    # Errors carry SQL and tracebacks: too long for a cell, so a numbered note.
                    notes.append(f"{labels.get(lib, lib)}, {case.id}: {_short(reason, 400)}")
                    row.append(f"error [{len(notes)}]")
                    continue
                row.append(_cell_text(_cell(summary, case, lib, metric, first=i == 0)))
            if SELF in shown and peers:
                medians = [summary.median(case, p, metric) for p in peers]
                candidates = [m for m in medians if m is not None]
                pick = min if metric.better == "lower" else max
                best = pick(candidates) if candidates else None
                row.append(_versus(summary.median(case, SELF, metric), best, metric))
            lines.append("| " + " | ".join(row) + " |")
    if notes:
        lines += ["", *(f"[{n}] {_cell_text(note)}  " for n, note in enumerate(notes, 1))]
    return lines


def _cell(summary: Summary, case: Case, lib: str, metric: Metric, *, first: bool) -> str:
    status, reason = summary.status(case, lib)
    if status == "":
        return DASH
    if status == "n/a" and reason.startswith("not implemented: "):
        # The reason once per case; later rows of the same case only repeat the verdict.
        reason = reason[len("not implemented: ") :]
        return f"n/a (not implemented: {_short(reason, 90)})" if first else "n/a"
    if status != "ok":
        return f"{status} ({_short(reason)})" if first else status
    values = summary.values(case, lib, metric)
    if not values:
        unsupported = {}
        for run in summary.runs(case, lib):
            unsupported.update(run.get("extra", {}).get("unsupported", {}))
        why = unsupported.get(metric.key)
        return f"n/a (not implemented: {_short(why, 90)})" if why else "n/a"
    med = statistics.median(values)
    if min(values) == max(values):
        return _fmt(med, metric)
    return f"{_fmt(med, metric)} ({_fmt(min(values), metric)}{DASH}{_fmt(max(values), metric)})"


# --- cron cross-check ------------------------------------------------------------------------


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC (%a)")


def cron_cross_check(summary: Summary, libs: Iterable[str], labels: dict[str, str]) -> list[str]:
    """Compare the first fire times of every pair of libraries as sets of UTC instants.

    Sets, not positions: once one library skips a fire, every later index would differ and hide
    how small the real disagreement is. Each pair is compared only up to the earlier of the two
    last fires, so a shorter list is not counted as missing the rest.
    """
    case = next(c for c in CASES if c.workload == "cron_next")
    fires: dict[str, dict[str, list[int]]] = {}
    stuck: dict[str, dict[str, list[int]]] = {}
    for lib in libs:
        for run in summary.runs(case, lib):
            if run["status"] == "ok":
                fires[lib] = run["extra"].get("fires", {})
                stuck[lib] = run["extra"].get("not_increasing", {})
                break
    lines: list[str] = []
    for spec in CRON_SPECS:
        have = [lib for lib in fires if spec.name in fires[lib]]
        if len(have) < 2:
            continue
        problems: list[str] = []
        for lib in have:
            if spec.name in stuck[lib]:
                i, previous, got = stuck[lib][spec.name]
                problems.append(
                    f"  - {labels.get(lib, lib)} stops moving forward at fire {i + 1}: after "
                    f"{_iso(previous)} it returns {_iso(got)} (compared up to there)"
                )
        for a, b in combinations(have, 2):
            fa, fb = fires[a][spec.name], fires[b][spec.name]
            horizon = min(fa[-1], fb[-1])
            sa, sb = set(fa), set(fb)
            only_a = sorted(t for t in fa if t <= horizon and t not in sb)
            only_b = sorted(t for t in fb if t <= horizon and t not in sa)
            if not only_a and not only_b:
                continue
            la, lb = labels.get(a, a), labels.get(b, b)
            text = f"  - {la} vs {lb}: {len(only_a)} only in {la}, {len(only_b)} only in {lb}"
            examples = [f"{_iso(t)} only {la}" for t in only_a[:2]]
            examples += [f"{_iso(t)} only {lb}" for t in only_b[:2]]
            problems.append(text + "; e.g. " + "; ".join(examples))
        n = min(len(fires[lib][spec.name]) for lib in have)
        names = ", ".join(labels.get(lib, lib) for lib in have)
        if problems:
            lines.append(f"- `{spec.name}` ({spec.timezone}, first {n} fires of {names}):")
            lines.extend(problems)
        else:
            lines.append(f"- `{spec.name}` ({spec.timezone}): all agree on the first {n} fires")
    return lines


# --- the whole report ------------------------------------------------------------------------


def render(
    results: Results,
    *,
    libs: Sequence[str],
    cases: Sequence[Case],
    meta: dict[str, Any],
    labels: dict[str, str],
) -> str:
    summary = Summary(results)
    out = [f"# asyncz benchmarks — {meta['started']}", ""]
    out += [
        f"Command: `{meta['command']}`  ",
        f"Scale {meta['scale']}, "
        f"{meta['repeats']} repeat(s) per case and library, each in a fresh process; "
        f"libraries interleaved. Wall time {meta['wall_s']:.0f} s.",
        "",
    ]
    out += ["## Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in machine_info().items()]
    out += ["", *_background(results, labels)]
    out += [
        "",
        "## Libraries",
        "",
        "| library | version | python | imported from | drivers |",
        "|---|---|---|---|---|",
    ]
    for lib in libs:
        runs = [r for (_, lb), rs in results.items() if lb == lib for r in rs if r.get("version")]
        if not runs:
            why = meta.get("unavailable", {}).get(lib, "no successful run")
            out.append(f"| {labels.get(lib, lib)} | unavailable: {_cell_text(_short(why))} | | | |")
            continue
        run = runs[0]
        versions = list(dict.fromkeys(r["version"] for r in runs))
        if lib == SELF and meta.get("self_measured"):
            version = f"{versions[0]}, {meta['self_measured']}"
        elif len(versions) > 2:
            # Runs from before snapshots measured the live tree, which could change under them.
            version = f"{versions[0]} … {versions[-1]} ({len(versions)} states of the tree)"
        else:
            version = " / ".join(versions)
        deps = ", ".join(f"{k} {v}" for k, v in sorted(run.get("deps", {}).items()))
        origin = str(run.get("origin", "")).replace(str(meta.get("repo_root", "")), "<repo>")
        if lib == SELF and meta.get("self_measured"):
            origin = "a temporary copy of <repo>/asyncz"
        out.append(
            f"| {labels.get(lib, lib)} | {version} | {run['python']} | `{origin}` | {deps} |"
        )
    out += [
        "",
        f"Cells: median (min{DASH}max) over the repeats. ↓ lower is better, ↑ higher is better. "
        "Sizes in metric names are at scale 1.",
        "",
    ]
    by_workload: dict[str, list[Case]] = {}
    for case in cases:
        by_workload.setdefault(case.workload, []).append(case)
    for workload, case_list in by_workload.items():
        out += [f"## {workload}", ""]
        out += render_table(summary, case_list, libs, labels)
        out.append("")
        if workload == "cron_next":
            check = cron_cross_check(summary, libs, labels)
            if check:
                out += ["Cross-check of the first fire times, as UTC instants:", "", *check, ""]
    warnings = _log_warnings(summary, cases, libs, labels)
    if warnings:
        out += ["## Warnings the libraries logged", "", *warnings, ""]
    return "\n".join(out)


BUSY = 0.5  # cores used by other processes above which a measurement is flagged


def _background(results: Results, labels: dict[str, str]) -> list[str]:
    """How busy the rest of the machine was while each measurement ran."""
    seen = [
        (r["background_cores"], case_id, lib, i + 1)
        for (case_id, lib), runs in results.items()
        for i, r in enumerate(runs)
        if r.get("background_cores") is not None
    ]
    if not seen:
        return []
    loads = sorted(b for b, *_ in seen)
    lines = [
        f"Other processes' CPU use during the measurements: median {statistics.median(loads):.2f}"
        f" cores, max {loads[-1]:.2f} cores (from /proc/stat, minus the worker's own CPU)."
    ]
    busy = sorted((b for b in seen if b[0] > BUSY), reverse=True)
    if busy:
        worst = ", ".join(
            f"{c} · {labels.get(lib, lib)} #{n} ({b:.1f})" for b, c, lib, n in busy[:8]
        )
        lines.append(
            f"**{len(busy)} of {len(seen)} measurements ran while other processes used more than "
            f"{BUSY} cores** and may be disturbed: {worst}{', …' if len(busy) > 8 else ''}."
        )
    return lines


def _log_warnings(
    summary: Summary, cases: Sequence[Case], libs: Sequence[str], labels: dict[str, str]
) -> list[str]:
    lines = []
    for case in cases:
        for lib in libs:
            runs = summary.runs(case, lib)
            count = sum(r.get("log_warnings", {}).get("count", 0) for r in runs)
            if count:
                first = next(m for r in runs for m in r["log_warnings"]["first"])
                lines.append(
                    f"- {case.id}, {labels.get(lib, lib)}: {count} over {len(runs)} "
                    f"run(s), first: `{_short(first, 160)}`"
                )
    return lines
