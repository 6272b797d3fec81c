"""Asyncz's path ``asyncz.tasks.types``: the names tasks are annotated with."""

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from asyncz.core.task import Task

#: Asyncz annotates tasks with ``TaskType``; here every task is a :class:`Task`.
TaskType = Task
#: The shape of the scheduler's ``task_defaults`` option.
TaskDefaultsType = Mapping[str, Any]
#: A function given to a task used as a decorator (``@scheduler.add_task(...)``), returned as is.
DecoratedFn = TypeVar("DecoratedFn", bound=Callable[..., Any])

__all__ = ["DecoratedFn", "TaskDefaultsType", "TaskType"]
