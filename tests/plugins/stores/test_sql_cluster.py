"""The SQL store in a cluster: versions and conditional updates, fencing tokens, one id rule,
the instance registry, and the in-place upgrade of a version-1 table — on SQLite, PostgreSQL
and MariaDB."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

sa = pytest.importorskip("sqlalchemy")

from asyncz.core.converters import utc_timestamp_us  # noqa: E402
from asyncz.core.errors import ConflictIdError, TaskConflictError, TaskLookupError  # noqa: E402
from asyncz.core.runs import Fire, FireResult, RunOutcome  # noqa: E402
from asyncz.plugins.stores.sqlalchemy import runs as sql_runs  # noqa: E402
from asyncz.plugins.stores.sqlalchemy.store import SCHEMA_VERSION, SQLAlchemyStore  # noqa: E402
from asyncz.tasks import Task  # noqa: E402
from asyncz.triggers import IntervalTrigger  # noqa: E402
from tests.plugins.stores import jobs  # noqa: E402
from tests.plugins.stores.backends import SQL, Backend  # noqa: E402
from tests.plugins.stores.test_sqlalchemy import sql_backend  # noqa: E402

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def make(task_id: str, offset: float | None, **changes: Any) -> Task:
    return Task(
        id=task_id,
        fn=jobs.job,
        trigger=IntervalTrigger(seconds=60, start_at=T0, timezone="UTC"),
        next_run_time=None if offset is None else T0 + timedelta(seconds=offset),
        **changes,
    )


@pytest.fixture(params=SQL)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with sql_backend(request.param, tmp_path) as b:
        yield b


@pytest.fixture
def stores(backend: Backend) -> Iterator[Any]:
    """Make started stores on one table, like schedulers in several processes."""
    made: list[SQLAlchemyStore] = []

    def new(**options: Any) -> SQLAlchemyStore:
        store = backend.make(**options)
        store.start(None, "default")
        made.append(store)
        return store  # type: ignore[no-any-return]

    yield new
    for store in made:
        store.shutdown()


def row(store: SQLAlchemyStore, task_id: str) -> Any:
    assert store.engine is not None
    with store.engine.connect() as conn:
        return conn.execute(sa.select(store.table).where(store.table.c.id == task_id)).first()


def age_instance(store: SQLAlchemyStore, identity: str, seconds: float) -> None:
    """Make ``identity``'s last heartbeat ``seconds`` older (as if it stopped beating)."""
    assert store.engine is not None
    table = store.instances_table
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(table)
            .where(table.c.identity == identity)
            .values(heartbeat=table.c.heartbeat - int(seconds * 1_000_000))
        )


# -- versions and conditional updates --------------------------------------------------------


def test_every_task_carries_its_stored_version(stores: Any) -> None:
    store = stores()
    a, b = make("a", 0), make("b", 10)
    store.add_tasks([a, b])
    assert isinstance(a.store_version, int) and isinstance(b.store_version, int)
    assert row(store, "a").version == a.store_version
    other = stores()  # reads without the decoded-record cache of the writer
    for reader in (store, other):
        assert reader.lookup_task("a").store_version == a.store_version
        assert {t.id: t.store_version for t in reader.get_all_tasks()} == {
            "a": a.store_version,
            "b": b.store_version,
        }
        assert [t.store_version for t in reader.get_due_tasks(T0)] == [a.store_version]
    acquired = other.acquire_due_tasks(T0, "me", 10, 30)
    assert [t.store_version for t in acquired] == [a.store_version]


def test_a_deleted_and_added_again_task_gets_a_new_version(stores: Any) -> None:
    store = stores()
    versions = set()
    for _ in range(5):
        task = make("a", 0)
        store.add_task(task)
        versions.add(task.store_version)
        store.delete_task("a")
    assert len(versions) == 5


def test_update_is_conditional_on_the_version_read(stores: Any) -> None:
    one, two = stores(), stores()
    one.add_task(make("a", 0, name="first"))
    read_by_one, read_by_two = one.lookup_task("a"), two.lookup_task("a")
    version = read_by_one.store_version
    read_by_two.name = "two"
    two.update_task(read_by_two)
    assert read_by_two.store_version == version + 1
    read_by_one.name = "one"
    with pytest.raises(TaskConflictError) as info:
        one.update_task(read_by_one)
    assert (info.value.task_id, info.value.expected, info.value.found) == (
        "a",
        version,
        version + 1,
    )
    assert info.value.store == "default"
    assert one.lookup_task("a").name == "two"
    again = one.lookup_task("a")
    again.name = "one"
    one.update_task(again)
    assert again.store_version == version + 2
    assert two.lookup_task("a").name == "one"
    # Missing: a lookup error, conditional or not.
    one.delete_task("a")
    with pytest.raises(TaskLookupError):
        one.update_task(again)
    with pytest.raises(TaskLookupError):
        one.update_task(make("a", 0))


def test_an_update_without_a_version_is_unconditional(stores: Any) -> None:
    store = stores()
    added = make("a", 0)
    store.add_task(added)
    fresh = make("a", 5, name="replaced")  # store_version None: Asyncz-style replace
    store.update_task(fresh)
    assert fresh.store_version == added.store_version + 1
    assert stores().lookup_task("a").name == "replaced"


def test_keep_schedule_leaves_the_run_time_and_the_lease_alone(stores: Any) -> None:
    store, other = stores(), stores()
    store.add_task(make("a", 0))
    assert len(store.acquire_due_tasks(T0, "me", 10, 30)) == 1
    before = row(store, "a")
    changed = other.lookup_task("a")
    changed.name = "renamed"
    # The record's own run time (an hour later) must not override the store's.
    object.__setattr__(changed, "next_run_time", T0 + timedelta(hours=1))
    other.update_task(changed, keep_schedule=True)
    after = row(store, "a")
    assert (after.next_run_time, after.lease_owner, after.lease_token, after.lease_until) == (
        before.next_run_time,
        before.lease_owner,
        before.lease_token,
        before.lease_until,
    )
    assert after.version == before.version + 1
    assert changed.next_run_time == T0  # the caller's task now says what the store holds
    assert other.lookup_task("a").next_run_time == T0
    # The lease holder still releases it, and the rename survives the release.
    assert store.release_tasks("me", {"a": T0 + timedelta(seconds=60)}) == ["a"]
    final = other.lookup_task("a")
    assert (final.name, final.next_run_time) == ("renamed", T0 + timedelta(seconds=60))


def test_a_schedule_change_ends_the_lease(stores: Any) -> None:
    store, other = stores(), stores()
    store.add_task(make("a", 0))
    store.acquire_due_tasks(T0, "me", 10, 30)
    changed = other.lookup_task("a")
    changed.next_run_time = T0 + timedelta(hours=1)
    other.update_task(changed)
    assert row(store, "a").lease_owner is None
    assert store.release_tasks("me", {"a": T0 + timedelta(seconds=60)}) == []
    assert other.lookup_task("a").next_run_time == T0 + timedelta(hours=1)


def test_a_release_moves_the_version_on(stores: Any) -> None:
    """A writer who read the task before a release cannot put the run time back."""
    store = stores()
    store.add_task(make("a", 0))
    read_before = store.lookup_task("a")
    store.acquire_due_tasks(T0, "me", 10, 30)
    store.release_tasks("me", {"a": T0 + timedelta(seconds=60)})
    with pytest.raises(TaskConflictError):
        store.update_task(read_before)
    assert store.lookup_task("a").next_run_time == T0 + timedelta(seconds=60)


def test_only_schedule_changes_are_announced(tmp_path: Path) -> None:
    with sql_backend("postgresql", tmp_path) as backend:
        store = backend.make()
        store.start(None, "default")
        notified: list[str] = []
        sa.event.listen(
            store.engine,
            "before_cursor_execute",
            lambda *a: notified.append(a[2]) if "pg_notify" in a[2] else None,
            named=False,
        )
        try:
            store.add_task(make("a", 0))
            assert len(notified) == 1
            task = store.lookup_task("a")
            task.name = "renamed"
            store.update_task(task, keep_schedule=True)
            assert len(notified) == 1
            task.next_run_time = T0 + timedelta(seconds=5)
            store.update_task(task)
            assert len(notified) == 2
        finally:
            store.shutdown()


# -- fencing tokens ----------------------------------------------------------------------------


def test_a_lease_taken_over_by_the_same_owner_refuses_the_stale_release(stores: Any) -> None:
    first, second = stores(), stores()
    first.add_task(make("a", 0))
    assert [t.id for t in first.acquire_due_tasks(T0, "node", 10, 30)] == ["a"]
    # The lease ran out; the same owner (another store instance of it) leased it again.
    assert [t.id for t in second.acquire_due_tasks(T0 + timedelta(seconds=31), "node", 10, 30)]
    assert first.release_tasks("node", {"a": None}) == []
    assert second.lookup_task("a") is not None
    assert second.release_tasks("node", {"a": T0 + timedelta(hours=1)}) == ["a"]
    assert first.lookup_task("a").next_run_time == T0 + timedelta(hours=1)
    # Forgotten in every case: a second release does nothing.
    assert second.release_tasks("node", {"a": None}) == []


def test_a_release_without_a_lease_taken_here_does_nothing(stores: Any) -> None:
    store, other = stores(), stores()
    store.add_task(make("a", 0))
    store.acquire_due_tasks(T0, "me", 10, 30)
    assert other.release_tasks("me", {"a": None}) == []  # same owner, but not its token
    assert store.release_tasks("someone", {"a": None}) == []
    assert store.release_tasks("me", {"a": None}) == ["a"]
    assert other.lookup_task("a") is None


def test_renew_leases_pushes_the_end_of_the_leases_still_held(stores: Any) -> None:
    store, other = stores(), stores()
    now = datetime.now(UTC)
    store.add_tasks([make("a", -10), make("b", -10), make("c", -10)])
    object_ids = [t.id for t in store.acquire_due_tasks(now, "me", 10, 1)]
    assert object_ids == ["a", "b", "c"]
    store.release_tasks("me", {"c": None})
    renewed: list[int] = []
    thread = threading.Thread(target=lambda: renewed.append(store.renew_leases("me", 600)))
    thread.start()  # renewals come from the heartbeat thread
    thread.join()
    assert renewed == [2]
    assert other.acquire_due_tasks(now + timedelta(seconds=300), "other", 10, 30) == []
    until = row(store, "a").lease_until / 1e6
    assert now.timestamp() + 590 < until < now.timestamp() + 660
    assert store.renew_leases("nobody", 600) == 0
    assert store.release_tasks("me", {"a": None, "b": None}) == ["a", "b"]
    assert store.renew_leases("me", 600) == 0


# -- ids ---------------------------------------------------------------------------------------


def test_ids_are_compared_exactly(stores: Any) -> None:
    store = stores()
    store.add_tasks([make("report", 0, name="plain"), make("report ", 0, name="spaced")])
    store.add_task(make("Report", 0, name="capital"))
    assert store.lookup_task("report").name == "plain"
    assert store.lookup_task("report ").name == "spaced"
    assert store.lookup_task("report  ") is None
    with pytest.raises(ConflictIdError):
        store.add_task(make("report", 0))
    store.delete_task("report")
    assert [t.id for t in store.get_all_tasks()] == ["Report", "report "]


LONG_ID = "é" * 60 + "漢" * 60 + "😀" * 60 + "x" * 11


def test_the_longest_ids_of_any_script_round_trip(stores: Any) -> None:
    assert len(LONG_ID) == 191
    store, other = stores(), stores()
    store.add_task(make(LONG_ID, 0))
    assert other.lookup_task(LONG_ID).id == LONG_ID
    assert [t.id for t in other.acquire_due_tasks(T0, "me", 10, 30)] == [LONG_ID]
    assert other.release_tasks("me", {LONG_ID: T0 + timedelta(seconds=60)}) == [LONG_ID]
    task = other.lookup_task(LONG_ID)
    task.name = "renamed"
    other.update_task(task)
    store.delete_task(LONG_ID)
    assert other.get_all_tasks() == []


def test_ids_no_task_can_have_are_simply_not_found(stores: Any) -> None:
    store = stores()
    for bad in ("x" * 300, "x" * 10_000_000, "nul\x00", "lone\ud800", ""):
        assert store.lookup_task(bad) is None
        with pytest.raises(TaskLookupError):
            store.delete_task(bad)


# -- instances ---------------------------------------------------------------------------------


def test_instances_register_and_report_their_heartbeat_age(stores: Any) -> None:
    store = stores()
    store.register_instance("b-node", {"host": "h", "pid": 2})
    store.register_instance("a-node", {"host": "h", "pid": 1, "stores": ["default"]})
    store.register_instance("a-node", {"host": "h", "pid": 1, "stores": ["default", "x"]})
    found = stores().get_instances()
    assert [(i, info) for i, info, _ in found] == [
        ("a-node", {"host": "h", "pid": 1, "stores": ["default", "x"]}),
        ("b-node", {"host": "h", "pid": 2}),
    ]
    assert all(0 <= age < 5 for _, _, age in found)
    age_instance(store, "b-node", 100)
    ages = {identity: age for identity, _, age in store.get_instances()}
    assert 99 < ages["b-node"] < 105


def test_a_dead_instance_is_removed_and_its_leases_end_at_once(stores: Any) -> None:
    alive, dying = stores(), stores()
    alive.register_instance("alive", {})
    dying.register_instance("dying", {})
    dying.add_tasks([make("a", 0), make("b", 0)])
    assert len(dying.acquire_due_tasks(T0, "dying", 10, 3600)) == 2
    assert alive.heartbeat("alive", {}, 6) == []
    age_instance(alive, "dying", 10)
    assert alive.heartbeat("alive", {"n": 2}, 6) == ["dying"]
    assert [i for i, _, _ in alive.get_instances()] == ["alive"]
    assert row(alive, "a").lease_owner is None
    assert row(alive, "a").next_run_time == row(alive, "b").next_run_time  # run time unchanged
    # Due again now, not when the hour-long lease ends; the dead node's release is refused.
    assert len(alive.acquire_due_tasks(T0, "alive", 10, 30)) == 2
    assert dying.release_tasks("dying", {"a": None, "b": None}) == []
    assert alive.heartbeat("alive", {}, 6) == []
    # A node declared dead by mistake registers again with its next heartbeat.
    assert dying.heartbeat("dying", {}, 6) == []
    assert [i for i, _, _ in alive.get_instances()] == ["alive", "dying"]


def test_each_dead_instance_is_declared_dead_by_one_survivor(backend: Backend) -> None:
    setup = backend.make()
    setup.start(None, "default")
    dead = [f"dead-{n}" for n in range(6)]
    for identity in [*dead, "s0", "s1", "s2"]:
        setup.register_instance(identity, {})
    for identity in dead:
        age_instance(setup, identity, 60)
    survivors = [backend.make() for _ in range(3)]
    for store in survivors:
        store.start(None, "default")
    barrier = threading.Barrier(3)
    reported: list[list[str]] = [[], [], []]
    errors: list[BaseException] = []

    def reap(n: int) -> None:
        try:
            barrier.wait(10)
            reported[n] = survivors[n].heartbeat(f"s{n}", {}, 6)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reap, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert (
        sorted(i for ids in reported for i in ids) == dead
    )  # every one once, by exactly one survivor
    assert [i for i, _, _ in setup.get_instances()] == ["s0", "s1", "s2"]
    for store in [setup, *survivors]:
        store.shutdown()


def test_unregister_removes_the_instance_and_ends_its_leases(stores: Any) -> None:
    store = stores()
    store.register_instance("me", {})
    store.add_task(make("a", 0))
    store.acquire_due_tasks(T0, "me", 10, 3600)
    store.unregister_instance("me")
    assert store.get_instances() == []
    assert row(store, "a").lease_owner is None
    assert store.release_tasks("me", {"a": None}) == []


# -- schema version 2 and the upgrade of a version-1 table --------------------------------------

V1_DDL = {
    "sqlite": (
        "CREATE TABLE {t} (id VARCHAR(255) NOT NULL PRIMARY KEY, next_run_time BIGINT, "
        "lease_owner VARCHAR(255), lease_until BIGINT, state BLOB NOT NULL)"
    ),
    "postgresql": (
        'CREATE TABLE {t} (id VARCHAR(255) COLLATE "C" NOT NULL PRIMARY KEY, '
        "next_run_time BIGINT, lease_owner VARCHAR(255), lease_until BIGINT, "
        "state BYTEA NOT NULL)"
    ),
    "mysql": (
        "CREATE TABLE {t} (id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL "
        "PRIMARY KEY, next_run_time BIGINT, lease_owner VARCHAR(255), lease_until BIGINT, "
        "state LONGBLOB NOT NULL)"
    ),
}


def make_v1_table(backend: Backend, tasks: list[Task]) -> None:
    """The table asyncz wrote before cluster mode, exactly as its DDL made it."""
    codec = SQLAlchemyStore("sqlite://")  # only to encode the records
    codec.setup_codec()
    engine = sa.create_engine(backend.options["database"])
    t = backend.options.get("tablename", "asyncz_store")
    with engine.begin() as conn:
        conn.exec_driver_sql(V1_DDL[backend.name].format(t=t))
        conn.exec_driver_sql(f"CREATE INDEX ix_{t}_due ON {t} (next_run_time, id)")
        conn.exec_driver_sql(f"CREATE INDEX ix_{t}_lease ON {t} (lease_until)")
        conn.exec_driver_sql(
            f"CREATE TABLE {t}_version (name VARCHAR(64) NOT NULL PRIMARY KEY, "
            "version INTEGER NOT NULL)"
        )
        conn.exec_driver_sql(f"INSERT INTO {t}_version (name, version) VALUES ('schema', 1)")
        for task in tasks:
            conn.execute(
                sa.text(
                    f"INSERT INTO {t} (id, next_run_time, lease_owner, lease_until, state) "
                    "VALUES (:id, :next, :owner, :until, :state)"
                ),
                {
                    "id": task.id,
                    "next": int(task.next_run_time.timestamp() * 1_000_000),
                    "owner": "old-node",
                    "until": 1,
                    "state": codec.encode_task(task),
                },
            )
    engine.dispose()


def test_a_version_1_table_is_upgraded_in_place(backend: Backend) -> None:
    make_v1_table(backend, [make("report", 0), make("b", 10)])
    stores = [backend.make() for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start(store: SQLAlchemyStore) -> None:
        try:
            barrier.wait(10)
            store.start(None, "default")  # several processes starting at once
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    store = stores[0]
    assert store.engine is not None
    inspector = sa.inspect(store.engine)
    columns = {c["name"]: c for c in inspector.get_columns(store.tablename)}
    assert {"version", "lease_token"} <= set(columns)
    assert inspector.has_table(f"{store.tablename}_instances")
    assert inspector.has_table(f"{store.tablename}_runs")
    if backend.name == "mysql":
        assert columns["id"]["type"].collation == "utf8mb4_nopad_bin"
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(store.version_table.c.version)).scalar() == SCHEMA_VERSION
    # The old rows: readable, with a version, conditional updates work; ids are now exact.
    task = store.lookup_task("report")
    assert isinstance(task.store_version, int)
    task.name = "renamed"
    store.update_task(task)
    store.add_task(make("report ", 5))
    assert [t.id for t in stores[1].get_all_tasks()] == ["report", "report ", "b"]
    acquired = stores[2].acquire_due_tasks(T0 + timedelta(seconds=10), "new", 10, 30)
    assert sorted(t.id for t in acquired) == ["b", "report", "report "]
    assert stores[2].release_tasks("new", {"b": None}) == ["b"]
    for s in stores:
        s.shutdown()
    # Starting again on the upgraded table changes nothing.
    again = backend.make()
    again.start(None, "default")
    assert [t.id for t in again.get_all_tasks()] == ["report", "report "]
    again.shutdown()


# -- run records -------------------------------------------------------------------------------


def fire_one(
    store: Any, owner: str, task_id: str, run_times: list[datetime], **options: Any
) -> Any:
    return store.fire_tasks(
        owner,
        [
            Fire(
                task_id=task_id,
                next_run_time=options.pop("next_run_time", T0 + timedelta(hours=1)),
                run_times=run_times,
                **options,
            )
        ],
    )


def records(store: SQLAlchemyStore) -> list[Any]:
    assert store.engine is not None
    runs = store.runs_table
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(runs).order_by(runs.c.task_id, runs.c.scheduled_at)))


def test_a_fire_releases_and_records_in_one_transaction(stores: Any) -> None:
    store, other = stores(), stores()
    store.add_tasks([make("a", 0), make("b", 0), make("gone", 0)])
    before = row(store, "a").version
    assert len(store.acquire_due_tasks(T0, "me", 10, 30)) == 3
    results = store.fire_tasks(
        "me",
        [
            Fire(task_id="a", next_run_time=T0 + timedelta(seconds=60), run_times=[T0]),
            Fire(
                task_id="b",
                next_run_time=T0 + timedelta(seconds=60),
                run_times=[T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)],
                max_instances=2,
                on_crash="rerun",
            ),
            Fire(task_id="gone", next_run_time=None, run_times=[]),
        ],
    )
    assert sorted(results) == ["a", "b", "gone"]
    assert list(results["a"].started) == [T0]
    # One fire is one submission: its run times all start (or are all skipped) together.
    assert list(results["b"].started) == [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]
    assert list(results["b"].skipped) == []
    assert results["gone"] == FireResult(task_id="gone")
    assert other.lookup_task("gone") is None
    after = row(store, "a")
    assert (after.next_run_time, after.lease_owner, after.lease_token) == (
        utc_timestamp_us(T0 + timedelta(seconds=60)),
        None,
        None,
    )
    assert after.version == before + 1
    found = other.get_runs()
    assert [(r.task_id, r.scheduled_at, r.status) for r in found] == [
        ("b", T0 + timedelta(seconds=2), "started"),
        ("b", T0 + timedelta(seconds=1), "started"),
        ("a", T0, "started"),
        ("b", T0, "started"),
    ]
    record = other.get_runs("a")[0]
    assert (record.instance, record.attempt, record.on_crash) == ("me", 1, "skip")
    assert record.fired_at is not None
    assert abs(record.fired_at.timestamp() - time.time()) < 5  # the store's clock
    assert other.get_runs("b", 1)[0].on_crash == "rerun"
    assert other.get_runs("nobody") == [] and other.get_runs("x" * 300) == []


def test_a_failed_fire_transaction_leaves_nothing_behind(
    stores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stores()
    store.add_task(make("a", 0))
    store.acquire_due_tasks(T0, "me", 10, 30)
    lease = row(store, "a")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the connection dropped here")

    monkeypatch.setattr(sql_runs, "record_fires", broken)
    with pytest.raises(RuntimeError):
        fire_one(store, "me", "a", [T0])
    assert tuple(row(store, "a")) == tuple(lease)  # not released: the lease runs out
    assert records(store) == []


def test_finish_runs_updates_only_the_firing_instances_started_records(stores: Any) -> None:
    store = stores()
    store.add_tasks([make("a", 0), make("b", 0)])
    store.acquire_due_tasks(T0, "me", 10, 30)
    store.fire_tasks(
        "me",
        [
            Fire(task_id="a", next_run_time=T0 + timedelta(seconds=60), run_times=[T0]),
            Fire(task_id="b", next_run_time=T0 + timedelta(seconds=60), run_times=[T0]),
        ],
    )
    long_error = "Traceback...\n" + "x" * 5000 + "\nValueError: the end"
    store.finish_runs(
        [
            RunOutcome(
                task_id="a",
                scheduled_at=T0,
                instance="me",
                status="failed",
                run_id="r1",
                started_at=T0 + timedelta(seconds=1),
                finished_at=T0 + timedelta(seconds=3.5),
                duration=2.5,
                error=long_error,
            ),
            RunOutcome(task_id="b", scheduled_at=T0, instance="other", status="succeeded"),
            RunOutcome(task_id="nope", scheduled_at=T0, instance="me", status="succeeded"),
        ]
    )
    a, b = store.get_runs("a")[0], store.get_runs("b")[0]
    assert (a.status, a.run_id, a.duration) == ("failed", "r1", 2.5)
    assert (a.started_at, a.finished_at) == (T0 + timedelta(seconds=1), T0 + timedelta(seconds=3.5))
    assert a.error is not None and len(a.error) == 2000 and a.error.endswith("the end")
    assert b.status == "started"
    # A finished record is never finished again.
    store.finish_runs([RunOutcome(task_id="a", scheduled_at=T0, instance="me", status="succeeded")])
    assert store.get_runs("a")[0].status == "failed"
    store.finish_runs([])


def test_runs_of_dead_and_vanished_schedulers_are_resolved(stores: Any) -> None:
    survivor, dying = stores(), stores()
    survivor.register_instance("alive", {})
    dying.register_instance("dying", {})
    dying.add_tasks([make("skip", 0), make("rerun", 0, on_crash="rerun"), make("second", 0)])
    dying.acquire_due_tasks(T0, "dying", 10, 30)
    dying.fire_tasks(
        "dying",
        [
            Fire(task_id="skip", next_run_time=None, run_times=[T0]),
            Fire(task_id="rerun", next_run_time=None, run_times=[T0], on_crash="rerun"),
            Fire(task_id="second", next_run_time=None, run_times=[T0], on_crash="rerun"),
        ],
    )
    assert survivor.engine is not None
    runs = survivor.runs_table
    with survivor.engine.begin() as conn:  # "second" was already a rerun when "dying" died
        conn.execute(sa.update(runs).where(runs.c.task_id == "second").values(attempt=2))
    age_instance(survivor, "dying", 60)
    assert survivor.heartbeat("alive", {}, 6) == ["dying"]
    status = {r.task_id: (r.status, r.instance) for r in survivor.get_runs()}
    assert status == {
        "skip": ("abandoned", "dying"),
        "rerun": ("started", ""),  # waiting for a taker
        "second": ("abandoned", "dying"),
    }
    assert survivor.get_runs("skip")[0].finished_at is not None
    # The task "rerun" was exhausted and deleted by its fire: rerun from the record its run
    # kept, once.
    ((task, when),) = survivor.take_reruns("alive", 10)
    assert (task.id, when, task.on_crash) == ("rerun", T0, "rerun")
    assert survivor.take_reruns("alive", 10) == []
    assert [(r.status, r.attempt) for r in survivor.get_runs("rerun")] == [("started", 2)]
    # A scheduler that left (unregistered) with a run in flight: resolved once it is older
    # than dead_after, not before.
    survivor.add_task(make("left", 0))
    survivor.acquire_due_tasks(T0, "left-node", 10, 30)
    survivor.fire_tasks("left-node", [Fire(task_id="left", next_run_time=None, run_times=[T0])])
    assert survivor.heartbeat("alive", {}, 6) == []
    assert survivor.get_runs("left")[0].status == "started"
    with survivor.engine.begin() as conn:
        conn.execute(sa.update(runs).values(fired_at=runs.c.fired_at - 60_000_000))
    assert survivor.heartbeat("alive", {}, 6) == []
    assert survivor.get_runs("left")[0].status == "abandoned"


def test_each_rerun_is_taken_once(stores: Any) -> None:
    setup = stores()
    setup.register_instance("dying", {})
    setup.add_tasks([make(f"t{n}", 0, on_crash="rerun") for n in range(12)])
    setup.acquire_due_tasks(T0, "dying", 20, 30)
    setup.fire_tasks(
        "dying",
        [
            Fire(
                task_id=f"t{n}",
                next_run_time=T0 + timedelta(hours=1),
                run_times=[T0],
                on_crash="rerun",
            )
            for n in range(12)
        ],
    )
    age_instance(setup, "dying", 60)
    assert setup.heartbeat("alive", {}, 6) == ["dying"]
    takers = [stores() for _ in range(3)]
    barrier = threading.Barrier(3)
    taken: list[list[str]] = [[], [], []]
    errors: list[BaseException] = []

    def take(n: int) -> None:
        try:
            barrier.wait(10)
            while got := takers[n].take_reruns(f"taker-{n}", 3):
                taken[n].extend(task.id for task, when in got if when == T0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sorted(i for ids in taken for i in ids) == sorted(f"t{n}" for n in range(12))
    for n, ids in enumerate(taken):
        for task_id in ids:
            record = setup.get_runs(task_id)[0]
            assert (record.status, record.instance, record.attempt) == (
                "started",
                f"taker-{n}",
                2,
            )


def test_old_finished_records_are_purged_from_the_heartbeat(stores: Any) -> None:
    store = stores(run_retention=3600)
    keeper = stores(run_retention=None)
    now = datetime.now(UTC)
    old, recent = now - timedelta(hours=2), now - timedelta(minutes=5)
    store.add_tasks([make("a", -(10**6)), make("b", -(10**6))])
    store.acquire_due_tasks(now, "me", 10, 30)
    store.fire_tasks(
        "me",
        [
            Fire(task_id="a", next_run_time=now + timedelta(hours=1), run_times=[old, recent]),
            Fire(task_id="b", next_run_time=now + timedelta(hours=1), run_times=[old]),
        ],
        # max_instances 1: a's recent one is skipped (finished), a's old one started
    )
    store.finish_runs(
        [RunOutcome(task_id="a", scheduled_at=old, instance="me", status="succeeded")]
    )
    keeper.heartbeat("keeper", {}, 60)
    assert len(keeper.get_runs()) == 3  # None keeps everything
    store.heartbeat("me", {}, 60)
    # a's old one finished: purged; b's old one still started: kept; a's recent one kept.
    assert [(r.task_id, r.scheduled_at) for r in store.get_runs()] == [
        ("a", recent),
        ("b", old),
    ]
    store.finish_runs([RunOutcome(task_id="b", scheduled_at=old, instance="me", status="failed")])
    store.heartbeat("me", {}, 60)
    assert len(store.get_runs()) == 2  # at most every few minutes
    store._next_purge = 0.0
    store.heartbeat("me", {}, 60)
    assert [r.task_id for r in store.get_runs()] == ["a"]
    with pytest.raises(ValueError, match="run_retention"):
        SQLAlchemyStore("sqlite://", run_retention=0)


def test_duplicates_are_found_among_many_keys_spread_in_time(stores: Any) -> None:
    """Key lookups go in groups (by count, and on MariaDB by time window): none is missed."""
    store = stores()
    store.add_tasks([make("a", 0), make("b", 0)])
    times = [T0 + timedelta(seconds=n) for n in range(0, 1200, 2)]  # 600 keys over 20 minutes
    later = T0 + timedelta(hours=5)

    def fire_all(run_times: dict[str, list[datetime]]) -> Any:
        assert len(store.acquire_due_tasks(T0 + timedelta(days=1), "me", 10, 30)) == 2
        return store.fire_tasks(
            "me",
            [
                Fire(task_id=i, next_run_time=T0, run_times=r, max_instances=10_000)
                for i, r in run_times.items()
            ],
        )

    first = fire_all({"a": times, "b": times[::3]})
    assert len(first["a"].started) == 600 and len(first["b"].started) == 200
    again = fire_all({"a": [*times, later], "b": times})
    assert list(again["a"].duplicates) == times
    assert list(again["a"].started) == [later]
    assert len(again["b"].duplicates) == 200 and len(again["b"].started) == 400
    assert len(store.get_runs(limit=10_000)) == 1201
