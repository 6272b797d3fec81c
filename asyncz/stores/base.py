"""Asyncz's path ``asyncz.stores.base``: the store base class and protocol."""

from asyncz.core.protocols import BaseStore, Store

__all__ = ["BaseStore", "Store"]
