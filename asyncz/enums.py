"""Asyncz's path ``asyncz.enums``: the scheduler's state and a task's schedule state."""

from asyncz.core.scheduler import SchedulerState
from asyncz.core.task import TaskScheduleState

__all__ = ["SchedulerState", "TaskScheduleState"]
