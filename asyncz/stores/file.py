"""Asyncz's path ``asyncz.stores.file``."""

from asyncz.plugins.stores.file import FileStore

__all__ = ["FileStore"]
