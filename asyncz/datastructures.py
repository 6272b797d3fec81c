"""Asyncz's path ``asyncz.datastructures``: :class:`TaskState`, what ``Task.__getstate__``
returns and ``Task.__setstate__`` accepts."""

from asyncz.core.task import TaskState

__all__ = ["TaskState"]
