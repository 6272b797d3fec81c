"""Asyncz's path ``asyncz.tasks.base``."""

from asyncz.core.task import (
    Task,
    TaskFieldError,
    TaskInfo,
    TaskRunPreview,
    TaskScheduleState,
    TaskState,
)

__all__ = ["Task", "TaskFieldError", "TaskInfo", "TaskRunPreview", "TaskScheduleState", "TaskState"]
