"""The ``sqlalchemy`` store: one table, SQLAlchemy 2 Core, shared safely by many schedulers.

Table ``<tablename>``: ``id`` (primary key), ``next_run_time`` (integer microseconds since the
epoch, NULL = paused; indexed together with ``id`` so due queries and the next wake-up read the
index, never scan the table), ``lease_owner``/``lease_until`` (who holds a due task and until when;
indexed), ``state`` (the encoded record). Table ``<tablename>_version`` holds the schema version,
written at start; a table written by a newer asyncz is refused rather than damaged.

The ``next_run_time`` column is the truth about when a task runs: releasing a task after a run
only updates that column and the lease, it does not rewrite the record.

Several schedulers — processes or hosts — may share one table: due tasks are only handed out
with a lease recorded in the row, taken with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL
and MariaDB/MySQL (a concurrent acquirer skips rows being leased instead of waiting), and inside
``BEGIN IMMEDIATE`` on SQLite (one writer at a time, decided when the transaction begins, so two
processes never both read a row as free). SQLite files are put in WAL mode, so readers do not
block the writer. On PostgreSQL, added and updated tasks are announced with ``NOTIFY`` so that
the other schedulers wake up at once rather than at their next poll.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

from asyncz.core.converters import reject_unknown_options, utc_timestamp_us
from asyncz.core.errors import ConflictIdError, TaskLookupError
from asyncz.core.task import Task
from asyncz.plugins.stores.persistent import PersistentStore, order_key

__all__ = ["SCHEMA_VERSION", "SQLAlchemyStore"]

#: The table layout this version creates and the newest it can use.
SCHEMA_VERSION = 1
_BEGIN_OPTION = "asyncz_sqlite_begin"
_CREATE_OPTIONS = frozenset({"pickle_protocol"})
#: A bulk add of at least this many rows refreshes PostgreSQL's statistics of the table.
_ANALYZE_AFTER = 500
#: Up to this many quarantined ids are excluded with ``NOT IN`` (bound parameters) when looking
#: for the next run time; more are skipped while reading the indexes.
_NOT_IN_MAX = 500


class SQLAlchemyStore(PersistentStore):
    """Keeps tasks in a SQL table.

    :param database: a database URL (``"sqlite:///tasks.db"``,
        ``"postgresql+psycopg://user@host/db"``, ``"mysql+pymysql://user@host/db"``) or an
        ``Engine``
    :param tablename: the table to use (created at start if missing)
    :param engine_options: options for ``sqlalchemy.create_engine`` when ``database`` is a URL
        (``pool_pre_ping`` is on for server databases unless turned off, so a restarted server is
        survived);
        further keyword arguments are taken as engine options too, as in Asyncz
    :param sqlite_synchronous: SQLite's ``synchronous`` setting: ``"NORMAL"`` (default; with
        WAL a commit survives a killed process, not necessarily a power loss) or ``"FULL"``
        (survives a power loss too, one fsync per commit)
    :param notify: on PostgreSQL (psycopg), announce added and updated tasks with ``NOTIFY`` and
        ``LISTEN`` for others' (one thread, one connection), so schedulers sharing the table
        wake up at once; the poll stays as a safety net
    :param pickle_protocol: the pickle protocol, for the ``pickle`` serializer
    :param serializer, signing_key, encryption_key, accept_unprotected, poll_interval,
        cache_size: see
        :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    """

    def __init__(
        self,
        database: str | sa.URL | Engine | None = None,
        tablename: str = "asyncz_store",
        *,
        engine_options: Mapping[str, Any] | None = None,
        serializer: Any = "pickle",
        signing_key: Any = None,
        encryption_key: Any = None,
        accept_unprotected: bool = False,
        poll_interval: float | None = 5.0,
        cache_size: int = 100_000,
        sqlite_synchronous: str = "NORMAL",
        notify: bool = True,
        pickle_protocol: int | None = None,
        **extra_engine_options: Any,
    ) -> None:
        super().__init__(
            serializer=serializer,
            signing_key=signing_key,
            encryption_key=encryption_key,
            accept_unprotected=accept_unprotected,
            poll_interval=poll_interval,
            cache_size=cache_size,
            pickle_protocol=pickle_protocol,
        )
        if database is None:
            raise TypeError(
                "the sqlalchemy store needs database=, a URL such as 'sqlite:///tasks.db' or "
                "'postgresql+psycopg://user@host/db', or an Engine"
            )
        if not isinstance(tablename, str) or not tablename:
            raise ValueError(f"tablename must be a non-empty string, got {tablename!r}")
        options = {**dict(engine_options or {}), **extra_engine_options}
        if isinstance(database, Engine):
            if options:
                reject_unknown_options("SQLAlchemyStore with an Engine", options, ())
            self._url = database.url
            self._given_engine: Engine | None = database
        elif isinstance(database, (str, sa.URL)):
            self._url = make_url(database)
            self._given_engine = None
        else:
            raise TypeError(f"database must be a URL string or an Engine, got {database!r}")
        self._engine_options = options
        if not isinstance(sqlite_synchronous, str) or sqlite_synchronous.upper() not in (
            "OFF",
            "NORMAL",
            "FULL",
            "EXTRA",
        ):
            raise ValueError(
                f"sqlite_synchronous must be 'NORMAL', 'FULL', 'EXTRA' or 'OFF', got "
                f"{sqlite_synchronous!r}"
            )
        self.sqlite_synchronous = sqlite_synchronous.upper()
        self.tablename = tablename
        #: PostgreSQL channel where added and updated tasks are announced
        self.channel = f"asyncz_{tablename}"[:63]
        self.notify = notify
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self.engine: Engine | None = None
        self._sqlite = self._url.get_backend_name() == "sqlite"
        # A SQLite memory database is one connection shared by every thread: take turns.
        self._local_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        metadata = sa.MetaData()
        self.table = sa.Table(
            tablename,
            metadata,
            # Ids compare by code point everywhere, as in Python and the other stores: case
            # matters ("Job" and "job" are two tasks) and ties are ordered the same way.
            sa.Column(
                "id",
                sa.String(255)
                .with_variant(sa.String(255, collation="C"), "postgresql")
                .with_variant(mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb"),
                primary_key=True,
            ),
            sa.Column("next_run_time", sa.BigInteger, nullable=True),
            sa.Column("lease_owner", sa.String(255), nullable=True),
            sa.Column("lease_until", sa.BigInteger, nullable=True),
            sa.Column(
                "state",
                sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"),
                nullable=False,
            ),
            sa.Index(f"ix_{tablename}_due", "next_run_time", "id"),
            sa.Index(f"ix_{tablename}_lease", "lease_until"),
        )
        self.version_table = sa.Table(
            f"{tablename}_version",
            metadata,
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
        )
        self.metadata = metadata

    # -- engine and schema -----------------------------------------------------------------

    def _make_engine(self) -> Engine:
        if self._given_engine is not None:
            engine = self._given_engine
        else:
            # A server may restart under us (or drop idle connections): test each connection
            # before use. A SQLite file has no server to lose, so it skips the extra query.
            options: dict[str, Any] = {"pool_pre_ping": not self._sqlite, **self._engine_options}
            if self._sqlite and self._url.database in (None, "", ":memory:"):
                options.setdefault("poolclass", StaticPool)
                connect_args = dict(options.get("connect_args") or {})
                connect_args.setdefault("check_same_thread", False)
                options["connect_args"] = connect_args
                self._local_lock = threading.RLock()
            engine = sa.create_engine(self._url, **options)
        if self._sqlite and not getattr(engine, "_asyncz_sqlite", False):
            synchronous = self.sqlite_synchronous

            def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
                _sqlite_connect(dbapi_connection, synchronous)

            event.listen(engine, "connect", on_connect)
            event.listen(engine, "begin", _sqlite_begin)
            setattr(engine, "_asyncz_sqlite", True)  # noqa: B010 - once per engine
        return engine

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        if self.engine is None:
            self.engine = self._make_engine()
        self._create_schema()
        if self._listens() and self._listener is None:
            # A fresh event per listener: one still winding down from an earlier shutdown
            # must not be revived.
            self._stop = threading.Event()
            self._listener = threading.Thread(
                target=self._listen, args=(self._stop,), name=f"asyncz-sql-{alias}", daemon=True
            )
            self._listener.start()

    # -- PostgreSQL LISTEN/NOTIFY: wake schedulers sharing the table at once ----------------

    def _listens(self) -> bool:
        engine = self.engine
        return bool(
            self.notify
            and engine is not None
            and engine.dialect.name == "postgresql"
            and engine.dialect.driver == "psycopg"
        )

    def _announce(self, conn: Connection, tasks: Sequence[Task]) -> None:
        """NOTIFY inside the writing transaction: delivered only if it commits."""
        if self._listens():
            message = self.notification(tasks)
            if message is not None:
                conn.execute(sa.select(sa.func.pg_notify(self.channel, message)))

    def _listen(self, stop: threading.Event) -> None:
        from psycopg import sql

        while not stop.is_set():
            raw = None
            try:
                assert self.engine is not None
                raw = self.engine.raw_connection()
                driver: Any = raw.driver_connection
                raw.detach()  # a connection of its own, not a pool slot held forever
                driver.rollback()  # the pool's ping may have opened a transaction
                driver.autocommit = True
                driver.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                while not stop.is_set():
                    for note in driver.notifies(timeout=0.5):
                        self.notified(note.payload)
            except Exception:
                # The server went away: the poll covers the gap; listen again shortly.
                stop.wait(1.0)
            finally:
                if raw is not None:
                    with contextlib.suppress(Exception):
                        raw.close()

    def _create_schema(self) -> None:
        assert self.engine is not None
        for attempt in range(5):
            try:
                # One write transaction (BEGIN IMMEDIATE on SQLite): several processes starting
                # at once then take turns instead of failing to upgrade a read lock.
                with self._write() as conn:
                    self.metadata.create_all(conn, checkfirst=True)
                    version = self._schema_version(conn)
                break
            except (OperationalError, ProgrammingError, IntegrityError):
                # Another process created the table between our check and our CREATE.
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"the table {self.tablename!r} has schema version {version}, written by a newer "
                f"asyncz (this one knows version {SCHEMA_VERSION}); upgrade asyncz to use it"
            )

    def _schema_version(self, conn: Connection) -> int:
        version_table = self.version_table
        row = conn.execute(
            sa.select(version_table.c.version).where(version_table.c.name == "schema")
        ).first()
        if row is not None:
            return int(row[0])
        conn.execute(sa.insert(version_table).values(name="schema", version=SCHEMA_VERSION))
        return SCHEMA_VERSION

    def shutdown(self) -> None:
        if self._listener is not None:
            # Not joined: it notices within half a second and closes its own connection.
            self._stop.set()
            self._listener = None
        if self.engine is not None and self._given_engine is None:
            self.engine.dispose()
            self.engine = None

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A transaction that will write: ``BEGIN IMMEDIATE`` on SQLite."""
        engine = self._require_engine()
        with self._local_lock, engine.connect() as conn:
            if self._sqlite:
                conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read: one statement, which on SQLite runs without ``BEGIN`` (a statement is its
        own snapshot there, and an explicit transaction would only cost two round trips)."""
        engine = self._require_engine()
        with self._local_lock, engine.connect() as conn:
            if self._sqlite:
                conn.execution_options(**{_BEGIN_OPTION: None})
            with conn.begin():
                yield conn

    def _require_engine(self) -> Engine:
        if self.engine is None:
            # Used before start(): tests and scripts that inspect a store directly.
            self.engine = self._make_engine()
            self._create_schema()
        return self.engine

    # -- the Store protocol ----------------------------------------------------------------

    def _row(self, task: Task, data: bytes) -> dict[str, Any]:
        next_time = task.next_run_time
        return {
            "id": task.id,
            "next_run_time": utc_timestamp_us(next_time) if next_time is not None else None,
            "lease_owner": None,
            "lease_until": None,
            "state": data,
        }

    def add_task(self, task: Task) -> None:
        self.add_tasks([task])

    def add_tasks(self, tasks: Sequence[Task]) -> None:
        """Add tasks in one transaction: all are added, or (on a conflict) none."""
        encoded = [self.encode(task) for task in tasks]
        rows = [self._row(task, enc[0]) for task, enc in zip(tasks, encoded, strict=True)]
        if not rows:
            return
        try:
            with self._write() as conn:
                conn.execute(sa.insert(self.table), rows)
                self._announce(conn, tasks)
        except IntegrityError:
            ids = [row["id"] for row in rows]
            if len(set(ids)) != len(ids):
                duplicate = next(i for i in ids if ids.count(i) > 1)
                raise ConflictIdError(duplicate) from None
            with self._read() as conn:
                taken = conn.execute(
                    sa.select(self.table.c.id).where(self.table.c.id.in_(ids)).limit(1)
                ).scalar()
            raise ConflictIdError(taken or ids[0]) from None
        for task, enc in zip(tasks, encoded, strict=True):
            self.stored(task, enc)
        if len(rows) >= _ANALYZE_AFTER and self._url.get_backend_name() == "postgresql":
            self._analyze()

    def _analyze(self) -> None:
        """Refresh PostgreSQL's statistics of the table after a bulk load.

        Until autovacuum gets to it (a minute or more), the planner does not know the table
        grew; with every row unleased it then reads them all for a wake-up instead of walking
        the due index (measured: 5.1 ms instead of 1.8 at 11,000 rows). Best effort: a
        failure costs only speed.
        """
        try:
            with self._write() as conn:
                table = conn.dialect.identifier_preparer.format_table(self.table)
                conn.execute(sa.text(f"ANALYZE {table}"))
        except Exception:
            self.logger.debug("ANALYZE of %r failed", self.table.name, exc_info=True)

    def update_task(self, task: Task) -> None:
        encoded = self.encode(task)
        row = self._row(task, encoded[0])
        task_id = row.pop("id")
        with self._write() as conn:
            result = conn.execute(
                sa.update(self.table).where(self.table.c.id == task_id).values(**row)
            )
            if result.rowcount:
                self._announce(conn, [task])
        if result.rowcount == 0:
            raise TaskLookupError(task_id, self.alias)
        self.stored(task, encoded)

    def delete_task(self, task_id: str) -> None:
        self.forget([task_id])
        with self._write() as conn:
            result = conn.execute(sa.delete(self.table).where(self.table.c.id == task_id))
        if result.rowcount == 0:
            raise TaskLookupError(task_id, self.alias)

    def remove_all_tasks(self) -> None:
        self.forget()
        with self._write() as conn:
            conn.execute(sa.delete(self.table))

    def _columns(self) -> tuple[Any, ...]:
        t = self.table.c
        return (t.id, t.state, t.next_run_time)

    def lookup_task(self, task_id: str) -> Task | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(*self._columns()).where(self.table.c.id == task_id)
            ).first()
        if row is None:
            return None
        tasks = self.restore_all([(row[0], row[1], row[2])])
        return tasks[0] if tasks else None

    def get_all_tasks(self) -> list[Task]:
        with self._read() as conn:
            rows = conn.execute(sa.select(*self._columns())).all()
        return sorted(self.restore_all((r[0], r[1], r[2]) for r in rows), key=order_key)

    def iter_records(self) -> Iterator[tuple[str, bytes, int | bool | None]]:
        with self._read() as conn:
            rows = conn.execute(sa.select(*self._columns()).order_by(self.table.c.id)).all()
        for row in rows:
            yield row[0], row[1], row[2]

    def get_due_tasks(self, now: datetime) -> list[Task]:
        t = self.table.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(*self._columns())
                .where(t.next_run_time <= utc_timestamp_us(now))
                .order_by(t.next_run_time, t.id)
            ).all()
        return self.restore_all(rows)  # rows unpack as (id, data, next_run_us)

    def get_next_run_time(self) -> datetime | None:
        t = self.table.c
        if self._quarantined:
            return self._next_run_time_without(self._quarantined_ids())
        # Two index lookups in one round trip: the earliest unleased run time, and the
        # earliest lease expiry (a lease nobody releases must bring its task back).
        earliest = (
            sa.select(t.next_run_time)
            .where(t.next_run_time.is_not(None), t.lease_owner.is_(None))
            .order_by(t.next_run_time)
            .limit(1)
            .scalar_subquery()
        )
        lease_end = sa.select(sa.func.min(t.lease_until)).scalar_subquery()
        with self._read() as conn:
            row = conn.execute(sa.select(earliest, lease_end)).one()
        return _earliest(row)

    def _next_run_time_without(self, quarantined: frozenset[str]) -> datetime | None:
        """:meth:`get_next_run_time` not counting the quarantined tasks (run time or lease)."""
        t = self.table.c
        ids = sorted(quarantined)
        if len(ids) <= _NOT_IN_MAX:
            # As the common query, one round trip, with the ids excluded in both lookups.
            earliest = (
                sa.select(t.next_run_time)
                .where(t.next_run_time.is_not(None), t.lease_owner.is_(None), t.id.not_in(ids))
                .order_by(t.next_run_time)
                .limit(1)
                .scalar_subquery()
            )
            lease_end = (
                sa.select(sa.func.min(t.lease_until)).where(t.id.not_in(ids)).scalar_subquery()
            )
            with self._read() as conn:
                row = conn.execute(sa.select(earliest, lease_end)).one()
            return _earliest(row)
        # Too many ids for one statement's parameters (SQLite allows 999 in older builds): the
        # first len(ids) + 1 rows of each index hold at least one that is not quarantined.
        with self._read() as conn:
            runs = conn.execute(
                sa.select(t.id, t.next_run_time)
                .where(t.next_run_time.is_not(None), t.lease_owner.is_(None))
                .order_by(t.next_run_time)
                .limit(len(ids) + 1)
            ).all()
            leases = conn.execute(
                sa.select(t.id, t.lease_until)
                .where(t.lease_until.is_not(None))
                .order_by(t.lease_until)
                .limit(len(ids) + 1)
            ).all()
        return _earliest(
            [next((v for i, v in rows if i not in quarantined), None) for rows in (runs, leases)]
        )

    def acquire_due_tasks(self, now: datetime, owner: str, limit: int, lease: float) -> list[Task]:
        t = self.table.c
        now_us = utc_timestamp_us(now)
        until = now_us + int(lease * 1_000_000)
        acquired: list[Task] = []
        reports: list[tuple[str, str]] = []
        reader = self.reader()
        # The lease test is kept away from the lease index on purpose: while most rows have no
        # lease, a planner without fresh statistics (a table just filled) would rather read
        # every unleased row through it than walk the due index to the first row that is not
        # due (measured on PostgreSQL: 5 ms instead of 2 at 11,000 rows).
        free = sa.and_(
            t.next_run_time <= now_us,
            sa.func.coalesce(t.lease_until, 0) <= now_us,
        )
        if self._sqlite:
            # SQLite has one write lock for the whole file: a wake-up with nothing due must not
            # take it (schedulers in other processes would wait on every idle wake-up).
            with self._read() as conn:
                if conn.execute(sa.select(t.id).where(free).limit(1)).first() is None:
                    return acquired
        with self._write() as conn:
            skip_locked = _has_skip_locked(conn)
            while len(acquired) < limit:
                wanted = limit - len(acquired)
                if conn.dialect.name == "postgresql":
                    # One round trip: lock the due rows (skipping rows another scheduler is
                    # taking right now), lease them, and return them.
                    locked = (
                        sa.select(t.id)
                        .where(free)
                        .order_by(t.next_run_time, t.id)
                        .limit(wanted)
                        .with_for_update(skip_locked=True)
                    )
                    rows = sorted(
                        conn.execute(
                            sa.update(self.table)
                            .where(t.id.in_(locked.scalar_subquery()))
                            .values(lease_owner=owner, lease_until=until)
                            .returning(*self._columns())
                        ).all(),
                        key=lambda row: (row[2], row[0]),
                    )
                    for row in rows:
                        task = self.restore(row[0], row[1], row[2], reports, reader)
                        if task is not None:
                            acquired.append(task)
                    if len(rows) < wanted:
                        break
                    continue
                query = (
                    sa.select(*self._columns())
                    .where(free)
                    .order_by(t.next_run_time, t.id)
                    .limit(wanted)
                )
                if skip_locked:
                    query = query.with_for_update(skip_locked=True)
                elif not self._sqlite:
                    query = query.with_for_update()
                rows = list(conn.execute(query).all())
                if not rows:
                    break
                if self._sqlite:
                    # Inside BEGIN IMMEDIATE nobody else writes, so "every free due row up to
                    # the last one read" is exactly the rows read: one indexed range update
                    # instead of a list of ids.
                    last_us, last_id = rows[-1][2], rows[-1][0]
                    where = sa.and_(
                        free,
                        sa.or_(
                            t.next_run_time < last_us,
                            sa.and_(t.next_run_time == last_us, t.id <= last_id),
                        ),
                    )
                else:
                    # Only the rows this transaction locked (others may be locked elsewhere).
                    where = t.id.in_([row[0] for row in rows])
                conn.execute(
                    sa.update(self.table).where(where).values(lease_owner=owner, lease_until=until)
                )
                for row in rows:
                    # A record that cannot be restored keeps its lease: it is tried again when
                    # the lease runs out, and meanwhile does not block the tasks behind it.
                    task = self.restore(row[0], row[1], row[2], reports, reader)
                    if task is not None:
                        acquired.append(task)
                if len(rows) < wanted:
                    break
        self.report(reports)
        return acquired

    def release_tasks(self, owner: str, next_run_times: Mapping[str, datetime | None]) -> list[str]:
        if not next_run_times:
            return []
        t = self.table.c
        with self._write() as conn:
            # Only where we still hold the lease: an update, a delete or another owner's lease
            # in the meantime wins over this release. Locked rows, so that stays true.
            held = {
                row[0]
                for row in conn.execute(
                    sa.select(t.id)
                    .where(t.id.in_(list(next_run_times)), t.lease_owner == owner)
                    .with_for_update()
                )
            }
            updates = [
                {"b_id": task_id, "b_owner": owner, "b_next": utc_timestamp_us(next_time)}
                for task_id, next_time in next_run_times.items()
                if next_time is not None and task_id in held
            ]
            finished = [
                task_id
                for task_id, next_time in next_run_times.items()
                if next_time is None and task_id in held
            ]
            if updates:
                # Only where we still hold the lease: an update, a delete or another owner's
                # lease in the meantime wins over this release.
                conn.execute(
                    sa.update(self.table)
                    .where(t.id == sa.bindparam("b_id"), t.lease_owner == sa.bindparam("b_owner"))
                    .values(
                        next_run_time=sa.bindparam("b_next"), lease_owner=None, lease_until=None
                    ),
                    updates,
                )
            if finished:
                self.forget(finished)
                conn.execute(
                    sa.delete(self.table).where(t.id.in_(finished), t.lease_owner == owner)
                )
        return [task_id for task_id in next_run_times if task_id in held]

    def __repr__(self) -> str:
        url = self._url.render_as_string(hide_password=True)
        # Asyncz's repr (password hidden); the table is shown when it is not the default one.
        table = "" if self.tablename == "asyncz_store" else f", tablename={self.tablename!r}"
        return f"<SQLAlchemyStore (database={url}{table})>"


def _earliest(values: Sequence[Any]) -> datetime | None:
    """The earliest of some microsecond timestamps (``None`` ignored), as a datetime."""
    candidates = [int(v) for v in values if v is not None]
    if not candidates:
        return None
    from asyncz.core.records import from_timestamp_us

    return from_timestamp_us(min(candidates))


def _has_skip_locked(conn: Connection) -> bool:
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


def _sqlite_connect(dbapi_connection: Any, synchronous: str) -> None:
    # pysqlite's own transaction handling begins transactions late and never IMMEDIATE; we
    # issue BEGIN ourselves (see _sqlite_begin), so it must stay out of the way.
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


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    if mode is not None:  # None: a single statement, in autocommit
        conn.exec_driver_sql(f"BEGIN {mode}")
