"""Run records on the file store: fires, duplicates, crashes between the two journals, dead
instances' runs, reruns, retention and the run journal's compaction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncz.core.converters import utc_timestamp_us
from asyncz.core.runs import ERROR_SUMMARY_MAX, Fire, RunOutcome
from asyncz.plugins.stores.file import FileStore
from asyncz.plugins.stores.file_runs import RUNS_NAME
from asyncz.tasks import Task
from tests.plugins.stores.test_file_cluster import (
    ROOT,
    T0,
    Clock,
    _child_env,
    make,
    open_store,
    with_clock,
)

UTC = timezone.utc


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fire_one(
    store: FileStore, owner: str, task: Task, run_times: list[datetime], **fields: Any
) -> Any:
    fields.setdefault("next_run_time", at(3600))
    return store.fire_tasks(owner, [Fire(task_id=task.id, run_times=run_times, **fields)])


def outcome(task_id: str, when: datetime, instance: str, status: str, **fields: Any) -> Any:
    return RunOutcome(
        task_id=task_id, scheduled_at=when, instance=instance, status=status, **fields
    )


def test_a_run_time_twice_in_one_fire_is_recorded_once(tmp_path: Path) -> None:
    store = open_store(tmp_path / "d")
    store.add_task(make("t", 0))
    (task,) = store.acquire_due_tasks(at(1), "me", 10, 30)
    result = fire_one(store, "me", task, [at(0), at(0)], max_instances=5)
    assert (list(result["t"].started), list(result["t"].duplicates)) == ([at(0)], [at(0)])
    assert [r.scheduled_at for r in store.get_runs("t")] == [at(0)]


def test_a_crash_between_the_run_records_and_the_release_never_runs_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run records are written first: if the task journal's line is lost, the task is
    still at its old run time, and its next fire finds the record."""
    one, two = open_store(tmp_path / "d"), open_store(tmp_path / "d")
    one.add_task(make("t", 0))
    (task,) = one.acquire_due_tasks(at(1), "one", 10, 30)

    def crash(items: list[Any]) -> None:
        raise OSError("injected: disk gone after the run records")

    monkeypatch.setattr(one, "_append", crash)
    with pytest.raises(OSError, match="injected"):
        fire_one(one, "one", task, [at(0)])
    monkeypatch.undo()
    assert two.lookup_task("t").next_run_time == at(0)  # not released
    assert [(r.status, r.instance) for r in two.get_runs("t")] == [("started", "one")]
    (again,) = two.acquire_due_tasks(at(31), "two", 10, 30)  # one's lease ran out
    result = fire_one(two, "two", again, [at(0)])
    assert list(result["t"].duplicates) == [at(0)] and list(result["t"].started) == []
    assert two.lookup_task("t").next_run_time == at(3600)


def test_finishing_needs_the_instance_that_fired_and_errors_are_summarized(
    tmp_path: Path,
) -> None:
    store, other = open_store(tmp_path / "d"), open_store(tmp_path / "d")
    store.add_task(make("t", 0))
    (task,) = store.acquire_due_tasks(at(1), "me", 10, 30)
    fire_one(store, "me", task, [at(0)])
    other.finish_runs([outcome("t", at(0), "someone-else", "succeeded")])
    other.finish_runs([outcome("missing", at(0), "me", "succeeded")])
    assert [r.status for r in store.get_runs("t")] == ["started"]
    error = "Traceback...\n" + "x" * 5000 + "\nValueError: boom"
    other.finish_runs(
        [
            outcome(
                "t",
                at(0),
                "me",
                "failed",
                run_id="r1",
                started_at=at(0.25),
                finished_at=at(1.5),
                duration=1.25,
                error=error,
            )
        ]
    )
    (record,) = store.get_runs("t")
    assert (record.status, record.run_id, record.duration) == ("failed", "r1", 1.25)
    assert (record.started_at, record.finished_at) == (at(0.25), at(1.5))
    assert len(record.error) == ERROR_SUMMARY_MAX and record.error.endswith("ValueError: boom")
    store.finish_runs([outcome("t", at(0), "me", "succeeded")])  # finished: left alone
    assert store.get_runs("t")[0].status == "failed"


def test_get_runs_newest_first_ties_by_task_id_and_limited(tmp_path: Path) -> None:
    store = open_store(tmp_path / "d")
    for task_id in ("b", "a", "c"):
        store.add_task(make(task_id, 0))
    for task in store.acquire_due_tasks(at(1), "me", 10, 30):
        fire_one(store, "me", task, [at(-60), at(0)], max_instances=9)
    assert [(r.task_id, r.scheduled_at) for r in store.get_runs(limit=4)] == [
        ("a", at(0)),
        ("b", at(0)),
        ("c", at(0)),
        ("a", at(-60)),
    ]
    assert len(store.get_runs()) == 6
    assert store.get_runs("nope") == [] and store.get_runs("\0") == []
    assert store.get_runs(limit=0) == []


def _fired(clock: Clock, tmp_path: Path) -> tuple[FileStore, FileStore]:
    """node-b fires a skip task and a rerun task, then falls silent."""
    a = with_clock(open_store(tmp_path / "d"), clock)
    b = with_clock(open_store(tmp_path / "d"), clock)
    a.register_instance("node-a", {})
    b.register_instance("node-b", {})
    a.add_task(make("skip", 0))
    a.add_task(make("rerun", 0, on_crash="rerun"))
    for task in b.acquire_due_tasks(at(1), "node-b", 10, 30):
        fire_one(b, "node-b", task, [at(0)], on_crash=task.on_crash)
    clock.now += 10
    return a, b


def test_a_dead_instance_s_runs_are_abandoned_or_wait_for_one_rerun(tmp_path: Path) -> None:
    clock = Clock(T0.timestamp())
    a, _dead = _fired(clock, tmp_path)
    assert a.heartbeat("node-a", {}, 6) == ["node-b"]
    (skipped,) = a.get_runs("skip")
    assert (skipped.status, skipped.finished_at) == ("abandoned", at(10))
    (waiting,) = a.get_runs("rerun")
    assert (waiting.status, waiting.instance, waiting.attempt) == ("started", "", 1)
    # A waiting run counts against max_instances: it will run.
    a.update_task(make("rerun", 20, on_crash="rerun"))
    (task,) = a.acquire_due_tasks(at(20), "node-a", 10, 30)
    result = fire_one(a, "node-a", task, [at(20)], on_crash="rerun")
    assert list(result["rerun"].skipped) == [at(20)]
    # Handed out once, across instances.
    c = with_clock(open_store(tmp_path / "d"), clock)
    taken = c.take_reruns("node-c", 10)
    assert [(t.id, when) for t, when in taken] == [("rerun", at(0))]
    assert isinstance(taken[0][0].store_version, int)
    assert a.take_reruns("node-a", 10) == [] and c.take_reruns("node-c", 10) == []
    record = {r.scheduled_at: r for r in a.get_runs("rerun")}[at(0)]
    assert (record.instance, record.attempt, record.fired_at) == ("node-c", 2, at(10))
    # The rerun's scheduler dies too: attempt 2 is not rerun again.
    clock.now += 10
    c.register_instance("node-c", {})
    clock.now += 10
    assert a.heartbeat("node-a", {}, 6) == ["node-c"]
    assert {r.scheduled_at: r.status for r in a.get_runs("rerun")}[at(0)] == "abandoned"
    assert a.take_reruns("node-a", 10) == []


def test_reruns_of_a_task_deleted_by_its_fire_or_gone_or_broken(tmp_path: Path) -> None:
    clock = Clock(T0.timestamp())
    a = with_clock(open_store(tmp_path / "d"), clock)
    b = with_clock(open_store(tmp_path / "d"), clock)
    b.register_instance("node-b", {})
    for task_id in ("once", "gone", "broken"):
        a.add_task(make(task_id, 0, on_crash="rerun"))
    for task in b.acquire_due_tasks(at(1), "node-b", 10, 30):
        # "once": its trigger is done, the fire deletes it (its run keeps the record).
        next_time = None if task.id == "once" else at(3600)
        fire_one(b, "node-b", task, [at(0)], on_crash="rerun", next_run_time=next_time)
    assert a.lookup_task("once") is None
    a.delete_task("gone")
    a.update_task(make("broken", 3600, on_crash="rerun"))
    path = a._path("broken")
    path.write_bytes(b"garbage")
    clock.now += 10
    assert a.heartbeat("node-a", {}, 6) == ["node-b"]
    taken = a.take_reruns("node-a", 10)
    assert [(t.id, when, t.on_crash) for t, when in taken] == [("once", at(0), "rerun")]
    statuses = {r.task_id: (r.status, r.error) for r in a.get_runs()}
    assert statuses["gone"] == ("abandoned", "the task no longer exists")
    assert statuses["broken"][0] == "abandoned"
    assert statuses["broken"][1].startswith("cannot be restored: ")
    a.finish_runs([outcome("once", at(0), "node-a", "succeeded")])
    assert "k" not in a._runs.records[("once", utc_timestamp_us(at(0)))]  # not kept any more


def test_runs_of_instances_that_never_registered_are_resolved_once_old(tmp_path: Path) -> None:
    clock = Clock(T0.timestamp())
    a = with_clock(open_store(tmp_path / "d"), clock)
    a.add_task(make("t", 0))
    (task,) = a.acquire_due_tasks(at(1), "ghost", 10, 30)
    fire_one(a, "ghost", task, [at(0)])
    clock.now += 2
    a.heartbeat("node-a", {}, 6)
    assert [r.status for r in a.get_runs("t")] == ["started"]  # fired recently: may register
    clock.now += 10
    assert a.heartbeat("node-a", {}, 6) == []
    assert [r.status for r in a.get_runs("t")] == ["abandoned"]


def test_finished_runs_older_than_the_retention_are_purged(tmp_path: Path) -> None:
    clock = Clock(T0.timestamp())
    store = with_clock(open_store(tmp_path / "d", run_retention=3600), clock)
    follower = open_store(tmp_path / "d")
    store.add_task(make("t", 0))
    times = [at(-7200), at(-5400), at(-60), at(0)]
    (task,) = store.acquire_due_tasks(at(1), "me", 10, 30)
    fire_one(store, "me", task, times, max_instances=9)
    store.finish_runs([outcome("t", when, "me", "succeeded") for when in times[1:3]])
    assert len(follower.get_runs()) == 4
    store.heartbeat("me", {}, 6)
    # at(-5400) finished and old: gone; at(-7200) old but still started: kept.
    assert [r.scheduled_at for r in follower.get_runs()] == [at(0), at(-60), at(-7200)]
    store.finish_runs([outcome("t", at(-7200), "me", "failed")])
    clock.now += 60
    store.heartbeat("me", {}, 6)
    assert len(follower.get_runs()) == 3  # not purged again so soon
    clock.now += 300
    store.heartbeat("me", {}, 6)
    assert [r.scheduled_at for r in follower.get_runs()] == [at(0), at(-60)]
    keep_all = with_clock(open_store(tmp_path / "d", run_retention=None), Clock(2e9))
    keep_all.heartbeat("x", {}, 6)
    assert len(follower.get_runs()) == 2
    with pytest.raises(ValueError, match="run_retention"):
        FileStore(tmp_path / "e", run_retention=0)


def test_the_run_journal_is_compacted_and_followers_notice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("asyncz.plugins.stores.file_runs._COMPACT_MIN", 20)
    store, follower = open_store(tmp_path / "d"), open_store(tmp_path / "d")
    store.add_task(make("t", 0))
    for i in range(40):
        (task,) = store.acquire_due_tasks(at(i), "me", 10, 30)
        fire_one(store, "me", task, [at(i)], next_run_time=at(i + 1))
        store.finish_runs([outcome("t", at(i), "me", "succeeded")])
        if i == 5:
            assert len(follower.get_runs(limit=100)) == 6
    path = tmp_path / "d" / RUNS_NAME
    # Two lines a record (fire, finish): at most half of the lines are dead, no compaction.
    assert path.read_bytes().count(b"\n") == 81
    inode = path.stat().st_ino
    with store._locked(exclusive=True):  # rewrite every record twice more
        store._runs.sync()
        for n in range(2):
            store._runs.write([{**r, "x": f"note {n}"} for r in store._runs.records.values()])
    # Compacted (a new file, one line a record) once 120 lines held 40 records.
    assert path.stat().st_ino != inode
    assert path.read_bytes().count(b"\n") == 81
    runs = follower.get_runs(limit=100)
    assert len(runs) == 40 and {(r.status, r.error) for r in runs} == {("succeeded", "note 1")}


_FIRER = """
import json, os, sys, time
from datetime import datetime, timedelta, timezone
from asyncz.core.converters import utc_timestamp_us
from asyncz.core.runs import Fire
from asyncz.plugins.stores.file import FileStore

directory, owner, go = sys.argv[1], sys.argv[2], sys.argv[3]
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
store = FileStore(directory)
store.start(None, "default")
while not os.path.exists(go):
    time.sleep(0.002)
counts = {"fires": 0, "started": 0, "duplicates": 0}
for i in range(40):
    # A lease of no time: every process can take the task again at once, and fires the
    # same run time, which stays due.
    for task in store.acquire_due_tasks(T0 + timedelta(seconds=i + 1), owner, 10, 0):
        result = store.fire_tasks(owner, [Fire(task_id=task.id, next_run_time=T0,
                                               run_times=[T0], max_instances=99)])
        for fired in result.values():
            counts["fires"] += 1
            counts["started"] += len(fired.started)
            counts["duplicates"] += len(fired.duplicates)
print(json.dumps(counts), flush=True)
"""


def test_processes_racing_to_fire_one_run_time_start_it_once(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    store = open_store(directory)
    store.add_task(make("t", 0))
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _FIRER, str(directory), f"node-{i}", str(go)],
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
    totals = {"fires": 0, "started": 0, "duplicates": 0}
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        for key, value in json.loads(out).items():
            totals[key] += value
    assert totals["started"] == 1
    assert totals["duplicates"] == totals["fires"] - 1 > 0
    (record,) = store.get_runs("t")
    assert (record.status, record.scheduled_at) == ("started", T0)
    assert os.path.getsize(directory / RUNS_NAME) < 10_000
