"""The SQL store's tables, their creation and in-place upgrade, and the database's clock.

Schema version 2 (this module's :data:`SCHEMA_VERSION`):

* ``<tablename>``: ``id`` (primary key; compared exactly: PostgreSQL collation ``C``,
  MariaDB ``utf8mb4_nopad_bin``, MySQL 8 ``utf8mb4_0900_bin`` — binary and NO PAD, so case and
  trailing spaces count), ``next_run_time`` (integer microseconds, NULL = paused), ``version``
  (bumped by every write of the record or its schedule), the lease ``lease_owner`` /
  ``lease_token`` / ``lease_until``, and ``state`` (the encoded record).
* ``<tablename>_version``: the schema version.
* ``<tablename>_instances``: the schedulers sharing the table: ``identity``, ``info`` (JSON
  text), ``heartbeat`` (microseconds by the database's clock).
* ``<tablename>_runs``: one run record per ``(task_id, scheduled_at)`` (the primary key; times in
  microseconds), with ``status``, ``instance``, ``fired_at``, ``run_id``, ``started_at``,
  ``finished_at``, ``duration``, ``error``, ``attempt``, ``on_crash``. Indexed by
  ``(scheduled_at, task_id)`` for the newest records of every task, and by ``(status, task_id)``
  to count a task's ``started`` runs and find those of dead schedulers (few rows: only runs in
  flight are ``started``).

A version-1 table (asyncz before cluster mode) or a table Asyncz 0.17 created (``id``,
``next_run_time`` in seconds, ``state``) is upgraded in place at start, inside the write
transaction and under a lock every starting process takes (SQLite: ``BEGIN IMMEDIATE``;
PostgreSQL: a transaction-scoped advisory lock; MariaDB/MySQL, whose DDL commits on its own:
a named lock held by the connection). Each step checks the table first, so a process that
retries after losing a race (or crashed half-way) finishes the job instead of failing. The new
``version`` column keeps a server default of 0, so an old asyncz still running during a rolling
upgrade can still add tasks; the rows present get one random version.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection

from asyncz.core.records import new_store_version

__all__ = [
    "SCHEMA_VERSION",
    "Tables",
    "ensure_schema",
    "exact_collation",
    "has_skip_locked",
    "pg_array",
    "pg_unnest",
    "store_now",
]

#: The table layout this version creates and the newest it can use.
SCHEMA_VERSION = 2
#: Binary and NO PAD collations of the id columns, by server.
MARIADB_COLLATION = "utf8mb4_nopad_bin"
MYSQL8_COLLATION = "utf8mb4_0900_bin"
#: Before MySQL 8 there is no binary NO PAD collation: binary, trailing spaces ignored.
MYSQL57_COLLATION = "utf8mb4_bin"


def _exact_string(length: int, collation: str) -> Any:
    """A string column compared exactly (code points, case, trailing spaces)."""
    return (
        sa.String(length)
        .with_variant(sa.String(length, collation="C"), "postgresql")
        .with_variant(
            mysql.VARCHAR(length, charset="utf8mb4", collation=collation), "mysql", "mariadb"
        )
    )


class Tables:
    """The four tables of one store, in their own ``MetaData``."""

    def __init__(self, tablename: str, collation: str = MARIADB_COLLATION) -> None:
        self.collation = collation
        self.metadata = metadata = sa.MetaData()
        ident = _exact_string(255, collation)
        self.tasks = sa.Table(
            tablename,
            metadata,
            sa.Column("id", ident, primary_key=True),
            sa.Column("next_run_time", sa.BigInteger, nullable=True),
            sa.Column("version", sa.BigInteger, nullable=False),
            sa.Column("lease_owner", _exact_string(255, collation), nullable=True),
            sa.Column("lease_token", sa.String(32), nullable=True),
            sa.Column("lease_until", sa.BigInteger, nullable=True),
            sa.Column(
                "state",
                sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"),
                nullable=False,
            ),
            sa.Index(f"ix_{tablename}_due", "next_run_time", "id"),
            sa.Index(f"ix_{tablename}_lease", "lease_until"),
        )
        self.version = sa.Table(
            f"{tablename}_version",
            metadata,
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
        )
        self.instances = sa.Table(
            f"{tablename}_instances",
            metadata,
            sa.Column("identity", _exact_string(255, collation), primary_key=True),
            sa.Column("info", sa.Text, nullable=False),
            sa.Column("heartbeat", sa.BigInteger, nullable=False),
        )
        runs = self.runs = sa.Table(
            f"{tablename}_runs",
            metadata,
            sa.Column("task_id", _exact_string(255, collation), primary_key=True),
            sa.Column("scheduled_at", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("instance", _exact_string(255, collation), nullable=False),
            sa.Column("fired_at", sa.BigInteger, nullable=True),
            sa.Column("run_id", sa.String(255), nullable=True),
            sa.Column("started_at", sa.BigInteger, nullable=True),
            sa.Column("finished_at", sa.BigInteger, nullable=True),
            sa.Column("duration", sa.Float, nullable=True),
            sa.Column("error", sa.Text, nullable=True),
            sa.Column("attempt", sa.Integer, nullable=False),
            sa.Column("on_crash", sa.String(16), nullable=False),
            # The task's record when it was fired, for a started run of an on_crash="rerun"
            # task that its fire deleted (a one-off): a rerun needs it; NULL once it ends.
            sa.Column(
                "task_state",
                sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"),
                nullable=True,
            ),
        )
        sa.Index(f"ix_{tablename}_runs_time", runs.c.scheduled_at.desc(), runs.c.task_id)
        sa.Index(f"ix_{tablename}_runs_status", runs.c.status, runs.c.task_id)


def exact_collation(conn: Connection) -> str:
    """The binary NO PAD collation of this MariaDB/MySQL server."""
    dialect = conn.dialect
    if getattr(dialect, "is_mariadb", False):
        return MARIADB_COLLATION
    version = tuple(getattr(dialect, "server_version_info", None) or ())
    return MYSQL8_COLLATION if version >= (8, 0) else MYSQL57_COLLATION


def has_skip_locked(conn: Connection) -> bool:
    """PostgreSQL 9.5+, MySQL 8.0.1+ and MariaDB 10.6+ can skip rows locked by others."""
    dialect = conn.dialect
    if dialect.name == "postgresql":
        return True
    if dialect.name not in ("mysql", "mariadb"):
        return False
    version = tuple(getattr(dialect, "server_version_info", None) or ())
    if getattr(dialect, "is_mariadb", False):
        return version >= (10, 6)
    # Older servers: plain FOR UPDATE (rows another scheduler is leasing are waited for).
    return version >= (8, 0, 1)


def store_now(dialect_name: str) -> Any:
    """The store's clock, in integer microseconds since the epoch, as a SQL expression: the
    database's clock on servers (every scheduler then agrees on it), this host's on SQLite
    (one host shares the file)."""
    if dialect_name == "postgresql":
        return sa.literal_column(
            "(extract(epoch from clock_timestamp()) * 1000000)::bigint", sa.BigInteger
        )
    if dialect_name in ("mysql", "mariadb"):
        return sa.literal_column(
            "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6))", sa.BigInteger
        )
    import time

    return sa.literal(int(time.time() * 1_000_000), sa.BigInteger)


def ensure_schema(conn: Connection, tables: Tables) -> int:
    """Create what is missing and upgrade a version-1 table; the stored schema version (one
    newer than :data:`SCHEMA_VERSION` is left alone, for the caller to refuse)."""
    name = conn.dialect.name
    lock_name = "asyncz:" + tables.tasks.name
    if name == "postgresql":
        key = zlib.crc32(lock_name.encode()) - 2**31
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
    elif name in ("mysql", "mariadb"):
        got = conn.execute(sa.select(sa.func.get_lock(lock_name[:64], 60))).scalar()
        if got != 1:
            raise sa.exc.OperationalError("GET_LOCK", {}, Exception("schema lock timed out"))
    try:
        return _ensure_schema(conn, tables)
    finally:
        if name in ("mysql", "mariadb"):
            try:
                conn.execute(sa.select(sa.func.release_lock(lock_name[:64])))
            except Exception:  # pragma: no cover - the connection is gone: so is the lock
                pass


def _ensure_schema(conn: Connection, tables: Tables) -> int:
    inspector = sa.inspect(conn)
    version_table = tables.version
    stored: int | None = None
    if inspector.has_table(version_table.name):
        row = conn.execute(
            sa.select(version_table.c.version).where(version_table.c.name == "schema")
        ).first()
        stored = int(row[0]) if row is not None else None
    if stored is not None and stored > SCHEMA_VERSION:
        return stored
    existed = inspector.has_table(tables.tasks.name)
    tables.metadata.create_all(conn, checkfirst=True)
    if existed:
        _upgrade_tasks_table(conn, tables)
    if stored is None:
        conn.execute(sa.insert(version_table).values(name="schema", version=SCHEMA_VERSION))
    elif stored < SCHEMA_VERSION:
        conn.execute(
            sa.update(version_table)
            .where(version_table.c.name == "schema")
            .values(version=SCHEMA_VERSION)
        )
    return SCHEMA_VERSION


def _upgrade_tasks_table(conn: Connection, tables: Tables) -> None:
    """Bring an older tasks table to version 2; each step only if it is still needed, so a
    table left half-way (by a crash, or by asyncz releases whose upgrade added only some of the
    columns and set the version anyway) is finished on the next start.

    Two older layouts exist: asyncz's version 1 (no ``version`` / ``lease_token``) and the table
    Asyncz 0.17 creates (``id``, ``next_run_time``, ``state`` only; run times in *seconds*,
    fractional where SQLite keeps them). A table without ``lease_owner`` is Asyncz's: its run
    times become microseconds first (idempotently: only values below 10**11, which no
    microsecond time after 1970-01-02 is, are converted), then every missing column is added.
    SQLite and PostgreSQL do it all in the caller's transaction; MariaDB/MySQL commit each DDL
    statement, so there the columns come in one ``ALTER TABLE`` after the conversion.
    """
    table = tables.tasks
    dialect = conn.dialect.name
    preparer = conn.dialect.identifier_preparer
    quoted = preparer.format_table(table)
    inspector = sa.inspect(conn)
    columns = {c["name"] for c in inspector.get_columns(table.name)}
    if "lease_owner" not in columns:
        _run_times_to_microseconds(conn, tables)
    owner_type = {
        "postgresql": 'VARCHAR(255) COLLATE "C"',
        "mysql": f"VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {tables.collation}",
        "mariadb": f"VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {tables.collation}",
    }.get(dialect, "VARCHAR(255)")
    missing = [
        (name, ddl)
        for name, ddl in (
            ("version", "BIGINT NOT NULL DEFAULT 0"),
            ("lease_owner", owner_type),
            ("lease_token", "VARCHAR(32)"),
            ("lease_until", "BIGINT"),
        )
        if name not in columns
    ]
    if missing:
        if dialect in ("mysql", "mariadb"):
            conn.exec_driver_sql(
                f"ALTER TABLE {quoted} "
                + ", ".join(f"ADD COLUMN {preparer.quote(n)} {ddl}" for n, ddl in missing)
            )
        else:
            for name, ddl in missing:
                conn.exec_driver_sql(
                    f"ALTER TABLE {quoted} ADD COLUMN {preparer.quote(name)} {ddl}"
                )
    if "version" not in columns:
        # A writer of an older layout never held a version: any value will do, but not one
        # that a task deleted and added again could meet.
        conn.execute(sa.update(table).values(version=new_store_version()))
    indexes = {ix["name"] for ix in inspector.get_indexes(table.name)}
    for index in table.indexes:
        if index.name not in indexes:
            index.create(conn)
    if dialect in ("mysql", "mariadb"):
        collation = tables.collation
        found: dict[str, str] = dict(
            conn.execute(
                sa.text(
                    "SELECT COLUMN_NAME, COALESCE(COLLATION_NAME, DATA_TYPE) "
                    "FROM information_schema.COLUMNS WHERE "
                    "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
                ),
                {"t": table.name},
            ).all()
        )
        changes = []
        if found.get("id") != collation or found.get("lease_owner") != collation:
            changes += [
                f"MODIFY id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL",
                f"MODIFY lease_owner VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {collation} NULL",
            ]
        if found.get("state") != "longblob":  # Asyncz's BLOB holds 64 KiB only
            changes.append("MODIFY state LONGBLOB NOT NULL")
        if changes:
            conn.exec_driver_sql(f"ALTER TABLE {quoted} " + ", ".join(changes))


#: Below this, a stored run time is in seconds (Asyncz's tables): as microseconds it would be
#: before 1970-01-02, as seconds it is before the year 5138.
_SECONDS_LIMIT = 10**11


def _run_times_to_microseconds(conn: Connection, tables: Tables) -> None:
    """Asyncz's run times (seconds; fractional on SQLite, rounded by servers' BIGINT) as
    microseconds, rounded to the nearest one; values already converted are left alone."""
    column = tables.tasks.c.next_run_time
    seconds = sa.and_(column.is_not(None), column < _SECONDS_LIMIT, column > -_SECONDS_LIMIT)
    micros = sa.cast(sa.func.round(column * 1_000_000), sa.BigInteger)
    conn.execute(sa.update(tables.tasks).where(seconds).values(next_run_time=micros))


def pg_array(values: Sequence[Any], item: Any) -> Any:
    """A PostgreSQL array parameter of ``item`` values."""
    from sqlalchemy.dialects.postgresql import ARRAY

    return sa.cast(sa.literal(list(values), ARRAY(item)), ARRAY(item))


def pg_unnest(*columns: tuple[str, Sequence[Any], Any]) -> Any:
    """PostgreSQL: rows from parallel arrays, ``unnest(...) AS k(name, ...)``."""
    return (
        sa.func.unnest(*(pg_array(values, item) for _, values, item in columns))
        .table_valued(*(name for name, _, _ in columns))
        .render_derived(name="k")
    )
