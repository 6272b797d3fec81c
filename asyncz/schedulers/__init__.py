"""Public home of the schedulers (``from asyncz.schedulers import AsyncIOScheduler``)."""

from asyncz.core.scheduler import (
    AsyncIOScheduler,
    BaseScheduler,
    NativeAsyncIOScheduler,
    SchedulerInfo,
    SchedulerInstanceInfo,
    SchedulerState,
)

__all__ = [
    "AsyncIOScheduler",
    "BaseScheduler",
    "NativeAsyncIOScheduler",
    "SchedulerInfo",
    "SchedulerInstanceInfo",
    "SchedulerState",
]
