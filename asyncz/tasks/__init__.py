"""Public home of :class:`Task` (``from asyncz.tasks import Task``)."""

from asyncz.core.task import Task, TaskInfo, TaskRunPreview

__all__ = ["Task", "TaskInfo", "TaskRunPreview"]
