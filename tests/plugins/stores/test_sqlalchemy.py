"""The SQL store's own promises: WAL and BEGIN IMMEDIATE on SQLite, indexed queries, a schema
version, bulk adds in one transaction, and no task leased twice by concurrent schedulers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

sa = pytest.importorskip("sqlalchemy")

from asyncz.core.errors import ConflictIdError  # noqa: E402
from asyncz.plugins.stores.sqlalchemy.store import SCHEMA_VERSION, SQLAlchemyStore  # noqa: E402
from asyncz.tasks import Task  # noqa: E402
from asyncz.triggers import IntervalTrigger  # noqa: E402
from tests.plugins.stores import jobs  # noqa: E402
from tests.plugins.stores.backends import SQL, Backend, make_backend  # noqa: E402

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def make(task_id: str, offset: float | None) -> Task:
    return Task(
        id=task_id,
        fn=jobs.job,
        trigger=IntervalTrigger(seconds=60, start_at=T0, timezone="UTC"),
        next_run_time=None if offset is None else T0 + timedelta(seconds=offset),
    )


@contextmanager
def sql_backend(name: str, tmp_path: Path) -> Iterator[Backend]:
    """``make_backend`` for a SQL backend, also dropping the tables of schema 2 it adds."""
    with make_backend(name, tmp_path) as b:
        if name != "sqlite":
            url, table = b.options["database"], b.options["tablename"]

            def drop_cluster_tables() -> None:
                engine = sa.create_engine(url)
                with engine.begin() as conn:
                    for suffix in ("_instances", "_runs"):
                        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}{suffix}")
                engine.dispose()

            b.cleanups.insert(0, drop_cluster_tables)
        yield b


@pytest.fixture(params=SQL)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with sql_backend(request.param, tmp_path) as b:
        yield b


def started(backend: Backend, **options: Any) -> SQLAlchemyStore:
    store = backend.make(**options)
    store.start(None, "default")
    return store  # type: ignore[no-any-return]


def test_sqlite_uses_wal_and_begin_immediate_for_writes(tmp_path: Path) -> None:
    store = SQLAlchemyStore(f"sqlite:///{tmp_path / 'x.db'}")
    store.start(None, "default")
    assert store.engine is not None
    statements: list[str] = []
    sa.event.listen(
        store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]), named=False
    )
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    store.add_task(make("a", 0))
    assert [t.id for t in store.acquire_due_tasks(T0, "me", 10, 30)] == ["a"]
    store.get_next_run_time()
    assert statements.count("BEGIN IMMEDIATE") == 2  # add and acquire
    # A wake-up with nothing due takes no write lock, and reads are single statements.
    before = len(statements)
    assert store.acquire_due_tasks(T0, "me", 10, 30) == []
    store.get_next_run_time()
    assert len(statements) - before == 2
    assert not any(s.startswith("BEGIN") for s in statements[before:])
    store.shutdown()


def test_sqlite_synchronous_can_be_full(tmp_path: Path) -> None:
    store = SQLAlchemyStore(f"sqlite:///{tmp_path / 'x.db'}", sqlite_synchronous="full")
    store.start(None, "default")
    assert store.engine is not None
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    store.shutdown()
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        SQLAlchemyStore("sqlite://", sqlite_synchronous="sometimes")


def test_due_queries_read_the_index(tmp_path: Path) -> None:
    store = SQLAlchemyStore(f"sqlite:///{tmp_path / 'x.db'}", tablename="tasks")
    store.start(None, "default")
    assert store.engine is not None
    with store.engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM tasks WHERE next_run_time <= 5 AND "
            "coalesce(lease_until, 0) <= 5 ORDER BY next_run_time, id LIMIT 10"
        ).all()
    assert "ix_tasks_due" in " ".join(str(row) for row in plan)
    store.shutdown()


def test_postgresql_knows_a_bulk_loaded_table_at_once(tmp_path: Path) -> None:
    """After a bulk add the planner must walk the due index, not read every unleased row."""
    with sql_backend("postgresql", tmp_path) as backend:
        store = started(backend)
        assert store.engine is not None
        store.add_tasks([make(f"t{i:04}", 3600 + i) for i in range(600)])
        with store.engine.connect() as conn:
            analyzed = conn.execute(
                sa.text("SELECT reltuples FROM pg_class WHERE relname = :name"),
                {"name": store.tablename},
            ).scalar()
            plan = conn.execute(
                sa.text(
                    f"EXPLAIN SELECT id FROM {store.tablename} WHERE next_run_time <= 5 AND "
                    "coalesce(lease_until, 0) <= 5 ORDER BY next_run_time, id LIMIT 1000"
                )
            ).all()
        store.shutdown()
    assert analyzed == 600
    assert f"ix_{store.tablename}_due" in " ".join(str(row) for row in plan)


def test_schema_and_version_row(backend: Backend) -> None:
    store = started(backend)
    assert store.engine is not None
    inspector = sa.inspect(store.engine)
    columns = {c["name"]: c for c in inspector.get_columns(store.tablename)}
    assert set(columns) == {
        "id",
        "next_run_time",
        "version",
        "lease_owner",
        "lease_token",
        "lease_until",
        "state",
    }
    assert isinstance(columns["next_run_time"]["type"], sa.BigInteger | sa.Integer)
    assert isinstance(columns["version"]["type"], sa.BigInteger | sa.Integer)
    assert not columns["version"]["nullable"]
    assert inspector.has_table(f"{store.tablename}_instances")
    assert inspector.has_table(f"{store.tablename}_runs")
    if backend.name == "mysql":
        assert columns["id"]["type"].collation == "utf8mb4_nopad_bin"  # binary, NO PAD
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(store.tablename)}
    assert indexes[f"ix_{store.tablename}_due"] == ["next_run_time", "id"]
    store.add_task(make("a", 0.000001))
    with store.engine.connect() as conn:
        value = conn.execute(sa.select(store.table.c.next_run_time)).scalar()
        assert value == 1795867200000001  # integer microseconds
        conn.execute(sa.update(store.version_table).values(version=SCHEMA_VERSION + 1))
        conn.commit()
    store.shutdown()
    with pytest.raises(RuntimeError, match="newer asyncz"):
        started(backend)


def test_a_record_copied_under_another_id_is_quarantined(backend: Backend) -> None:
    store = started(backend)
    store.add_tasks([make("a", 0), make("b", 1)])
    table = store.table
    assert store.engine is not None
    with store.engine.begin() as conn:  # by hand: a's record written into b's row
        data = conn.execute(sa.select(table.c.state).where(table.c.id == "a")).scalar_one()
        conn.execute(sa.update(table).where(table.c.id == "b").values(state=data))
    store.forget()  # as if read by another process
    assert [t.id for t in store.get_due_tasks(T0 + timedelta(seconds=5))] == ["a"]
    assert "belongs to task 'a'" in store.get_quarantined()["b"]
    store.shutdown()


def test_add_tasks_is_all_or_nothing(backend: Backend) -> None:
    store = started(backend)
    store.add_task(make("taken", 0))
    with pytest.raises(ConflictIdError, match="'taken'"):
        store.add_tasks([make("new-1", 0), make("taken", 0), make("new-2", 0)])
    assert [t.id for t in store.get_all_tasks()] == ["taken"]
    with pytest.raises(ConflictIdError, match="'twice'"):
        store.add_tasks([make("twice", 0), make("twice", 1)])
    store.shutdown()


def test_concurrent_schedulers_never_get_the_same_task(backend: Backend) -> None:
    setup = started(backend)
    setup.add_tasks([make(f"t{i:03d}", i % 7) for i in range(120)])
    got: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        store = started(backend)  # its own engine and connections, like another process
        try:
            while True:
                tasks = store.acquire_due_tasks(T0 + timedelta(seconds=10), f"w{n}", 7, 60)
                if not tasks:
                    break
                with lock:
                    got.extend(t.id for t in tasks)
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.shutdown()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sorted(got) == [f"t{i:03d}" for i in range(120)]  # each exactly once
    setup.shutdown()


def test_servers_are_pinged_before_use(backend: Backend) -> None:
    store = started(backend)
    assert store.engine is not None
    assert store.engine.pool._pre_ping is (backend.name != "sqlite")  # type: ignore[attr-defined]
    store.shutdown()


def test_engine_options_and_given_engines(tmp_path: Path) -> None:
    store = SQLAlchemyStore(f"sqlite:///{tmp_path / 'a.db'}", echo=False, pool_pre_ping=True)
    store.start(None, "default")
    assert store.engine is not None and store.engine.pool._pre_ping  # type: ignore[attr-defined]
    store.shutdown()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    given = SQLAlchemyStore(engine, tablename="mine")
    given.start(None, "default")
    given.add_task(make("a", 0))
    given.shutdown()
    assert given.engine is engine  # not disposed: it is the caller's
    with pytest.raises(TypeError, match="pool_size"):
        SQLAlchemyStore(engine, pool_size=3)
    with pytest.raises(TypeError, match="database="):
        SQLAlchemyStore()
    engine.dispose()


def test_an_in_memory_database_is_shared_by_threads() -> None:
    store = SQLAlchemyStore("sqlite://")
    store.start(None, "default")
    store.add_task(make("a", 0))
    seen: list[Any] = []
    thread = threading.Thread(target=lambda: seen.append(store.lookup_task("a")))
    thread.start()
    thread.join()
    assert seen[0].id == "a"
    store.shutdown()


@pytest.mark.parametrize(
    ("name", "mariadb", "version", "expected"),
    [
        ("postgresql", False, (16, 1), True),
        ("mysql", True, (10, 11, 19), True),
        ("mysql", True, (10, 5, 2), False),
        ("mysql", False, (8, 0, 36), True),
        ("mysql", False, (5, 7, 44), False),
        ("sqlite", False, (3, 40, 1), False),
    ],
)
def test_skip_locked_only_where_the_server_has_it(
    name: str, mariadb: bool, version: tuple[int, ...], expected: bool
) -> None:
    from types import SimpleNamespace

    from asyncz.plugins.stores.sqlalchemy.store import _has_skip_locked

    dialect = SimpleNamespace(name=name, is_mariadb=mariadb, server_version_info=version)
    assert _has_skip_locked(SimpleNamespace(dialect=dialect)) is expected  # type: ignore[arg-type]
