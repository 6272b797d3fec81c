"""Asyncz's path ``asyncz.triggers.date``: the ``date`` trigger plugin's module itself.

The path names the plugin module rather than copying its names, so that patching
``asyncz.triggers.date.datetime`` (how Asyncz's tests freeze the clock) reaches the trigger.
"""

import sys

from asyncz.plugins.triggers import date as _plugin
from asyncz.plugins.triggers.date import DateTrigger

__all__ = ["DateTrigger"]

sys.modules[__name__] = _plugin
