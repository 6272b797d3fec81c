"""The ``interval`` trigger: runs a task every fixed stretch of elapsed time.

An interval is elapsed (physical) time, computed in UTC on whole microseconds: it is not
shifted by DST changes and does not drift. Every fire time lies on the grid
``start_at + k * interval``; jitter is added to a grid point and never carried into the next one.
For "every day at 09:00 local time" use a cron or calendar-interval trigger instead.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, ClassVar

from asyncz.core.converters import (
    datetime_from_us,
    reject_unknown_options,
    timezone_name,
    to_timezone,
    utc_timestamp_us,
)
from asyncz.core.hookspecs import hookimpl
from asyncz.core.protocols import BaseTrigger
from asyncz.plugins.triggers._wallclock import jittered, number_repr, to_aware, wall_repr

__all__ = ["IntervalTrigger", "parse_interval"]

# This module is also Asyncz's public path ``asyncz.triggers.interval``; ``datetime`` is used
# only as the clock (``datetime.now``), so code freezing time by patching
# ``asyncz.triggers.interval.datetime`` (as Asyncz's own tests do) reaches the trigger.
_fromisoformat = datetime.fromisoformat

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
#: Version 2 keeps times as integer microseconds (version 1, ISO strings, is still read).
STATE_VERSION = 2
# The range of datetime, in microseconds since the epoch.
_MIN_US = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // _ONE_US + 86_400_000_000
_MAX_US = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _ONE_US - 86_400_000_000
_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
_VALID = (*_UNITS, "interval", "start_at", "end_at", "timezone", "jitter")
# Restoring many stored triggers: zones by stored name and intervals by length, looked up once
# (both immutable; bounded, as a store holds few distinct values).
_ZONES: dict[str, tzinfo] = {}
_INTERVALS: dict[int, timedelta] = {}
#: Intervals by their (weeks, days, hours, minutes, seconds), once checked by _number: one
#: lookup for the common construction. Keys are of exact int/float values only (the check that
#: failed for a bad value stored nothing); 3600 and 3600.0 rightly share an entry, as _number
#: makes both a float. Bounded: an application uses few distinct intervals.
_DELTAS: dict[tuple[Any, ...], timedelta] = {}
_PLAIN = frozenset({int, float})


def _stored_time(name: str, value: Any, zone: tzinfo) -> datetime:
    if type(value) is not int or not _MIN_US <= value <= _MAX_US:
        raise ValueError(
            f"the interval trigger's stored {name} must be whole microseconds since the Unix "
            f"epoch between {_MIN_US} and {_MAX_US}, got {value!r}"
        )
    return datetime_from_us(value, zone)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"interval {name} must be a number, got {type(value).__name__} {value!r}")
    if not value >= 0 or value == float("inf"):  # also rejects NaN
        raise ValueError(f"interval {name} must be a finite number >= 0, got {value!r}")
    return float(value)


class IntervalTrigger(BaseTrigger):
    """Fires every ``weeks/days/hours/minutes/seconds`` (or ``interval``, a timedelta).

    :param start_at: the first fire time (default: now + the interval); naive values are wall
        time in ``timezone``
    :param end_at: no fire time after this
    :param timezone: zone of the results and of naive ``start_at``/``end_at``
    :param jitter: add up to this many seconds at random to each fire time; must be smaller
        than the interval so that fire times stay in order
    """

    alias: ClassVar[str] = "interval"
    __slots__ = (
        "_interval_us",
        "_start_at",
        "_start_us",
        "end_at",
        "interval",
        "jitter",
        "timezone",
    )

    def __init__(
        self,
        interval: timedelta | None = None,
        *,
        weeks: float = 0,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        start_at: datetime | str | None = None,
        end_at: datetime | str | None = None,
        timezone: str | tzinfo | None = None,
        jitter: float | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            reject_unknown_options("IntervalTrigger", unknown, _VALID)
        units = (weeks, days, hours, minutes, seconds)
        delta = None
        # The common call (IntervalTrigger(seconds=5) and the like) looks the units up (see
        # _DELTAS); exact types first, so that True or Decimal(5) (equal to 1 and 5) miss.
        if (
            interval is None
            and type(weeks) in _PLAIN
            and type(days) in _PLAIN
            and type(hours) in _PLAIN
            and type(minutes) in _PLAIN
            and type(seconds) in _PLAIN
        ):
            delta = _DELTAS.get(units)
        if delta is not None:
            pass
        elif interval is not None:
            if not isinstance(interval, timedelta):
                raise TypeError(f"interval must be a timedelta, got {interval!r}")
            if any(units):
                raise TypeError("give either interval= or weeks/days/hours/minutes/seconds")
            delta = interval
        else:
            delta = timedelta(
                **{name: _number(name, value) for name, value in zip(_UNITS, units, strict=True)}
            )
            if len(_DELTAS) < 256 and all(type(value) in _PLAIN for value in units):
                _DELTAS[units] = delta
        interval_us = delta // _ONE_US
        if interval_us <= 0:
            raise ValueError(
                f"the interval must be positive, got {delta!r}; give e.g. seconds=5 or minutes=1"
            )
        self._interval_us = interval_us
        # (a timedelta has whole microseconds: only a subclass needs converting)
        self.interval = delta if type(delta) is timedelta else timedelta(microseconds=interval_us)
        self.timezone = to_timezone(timezone)
        if jitter is not None:
            jitter = _number("jitter", jitter)
            if jitter * 1_000_000 >= interval_us:
                raise ValueError(
                    f"jitter ({jitter}s) must be smaller than the interval ({self.interval}) so "
                    "that fire times stay in order"
                )
        self.jitter = jitter or None
        given = None if start_at is None else to_aware(start_at, self.timezone, "start_at")
        if given is None:
            start = datetime.now(UTC) + self.interval
            self._start_at: datetime | None = None  # see start_at: built when asked for
        else:
            start = given
            self._start_at = start.astimezone(self.timezone)
        self._start_us = utc_timestamp_us(start)
        end = None if end_at is None else to_aware(end_at, self.timezone, "end_at")
        if end is not None and utc_timestamp_us(end) < self._start_us:
            raise ValueError(f"end_at ({end.isoformat()}) is before start_at ({start.isoformat()})")
        self.end_at = end.astimezone(self.timezone) if end is not None else None

    @property
    def start_at(self) -> datetime:
        """The first fire time, in ``timezone`` (built when first asked for: a trigger
        restored from a store needs only its timestamp to compute fire times)."""
        start = self._start_at
        if start is None:
            start = self._start_at = datetime_from_us(self._start_us, self.timezone)
        return start

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        start_us, step = self._start_us, self._interval_us
        # (utc_timestamp_us inline: the first run times of many tasks are computed at start)
        if previous_time is None:
            # first grid point at or after now
            now_us = ((now or datetime.now(UTC)) - _EPOCH) // _ONE_US
            k = -(-(now_us - start_us) // step)
        else:
            # first grid point strictly after previous (a jittered previous included)
            k = ((previous_time - _EPOCH) // _ONE_US - start_us) // step + 1
        next_us = start_us + k * step if k > 0 else start_us
        next_time = datetime_from_us(next_us, self.timezone)
        end_at = self.end_at
        if end_at is None:
            return next_time if self.jitter is None else jittered(next_time, self.jitter, None)
        # in UTC: datetimes sharing a zone compare by wall time, ignoring fold
        if next_us > utc_timestamp_us(end_at):
            return None
        return jittered(next_time, self.jitter, end_at)

    def __getstate__(self) -> dict[str, Any]:
        # end_us and jitter only when set: fewer keys to store and to read back.
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "interval_us": self._interval_us,
            "start_us": self._start_us,
            "timezone": timezone_name(self.timezone),
        }
        if self.end_at is not None:
            state["end_us"] = utc_timestamp_us(self.end_at)
        if self.jitter:
            state["jitter"] = self.jitter
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            self._restore_older(state)
            return
        interval_us, start_us, zone_name = (
            state["interval_us"],
            state["start_us"],
            state["timezone"],
        )
        end_us, jitter = state.get("end_us"), state.get("jitter")
        # The form __getstate__ writes (the common case when loading many tasks), checked as
        # strictly as the constructor would, set directly; anything else goes to the
        # constructor, whose checks decide and say why.
        if (
            type(interval_us) is int
            and interval_us > 0
            and type(start_us) is int
            and _MIN_US <= start_us <= _MAX_US
            and type(zone_name) is str
            and (end_us is None or (type(end_us) is int and start_us <= end_us <= _MAX_US))
            and (jitter is None or (type(jitter) is float and 0 < jitter * 1_000_000 < interval_us))
        ):
            zone = _ZONES.get(zone_name)
            if zone is None:
                zone = to_timezone(zone_name)  # raises for an unknown zone
                if len(_ZONES) < 256:
                    _ZONES[zone_name] = zone
            interval = _INTERVALS.get(interval_us)
            if interval is None:
                interval = timedelta(microseconds=interval_us)
                if len(_INTERVALS) < 256:
                    _INTERVALS[interval_us] = interval
            self._interval_us = interval_us
            self.interval = interval
            self.timezone = zone
            self.jitter = jitter
            self._start_at = None  # see start_at
            self._start_us = start_us
            self.end_at = None if end_us is None else datetime_from_us(end_us, zone)
            return
        zone = to_timezone(zone_name)
        self.__init__(  # type: ignore[misc]
            timedelta(microseconds=interval_us),
            start_at=_stored_time("start_us", start_us, zone),
            end_at=None if end_us is None else _stored_time("end_us", end_us, zone),
            timezone=zone,
            jitter=jitter,
        )

    def _restore_older(self, state: dict[str, Any]) -> None:
        """State version 1, as asyncz wrote it before version 2: times as ISO 8601 strings."""
        version = state.get("version")
        if version != 1:
            raise ValueError(
                f"interval trigger state version {version!r} is not supported (this asyncz "
                f"reads versions 1 and {STATE_VERSION})"
            )
        interval_us, start_text, end_text = state["interval_us"], state["start_at"], state["end_at"]
        zone_name, jitter = state["timezone"], state["jitter"]
        start = end = None
        if type(start_text) is str and (end_text is None or type(end_text) is str):
            try:
                start = _fromisoformat(start_text)
                end = None if end_text is None else _fromisoformat(end_text)
            except ValueError:
                start = None
        # Naive times are placed by the DST rule: the constructor's business.
        if (
            start is not None
            and start.tzinfo is not None
            and (end is None or end.tzinfo is not None)
        ):
            current = {
                "version": STATE_VERSION,
                "interval_us": interval_us,
                "start_us": utc_timestamp_us(start),
                "timezone": zone_name,
            }
            if end is not None:
                current["end_us"] = utc_timestamp_us(end)
            if jitter is not None:
                current["jitter"] = jitter
            self.__setstate__(current)
            return
        self.__init__(  # type: ignore[misc]
            timedelta(microseconds=interval_us),
            start_at=start_text,
            end_at=end_text,
            timezone=zone_name,
            jitter=jitter,
        )

    def __repr__(self) -> str:
        parts = [f"interval={self.interval!r}", f"start_at={wall_repr(self.start_at)!r}"]
        if self.end_at is not None:
            parts.append(f"end_at={wall_repr(self.end_at)!r}")
        if self.jitter:
            parts.append(f"jitter={number_repr(self.jitter)}")
        parts.append(f"timezone={timezone_name(self.timezone)!r}")
        return f"<IntervalTrigger ({', '.join(parts)})>"

    def __str__(self) -> str:
        return f"interval[{self.interval}]"


_SPAN = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", re.I)
_SPAN_UNITS = {
    "ms": "milliseconds",
    "s": "seconds",
    "m": "minutes",
    "h": "hours",
    "d": "days",
    "w": "weeks",
}


def parse_interval(text: str) -> dict[str, float]:
    """Written intervals as :class:`IntervalTrigger` options: ``"10s"`` → ``{"seconds": 10}``;
    also ``ms``, ``m``, ``h``, ``d``, ``w``, sums such as ``"1h30m"``, and plain seconds
    (``"90"``). Used where people type an interval (the CLI, the dashboard's form); a
    ``ValueError`` names the text and shows what is accepted."""
    if not isinstance(text, str):
        raise TypeError(f"an interval must be a str such as '30s', got {text!r}")
    value = text.strip().replace(" ", "")
    parts: dict[str, float] = {}
    if re.fullmatch(r"\d+(\.\d+)?", value):
        parts["seconds"] = float(value)
    else:
        pos = 0
        for match in _SPAN.finditer(value):
            if match.start() != pos:
                break
            unit = _SPAN_UNITS[match.group(2).lower()]
            parts[unit] = parts.get(unit, 0.0) + float(match.group(1))
            pos = match.end()
        if not parts or pos != len(value):
            raise ValueError(
                f"{text!r} is not an interval; write e.g. 30s, 5m, 2h, 1d, 1w or 1h30m"
            )
    if "milliseconds" in parts:
        parts["seconds"] = parts.get("seconds", 0.0) + parts.pop("milliseconds") / 1000
    if sum(parts.values()) <= 0:
        raise ValueError(f"the interval {text!r} must be longer than zero")
    return parts


@hookimpl
def asyncz_register_triggers(register: Any) -> None:
    register("interval", IntervalTrigger)
