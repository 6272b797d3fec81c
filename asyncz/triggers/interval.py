"""Asyncz's path ``asyncz.triggers.interval``."""

from asyncz.plugins.triggers.interval import IntervalTrigger

__all__ = ["IntervalTrigger"]
