"""Public home of the executors (``from asyncz.executors import AsyncIOExecutor``)."""

from asyncz.core.execution import BaseExecutor
from asyncz.core.protocols import Executor
from asyncz.plugins.executors.asyncio import AsyncIOExecutor

__all__ = ["AsyncIOExecutor", "BaseExecutor", "Executor"]
