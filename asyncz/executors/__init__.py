"""Public home of the executors (``from asyncz.executors import ThreadPoolExecutor``).

The submodules keep Asyncz's import paths: ``asyncz.executors.base``, ``.asyncio``, ``.pool``,
``.process_pool`` and ``.debug``. The executors themselves are plugins in
``asyncz.plugins.executors``, registered under the aliases ``asyncio``, ``threadpool``/``pool``,
``processpool`` and ``debug``.
"""

from asyncz.core.execution import BaseExecutor
from asyncz.core.protocols import Executor
from asyncz.plugins.executors._pool import BasePoolExecutor
from asyncz.plugins.executors.asyncio import AsyncIOExecutor
from asyncz.plugins.executors.debug import DebugExecutor
from asyncz.plugins.executors.processpool import ProcessPoolExecutor, WorkerProcessDied
from asyncz.plugins.executors.threadpool import ThreadPoolExecutor

__all__ = [
    "AsyncIOExecutor",
    "BaseExecutor",
    "BasePoolExecutor",
    "DebugExecutor",
    "Executor",
    "ProcessPoolExecutor",
    "ThreadPoolExecutor",
    "WorkerProcessDied",
]
