"""Cluster mode on the file store: versions, conditional writes, fencing tokens, instances.

Two store instances on one directory stand for two processes (each keeps its own view of the
journal); a few tests use real subprocesses, short and bounded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncz.core.errors import TaskConflictError, TaskLookupError
from asyncz.plugins.stores.file import INDEX_NAME, FileStore
from asyncz.tasks import Task
from asyncz.triggers import IntervalTrigger
from tests.plugins.stores import jobs

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]


def make(task_id: str, offset: float | None, **fields: Any) -> Task:
    return Task(
        id=task_id,
        fn=jobs.job,
        trigger=IntervalTrigger(seconds=60, start_at=T0, timezone="UTC"),
        next_run_time=None if offset is None else T0 + timedelta(seconds=offset),
        **fields,
    )


def open_store(directory: Path, **options: Any) -> FileStore:
    store = FileStore(directory, **options)
    store.start(None, "default")
    return store


class Clock:
    """A settable store clock."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def with_clock(store: FileStore, clock: Clock) -> FileStore:
    store._clock = clock  # type: ignore[method-assign]
    return store


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


# -- versions and conditional writes -----------------------------------------------------------


def test_every_task_read_carries_its_stored_version(tmp_path: Path) -> None:
    store = open_store(tmp_path / "d")
    task = make("a", 0)
    store.add_task(task)
    version = task.store_version
    assert isinstance(version, int) and version > 0
    other = open_store(tmp_path / "d")
    assert other.lookup_task("a").store_version == version
    assert [t.store_version for t in other.get_all_tasks()] == [version]
    assert [t.store_version for t in other.get_due_tasks(T0)] == [version]
    assert [t.store_version for t in other.acquire_due_tasks(T0, "o", 10, 30)] == [version]
    # A write through one instance is seen by the other (the decoded-record cache may give
    # the same Task object back: the version is set on every read).
    store.update_task(store.lookup_task("a"))
    assert store.lookup_task("a").store_version == version + 1
    assert other.lookup_task("a").store_version == version + 1


def test_a_stale_conditional_update_conflicts(tmp_path: Path) -> None:
    one, two = open_store(tmp_path / "d"), open_store(tmp_path / "d")
    one.add_task(make("a", 0, name="first"))
    read_by_one, read_by_two = one.lookup_task("a"), two.lookup_task("a")
    assert read_by_one is not read_by_two
    read_by_two.name = "two"
    two.update_task(read_by_two)
    assert read_by_two.store_version == read_by_one.store_version + 1
    read_by_one.name = "one"
    with pytest.raises(TaskConflictError) as caught:
        one.update_task(read_by_one)
    assert (caught.value.task_id, caught.value.store) == ("a", "default")
    assert (caught.value.expected, caught.value.found) == (
        read_by_one.store_version,
        read_by_two.store_version,
    )
    assert one.lookup_task("a").name == "two"
    # Without a version (Asyncz-style callers): unconditional.
    one.update_task(make("a", 0, name="forced"))
    assert two.lookup_task("a").name == "forced"
    with pytest.raises(TaskLookupError):
        one.update_task(make("missing", 0))


def test_a_deleted_and_re_added_task_never_repeats_a_version(tmp_path: Path) -> None:
    store = open_store(tmp_path / "d")
    store.add_task(make("a", 0))
    stale = store.lookup_task("a")
    store.delete_task("a")
    store.add_task(make("a", 0))
    with pytest.raises(TaskConflictError):
        store.update_task(stale)


def test_keep_schedule_leaves_the_run_time_and_the_lease_alone(tmp_path: Path) -> None:
    store, other = open_store(tmp_path / "d"), open_store(tmp_path / "d")
    store.add_task(make("a", 0, name="before"))
    assert len(store.acquire_due_tasks(T0, "me", 10, 30)) == 1
    changed = other.lookup_task("a")
    changed.name = "after"
    object.__setattr__(changed, "next_run_time", T0 - timedelta(days=1))  # a stale read
    other.update_task(changed, keep_schedule=True)
    assert store.lookup_task("a").name == "after"
    assert store.lookup_task("a").next_run_time == T0
    assert other.acquire_due_tasks(T0, "other", 10, 30) == []  # still leased
    assert store.release_tasks("me", {"a": T0 + timedelta(seconds=60)}) == ["a"]
    assert other.lookup_task("a").next_run_time == T0 + timedelta(seconds=60)
    assert other.lookup_task("a").name == "after"


def test_an_update_that_changes_the_schedule_clears_the_lease(tmp_path: Path) -> None:
    store, other = open_store(tmp_path / "d"), open_store(tmp_path / "d")
    store.add_task(make("a", 0))
    store.acquire_due_tasks(T0, "me", 10, 30)
    other.update_task(make("a", 5))
    assert store.release_tasks("me", {"a": T0 + timedelta(seconds=60)}) == []
    assert store.lookup_task("a").next_run_time == T0 + timedelta(seconds=5)
    assert [t.id for t in other.acquire_due_tasks(T0 + timedelta(seconds=5), "o", 10, 30)] == ["a"]


def test_a_release_bumps_the_version(tmp_path: Path) -> None:
    store = open_store(tmp_path / "d")
    store.add_task(make("a", 0))
    version = store.lookup_task("a").store_version
    (leased,) = store.acquire_due_tasks(T0, "me", 10, 30)
    assert leased.store_version == version  # leasing is not a write of the task
    store.release_tasks("me", {"a": T0 + timedelta(seconds=60)})
    assert store.lookup_task("a").store_version == version + 1
    stale = make("a", 0)  # read before the release: it would write back a run time already run
    object.__setattr__(stale, "store_version", version)
    with pytest.raises(TaskConflictError):
        store.update_task(stale)


def test_versions_survive_compaction_and_a_lost_journal_gives_new_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("asyncz.plugins.stores.file._COMPACT_MIN", 10)
    directory = tmp_path / "d"
    store = open_store(directory)
    store.add_task(make("a", 0))
    for i in range(30):
        store.acquire_due_tasks(T0 + timedelta(seconds=i), "w", 10, 30)
        store.release_tasks("w", {"a": T0 + timedelta(seconds=i + 1)})
    version = store.lookup_task("a").store_version
    assert open_store(directory).lookup_task("a").store_version == version
    store.shutdown()
    (directory / INDEX_NAME).unlink()
    again = open_store(directory)
    assert again.lookup_task("a").store_version not in (None, version)


# -- fencing tokens ----------------------------------------------------------------------------


def test_a_release_needs_the_token_of_this_lease(tmp_path: Path) -> None:
    one, two = open_store(tmp_path / "d"), open_store(tmp_path / "d")
    one.add_task(make("a", 0))
    assert [t.id for t in one.acquire_due_tasks(T0, "node", 10, 30)] == ["a"]
    # The lease runs out; the same owner name (another instance, or the same one) leases it
    # again: the first holder's release is refused.
    later = T0 + timedelta(seconds=31)
    assert [t.id for t in two.acquire_due_tasks(later, "node", 10, 30)] == ["a"]
    assert one.release_tasks("node", {"a": None}) == []
    assert one.lookup_task("a") is not None
    assert two.release_tasks("node", {"a": T0 + timedelta(hours=1)}) == ["a"]
    assert two.release_tasks("node", {"a": T0 + timedelta(hours=2)}) == []  # forgotten
    # Same instance, same owner, re-leased after expiry: only the newest token counts.
    store = one
    assert store.acquire_due_tasks(T0 + timedelta(hours=1), "node", 10, 30)
    assert store.acquire_due_tasks(T0 + timedelta(hours=1, seconds=31), "node", 10, 30)
    assert store.release_tasks("node", {"a": T0 + timedelta(hours=3)}) == ["a"]


def test_a_deleted_task_is_not_released(tmp_path: Path) -> None:
    store, other = open_store(tmp_path / "d"), open_store(tmp_path / "d")
    store.add_task(make("a", 0))
    store.acquire_due_tasks(T0, "me", 10, 30)
    other.delete_task("a")
    other.add_task(make("a", 0))  # and added again: a new task, not leased
    assert store.release_tasks("me", {"a": T0 + timedelta(hours=1)}) == []
    assert other.lookup_task("a").next_run_time == T0


def test_renew_leases_pushes_the_expiry_of_held_leases_only(tmp_path: Path) -> None:
    clock = Clock(T0.timestamp())
    store = with_clock(open_store(tmp_path / "d"), clock)
    other = open_store(tmp_path / "d")
    store.add_task(make("a", 0))
    store.add_task(make("b", 0))
    assert len(store.acquire_due_tasks(T0, "me", 10, 10)) == 2
    other.update_task(make("b", 0))  # b's lease is lost
    clock.now += 5
    done: list[int] = []
    thread = threading.Thread(target=lambda: done.append(store.renew_leases("me", 60)))
    thread.start()
    thread.join(10)
    assert done == [1]
    # a is held until T0 + 65 s now; b was released by the update and is due.
    assert [t.id for t in other.acquire_due_tasks(T0 + timedelta(seconds=30), "o", 10, 100)] == [
        "b"
    ]
    assert other.acquire_due_tasks(T0 + timedelta(seconds=64), "o", 10, 10) == []
    assert store.renew_leases("other-owner", 60) == 0
    assert store.release_tasks("me", {"a": T0 + timedelta(hours=1)}) == ["a"]
    assert store.renew_leases("me", 60) == 0


# -- instances ---------------------------------------------------------------------------------


def test_instances_register_heartbeat_and_are_listed(tmp_path: Path) -> None:
    clock = Clock()
    one = with_clock(open_store(tmp_path / "d"), clock)
    two = with_clock(open_store(tmp_path / "d"), clock)
    one.register_instance("one", {"host": "h", "pid": 1})
    clock.now += 1.5
    two.register_instance("two", {"host": "h", "pid": 2})
    assert one.get_instances() == [
        ("one", {"host": "h", "pid": 1}, 1.5),
        ("two", {"host": "h", "pid": 2}, 0.0),
    ]
    clock.now += 1
    assert one.heartbeat("one", {"host": "h", "pid": 1, "more": True}, 6) == []
    assert two.get_instances() == [
        ("one", {"host": "h", "pid": 1, "more": True}, 0.0),
        ("two", {"host": "h", "pid": 2}, 1.0),
    ]
    two.unregister_instance("two")
    assert [i for i, _, _ in one.get_instances()] == ["one"]


def test_a_dead_instance_is_declared_once_and_its_leases_freed_at_once(tmp_path: Path) -> None:
    clock = Clock(T0.timestamp())
    dead = with_clock(open_store(tmp_path / "d"), clock)
    one = with_clock(open_store(tmp_path / "d"), clock)
    two = with_clock(open_store(tmp_path / "d"), clock)
    for store, name in ((dead, "dead"), (one, "one"), (two, "two")):
        store.register_instance(name, {})
    dead.add_task(make("a", 0))
    dead.add_task(make("b", 0))
    assert len(dead.acquire_due_tasks(T0, "dead", 10, 300)) == 2
    clock.now += 5
    assert one.heartbeat("one", {}, 6) == []
    assert two.heartbeat("two", {}, 6) == []
    clock.now += 2  # dead's heartbeat is 7 s old, the others' 2 s
    assert one.heartbeat("one", {}, 6) == ["dead"]
    assert two.heartbeat("two", {}, 6) == []  # declared by exactly one caller
    assert [i for i, _, _ in two.get_instances()] == ["one", "two"]
    # Due at once (their run time unchanged), long before the lease would have run out.
    got = two.acquire_due_tasks(T0 + timedelta(seconds=7), "two", 10, 30)
    assert sorted((t.id, t.next_run_time) for t in got) == [("a", T0), ("b", T0)]
    assert dead.release_tasks("dead", {"a": None, "b": None}) == []
    # The dead one comes back: its heartbeat registers it again.
    assert dead.heartbeat("dead", {}, 6) == []
    assert [i for i, _, _ in one.get_instances()] == ["dead", "one", "two"]


def test_unregister_clears_the_instance_s_leases(tmp_path: Path) -> None:
    store, other = open_store(tmp_path / "d"), open_store(tmp_path / "d")
    store.register_instance("me", {})
    store.add_task(make("a", 0))
    store.acquire_due_tasks(T0, "me", 10, 300)
    store.unregister_instance("me")
    assert other.get_instances() == []
    assert [t.id for t in other.acquire_due_tasks(T0, "other", 10, 30)] == ["a"]
    assert store.release_tasks("me", {"a": None}) == []


def test_a_damaged_instances_file_is_an_empty_registry(tmp_path: Path) -> None:
    store = open_store(tmp_path / "d")
    (tmp_path / "d" / ".asyncz-instances").write_text("{not json")
    assert store.get_instances() == []
    assert store.heartbeat("me", {"x": 1}, 6) == []
    assert [i for i, _, _ in store.get_instances()] == ["me"]


# -- real processes ----------------------------------------------------------------------------

_INCREMENTER = """
import sys, time
from asyncz.core.errors import TaskConflictError
from asyncz.plugins.stores.file import FileStore

directory, key, rounds, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
store = FileStore(directory)
store.start(None, "default")
import os
while not os.path.exists(go):
    time.sleep(0.005)
conflicts = 0
for _ in range(rounds):
    while True:
        task = store.lookup_task("shared")
        task.kwargs = {**task.kwargs, key: task.kwargs.get(key, 0) + 1}
        try:
            store.update_task(task, keep_schedule=True)
            break
        except TaskConflictError:
            conflicts += 1
print(conflicts, flush=True)
"""


def test_processes_changing_different_fields_keep_every_change(tmp_path: Path) -> None:
    """Read-modify-write with a retry on conflict, in 4 processes at once: no change lost."""
    directory = tmp_path / "d"
    store = open_store(directory)
    store.add_task(make("shared", 0))
    go = tmp_path / "go"
    rounds = 50
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _INCREMENTER, str(directory), f"k{i}", str(rounds), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=_child_env(),
        )
        for i in range(4)
    ]
    time.sleep(0.3)
    go.touch()
    conflicts = 0
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        conflicts += int(out)
    print("conflicts retried:", conflicts)
    task = store.lookup_task("shared")
    assert task.kwargs == {f"k{i}": rounds for i in range(4)}
    assert task.next_run_time == T0
    assert task.store_version == store.lookup_task("shared").store_version


_HEARTBEATER = """
import json, os, sys, time
from asyncz.plugins.stores.file import FileStore

directory, identity, go = sys.argv[1], sys.argv[2], sys.argv[3]
store = FileStore(directory)
store.start(None, "default")
while not os.path.exists(go):
    time.sleep(0.002)
declared = []
for _ in range(5):
    declared += store.heartbeat(identity, {"pid": os.getpid()}, 30)
print(json.dumps(declared), flush=True)
"""


def test_each_dead_instance_is_declared_by_one_process(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    store = open_store(directory)
    clock = Clock(time.time() - 3600)
    with_clock(store, clock)
    stale = [f"stale-{i}" for i in range(20)]
    for identity in stale:
        store.register_instance(identity, {})
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _HEARTBEATER, str(directory), f"live-{i}", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=_child_env(),
        )
        for i in range(4)
    ]
    time.sleep(0.3)
    go.touch()
    declared: list[str] = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        declared += json.loads(out)
    assert sorted(declared) == sorted(stale)  # every one, each once
    assert [i for i, _, _ in open_store(directory).get_instances()] == [
        f"live-{i}" for i in range(4)
    ]


def test_a_journal_rewritten_under_the_same_inode_is_read_again(tmp_path: Path) -> None:
    """Two compactions between two reads of a follower may give the new journal the inode of
    the one it read: its first line (a random generation) tells them apart."""
    directory = tmp_path / "d"
    writer, follower = open_store(directory), open_store(directory)
    writer.add_task(make("a", 0))
    writer.add_task(make("b", 5))
    assert follower.get_next_run_time() == T0
    index, keep = directory / INDEX_NAME, directory / ".keep"
    os.link(index, keep)  # the inode the follower read stays allocated
    read_size = index.stat().st_size
    writer.delete_task("a")
    writer.update_task(make("b", 7))
    writer._compact()
    lines = index.read_bytes().splitlines(keepends=True)
    content = b"".join([lines[0], *[lines[-1]] * 10])  # longer than what the follower read
    assert len(content) > read_size
    with open(keep, "r+b") as f:  # the compacted journal, in the old inode
        f.truncate(0)
        f.write(content)
    os.replace(keep, index)
    assert follower.get_next_run_time() == T0 + timedelta(seconds=7)
    assert [t.id for t in follower.get_all_tasks()] == ["b"]
