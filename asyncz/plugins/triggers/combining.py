"""The ``and`` and ``or`` triggers: combinations of other triggers.

Children are only ever asked one question: "your first fire time at or after ``t``"
(``get_next_trigger_time(tz, None, t)``). That question has one answer for every trigger,
whereas "after ``previous_time``" lets a trigger assume it fired at ``previous_time`` (a ``date``
trigger would then never fire inside an ``or``). A child answering with a time before ``t`` is
asked again for the first time after ``t`` minus a microsecond, and counts as finished if that
is still before ``t``.

``AndTrigger`` searches: it moves ``t`` to the latest child answer until all children agree. The
search is bounded by a **horizon** (default 5 years past the starting point) and a number of
**steps** (default 10,000); past either it raises :class:`SearchHorizonError` rather than loop or
silently finish the task. Children that can never agree (an interval of 7 s and a cron at whole
minutes that never meet) are reported this way, at ``add_task`` time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, ClassVar

from asyncz.core.converters import reject_unknown_options, utc_timestamp_us
from asyncz.core.hookspecs import hookimpl
from asyncz.core.protocols import BaseTrigger, Trigger
from asyncz.plugins.triggers._wallclock import jittered, number_repr

__all__ = ["AndTrigger", "BaseCombinationTrigger", "OrTrigger", "SearchHorizonError"]

UTC = timezone.utc
STATE_VERSION = 1
_MICROSECOND = timedelta(microseconds=1)
DEFAULT_HORIZON = timedelta(days=5 * 366)
DEFAULT_MAX_STEPS = 10_000


class SearchHorizonError(RuntimeError):
    """An ``and`` trigger's children did not agree on a time within the search limits."""


def _child_state(trigger: Any) -> list[Any]:
    alias = getattr(trigger, "alias", None)
    if not isinstance(alias, str):
        raise TypeError(f"{trigger!r} has no plugin alias, so it cannot be stored")
    return [alias, trigger.__getstate__()]


def _child_from_state(item: Sequence[Any]) -> Any:
    from asyncz.core.plugins import default_registry

    alias, state = item
    cls: Any = default_registry().resolve("trigger", alias)
    trigger = cls.__new__(cls)
    trigger.__setstate__(state)
    return trigger


class BaseCombinationTrigger(BaseTrigger):
    """Common parts of ``and``/``or``: children, jitter, state as ``[alias, state]`` pairs.

    Give jitter to the combination, not to its children: a jittered child never agrees exactly
    with another.
    """

    __slots__ = ("jitter", "triggers")
    _label: ClassVar[str]

    def __init__(
        self, triggers: Iterable[Trigger], jitter: float | None = None, **unknown: Any
    ) -> None:
        reject_unknown_options(type(self).__name__, unknown, self._valid_options())
        children = list(triggers) if not isinstance(triggers, (str, bytes)) else None
        if not children:
            raise ValueError(f"{type(self).__name__} needs a non-empty list of triggers")
        for child in children:
            if not isinstance(child, Trigger):
                raise TypeError(
                    f"{type(self).__name__} takes trigger instances, got {child!r}; build it "
                    "with e.g. CronTrigger(...) rather than an alias"
                )
        self.triggers = children
        if jitter is not None:
            if isinstance(jitter, bool) or not isinstance(jitter, (int, float)):
                raise TypeError(f"jitter must be a number of seconds, got {jitter!r}")
            if not 0 <= jitter < float("inf"):
                raise ValueError(f"jitter must be a finite number of seconds >= 0, got {jitter!r}")
        self.jitter = float(jitter) if jitter else None

    @classmethod
    def _valid_options(cls) -> tuple[str, ...]:
        return ("triggers", "jitter")

    @staticmethod
    def _first_at_or_after(child: Any, tz: tzinfo, when: datetime) -> datetime | None:
        found: datetime | None = child.get_next_trigger_time(tz, None, when)
        if found is None:
            return None
        when_us = utc_timestamp_us(when)
        if utc_timestamp_us(found) < when_us:
            # The child did not honour ``now`` (a list of moments that always starts from its
            # first one): ask it for what comes after the instant just before ``when``. A date
            # trigger answers None: its one moment has passed.
            found = child.get_next_trigger_time(tz, when - _MICROSECOND, when)
            if found is None or utc_timestamp_us(found) < when_us:
                return None
        return found

    def _start(self, previous_time: datetime | None, now: datetime | None) -> datetime:
        if previous_time is not None:
            return previous_time.astimezone(UTC) + _MICROSECOND
        return (now or datetime.now(UTC)).astimezone(UTC)

    def _common_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "triggers": [_child_state(t) for t in self.triggers],
            "jitter": self.jitter,
        }

    def __getstate__(self) -> dict[str, Any]:
        return self._common_state()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.check_state_version(state, STATE_VERSION)
        type(self).__init__(
            self, [_child_from_state(item) for item in state["triggers"]], state.get("jitter")
        )

    def _repr_extras(self) -> list[str]:
        return [f"jitter={number_repr(self.jitter)}"] if self.jitter else []

    def __repr__(self) -> str:
        extras = "".join(f", {e}" for e in self._repr_extras())
        return f"<{type(self).__name__}({self.triggers!r}{extras})>"

    def __str__(self) -> str:
        return f"{self._label}[{', '.join(str(t) for t in self.triggers)}]"


class AndTrigger(BaseCombinationTrigger):
    """Fires at the times every child fires at; finished as soon as any child is finished.

    :param triggers: the children
    :param jitter: add up to this many seconds at random to each fire time
    :param horizon: give up (``SearchHorizonError``) when the children have not agreed this far
        past the starting point (a timedelta or seconds; default 5 years)
    :param max_steps: give up after this many search steps (default 10,000)
    """

    alias: ClassVar[str] = "and"
    _label = "and"
    __slots__ = ("horizon", "max_steps")

    def __init__(
        self,
        triggers: Iterable[Trigger],
        jitter: float | None = None,
        *,
        horizon: timedelta | float | None = None,
        max_steps: int | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__(triggers, jitter, **unknown)
        if horizon is None:
            horizon = DEFAULT_HORIZON
        elif isinstance(horizon, bool) or not isinstance(horizon, (timedelta, int, float)):
            raise TypeError(f"horizon must be a timedelta or seconds, got {horizon!r}")
        elif not isinstance(horizon, timedelta):
            horizon = timedelta(seconds=horizon)
        if horizon <= timedelta(0):
            raise ValueError(f"horizon must be positive, got {horizon!r}")
        self.horizon = horizon
        if max_steps is None:
            max_steps = DEFAULT_MAX_STEPS
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be an int >= 1, got {max_steps!r}")
        self.max_steps = max_steps

    @classmethod
    def _valid_options(cls) -> tuple[str, ...]:
        return ("triggers", "jitter", "horizon", "max_steps")

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        start = self._start(previous_time, now)
        limit = utc_timestamp_us(start + self.horizon)
        when = start
        times: list[datetime | None] = [None] * len(self.triggers)
        for _ in range(self.max_steps):
            when_us = utc_timestamp_us(when)
            for i, child in enumerate(self.triggers):
                current = times[i]
                if current is None or utc_timestamp_us(current) < when_us:
                    found = self._first_at_or_after(child, timezone, when)
                    if found is None:
                        return None  # a child is finished, so the combination is
                    times[i] = found
            stamps = [utc_timestamp_us(t) for t in times if t is not None]
            latest = max(stamps)
            if min(stamps) == latest:
                return jittered(times[0], self.jitter, None)  # type: ignore[arg-type]
            if latest > limit:
                break
            when = times[stamps.index(latest)]  # type: ignore[assignment]
        raise SearchHorizonError(
            f"{self!s}: the triggers did not agree on a fire time within {self.horizon} or "
            f"{self.max_steps} steps after {start.isoformat()}; check that they can coincide "
            "(e.g. an interval and a cron rarely meet), or raise horizon/max_steps"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self._common_state()
        state["horizon_seconds"] = self.horizon.total_seconds()
        state["max_steps"] = self.max_steps
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.check_state_version(state, STATE_VERSION)
        AndTrigger.__init__(
            self,
            [_child_from_state(item) for item in state["triggers"]],
            state.get("jitter"),
            horizon=state.get("horizon_seconds"),
            max_steps=state.get("max_steps"),
        )

    def _repr_extras(self) -> list[str]:
        extras = super()._repr_extras()
        if self.horizon != DEFAULT_HORIZON:
            extras.append(f"horizon={self.horizon!r}")
        if self.max_steps != DEFAULT_MAX_STEPS:
            extras.append(f"max_steps={self.max_steps}")
        return extras


class OrTrigger(BaseCombinationTrigger):
    """Fires whenever any child fires (at the earliest child time); finished when all are.

    Children firing at the same instant give one fire time. No search is involved, so there is
    no horizon: each call asks every child once.
    """

    alias: ClassVar[str] = "or"
    _label = "or"
    __slots__ = ()

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        start = self._start(previous_time, now)
        best: datetime | None = None
        best_us = 0
        for child in self.triggers:
            found = self._first_at_or_after(child, timezone, start)
            if found is not None:
                found_us = utc_timestamp_us(found)
                if best is None or found_us < best_us:
                    best, best_us = found, found_us
        return jittered(best, self.jitter, None) if best is not None else None


@hookimpl
def asyncz_register_triggers(register: Any) -> None:
    register("and", AndTrigger)
    register("or", OrTrigger)
