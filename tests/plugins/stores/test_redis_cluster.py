"""The Redis store's cluster contract, phase 1: versions and conditional updates, fencing
tokens and lease renewal, ids compared exactly, and the instance registry (against a real
Redis; see ``backends.py``)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncz.core.errors import ConflictIdError, TaskConflictError, TaskLookupError
from asyncz.core.plugins import default_registry
from asyncz.tasks import Task
from asyncz.triggers import IntervalTrigger
from tests.plugins.stores import jobs
from tests.plugins.stores.backends import Backend, make_backend

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class FakeScheduler:
    def __init__(self) -> None:
        self.plugins = default_registry()
        self.identity = "redis-cluster-tests"
        self.timezone = UTC
        self.events: list[Any] = []

    def dispatch_event(self, event: Any) -> None:
        self.events.append(event)


def make(task_id: str, offset: float | None, **fields: Any) -> Task:
    return Task(
        id=task_id,
        fn=jobs.job,
        trigger=IntervalTrigger(seconds=60, start_at=T0, timezone="UTC"),
        next_run_time=None if offset is None else T0 + timedelta(seconds=offset),
        **fields,
    )


def changed(task: Task, **changes: Any) -> Task:
    """A changed copy of ``task`` with the version it was read at (a store may hand out the
    same cached object again, so the read one is never changed in place)."""
    new = copy.copy(task)
    new.update_task(**changes)
    object.__setattr__(new, "store_version", task.store_version)
    return new


def ids(tasks: list[Task]) -> list[str]:
    return [t.id for t in tasks]


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    pytest.importorskip("redis")
    with make_backend("redis", tmp_path) as b:
        yield b


@pytest.fixture
def stores(backend: Backend) -> Iterator[Any]:
    made: list[Any] = []

    def new(**options: Any) -> Any:
        store = backend.make(notify=False, **options)
        store.start(FakeScheduler(), "default")
        made.append(store)
        return store

    yield new
    for store in made:
        store.shutdown()


@pytest.fixture
def store(stores: Any) -> Any:
    return stores()


# -- versions ----------------------------------------------------------------------------------


def test_every_read_carries_the_stored_version(store: Any) -> None:
    task = make("a", 0)
    store.add_task(task)
    version = task.store_version
    assert isinstance(version, int) and version > 0
    assert store.lookup_task("a").store_version == version
    assert [t.store_version for t in store.get_all_tasks()] == [version]
    assert [t.store_version for t in store.get_due_tasks(T0)] == [version]
    [got] = store.acquire_due_tasks(T0, "me", 10, 30)
    assert got.store_version == version  # taking a lease is not a write of the task
    assert [t.store_version for t in store.get_due_tasks(T0)] == [version]  # leased, due
    assert store.release_tasks("me", {"a": T0 + timedelta(seconds=60)}) == ["a"]
    # The release stored a new run time: a write. The same bytes (and so possibly the same
    # cached Task object) now come with the new version.
    assert store.lookup_task("a").store_version == version + 1
    assert store.get_all_tasks()[0].store_version == version + 1


def test_versions_start_at_random_so_a_re_added_id_never_repeats_one(store: Any) -> None:
    seen = set()
    for _ in range(5):
        task = make("a", 0)
        store.add_task(task)
        seen.add(task.store_version)
        store.delete_task("a")
    assert len(seen) == 5


def test_update_is_conditional_on_the_version_read(stores: Any) -> None:
    one, two = stores(), stores()
    one.add_task(make("a", 0, name="first"))
    read_by_one = one.lookup_task("a")
    read_by_two = two.lookup_task("a")
    version = read_by_one.store_version
    two.update_task(changed(read_by_two, name="two"))
    with pytest.raises(TaskConflictError) as info:
        one.update_task(changed(read_by_one, name="one"))
    assert (info.value.task_id, info.value.expected, info.value.found) == (
        "a",
        version,
        version + 1,
    )
    assert info.value.store == "default"
    assert one.lookup_task("a").name == "two"
    # Read again, re-applied: accepted, and the task carries the version it wrote.
    again = changed(one.lookup_task("a"), name="one")
    one.update_task(again)
    assert again.store_version == version + 2 == two.lookup_task("a").store_version
    # No version: unconditional (Asyncz-style callers, replace_existing).
    two.update_task(make("a", 0, name="blind"))
    assert one.lookup_task("a").name == "blind"
    with pytest.raises(TaskLookupError):
        one.update_task(make("missing", 0))


def test_keep_schedule_leaves_run_time_and_lease_alone(stores: Any) -> None:
    store = stores()
    store.add_task(make("a", 0, name="first"))
    store.acquire_due_tasks(T0, "me", 10, 30)
    stale = store.lookup_task("a")
    # An update that does not touch when it runs, made from a copy with another (stale) run
    # time in it: the stored run time and the lease stay.
    new = changed(stale, name="second")
    object.__setattr__(new, "next_run_time", T0 + timedelta(days=9))
    store.update_task(new, keep_schedule=True)
    assert new.next_run_time == T0  # set to the stored one
    assert store.client.hget(store.lease_info_key, "a").split(b"|")[2] == b"me"
    assert store.lookup_task("a").next_run_time == T0
    assert store.lookup_task("a").name == "second"
    # The lease holder still releases it as usual.
    assert store.release_tasks("me", {"a": T0 + timedelta(seconds=60)}) == ["a"]
    got = store.lookup_task("a")
    assert got.next_run_time == T0 + timedelta(seconds=60) and got.name == "second"


def test_a_schedule_change_ends_the_lease(store: Any) -> None:
    store.add_task(make("a", 0))
    store.acquire_due_tasks(T0, "me", 10, 30)
    store.update_task(changed(store.lookup_task("a"), next_run_time=T0 + timedelta(hours=1)))
    assert store.release_tasks("me", {"a": T0 + timedelta(seconds=60)}) == []
    assert store.lookup_task("a").next_run_time == T0 + timedelta(hours=1)


def test_only_schedule_changes_are_announced(stores: Any, backend: Backend) -> None:
    store = stores()
    store.notify = True
    sent: list[str] = []
    store.client.publish = lambda channel, message: sent.append(message)  # type: ignore[method-assign]
    store.add_task(make("a", 0))
    assert len(sent) == 1
    store.update_task(changed(store.lookup_task("a"), name="renamed"), keep_schedule=True)
    assert len(sent) == 1
    store.update_task(changed(store.lookup_task("a"), next_run_time=T0 + timedelta(hours=1)))
    assert len(sent) == 2


def test_tasks_stored_without_a_version_get_one_at_start(stores: Any, backend: Backend) -> None:
    first = stores()
    first.add_tasks([make("old", 0), make("new", 0)])
    first.client.hdel(first.versions_key, "old")  # as an asyncz before versions left it
    assert first.lookup_task("old").store_version is None
    second = stores()
    version = second.lookup_task("old").store_version
    assert isinstance(version, int)
    assert second.lookup_task("new").store_version == first.lookup_task("new").store_version


# -- fencing -----------------------------------------------------------------------------------


def test_a_release_needs_the_token_of_the_lease(stores: Any) -> None:
    store, other = stores(), stores()
    store.add_tasks([make("a", 0), make("b", 0), make("c", 0), make("d", 0)])
    assert ids(store.acquire_due_tasks(T0, "me", 1, lease=30)) == ["a"]
    assert ids(store.acquire_due_tasks(T0, "me", 10, lease=600)) == ["b", "c", "d"]
    # "a": the lease ran out and the same owner took it again through another instance.
    assert ids(other.acquire_due_tasks(T0 + timedelta(seconds=31), "me", 1, 30)) == ["a"]
    # "b": deleted; "c": rescheduled (which ends the lease).
    store.delete_task("b")
    store.update_task(changed(store.lookup_task("c"), next_run_time=T0 + timedelta(hours=5)))
    later = T0 + timedelta(seconds=60)
    released = store.release_tasks("me", dict.fromkeys("abcd", later))
    assert released == ["d"]
    assert store.lookup_task("a").next_run_time == T0  # still leased by the other instance
    assert store.lookup_task("c").next_run_time == T0 + timedelta(hours=5)
    # Every token was forgotten: a second release changes nothing, even where it once could.
    assert store.release_tasks("me", {"d": T0 + timedelta(days=1)}) == []
    assert other.release_tasks("me", {"a": later}) == ["a"]


def test_renew_leases(stores: Any) -> None:
    store = stores()
    now = datetime.now(UTC)
    store.add_tasks([make("a", -3600), make("b", -3600)])
    assert ids(store.acquire_due_tasks(now, "me", 10, lease=5)) == ["a", "b"]
    before = dict(store.client.zrange(store.leases_key, 0, -1, withscores=True))
    assert store.renew_leases("other", 600) == 0
    # "b" is lost (its lease ended by a schedule change): not renewed, and forgotten.
    store.update_task(changed(store.lookup_task("b"), next_run_time=T0))
    renewed: list[int] = []
    thread = threading.Thread(target=lambda: renewed.append(store.renew_leases("me", 600)))
    thread.start()
    thread.join(10)
    assert renewed == [1]
    after = dict(store.client.zrange(store.leases_key, 0, -1, withscores=True))
    assert list(after) == [b"a"]
    assert after[b"a"] >= before[b"a"] + 590 * 1_000_000
    assert store._tokens == {("me", "a"): store._tokens["me", "a"]}
    assert store.release_tasks("me", {"a": None}) == ["a"]
    assert store.renew_leases("me", 600) == 0


def test_a_quarantined_task_is_not_renewed(stores: Any) -> None:
    store = stores()
    store.add_task(make("bad", -60))
    store.client.hset(store.tasks_key, "bad", b"garbage")
    assert store.acquire_due_tasks(datetime.now(UTC), "me", 10, 30) == []
    assert store.renew_leases("me", 600) == 0


# -- ids ---------------------------------------------------------------------------------------

ODD_IDS = [
    "a|b",
    "|",
    "a:b",
    "3:abc",
    "report",
    "report ",
    "Report",
    "x" * 191,
    "日本語のタスク" * 27,
    "emoji 🎉 task",
    "with\u00a0nbsp",
]


def test_ids_are_compared_exactly(store: Any) -> None:
    tasks = [make(task_id, 0) for task_id in ODD_IDS]
    store.add_tasks(tasks)
    with pytest.raises(ConflictIdError):
        store.add_task(make("a|b", 0))
    assert sorted(ids(store.get_all_tasks())) == sorted(ODD_IDS)
    for task_id in ODD_IDS:
        assert store.lookup_task(task_id).id == task_id
    assert store.lookup_task("report  ") is None and store.lookup_task("REPORT") is None
    got = store.acquire_due_tasks(T0, "owner|with|bars", 100, 30)
    assert sorted(ids(got)) == sorted(ODD_IDS)
    nxt = {task_id: T0 + timedelta(seconds=60) for task_id in ODD_IDS}
    assert sorted(store.release_tasks("owner|with|bars", nxt)) == sorted(ODD_IDS)
    store.delete_task("report ")
    assert store.lookup_task("report") is not None


# -- instances ---------------------------------------------------------------------------------


def _age(store: Any, identity: str, seconds: float) -> None:
    """Move an instance's heartbeat ``seconds`` into the past (as if it had gone silent)."""
    score = store.client.zscore(store.heartbeats_key, identity)
    store.client.zadd(store.heartbeats_key, {identity: int(score) - int(seconds * 1e6)})


def test_register_heartbeat_and_list_instances(store: Any) -> None:
    store.register_instance("b", {"host": "h", "pid": 2})
    store.register_instance("a", {"host": "h", "pid": 1, "stores": ["default"]})
    instances = store.get_instances()
    assert [(i, info) for i, info, _ in instances] == [
        ("a", {"host": "h", "pid": 1, "stores": ["default"]}),
        ("b", {"host": "h", "pid": 2}),
    ]
    assert all(0 <= age < 5 for _, _, age in instances)
    _age(store, "b", 3)
    assert 3 <= {i: age for i, _, age in store.get_instances()}["b"] < 8
    assert store.heartbeat("b", {"host": "h", "pid": 22}, dead_after=6) == []
    assert {i: info for i, info, _ in store.get_instances()}["b"] == {"host": "h", "pid": 22}
    store.unregister_instance("b")
    assert [i for i, _, _ in store.get_instances()] == ["a"]


def test_a_dead_instance_loses_its_leases_at_once(stores: Any) -> None:
    store = stores()
    store.add_tasks([make("a", 0), make("b", 5), make("c", 0)])
    store.register_instance("dead", {})
    store.register_instance("alive", {})
    assert ids(store.acquire_due_tasks(T0 + timedelta(seconds=5), "dead", 2, 600)) == ["a", "c"]
    assert ids(store.acquire_due_tasks(T0 + timedelta(seconds=5), "alive", 1, 600)) == ["b"]
    _age(store, "dead", 7)
    # Another node declares it dead: its leases end, its tasks are due at their unchanged time.
    assert store.heartbeat("alive", {}, dead_after=6) == ["dead"]
    assert [i for i, _, _ in store.get_instances()] == ["alive"]
    got = store.acquire_due_tasks(T0 + timedelta(seconds=5), "alive", 10, 600)
    assert [(t.id, t.next_run_time) for t in got] == [("a", T0), ("c", T0)]
    # The dead node's late release is refused.
    assert store.release_tasks("dead", {"a": None}) == []


def test_each_dead_instance_is_declared_dead_once(stores: Any) -> None:
    setup = stores()
    for name in ("x", "y", "z"):
        setup.register_instance(name, {})
        _age(setup, name, 60)
    nodes = [stores() for _ in range(4)]
    barrier = threading.Barrier(len(nodes))
    declared: list[list[str]] = [[] for _ in nodes]

    def beat(n: int) -> None:
        barrier.wait()
        declared[n] = nodes[n].heartbeat(f"node{n}", {}, dead_after=6)

    threads = [threading.Thread(target=beat, args=(n,)) for n in range(len(nodes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(i for found in declared for i in found) == ["x", "y", "z"]
    assert [i for i, _, _ in setup.get_instances()] == [f"node{n}" for n in range(4)]


def test_a_removed_instance_comes_back_with_its_next_heartbeat(store: Any) -> None:
    store.register_instance("slow", {"pid": 1})
    _age(store, "slow", 60)
    assert store.heartbeat("other", {}, dead_after=6) == ["slow"]
    assert store.heartbeat("slow", {"pid": 1}, dead_after=6) == []
    assert sorted(i for i, _, _ in store.get_instances()) == ["other", "slow"]


def test_unregister_ends_the_leases(store: Any) -> None:
    store.add_task(make("a", 0))
    store.register_instance("me", {})
    store.acquire_due_tasks(T0, "me", 10, 600)
    store.unregister_instance("me")
    assert store.get_instances() == []
    assert [(t.id, t.next_run_time) for t in store.acquire_due_tasks(T0, "next", 10, 30)] == [
        ("a", T0)
    ]
