"""The cluster part of the store contract, on every persistent backend (and the memory store
where it applies): versioned conditional writes, changes that keep the schedule, fencing
tokens, the instance registry, and run records (DESIGN §11, ``asyncz/core/runs.py``).

Time is injected where the store takes it (``now`` of acquire); heartbeats and lease renewal
run on the store's own clock, so those tests wait a few tenths of a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncz.core.errors import TaskConflictError, TaskLookupError
from asyncz.core.runs import Fire, RunOutcome
from asyncz.tasks import Task
from tests.contracts.test_stores import FakeScheduler, make
from tests.plugins.stores.backends import PERSISTENT, Backend, make_backend

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LEASE = 30.0


@pytest.fixture(params=["memory", *PERSISTENT])
def any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with make_backend(request.param, tmp_path) as b:
        yield b


@pytest.fixture(params=PERSISTENT)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with make_backend(request.param, tmp_path) as b:
        yield b


def start(backend: Backend, identity: str = "node-a", **options: Any) -> Any:
    scheduler = FakeScheduler()
    scheduler.identity = identity
    store = backend.make(**options)
    store.start(scheduler, "default")
    return store


@pytest.fixture
def pair(backend: Backend) -> Iterator[tuple[Any, Any]]:
    """Two instances of one store, as two processes would have them."""
    a, b = start(backend, "node-a"), start(backend, "node-b")
    yield a, b
    a.shutdown()
    b.shutdown()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- versions and conditional writes ----------------------------------------------------------


def test_a_write_from_a_stale_read_is_refused_not_applied(pair: tuple[Any, Any]) -> None:
    a, b = pair
    a.add_task(make("t", 10))
    first, second = a.lookup_task("t"), b.lookup_task("t")
    assert isinstance(first.store_version, int)
    assert first.store_version == second.store_version
    first.name = "by-a"
    a.update_task(first, keep_schedule=True)
    assert first.store_version != second.store_version
    second.kwargs = {"by": "b"}
    with pytest.raises(TaskConflictError) as caught:
        b.update_task(second, keep_schedule=True)
    assert caught.value.task_id == "t"
    assert "changed by another writer" in str(caught.value)
    stored = b.lookup_task("t")
    assert (stored.name, stored.kwargs) == ("by-a", {})  # nothing of the stale write landed


def test_an_unversioned_write_replaces_and_a_missing_task_is_a_lookup_error(
    pair: tuple[Any, Any],
) -> None:
    a, b = pair
    a.add_task(make("t", 10))
    replacement = make("t", 20, name="replaced")  # never read: store_version is None
    b.update_task(replacement)
    assert a.lookup_task("t").name == "replaced"
    a.delete_task("t")
    with pytest.raises(TaskLookupError):
        b.update_task(replacement)


def test_a_task_added_again_never_repeats_a_version(pair: tuple[Any, Any]) -> None:
    a, b = pair
    a.add_task(make("t", 10))
    old = b.lookup_task("t")
    a.delete_task("t")
    a.add_task(make("t", 10))
    assert a.lookup_task("t").store_version != old.store_version
    old.name = "stale"
    with pytest.raises(TaskConflictError):
        b.update_task(old, keep_schedule=True)


def test_every_read_carries_the_current_version(pair: tuple[Any, Any]) -> None:
    a, b = pair
    a.add_task(make("t", 0))
    for _ in range(3):
        task = a.lookup_task("t")
        task.name = f"n{task.store_version}"
        a.update_task(task, keep_schedule=True)
    expected = a.lookup_task("t").store_version
    assert [t.store_version for t in b.get_all_tasks()] == [expected]
    assert [t.store_version for t in b.get_due_tasks(at(1))] == [expected]
    assert [t.store_version for t in b.acquire_due_tasks(at(1), "node-b", 10, LEASE)] == [expected]


# -- changes that keep the schedule -------------------------------------------------------------


def test_a_change_that_keeps_the_schedule_leaves_the_lease_and_run_time(
    any_backend: Backend,
) -> None:
    runner = start(any_backend, "node-a")
    editor = runner if not any_backend.persistent else start(any_backend, "node-b")
    try:
        runner.add_task(make("t", 0))
        assert len(runner.acquire_due_tasks(at(1), "node-a", 10, LEASE)) == 1
        edited = editor.lookup_task("t")
        edited.name = "renamed"
        edited.kwargs = {"x": 1}
        editor.update_task(edited, keep_schedule=True)
        # The holder's release still counts: the run it is about to start is not lost, and
        # the time it released is not run again.
        assert list(runner.release_tasks("node-a", {"t": at(60)})) == ["t"]
        stored = editor.lookup_task("t")
        assert (stored.name, stored.kwargs) == ("renamed", {"x": 1})
        assert stored.next_run_time == at(60)
        assert runner.acquire_due_tasks(at(30), "node-a", 10, LEASE) == []
    finally:
        runner.shutdown()
        if editor is not runner:
            editor.shutdown()


def test_a_change_that_keeps_the_schedule_ignores_the_run_time_it_carries(
    any_backend: Backend,
) -> None:
    store = start(any_backend)
    try:
        store.add_task(make("t", 0))
        store.acquire_due_tasks(at(1), "node-a", 10, LEASE)
        store.release_tasks("node-a", {"t": at(60)})
        stale = make("t", 0, name="from-a-stale-copy")  # carries the old run time
        store.update_task(stale, keep_schedule=True)
        assert store.lookup_task("t").next_run_time == at(60)
        assert store.get_next_run_time() == at(60)
    finally:
        store.shutdown()


def test_a_change_of_schedule_ends_the_lease(pair: tuple[Any, Any]) -> None:
    a, b = pair
    a.add_task(make("t", 0))
    a.acquire_due_tasks(at(1), "node-a", 10, LEASE)
    paused = b.lookup_task("t")
    paused.next_run_time = None
    b.update_task(paused)
    assert list(a.release_tasks("node-a", {"t": at(60)})) == []  # the pause wins
    assert a.lookup_task("t").next_run_time is None


# -- fencing ------------------------------------------------------------------------------------


def test_a_release_after_the_lease_was_taken_again_is_refused_even_for_the_same_owner(
    backend: Backend,
) -> None:
    # Two instances under one owner name: only the lease token tells them apart.
    first, second = start(backend, "same"), start(backend, "same")
    try:
        first.add_task(make("t", 0))
        assert len(first.acquire_due_tasks(at(1), "same", 10, 1.0)) == 1
        # The lease ran out (first was stuck); second takes the task.
        assert len(second.acquire_due_tasks(at(5), "same", 10, LEASE)) == 1
        assert list(first.release_tasks("same", {"t": at(600)})) == []
        assert list(second.release_tasks("same", {"t": at(60)})) == ["t"]
        assert first.lookup_task("t").next_run_time == at(60)
    finally:
        first.shutdown()
        second.shutdown()


def test_renewed_leases_are_not_handed_out_again(pair: tuple[Any, Any]) -> None:
    a, b = pair
    a.add_task(make("t", -3600))
    now = datetime.now(UTC)
    assert len(a.acquire_due_tasks(now, "node-a", 10, 0.5)) == 1
    assert a.renew_leases("node-a", 60.0) == 1
    assert b.acquire_due_tasks(now + timedelta(seconds=5), "node-b", 10, LEASE) == []
    assert list(a.release_tasks("node-a", {"t": at(60)})) == ["t"]
    assert a.renew_leases("node-a", 60.0) == 0  # nothing held any more


# -- instances ----------------------------------------------------------------------------------


def info(identity: str) -> dict[str, Any]:
    return {"identity": identity, "host": "test-host", "pid": 1, "stores": ["default"]}


def test_instances_register_beat_and_leave(pair: tuple[Any, Any]) -> None:
    a, b = pair
    a.register_instance("node-a", info("node-a"))
    b.register_instance("node-b", info("node-b"))
    listed = a.get_instances()
    assert [identity for identity, _, _ in listed] == ["node-a", "node-b"]
    peer, data, age = listed[1]
    assert peer == "node-b"
    assert data["host"] == "test-host"
    assert 0 <= age < 5
    assert a.heartbeat("node-a", info("node-a"), 30.0) == []
    b.unregister_instance("node-b")
    assert [identity for identity, _, _ in a.get_instances()] == ["node-a"]


def test_a_silent_instance_is_declared_dead_once_and_its_leases_end(
    pair: tuple[Any, Any],
) -> None:
    a, b = pair
    a.register_instance("node-a", info("node-a"))
    b.register_instance("node-b", info("node-b"))
    a.add_task(make("t", -3600))
    now = datetime.now(UTC)
    assert len(b.acquire_due_tasks(now, "node-b", 10, LEASE)) == 1
    assert a.acquire_due_tasks(now, "node-a", 10, LEASE) == []  # b holds it
    time.sleep(0.6)
    assert a.heartbeat("node-a", info("node-a"), 0.5) == ["node-b"]
    assert a.heartbeat("node-a", info("node-a"), 0.5) == []  # declared dead once
    assert [identity for identity, _, _ in a.get_instances()] == ["node-a"]
    # Its lease ended at once: the task is due again at its unchanged run time.
    (taken,) = a.acquire_due_tasks(now, "node-a", 10, LEASE)
    assert taken.next_run_time == at(-3600)
    # b is alive after all (a long pause): its late release is refused, it runs nothing.
    assert list(b.release_tasks("node-b", {"t": at(60)})) == []
    # and its next heartbeat registers it again
    assert b.heartbeat("node-b", info("node-b"), 0.5) == []
    assert "node-b" in [identity for identity, _, _ in a.get_instances()]


# -- run records --------------------------------------------------------------------------------


def fire(store: Any, owner: str, task: Task, run_times: list[datetime], **options: Any) -> Any:
    fires = [
        Fire(
            task_id=task.id,
            next_run_time=options.pop("next_run_time", at(600)),
            run_times=run_times,
            max_instances=options.pop("max_instances", 1),
            on_crash=options.pop("on_crash", "skip"),
        )
    ]
    return store.fire_tasks(owner, fires)


def test_a_fire_records_each_run_time_once(pair: tuple[Any, Any]) -> None:
    a, b = pair
    a.add_task(make("t", 0))
    (task,) = a.acquire_due_tasks(at(1), "node-a", 10, LEASE)
    result = fire(a, "node-a", task, [at(0)], next_run_time=at(60))
    assert list(result) == ["t"]
    assert list(result["t"].started) == [at(0)]
    assert a.lookup_task("t").next_run_time == at(60)
    (record,) = b.get_runs("t")
    assert (record.task_id, record.scheduled_at, record.status) == ("t", at(0), "started")
    assert record.instance == "node-a"
    assert record.attempt == 1
    # The same fire time again (a scheduler with a wrong view of the task): never started twice
    b.update_task(make("t", 0))  # back to the old run time, lease cleared
    (again,) = b.acquire_due_tasks(at(1), "node-b", 10, LEASE)
    second = fire(b, "node-b", again, [at(0)], next_run_time=at(60))
    assert list(second["t"].started) == []
    assert list(second["t"].duplicates) == [at(0)]
    assert len(a.get_runs("t")) == 1


def test_a_fire_without_the_lease_records_nothing(pair: tuple[Any, Any]) -> None:
    a, b = pair
    a.add_task(make("t", 0))
    (task,) = a.acquire_due_tasks(at(1), "node-a", 10, LEASE)
    changed = b.lookup_task("t")
    changed.next_run_time = at(30)
    b.update_task(changed)  # a schedule change ends a's lease
    assert fire(a, "node-a", task, [at(0)]) == {}
    assert a.get_runs("t") == []
    assert a.lookup_task("t").next_run_time == at(30)


def test_an_exhausted_task_is_deleted_by_its_fire(pair: tuple[Any, Any]) -> None:
    a, b = pair
    a.add_task(make("t", 0))
    (task,) = a.acquire_due_tasks(at(1), "node-a", 10, LEASE)
    result = fire(a, "node-a", task, [at(0)], next_run_time=None)
    assert list(result["t"].started) == [at(0)]
    assert b.lookup_task("t") is None
    assert [r.status for r in b.get_runs("t")] == ["started"]


def test_max_instances_counts_started_runs_across_schedulers(pair: tuple[Any, Any]) -> None:
    a, b = pair
    a.add_task(make("t", 0))
    (task,) = a.acquire_due_tasks(at(1), "node-a", 10, LEASE)
    fire(a, "node-a", task, [at(0)], next_run_time=at(60))  # still running on a
    (task,) = b.acquire_due_tasks(at(61), "node-b", 10, LEASE)
    result = fire(b, "node-b", task, [at(60)], next_run_time=at(120))
    assert list(result["t"].started) == []
    assert list(result["t"].skipped) == [at(60)]
    a.finish_runs(
        [
            RunOutcome(
                task_id="t",
                scheduled_at=at(0),
                instance="node-a",
                status="succeeded",
                run_id="run-1",
                started_at=at(0.5),
                finished_at=at(2.5),
                duration=2.0,
            )
        ]
    )
    (task,) = b.acquire_due_tasks(at(121), "node-b", 10, LEASE)
    result = fire(b, "node-b", task, [at(120)], next_run_time=at(180))
    assert list(result["t"].started) == [at(120)]  # a's run ended: room again
    runs = {r.scheduled_at: r for r in a.get_runs("t")}
    assert runs[at(0)].status == "succeeded"
    assert runs[at(0)].duration == pytest.approx(2.0)
    assert runs[at(0)].run_id == "run-1"
    assert runs[at(60)].status == "skipped"
    assert runs[at(120)].status == "started"
    assert [r.scheduled_at for r in a.get_runs("t")] == [at(120), at(60), at(0)]
    assert [r.scheduled_at for r in a.get_runs("t", 2)] == [at(120), at(60)]
    assert len(a.get_runs(None)) == 3


def test_only_the_instance_that_fired_a_run_can_finish_it(pair: tuple[Any, Any]) -> None:
    a, b = pair
    a.add_task(make("t", 0))
    (task,) = a.acquire_due_tasks(at(1), "node-a", 10, LEASE)
    fire(a, "node-a", task, [at(0)])
    b.finish_runs([RunOutcome(task_id="t", scheduled_at=at(0), instance="node-b", status="failed")])
    assert [r.status for r in a.get_runs("t")] == ["started"]
    a.finish_runs(
        [
            RunOutcome(
                task_id="t",
                scheduled_at=at(0),
                instance="node-a",
                status="failed",
                error="ValueError: boom",
            )
        ]
    )
    (record,) = a.get_runs("t")
    assert (record.status, record.error) == ("failed", "ValueError: boom")


def test_a_dead_instances_runs_are_abandoned_or_rerun_once(pair: tuple[Any, Any]) -> None:
    a, b = pair
    a.register_instance("node-a", info("node-a"))
    b.register_instance("node-b", info("node-b"))
    a.add_task(make("skipper", -3600))
    a.add_task(make("rerunner", -3600, on_crash="rerun"))
    now = datetime.now(UTC)
    taken = {t.id: t for t in b.acquire_due_tasks(now, "node-b", 10, LEASE)}
    assert set(taken) == {"skipper", "rerunner"}
    b.fire_tasks(
        "node-b",
        [
            Fire(task_id="skipper", next_run_time=at(600), run_times=[at(-3600)]),
            Fire(
                task_id="rerunner",
                next_run_time=at(600),
                run_times=[at(-3600)],
                on_crash="rerun",
            ),
        ],
    )
    time.sleep(0.6)  # b dies in the middle of both runs
    assert a.heartbeat("node-a", info("node-a"), 0.5) == ["node-b"]
    assert [r.status for r in a.get_runs("skipper")] == ["abandoned"]
    reruns = a.take_reruns("node-a", 10)
    assert [(task.id, when) for task, when in reruns] == [("rerunner", at(-3600))]
    assert reruns[0][0].on_crash == "rerun"
    assert a.take_reruns("node-a", 10) == []  # handed out once
    assert b.take_reruns("node-b", 10) == []
    (record,) = a.get_runs("rerunner")
    assert (record.status, record.instance, record.attempt) == ("started", "node-a", 2)
    a.finish_runs(
        [
            RunOutcome(
                task_id="rerunner",
                scheduled_at=at(-3600),
                instance="node-a",
                status="succeeded",
            )
        ]
    )
    assert [r.status for r in b.get_runs("rerunner")] == ["succeeded"]


# -- ids ----------------------------------------------------------------------------------------


def test_ids_are_compared_exactly_and_long_ids_of_any_script_round_trip(
    any_backend: Backend,
) -> None:
    store = start(any_backend)
    try:
        store.add_task(make("report ", 10))
        assert store.lookup_task("report") is None
        store.add_task(make("report", 20))
        store.delete_task("report")
        assert store.lookup_task("report ").id == "report "
        long_id = ('é日本/\\:*?"<>|%.' * 20)[:191]
        store.add_task(make(long_id, 30))
        assert store.lookup_task(long_id).id == long_id
        assert long_id in [t.id for t in store.get_all_tasks()]
        (due,) = [
            t for t in store.acquire_due_tasks(at(31), "node-a", 10, LEASE) if t.id == long_id
        ]
        assert list(store.release_tasks("node-a", {long_id: at(90)})) == [long_id]
        assert due.id == long_id
    finally:
        store.shutdown()


def test_a_one_off_task_deleted_by_its_fire_is_still_rerun(pair: tuple[Any, Any]) -> None:
    a, b = pair
    a.register_instance("node-a", info("node-a"))
    b.register_instance("node-b", info("node-b"))
    a.add_task(make("once", -3600, on_crash="rerun", kwargs={"k": 1}))
    (task,) = b.acquire_due_tasks(datetime.now(UTC), "node-b", 10, LEASE)
    result = fire(b, "node-b", task, [at(-3600)], next_run_time=None, on_crash="rerun")
    assert list(result["once"].started) == [at(-3600)]
    assert a.lookup_task("once") is None  # exhausted: deleted by the fire
    time.sleep(0.6)  # b dies in the middle of the run
    assert a.heartbeat("node-a", info("node-a"), 0.5) == ["node-b"]
    ((rerun, when),) = a.take_reruns("node-a", 10)
    assert (rerun.id, when, rerun.kwargs, rerun.on_crash) == ("once", at(-3600), {"k": 1}, "rerun")
    assert a.lookup_task("once") is None  # rerun from the record kept with the run
    assert a.take_reruns("node-a", 10) == []


def test_the_run_times_of_one_fire_start_together(pair: tuple[Any, Any]) -> None:
    """A fire catching up on several missed run times is one submission (they run one after
    another in one executor slot): max_instances=1 starts them all, or skips them all."""
    a, b = pair
    a.add_task(make("t", 0))
    (task,) = a.acquire_due_tasks(at(200), "node-a", 10, LEASE)
    result = fire(a, "node-a", task, [at(0), at(60), at(120)], next_run_time=at(240))
    assert list(result["t"].started) == [at(0), at(60), at(120)]
    (task,) = b.acquire_due_tasks(at(241), "node-b", 10, LEASE)
    result = fire(b, "node-b", task, [at(240)], next_run_time=at(300))
    assert list(result["t"].skipped) == [at(240)]  # a's three are still running
