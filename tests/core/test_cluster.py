"""Cluster mode through the scheduler API: schedulers in one process, each with its own
instance of a shared store, as separate processes would have them.

Races are forced with barriers at chosen points (no hoping for an interleaving); real time is
used only in short bounded runs (a task at a fraction of a second).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncz.core import events
from asyncz.core.base_scheduler import BaseScheduler
from asyncz.core.errors import TaskConflictError
from asyncz.core.runs import RunRecord
from asyncz.schedulers import AsyncIOScheduler
from tests.plugins.stores import jobs
from tests.plugins.stores.backends import Backend, make_backend

UTC = timezone.utc


@pytest.fixture(params=["sqlite", "postgresql", "redis", "file"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with make_backend(request.param, tmp_path) as b:
        yield b


def paused_scheduler(backend: Backend, identity: str, **options: Any) -> BaseScheduler:
    scheduler = BaseScheduler(
        identity=identity, timezone="UTC", stores={"default": backend.config()}, **options
    )
    scheduler.start(paused=True)
    return scheduler


class Gate:
    """Holds each of ``parties`` threads at a point until all arrived (once)."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=10)
        self.used = False

    def wait(self) -> None:
        if not self.used:
            self.barrier.wait()


def hold_writes_at(gate: Gate, scheduler: BaseScheduler) -> None:
    """Make the scheduler's store wait at ``gate`` before its first write."""
    store = scheduler.lookup_store("default")
    real = type(store).update_task.__get__(store)

    def held(task: Any, *, keep_schedule: bool = False) -> None:
        gate.wait()  # every writer has read the same version before any writes
        try:
            real(task, keep_schedule=keep_schedule)
        finally:
            gate.used = True

    store.update_task = held  # type: ignore[method-assign]


def change_at_once(changes: list[tuple[BaseScheduler, dict[str, Any]]]) -> list[BaseException]:
    """Apply each scheduler's change in its own thread, all reading before any writes."""
    gate = Gate(len(changes))
    errors: list[BaseException] = []

    def change(scheduler: BaseScheduler, fields: dict[str, Any]) -> None:
        try:
            scheduler.update_task("t", **fields)
        except BaseException as exc:
            errors.append(exc)

    for scheduler, _ in changes:
        hold_writes_at(gate, scheduler)
    threads = [threading.Thread(target=change, args=item) for item in changes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    return errors


def test_two_schedulers_changing_different_fields_at_once_keep_both(backend: Backend) -> None:
    a = paused_scheduler(backend, "node-a")
    b = paused_scheduler(backend, "node-b")
    try:
        a.add_task(jobs.job, "interval", seconds=60, id="t", name="original")
        for trial in range(int(os.environ.get("ASYNCZ_CLUSTER_TRIALS", "5"))):
            errors = change_at_once([(a, {"name": f"name-{trial}"}), (b, {"kwargs": {"n": trial}})])
            assert errors == []
            stored = a.lookup_store("default").lookup_task("t")
            assert (stored.name, stored.kwargs) == (f"name-{trial}", {"n": trial})
    finally:
        a.shutdown()
        b.shutdown()


def test_a_conflict_that_never_settles_reaches_the_caller(backend: Backend) -> None:
    a = paused_scheduler(backend, "node-a")
    try:
        a.add_task(jobs.job, "interval", seconds=60, id="t")
        store = a.lookup_store("default")

        def always_behind(task: Any, *, keep_schedule: bool = False) -> None:
            raise TaskConflictError(task.id, "default", task.store_version, -1)

        store.update_task = always_behind  # type: ignore[method-assign]
        with pytest.raises(TaskConflictError):
            a.update_task("t", name="never")
        del store.update_task
        assert store.lookup_task("t").name != "never"
    finally:
        a.shutdown()


def test_renaming_a_task_while_another_scheduler_runs_it_runs_each_fire_time_once(
    backend: Backend,
) -> None:
    """Issue 13, item 1: updates unrelated to timing used to write back the run time they had
    read and end the lease, so fire times already run ran again."""
    runs: Counter[datetime] = Counter()
    done = threading.Event()

    def listener(event: Any) -> None:
        runs[event.scheduled_run_time] += 1

    runner = AsyncIOScheduler(
        identity="runner", timezone="UTC", stores={"default": backend.config(poll_interval=0.2)}
    )
    runner.add_listener(listener, events.TASK_EXECUTED)
    editor = paused_scheduler(backend, "editor")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    runner.start()
    try:
        runner.add_task(jobs.job, "interval", seconds=0.25, start_at=start, id="t", timezone="UTC")
        deadline = time.monotonic() + 3.0
        count = 0
        while time.monotonic() < deadline:
            editor.update_task("t", name=f"renamed-{count}")
            count += 1
        done.set()
    finally:
        runner.shutdown()
        editor.shutdown()
    assert count > 20
    assert runs, "the task never ran"
    assert max(runs.values()) == 1, {t: n for t, n in runs.items() if n > 1}


def test_runs_are_recorded_with_their_outcome(backend: Backend) -> None:
    scheduler = AsyncIOScheduler(
        identity="recorder", timezone="UTC", stores={"default": backend.config()}
    )
    finished = threading.Event()

    def listener(event: Any) -> None:
        finished.set()

    scheduler.add_listener(listener, events.TASK_ERROR)
    scheduler.start()
    try:
        scheduler.add_task(jobs.job, id="ok")
        scheduler.add_task(jobs.fail, id="bad")
        assert finished.wait(5)
        deadline = time.monotonic() + 5
        records: list[RunRecord] = []
        while time.monotonic() < deadline:
            records = scheduler.get_task_runs()
            if {r.status for r in records} >= {"succeeded", "failed"}:
                break
            time.sleep(0.05)
    finally:
        scheduler.shutdown()
    by_task = {r.task_id: r for r in records}
    assert by_task["ok"].status == "succeeded"
    assert by_task["ok"].instance == "recorder"
    assert by_task["ok"].duration is not None
    assert by_task["bad"].status == "failed"
    assert "ValueError" in (by_task["bad"].error or "")


def test_instances_see_each_other_and_leave_at_shutdown(backend: Backend) -> None:
    a = paused_scheduler(backend, "node-a", heartbeat_interval=0.2)
    b = paused_scheduler(backend, "node-b", heartbeat_interval=0.2)
    try:
        infos = a.get_scheduler_instance_infos()
        assert [(i.identity, i.scope) for i in infos] == [
            ("node-a", "process-local"),
            ("node-b", "cluster"),
        ]
        peer = infos[1]
        assert peer.stores == ("default",)
        assert peer.active and not peer.stale
    finally:
        b.shutdown()
    try:
        assert [i.identity for i in a.get_scheduler_instance_infos()] == ["node-a"]
    finally:
        a.shutdown()


class Flaky:
    """Wraps ``store.fire_tasks`` to fail once, before or after the real call (a connection
    lost before the commit, or while its answer was on the way: Quartz's flaky-JDBC test)."""

    def __init__(self, store: Any, when: str) -> None:
        self.real = store.fire_tasks
        self.when = when
        self.failed = False
        store.fire_tasks = self

    def __call__(self, owner: str, fires: Any) -> Any:
        if self.failed:
            return self.real(owner, fires)
        self.failed = True
        if self.when == "before":
            raise ConnectionError("injected: lost before the commit")
        self.real(owner, fires)
        raise ConnectionError("injected: lost after the commit")


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_fire_that_fails_around_its_commit_still_runs_once(
    backend: Backend, when: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asyncz.core import engine

    monkeypatch.setattr(engine, "LEASE_SECONDS", 0.5)  # "before": the lease must run out
    ran: list[Any] = []
    scheduler = BaseScheduler(
        identity="flaky",
        timezone="UTC",
        stores={"default": backend.config()},
        heartbeat_interval=0.1,  # renewals must not outlast the short lease
    )
    scheduler.add_listener(lambda e: ran.append(e.scheduled_run_time), events.TASK_EXECUTED)
    scheduler.start(paused=True)
    try:
        store = scheduler.lookup_store("default")
        due = datetime.now(UTC) - timedelta(seconds=1)
        scheduler.add_task(jobs.job, "date", run_at=due, id="t")
        flaky = Flaky(store, when)
        scheduler.resume()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not ran:
            scheduler.process_tasks()
            time.sleep(0.1)
        time.sleep(0.7)  # past the lease: a second fire would happen now
        scheduler.process_tasks()
        time.sleep(0.3)
        assert flaky.failed
        assert len(ran) == 1
        assert [r.status for r in scheduler.get_task_runs("t")] == ["succeeded"]
    finally:
        scheduler.shutdown()


def test_a_fire_whose_records_cannot_be_read_at_once_runs_once_later(backend: Backend) -> None:
    """The fire commits, its answer is lost, and the run records cannot be read right after
    either: a later pass reads them and runs the fire time then, once."""
    ran: list[Any] = []
    scheduler = BaseScheduler(
        identity="unreadable", timezone="UTC", stores={"default": backend.config()}
    )
    scheduler.add_listener(lambda e: ran.append(e.scheduled_run_time), events.TASK_EXECUTED)
    scheduler.start(paused=True)
    try:
        store = scheduler.lookup_store("default")
        scheduler.add_task(
            jobs.job, "date", run_at=datetime.now(UTC) - timedelta(seconds=1), id="t"
        )
        Flaky(store, "after")
        real_get_runs = store.get_runs
        failures = {"left": 3}  # every read of the first recovery fails

        def get_runs(*args: Any) -> Any:
            if failures["left"]:
                failures["left"] -= 1
                raise ConnectionError("injected: the store cannot be read")
            return real_get_runs(*args)

        store.get_runs = get_runs
        scheduler.resume()
        scheduler.process_tasks()  # fires, loses the answer, cannot read the records
        assert failures["left"] == 0 and ran == []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not ran:
            scheduler.process_tasks()
            time.sleep(0.1)
        time.sleep(0.3)
        scheduler.process_tasks()
        time.sleep(0.3)
        assert len(ran) == 1
        assert [r.status for r in scheduler.get_task_runs("t")] == ["succeeded"]
    finally:
        scheduler.shutdown()


def test_runs_still_going_at_shutdown_are_recorded_abandoned(
    backend: Backend, tmp_path: Path
) -> None:
    """shutdown(wait=False) leaves a run behind: no outcome will ever come for it, so its
    record says abandoned instead of counting against max_instances as started."""
    release = tmp_path / "release"
    log = tmp_path / "runs.log"
    scheduler = BaseScheduler(
        identity="leaver", timezone="UTC", stores={"default": backend.config()}
    )
    scheduler.start(paused=True)
    try:
        scheduler.add_task(
            jobs.held_run,
            "date",
            run_at=datetime.now(UTC) - timedelta(seconds=1),
            args=(str(log), "held", str(release)),
            id="held",
        )
        scheduler.resume()
        scheduler.process_tasks()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (log.exists() and "start" in log.read_text()):
            time.sleep(0.05)
        scheduler.shutdown(wait=False)
        (record,) = scheduler.lookup_store("default").get_runs("held")
        assert (record.status, record.instance) == ("abandoned", "leaver")
        assert "shut down" in (record.error or "")
    finally:
        release.touch()
