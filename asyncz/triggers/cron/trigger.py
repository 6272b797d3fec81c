"""Asyncz's path ``asyncz.triggers.cron.trigger``."""

from asyncz.plugins.triggers.cron.trigger import CronTrigger

__all__ = ["CronTrigger"]
