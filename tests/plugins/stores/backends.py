"""Every real backend a store test can run against, each in its own table, key prefix or
directory, removed afterwards.

Servers are found through ``ASYNCZ_TEST_POSTGRES_URL``, ``ASYNCZ_TEST_MYSQL_URL`` and
``ASYNCZ_TEST_REDIS_URL`` (loopback defaults). A missing server skips its tests with the reason,
except under ``CI=true``, where it fails them: CI must not turn green by skipping the real thing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest

from asyncz.core.plugins import default_registry

POSTGRES_URL = os.environ.get(
    "ASYNCZ_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("ASYNCZ_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("ASYNCZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

#: backend name -> the store plugin alias it exercises
BACKENDS = {
    "memory": "memory",
    "file": "file",
    "sqlite": "sqlalchemy",
    "postgresql": "sqlalchemy",
    "mysql": "sqlalchemy",
    "redis": "redis",
}
PERSISTENT = [name for name in BACKENDS if name != "memory"]


def contract_backends() -> list[str]:
    """Every backend above, plus ``plugin:<alias>`` for each other registered store alias (a
    third party's), tried with no options: every registered store meets the contract."""
    covered = set(BACKENDS.values())
    others = sorted(
        provider.alias
        for provider in default_registry().providers("store")
        if provider.alias not in covered
    )
    return [*BACKENDS, *(f"plugin:{alias}" for alias in others)]


SQL = ["sqlite", "postgresql", "mysql"]


@attrs.define
class Backend:
    """How to make (again) a store on one backend, and its config for another process."""

    name: str
    alias: str
    options: dict[str, Any]
    persistent: bool
    cleanups: list[Callable[[], None]] = attrs.field(factory=list)

    def make(self, **extra: Any) -> Any:
        cls = default_registry().resolve("store", self.alias)
        return cls(**{**self.options, **extra})

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"type": self.alias, **self.options, **extra}


def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable ({type(exc).__name__}: {exc})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI=true the real server is required")
    pytest.skip(message)


def _sql_backend(name: str, url: str) -> Backend:
    import sqlalchemy as sa

    engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        with engine.connect():
            pass
    except Exception as exc:
        engine.dispose()
        _unavailable(f"{name} at {url}", exc)
    table = f"asyncz_test_{uuid.uuid4().hex[:10]}"

    def drop() -> None:
        with engine.begin() as conn:
            for suffix in ("_runs", "_instances", "", "_version"):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}{suffix}")
        engine.dispose()

    backend = Backend(name, "sqlalchemy", {"database": url, "tablename": table}, True)
    backend.cleanups.append(drop)
    return backend


def _redis_backend() -> Backend:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:
        _unavailable(f"Redis at {REDIS_URL}", exc)
    prefix = f"asyncz-test-{uuid.uuid4().hex[:10]}."

    def drop() -> None:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()

    backend = Backend("redis", "redis", {"url": REDIS_URL, "key_prefix": prefix}, True)
    backend.cleanups.append(drop)
    return backend


@contextmanager
def make_backend(name: str, tmp_path: Path) -> Iterator[Backend]:
    if name.startswith("plugin:"):
        alias = name.partition(":")[2]
        backend = Backend(name, alias, {}, False)
        try:
            backend.make()
        except Exception as exc:
            pytest.fail(
                f"the store plugin alias {alias!r} cannot be created without options ({exc}); "
                "add a backend for it in tests/plugins/stores/backends.py"
            )
    elif name == "memory":
        backend = Backend("memory", "memory", {}, False)
    elif name == "file":
        backend = Backend("file", "file", {"directory": str(tmp_path / "tasks")}, True)
    elif name == "sqlite":
        backend = Backend(
            "sqlite", "sqlalchemy", {"database": f"sqlite:///{tmp_path / 'tasks.db'}"}, True
        )
    elif name == "postgresql":
        backend = _sql_backend(name, POSTGRES_URL)
    elif name == "mysql":
        backend = _sql_backend(name, MYSQL_URL)
    elif name == "redis":
        backend = _redis_backend()
    else:
        raise ValueError(f"unknown backend {name!r}")
    try:
        yield backend
    finally:
        for cleanup in backend.cleanups:
            cleanup()
