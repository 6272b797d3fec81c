"""Asyncz's path ``asyncz.schedulers.base``: the scheduler base class and its loggers."""

from asyncz.core.logs import ClassicLogging, default_loggers_class
from asyncz.core.scheduler import BaseScheduler

__all__ = ["BaseScheduler", "ClassicLogging", "default_loggers_class"]
