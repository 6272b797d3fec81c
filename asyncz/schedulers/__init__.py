"""Public home of the schedulers (``from asyncz.schedulers import AsyncIOScheduler``)."""

from asyncz.core.scheduler import (
    AsyncIOScheduler,
    BaseScheduler,
    NativeAsyncIOScheduler,
    SchedulerInfo,
    SchedulerState,
)

__all__ = [
    "AsyncIOScheduler",
    "BaseScheduler",
    "NativeAsyncIOScheduler",
    "SchedulerInfo",
    "SchedulerState",
]
