"""Public home of the stores (``from asyncz.stores import MemoryStore, SQLAlchemyStore``).

The persistent stores are loaded on first access, so ``import asyncz.stores`` needs neither
SQLAlchemy nor redis; using ``SQLAlchemyStore``/``RedisStore`` without the driver installed raises
``ImportError`` naming the extra to install, as in Asyncz.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from asyncz.core.protocols import BaseStore, Store
from asyncz.plugins.stores.memory import MemoryStore

if TYPE_CHECKING:
    from asyncz.plugins.stores.file import FileStore
    from asyncz.plugins.stores.persistent import PersistentStore
    from asyncz.plugins.stores.redis import RedisStore
    from asyncz.plugins.stores.sqlalchemy.store import SQLAlchemyStore

__all__ = [
    "BaseStore",
    "FileStore",
    "MemoryStore",
    "PersistentStore",
    "RedisStore",
    "SQLAlchemyStore",
    "Store",
]

_LAZY = {
    "FileStore": ("asyncz.plugins.stores.file", None),
    "PersistentStore": ("asyncz.plugins.stores.persistent", None),
    "RedisStore": ("asyncz.plugins.stores.redis", "redis"),
    "SQLAlchemyStore": ("asyncz.plugins.stores.sqlalchemy.store", "sqlalchemy"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, extra = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'asyncz.stores' has no attribute {name!r}") from None
    if extra is not None:
        try:
            importlib.import_module(extra)
        except ImportError as exc:
            raise ImportError(
                f"{name} needs the {extra!r} package: pip install 'asyncz[{extra}]' ({exc})"
            ) from exc
    return getattr(importlib.import_module(module_name), name)
