"""The ``date`` trigger: runs a task once, at a given moment (or as soon as possible)."""

from __future__ import annotations

from datetime import date, datetime, timezone, tzinfo
from typing import Any, ClassVar

from asyncz.core.converters import reject_unknown_options, timezone_name, to_timezone
from asyncz.core.hookspecs import hookimpl
from asyncz.core.protocols import BaseTrigger
from asyncz.plugins.triggers._wallclock import to_aware, wall_repr

__all__ = ["DateTrigger"]

# This module is also Asyncz's public path ``asyncz.triggers.date``; ``datetime`` is used only as
# the clock (``datetime.now``), so code freezing time by patching ``asyncz.triggers.date.datetime``
# (as Asyncz's own tests do) reaches the trigger.
_fromisoformat = datetime.fromisoformat
_datetime = datetime  # the type, as imported (a patched clock replaces the module's name)

UTC = timezone.utc
STATE_VERSION = 1


class DateTrigger(BaseTrigger):
    """Fires once at ``run_at``.

    :param run_at: a datetime, a date (its midnight) or an ISO 8601 string; naive values are
        wall time in ``timezone``. Without it the task runs once, right away, and is never
        reported as missed however busy the scheduler is.
    :param timezone: zone for a naive ``run_at`` (default: the scheduler's, else local). A
        naive wall time that happens twice (DST ends) means its first pass; one that does not
        exist (DST starts) means the end of the gap, as for cron.
    """

    alias: ClassVar[str] = "date"
    __slots__ = ("allow_mistrigger_by_default", "run_at", "timezone")

    def __init__(
        self,
        run_at: datetime | date | str | None = None,
        timezone: str | tzinfo | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            reject_unknown_options("DateTrigger", unknown, ("run_at", "timezone"))
        self.timezone = to_timezone(timezone)
        if run_at is None:
            self.run_at = datetime.now(self.timezone)
            self.allow_mistrigger_by_default = True
        elif type(run_at) is _datetime and run_at.utcoffset() is not None:
            self.run_at = run_at  # aware: what to_aware returns for it, without the calls
            self.allow_mistrigger_by_default = False
        else:
            resolved = to_aware(run_at, self.timezone, "run_at")
            assert resolved is not None
            self.run_at = resolved
            self.allow_mistrigger_by_default = False

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        return self.run_at if previous_time is None else None

    def __getstate__(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "run_at": self.run_at.isoformat(),
            "timezone": timezone_name(self.timezone),
            "asap": self.allow_mistrigger_by_default,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.check_state_version(state, STATE_VERSION)
        self.timezone = to_timezone(state["timezone"])
        self.run_at = _fromisoformat(state["run_at"]).astimezone(self.timezone)
        self.allow_mistrigger_by_default = bool(state.get("asap", False))

    def __repr__(self) -> str:
        return f"<DateTrigger (run_at={wall_repr(self.run_at)!r})>"

    def __str__(self) -> str:
        return f"date[{self.run_at.strftime('%Y-%m-%d %H:%M:%S %Z')}]"


@hookimpl
def asyncz_register_triggers(register: Any) -> None:
    register("date", DateTrigger)
