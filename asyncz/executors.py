"""Public home of the executors (``from asyncz.executors import AsyncIOExecutor``)."""

from asyncz.core.protocols import BaseExecutor, Executor
from asyncz.plugins.executors.asyncio import AsyncIOExecutor

__all__ = ["AsyncIOExecutor", "BaseExecutor", "Executor"]
