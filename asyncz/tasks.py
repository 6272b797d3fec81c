"""Public home of :class:`Task` (``from asyncz.tasks import Task``)."""

from asyncz.core.task import Task

__all__ = ["Task"]
