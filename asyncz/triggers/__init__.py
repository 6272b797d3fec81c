"""Public home of the triggers (``from asyncz.triggers import IntervalTrigger``)."""

from asyncz.core.protocols import BaseTrigger, Trigger
from asyncz.plugins.triggers.calendar_interval import CalendarIntervalTrigger
from asyncz.plugins.triggers.combining import (
    AndTrigger,
    BaseCombinationTrigger,
    OrTrigger,
    SearchHorizonError,
)
from asyncz.plugins.triggers.cron import CronTrigger
from asyncz.plugins.triggers.date import DateTrigger
from asyncz.plugins.triggers.interval import IntervalTrigger
from asyncz.plugins.triggers.shutdown import ShutdownTrigger

__all__ = [
    "AndTrigger",
    "BaseCombinationTrigger",
    "BaseTrigger",
    "CalendarIntervalTrigger",
    "CronTrigger",
    "DateTrigger",
    "IntervalTrigger",
    "OrTrigger",
    "SearchHorizonError",
    "ShutdownTrigger",
    "Trigger",
]
