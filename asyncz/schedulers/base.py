"""Asyncz's path ``asyncz.schedulers.base``: the scheduler base class."""

from asyncz.core.scheduler import BaseScheduler

__all__ = ["BaseScheduler"]
