"""The ``cron`` trigger plugin: :class:`CronTrigger`, keyword fields and crontab(5) lines."""

from __future__ import annotations

from typing import Any

from asyncz.core.hookspecs import hookimpl
from asyncz.plugins.triggers.cron.trigger import CronTrigger

__all__ = ["CronTrigger"]


@hookimpl
def asyncz_register_triggers(register: Any) -> None:
    register("cron", CronTrigger)
