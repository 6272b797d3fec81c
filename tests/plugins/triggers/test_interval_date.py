"""interval and date triggers: validation, elapsed time across DST, naive wall times, state."""

from __future__ import annotations

import pickle
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from asyncz.core.converters import utc_timestamp_us
from asyncz.triggers import DateTrigger, IntervalTrigger

from .helpers import UTC, assert_strictly_increasing, fires, iso

BERLIN = ZoneInfo("Europe/Berlin")


# -- interval ----------------------------------------------------------------------------------


def test_interval_is_elapsed_time_across_dst() -> None:
    trigger = IntervalTrigger(hours=1, start_at="2026-10-25 00:00:00+02:00", timezone=BERLIN)
    got = fires(trigger, datetime(2026, 10, 24, 22, tzinfo=UTC), 5)
    assert iso(got) == [
        "2026-10-25T00:00:00+02:00",
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    assert_strictly_increasing(got)
    spring = IntervalTrigger(minutes=30, start_at="2026-03-29 01:00:00", timezone=BERLIN)
    assert iso(fires(spring, datetime(2026, 3, 28, tzinfo=UTC), 3)) == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
    ]


def test_daily_interval_shifts_wall_time_at_dst() -> None:
    # documented: an interval is elapsed time; use cron/calendar_interval to keep 09:00
    trigger = IntervalTrigger(days=1, start_at="2026-03-28 09:00:00", timezone=BERLIN)
    got = fires(trigger, datetime(2026, 3, 28, tzinfo=UTC), 2)
    assert iso(got) == ["2026-03-28T09:00:00+01:00", "2026-03-29T10:00:00+02:00"]


def test_interval_naive_start_in_gap_and_in_repeated_hour() -> None:
    gap = IntervalTrigger(hours=1, start_at="2026-03-29 02:30:00", timezone=BERLIN)
    assert gap.start_at.isoformat() == "2026-03-29T03:00:00+02:00"
    repeated = IntervalTrigger(hours=1, start_at=datetime(2026, 10, 25, 2, 30), timezone=BERLIN)
    assert repeated.start_at.isoformat() == "2026-10-25T02:30:00+02:00"


def test_interval_floats_timedelta_and_grid() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    trigger = IntervalTrigger(seconds=1.5, start_at=start, timezone="UTC")
    assert [t.isoformat() for t in fires(trigger, start, 3)] == [
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T00:00:01.500000+00:00",
        "2026-01-01T00:00:03+00:00",
    ]
    same = IntervalTrigger(timedelta(seconds=1.5), start_at=start, timezone="UTC")
    assert same == trigger
    late = trigger.get_next_trigger_time(UTC, None, start + timedelta(seconds=2))
    assert late == start + timedelta(seconds=3)


def test_interval_jitter_never_accumulates() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    trigger = IntervalTrigger(seconds=10, start_at=start, timezone="UTC", jitter=9)
    previous = None
    for k in range(200):
        got = trigger.get_next_trigger_time(UTC, previous, start)
        assert got is not None
        grid = start + timedelta(seconds=10 * k)
        assert grid <= got <= grid + timedelta(seconds=9)
        previous = got


def test_interval_end_at_compares_instants_not_wall_times() -> None:
    # 02:30+01:00 (second pass) is after 02:45+02:00 (first pass) although its wall time is not
    trigger = IntervalTrigger(
        minutes=15,
        start_at="2026-10-25 02:00:00+02:00",
        end_at="2026-10-25 02:45:00+02:00",
        timezone=BERLIN,
    )
    got = fires(trigger, datetime(2026, 10, 24, tzinfo=UTC), 20)
    assert iso(got)[-1] == "2026-10-25T02:45:00+02:00"
    assert len(got) == 4


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"minute": 5}, TypeError, ["minute", "minutes"]),
        ({"seconds": 0}, ValueError, ["positive"]),
        ({}, ValueError, ["positive"]),
        ({"seconds": -1}, ValueError, ["seconds", "-1"]),
        ({"seconds": float("nan")}, ValueError, ["seconds", "nan"]),
        ({"seconds": "5"}, TypeError, ["seconds", "'5'"]),
        ({"seconds": 5, "jitter": 5}, ValueError, ["jitter", "smaller"]),
        ({"seconds": 5, "timezone": "Europe/Berln"}, ValueError, ["Europe/Berln"]),
        ({"seconds": 5, "start_at": "tomorrow"}, ValueError, ["start_at", "tomorrow"]),
        (
            {"seconds": 5, "start_at": "2026-02-01T00:00:00+00:00", "end_at": "2026-01-01"},
            ValueError,
            ["end_at", "before"],
        ),
    ],
)
def test_interval_validation(kwargs: dict, error: type, words: list[str]) -> None:
    with pytest.raises(error) as info:
        IntervalTrigger(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_interval_state_round_trips() -> None:
    trigger = IntervalTrigger(
        minutes=90, start_at="2026-01-01 10:00:00", end_at="2026-02-01", timezone=BERLIN, jitter=3
    )
    state = trigger.__getstate__()
    assert state == {
        "version": 2,
        "interval_us": 90 * 60 * 1_000_000,
        "start_us": utc_timestamp_us(datetime(2026, 1, 1, 9, tzinfo=UTC)),
        "end_us": utc_timestamp_us(datetime(2026, 1, 31, 23, tzinfo=UTC)),
        "timezone": "Europe/Berlin",
        "jitter": 3.0,
    }
    # Unset parts are left out rather than stored as None.
    assert set(IntervalTrigger(seconds=1, timezone="UTC").__getstate__()) == {
        "version", "interval_us", "start_us", "timezone",
    }  # fmt: skip
    rebuilt = IntervalTrigger.__new__(IntervalTrigger)
    rebuilt.__setstate__(state)
    assert rebuilt == trigger and repr(rebuilt) == repr(trigger)
    assert pickle.loads(pickle.dumps(trigger)) == trigger
    assert str(IntervalTrigger(seconds=1, timezone="UTC")) == "interval[0:00:01]"


# -- date --------------------------------------------------------------------------------------


def test_date_forms() -> None:
    aware = DateTrigger(datetime(2026, 5, 1, 12, tzinfo=UTC))
    assert aware.get_next_trigger_time(UTC, None, datetime(2026, 1, 1, tzinfo=UTC)) == datetime(
        2026, 5, 1, 12, tzinfo=UTC
    )
    assert aware.get_next_trigger_time(UTC, aware.run_at, aware.run_at) is None
    assert DateTrigger(date(2026, 5, 1), "Europe/Berlin").run_at.isoformat() == (
        "2026-05-01T00:00:00+02:00"
    )
    assert DateTrigger("2026-05-01 09:30", "Asia/Kolkata").run_at.isoformat() == (
        "2026-05-01T09:30:00+05:30"
    )
    assert DateTrigger("2026-05-01T09:30:00Z", "Asia/Kolkata").run_at == datetime(
        2026, 5, 1, 9, 30, tzinfo=UTC
    )


def test_date_without_run_at_is_now_and_never_missed() -> None:
    before = datetime.now(UTC)
    trigger = DateTrigger(timezone="UTC")
    assert before <= trigger.run_at <= datetime.now(UTC)
    assert trigger.allow_mistrigger_by_default


def test_date_naive_wall_time_dst_rule() -> None:
    assert DateTrigger("2026-03-29 02:30:00", BERLIN).run_at.isoformat() == (
        "2026-03-29T03:00:00+02:00"
    )
    assert DateTrigger("2026-10-25 02:30:00", BERLIN).run_at.isoformat() == (
        "2026-10-25T02:30:00+02:00"
    )
    second_pass = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN)
    assert DateTrigger(second_pass).run_at.isoformat() == "2026-10-25T02:30:00+01:00"


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "words"),
    [
        ((), {"run_date": "2026-01-01"}, TypeError, ["run_date", "run_at"]),
        (("next tuesday",), {}, ValueError, ["run_at", "next tuesday"]),
        ((20260101,), {}, TypeError, ["run_at"]),
        (("2026-01-01",), {"timezone": "Moon/Base"}, ValueError, ["Moon/Base"]),
    ],
)
def test_date_validation(args: tuple, kwargs: dict, error: type, words: list[str]) -> None:
    with pytest.raises(error) as info:
        DateTrigger(*args, **kwargs)
    for word in words:
        assert word in str(info.value)


def test_date_state_round_trips() -> None:
    trigger = DateTrigger("2026-10-25 02:30:00+01:00", timezone=BERLIN)
    state = trigger.__getstate__()
    assert state == {
        "version": 1,
        "run_at": "2026-10-25T02:30:00+01:00",
        "timezone": "Europe/Berlin",
        "asap": False,
    }
    rebuilt = DateTrigger.__new__(DateTrigger)
    rebuilt.__setstate__(state)
    assert rebuilt == trigger and rebuilt.run_at.utcoffset() == timedelta(hours=1)
    assert pickle.loads(pickle.dumps(trigger)) == trigger
    assert repr(trigger) == "<DateTrigger (run_at='2026-10-25 02:30:00 UTC+01:00')>"
