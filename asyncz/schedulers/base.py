"""Asyncz's path ``asyncz.schedulers.base``: the scheduler base class and its loggers."""

# Asyncz's module imports ``datetime`` too, and code (Asyncz's own test fixtures) patches it
# there; asyncz's engine keeps its own clock, so such a patch changes nothing here.
from datetime import datetime

from asyncz.core.logs import ClassicLogging, default_loggers_class
from asyncz.core.scheduler import BaseScheduler

__all__ = ["BaseScheduler", "ClassicLogging", "datetime", "default_loggers_class"]
