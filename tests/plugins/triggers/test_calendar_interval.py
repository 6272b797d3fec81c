"""calendar_interval: wall time kept across DST, month ends clamped or skipped, state."""

from __future__ import annotations

import pickle
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncz.triggers import CalendarIntervalTrigger

from .helpers import UTC, assert_strictly_increasing, fires, iso

BERLIN = ZoneInfo("Europe/Berlin")


def test_daily_wall_time_kept_across_dst() -> None:
    trigger = CalendarIntervalTrigger(
        days=1, hour=9, start_at="2026-03-27", timezone="Europe/Berlin"
    )
    got = fires(trigger, datetime(2026, 3, 1, tzinfo=UTC), 4)
    assert iso(got) == [
        "2026-03-27T09:00:00+01:00",
        "2026-03-28T09:00:00+01:00",
        "2026-03-29T09:00:00+02:00",
        "2026-03-30T09:00:00+02:00",
    ]


def test_nonexistent_wall_time_runs_at_end_of_gap_and_repeated_runs_once() -> None:
    trigger = CalendarIntervalTrigger(
        days=1, hour=2, minute=30, start_at="2026-03-28", timezone="Europe/Berlin"
    )
    assert iso(fires(trigger, datetime(2026, 3, 28, tzinfo=UTC), 3)) == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    autumn = CalendarIntervalTrigger(
        days=1, hour=2, minute=30, start_at="2026-10-24", timezone="Europe/Berlin"
    )
    got = fires(autumn, datetime(2026, 10, 24, tzinfo=UTC), 3)
    assert iso(got) == [
        "2026-10-24T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]
    assert_strictly_increasing(got)


def test_month_end_clamp_does_not_drift() -> None:
    trigger = CalendarIntervalTrigger(months=1, start_at="2024-01-31", timezone="UTC")
    got = [d.date().isoformat() for d in fires(trigger, datetime(2024, 1, 1, tzinfo=UTC), 4)]
    assert got == ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"]


def test_month_end_skip() -> None:
    trigger = CalendarIntervalTrigger(
        months=1, start_at="2025-01-31", timezone="UTC", month_end="skip"
    )
    got = [d.date().isoformat() for d in fires(trigger, datetime(2025, 1, 1, tzinfo=UTC), 4)]
    assert got == ["2025-01-31", "2025-03-31", "2025-05-31", "2025-07-31"]


def test_leap_day_yearly() -> None:
    clamp = CalendarIntervalTrigger(years=1, start_at="2024-02-29", timezone="UTC")
    got = [d.date().isoformat() for d in fires(clamp, datetime(2024, 1, 1, tzinfo=UTC), 3)]
    assert got == ["2024-02-29", "2025-02-28", "2026-02-28"]
    skip = CalendarIntervalTrigger(years=1, start_at="2024-02-29", timezone="UTC", month_end="skip")
    got = [d.date().isoformat() for d in fires(skip, datetime(2024, 1, 1, tzinfo=UTC), 2)]
    assert got == ["2024-02-29", "2028-02-29"]


def test_weeks_and_far_start() -> None:
    trigger = CalendarIntervalTrigger(weeks=2, hour=8, start_at=date(2000, 1, 3), timezone="UTC")
    got = fires(trigger, datetime(2026, 1, 1, tzinfo=UTC), 2)
    assert [d.strftime("%a %Y-%m-%d %H:%M") for d in got] == [
        "Mon 2026-01-12 08:00",
        "Mon 2026-01-26 08:00",
    ]
    assert trigger.get_next_trigger_time(UTC, got[0], got[0]) == got[1]


def test_end_at() -> None:
    trigger = CalendarIntervalTrigger(
        days=1, start_at="2026-01-01", end_at="2026-01-03", timezone="UTC"
    )
    assert len(fires(trigger, datetime(2026, 1, 1, tzinfo=UTC), 10)) == 3


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({}, ValueError, ["period"]),
        ({"days": -1}, ValueError, ["days", "-1"]),
        ({"days": 1.5}, TypeError, ["days"]),
        ({"days": 1, "hour": 24}, ValueError, ["hour", "24", "0-23"]),
        ({"days": 1, "month_end": "wrap"}, ValueError, ["month_end", "clamp", "skip"]),
        ({"day": 1}, TypeError, ["day", "days"]),
        ({"days": 1, "timezone": "Nowhere/Town"}, ValueError, ["Nowhere/Town"]),
    ],
)
def test_validation(kwargs: dict, error: type, words: list[str]) -> None:
    with pytest.raises(error) as info:
        CalendarIntervalTrigger(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_state_repr_str() -> None:
    trigger = CalendarIntervalTrigger(
        months=3,
        hour=6,
        minute=15,
        start_at="2026-01-31",
        timezone="Europe/Berlin",
        month_end="skip",
        jitter=4,
    )
    state = trigger.__getstate__()
    assert state["version"] == 1 and state["start_at"] == "2026-01-31"
    rebuilt = CalendarIntervalTrigger.__new__(CalendarIntervalTrigger)
    rebuilt.__setstate__(state)
    assert rebuilt == trigger
    assert pickle.loads(pickle.dumps(trigger)) == trigger
    assert str(trigger) == "calendar_interval[every 3 months at 06:15:00]"
    assert repr(trigger) == (
        "<CalendarIntervalTrigger (months=3, time='06:15:00', start_at='2026-01-31', "
        "timezone='Europe/Berlin', month_end='skip', jitter=4.0)>"
    )


def test_registered() -> None:
    from asyncz.core.plugins import default_registry

    assert default_registry().resolve("trigger", "calendar_interval") is CalendarIntervalTrigger


# -- property: against "the first instant whose wall clock reads at least the target" ---------

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Havana",
    "America/Santiago",
    "Pacific/Chatham",
]


def _first_instant_showing(target: datetime, tz: ZoneInfo) -> datetime:
    """The first instant whose wall clock reads ``target`` or later (15-minute steps): the first
    pass of a repeated wall time, the end of the gap for a skipped one."""
    t = (target - timedelta(hours=16)).replace(tzinfo=UTC)
    while t.astimezone(tz).replace(tzinfo=None, fold=0) < target:
        t += timedelta(minutes=15)
    return t.astimezone(tz)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    zone=st.sampled_from(ZONES),
    start=st.dates(min_value=date(2019, 1, 1), max_value=date(2030, 12, 31)),
    unit=st.sampled_from(["months", "years", "days", "weeks"]),
    count=st.integers(1, 14),
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 15, 30, 45]),
    month_end=st.sampled_from(["clamp", "skip"]),
)
def test_matches_wall_clock_oracle(
    zone: str, start: date, unit: str, count: int, hour: int, minute: int, month_end: str
) -> None:
    import calendar

    tz = ZoneInfo(zone)
    trigger = CalendarIntervalTrigger(
        **{unit: count},
        hour=hour,
        minute=minute,
        start_at=start,
        timezone=zone,
        month_end=month_end,
    )
    expected = []
    k = 0
    while len(expected) < 5:
        if unit in ("months", "years"):
            months = start.month - 1 + k * count * (12 if unit == "years" else 1)
            year, month = start.year + months // 12, months % 12 + 1
            last = calendar.monthrange(year, month)[1]
            k += 1
            if start.day > last and month_end == "skip":
                continue
            day = date(year, month, min(start.day, last))
        else:
            day = start + timedelta(days=k * count * (7 if unit == "weeks" else 1))
            k += 1
        expected.append(
            _first_instant_showing(datetime(day.year, day.month, day.day, hour, minute), tz)
        )
    got = fires(trigger, datetime(2018, 12, 1, tzinfo=UTC), 5)
    assert iso(got) == iso(expected)


@pytest.mark.parametrize("zone", ZONES)
def test_daily_runs_at_every_transition_2019_2031(zone: str) -> None:
    tz = ZoneInfo(zone)
    t = datetime(2019, 1, 1, 12, tzinfo=UTC)
    previous = t.astimezone(tz).utcoffset()
    while t.year < 2032:
        t += timedelta(days=1)
        offset = t.astimezone(tz).utcoffset()
        if offset == previous:
            continue
        previous = offset
        day = (t - timedelta(days=2)).astimezone(tz).date()
        for hour, minute in ((0, 0), (0, 30), (1, 0), (1, 45), (2, 0), (2, 30), (3, 0)):
            trigger = CalendarIntervalTrigger(
                days=1, hour=hour, minute=minute, start_at=day, timezone=zone
            )
            got = fires(trigger, datetime(2018, 1, 1, tzinfo=UTC), 3)
            expected = [
                _first_instant_showing(datetime(d.year, d.month, d.day, hour, minute), tz)
                for d in (day, day + timedelta(days=1), day + timedelta(days=2))
            ]
            assert iso(got) == iso(expected), (zone, day, hour, minute)
            assert_strictly_increasing(got)
