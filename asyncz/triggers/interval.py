"""Asyncz's path ``asyncz.triggers.interval``: the ``interval`` trigger plugin's module itself.

The path names the plugin module rather than copying its names, so that patching
``asyncz.triggers.interval.datetime`` (how Asyncz's tests freeze the clock) reaches the trigger.
"""

import sys

from asyncz.plugins.triggers import interval as _plugin
from asyncz.plugins.triggers.interval import IntervalTrigger

__all__ = ["IntervalTrigger"]

sys.modules[__name__] = _plugin
