"""Asyncz's path ``asyncz.schedulers.asyncio``: the asyncio schedulers."""

from asyncz.core.scheduler import AsyncIOScheduler, NativeAsyncIOScheduler

__all__ = ["AsyncIOScheduler", "NativeAsyncIOScheduler"]
