"""Asyncz's path ``asyncz.schedulers.base``: the scheduler base class and its loggers.

As in Asyncz, the module has a ``datetime`` attribute, and replacing it (how Asyncz's tests
freeze time: ``monkeypatch.setattr("asyncz.schedulers.base.datetime", frozen)``) sets the clock
the scheduler's API reads (:func:`asyncz.core.converters.set_clock_source`); the event loop's
timing keeps the real clock.
"""

import sys
import types
from datetime import datetime
from typing import Any

from asyncz.core import converters as _converters
from asyncz.core.logs import ClassicLogging, default_loggers_class
from asyncz.core.scheduler import BaseScheduler

__all__ = ["BaseScheduler", "ClassicLogging", "datetime", "default_loggers_class"]


class _SchedulersBaseModule(types.ModuleType):
    """This module's type: replacing ``datetime`` here reaches the scheduler's clock."""

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "datetime":
            _converters.set_clock_source(value)

    def __delattr__(self, name: str) -> None:
        super().__delattr__(name)
        if name == "datetime":
            _converters.set_clock_source(None)


sys.modules[__name__].__class__ = _SchedulersBaseModule
