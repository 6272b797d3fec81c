"""Asyncz's import path for the executor base class."""

from asyncz.core.execution import BaseExecutor
from asyncz.core.protocols import Executor

__all__ = ["BaseExecutor", "Executor"]
