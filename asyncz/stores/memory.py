"""Asyncz's path ``asyncz.stores.memory``."""

from asyncz.plugins.stores.memory import MemoryStore

__all__ = ["MemoryStore"]
