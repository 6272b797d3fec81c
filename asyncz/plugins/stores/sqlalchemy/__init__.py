"""The ``sqlalchemy`` store plugin: SQLite (WAL), PostgreSQL and MariaDB/MySQL through SQLAlchemy 2.

Registered lazily, so that discovering plugins does not import SQLAlchemy; the store itself lives
in :mod:`asyncz.plugins.stores.sqlalchemy.store`.
"""

from __future__ import annotations

from typing import Any

from asyncz.core.hookspecs import hookimpl


@hookimpl
def asyncz_register_stores(register: Any) -> None:
    register("sqlalchemy", "asyncz.plugins.stores.sqlalchemy.store:SQLAlchemyStore")
