"""The store contract, held against every registered store alias on every real backend.

Backends: memory, file, SQLite (file), PostgreSQL, MariaDB/MySQL and Redis (see
``tests/plugins/stores/backends.py`` for how servers are found and when a missing one fails).
Time is injected: every ``now`` is explicit, so leases and due queries are exact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncz.core import events
from asyncz.core.errors import ConflictIdError, SerializationError, TaskLookupError
from asyncz.core.plugins import default_registry
from asyncz.tasks import Task
from asyncz.triggers import DateTrigger, IntervalTrigger
from tests.plugins.stores import jobs
from tests.plugins.stores.backends import (
    PERSISTENT,
    Backend,
    contract_backends,
    make_backend,
)

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


class FakeScheduler:
    """What stores use of a scheduler: the plugin registry, an identity, events, a zone."""

    def __init__(self) -> None:
        self.plugins = default_registry()
        self.identity = "contract-tests"
        self.timezone = UTC
        self.events: list[Any] = []

    def dispatch_event(self, event: Any) -> None:
        self.events.append(event)


def make(task_id: str, offset: float | None, fn: Any = jobs.job, **fields: Any) -> Task:
    next_time = None if offset is None else T0 + timedelta(seconds=offset)
    return Task(
        id=task_id,
        fn=fn,
        trigger=IntervalTrigger(seconds=60, start_at=T0, timezone="UTC"),
        next_run_time=next_time,
        **fields,
    )


@pytest.fixture(params=contract_backends())
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with make_backend(request.param, tmp_path) as b:
        yield b


@pytest.fixture(params=PERSISTENT)
def persistent(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with make_backend(request.param, tmp_path) as b:
        yield b


@pytest.fixture
def scheduler() -> FakeScheduler:
    return FakeScheduler()


def started(backend: Backend, scheduler: Any = None, **options: Any) -> Any:
    store = backend.make(**options)
    store.start(scheduler or FakeScheduler(), "default")
    return store


@pytest.fixture
def store(backend: Backend, scheduler: FakeScheduler) -> Iterator[Any]:
    s = started(backend, scheduler)
    yield s
    s.shutdown()


def ids(tasks: list[Task]) -> list[str]:
    return [t.id for t in tasks]


def test_every_registered_store_alias_is_held_to_the_contract() -> None:
    registered = {p.alias for p in default_registry().providers("store")}
    tested = {_alias_of(name) for name in contract_backends()}
    assert registered <= tested


def _alias_of(name: str) -> str:
    from tests.plugins.stores.backends import BACKENDS

    return name.partition(":")[2] if name.startswith("plugin:") else BACKENDS[name]


# -- ordering and queries ------------------------------------------------------------------


def test_order_is_by_run_time_then_id_with_paused_last(store: Any) -> None:
    for task_id, offset in [
        ("c", 5),
        ("paused-a", None),
        ("b", 5),
        ("a", 10),
        ("z", -1),
        ("paused-0", None),
    ]:
        store.add_task(make(task_id, offset))
    assert ids(store.get_all_tasks()) == ["z", "b", "c", "a", "paused-0", "paused-a"]
    assert store.get_next_run_time() == T0 - timedelta(seconds=1)
    assert ids(store.get_due_tasks(T0 + timedelta(seconds=5))) == ["z", "b", "c"]
    assert store.get_due_tasks(T0 - timedelta(seconds=2)) == []


def test_tasks_come_back_whole_and_bound_to_the_store(store: Any) -> None:
    when = T0 + timedelta(microseconds=123457)
    task = Task(
        id="whole",
        name="a name",
        fn=jobs.job,
        args=(1, "two"),
        kwargs={"three": [3]},
        trigger=IntervalTrigger(seconds=7, start_at=T0, timezone="Europe/Paris"),
        executor="other",
        coalesce=False,
        max_instances=4,
        mistrigger_grace_time=30,
        next_run_time=when,
    )
    store.add_task(task)
    assert task.store_alias == "default" and not task.pending
    back = store.lookup_task("whole")
    assert back.fn is jobs.job and back.name == "a name"
    assert back.args == (1, "two") and back.kwargs == {"three": [3]}
    assert back.trigger == task.trigger
    assert (back.executor, back.coalesce, back.max_instances) == ("other", False, 4)
    assert back.mistrigger_grace_time == 30
    assert back.next_run_time == when  # to the microsecond
    assert back.store_alias == "default" and not back.pending and back.submitted
    assert store.get_next_run_time() == when


def test_conflicts_and_missing_ids(store: Any) -> None:
    store.add_task(make("a", 0))
    with pytest.raises(ConflictIdError, match="'a' already exists"):
        store.add_task(make("a", 1))
    assert store.lookup_task("a").next_run_time == T0  # the first one stays
    with pytest.raises(TaskLookupError, match="'nope'"):
        store.update_task(make("nope", 1))
    with pytest.raises(TaskLookupError):
        store.delete_task("nope")
    assert store.lookup_task("nope") is None


def test_update_reorders_pauses_and_delete_removes(store: Any) -> None:
    store.add_task(make("a", 1))
    store.add_task(make("b", 2))
    store.update_task(make("a", 3, name="renamed"))
    assert store.get_next_run_time() == T0 + timedelta(seconds=2)
    assert store.lookup_task("a").name == "renamed"
    store.delete_task("b")
    assert store.get_next_run_time() == T0 + timedelta(seconds=3)
    store.update_task(make("a", None))
    assert store.get_next_run_time() is None
    assert store.lookup_task("a").next_run_time is None
    assert ids(store.get_all_tasks()) == ["a"]
    store.remove_all_tasks()
    assert store.get_all_tasks() == [] and store.get_next_run_time() is None


def test_add_tasks_adds_several(persistent: Backend) -> None:
    store = started(persistent)
    try:
        store.add_tasks([make(f"t{i}", i) for i in range(5)])
        assert ids(store.get_all_tasks()) == [f"t{i}" for i in range(5)]
        with pytest.raises(ConflictIdError):
            store.add_tasks([make("t2", 0)])
    finally:
        store.shutdown()


# -- leases ----------------------------------------------------------------------------------


def test_acquire_takes_due_tasks_in_order_up_to_limit(store: Any) -> None:
    for i in range(5):
        store.add_task(make(f"t{i}", i))
    store.add_task(make("later", 100))
    store.add_task(make("paused", None))
    now = T0 + timedelta(seconds=10)
    assert ids(store.acquire_due_tasks(now, "me", 3, 30)) == ["t0", "t1", "t2"]
    assert ids(store.acquire_due_tasks(now, "me", 10, 30)) == ["t3", "t4"]
    assert store.acquire_due_tasks(now, "other", 10, 30) == []


def test_ties_are_acquired_by_id(store: Any) -> None:
    for task_id in ["m", "b", "x", "a"]:
        store.add_task(make(task_id, 0))
    assert ids(store.acquire_due_tasks(T0, "me", 10, 30)) == ["a", "b", "m", "x"]


def test_release_sets_next_run_time_or_deletes(store: Any) -> None:
    store.add_task(make("a", 0))
    store.add_task(make("b", 0))
    store.acquire_due_tasks(T0, "me", 10, 30)
    assert store.get_next_run_time() == T0 + timedelta(seconds=30)  # the lease expiry
    store.release_tasks("me", {"a": T0 + timedelta(seconds=60), "b": None})
    assert store.lookup_task("b") is None
    assert store.get_next_run_time() == T0 + timedelta(seconds=60)
    assert store.lookup_task("a").next_run_time == T0 + timedelta(seconds=60)
    assert ids(store.acquire_due_tasks(T0 + timedelta(seconds=60), "me", 10, 30)) == ["a"]


def test_leased_tasks_are_skipped_until_the_lease_expires(store: Any) -> None:
    store.add_task(make("a", 0))
    assert ids(store.acquire_due_tasks(T0, "one", 10, lease=30)) == ["a"]
    assert store.acquire_due_tasks(T0 + timedelta(seconds=29), "two", 10, 30) == []
    assert ids(store.acquire_due_tasks(T0 + timedelta(seconds=31), "two", 10, 30)) == ["a"]
    # The first owner lost the lease: its late release must not change anything.
    store.release_tasks("one", {"a": None})
    assert store.lookup_task("a") is not None
    store.release_tasks("two", {"a": T0 + timedelta(hours=1)})
    assert store.lookup_task("a").next_run_time == T0 + timedelta(hours=1)


def test_a_change_during_a_lease_wins_over_the_release(store: Any) -> None:
    store.add_task(make("a", 0))
    store.acquire_due_tasks(T0, "me", 10, 30)
    store.update_task(make("a", 3600))  # e.g. rescheduled by the user meanwhile
    store.release_tasks("me", {"a": T0 + timedelta(seconds=60)})
    assert store.lookup_task("a").next_run_time == T0 + timedelta(hours=1)
    store.acquire_due_tasks(T0 + timedelta(hours=2), "me", 10, 30)
    store.delete_task("a")
    store.release_tasks("me", {"a": T0 + timedelta(hours=3)})
    assert store.lookup_task("a") is None
    assert store.get_next_run_time() is None


def test_a_paused_task_is_never_due(store: Any) -> None:
    store.add_task(make("p", None))
    assert store.acquire_due_tasks(T0 + timedelta(days=365), "me", 10, 30) == []
    assert store.get_due_tasks(T0 + timedelta(days=365)) == []


# -- persistence -------------------------------------------------------------------------------


def test_a_restarted_store_keeps_its_tasks(backend: Backend) -> None:
    store = started(backend)
    store.add_task(make("a", 5))
    store.add_task(make("paused", None))
    store.shutdown()
    again = store if not backend.persistent else backend.make()
    again.start(FakeScheduler(), "default")
    try:
        assert ids(again.get_all_tasks()) == ["a", "paused"]
        assert again.lookup_task("paused").next_run_time is None
    finally:
        again.shutdown()


def test_persistent_stores_refuse_unreferenceable_callables(persistent: Backend) -> None:
    store = started(persistent)
    try:
        with pytest.raises(SerializationError, match="lambda") as info:
            store.add_task(make("lam", 0, fn=lambda: None))
        assert "module-level function" in str(info.value)
        # A method of an instance no module names keeps the instance as its first argument
        # (as Asyncz does): refused, saying why, when the instance cannot be encoded.
        with pytest.raises(SerializationError, match="bound to an instance") as info:
            store.add_task(make("meth", 0, fn=FakeScheduler().dispatch_event))
        assert "cannot encode" in str(info.value)
        assert store.get_all_tasks() == [] and store.lookup_task("lam") is None
    finally:
        store.shutdown()


def test_json_serializer_keeps_readable_records(persistent: Backend) -> None:
    store = started(persistent, serializer="json")
    try:
        store.add_task(make("j", 0, args=(1, "a"), kwargs={"k": None}))
        with pytest.raises(SerializationError, match="JSON"):
            store.add_task(make("bad", 0, args=(object(),)))
        back = store.lookup_task("j")
        assert back.args == (1, "a") and back.kwargs == {"k": None}
    finally:
        store.shutdown()


# -- quarantine ----------------------------------------------------------------------------------


def test_unrestorable_tasks_are_quarantined_never_deleted(
    persistent: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = FakeScheduler()
    store = started(persistent, scheduler)
    try:
        store.add_task(make("early", 0))
        store.add_task(make("moved", 1, fn=jobs.movable))
        store.add_task(make("late", 2))
        before = {i: bytes(d) for i, d, _ in store.iter_records()}
        monkeypatch.delattr(jobs, "movable")  # the function was moved in a refactoring

        assert ids(store.get_all_tasks()) == ["early", "late"]
        assert store.lookup_task("moved") is None
        got = store.acquire_due_tasks(T0 + timedelta(seconds=5), "me", 10, lease=30)
        assert ids(got) == ["early", "late"]  # the others keep running
        store.release_tasks("me", {"early": T0 + timedelta(hours=1), "late": None})
        quarantined = store.get_quarantined()
        assert list(quarantined) == ["moved"] and "movable" in quarantined["moved"]

        reported = [e for e in scheduler.events if e.code == events.TASK_QUARANTINED]
        assert len(reported) == 1, "reported once, however often it is read"
        assert reported[0].task_id == "moved" and reported[0].store == "default"
        assert "movable" in reported[0].reason
        with pytest.raises(ConflictIdError):  # still there: never overwritten by accident
            store.add_task(make("moved", 1))
        after = {i: bytes(d) for i, d, _ in store.iter_records()}
        assert after["moved"] == before["moved"]  # the record is left exactly as it was

        # No busy loop: it stays leased until the lease runs out, then is tried again.
        assert store.acquire_due_tasks(T0 + timedelta(seconds=6), "me", 10, 30) == []
        monkeypatch.undo()  # the fix is deployed
        back = store.acquire_due_tasks(T0 + timedelta(seconds=40), "me", 10, 30)
        assert ids(back) == ["moved"] and back[0].fn is jobs.movable
        assert store.get_quarantined() == {}
        assert ids(store.get_all_tasks()) == ["moved", "early"]
    finally:
        store.shutdown()


def test_a_wrong_key_quarantines_and_the_right_key_restores(persistent: Backend) -> None:
    store = started(persistent, signing_key="key-one")
    store.add_task(make("signed", 0))
    store.shutdown()
    scheduler = FakeScheduler()
    wrong = started(persistent, scheduler, signing_key="key-two")
    try:
        assert wrong.get_all_tasks() == []
        assert "signature does not match" in wrong.get_quarantined()["signed"]
        assert [e.task_id for e in scheduler.events] == ["signed"]
    finally:
        wrong.shutdown()
    unkeyed = started(persistent)  # a store without keys never reads a sealed record
    try:
        assert unkeyed.get_all_tasks() == []
        assert unkeyed.get_due_tasks(T0 + timedelta(seconds=1)) == []
        assert "no signing key" in unkeyed.get_quarantined()["signed"]
    finally:
        unkeyed.shutdown()
    rotated = started(persistent, signing_key=["key-two", "key-one"])
    try:
        assert ids(rotated.get_all_tasks()) == ["signed"]
    finally:
        rotated.shutdown()


def test_an_unknown_trigger_alias_quarantines(
    persistent: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = started(persistent)
    try:
        store.add_task(Task(id="d", fn=jobs.job, trigger=DateTrigger(T0), next_run_time=T0))
        monkeypatch.setenv("ASYNCZ_DISABLE_PLUGINS", "date-trigger")
        from asyncz.core.plugins import PluginRegistry

        store.scheduler.plugins = PluginRegistry()
        assert "trigger alias 'date'" in store.get_quarantined()["d"]
        assert store.acquire_due_tasks(T0, "me", 10, 30) == []
        store.scheduler.plugins = default_registry()
        assert ids(store.acquire_due_tasks(T0 + timedelta(seconds=31), "me", 10, 30)) == ["d"]
    finally:
        store.shutdown()


def test_a_quarantined_task_does_not_set_the_next_run_time(
    persistent: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = started(persistent)
    try:
        store.add_task(make("moved", 0, fn=jobs.movable))
        store.add_task(make("other", 100))
        monkeypatch.delattr(jobs, "movable")
        assert store.get_next_run_time() == T0  # not known to be quarantined yet

        assert ids(store.get_all_tasks()) == ["other"]
        assert store.get_next_run_time() == T0 + timedelta(seconds=100)
        store.delete_task("other")
        assert store.get_next_run_time() is None  # alone: nothing to wake up for
        assert list(store.get_quarantined()) == ["moved"]  # still there, still listed
        assert store.get_next_run_time() is None

        monkeypatch.undo()  # the fix is deployed
        assert store.lookup_task("moved") is not None  # the next read restores it ...
        assert store.get_quarantined() == {}
        assert store.get_next_run_time() == T0  # ... and it counts again
    finally:
        store.shutdown()


def test_a_quarantined_lease_does_not_wake_the_scheduler(
    persistent: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = started(persistent)
    try:
        store.add_task(make("moved", 0, fn=jobs.movable))
        monkeypatch.delattr(jobs, "movable")
        # Met for the first time by the due pass: leased, quarantined, nothing handed out.
        assert store.acquire_due_tasks(T0 + timedelta(seconds=10), "me", 10, 30) == []
        assert list(store.get_quarantined()) == ["moved"]
        # Neither its run time (due) nor its lease expiry: a scheduler does not spin on it.
        assert store.get_next_run_time() is None
        assert store.acquire_due_tasks(T0 + timedelta(seconds=11), "me", 10, 30) == []
        store.add_task(make("other", 50))
        assert store.get_next_run_time() == T0 + timedelta(seconds=50)

        monkeypatch.undo()
        back = store.acquire_due_tasks(T0 + timedelta(seconds=41), "me", 10, 30)
        assert ids(back) == ["moved"]  # its lease ran out: tried again, and it restores
        assert store.get_quarantined() == {}
        # In service again: its new lease counts (until T0 + 71 s), after "other".
        assert store.get_next_run_time() == T0 + timedelta(seconds=50)
        store.delete_task("other")
        assert store.get_next_run_time() == T0 + timedelta(seconds=71)
    finally:
        store.shutdown()


def test_many_quarantined_tasks_are_skipped_for_the_next_run_time(
    persistent: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asyncz.plugins.stores import redis as redis_store
    from asyncz.plugins.stores.sqlalchemy import store as sql_store

    # Small pages, so that the paths for large quarantines are taken with a few tasks.
    monkeypatch.setattr(sql_store, "_NOT_IN_MAX", 2)
    monkeypatch.setattr(redis_store, "_SKIP_PAGE", 1)
    store = started(persistent)
    try:
        store.add_tasks([make(f"moved-{n}", n, fn=jobs.movable) for n in range(5)])
        store.add_task(make("good", 20))
        for n in range(3):  # stale entries of a moved run time, in the file store's heap
            store.update_task(make(f"moved-{n}", 10 + n, fn=jobs.movable))
        with monkeypatch.context() as moved:
            moved.delattr(jobs, "movable")
            assert ids(store.get_all_tasks()) == ["good"]
            assert store.get_next_run_time() == T0 + timedelta(seconds=20)
            # Leased but not restored: five leases that do not count either.
            assert store.acquire_due_tasks(T0 + timedelta(seconds=15), "me", 10, 30) == []
            assert store.get_next_run_time() == T0 + timedelta(seconds=20)
            store.delete_task("good")
            assert store.get_next_run_time() is None
            assert len(store.get_quarantined()) == 5
        assert len(store.get_all_tasks()) == 5
        assert store.get_next_run_time() == T0 + timedelta(seconds=45)  # their leases count
    finally:
        store.shutdown()


def test_an_unrestorable_task_does_not_take_the_place_of_a_due_one(
    persistent: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = started(persistent)
    try:
        store.add_task(make("moved", 0, fn=jobs.movable))
        store.add_task(make("good", 1))
        monkeypatch.delattr(jobs, "movable")
        # The limit counts tasks handed out, not records that failed to restore.
        assert ids(store.acquire_due_tasks(T0 + timedelta(seconds=5), "me", 1, 30)) == ["good"]
        assert list(store.get_quarantined()) == ["moved"]
    finally:
        store.shutdown()


def test_writing_or_restarting_takes_a_task_out_of_quarantine(
    persistent: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = FakeScheduler()
    store = started(persistent, scheduler)
    try:
        store.add_task(make("moved", 0, fn=jobs.movable))
        store.add_task(make("replaced", 5, fn=jobs.movable))
        monkeypatch.delattr(jobs, "movable")
        assert store.get_all_tasks() == []
        assert store.get_next_run_time() is None
        store.update_task(make("replaced", 5))  # written by this instance: readable
        assert store.get_next_run_time() == T0 + timedelta(seconds=5)

        store.shutdown()
        store.start(scheduler, "default")
        # A start forgets the quarantine: counted (and tried by the first pass) again.
        assert store.get_next_run_time() == T0
        got = store.acquire_due_tasks(T0 + timedelta(seconds=6), "me", 10, 30)
        assert ids(got) == ["replaced"]
        assert store.get_next_run_time() == T0 + timedelta(seconds=36)  # replaced's lease
        reported = [e.task_id for e in scheduler.events if e.code == events.TASK_QUARANTINED]
        assert reported == ["moved", "replaced", "moved"]  # once per start
    finally:
        store.shutdown()


# -- other processes -------------------------------------------------------------------------------

_CHILD = """
import json, sys
from asyncz.core.plugins import default_registry
from asyncz.tasks import Task
from asyncz.triggers import IntervalTrigger
from tests.plugins.stores.jobs import job

config = json.loads(sys.argv[1])
store = default_registry().resolve("store", config.pop("type"))(**config)
store.start(None, "default")
seen = [
    [t.id, t.next_run_time.isoformat() if t.next_run_time else None, t.name, list(t.args)]
    for t in store.get_all_tasks()
]
store.add_task(Task(id="from-child", fn=job, trigger=IntervalTrigger(seconds=5, timezone="UTC")))
store.shutdown()
print(json.dumps(seen))
"""

_WRITER = """
import json, sys
from datetime import datetime, timedelta, timezone
from asyncz.core.plugins import default_registry
from asyncz.tasks import Task
from asyncz.triggers import IntervalTrigger
from tests.plugins.stores.jobs import job

config = json.loads(sys.argv[1])
store = default_registry().resolve("store", config.pop("type"))(**config)
store.start(None, "default")
t0 = datetime(2026, 11, 28, tzinfo=timezone.utc)
trigger = IntervalTrigger(seconds=5, start_at=t0, timezone="UTC")
i = 0
while True:
    # Large arguments make each write take long enough to be caught in the middle of one.
    task = Task(id=f"t{i}", fn=job, args=("x" * 200_000,), trigger=trigger, next_run_time=t0)
    store.add_task(task)
    task.next_run_time = t0 + timedelta(seconds=i)
    store.update_task(task)
    if i % 3 == 2:
        store.delete_task(f"t{i - 1}")
    print(i, flush=True)
    i += 1
"""


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_a_new_process_sees_the_same_tasks(persistent: Backend) -> None:
    store = started(persistent)
    store.add_task(make("a", 1.5, args=(1,), name="first"))
    store.add_task(make("paused", None))
    store.shutdown()
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(persistent.config())],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_child_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen == [
        ["a", (T0 + timedelta(seconds=1.5)).isoformat(), "first", [1]],
        ["paused", None, "job", []],
    ]
    again = started(persistent)
    try:
        assert ids(again.get_all_tasks()) == ["a", "from-child", "paused"]
    finally:
        again.shutdown()


def test_a_process_killed_mid_write_leaves_the_store_readable(persistent: Backend) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, json.dumps(persistent.config())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=_child_env(),
    )
    try:
        assert child.stdout is not None
        for _ in range(10):  # let it get going, then kill it at some point of a write
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else "writer died"
        time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    store = started(persistent)
    try:
        tasks = store.get_all_tasks()
        assert len(tasks) >= 7
        assert store.get_quarantined() == {}
        assert all(t.args and len(t.args[0]) == 200_000 for t in tasks)
        store.add_task(make("after", 0))
        assert store.lookup_task("after") is not None
        due = store.acquire_due_tasks(T0 + timedelta(days=1), "me", 10_000, 30)
        assert {t.id for t in due} == {t.id for t in tasks} | {"after"}
        if persistent.name == "file":
            assert not [p for p in os.listdir(persistent.options["directory"]) if ".tmp-" in p]
    finally:
        store.shutdown()


def test_changes_made_through_another_instance_are_seen(persistent: Backend) -> None:
    """Each instance caches what it decoded; the cache must never hide another's change."""
    one, two = started(persistent), started(persistent)
    try:
        one.add_task(make("a", 1, name="first"))
        assert two.lookup_task("a").name == "first"
        one.update_task(make("a", 2, name="second"))
        assert two.lookup_task("a").name == "second"
        assert two.lookup_task("a").next_run_time == T0 + timedelta(seconds=2)
        assert ids(two.acquire_due_tasks(T0 + timedelta(seconds=2), "two", 10, 30)) == ["a"]
        two.release_tasks("two", {"a": T0 + timedelta(seconds=90)})
        assert one.lookup_task("a").next_run_time == T0 + timedelta(seconds=90)
        one.delete_task("a")
        assert two.lookup_task("a") is None and two.get_all_tasks() == []
    finally:
        one.shutdown()
        two.shutdown()


def test_the_decoded_record_cache_can_be_turned_off(persistent: Backend) -> None:
    store = started(persistent, cache_size=0)
    try:
        store.add_task(make("a", 1))
        first, second = store.lookup_task("a"), store.lookup_task("a")
        assert first is not second and first.trigger == second.trigger
    finally:
        store.shutdown()


def test_ids_are_case_sensitive_and_ties_go_by_code_point(store: Any) -> None:
    for task_id in ["job", "Job", "_x", "b"]:
        store.add_task(make(task_id, 0))
    expected = ["Job", "_x", "b", "job"]  # sorted() order: by code point
    assert ids(store.get_all_tasks()) == expected
    assert ids(store.get_due_tasks(T0)) == expected
    assert ids(store.acquire_due_tasks(T0, "me", 10, 30)) == expected
    assert store.lookup_task("Job").id == "Job"
