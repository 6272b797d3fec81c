"""The ``calendar_interval`` trigger: every N years/months/weeks/days at a fixed wall-clock time.

Unlike ``interval`` (elapsed time), this keeps the wall time: "every 2 days at 09:00" stays at
09:00 across DST changes. The ``k``-th run date is always computed from the start date
(``start + k * period``), never from the previous run, so month-end clamping cannot drift
(Jan 31 -> Feb 28 -> Mar 31, not Mar 28).

DST follows the same rule as fixed-time cron schedules: a wall time skipped by a change runs at
the end of the gap; a wall time that happens twice runs on its first pass.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, ClassVar

from asyncz.core.converters import (
    reject_unknown_options,
    timezone_name,
    to_datetime,
    to_timezone,
    utc_timestamp_us,
)
from asyncz.core.hookspecs import hookimpl
from asyncz.core.protocols import BaseTrigger
from asyncz.plugins.triggers._wallclock import UTC, jittered, place_wall, to_aware

__all__ = ["CalendarIntervalTrigger"]

STATE_VERSION = 1
_VALID = (
    "years",
    "months",
    "weeks",
    "days",
    "hour",
    "minute",
    "second",
    "start_at",
    "end_at",
    "timezone",
    "jitter",
    "month_end",
)
_MONTH_END = ("clamp", "skip")
_AVERAGE_MONTH_DAYS = 365.2425 / 12


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def _clock(name: str, value: Any, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if not 0 <= value <= hi:
        raise ValueError(f"{name}={value!r} is out of range; {name} takes 0-{hi}")
    return value


def _start_date(value: Any, tz: tzinfo) -> date:
    if value is None:
        return datetime.now(tz).date()
    if isinstance(value, datetime):
        return value.astimezone(tz).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            resolved = to_datetime(value, tz, "start_at")
            assert resolved is not None
            return resolved.astimezone(tz).date()
    raise TypeError(f"start_at must be a date, a datetime or an ISO string, got {value!r}")


class CalendarIntervalTrigger(BaseTrigger):
    """Fires at ``hour:minute:second`` on the start date and every period after it.

    :param years: the period: years (non-negative ints; years, months, weeks and days not
        all zero)
    :param months: the period: months
    :param weeks: the period: weeks
    :param days: the period: days
    :param hour: the wall-clock time of each run: its hour
    :param minute: the wall-clock time of each run: its minute
    :param second: the wall-clock time of each run: its second
    :param start_at: the first run date (a date, or the date part of a datetime; default today)
    :param end_at: no run after this (a date means its midnight)
    :param timezone: the zone of the wall clock (default: local)
    :param jitter: add up to this many seconds at random to each fire time
    :param month_end: what a month-based period does when the day does not exist in the target
        month (Jan 31 + 1 month): ``"clamp"`` to the month's last day (default) or ``"skip"``
        that month
    """

    alias: ClassVar[str] = "calendar_interval"
    __slots__ = (
        "_end_us",
        "_period_days",
        "_period_months",
        "days",
        "end_at",
        "hour",
        "jitter",
        "minute",
        "month_end",
        "months",
        "second",
        "start_at",
        "timezone",
        "weeks",
        "years",
    )

    def __init__(
        self,
        *,
        years: int = 0,
        months: int = 0,
        weeks: int = 0,
        days: int = 0,
        hour: int = 0,
        minute: int = 0,
        second: int = 0,
        start_at: date | datetime | str | None = None,
        end_at: date | datetime | str | None = None,
        timezone: str | tzinfo | None = None,
        jitter: float | None = None,
        month_end: str = "clamp",
        **unknown: Any,
    ) -> None:
        reject_unknown_options("CalendarIntervalTrigger", unknown, _VALID)
        self.years, self.months = _count("years", years), _count("months", months)
        self.weeks, self.days = _count("weeks", weeks), _count("days", days)
        self._period_months = self.years * 12 + self.months
        self._period_days = self.weeks * 7 + self.days
        if not self._period_months and not self._period_days:
            raise ValueError(
                "the period must not be zero; give years, months, weeks or days (e.g. days=1)"
            )
        self.hour = _clock("hour", hour, 23)
        self.minute = _clock("minute", minute, 59)
        self.second = _clock("second", second, 59)
        if month_end not in _MONTH_END:
            raise ValueError(f"month_end={month_end!r}: month_end takes 'clamp' or 'skip'")
        self.month_end = month_end
        self.timezone = to_timezone(timezone)
        self.start_at = _start_date(start_at, self.timezone)
        end = to_aware(end_at, self.timezone, "end_at")
        self.end_at = end.astimezone(self.timezone) if end is not None else None
        self._end_us = utc_timestamp_us(end) if end is not None else None
        if jitter is not None:
            if isinstance(jitter, bool) or not isinstance(jitter, (int, float)):
                raise TypeError(f"jitter must be a number of seconds, got {jitter!r}")
            if not 0 <= jitter < float("inf"):
                raise ValueError(f"jitter must be a finite number of seconds >= 0, got {jitter!r}")
        self.jitter = float(jitter) if jitter else None

    # -- run dates -----------------------------------------------------------------------------

    def _run_date(self, k: int) -> date | None:
        """The ``k``-th run date counted from the start, or None if ``month_end`` skips it."""
        start = self.start_at
        if self._period_months:
            months = start.year * 12 + start.month - 1 + k * self._period_months
            year, month = divmod(months, 12)
            month += 1
            if year > 9999:
                return date.max
            last = calendar.monthrange(year, month)[1]
            if start.day > last and self.month_end == "skip":
                return None
            day = date(year, month, min(start.day, last))
        else:
            day = start
        try:
            return day + timedelta(days=k * self._period_days)
        except OverflowError:
            return date.max

    def _instant(self, day: date) -> datetime:
        """The run instant for a run date: the wall time, moved past a gap, first pass."""
        return place_wall(
            datetime.combine(day, time(self.hour, self.minute, self.second)), self.timezone
        )

    def _estimate(self, day: date) -> int:
        """A run index whose date is at or before ``day`` (or 0)."""
        elapsed = (day - self.start_at).days
        per_run = self._period_months * _AVERAGE_MONTH_DAYS + self._period_days
        return max(0, int(elapsed / per_run) - 2)

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        if previous_time is None:
            bound = utc_timestamp_us(now or datetime.now(UTC))
        else:
            bound = utc_timestamp_us(previous_time) + 1
        after_day = (previous_time or now or datetime.now(UTC)).astimezone(
            self.timezone
        ).date() - timedelta(days=2)
        k = self._estimate(after_day) if after_day > self.start_at else 0
        # Run instants grow with k, so walking forward from an index at or before the bound
        # finds the first one past it. Skipped month ends cost one step each.
        for _ in range(100_000):
            day = self._run_date(k)
            k += 1
            if day is None:
                continue
            if day == date.max:
                return None
            instant = self._instant(day)
            stamp = utc_timestamp_us(instant)
            if stamp < bound:
                continue
            if self._end_us is not None and stamp > self._end_us:
                return None
            return jittered(instant, self.jitter, self.end_at)
        return None  # unreachable for valid periods; kept so the loop is visibly bounded

    # -- state ---------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "years": self.years,
            "months": self.months,
            "weeks": self.weeks,
            "days": self.days,
            "hour": self.hour,
            "minute": self.minute,
            "second": self.second,
            "start_at": self.start_at.isoformat(),
            "end_at": self.end_at.isoformat() if self.end_at else None,
            "timezone": timezone_name(self.timezone),
            "jitter": self.jitter,
            "month_end": self.month_end,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.check_state_version(state, STATE_VERSION)
        fields = {key: value for key, value in state.items() if key != "version"}
        self.__init__(**fields)  # type: ignore[misc]

    def _period_text(self) -> str:
        parts = [
            f"{n} {unit}"
            for n, unit in (
                (self.years, "years"),
                (self.months, "months"),
                (self.weeks, "weeks"),
                (self.days, "days"),
            )
            if n
        ]
        return ", ".join(parts)

    def __repr__(self) -> str:
        parts = [
            f"{name}={getattr(self, name)}"
            for name in ("years", "months", "weeks", "days")
            if getattr(self, name)
        ]
        parts.append(f"time='{self.hour:02d}:{self.minute:02d}:{self.second:02d}'")
        parts.append(f"start_at='{self.start_at.isoformat()}'")
        if self.end_at is not None:
            parts.append(f"end_at={self.end_at.isoformat()!r}")
        parts.append(f"timezone={timezone_name(self.timezone)!r}")
        if self.month_end != "clamp":
            parts.append(f"month_end={self.month_end!r}")
        if self.jitter:
            parts.append(f"jitter={self.jitter}")
        return f"<CalendarIntervalTrigger ({', '.join(parts)})>"

    def __str__(self) -> str:
        return (
            f"calendar_interval[every {self._period_text()} at "
            f"{self.hour:02d}:{self.minute:02d}:{self.second:02d}]"
        )


@hookimpl
def asyncz_register_triggers(register: Any) -> None:
    register("calendar_interval", CalendarIntervalTrigger)
