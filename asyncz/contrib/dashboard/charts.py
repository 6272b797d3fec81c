"""The drawings: the timeline of upcoming runs and the bars of recent run outcomes.

Here: :func:`timeline_chart` and :func:`outcome_chart`. Each returns plain geometry (numbers and
short labels) that a template draws as inline SVG, so no script is needed to see them and every
label goes through the template's escaping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

WIDTH = 720
LANE = 22
LEFT = 150
TOP = 24
MAX_LANES = 20
#: Outcomes drawn at least half high, and counted as failures in the caption.
_PROBLEMS = frozenset({"failed", "error", "abandoned", "missed", "max_instances"})


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _tick_label(seconds: float) -> str:
    if seconds < 120:
        return f"+{seconds:.0f}s"
    if seconds < 7200:
        return f"+{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"+{seconds / 3600:.0f}h"
    return f"+{seconds / 86400:.0f}d"


def timeline_chart(rows: Sequence[dict[str, Any]], now: datetime) -> dict[str, Any] | None:
    """Lanes of dots: one lane per task (the first :data:`MAX_LANES` to run), one dot per
    upcoming run, on a time axis from now to the last run shown."""
    if not rows:
        return None
    now = _aware(now)
    lanes: dict[str, int] = {}
    names: list[str] = []
    for row in rows:
        task = row["task"]
        if task.id not in lanes and len(lanes) < MAX_LANES:
            lanes[task.id] = len(lanes)
            names.append(str(task.name or task.id)[:22])
    span = max((_aware(row["at"]) - now).total_seconds() for row in rows)
    span = max(span, 1.0)
    plot = WIDTH - LEFT - 16
    dots = []
    for row in rows:
        lane = lanes.get(row["task"].id)
        if lane is None:
            continue
        offset = max(0.0, (_aware(row["at"]) - now).total_seconds())
        dots.append(
            {
                "x": round(LEFT + plot * offset / span, 1),
                "y": TOP + lane * LANE + LANE // 2,
                "title": f"{row['task'].name or row['task'].id} at {row['at'].isoformat()}",
            }
        )
    ticks = [
        {
            "x": round(LEFT + plot * i / 4, 1),
            "label": "now" if i == 0 else _tick_label(span * i / 4),
        }
        for i in range(5)
    ]
    height = TOP + len(lanes) * LANE + 8
    return {
        "width": WIDTH,
        "height": height,
        "left": LEFT,
        "lanes": [{"y": TOP + i * LANE + LANE // 2, "label": name} for i, name in enumerate(names)],
        "dots": dots,
        "ticks": ticks,
        "axis_y": height - 4,
        "hidden_lanes": len({row["task"].id for row in rows}) - len(lanes),
    }


def outcome_chart(records: Sequence[Any], *, height: int = 60) -> dict[str, Any] | None:
    """One bar per run, oldest on the left: its height grows with the duration (on a log scale,
    so a 10 ms and a 10 s run are both visible), its colour is the outcome."""
    runs = [r for r in records if getattr(r, "status", None)][:40]
    if not runs:
        return None
    runs.reverse()
    durations = [getattr(r, "duration", None) for r in runs]
    known = [d for d in durations if d is not None and d > 0]
    top = math.log10(max(known) * 1000 + 1) if known else 1.0
    bar, gap = 12, 4
    bars = []
    for index, (record, duration) in enumerate(zip(runs, durations, strict=True)):
        if duration is not None and duration > 0:
            scaled = math.log10(duration * 1000 + 1) / top if top else 1.0
            h = max(4, round((height - 6) * scaled))
        else:
            h = 4  # no duration known (missed, skipped, still running)
        status = str(record.status)
        if status in _PROBLEMS:
            h = max(h, height // 2)  # a failure is seen at a glance, however short it was
        label = f"{status}"
        if duration is not None:
            label += f", {duration * 1000:.0f} ms" if duration < 1 else f", {duration:.2f} s"
        at = getattr(record, "scheduled_run_time", None) or getattr(record, "submitted_at", None)
        if at is not None:
            label += f", {at.isoformat(sep=' ', timespec='seconds')}"
        bars.append(
            {
                "x": index * (bar + gap),
                "y": height - h,
                "width": bar,
                "height": h,
                "status": status,
                "title": label,
            }
        )
    failures = sum(1 for r in runs if str(r.status) in _PROBLEMS)
    return {
        "width": len(bars) * (bar + gap),
        "height": height,
        "bars": bars,
        "failures": failures,
        "count": len(bars),
    }
