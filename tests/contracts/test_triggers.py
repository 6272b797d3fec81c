"""The trigger contract, held against every registered trigger plugin alias.

What every trigger promises: its ``alias`` is the one it is registered under; unknown keyword
arguments are a ``TypeError``; its state is plain JSON-able data with a ``version`` and rebuilds
an equal trigger (through ``__setstate__`` and through pickle) with the same repr, str and fire
times; repr carries no memory address; successive fire times are aware, carry the right UTC
offset for their instant, are strictly increasing, and each comes back in bounded time.

Aliases without a sample below are built with no arguments, or skipped with a reason.
"""

from __future__ import annotations

import json
import pickle
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from asyncz.core.plugins import default_registry
from asyncz.triggers import CronTrigger, DateTrigger, IntervalTrigger
from tests.plugins.triggers.helpers import UTC, assert_strictly_increasing

BERLIN = "Europe/Berlin"
SAMPLES: dict[str, list[dict[str, Any]]] = {
    "cron": [
        {"hour": "*/3", "minute": 30, "timezone": BERLIN},
        {"day": "last fri", "hour": 2, "minute": 30, "timezone": BERLIN},
    ],
    "interval": [{"minutes": 47, "start_at": "2026-03-28 23:00:00", "timezone": BERLIN}],
    "date": [{"run_at": "2026-03-29 02:30:00", "timezone": BERLIN}],
    "calendar_interval": [
        {"days": 1, "hour": 2, "minute": 30, "start_at": "2026-03-01", "timezone": BERLIN}
    ],
    "and": [
        {
            "triggers": [
                CronTrigger(minute="*/10", timezone=BERLIN),
                IntervalTrigger(minutes=15, start_at="2026-01-01 00:00:00", timezone=BERLIN),
            ]
        }
    ],
    "or": [
        {
            "triggers": [
                CronTrigger.from_crontab("30 2 * * *", timezone=BERLIN),
                DateTrigger("2026-10-25 02:45:00", timezone=BERLIN),
            ]
        }
    ],
    "shutdown": [{}],
}
# Triggers that answer with their one moment even when it is before ``now`` (so that a late
# one-off run is reported as late rather than lost).
ONE_OFF = {"date"}
STARTS = [
    datetime(2026, 3, 28, 22, tzinfo=UTC),  # hours before spring-forward in Berlin
    datetime(2026, 10, 24, 23, 30, tzinfo=UTC),  # before fall-back
    datetime(2026, 10, 25, 0, 15, tzinfo=UTC),  # inside the first pass of the repeated hour
]


def _aliases() -> list[str]:
    return sorted(p.alias for p in default_registry().providers("trigger"))


def _instances() -> list[Any]:
    params = []
    for alias in _aliases():
        cls = default_registry().resolve("trigger", alias)
        for i, kwargs in enumerate(SAMPLES.get(alias, [None])):  # type: ignore[list-item]
            if kwargs is None:
                try:
                    trigger = cls()
                except (TypeError, ValueError) as exc:
                    params.append(
                        pytest.param(
                            None,
                            id=alias,
                            marks=pytest.mark.skip(
                                reason=f"no sample for third-party alias {alias!r}: {exc}"
                            ),
                        )
                    )
                    continue
            else:
                trigger = cls(**kwargs)
            params.append(pytest.param(trigger, id=f"{alias}-{i}"))
    return params


def test_the_built_in_triggers_are_registered() -> None:
    assert {"cron", "interval", "date", "calendar_interval", "and", "or", "shutdown"} <= set(
        _aliases()
    )


@pytest.mark.parametrize("alias", _aliases())
def test_alias_and_unknown_options(alias: str) -> None:
    cls = default_registry().resolve("trigger", alias)
    assert cls.alias == alias
    kwargs = dict((SAMPLES.get(alias) or [{}])[0])
    with pytest.raises(TypeError, match="surely_not_an_option"):
        cls(**kwargs, surely_not_an_option=1)


@pytest.mark.parametrize("trigger", _instances())
def test_state_is_plain_data_and_round_trips(trigger: Any) -> None:
    state = trigger.__getstate__()
    assert json.loads(json.dumps(state)) == state
    assert "version" in state
    rebuilt = type(trigger).__new__(type(trigger))
    rebuilt.__setstate__(json.loads(json.dumps(state)))
    unpickled = pickle.loads(pickle.dumps(trigger))
    for copy in (rebuilt, unpickled):
        assert copy == trigger
        assert repr(copy) == repr(trigger) and str(copy) == str(trigger)
        assert copy.__getstate__() == state
        for start in STARTS:
            assert _fires(copy, start, 12) == _fires(trigger, start, 12)
    assert " at 0x" not in repr(trigger) and " at 0x" not in str(trigger)


@pytest.mark.parametrize("trigger", _instances())
def test_fire_times_are_aware_correct_and_increasing(trigger: Any) -> None:
    for start in STARTS:
        got = _fires(trigger, start, 60)
        assert_strictly_increasing(got)
        for fire in got:
            tz = fire.tzinfo
            assert fire.utcoffset() == fire.astimezone(UTC).astimezone(tz).utcoffset(), fire
        if got and trigger.alias not in ONE_OFF:
            assert got[0] >= start


def _fires(trigger: Any, start: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    previous = None
    for _ in range(count):
        began = time.perf_counter()
        nxt = trigger.get_next_trigger_time(ZoneInfo(BERLIN), previous, start)
        assert time.perf_counter() - began < 1.0, "a trigger must answer in bounded time"
        if nxt is None:
            break
        out.append(nxt)
        previous = nxt
    return out


def test_fires_helper_bounds_are_meaningful() -> None:
    # a sanity check of this suite: the samples do produce fire times around the DST changes
    trigger = CronTrigger(hour="*/3", minute=30, timezone=BERLIN)
    got = _fires(trigger, STARTS[1], 5)
    assert got[0] - STARTS[1] < timedelta(hours=4)
