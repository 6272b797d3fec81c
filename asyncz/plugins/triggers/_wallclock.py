"""Wall-clock helpers shared by the triggers that think in local time (cron, calendar interval).

``zoneinfo`` tells, for a wall time, the offset before (``fold=0``) and after (``fold=1``) a
transition; it does not say *when* a transition happens. The DST rule needs that instant (a
fixed-time run in a skipped hour happens at the end of the gap), so it is found here by bisection
between two instants whose offsets differ. That costs about twenty offset look-ups and only
happens next to a transition.
"""

from __future__ import annotations

import random
import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

from asyncz.core.converters import to_datetime

__all__ = [
    "UTC",
    "find_transition",
    "is_fixed_offset",
    "jittered",
    "number_repr",
    "place_wall",
    "to_aware",
    "wall_repr",
]

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


# zoneinfo keys that are fixed offsets by definition (tzdata's Etc/ area and its links).
_FIXED_KEYS = frozenset(
    {
        "UTC",
        "UCT",
        "Universal",
        "Zulu",
        "GMT",
        "GMT0",
        "GMT+0",
        "GMT-0",
        "Greenwich",
    }
)


def is_fixed_offset(tz: tzinfo) -> bool:
    """True for zones that never change offset, so no DST handling is needed at all."""
    if isinstance(tz, timezone):
        return True
    key = getattr(tz, "key", None)
    return isinstance(key, str) and (key in _FIXED_KEYS or key.startswith("Etc/"))


def find_transition(tz: tzinfo, before: datetime, after: datetime) -> datetime:
    """The first whole second in ``(before, after]`` whose offset in ``tz`` is that of ``after``.

    ``before`` and ``after`` are aware instants with different offsets in ``tz`` and at most one
    transition between them.
    """
    # Through UTC: astimezone() into the zone a datetime already has returns it unchanged,
    # even a nonexistent wall time.
    after = after.astimezone(UTC)
    target = after.astimezone(tz).utcoffset()
    lo = (before.astimezone(UTC) - _EPOCH) // _SECOND
    hi = -((_EPOCH - after) // _SECOND)  # ceiling
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (_EPOCH + timedelta(seconds=mid)).astimezone(tz).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return _EPOCH + timedelta(seconds=hi)


def jittered(value: datetime, jitter: float | None, end_at: datetime | None) -> datetime:
    """``value`` plus up to ``jitter`` seconds of *elapsed* time, never past ``end_at``.

    The addition is done in UTC: adding a timedelta to a zoned datetime adds wall-clock time,
    which near a DST change lands on the wrong instant or a nonexistent one.
    """
    if not jitter:
        return value
    tz = value.tzinfo
    assert tz is not None
    moved = value.astimezone(UTC) + timedelta(seconds=random.uniform(0, jitter))
    if end_at is not None and moved > end_at:
        moved = max(end_at.astimezone(UTC), value.astimezone(UTC))
    return moved.astimezone(tz)


def place_wall(naive: datetime, tz: tzinfo) -> datetime:
    """The instant a wall time names, by the DST rule of fixed-time schedules: a wall time that
    happens twice means its first pass; one skipped by a change means the end of the gap."""
    first = naive.replace(tzinfo=tz, fold=0)
    later = first.replace(fold=1)
    first_offset, later_offset = first.utcoffset(), later.utcoffset()
    if first_offset is not None and later_offset is not None and first_offset < later_offset:
        return find_transition(tz, later, first).astimezone(tz)
    return first


def wall_repr(value: datetime) -> str:
    """How trigger reprs show a moment, as Asyncz does: ``'2022-11-03 00:00:00 GMT'``."""
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").rstrip()


def number_repr(value: float) -> int | float:
    """A number of seconds as given: ``5`` rather than ``5.0``."""
    return int(value) if float(value).is_integer() else value


# A time of day followed by a UTC offset or Z, at the end of a date string.
_OFFSET_AT_END = re.compile(
    r"\d:\d{1,2}(?::\d{1,2}(?:[.,]\d+)?)?\s*(?:z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE
)


def _is_naive(value: Any) -> bool:
    if isinstance(value, str):
        text = value.strip()
        try:
            return datetime.fromisoformat(text).tzinfo is None
        except ValueError:  # 'Z' before Python 3.11, or '2022-8-1 5:16:12' without zero padding
            return _OFFSET_AT_END.search(text) is None
    if isinstance(value, datetime):
        return value.tzinfo is None
    return isinstance(value, date)


def to_aware(value: Any, tz: tzinfo, field: str) -> datetime | None:
    """:func:`asyncz.core.converters.to_datetime`, placing naive values with :func:`place_wall`
    (the kernel's ``localize`` moves a skipped wall time by the gap's length instead)."""
    if value is not None and _is_naive(value):
        wall = to_datetime(value, UTC, field)
        assert wall is not None
        return place_wall(wall.replace(tzinfo=None), tz)
    return to_datetime(value, tz, field)
