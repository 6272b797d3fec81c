"""and/or triggers: agreement, exhaustion, the search horizon, state; and the shutdown trigger."""

from __future__ import annotations

import pickle
import time
from datetime import datetime, timedelta

import pytest

from asyncz.triggers import (
    AndTrigger,
    BaseCombinationTrigger,
    CronTrigger,
    DateTrigger,
    IntervalTrigger,
    OrTrigger,
    SearchHorizonError,
    ShutdownTrigger,
)

from .helpers import UTC, assert_strictly_increasing, fires, iso

START = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday


def test_and_fires_where_all_agree() -> None:
    trigger = AndTrigger(
        [
            CronTrigger(hour="*/6", timezone="UTC"),
            CronTrigger(day_of_week="mon", hour="12-23", timezone="UTC"),
        ]
    )
    assert iso(fires(trigger, START, 3)) == [
        "2026-01-05T12:00:00+00:00",
        "2026-01-05T18:00:00+00:00",
        "2026-01-12T12:00:00+00:00",
    ]
    assert isinstance(trigger, BaseCombinationTrigger)


def test_and_with_interval_and_previous_time_terminates() -> None:
    # Asyncz loops forever here: the interval ignores "now" once it has a previous time.
    every_90_minutes = IntervalTrigger(minutes=90, start_at=START, timezone="UTC")
    on_the_hour = CronTrigger(minute=0, timezone="UTC")
    trigger = AndTrigger([every_90_minutes, on_the_hour])
    got = fires(trigger, START, 4)
    assert iso(got) == [
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T03:00:00+00:00",
        "2026-01-01T06:00:00+00:00",
        "2026-01-01T09:00:00+00:00",
    ]


def test_and_that_never_agrees_gives_up_with_a_clear_error_quickly() -> None:
    odd = IntervalTrigger(seconds=7, start_at=START + timedelta(seconds=1), timezone="UTC")
    even = IntervalTrigger(seconds=14, start_at=START, timezone="UTC")
    trigger = AndTrigger([odd, even], horizon=timedelta(days=1))
    began = time.perf_counter()
    with pytest.raises(SearchHorizonError, match="did not agree") as info:
        trigger.get_next_trigger_time(UTC, None, START)
    assert time.perf_counter() - began < 2
    assert "and[" in str(info.value)
    steps = AndTrigger([odd, even], max_steps=50)
    with pytest.raises(SearchHorizonError, match="50 steps"):
        steps.get_next_trigger_time(UTC, None, START)


def test_and_finishes_when_any_child_finishes() -> None:
    trigger = AndTrigger(
        [
            CronTrigger(hour=12, timezone="UTC"),
            CronTrigger(hour=12, timezone="UTC", end_at="2026-01-02 23:00:00+00:00"),
        ]
    )
    assert len(fires(trigger, START, 10)) == 2
    with_date = AndTrigger(
        [CronTrigger(hour=12, timezone="UTC"), DateTrigger("2026-01-03 12:00:00+00:00")]
    )
    assert iso(fires(with_date, START, 5)) == ["2026-01-03T12:00:00+00:00"]


def test_or_fires_at_earliest_and_merges_equal_times() -> None:
    trigger = OrTrigger(
        [
            CronTrigger(hour=9, timezone="UTC"),
            CronTrigger(hour="9,17", timezone="UTC"),
            DateTrigger("2026-01-01 12:30:00+00:00"),
        ]
    )
    got = fires(trigger, START, 5)
    assert iso(got) == [
        "2026-01-01T09:00:00+00:00",
        "2026-01-01T12:30:00+00:00",
        "2026-01-01T17:00:00+00:00",
        "2026-01-02T09:00:00+00:00",
        "2026-01-02T17:00:00+00:00",
    ]
    assert_strictly_increasing(got)


def test_or_finishes_when_all_children_finish() -> None:
    trigger = OrTrigger(
        [DateTrigger("2026-01-02 00:00:00+00:00"), DateTrigger("2026-01-01 06:00:00+00:00")]
    )
    assert iso(fires(trigger, START, 5)) == [
        "2026-01-01T06:00:00+00:00",
        "2026-01-02T00:00:00+00:00",
    ]


def test_children_in_different_zones() -> None:
    trigger = AndTrigger(
        [CronTrigger(hour=10, timezone="Europe/Berlin"), CronTrigger(hour=9, timezone="UTC")]
    )
    got = fires(trigger, START, 2)
    assert [g.astimezone(UTC).isoformat() for g in got] == [
        "2026-01-01T09:00:00+00:00",
        "2026-01-02T09:00:00+00:00",
    ]


def test_jitter_on_the_combination() -> None:
    trigger = OrTrigger([CronTrigger(hour=9, timezone="UTC")], jitter=10)
    got = trigger.get_next_trigger_time(UTC, None, START)
    assert got is not None
    assert timedelta(0) <= got - datetime(2026, 1, 1, 9, tzinfo=UTC) <= timedelta(seconds=10)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: AndTrigger([]), ValueError),
        (lambda: OrTrigger(["cron"]), TypeError),
        (lambda: AndTrigger([CronTrigger(hour=1)], jiter=1), TypeError),
        (lambda: AndTrigger([CronTrigger(hour=1)], horizon=-1), ValueError),
        (lambda: AndTrigger([CronTrigger(hour=1)], max_steps=0), ValueError),
        (lambda: OrTrigger([CronTrigger(hour=1)], jitter=-1), ValueError),
        (lambda: ShutdownTrigger(when="now"), TypeError),
    ],
)
def test_validation(make, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        make()


@pytest.mark.parametrize(
    "trigger",
    [
        AndTrigger(
            [
                CronTrigger(hour="*/6", timezone="UTC"),
                IntervalTrigger(hours=3, start_at=START, timezone="UTC"),
            ],
            horizon=timedelta(days=30),
            max_steps=99,
        ),
        OrTrigger(
            [
                CronTrigger.from_crontab("0 9 * * 1-5", timezone="Europe/Berlin"),
                DateTrigger("2026-02-01 10:00:00+00:00", timezone="UTC"),
            ],
            jitter=3,
        ),
        OrTrigger([AndTrigger([CronTrigger(hour=1, timezone="UTC")])]),
    ],
    ids=str,
)
def test_state_round_trips(trigger: BaseCombinationTrigger) -> None:
    state = trigger.__getstate__()
    assert state["version"] == 1
    assert all(
        isinstance(alias, str) and isinstance(child, dict) for alias, child in state["triggers"]
    )
    rebuilt = type(trigger).__new__(type(trigger))
    rebuilt.__setstate__(state)
    assert rebuilt == trigger and repr(rebuilt) == repr(trigger)
    unpickled = pickle.loads(pickle.dumps(trigger))
    assert unpickled == trigger and str(unpickled) == str(trigger)


def test_repr_and_str() -> None:
    trigger = AndTrigger([CronTrigger(hour=9, timezone="UTC"), ShutdownTrigger()])
    assert str(trigger) == "and[cron[hour='9'], shutdown]"
    assert (
        repr(trigger) == "<AndTrigger([<CronTrigger (hour='9', timezone='UTC')>, "
        "<ShutdownTrigger>])>"
    )
    assert str(OrTrigger([ShutdownTrigger()], jitter=2)) == "or[shutdown]"
    assert (
        repr(OrTrigger([ShutdownTrigger()], jitter=2)) == "<OrTrigger([<ShutdownTrigger>], "
        "jitter=2)>"
    )


def test_shutdown_trigger_is_never_scheduled() -> None:
    trigger = ShutdownTrigger()
    assert trigger.get_next_trigger_time(UTC, None, START) is None
    assert trigger.get_next_trigger_time(UTC, START, START) is None
    assert trigger.alias == "shutdown"
    assert pickle.loads(pickle.dumps(trigger)) == trigger
    rebuilt = ShutdownTrigger.__new__(ShutdownTrigger)
    rebuilt.__setstate__(trigger.__getstate__())
    assert (
        rebuilt == trigger and repr(rebuilt) == "<ShutdownTrigger>" and str(rebuilt) == "shutdown"
    )
    with pytest.raises(ValueError, match="version"):
        rebuilt.__setstate__({"version": 2})


def test_aliases_are_registered() -> None:
    from asyncz.core.plugins import default_registry

    registry = default_registry()
    assert registry.resolve("trigger", "and") is AndTrigger
    assert registry.resolve("trigger", "or") is OrTrigger
    assert registry.resolve("trigger", "shutdown") is ShutdownTrigger
