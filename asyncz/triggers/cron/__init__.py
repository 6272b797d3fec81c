"""Asyncz's path ``asyncz.triggers.cron``."""

from asyncz.plugins.triggers.cron import CronTrigger

__all__ = ["CronTrigger"]
