"""Public home of the triggers (``from asyncz.triggers import IntervalTrigger``)."""

from asyncz.core.protocols import BaseTrigger, Trigger
from asyncz.plugins.triggers.cron import CronTrigger
from asyncz.plugins.triggers.date import DateTrigger
from asyncz.plugins.triggers.interval import IntervalTrigger

__all__ = ["BaseTrigger", "CronTrigger", "DateTrigger", "IntervalTrigger", "Trigger"]
