"""Stores written by the real Asyncz 0.17.2 (``tests/compat/fixtures``, made by
``fixtures/make_asyncz_records.py``) are read by asyncz: every record, every trigger type, the
SQL table upgraded in place (SQLite from the fixture, PostgreSQL/MariaDB loaded with its rows),
the file store's directory; due tasks then fire."""

from __future__ import annotations

import asyncio
import json
import operator
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from asyncz.core.task import Task, TaskState
from asyncz.plugins.serializers.pickle import PickleSerializer
from asyncz.schedulers import AsyncIOScheduler
from asyncz.stores.persistence import TaskStateEnvelope
from tests.compat.fixtures import asyncz_targets

FIXTURES = Path(__file__).parent / "fixtures"
SQLITE = FIXTURES / "asyncz_0_17_2.sqlite"
FILES = FIXTURES / "asyncz_0_17_2_files"
RECORDS = FIXTURES / "asyncz_0_17_2_records"
EXPECTED = {
    t["id"]: t for t in json.loads((FIXTURES / "asyncz_0_17_2_tasks.json").read_text())["tasks"]
}
SERVERS = {
    "postgresql": os.environ.get(
        "ASYNCZ_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get("ASYNCZ_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}


def resolve(reference: str) -> Any:
    module, _, name = reference.partition(":")
    obj: Any = __import__(module, fromlist=["_"])
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def check_task(task: Task, *, exact_time: bool = True, other_run: bool = False) -> None:
    """``task`` is the one Asyncz wrote (tasks.json), field by field. ``other_run``: written
    by another run of the generator (the file store), so a jittered run time differs."""
    want = EXPECTED[task.id]
    assert task.name == want["name"]
    assert task.fn is resolve(want["fn"])
    assert repr(tuple(task.args)) == want["args"]
    assert repr(dict(task.kwargs)) == want["kwargs"]
    assert repr(task.trigger) == want["trigger"]
    assert str(task.trigger) == want["trigger_str"]
    assert task.executor == want["executor"]
    assert task.coalesce == want["coalesce"]
    assert task.max_instances == want["max_instances"]
    assert task.mistrigger_grace_time == want["mistrigger_grace_time"]
    if want["next_run_time"] is None:
        assert task.next_run_time is None
    else:
        wanted = datetime.fromisoformat(want["next_run_time"])
        assert task.next_run_time is not None
        jitter = getattr(task.trigger, "jitter", None) or 0
        if other_run and jitter:
            assert abs((task.next_run_time - wanted).total_seconds()) <= jitter
        elif exact_time:
            assert task.next_run_time == wanted
        else:  # servers keep Asyncz's seconds as a BIGINT: rounded to a second
            assert abs((task.next_run_time - wanted).total_seconds()) < 1


def test_the_fixtures_hold_every_trigger_type() -> None:
    kinds = {want["trigger"].split(" ")[0].split("(")[0] for want in EXPECTED.values()}
    assert kinds == {
        "<CronTrigger",
        "<IntervalTrigger",
        "<DateTrigger",
        "<AndTrigger",
        "<OrTrigger",
    }
    assert resolve("operator:add") is operator.add


@pytest.mark.parametrize("path", sorted(RECORDS.glob("*.pickle")), ids=lambda p: p.stem)
def test_each_pickled_record(path: Path) -> None:
    record = PickleSerializer().loads(path.read_bytes())
    assert type(record) is TaskStateEnvelope
    assert (record.entity, record.version, record.shape) == ("task_state", 1, "pydantic")
    state = record.payload
    assert type(state) is TaskState
    assert state.scheduler is None and state.store_alias is None
    task = Task.__new__(Task)
    task.__setstate__(state)
    task_id = path.name.split(".")[0]
    assert task.id == task_id
    if task_id == "shutdown":  # Asyncz cannot read it back, so it is in no store
        assert repr(task.trigger) == "<ShutdownTrigger>"
        assert (task.name, task.fn) == ("at shutdown", asyncz_targets.tick)
        return
    check_task(task)
    # and asyncz's own form of the trigger round-trips
    again = type(task.trigger).__new__(type(task.trigger))
    again.__setstate__(task.trigger.__getstate__())
    assert repr(again) == repr(task.trigger)


def test_the_trigger_states_are_readers_not_asynczs_models() -> None:
    from asyncz import datastructures

    for name in ("CronState", "IntervalState", "DateState", "CombinationState"):
        cls = getattr(datastructures, name)
        assert issubclass(cls, dict)  # what asyncz's trigger __setstate__ receives
    assert datastructures.TaskState is TaskState


def run_scheduler(stores: dict[str, Any], seconds: float) -> list[Task]:
    """Start a scheduler on ``stores``, read its tasks, run it ``seconds``; its tasks."""

    async def main() -> list[Task]:
        scheduler = AsyncIOScheduler(stores=stores, timezone="UTC")
        scheduler.start(paused=seconds == 0)
        tasks = scheduler.get_tasks()
        if seconds:
            await asyncio.sleep(seconds)
        scheduler.shutdown(wait=True)
        return tasks

    return asyncio.run(main())


def check_store(
    stores: dict[str, Any], *, exact_time: bool = True, other_run: bool = False
) -> None:
    tasks = run_scheduler(stores, 0)
    assert sorted(t.id for t in tasks) == sorted(EXPECTED)
    for task in tasks:
        check_task(task, exact_time=exact_time, other_run=other_run)
    assert {t.id for t in tasks if t.next_run_time is None} == {"paused", "and"}
    # Due tasks fire: the one-off date task (once, then gone) and the yearly cron task (missed
    # since 2020, coalesced).
    asyncz_targets.CALLS.clear()
    tasks = run_scheduler(stores, 1.5)
    calls = list(asyncz_targets.CALLS)
    assert ("greet", ("date-due",), {"x": 1}) in calls
    assert ("tick", ("cron-due",), {}) in calls
    assert {c[0] for c in calls} == {"greet", "tick"}
    left = run_scheduler(stores, 0)
    assert "date-due" not in {t.id for t in left}
    cron_due = next(t for t in left if t.id == "cron-due")
    assert cron_due.next_run_time is not None and cron_due.next_run_time > datetime.now(
        cron_due.next_run_time.tzinfo
    )


def sql_columns(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def schema_version(url: str, table: str) -> int | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                f"SELECT version FROM {table}_version WHERE name = 'schema'"
            ).first()
            return None if row is None else int(row[0])
    finally:
        engine.dispose()


ALL_COLUMNS = {
    "id",
    "next_run_time",
    "version",
    "lease_owner",
    "lease_token",
    "lease_until",
    "state",
}


def test_sqlite_table_written_by_asyncz(tmp_path: Path) -> None:
    db = tmp_path / "asyncz.sqlite"
    shutil.copy(SQLITE, db)
    url = f"sqlite:///{db}"
    assert sql_columns(url, "asyncz_store") == {"id", "next_run_time", "state"}
    check_store({"default": {"type": "sqlalchemy", "database": url}})
    assert sql_columns(url, "asyncz_store") == ALL_COLUMNS
    assert schema_version(url, "asyncz_store") == 2


def test_sqlite_table_half_upgraded_repairs_itself(tmp_path: Path) -> None:
    # What the upgrade of earlier asyncz releases left: version 2 recorded, the lease columns
    # missing, run times still Asyncz's seconds.
    db = tmp_path / "asyncz.sqlite"
    shutil.copy(SQLITE, db)
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE asyncz_store ADD COLUMN version BIGINT NOT NULL DEFAULT 0")
        conn.execute("ALTER TABLE asyncz_store ADD COLUMN lease_token VARCHAR(32)")
        conn.execute(
            "CREATE TABLE asyncz_store_version (name VARCHAR(64) PRIMARY KEY, version INT)"
        )
        conn.execute("INSERT INTO asyncz_store_version VALUES ('schema', 2)")
    url = f"sqlite:///{db}"
    check_store({"default": {"type": "sqlalchemy", "database": url}})
    assert sql_columns(url, "asyncz_store") == ALL_COLUMNS


def test_upgrade_is_idempotent_on_converted_times(tmp_path: Path) -> None:
    # A crash after the conversion but before the columns (MariaDB commits DDL on its own):
    # the next start must not convert again.
    db = tmp_path / "asyncz.sqlite"
    shutil.copy(SQLITE, db)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE asyncz_store SET next_run_time = CAST(ROUND(next_run_time * 1000000) AS INT)"
        )
    check_store({"default": {"type": "sqlalchemy", "database": f"sqlite:///{db}"}})


def test_file_store_written_by_asyncz(tmp_path: Path) -> None:
    directory = tmp_path / "tasks"
    shutil.copytree(FILES, directory)
    check_store({"default": {"type": "file", "directory": str(directory)}}, other_run=True)


@pytest.fixture(params=sorted(SERVERS))
def server_table(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A fresh table on a server, created as Asyncz's SQLAlchemyStore creates it, holding the
    rows of the SQLite fixture (run times inserted as Asyncz sends them: float seconds)."""
    url = SERVERS[request.param]
    engine = sa.create_engine(url)
    try:
        engine.connect().close()
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{request.param} is not reachable: {exc}")
    name = f"asyncz_compat_{uuid.uuid4().hex[:8]}"
    metadata = sa.MetaData()
    # Asyncz 0.17.2's table, as asyncz/stores/sqlalchemy.py declares it
    table = sa.Table(
        name,
        metadata,
        sa.Column("id", sa.String(255), primary_key=True, nullable=False),
        sa.Column("next_run_time", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.LargeBinary(), nullable=False),
    )
    with sqlite3.connect(SQLITE) as conn:
        rows = conn.execute("SELECT id, next_run_time, state FROM asyncz_store").fetchall()
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            for task_id, next_run_time, state in rows:
                conn.execute(sa.insert(table).values(id=task_id, next_run_time=None, state=state))
                if next_run_time is not None:
                    conn.execute(
                        sa.text(f"UPDATE {name} SET next_run_time = :t WHERE id = :i"),
                        {"t": float(next_run_time), "i": task_id},
                    )
        yield url, name
    finally:
        with engine.begin() as conn:
            for suffix in ("_runs", "_instances", "_version", ""):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}{suffix}")
        engine.dispose()


def test_server_table_written_by_asyncz(server_table: tuple[str, str]) -> None:
    url, name = server_table
    assert sql_columns(url, name) == {"id", "next_run_time", "state"}
    check_store(
        {"default": {"type": "sqlalchemy", "database": url, "tablename": name}}, exact_time=False
    )
    assert sql_columns(url, name) == ALL_COLUMNS
    assert schema_version(url, name) == 2


def test_server_table_half_upgraded_repairs_itself(server_table: tuple[str, str]) -> None:
    url, name = server_table
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN version BIGINT NOT NULL DEFAULT 0")
        conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN lease_token VARCHAR(32)")
        conn.exec_driver_sql(
            f"CREATE TABLE {name}_version (name VARCHAR(64) PRIMARY KEY, version INT NOT NULL)"
        )
        conn.exec_driver_sql(f"INSERT INTO {name}_version VALUES ('schema', 2)")
    engine.dispose()
    check_store(
        {"default": {"type": "sqlalchemy", "database": url, "tablename": name}}, exact_time=False
    )
    assert sql_columns(url, name) == ALL_COLUMNS
