"""Asyncz's import path for the executor base class and its run functions."""

# Asyncz's module imports ``datetime`` too, and code (Asyncz's own test fixtures) patches it
# there; asyncz's executors keep their own clock, so such a patch changes nothing here.
from datetime import datetime

from asyncz.core.execution import BaseExecutor, run_coroutine_task, run_task
from asyncz.core.protocols import Executor

__all__ = ["BaseExecutor", "Executor", "datetime", "run_coroutine_task", "run_task"]
