"""Asyncz's enumerations: the scheduler's state and a task's schedule state."""

from __future__ import annotations

from enum import Enum

from asyncz.core.scheduler import SchedulerState

__all__ = ["SchedulerState", "TaskScheduleState"]


class TaskScheduleState(str, Enum):
    """What ``Task.schedule_state`` reports (it compares equal to these strings)."""

    PENDING = "pending"
    PAUSED = "paused"
    SCHEDULED = "scheduled"
