"""Public home of the schedulers (``from asyncz.schedulers import AsyncIOScheduler``)."""

from asyncz.core.scheduler import AsyncIOScheduler, BaseScheduler, SchedulerState

__all__ = ["AsyncIOScheduler", "BaseScheduler", "SchedulerState"]
