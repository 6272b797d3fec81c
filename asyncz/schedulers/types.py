"""Asyncz's path ``asyncz.schedulers.types``: the names schedulers are annotated with."""

from collections.abc import Mapping

from asyncz.core.logs import ClassicLogging
from asyncz.core.scheduler import BaseScheduler

#: Asyncz annotates schedulers with ``SchedulerType``; every scheduler is a BaseScheduler.
SchedulerType = BaseScheduler
#: What a ``loggers_class`` produces: logger name -> logger, created on first lookup.
LoggersType = Mapping

__all__ = ["ClassicLogging", "LoggersType", "SchedulerType"]
