"""Asyncz's path ``asyncz.stores.sqlalchemy`` (needs ``pip install 'asyncz[sqlalchemy]'``)."""

import sqlalchemy as _sqlalchemy  # noqa: F401 - the ImportError names the missing driver

from asyncz.plugins.stores.sqlalchemy.store import SQLAlchemyStore

__all__ = ["SQLAlchemyStore"]
