"""The ``shutdown`` trigger: a task that runs once, when the scheduler shuts down.

It is never scheduled: :meth:`ShutdownTrigger.get_next_trigger_time` always answers ``None``.
The scheduler recognises the alias and runs such tasks during ``shutdown()`` (awaiting
coroutines). As in Asyncz, they belong in the memory store: the "when" is this process's
shutdown, which another process sharing a persistent store knows nothing about.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any, ClassVar

from asyncz.core.converters import reject_unknown_options
from asyncz.core.hookspecs import hookimpl
from asyncz.core.protocols import BaseTrigger

__all__ = ["ShutdownTrigger"]

STATE_VERSION = 1


class ShutdownTrigger(BaseTrigger):
    """Runs its task once, during the scheduler's shutdown; never on a schedule."""

    alias: ClassVar[str] = "shutdown"
    __slots__ = ()

    def __init__(self, **unknown: Any) -> None:
        reject_unknown_options("ShutdownTrigger", unknown, ())

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        return None

    def __getstate__(self) -> dict[str, Any]:
        return {"version": STATE_VERSION}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.check_state_version(state, STATE_VERSION)

    def __repr__(self) -> str:
        return "<ShutdownTrigger>"

    def __str__(self) -> str:
        return "shutdown"


@hookimpl
def asyncz_register_triggers(register: Any) -> None:
    register("shutdown", ShutdownTrigger)
