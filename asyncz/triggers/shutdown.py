"""Asyncz's path ``asyncz.triggers.shutdown``."""

from asyncz.plugins.triggers.shutdown import ShutdownTrigger

__all__ = ["ShutdownTrigger"]
