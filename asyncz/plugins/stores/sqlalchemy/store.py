"""The ``sqlalchemy`` store: SQLAlchemy 2 Core tables, shared safely by many schedulers.

Tables (see :mod:`~asyncz.plugins.stores.sqlalchemy.schema`): ``<tablename>`` holds the tasks:
``id`` (primary key, compared exactly), ``next_run_time`` (integer microseconds since the epoch,
NULL = paused; indexed together with ``id`` so due queries and the next wake-up read the index,
never scan the table), ``version`` (bumped by every write of the record or its schedule),
``lease_owner``/``lease_token``/``lease_until`` (who holds a due task, with which fencing token,
until when), ``state`` (the encoded record). ``<tablename>_version`` holds the schema version,
written at start (a version-1 table is upgraded in place; one written by a newer asyncz is
refused rather than damaged). ``<tablename>_instances`` registers the schedulers sharing the
table and their heartbeats, on the database's clock; ``<tablename>_runs`` keeps a run record per
fire time, written in the transaction that releases the task (``fire_tasks``, see
:mod:`~asyncz.plugins.stores.sqlalchemy.runs`).

The ``next_run_time`` column is the truth about when a task runs: releasing a task after a run
only updates that column and the lease, it does not rewrite the record; and an update that does
not change the schedule (``keep_schedule=True``) leaves the column and the lease alone.

Several schedulers — processes or hosts — may share one table: due tasks are only handed out
with a lease recorded in the row, taken with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL
and MariaDB/MySQL (a concurrent acquirer skips rows being leased instead of waiting), and inside
``BEGIN IMMEDIATE`` on SQLite (one writer at a time, decided when the transaction begins, so two
processes never both read a row as free). Each acquisition makes a fencing token; the store
remembers the tokens of the tasks it holds, and a release counts only where the row still carries
that token (an update of the schedule, a delete, a lease taken over by anyone — even the same
owner after expiry — or a reaping by a peer all end it). Updates are conditional on the version
the writer read (``TaskConflictError`` otherwise). SQLite files are put in WAL mode, so readers
do not block the writer. On PostgreSQL, added tasks and schedule changes are announced with
``NOTIFY`` so that the other schedulers wake up at once rather than at their next poll.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

from asyncz.core.converters import reject_unknown_options, utc_timestamp_us
from asyncz.core.errors import ConflictIdError, TaskConflictError, TaskLookupError
from asyncz.core.records import from_timestamp_us, new_store_version
from asyncz.core.runs import Fire, FireResult, RunOutcome, RunRecord
from asyncz.core.task import Task, task_id_problem
from asyncz.plugins.stores.persistent import PersistentStore, order_key
from asyncz.plugins.stores.sqlalchemy import runs
from asyncz.plugins.stores.sqlalchemy.connections import BEGIN_OPTION as _BEGIN_OPTION
from asyncz.plugins.stores.sqlalchemy.connections import listen, prepare_sqlite
from asyncz.plugins.stores.sqlalchemy.instances import (
    claim_dead,
    list_instances,
    upsert_instance,
)
from asyncz.plugins.stores.sqlalchemy.schema import (
    MARIADB_COLLATION,
    SCHEMA_VERSION,
    Tables,
    ensure_schema,
    exact_collation,
    has_skip_locked,
    pg_array,
    pg_unnest,
    store_now,
)

__all__ = ["SCHEMA_VERSION", "SQLAlchemyStore"]

_CREATE_OPTIONS = frozenset({"pickle_protocol"})
#: A bulk add of at least this many rows refreshes PostgreSQL's statistics of the table.
_ANALYZE_AFTER = 500
#: Up to this many quarantined ids are excluded with ``NOT IN`` (bound parameters) when looking
#: for the next run time; more are skipped while reading the indexes.
_NOT_IN_MAX = 500
#: Old run records are purged at most this often (seconds), from the heartbeat.
_PURGE_EVERY = 300.0
#: Finished run records are kept this long by default (seconds): a week.
DEFAULT_RUN_RETENTION = 7 * 24 * 3600.0


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
    :param run_retention: seconds finished run records are kept, counted from their scheduled
        fire time (default: a week); ``None`` keeps them all. Purged from the heartbeat, at
        most every five minutes
    :param serializer: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param signing_key: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param encryption_key: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param accept_unprotected: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param poll_interval: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param cache_size: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    """

    def __init__(
        self,
        database: str | sa.URL | Engine | None = None,
        tablename: str = "asyncz_store",
        *,
        url: str | sa.URL | None = None,
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
        run_retention: float | None = DEFAULT_RUN_RETENTION,
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
        if url is not None:
            if database is not None:
                raise TypeError("give the sqlalchemy store database= or url=, not both")
            database = url
        if database is None:
            raise TypeError(
                "the sqlalchemy store needs database= (or url=), a URL such as "
                "'sqlite:///tasks.db' or 'postgresql+psycopg://user@host/db', or an Engine"
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
            if options:
                # Further keyword arguments are engine options (as in Asyncz): ask SQLAlchemy
                # now (the engine connects to nothing and is thrown away), so that a misspelled
                # store option is named here, not at start as a create_engine complaint.
                try:
                    sa.create_engine(self._url, **options).dispose()
                except (sa.exc.ArgumentError, TypeError) as exc:
                    found = re.search(r"Invalid argument\(s\) (.+?) sent to", str(exc))
                    if found is None:
                        raise
                    own = set(inspect.signature(type(self).__init__).parameters) - {"self"}
                    reject_unknown_options(
                        "the sqlalchemy store (other options go to sqlalchemy.create_engine)",
                        dict.fromkeys(n.strip(" '\"") for n in found.group(1).split(",")),
                        own - {"extra_engine_options"},
                    )
                except Exception:  # a missing driver and the like: start() reports it
                    pass
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
        if run_retention is not None and (
            isinstance(run_retention, bool)
            or not isinstance(run_retention, (int, float))
            or run_retention <= 0
        ):
            raise ValueError(
                f"run_retention must be a number of seconds > 0 or None, got {run_retention!r}"
            )
        #: seconds finished run records are kept (by their scheduled time); None: for ever
        self.run_retention = None if run_retention is None else float(run_retention)
        self._next_purge = 0.0
        #: PostgreSQL channel where added and updated tasks are announced
        self.channel = f"asyncz_{tablename}"[:63]
        self.notify = notify
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self.engine: Engine | None = None
        self._sqlite = self._url.get_backend_name() == "sqlite"
        # A SQLite memory database is one connection shared by every thread: take turns.
        self._local_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        # Ids compare by code point everywhere, as in Python and the other stores: case and
        # trailing spaces matter ("Job", "job" and "job " are three tasks).
        self._use_tables(Tables(tablename))
        # task id -> (owner, fencing token) of the leases this instance took and still holds
        self._held: dict[str, tuple[str, str]] = {}
        self._held_lock = threading.Lock()

    def _use_tables(self, tables: Tables) -> None:
        self.tables = tables
        self.table = tables.tasks
        self.version_table = tables.version
        self.instances_table = tables.instances
        self.runs_table = tables.runs
        self.metadata = tables.metadata

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
        if self._sqlite:
            prepare_sqlite(engine, self.sqlite_synchronous)
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
        assert self.engine is not None
        listen(self.engine, self.channel, stop, self.notified)

    def _create_schema(self) -> None:
        assert self.engine is not None
        if self.engine.dialect.name in ("mysql", "mariadb"):
            with self.engine.connect() as conn:
                collation = exact_collation(conn)
            if collation != MARIADB_COLLATION:
                self._use_tables(Tables(self.tablename, collation))
        for attempt in range(8):
            try:
                # One write transaction (BEGIN IMMEDIATE on SQLite) under a lock every
                # starting process takes: several processes starting at once take turns.
                with self._write() as conn:
                    version = ensure_schema(conn, self.tables)
                break
            except (OperationalError, ProgrammingError, IntegrityError):
                # Another process created or upgraded the table between our check and our
                # DDL (MariaDB's DDL commits on its own): look again.
                if attempt == 7:
                    raise
                time.sleep(0.05 * (attempt + 1))
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"the table {self.tablename!r} has schema version {version}, written by a newer "
                f"asyncz (this one knows version {SCHEMA_VERSION}); upgrade asyncz to use it"
            )

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

    def _row(self, task: Task, data: bytes, version: int) -> dict[str, Any]:
        next_time = task.next_run_time
        return {
            "id": task.id,
            "next_run_time": utc_timestamp_us(next_time) if next_time is not None else None,
            "version": version,
            "lease_owner": None,
            "lease_token": None,
            "lease_until": None,
            "state": data,
        }

    def add_task(self, task: Task) -> None:
        self.add_tasks([task])

    def add_tasks(self, tasks: Sequence[Task]) -> None:
        """Add tasks in one transaction: all are added, or (on a conflict) none."""
        for task in tasks:
            problem = task_id_problem(task.id) if isinstance(task.id, str) else "id must be a str"
            if problem is not None:
                raise ValueError(f"{problem}\ngot {task.id!r}")
        encoded = [self.encode(task) for task in tasks]
        versions = [new_store_version() for _ in tasks]
        rows = [
            self._row(task, enc[0], version)
            for task, enc, version in zip(tasks, encoded, versions, strict=True)
        ]
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
        for task, enc, version in zip(tasks, encoded, versions, strict=True):
            self.stored(task, enc)
            object.__setattr__(task, "store_version", version)
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

    def update_task(self, task: Task, *, keep_schedule: bool = False) -> None:
        """Replace a stored task.

        Conditional on ``task.store_version`` when it is set: ``TaskConflictError`` when the
        stored task changed since (``None``: unconditional). ``TaskLookupError`` when missing.
        With ``keep_schedule`` only the record changes: the stored run time and lease stay as
        they are (and ``task.next_run_time`` is set to the stored one); otherwise the run time
        is written from the task and the lease ends (its holder's release is refused).
        """
        encoded = self.encode(task)
        t = self.table.c
        task_id = task.id
        expected = task.store_version
        values: dict[str, Any] = {"state": encoded[0]}
        if not keep_schedule:
            next_time = task.next_run_time
            values.update(
                next_run_time=utc_timestamp_us(next_time) if next_time is not None else None,
                lease_owner=None,
                lease_token=None,
                lease_until=None,
            )
        stored_run_us: int | None = None
        with self._write() as conn:
            statement = sa.update(self.table)
            if expected is not None:
                statement = statement.where(t.id == task_id, t.version == expected).values(
                    version=expected + 1, **values
                )
            else:
                statement = statement.where(t.id == task_id).values(version=t.version + 1, **values)
            if conn.dialect.update_returning:
                row = conn.execute(statement.returning(t.version, t.next_run_time)).first()
            else:
                result = conn.execute(statement)
                row = None
                if result.rowcount:
                    # Our own write, read back in its transaction (the row stays locked).
                    row = conn.execute(
                        sa.select(t.version, t.next_run_time).where(t.id == task_id)
                    ).first()
            if row is None:
                found = (
                    None
                    if expected is None
                    else conn.execute(sa.select(t.version).where(t.id == task_id)).scalar()
                )
                if found is None:
                    raise TaskLookupError(task_id, self.alias)
                raise TaskConflictError(task_id, self.alias, expected=expected, found=int(found))
            new_version, stored_run_us = int(row[0]), row[1]
            if not keep_schedule:
                self._announce(conn, [task])
        if not keep_schedule:
            with self._held_lock:
                self._held.pop(task_id, None)
        self.stored(task, encoded)
        object.__setattr__(task, "store_version", new_version)
        if keep_schedule:
            _set_run_time(task, stored_run_us)

    def delete_task(self, task_id: str) -> None:
        if task_id_problem(task_id) is not None:
            raise TaskLookupError(task_id, self.alias)
        self.forget([task_id])
        with self._held_lock:
            self._held.pop(task_id, None)
        with self._write() as conn:
            result = conn.execute(sa.delete(self.table).where(self.table.c.id == task_id))
        if result.rowcount == 0:
            raise TaskLookupError(task_id, self.alias)

    def remove_all_tasks(self) -> None:
        self.forget()
        with self._held_lock:
            self._held.clear()
        with self._write() as conn:
            conn.execute(sa.delete(self.table))

    def _columns(self) -> tuple[Any, ...]:
        t = self.table.c
        return (t.id, t.state, t.next_run_time, t.version)

    def _restore_rows(self, rows: Sequence[Any]) -> list[Task]:
        """Restore ``(id, state, next_run_time, version)`` rows, with their versions."""
        tasks = self.restore_all((row[0], row[1], row[2]) for row in rows)
        if tasks:
            versions = {row[0]: row[3] for row in rows}
            setattr_ = object.__setattr__
            for task in tasks:
                setattr_(task, "store_version", int(versions[task.id]))
        return tasks

    def lookup_task(self, task_id: str) -> Task | None:
        if not isinstance(task_id, str) or task_id_problem(task_id) is not None:
            return None  # no stored task has it (and a server might choke on it)
        with self._read() as conn:
            row = conn.execute(
                sa.select(*self._columns()).where(self.table.c.id == task_id)
            ).first()
        if row is None:
            return None
        tasks = self._restore_rows([row])
        return tasks[0] if tasks else None

    def get_all_tasks(self) -> list[Task]:
        with self._read() as conn:
            rows = conn.execute(sa.select(*self._columns())).all()
        return sorted(self._restore_rows(rows), key=order_key)

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
        return self._restore_rows(rows)

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
        token = uuid.uuid4().hex
        lease_values = {"lease_owner": owner, "lease_token": token, "lease_until": until}
        acquired: list[Task] = []
        reports: list[tuple[str, str]] = []
        reader = self.reader()
        setattr_ = object.__setattr__
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
            skip_locked = has_skip_locked(conn)
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
                            .values(**lease_values)
                            .returning(*self._columns())
                        ).all(),
                        key=lambda row: (row[2], row[0]),
                    )
                else:
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
                        # Inside BEGIN IMMEDIATE nobody else writes, so "every free due row up
                        # to the last one read" is exactly the rows read: one indexed range
                        # update instead of a list of ids.
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
                    conn.execute(sa.update(self.table).where(where).values(**lease_values))
                for row in rows:
                    # A record that cannot be restored keeps its lease: it is tried again when
                    # the lease runs out, and meanwhile does not block the tasks behind it.
                    task = self.restore(row[0], row[1], row[2], reports, reader)
                    if task is not None:
                        setattr_(task, "store_version", int(row[3]))
                        acquired.append(task)
                if len(rows) < wanted:
                    break
        if acquired:
            held = (owner, token)
            with self._held_lock:
                for task in acquired:
                    self._held[task.id] = held
        self.report(reports)
        return acquired

    def _take_tokens(self, owner: str, task_ids: Iterator[str] | Sequence[str]) -> dict[str, str]:
        """Forget and return the tokens of ``owner``'s leases on ``task_ids`` held here."""
        tokens: dict[str, str] = {}
        with self._held_lock:
            held = self._held
            for task_id in task_ids:
                entry = held.get(task_id)
                if entry is not None and entry[0] == owner:
                    del held[task_id]
                    tokens[task_id] = entry[1]
        return tokens

    def _release(
        self,
        conn: Connection,
        owner: str,
        next_run_times: Mapping[str, datetime | None],
        tokens: Mapping[str, str],
    ) -> list[str]:
        """End the leases on the tasks whose row still carries the token this instance got,
        recording their next run times (deleting those with none); the ids released."""
        t = self.table.c
        pg = conn.dialect.name == "postgresql"
        # PostgreSQL: arrays as parameters (long lists of parameters cost more to plan).
        ids = t.id == sa.func.any(pg_array(list(tokens), sa.Text)) if pg else t.id.in_(list(tokens))
        # Locked rows (SQLite: BEGIN IMMEDIATE), so that what is read stays true until commit.
        held = {
            row[0]
            for row in conn.execute(
                sa.select(t.id, t.lease_token).where(ids, t.lease_owner == owner).with_for_update()
            )
            if row[1] is not None and tokens.get(row[0]) == row[1]
        }
        if not held:
            return []
        updates = [
            {"b_id": task_id, "b_token": tokens[task_id], "b_next": utc_timestamp_us(next_time)}
            for task_id, next_time in next_run_times.items()
            if next_time is not None and task_id in held
        ]
        finished = [
            task_id
            for task_id, next_time in next_run_times.items()
            if next_time is None and task_id in held
        ]
        if updates and pg:
            # One statement whatever the batch (the rows as arrays); otherwise as below.
            keys = pg_unnest(
                ("k_id", [u["b_id"] for u in updates], sa.Text),
                ("k_token", [u["b_token"] for u in updates], sa.Text),
                ("k_next", [u["b_next"] for u in updates], sa.BigInteger),
            )
            conn.execute(
                sa.update(self.table)
                .where(t.id == keys.c.k_id, t.lease_token == keys.c.k_token)
                .values(
                    next_run_time=keys.c.k_next,
                    version=t.version + 1,
                    lease_owner=None,
                    lease_token=None,
                    lease_until=None,
                )
            )
        elif updates:
            # A schedule write: the version moves on, so a writer who read the task before
            # this release cannot put the old run time back.
            conn.execute(
                sa.update(self.table)
                .where(t.id == sa.bindparam("b_id"), t.lease_token == sa.bindparam("b_token"))
                .values(
                    next_run_time=sa.bindparam("b_next"),
                    version=t.version + 1,
                    lease_owner=None,
                    lease_token=None,
                    lease_until=None,
                ),
                updates,
            )
        if finished:
            self.forget(finished)
            conn.execute(sa.delete(self.table).where(t.id.in_(finished)))
        return [task_id for task_id in next_run_times if task_id in held]

    def release_tasks(self, owner: str, next_run_times: Mapping[str, datetime | None]) -> list[str]:
        """End ``owner``'s leases taken through this instance, where they still hold: a task
        updated with a schedule change, deleted, or leased again (by anyone, the same owner
        after the lease ran out included) since is left alone and not among the ids returned.
        """
        if not next_run_times:
            return []
        tokens = self._take_tokens(owner, list(next_run_times))
        if not tokens:
            return []
        with self._write() as conn:
            return self._release(conn, owner, next_run_times, tokens)

    def renew_leases(self, owner: str, lease: float) -> int:
        """Push the end of ``owner``'s leases this instance still holds to ``lease`` seconds
        from now (the store's clock); how many rows were renewed. Thread-safe."""
        with self._held_lock:
            held = [(task_id, token) for task_id, (o, token) in self._held.items() if o == owner]
        if not held:
            return 0
        t = self.table.c
        tokens = sorted({token for _, token in held})
        where = [t.lease_token.in_(tokens), t.lease_owner == owner]
        if len(held) <= _NOT_IN_MAX * 2:
            where.append(t.id.in_([task_id for task_id, _ in held]))
        with self._write() as conn:
            until = self._now(conn) + int(lease * 1_000_000)
            result = conn.execute(sa.update(self.table).where(*where).values(lease_until=until))
        return int(result.rowcount or 0)

    # -- instances: the schedulers sharing the table ----------------------------------------

    def _now(self, conn: Connection) -> Any:
        """The store's clock (integer microseconds) as a SQL expression."""
        return store_now(conn.dialect.name)

    def _lock_mode(self, conn: Connection) -> str | None:
        """How a transaction takes rows others may be taking: skipping rows locked elsewhere,
        waiting for them (older MariaDB/MySQL), or neither (SQLite: the only writer)."""
        if has_skip_locked(conn):
            return "skip_locked"
        return None if self._sqlite else "for_update"

    def _end_leases_of(self, conn: Connection, owners: Sequence[str]) -> None:
        """Clear every lease held by ``owners``: their tasks are due again at once (their run
        times unchanged). Read through the lease index: only leased rows are looked at."""
        t = self.table.c
        conn.execute(
            sa.update(self.table)
            .where(t.lease_until.is_not(None), t.lease_owner.in_(list(owners)))
            .values(lease_owner=None, lease_token=None, lease_until=None)
        )

    def register_instance(self, identity: str, info: Mapping[str, Any]) -> None:
        """Register (or refresh) the scheduler ``identity`` with a heartbeat of now."""
        with self._write() as conn:
            upsert_instance(conn, self.instances_table, identity, info, self._now(conn))

    def heartbeat(self, identity: str, info: Mapping[str, Any], dead_after: float) -> list[str]:
        """Refresh ``identity``'s heartbeat (registering it again if a peer removed it) and
        declare dead the schedulers whose heartbeat is older than ``dead_after`` seconds by the
        store's clock: they are removed, their leases end (their tasks are due at once), and
        their ``started`` runs are abandoned or wait for a rerun, per their ``on_crash``. One
        transaction; each dead scheduler is declared dead by exactly one caller (its row is
        locked, and callers skip rows another caller locked; SQLite has one writer at a time).
        Finished run records older than ``run_retention`` are purged every few minutes."""
        dead_us = int(dead_after * 1_000_000)
        with self._write() as conn:
            now = self._now(conn)
            upsert_instance(conn, self.instances_table, identity, info, now)
            dead = claim_dead(
                conn, self.instances_table, identity, now - dead_us, self._lock_mode(conn)
            )
            if dead:
                self._end_leases_of(conn, dead)
            runs.resolve_runs_of(
                conn, self.runs_table, self.instances_table, dead, now, now - dead_us
            )
        self._purge_if_due()
        return dead

    def unregister_instance(self, identity: str) -> None:
        """Remove ``identity`` (a clean shutdown) and end its leases."""
        inst = self.instances_table.c
        with self._write() as conn:
            conn.execute(sa.delete(self.instances_table).where(inst.identity == identity))
            self._end_leases_of(conn, [identity])
        with self._held_lock:
            for task_id in [k for k, (o, _) in self._held.items() if o == identity]:
                del self._held[task_id]

    def get_instances(self) -> list[tuple[str, dict[str, Any], float]]:
        """Every registered scheduler: (identity, info, seconds since its heartbeat by the
        store's clock), by identity."""
        with self._read() as conn:
            return list_instances(conn, self.instances_table, self._now(conn))

    # -- run records ------------------------------------------------------------------------

    def fire_tasks(self, owner: str, fires: Sequence[Fire]) -> dict[str, FireResult]:
        """Release ``owner``'s leases as :meth:`release_tasks` does and, in the same
        transaction, record each run time to start (``started``; ``skipped`` over the task's
        ``max_instances`` of started runs across every scheduler; nothing for a fire time
        already recorded, listed as a duplicate). A result per fire whose lease still held."""
        if not fires:
            return {}
        by_id = {fire.task_id: fire for fire in fires}
        tokens = self._take_tokens(owner, list(by_id))
        if not tokens:
            return {}
        next_times = {task_id: by_id[task_id].next_run_time for task_id in tokens}
        # A run that may be rerun keeps the record of a task its fire deletes (a one-off).
        rerun_ended = sorted(
            task_id
            for task_id in tokens
            if by_id[task_id].on_crash == "rerun"
            and by_id[task_id].next_run_time is None
            and by_id[task_id].run_times
        )
        with self._write() as conn:
            kept: dict[str, bytes] = {}
            if rerun_ended:
                t = self.table.c
                kept = {
                    row[0]: bytes(row[1])
                    for row in conn.execute(sa.select(t.id, t.state).where(t.id.in_(rerun_ended)))
                }
            released = self._release(conn, owner, next_times, tokens)
            if not released:
                return {}
            return runs.record_fires(
                conn,
                self.runs_table,
                owner,
                [by_id[i] for i in released],
                self._now(conn),
                kept,
            )

    def finish_runs(self, outcomes: Sequence[RunOutcome]) -> None:
        """Record how runs ended (one transaction), each only where its record is still
        ``started`` by ``outcome.instance``; others are left as they are."""
        if outcomes:
            with self._write() as conn:
                runs.finish_runs(conn, self.runs_table, outcomes)

    def get_runs(self, task_id: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The newest run records (by scheduled fire time, ties by task id), of ``task_id``
        or of every task."""
        if task_id is not None and (not isinstance(task_id, str) or task_id_problem(task_id)):
            return []
        with self._read() as conn:
            return runs.select_runs(conn, self.runs_table, task_id, max(int(limit), 0))

    def take_reruns(self, owner: str, limit: int) -> list[tuple[Task, datetime]]:
        """Take up to ``limit`` runs that dead schedulers left for a rerun: each is handed out
        once, as attempt 2 by ``owner``; the task and its fire time. A run whose task is gone
        (or cannot be restored) is abandoned instead."""
        taken: list[tuple[Task, datetime]] = []
        reports: list[tuple[str, str]] = []
        with self._write() as conn:
            keys = runs.take_reruns(conn, self.runs_table, owner, limit, self._lock_mode(conn))
            if not keys:
                return taken
            t = self.table.c
            stored = {
                row[0]: row
                for row in conn.execute(
                    sa.select(*self._columns()).where(t.id.in_(sorted({k[0] for k in keys})))
                )
            }
            reader = self.reader()
            tasks: dict[str, Task | None] = {}
            for task_id, row in stored.items():
                task = self.restore(row[0], row[1], row[2], reports, reader)
                if task is not None:
                    object.__setattr__(task, "store_version", int(row[3]))
                tasks[task_id] = task
            # Tasks deleted since (a one-off by its own fire): from the record kept with the run
            kept_tasks: dict[tuple[str, int], Task | None] = {}
            for task_id, us in keys:
                if task_id in stored:
                    continue
                r = self.runs_table.c
                state = conn.execute(
                    sa.select(r.task_state).where(r.task_id == task_id, r.scheduled_at == us)
                ).scalar()
                if state is not None:
                    kept_tasks[(task_id, us)] = self.restore(
                        task_id, bytes(state), None, reports, reader
                    )
            reasons = dict(reports)
            given: list[tuple[str, int]] = []
            given_up: list[tuple[str, int, str | None]] = []
            for task_id, us in keys:
                task = tasks.get(task_id) or kept_tasks.get((task_id, us))
                if task is None:
                    reason = reasons.get(task_id)
                    given_up.append(
                        (task_id, us, f"cannot be restored: {reason}" if reason else None)
                    )
                    continue
                given.append((task_id, us))
                taken.append((task, from_timestamp_us(us)))  # type: ignore[arg-type]
            now = self._now(conn)
            runs.give_reruns(conn, self.runs_table, owner, given, now)
            runs.abandon_reruns(conn, self.runs_table, given_up, now)
        self.report(reports)
        return taken

    def _purge_if_due(self) -> None:
        """Delete finished run records older than ``run_retention``, at most every few
        minutes (best effort: a failure is logged and tried again next time)."""
        retention = self.run_retention
        if retention is None or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + _PURGE_EVERY
        try:
            with self._write() as conn:
                before = self._now(conn) - int(retention * 1_000_000)
                purged = runs.purge_runs(conn, self.runs_table, before)
            if purged:
                self.logger.debug("Purged %d run records of %r", purged, self.tablename)
        except Exception:
            self.logger.warning("Purging old run records failed", exc_info=True)

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
    return from_timestamp_us(min(candidates))


#: Kept under its former name.
_has_skip_locked = has_skip_locked


def _set_run_time(task: Task, run_us: int | None) -> None:
    """Set ``task.next_run_time`` to the stored microseconds, in its trigger's zone."""
    zone = getattr(task.trigger, "timezone", None)
    next_time = from_timestamp_us(
        int(run_us) if run_us is not None else None,
        zone if isinstance(zone, tzinfo) else timezone.utc,
    )
    object.__setattr__(task, "next_run_time", next_time)
