"""Connections of the SQL store: SQLite set up for several processes (WAL, our own
``BEGIN``), and the PostgreSQL ``LISTEN`` loop that wakes a scheduler when another writes."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

__all__ = ["BEGIN_OPTION", "listen", "prepare_sqlite", "sqlite_begin", "sqlite_connect"]

#: Execution option naming how a SQLite transaction begins (``"IMMEDIATE"``, ``"DEFERRED"``, or
#: ``None``: no transaction, a single statement in autocommit).
BEGIN_OPTION = "asyncz_sqlite_begin"


def prepare_sqlite(engine: Engine, synchronous: str) -> None:
    """Set every connection of ``engine`` up (once per engine) and issue ``BEGIN`` ourselves."""
    if getattr(engine, "_asyncz_sqlite", False):
        return

    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        sqlite_connect(dbapi_connection, synchronous)

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", sqlite_begin)
    setattr(engine, "_asyncz_sqlite", True)  # noqa: B010 - once per engine


def listen(
    engine: Engine, channel: str, stop: threading.Event, notified: Callable[[str], None]
) -> None:
    """``LISTEN`` on ``channel`` (its own connection, out of the pool) until ``stop`` is set,
    handing each payload to ``notified``; a lost server is retried every second."""
    from psycopg import sql

    while not stop.is_set():
        raw = None
        try:
            raw = engine.raw_connection()
            driver: Any = raw.driver_connection
            raw.detach()  # a connection of its own, not a pool slot held forever
            driver.rollback()  # the pool's ping may have opened a transaction
            driver.autocommit = True
            driver.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            while not stop.is_set():
                for note in driver.notifies(timeout=0.5):
                    notified(note.payload)
        except Exception:
            # The server went away: the poll covers the gap; listen again shortly.
            stop.wait(1.0)
        finally:
            if raw is not None:
                with contextlib.suppress(Exception):
                    raw.close()


def sqlite_connect(dbapi_connection: Any, synchronous: str) -> None:
    # pysqlite's own transaction handling begins transactions late and never IMMEDIATE; we
    # issue BEGIN ourselves (see sqlite_begin), so it must stay out of the way.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # Wait for another process's write transaction instead of failing at once (first:
        # switching to WAL below may itself have to wait).
        cursor.execute("PRAGMA busy_timeout=30000")
        # WAL: readers never block the writer (and vice versa). Ignored by memory databases.
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL: in WAL mode a commit survives the process being killed, and the file is
        # never corrupted; only a power loss or OS crash may undo the last commits. FULL also
        # survives those, at one fsync per commit.
        cursor.execute(f"PRAGMA synchronous={synchronous}")
    finally:
        cursor.close()


def sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
    if mode is not None:  # None: a single statement, in autocommit
        conn.exec_driver_sql(f"BEGIN {mode}")
