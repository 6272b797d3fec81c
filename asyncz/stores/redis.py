"""Asyncz's path ``asyncz.stores.redis`` (needs ``pip install 'asyncz[redis]'``)."""

import redis as _redis  # noqa: F401 - the ImportError names the missing driver, as in Asyncz

from asyncz.plugins.stores.redis import RedisStore

__all__ = ["RedisStore"]
