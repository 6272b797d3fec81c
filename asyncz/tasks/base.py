"""Asyncz's path ``asyncz.tasks.base``."""

from asyncz.core.task import Task, TaskInfo, TaskRunPreview, TaskScheduleState

__all__ = ["Task", "TaskInfo", "TaskRunPreview", "TaskScheduleState"]
