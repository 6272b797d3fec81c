"""Public home of the stores (``from asyncz.stores import MemoryStore``)."""

from asyncz.core.protocols import BaseStore, Store
from asyncz.plugins.stores.memory import MemoryStore

__all__ = ["BaseStore", "MemoryStore", "Store"]
