"""asyncz: an asyncio task scheduler with cron, interval and one-off schedules and plugins.

``import asyncz`` is cheap: it imports no plugin and no optional dependency. The scheduler classes
are loaded on first access (``asyncz.AsyncIOScheduler``) or from their public modules
(``from asyncz.schedulers import AsyncIOScheduler``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["AsyncIOScheduler", "Asyncz", "Task", "__version__", "hookimpl"]

if TYPE_CHECKING:
    from asyncz.core.hookspecs import hookimpl
    from asyncz.core.scheduler import AsyncIOScheduler
    from asyncz.core.task import Task

    Asyncz = AsyncIOScheduler


def __getattr__(name: str) -> Any:
    if name in ("AsyncIOScheduler", "Asyncz"):
        from asyncz.core.scheduler import AsyncIOScheduler

        return AsyncIOScheduler
    if name == "hookimpl":
        # Loaded on demand like the rest: a process-pool worker imports asyncz's stdlib-only
        # modules and must not pay for pluggy.
        from asyncz.core.hookspecs import hookimpl

        return hookimpl
    if name == "Task":
        from asyncz.core.task import Task

        return Task
    raise AttributeError(f"module 'asyncz' has no attribute {name!r}")
