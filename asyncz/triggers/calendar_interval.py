"""``asyncz.triggers.calendar_interval``: the calendar interval trigger (not in Asyncz)."""

from asyncz.plugins.triggers.calendar_interval import CalendarIntervalTrigger

__all__ = ["CalendarIntervalTrigger"]
