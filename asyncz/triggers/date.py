"""Asyncz's path ``asyncz.triggers.date``."""

from asyncz.plugins.triggers.date import DateTrigger

__all__ = ["DateTrigger"]
