"""Public home of :class:`Task` (``from asyncz.tasks import Task``)."""

from asyncz.core.task import Task, TaskFieldError, TaskInfo, TaskRunPreview

__all__ = ["Task", "TaskFieldError", "TaskInfo", "TaskRunPreview"]
