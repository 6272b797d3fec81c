"""``CronTrigger``: fires at the wall-clock times a cron expression matches, in its time zone.

DST follows ISC cron's documented rule (see ``docs/triggers.md``):

* a **fixed-time** schedule (hour, minute and second fields are not wildcards) runs once per
  matching wall time: a wall time skipped by a change runs once at the end of the gap; a wall
  time that happens twice runs on its first pass only;
* a schedule whose hour, minute or second is a **wildcard** (starts with ``*``) follows elapsed
  time: skipped wall times never happen, repeated ones happen twice.

How a wall time maps to instants is read from the zone itself: ``utcoffset`` with ``fold=0`` and
``fold=1`` agree for an ordinary wall time, differ one way inside a repeated interval and the
other way inside a gap.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any, ClassVar

from asyncz.core.converters import (
    reject_unknown_options,
    timezone_name,
    to_timezone,
    utc_timestamp_us,
)
from asyncz.core.protocols import BaseTrigger
from asyncz.plugins.triggers._wallclock import (
    UTC,
    find_transition,
    is_fixed_offset,
    jittered,
    number_repr,
    to_aware,
    wall_repr,
)
from asyncz.plugins.triggers.cron.expressions import (
    FIELD_NAMES,
    CronSpec,
    compile_crontab,
    compile_fields,
    normalize_crontab,
    resolve_fields,
)

__all__ = ["CronTrigger"]

STATE_VERSION = 1
_COMMON = ("start_at", "end_at", "timezone", "jitter")
Wall = tuple[int, int, int, int, int, int]


def _jitter(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"jitter must be a number of seconds, got {type(value).__name__} {value!r}")
    if not 0 <= value < float("inf"):  # also rejects NaN
        raise ValueError(f"jitter must be a finite number of seconds >= 0, got {value!r}")
    return float(value) or None


def _wall(value: datetime) -> Wall:
    return value.year, value.month, value.day, value.hour, value.minute, value.second


class CronTrigger(BaseTrigger):
    """Fires when the wall clock in ``timezone`` matches the fields.

    Keyword fields have Asyncz's (APScheduler's) meanings: ``year`` (1970-9999), ``month``
    (1-12, jan-dec), ``day`` (1-31, ``last``, ``3rd fri``, ``last fri``), ``week`` (ISO 1-53),
    ``day_of_week`` (0-6 = mon-sun), ``hour``, ``minute``, ``second``. Each takes ``*``, ``*/n``,
    ``a``, ``a-b``, ``a-b/n``, ``a/n`` and comma-separated lists; all fields must match. Fields
    left out are ``*`` when more significant than the last field given and their minimum when
    less significant (``CronTrigger(hour=9)`` fires at 09:00:00 every day).

    For crontab(5) syntax (0 and 7 = Sunday, day fields ORed, ``@daily``, ``L``, ``W``, ``#``)
    use :meth:`from_crontab`, or ``crontab="..."`` instead of the fields (the form that works
    through a trigger alias: ``add_task(fn, "cron", crontab="*/5 * * * *")``).

    :param start_at: no fire time before this (naive values are wall time in ``timezone``)
    :param end_at: no fire time after this
    :param timezone: the zone whose wall clock the fields describe (default: the zone of an
        aware ``start_at``, else of an aware ``end_at``, else local)
    :param jitter: add up to this many seconds at random to each fire time
    """

    alias: ClassVar[str] = "cron"
    __slots__ = (
        "_end_us",
        "_fixed_offset",
        "_spec",
        "_start_us",
        "crontab",
        "end_at",
        "fields",
        "given",
        "jitter",
        "start_at",
        "timezone",
    )

    def __init__(
        self,
        year: int | str | None = None,
        month: int | str | None = None,
        day: int | str | None = None,
        week: int | str | None = None,
        day_of_week: int | str | None = None,
        hour: int | str | None = None,
        minute: int | str | None = None,
        second: int | str | None = None,
        *,
        start_at: datetime | date | str | None = None,
        end_at: datetime | date | str | None = None,
        timezone: str | tzinfo | None = None,
        jitter: float | None = None,
        crontab: str | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            reject_unknown_options("CronTrigger", unknown, (*FIELD_NAMES, *_COMMON, "crontab"))
        values = (year, month, day, week, day_of_week, hour, minute, second)
        given = (
            {}  # the crontab form, common when many tasks are added: no dict to filter
            if year is None
            and month is None
            and day is None
            and week is None
            and day_of_week is None
            and hour is None
            and minute is None
            and second is None
            else {name: v for name, v in zip(FIELD_NAMES, values, strict=True) if v is not None}
        )
        self.crontab: str | None = None
        self.given: tuple[str, ...] = ()
        if crontab is not None:
            if given:
                raise ValueError(
                    f"give crontab={crontab!r} or the fields ({', '.join(given)}), not both"
                )
            self.crontab = normalize_crontab(crontab)
            self.fields = {}
            self._setup(compile_crontab(self.crontab), start_at, end_at, timezone, jitter)
            return
        self.fields = resolve_fields(given)
        self.given = tuple(name for name in FIELD_NAMES if name in given)
        self._setup(compile_fields(self.fields), start_at, end_at, timezone, jitter)

    @classmethod
    def from_crontab(
        cls,
        expr: str,
        timezone: str | tzinfo | None = None,
        *,
        start_at: datetime | date | str | None = None,
        end_at: datetime | date | str | None = None,
        jitter: float | None = None,
    ) -> CronTrigger:
        """A trigger from a crontab(5) line: ``"minute hour day-of-month month day-of-week"``.

        0 and 7 are Sunday; when both day-of-month and day-of-week are restricted (neither
        starts with ``*``) a day matching either one matches; ``@yearly``, ``@annually``,
        ``@monthly``, ``@weekly``, ``@daily``, ``@midnight`` and ``@hourly`` are accepted, as
        are a leading seconds field (6 fields), ``?`` (= ``*``) in the day fields, and Quartz's
        ``L`` (last day), ``L-n``, ``nW`` (nearest weekday), ``LW``, ``5L``/``friL`` (last
        Friday) and ``5#3``/``fri#3`` (third Friday).
        """
        return cls(crontab=expr, timezone=timezone, start_at=start_at, end_at=end_at, jitter=jitter)

    def _setup(
        self,
        spec: CronSpec,
        start_at: datetime | date | str | None,
        end_at: datetime | date | str | None,
        timezone: str | tzinfo | None,
        jitter: float | None,
    ) -> None:
        self._spec = spec
        if timezone is None:
            # As Asyncz: an aware start_at (else end_at) gives the zone.
            for bound in (start_at, end_at):
                if isinstance(bound, datetime) and bound.tzinfo is not None:
                    timezone = bound.tzinfo
                    break
        self.timezone = to_timezone(timezone)
        self._fixed_offset = is_fixed_offset(self.timezone)
        self.jitter = _jitter(jitter)
        if start_at is None and end_at is None:  # the common case, without the calls below
            self.start_at = self.end_at = self._start_us = self._end_us = None
            return
        start = to_aware(start_at, self.timezone, "start_at")
        end = to_aware(end_at, self.timezone, "end_at")
        if (
            start is not None
            and end is not None
            and utc_timestamp_us(end) < utc_timestamp_us(start)
        ):
            raise ValueError(f"end_at ({end.isoformat()}) is before start_at ({start.isoformat()})")
        self.start_at = start.astimezone(self.timezone) if start is not None else None
        self.end_at = end.astimezone(self.timezone) if end is not None else None
        self._start_us = utc_timestamp_us(start) if start is not None else None
        self._end_us = utc_timestamp_us(end) if end is not None else None

    # -- fire times ----------------------------------------------------------------------------

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        if previous_time is None:
            after, inclusive = (now if now is not None else datetime.now(UTC)), True
        else:
            after, inclusive = previous_time, False
        if self._start_us is not None and self._start_us > utc_timestamp_us(after):
            assert self.start_at is not None
            after, inclusive = self.start_at, True
        result = self._next(after, inclusive)
        if result is None:
            return None
        if self._end_us is not None and utc_timestamp_us(result) > self._end_us:
            return None
        return jittered(result, self.jitter, self.end_at)

    def _next(self, after: datetime, inclusive: bool) -> datetime | None:
        """The first fire time after ``after`` (or at it, when ``inclusive``)."""
        tz = self.timezone
        local = after.astimezone(tz)
        second = local.second
        if not inclusive or local.microsecond:
            second += 1
        wall = (local.year, local.month, local.day, local.hour, local.minute, second)
        if self._fixed_offset:
            found = self._spec.next_wall(*wall)
            return None if found is None else datetime(*found, tzinfo=tz)
        if (
            self._spec.follows_real_time
            and local.fold == 0
            and local.replace(fold=1).utcoffset() != local.utcoffset()
        ):
            # on the first pass of a repeated interval
            return self._next_in_first_pass(local, wall)
        return self._search(wall, after, inclusive)

    def _search(self, wall: Wall, after: datetime, inclusive: bool) -> datetime | None:
        """The first fire time from the first matching wall time at or after ``wall``.

        ``after`` is only consulted next to a DST change, where wall order and time order part.
        """
        tz, spec = self.timezone, self._spec
        while True:
            found = spec.next_wall(*wall)
            if found is None:
                return None
            first = datetime(*found, tzinfo=tz)
            if self._fixed_offset:
                return first
            offset = first.utcoffset()
            second = first.replace(fold=1)
            second_offset = second.utcoffset()
            if offset == second_offset:
                return first
            assert offset is not None and second_offset is not None
            if offset > second_offset:  # a repeated wall time: first and second pass
                if _later(first, after, inclusive):
                    return first
                # ``after`` lies in the second pass.
                if spec.follows_real_time:
                    return second
                change = find_transition(tz, first, second)  # fixed time: already ran
                wall = _wall(change.astimezone(tz).replace(tzinfo=None) + offset - second_offset)
                continue
            # A skipped wall time: fold=0 reads it with the old offset, fold=1 with the new one.
            change = find_transition(tz, second, first).astimezone(tz)
            if not spec.follows_real_time and _later(change, after, inclusive):
                return change
            wall = _wall(change)

    def _next_in_first_pass(self, local: datetime, wall: Wall) -> datetime | None:
        """Next fire for a real-time schedule when ``local`` is on the first pass of a repeated
        interval: the rest of the first pass, then the second pass from its start, then on."""
        tz, spec = self.timezone, self._spec
        offset, second_offset = local.utcoffset(), local.replace(fold=1).utcoffset()
        assert offset is not None and second_offset is not None
        change = find_transition(tz, local, local + (offset - second_offset)).astimezone(tz)
        naive_change = change.replace(tzinfo=None)
        block_end = naive_change + (offset - second_offset)
        found = spec.next_wall(*wall)
        if found is not None and datetime(*found) < block_end:
            return datetime(*found, tzinfo=tz)
        found = spec.next_wall(*_wall(naive_change))
        if found is not None and datetime(*found) < block_end:
            return datetime(*found, tzinfo=tz, fold=1)
        return self._search(_wall(block_end), local, True)

    # -- state ---------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "crontab": self.crontab,
            "fields": {name: self.fields[name] for name in self.given},
            "start_at": self.start_at.isoformat() if self.start_at else None,
            "end_at": self.end_at.isoformat() if self.end_at else None,
            "timezone": timezone_name(self.timezone),
            "jitter": self.jitter,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.check_state_version(state, STATE_VERSION)
        common = {
            "start_at": state.get("start_at"),
            "end_at": state.get("end_at"),
            "timezone": state["timezone"],
            "jitter": state.get("jitter"),
        }
        if state.get("crontab") is not None:
            other = type(self).from_crontab(state["crontab"], **common)
            for name in self.__slots__:
                setattr(self, name, getattr(other, name))
        else:
            self.__init__(**state["fields"], **common)  # type: ignore[misc]

    def _extras(self) -> list[str]:
        parts = []
        if self.start_at is not None:
            parts.append(f"start_at={wall_repr(self.start_at)!r}")
        if self.end_at is not None:
            parts.append(f"end_at={wall_repr(self.end_at)!r}")
        if self.jitter:
            parts.append(f"jitter='{number_repr(self.jitter)}'")  # quoted, as Asyncz shows it
        parts.append(f"timezone={timezone_name(self.timezone)!r}")
        return parts

    def __repr__(self) -> str:
        if self.crontab is not None:
            return f"<CronTrigger.from_crontab({self.crontab!r}, {', '.join(self._extras())})>"
        fields = [f"{name}={self.fields[name]!r}" for name in self.given]
        return f"<CronTrigger ({', '.join([*fields, *self._extras()])})>"

    def __str__(self) -> str:
        if self.crontab is not None:
            return f"cron[{self.crontab!r}]"
        return f"cron[{', '.join(f'{name}={self.fields[name]!r}' for name in self.given)}]"


def _later(value: datetime, after: datetime, inclusive: bool) -> bool:
    # In UTC: aware datetimes sharing a tzinfo compare by wall time, ignoring fold.
    a, b = value.astimezone(UTC), after.astimezone(UTC)
    return a >= b if inclusive else a > b
