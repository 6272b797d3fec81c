"""Asyncz's path ``asyncz.tasks.types``: the names tasks are annotated with."""

from collections.abc import Mapping
from typing import Any

from asyncz.core.task import Task

#: Asyncz annotates tasks with ``TaskType``; here every task is a :class:`Task`.
TaskType = Task
#: The shape of the scheduler's ``task_defaults`` option.
TaskDefaultsType = Mapping[str, Any]

__all__ = ["TaskDefaultsType", "TaskType"]
