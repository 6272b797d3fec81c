"""Helpers for trigger tests: successive fire times, instants, a brute-force cron oracle."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

UTC = timezone.utc


def fires(trigger: Any, start: datetime, count: int, tz: tzinfo = UTC) -> list[datetime]:
    """The first ``count`` fire times from ``start`` on, each computed from the previous one."""
    out: list[datetime] = []
    previous = None
    for _ in range(count):
        nxt = trigger.get_next_trigger_time(tz, previous, start)
        if nxt is None:
            break
        out.append(nxt)
        previous = nxt
    return out


def iso(values: list[datetime]) -> list[str]:
    return [v.isoformat() for v in values]


def assert_strictly_increasing(values: list[datetime]) -> None:
    # Compared in UTC: Python compares datetimes sharing a tzinfo by wall time, ignoring fold.
    utc = [v.astimezone(UTC) for v in values]
    assert all(a < b for a, b in itertools.pairwise(utc)), values
    for v in values:
        assert v.tzinfo is not None and v.utcoffset() is not None


def brute_force(
    matches: Callable[[datetime], bool],
    tz: tzinfo,
    start: datetime,
    end: datetime,
    *,
    follows_real_time: bool,
    step: timedelta = timedelta(minutes=1),
) -> list[datetime]:
    """Fire instants in ``[start, end)`` by the DST rule, walking every UTC minute.

    Independent of the trigger's algorithm: a real-time schedule fires at every instant whose
    wall time matches; a fixed-time one fires at the first instant showing each matching wall
    time, and once at the end of a gap for the matching wall times the gap skipped. A coarser
    ``step`` is exact when every matching wall time and every transition falls on a multiple.
    """
    out: list[datetime] = []
    seen_walls: set[datetime] = set()
    t = start.astimezone(UTC)
    previous_wall: datetime | None = None
    while t < end:
        local = t.astimezone(tz)
        wall = local.replace(tzinfo=None, fold=0)
        fire = False
        if follows_real_time:
            fire = matches(wall)
        else:
            if matches(wall) and wall not in seen_walls:
                seen_walls.add(wall)
                fire = True
            if previous_wall is not None and wall - previous_wall > step:
                # the clock jumped forward: were skipped wall times due?
                skipped = previous_wall + step
                while skipped < wall:
                    if matches(skipped):
                        fire = True
                    skipped += step
        if fire:
            out.append(local)
        previous_wall = wall
        t += step
    return out
